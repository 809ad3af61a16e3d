//! The runtime: N worker threads, N backend groups (each client is served by one group's
//! connections, so a group's backend connections are shared by all of its clients), the listener,
//! the refresh task and graceful shutdown (stop accepting, let sessions drain, exit).

use crate::cluster::topology::{Addr, Topology};
use crate::metrics::CommandStats;
use crate::proxy::backend::NodeConns;
use crate::proxy::{admin, refresh, session, Options, ProxyError, Stats};
use arc_swap::ArcSwap;
use std::collections::HashMap;
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
    /// The routing snapshot: read without locks on every request, replaced whole on refresh.
    pub topo: ArcSwap<Topology>,
    pub stats: Stats,
    /// Calls, errors and latency per command (INFO commandstats/latencystats, /metrics).
    pub cmdstats: CommandStats,
    /// Wakes the refresh task early.
    pub refresh: Notify,
    pub groups: Vec<Group>,
    next_client: AtomicU64,
    next_group: AtomicUsize,
}

/// One worker group's backend connections, by node and connection kind.
#[derive(Default)]
pub struct Group {
    conns: Mutex<HashMap<ConnKey, Arc<NodeConns>>>,
}

/// Connections differ in the state their prelude set up: RESP3 replies (`HELLO 3`) and replica
/// reads (`READONLY`). A request only goes on a connection whose state matches its client's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub addr: Addr,
    pub resp3: bool,
    pub readonly: bool,
}

impl Shared {
    pub fn new(opts: Options) -> Shared {
        let groups = (0..opts.threads).map(|_| Group::default()).collect();
        Shared {
            opts,
            topo: ArcSwap::from_pointee(Topology::default()),
            stats: Stats::default(),
            cmdstats: CommandStats::for_command_table(),
            refresh: Notify::new(),
            groups,
            next_client: AtomicU64::new(1),
            next_group: AtomicUsize::new(0),
        }
    }

    /// The connections of `group` to `addr`, opened on first use.
    pub fn conns(&self, group: usize, addr: &Addr, resp3: bool) -> Arc<NodeConns> {
        self.conns_of(group, ConnKey { addr: addr.clone(), resp3, readonly: false })
    }

    pub fn conns_of(&self, group: usize, key: ConnKey) -> Arc<NodeConns> {
        let g = &self.groups[group % self.groups.len()];
        let mut map = g.conns.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(&key) {
            return c.clone();
        }
        let c = NodeConns::spawn(&key, &self.opts);
        map.insert(key, c.clone());
        c
    }

    /// Every node this proxy has connections to, with the group-summed state, for INFO.
    pub fn node_states(&self) -> Vec<(Addr, bool, u64, u64)> {
        let mut out: std::collections::BTreeMap<Addr, (bool, u64, u64)> = Default::default();
        for g in &self.groups {
            let map = g.conns.lock().unwrap_or_else(|e| e.into_inner());
            for (key, c) in map.iter() {
                let e = out.entry(key.addr.clone()).or_default();
                e.0 |= c.state.connected.load(Ordering::Relaxed);
                e.1 += c.state.inflight.load(Ordering::Relaxed);
                e.2 += c.state.errors.load(Ordering::Relaxed);
            }
        }
        out.into_iter().map(|(a, (c, i, e))| (a, c, i, e)).collect()
    }

    /// Applies a MOVED to the snapshot at once (the background refresh confirms the rest).
    pub fn apply_moved(&self, slot: u16, to: &Addr) {
        let cur = self.topo.load();
        if cur.master_for_slot(slot).is_some_and(|m| &m.addr == to) {
            return;
        }
        self.topo.rcu(|t| {
            let mut next = Topology::clone(t);
            let _ = next.set_slot_owner(slot, to);
            next
        });
        self.refresh.notify_one();
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }

    /// Visits every backend connection set of every worker group (for /metrics).
    pub fn for_each_conns(&self, mut f: impl FnMut(&ConnKey, &NodeConns)) {
        for g in &self.groups {
            let map = g.conns.lock().unwrap_or_else(|e| e.into_inner());
            map.iter().for_each(|(k, c)| f(k, c));
        }
    }
}

/// Runs the proxy until SIGTERM or Ctrl-C.
pub fn run(opts: Options) -> Result<(), ProxyError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads)
        .thread_name("proxy-worker")
        .enable_all()
        .build()
        .map_err(ProxyError::Runtime)?;
    // The handlers are installed before anything else runs: a signal that arrives while the
    // first topology is being fetched must stop the proxy the graceful way, not kill it.
    let stop = {
        let _in_runtime = rt.enter();
        shutdown_signal()
    };
    rt.block_on(serve(opts, stop))
}

/// A future that completes on SIGTERM or SIGINT. The handlers are registered when this is
/// called, not when the future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
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
    async fn accept_loop(self, sh: Arc<Shared>, mut stop: watch::Receiver<bool>) {
        let sessions_stop = stop.clone();
        Stats::inc(&sh.stats.listeners);
        loop {
            let accepted = tokio::select! {
                _ = stop.changed() => break,
                r = self.accept(&sh, &sessions_stop) => r,
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

    async fn accept(&self, sh: &Arc<Shared>, stop: &watch::Receiver<bool>) -> std::io::Result<()> {
        let group = sh.next_group.fetch_add(1, Ordering::Relaxed) % sh.groups.len();
        match self {
            Listener::Tcp(l) => {
                let (sock, _) = l.accept().await?;
                let _ = sock.set_nodelay(true);
                let (rd, wr) = sock.into_split();
                tokio::spawn(session::handle(rd, wr, sh.clone(), group, stop.clone()));
            }
            #[cfg(unix)]
            Listener::Unix(l, _) => {
                let (sock, _) = l.accept().await?;
                let (rd, wr) = sock.into_split();
                tokio::spawn(session::handle(rd, wr, sh.clone(), group, stop.clone()));
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
    let (stop_tx, stop_rx) = watch::channel(false);
    let accepting: Vec<_> =
        listeners.into_iter().map(|l| tokio::spawn(l.accept_loop(sh.clone(), stop_rx.clone()))).collect();
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
    Ok(())
}
