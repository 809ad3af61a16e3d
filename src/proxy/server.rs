//! The runtime: N worker threads, N backend groups (each client is served by one group's
//! connections, so a group's backend connections are shared by all of its clients), the listener,
//! the refresh task and graceful shutdown (stop accepting, let sessions drain, exit).

use crate::cluster::topology::{Addr, Topology};
use crate::metrics::CommandStats;
use crate::proxy::backend::NodeConns;
use crate::proxy::breaker::Breakers;
use crate::proxy::local::Peer;
use crate::proxy::readpolicy::Reads;
use crate::proxy::{admin, refresh, session, Options, ProxyError, Stats};
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

/// How long in-flight requests get to finish after SIGTERM / Ctrl-C.
const DRAIN: Duration = Duration::from_secs(5);

/// State every session and task shares.
pub struct Shared {
    pub opts: Options,
    /// The routing snapshot: read without locks on every request, replaced whole on refresh
    /// ([`Shared::set_topology`]) or MOVED ([`Shared::apply_moved`]).
    pub topo: ArcSwap<Routing>,
    /// Hands out [`Routing::gen`] values.
    next_gen: AtomicU64,
    pub stats: Stats,
    /// Where reads go (`--read-from`) and the replica health the proxy has seen.
    pub reads: Reads,
    /// Calls, errors and latency per command (INFO commandstats/latencystats, /metrics).
    pub cmdstats: CommandStats,
    /// Wakes the refresh task early.
    pub refresh: Notify,
    pub groups: Vec<Group>,
    /// One circuit breaker per node, shared by every group's connections to it.
    pub breakers: Breakers,
    next_client: AtomicU64,
    next_group: AtomicUsize,
}

/// The routing snapshot and its generation. `gen` changes, to a value never used before, whenever
/// a slot's owner does, so a session can tell at once whether the view it routed its requests in
/// flight on still holds. When it does not, the session lets them finish before it routes more:
/// a request routed on the new view must not run before an older one that comes back MOVED from
/// the old owner and is sent again.
pub struct Routing {
    pub topo: Topology,
    pub gen: u64,
}

impl std::ops::Deref for Routing {
    type Target = Topology;
    fn deref(&self) -> &Topology {
        &self.topo
    }
}

/// One worker group's backend connections, by node and connection kind.
#[derive(Default)]
pub struct Group {
    conns: Mutex<hashbrown::HashMap<ConnKey, Arc<NodeConns>>>,
}

/// Connections differ in the state their prelude set up: RESP3 replies (`HELLO 3`) and replica
/// reads (`READONLY`). A request only goes on a connection whose state matches its client's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub addr: Addr,
    pub resp3: bool,
    pub readonly: bool,
}

/// [`ConnKey`] borrowed, for lookups. Its derived `Hash` hashes the same fields in the same order
/// (`&Addr` hashes as `Addr`), which `Equivalent` requires.
#[derive(Hash)]
struct ConnKeyRef<'a> {
    addr: &'a Addr,
    resp3: bool,
    readonly: bool,
}

impl hashbrown::Equivalent<ConnKey> for ConnKeyRef<'_> {
    fn equivalent(&self, k: &ConnKey) -> bool {
        self.addr == &k.addr && self.resp3 == k.resp3 && self.readonly == k.readonly
    }
}

impl Shared {
    pub fn new(opts: Options) -> Shared {
        let groups = (0..opts.threads).map(|_| Group::default()).collect();
        let breakers = Breakers::new(&opts);
        Shared {
            reads: Reads::new(opts.read_from, opts.breaker_open),
            opts,
            topo: ArcSwap::from_pointee(Routing { topo: Topology::default(), gen: 0 }),
            next_gen: AtomicU64::new(0),
            stats: Stats::default(),
            cmdstats: CommandStats::for_command_table(),
            refresh: Notify::new(),
            groups,
            breakers,
            next_client: AtomicU64::new(1),
            next_group: AtomicUsize::new(0),
        }
    }

    /// The connections of `group` to `addr` (READONLY ones for replica reads), opened on first
    /// use. Called for every request: the lookup borrows its key, so it neither allocates nor
    /// contends (only this group's worker thread takes this lock).
    pub fn conns(&self, group: usize, addr: &Addr, resp3: bool, readonly: bool) -> Arc<NodeConns> {
        let g = &self.groups[group % self.groups.len()];
        let mut map = g.conns.lock().unwrap_or_else(|e| e.into_inner());
        let probe = ConnKeyRef { addr, resp3, readonly };
        if let Some(c) = map.get(&probe) {
            return c.clone();
        }
        let key = ConnKey { addr: addr.clone(), resp3, readonly };
        let c = NodeConns::spawn(&key, &self.opts, self.breakers.get(&key.addr));
        map.insert(key, c.clone());
        c
    }

