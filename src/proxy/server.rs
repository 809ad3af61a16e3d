//! The runtime: N worker threads, N backend groups (each client is served by one group's
//! connections, so a group's backend connections are shared by all of its clients), the listener,
//! the refresh task and graceful shutdown (stop accepting, let sessions drain, exit).

use crate::cluster::topology::{Addr, Topology};
use crate::proxy::backend::NodeConns;
use crate::proxy::{refresh, session, Options, ProxyError, Stats};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Wakes the refresh task early.
    pub refresh: Notify,
    pub groups: Vec<Group>,
    next_client: AtomicU64,
}

/// One worker group's backend connections, by (node, RESP3).
#[derive(Default)]
pub struct Group {
    conns: Mutex<HashMap<(Addr, bool), Arc<NodeConns>>>,
}

impl Shared {
    pub fn new(opts: Options) -> Shared {
        let groups = (0..opts.threads).map(|_| Group::default()).collect();
        Shared {
            opts,
            topo: ArcSwap::from_pointee(Topology::default()),
            stats: Stats::default(),
            refresh: Notify::new(),
            groups,
            next_client: AtomicU64::new(1),
        }
    }

    /// The connections of `group` to `addr`, opened on first use.
    pub fn conns(&self, group: usize, addr: &Addr, resp3: bool) -> Arc<NodeConns> {
        let g = &self.groups[group % self.groups.len()];
        let mut map = g.conns.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((addr.clone(), resp3)).or_insert_with(|| NodeConns::spawn(addr.clone(), &self.opts, resp3)).clone()
    }

    /// Every node this proxy has connections to, with the group-summed state, for INFO.
    pub fn node_states(&self) -> Vec<(Addr, bool, u64, u64)> {
        let mut out: std::collections::BTreeMap<Addr, (bool, u64, u64)> = Default::default();
        for g in &self.groups {
            let map = g.conns.lock().unwrap_or_else(|e| e.into_inner());
            for ((addr, _), c) in map.iter() {
                let e = out.entry(addr.clone()).or_default();
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

/// The proxy on the current runtime, until `stop` completes.
pub async fn serve(opts: Options, stop: impl std::future::Future<Output = ()>) -> Result<(), ProxyError> {
    let listen = opts.listen.clone();
    let listener =
        TcpListener::bind(&listen).await.map_err(|source| ProxyError::Listen { addr: listen.clone(), source })?;
    let sh = Arc::new(Shared::new(opts));
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
    tracing::info!(listen = %listen, "slotway proxy ready");
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(stop);
    let mut next_group = 0usize;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            r = listener.accept() => match r {
                Ok((sock, _)) => {
                    let group = next_group % sh.groups.len();
                    next_group = next_group.wrapping_add(1);
                    tokio::spawn(session::handle(sock, sh.clone(), group, stop_rx.clone()));
                }
                Err(e) => {
                    // Out of descriptors and the like: wait a little instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining clients");
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + DRAIN;
    while Stats::get(&sh.stats.clients) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    refresher.abort();
    Ok(())
}