    /// Every node this proxy has connections to, its connection sets' state summed over worker
    /// groups and connection kinds (INFO's node lines, /metrics' node series).
    pub fn node_states(&self) -> std::collections::BTreeMap<Addr, NodeConnStats> {
        let mut out: std::collections::BTreeMap<Addr, NodeConnStats> = Default::default();
        for g in &self.groups {
            let map = g.conns.lock().unwrap_or_else(|e| e.into_inner());
            for (key, c) in map.iter() {
                let e = out.entry(key.addr.clone()).or_default();
                e.connections += u64::from(c.state.connected.load(Ordering::Relaxed));
                e.inflight += c.state.inflight.load(Ordering::Relaxed);
                e.errors += c.state.errors.load(Ordering::Relaxed);
            }
        }
        out
    }

    /// Applies a MOVED to the snapshot at once (the background refresh confirms the rest).
    pub fn apply_moved(&self, slot: u16, to: &Addr) {
        let cur = self.topo.load();
        if cur.master_for_slot(slot).is_some_and(|m| &m.addr == to) {
            return;
        }
        self.topo.rcu(|r| {
            let mut next = Topology::clone(&r.topo);
            let _ = next.set_slot_owner(slot, to);
            Routing { topo: next, gen: self.new_gen() }
        });
        self.refresh.notify_one();
    }

    /// Replaces the routing snapshot (a refresh found a different view). Only a change of slot
    /// owners gives it a new [`Routing::gen`]: a node's health or a replica set changing
    /// reorders nothing.
    pub fn set_topology(&self, t: Topology) {
        self.topo.rcu(|cur| {
            let gen = if cur.diff(&t).moved.is_empty() { cur.gen } else { self.new_gen() };
            Routing { topo: t.clone(), gen }
        });
    }

    fn new_gen(&self) -> u64 {
        self.next_gen.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }
}

/// One node's backend connection sets, summed: how many are connected, requests in flight,
/// connection errors.
#[derive(Debug, Default, Clone, Copy)]
pub struct NodeConnStats {
    pub connections: u64,
    pub inflight: u64,
    pub errors: u64,
}

/// Runs the proxy until SIGTERM or Ctrl-C.
pub fn run(opts: Options) -> Result<(), ProxyError> {
    // The control plane (accepting, topology refresh, admin) is light: one thread. Clients are
    // served by the worker threads `serve` starts.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ProxyError::Runtime)?;
    // The handlers are installed before anything else runs: a signal that arrives while the
    // first topology is being fetched must stop the proxy the graceful way, not kill it.
    let stop = {
        let _in_runtime = rt.enter();
        shutdown_signal()
    };
    rt.block_on(serve(opts, stop))
}

/// A future that completes on SIGTERM or SIGINT. The handlers are registered when this is
/// called (inside a runtime), not when the future is first polled.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut t), Ok(mut i)) => {
                    tokio::select! {
                        _ = t.recv() => {}
                        _ = i.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// One bound listener.
enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, std::path::PathBuf),
}

impl Listener {
    /// `unix:/path` binds a unix socket (a stale socket file left by a killed proxy is replaced,
    /// as Redis does with `unixsocket`); anything else is a TCP `host:port`.
    async fn bind(spec: &str) -> Result<Listener, ProxyError> {
        let err = |source| ProxyError::Listen { addr: spec.to_string(), source };
        #[cfg(unix)]
        if let Some(path) = spec.strip_prefix("unix:") {
            let path = std::path::PathBuf::from(path);
            let _ = std::fs::remove_file(&path);
            let l = tokio::net::UnixListener::bind(&path).map_err(err)?;
            return Ok(Listener::Unix(l, path));
        }
        TcpListener::bind(spec).await.map(Listener::Tcp).map_err(err)
    }

    /// Accepts clients until `stop` turns true; each session gets the next worker group.
    async fn accept_loop(self, sh: Arc<Shared>, workers: Arc<Vec<Worker>>, mut stop: watch::Receiver<bool>) {
        let sessions_stop = stop.clone();
        Stats::inc(&sh.stats.listeners);
        loop {
            let accepted = tokio::select! {
                _ = stop.changed() => break,
                r = self.accept(&sh, &workers, &sessions_stop) => r,
            };
            if let Err(e) = accepted {
                // Out of descriptors and the like: wait a little instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        sh.stats.listeners.fetch_sub(1, Ordering::Relaxed);
        #[cfg(unix)]
        if let Listener::Unix(_, path) = &self {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Accepts one client and hands it to the next worker. The socket moves to the worker's own
    /// reactor (`into_std` here, `from_std` there), so its wakeups never cross threads.
    async fn accept(&self, sh: &Arc<Shared>, workers: &[Worker], stop: &watch::Receiver<bool>) -> std::io::Result<()> {
        let group = sh.next_group.fetch_add(1, Ordering::Relaxed) % workers.len();
        let (sh, stop) = (sh.clone(), stop.clone());
        match self {
            Listener::Tcp(l) => {
                let (sock, _) = l.accept().await?;
                let _ = sock.set_nodelay(true);
                let peer = Peer::tcp(&sock);
                let sock = sock.into_std()?;
                workers[group].rt.spawn(async move {
                    if let Ok(sock) = tokio::net::TcpStream::from_std(sock) {
                        let (rd, wr) = sock.into_split();
                        session::handle(rd, wr, peer, sh, group, stop).await;
                    }
                });
            }
            #[cfg(unix)]
            Listener::Unix(l, path) => {
                let (sock, _) = l.accept().await?;
                let peer = Peer::unix(&sock, path);
                let sock = sock.into_std()?;
                workers[group].rt.spawn(async move {
                    if let Ok(sock) = tokio::net::UnixStream::from_std(sock) {
                        let (rd, wr) = sock.into_split();
                        session::handle(rd, wr, peer, sh, group, stop).await;
                    }
                });
            }
        }
        Ok(())
    }
}

/// The proxy on the current runtime, until `stop` completes.
pub async fn serve(opts: Options, stop: impl std::future::Future<Output = ()>) -> Result<(), ProxyError> {
    let mut listeners = Vec::new();
    for spec in &opts.listen {
        listeners.push(Listener::bind(spec).await?);
    }
    let admin = match &opts.admin {
        Some(spec) => Some(admin::bind(spec).await?),
        None => None,
    };
    let sh = Arc::new(Shared::new(opts));
    // Before the first topology: /healthz answers 503 while the proxy cannot serve yet.
    let admin = admin.map(|l| tokio::spawn(admin::run(l, sh.clone())));
    // A first view before taking clients; a proxy whose cluster is not up yet still starts and
    // keeps trying (a sidecar may start before its cluster), answering CLUSTERDOWN meanwhile.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match refresh::refresh(&sh).await {
            Ok(_) => break,
            Err(e) if Instant::now() >= deadline => {
                tracing::warn!("{}", ProxyError::NoTopology(e));
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let refresher = tokio::spawn(refresh::run(sh.clone()));
    let workers = Arc::new((0..sh.groups.len()).map(Worker::start).collect::<Result<Vec<_>, _>>()?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let accepting: Vec<_> = listeners
        .into_iter()
        .map(|l| tokio::spawn(l.accept_loop(sh.clone(), workers.clone(), stop_rx.clone())))
        .collect();
    tracing::info!(listen = ?sh.opts.listen, "slotway proxy ready");
    stop.await;
    tracing::info!("shutting down: draining clients");
    let _ = stop_tx.send(true);
    for a in accepting {
        let _ = a.await;
    }
    let deadline = Instant::now() + DRAIN;
    while Stats::get(&sh.stats.clients) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = Stats::get(&sh.stats.clients);
    if left > 0 {
        tracing::warn!(
            clients = left,
            drain_secs = DRAIN.as_secs(),
            "clients still connected after the drain; closing them"
        );
    } else {
        tracing::info!("drained; exiting");
    }
    refresher.abort();
    if let Some(a) = admin {
        a.abort();
    }
    // Every accept loop has ended, so this is the last handle: the workers stop (their sessions
    // that outlived the drain are dropped with their runtimes).
    if let Ok(workers) = Arc::try_unwrap(workers) {
        let stopping: Vec<_> = workers.into_iter().map(Worker::stop).collect();
        for t in stopping {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
    Ok(())
}

/// One worker thread: a current-thread runtime that runs its clients' sessions and its group's
/// backend connections, so a request's whole path (client socket, session, backend connection)
/// stays on one thread without locks or cross-thread wakeups, as in Envoy's or pingora's workers.
struct Worker {
    rt: tokio::runtime::Handle,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Worker {
    fn start(i: usize) -> Result<Worker, ProxyError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ProxyError::Runtime)?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("proxy-worker-{i}"))
            .spawn(move || {
                let _ = rt.block_on(stopped);
                // Sessions still running after the drain end here, without waiting on their I/O.
                rt.shutdown_background();
            })
            .map_err(ProxyError::Runtime)?;
        Ok(Worker { rt: handle, stop, thread })
    }

    fn stop(self) -> std::thread::JoinHandle<()> {
        let _ = self.stop.send(());
        self.thread
    }
}
