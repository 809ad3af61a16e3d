//! `slotway up`: a local cluster on loopback in one process, for trying slotway and for
//! developing against a real cluster without a script.
//!
//! Each node runs on its own OS thread through [`crate::node::run`], the very code `slotway node`
//! runs (its own current-thread runtime, its own keyspace, its own client and bus ports), so a node
//! here behaves exactly like a separate process; only the process boundary is shared. The cluster
//! is formed the way `redis-cli --cluster create` forms one, through the nodes' client ports with
//! CLUSTER commands, so `up` exercises the same paths the real tools use.
//!
//! Once the cluster is ready, a `slotway proxy` runs in front of it on its own thread and runtime
//! (the same code `slotway proxy` runs), so a client that knows nothing about clusters needs one
//! address: `redis-cli -p <proxy port>`.
//!
//! Every node keeps its files in `<dir>/node-<port>/`; its `nodes.conf` holds its id, epochs and
//! view of the cluster, which is what lets a second run come back as the same cluster. Keys are not
//! persisted yet (no RDB/AOF), so they do not survive a restart.

use crate::cluster::SLOTS;
use crate::node::config::Config;
use crate::resp::{frame_len, Frame};
use bytes::Bytes;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Where the nodes listen: loopback only, since `up` is for one machine.
pub const HOST: &str = "127.0.0.1";
pub const DEFAULT_DIR: &str = "./slotway-data";
pub const DEFAULT_PORT: u16 = 7000;
pub const DEFAULT_MASTERS: u16 = 3;
/// The same default as `slotway proxy --listen`, one above a stock Redis's 6379.
pub const DEFAULT_PROXY_PORT: u16 = 6380;
/// Shorter than Redis's 15 s default: on one machine a node that stops answering for 5 s is down.
pub const DEFAULT_NODE_TIMEOUT_MS: u64 = 5000;
/// The bus port is the client port plus this, as in Redis.
pub const BUS_PORT_OFFSET: u16 = 10000;

/// How long the nodes get to bind their ports.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the cluster gets to reach `cluster_state:ok` with every node agreeing. A restarted
/// master waits a few seconds before it turns ok (Redis's rejoin delay), gossip needs a few
/// rounds of one second: tens of seconds is already far too long.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// After a signal, the nodes stop on their own (they get the signal too); a node that has not
/// stopped after this long is sent SHUTDOWN NOSAVE.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// After a signal or a failure, how long the nodes get to stop before `up` gives up on them.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect, read and write timeout of the formation client.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// A reply larger than this from our own node is a bug, not something to buffer.
const MAX_REPLY: usize = 16 << 20;
const POLL: Duration = Duration::from_millis(100);

/// What `slotway up` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Data directory; each node gets `node-<port>/` inside it.
    pub dir: PathBuf,
    /// Client port of the first node; the others follow (port+1, port+2, ...).
    pub port: u16,
    pub masters: u16,
    pub node_timeout_ms: u64,
    /// The proxy's client port; `None` runs the cluster without a proxy.
    pub proxy_port: Option<u16>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dir: PathBuf::from(DEFAULT_DIR),
            port: DEFAULT_PORT,
            masters: DEFAULT_MASTERS,
            node_timeout_ms: DEFAULT_NODE_TIMEOUT_MS,
            proxy_port: Some(DEFAULT_PROXY_PORT),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("{0}")]
    Options(String),
    #[error(
        "port {port} ({role}) is already in use ({source}); stop whatever listens there, or pick other ports with --port"
    )]
    PortInUse { port: u16, role: &'static str, source: std::io::Error },
    #[error("port {port} (proxy port) is already in use ({source}); stop whatever listens there, pick another with --proxy-port, or run without the proxy (--no-proxy)")]
    ProxyPortInUse { port: u16, source: std::io::Error },
    #[error("data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("node on port {port}: bad configuration: {msg}")]
    NodeConfig { port: u16, msg: String },
    #[error("could not start a thread: {0}")]
    Thread(std::io::Error),
    #[error("node on port {port} failed: {msg}")]
    NodeFailed { port: u16, msg: String },
    #[error("node on port {port}: {what}: {source}")]
    Talk { port: u16, what: String, source: std::io::Error },
    #[error("node on port {port} answered {command} with an error: {reply}")]
    Reply { port: u16, command: String, reply: String },
    #[error("node on port {port}: unexpected reply: {msg}")]
    Protocol { port: u16, msg: String },
    #[error(
        "the nodes did not start within {}s: {detail}", START_TIMEOUT.as_secs()
    )]
    NotStarted { detail: String },
    #[error(
        "the cluster did not become ready within {}s: {detail}. If the data directory {dir} holds an \
         older or unfinished cluster, remove it to start over", READY_TIMEOUT.as_secs()
    )]
    NotReady { detail: String, dir: String },
    #[error("nodes on ports {ports} did not stop within {}s; exiting anyway", STOP_TIMEOUT.as_secs())]
    Stuck { ports: String },
    #[error("the proxy on port {port} {msg}")]
    Proxy { port: u16, msg: String },
    #[error("{0} received again while stopping; exiting without waiting for the nodes")]
    Impatient(&'static str),
    /// A signal came while the cluster was starting: not a failure, `run` stops cleanly.
    #[error("interrupted")]
    Interrupted,
}

/// One node of the plan.
#[derive(Debug, Clone)]
struct NodePlan {
    port: u16,
    bus_port: u16,
    dir: PathBuf,
}

/// Starts the cluster, prints where to connect on `out`, and runs until SIGINT or SIGTERM, then
/// stops every node. `Ok` means every node stopped cleanly (also when the signal came during
/// startup).
pub fn run(opts: &Options, out: &mut dyn Write) -> Result<(), UpError> {
    let plans = plan(opts)?;
    check_ports(&plans, opts.proxy_port)?;
    let configs = plans.iter().map(|p| node_config(p, opts)).collect::<Result<Vec<_>, _>>()?;

    let (tx, rx) = mpsc::channel();
    // Before any node exists: from here on SIGINT no longer kills the process outright, so a
    // Ctrl-C at any moment goes through the orderly stop below.
    spawn_signal_watcher(tx.clone())?;
    let mut nodes = Nodes::new(rx, plans.iter().map(|p| p.port).collect());
    for (plan, config) in plans.iter().zip(configs) {
        if let Err(e) = spawn_node(plan.port, config, tx.clone()) {
            nodes.begin_stop(Duration::ZERO);
            nodes.wait_stopped()?;
            return Err(e);
        }
    }
    drop(tx);

    let mut proxy = None;
    match startup(&mut nodes, &plans, opts, &mut proxy, out) {
        Ok(()) | Err(UpError::Interrupted) => {}
        Err(e) => {
            if let Some(p) = proxy.take() {
                p.stop();
            }
            nodes.begin_stop(Duration::ZERO);
            // The startup error is the one worth reporting; a failure to stop only adds noise.
            let _ = nodes.wait_stopped();
            return Err(e);
        }
    }
    let stopped = nodes.wait_stopped();
    // The proxy saw the same signal and is draining its clients; its drain is bounded.
    if let Some(p) = proxy.take() {
        p.stop();
    }
    stopped?;
    if let Some((port, msg)) = nodes.failures.first() {
        return Err(UpError::NodeFailed { port: *port, msg: msg.clone() });
    }
    let _ = writeln!(out, "slotway: stopped; the cluster configuration is kept in {}", opts.dir.display());
    let _ = out.flush();
    Ok(())
}

/// The nodes' ports and directories, or why the options cannot work.
fn plan(opts: &Options) -> Result<Vec<NodePlan>, UpError> {
    if opts.masters == 0 {
        return Err(UpError::Options("--masters must be at least 1".into()));
    }
    if opts.masters > SLOTS {
        return Err(UpError::Options(format!("--masters must be at most {SLOTS}")));
    }
    if opts.port == 0 {
        return Err(UpError::Options("--port must be a fixed port (not 0): the nodes take port, port+1, ...".into()));
    }
    let last = u32::from(opts.port) + u32::from(opts.masters) - 1;
    if last + u32::from(BUS_PORT_OFFSET) > 65535 {
        return Err(UpError::Options(format!(
            "ports {}..{last} leave no room for the bus ports (+{BUS_PORT_OFFSET}); use a --port of at most {}",
            opts.port,
            65535 - u32::from(BUS_PORT_OFFSET) - u32::from(opts.masters) + 1
        )));
    }
    if let Some(p) = opts.proxy_port {
        let taken = |q: u32| (u32::from(opts.port)..=last).contains(&q);
        if p == 0
            || taken(u32::from(p))
            || u32::from(p) >= u32::from(opts.port) + u32::from(BUS_PORT_OFFSET)
                && taken(u32::from(p) - u32::from(BUS_PORT_OFFSET))
        {
            return Err(UpError::Options(format!(
                "--proxy-port {p} must be a fixed port (not 0) outside the nodes' ports {}..{last} and their bus ports",
                opts.port
            )));
        }
    }
    Ok((0..opts.masters)
        .map(|i| {
            let port = opts.port + i;
            NodePlan { port, bus_port: port + BUS_PORT_OFFSET, dir: node_dir(&opts.dir, port) }
        })
        .collect())
}

/// Fails early, naming the port, instead of starting some nodes and failing on the next.
fn check_ports(plans: &[NodePlan], proxy_port: Option<u16>) -> Result<(), UpError> {
    if let Some(port) = proxy_port {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|source| UpError::ProxyPortInUse { port, source })?;
    }
    for (i, p) in plans.iter().enumerate() {
        for (port, role) in [(p.port, "client port"), (p.bus_port, "cluster bus port")] {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|source| UpError::PortInUse {
                port,
                role: if i == 0 && role == "client port" { "client port of the first node" } else { role },
                source,
            })?;
        }
    }
    Ok(())
}

/// The `slotway node` arguments of one node, and its directory created.
fn node_config(p: &NodePlan, opts: &Options) -> Result<Config, UpError> {
    std::fs::create_dir_all(&p.dir).map_err(|source| UpError::DataDir { path: p.dir.display().to_string(), source })?;
    let args: Vec<String> = [
        "--port",
        &p.port.to_string(),
        "--bind",
        HOST,
        "--dir",
        &p.dir.to_string_lossy(),
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        &opts.node_timeout_ms.to_string(),
        // Nodes announce the address clients must use even before a peer tells them their IP
        // (a one-master cluster has no peer).
        "--cluster-announce-ip",
        HOST,
        "--save",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Config::from_args(&args).map_err(|msg| UpError::NodeConfig { port: p.port, msg })
}

enum Event {
    Ready(u16),
    Exited(u16, Result<(), String>),
    Signal(&'static str),
}

/// Sends the node's exit, also when the node thread panics (the guard drops while unwinding).
struct ExitNotice {
    port: u16,
    tx: Sender<Event>,
    result: Option<Result<(), String>>,
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let r = self.result.take().unwrap_or_else(|| Err("the node thread panicked".into()));
        let _ = self.tx.send(Event::Exited(self.port, r));
    }
}

fn spawn_node(port: u16, config: Config, tx: Sender<Event>) -> Result<(), UpError> {
    std::thread::Builder::new()
        .name(format!("node-{port}"))
        .spawn(move || {
            let ready = tx.clone();
            let mut notice = ExitNotice { port, tx, result: None };
            let r = crate::node::run(config, |_| {
                let _ = ready.send(Event::Ready(port));
            });
            notice.result = Some(r.map_err(|e| e.to_string()));
        })
        .map(drop)
        .map_err(UpError::Thread)
}

/// Forwards SIGINT and SIGTERM to `up`'s own loop. The node threads see the same signals (tokio
/// delivers a signal to every listener in the process) and stop by themselves; this watcher lets
/// `up` know that a stop is under way, bound it, and say so.
fn spawn_signal_watcher(tx: Sender<Event>) -> Result<(), UpError> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(UpError::Thread)?;
    // Registered here, not in the thread, so the handlers are in place when this returns.
    let (mut int, mut term) = rt
        .block_on(async {
            Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
        })
        .map_err(UpError::Thread)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    let name = tokio::select! {
                        Some(()) = int.recv() => "SIGINT",
                        Some(()) = term.recv() => "SIGTERM",
                        else => return,
                    };
                    if tx.send(Event::Signal(name)).is_err() {
                        return;
                    }
                }
            })
        })
        .map(drop)
        .map_err(UpError::Thread)
}

/// The running node threads as `up` sees them through their events.
struct Nodes {
    rx: Receiver<Event>,
    ports: Vec<u16>,
    ready: BTreeSet<u16>,
    running: BTreeSet<u16>,
    failures: Vec<(u16, String)>,
    signal: Option<&'static str>,
    /// Set once a stop is under way; stragglers get SHUTDOWN from `kick_at` on.
    stopping: Option<Instant>,
    kick_at: Option<Instant>,
}

impl Nodes {
    fn new(rx: Receiver<Event>, ports: Vec<u16>) -> Nodes {
        let running = ports.iter().copied().collect();
        Nodes {
            rx,
            ports,
            ready: BTreeSet::new(),
            running,
            failures: Vec::new(),
            signal: None,
            stopping: None,
            kick_at: None,
        }
    }

    /// Waits up to `timeout` for one event and records it. A second signal during a stop is
    /// the user insisting: `Err(Impatient)`.
    fn pump(&mut self, timeout: Duration) -> Result<(), UpError> {
        let ev = match self.rx.recv_timeout(timeout) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            // Every sender gone: no node thread and no watcher left to report anything.
            Err(RecvTimeoutError::Disconnected) => {
                self.running.clear();
                return Ok(());
            }
        };
        match ev {
            Event::Ready(port) => {
                self.ready.insert(port);
            }
            Event::Exited(port, r) => {
                self.running.remove(&port);
                if let Err(msg) = r {
                    self.failures.push((port, msg));
                }
            }
            Event::Signal(name) => {
                if self.stopping.is_some() {
                    return Err(UpError::Impatient(name));
                }
                self.signal = Some(name);
                self.begin_stop(STOP_GRACE);
            }
        }
        Ok(())
    }

    /// Drains what has already happened; `Err(Interrupted)` once a signal came, the node's
    /// failure once a node ended on its own.
    fn check(&mut self) -> Result<(), UpError> {
        loop {
            let before = (self.ready.len(), self.running.len(), self.signal.is_some());
            self.pump(Duration::ZERO)?;
            if (self.ready.len(), self.running.len(), self.signal.is_some()) == before {
                break;
            }
        }
        if self.signal.is_some() {
            return Err(UpError::Interrupted);
        }
        if let Some((port, msg)) = self.failures.first() {
            return Err(UpError::NodeFailed { port: *port, msg: msg.clone() });
        }
        if let Some(port) = self.ports.iter().find(|p| !self.running.contains(p)) {
            return Err(UpError::NodeFailed { port: *port, msg: "it stopped while the cluster was starting".into() });
        }
        Ok(())
    }

    fn begin_stop(&mut self, grace: Duration) {
        if self.stopping.is_none() {
            let now = Instant::now();
            self.stopping = Some(now);
            self.kick_at = Some(now + grace);
        }
    }

    /// Runs until every node thread has ended. Outside a stop that is as long as the nodes run
    /// (a node stopped with SHUTDOWN leaves the others running, like separate processes would).
    fn wait_stopped(&mut self) -> Result<(), UpError> {
        while !self.running.is_empty() {
            if let (Some(since), Some(kick)) = (self.stopping, self.kick_at) {
                if since.elapsed() > STOP_TIMEOUT {
                    let ports: Vec<String> = self.running.iter().map(u16::to_string).collect();
                    return Err(UpError::Stuck { ports: ports.join(", ") });
                }
                if Instant::now() >= kick {
                    // Nodes that missed the signal (it came before they listened for it) or that
                    // are stopped because startup failed. Errors are expected: a node may be
                    // exiting right now.
                    for &port in &self.running {
                        let _ = Client::connect(port).and_then(|mut c| c.call(&["SHUTDOWN", "NOSAVE"]));
                    }
                    self.kick_at = Some(Instant::now() + Duration::from_secs(1));
                }
            }
            self.pump(POLL)?;
        }
        Ok(())
    }
}

/// Waits for the nodes to listen, forms or rejoins the cluster, waits until it is ready and
/// prints the banner.
fn startup(
    nodes: &mut Nodes,
    plans: &[NodePlan],
    opts: &Options,
    proxy: &mut Option<ProxyThread>,
    out: &mut dyn Write,
) -> Result<(), UpError> {
    let deadline = Instant::now() + START_TIMEOUT;
    while nodes.ready.len() < plans.len() {
        nodes.check()?;
        if Instant::now() >= deadline {
            let missing: Vec<String> =
                plans.iter().filter(|p| !nodes.ready.contains(&p.port)).map(|p| p.port.to_string()).collect();
            return Err(UpError::NotStarted { detail: format!("ports {} not listening", missing.join(", ")) });
        }
        nodes.pump(POLL)?;
    }
    let ports: Vec<u16> = plans.iter().map(|p| p.port).collect();
    let formed = form(&ports)?;
    let view = wait_ready(nodes, &ports, opts)?;
    if let Some(port) = opts.proxy_port {
        let p = proxy.insert(ProxyThread::spawn(port, &ports)?);
        p.wait_ready(nodes)?;
    }
    print_banner(out, opts, &view, formed);
    Ok(())
}

/// The proxy in front of the local cluster: its own threads and runtimes, stopped
/// by the process's SIGINT/SIGTERM like every node, or by [`ProxyThread::stop`].
struct ProxyThread {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

/// Worker threads of `up`'s proxy: a local cluster for trying things out needs no more.
const PROXY_THREADS: usize = 2;

impl ProxyThread {
    fn spawn(port: u16, node_ports: &[u16]) -> Result<ProxyThread, UpError> {
        let seeds = node_ports.iter().map(|&p| crate::cluster::Addr::new(HOST, p)).collect();
        let opts = crate::proxy::Options::new(format!("{HOST}:{port}"), seeds, PROXY_THREADS);
        // The proxy's control plane; `serve` starts its PROXY_THREADS worker threads itself.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(UpError::Thread)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // Built inside the runtime so the signal handlers are in place before the thread runs.
        let signal = {
            let _in_runtime = rt.enter();
            crate::proxy::server::shutdown_signal()
        };
        let thread = std::thread::Builder::new()
            .name("proxy".into())
            .spawn(move || {
                let stop = async move {
                    tokio::select! {
                        _ = signal => {}
                        _ = rx => {}
                    }
                };
                rt.block_on(crate::proxy::server::serve(opts, stop)).map_err(|e| e.to_string())
            })
            .map_err(UpError::Thread)?;
        Ok(ProxyThread { port, stop: Some(tx), thread: Some(thread) })
    }

    /// Until the proxy routes: its INFO reports every slot covered. Bounded by [`START_TIMEOUT`].
    fn wait_ready(&mut self, nodes: &mut Nodes) -> Result<(), UpError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            nodes.check()?;
            if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
                let r = self.thread.take().map(|t| t.join());
                let msg = match r {
                    Some(Ok(Err(e))) => e,
                    _ => "stopped unexpectedly".into(),
                };
                return Err(UpError::Proxy { port: self.port, msg: format!("did not start: {msg}") });
            }
            let covered = Client::connect(self.port)
                .and_then(|mut c| c.text(&["INFO"]))
                .ok()
                .and_then(|t| info_field(&t, "proxy_topology_slots_covered").map(|v| v == SLOTS.to_string()));
            if covered == Some(true) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(UpError::Proxy {
                    port: self.port,
                    msg: format!("did not see every slot within {}s", START_TIMEOUT.as_secs()),
                });
            }
            nodes.pump(POLL)?;
        }
    }

    fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            if let Ok(Err(e)) = t.join() {
                tracing::warn!("proxy on port {}: {e}", self.port);
            }
        }
    }
}

/// On a fresh data directory (every node alone, no slot assigned) does what `redis-cli --cluster
/// create` does: slots split evenly, distinct config epochs, every node MEETs the first. On a
/// reused directory the nodes know each other from nodes.conf; a node that knows fewer nodes than
/// expected (a run stopped half-way, or `--masters` grown) is MET again. Returns whether the
/// cluster was formed now.
fn form(ports: &[u16]) -> Result<bool, UpError> {
    let mut clients = ports.iter().map(|&p| Client::connect(p)).collect::<Result<Vec<_>, _>>()?;
    let mut infos = Vec::new();
    for c in &mut clients {
        let text = c.text(&["CLUSTER", "INFO"])?;
        let num = |k: &str| info_field(&text, k).and_then(|v| v.parse::<u64>().ok());
        let (Some(assigned), Some(known)) = (num("cluster_slots_assigned"), num("cluster_known_nodes")) else {
            return Err(UpError::Protocol {
                port: c.port,
                msg: format!("CLUSTER INFO without slot/node counts: {text}"),
            });
        };
        infos.push((assigned, known));
    }
    let n = ports.len() as u64;
    let fresh = infos.iter().all(|&(assigned, known)| assigned == 0 && known == 1);
    if fresh {
        for (c, (first, last)) in clients.iter_mut().zip(split_slots(ports.len())) {
            c.call(&["CLUSTER", "ADDSLOTSRANGE", &first.to_string(), &last.to_string()])?;
        }
        for (i, c) in clients.iter_mut().enumerate() {
            c.call(&["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()])?;
        }
    }
    let first = ports[0].to_string();
    for (c, &(_, known)) in clients.iter_mut().zip(&infos).skip(1) {
        if fresh || known < n {
            c.call(&["CLUSTER", "MEET", HOST, &first])?;
        }
    }
    Ok(fresh)
}

/// The slot ranges of `masters` masters, exactly as `redis-cli --cluster create` splits them
/// (float step, rounded ends), so a cluster made by `up` looks like one made by the real tool.
pub fn split_slots(masters: usize) -> Vec<(u16, u16)> {
    let total = SLOTS as usize;
    let masters = masters.clamp(1, total);
    let per = total as f32 / masters as f32;
    let mut cursor = 0.0f32;
    let mut first = 0usize;
    let mut out = Vec::with_capacity(masters);
    for i in 0..masters {
        let mut last = (cursor + per - 1.0).round().max(0.0) as usize;
        if last > total || i == masters - 1 {
            last = total - 1;
        }
        if last < first {
            last = first;
        }
        out.push((first as u16, last as u16));
        first = last + 1;
        cursor += per;
    }
    out
}

/// One line of CLUSTER NODES, the fields `up` looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeLine {
    id: String,
    port: u16,
    flags: String,
    slots: String,
}

fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() < 8 {
                return None;
            }
            let addr = f[1].split(['@', ',']).next()?;
            let port = addr.rsplit_once(':')?.1.parse().ok()?;
            // Slot fields; `[slot->-id]` / `[slot-<-id]` are migrations in progress, not ownership.
            let slots: Vec<&str> = f[8..].iter().copied().filter(|s| !s.starts_with('[')).collect();
            Some(NodeLine { id: f[0].to_string(), port, flags: f[2].to_string(), slots: slots.join(" ") })
        })
        .collect()
}

/// What every node agreed on: one line per node, ordered by port.
struct View {
    nodes: Vec<NodeLine>,
}

/// Polls every node until each says `cluster_state:ok`, knows every node, sees all slots
/// assigned, and all report the same owners; bounded by [`READY_TIMEOUT`].
fn wait_ready(nodes: &mut Nodes, ports: &[u16], opts: &Options) -> Result<View, UpError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        nodes.check()?;
        let why = match cluster_view(ports) {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(reason)) => reason,
            // A node that is slow to answer is one more reason to keep waiting, not a failure;
            // a node that really died shows up in `check`.
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(UpError::NotReady { detail: why, dir: opts.dir.display().to_string() });
        }
        nodes.pump(POLL)?;
    }
}

/// `Ok(Err(reason))` while the cluster is not ready yet.
fn cluster_view(ports: &[u16]) -> Result<Result<View, String>, UpError> {
    let n = ports.len();
    let mut agreed: Option<(u16, Vec<NodeLine>)> = None;
    for &port in ports {
        let mut c = Client::connect(port)?;
        let info = c.text(&["CLUSTER", "INFO"])?;
        let state = info_field(&info, "cluster_state").unwrap_or("?");
        let known = info_field(&info, "cluster_known_nodes").unwrap_or("?");
        let assigned = info_field(&info, "cluster_slots_assigned").unwrap_or("?");
        if state != "ok" || known != n.to_string() || assigned != SLOTS.to_string() {
            return Ok(Err(format!(
                "node {port} reports cluster_state:{state}, cluster_known_nodes:{known} (expected {n}), \
                 cluster_slots_assigned:{assigned}"
            )));
        }
        let mut lines = parse_nodes(&c.text(&["CLUSTER", "NODES"])?);
        if let Some(bad) = lines.iter().find(|l| ["handshake", "fail", "noaddr"].iter().any(|f| l.flags.contains(f))) {
            return Ok(Err(format!("node {port} sees node {} ({}) as {}", bad.port, bad.id, bad.flags)));
        }
        if !lines.iter().any(|l| l.port == port && l.flags.contains("myself")) {
            return Ok(Err(format!("node {port}'s CLUSTER NODES has no myself line on its own port")));
        }
        for l in &mut lines {
            l.flags = l.flags.replace("myself,", "");
        }
        lines.sort_by_key(|l| l.port);
        match &agreed {
            None => agreed = Some((port, lines)),
            Some((first, view)) if *view != lines => {
                return Ok(Err(format!("nodes {first} and {port} do not agree yet on the nodes and their slots")));
            }
            Some(_) => {}
        }
    }
    let nodes = agreed.map(|(_, v)| v).unwrap_or_default();
    if nodes.len() != n || nodes.iter().map(|l| l.port).ne(ports.iter().copied()) {
        let seen: Vec<String> = nodes.iter().map(|l| l.port.to_string()).collect();
        return Ok(Err(format!("the nodes know ports {}, expected {:?}", seen.join(", "), ports)));
    }
    Ok(Ok(View { nodes }))
}

fn print_banner(out: &mut dyn Write, opts: &Options, view: &View, formed: bool) {
    let first = opts.port;
    let last = first + opts.masters - 1;
    let how = if formed { "formed" } else { "rejoined from nodes.conf" };
    let mut s = format!(
        "slotway: cluster ready ({how}): {} master{} on {HOST}:{first}{}, data in {}\n",
        opts.masters,
        if opts.masters == 1 { "" } else { "s" },
        if last > first { format!("-{last}") } else { String::new() },
        opts.dir.display()
    );
    for l in &view.nodes {
        let slots = if l.slots.is_empty() { "no slots".to_string() } else { format!("slots {}", l.slots) };
        s.push_str(&format!("  {HOST}:{}  {}  {}  {slots}\n", l.port, l.id, l.flags));
    }
    match opts.proxy_port {
        Some(p) => {
            s.push_str(&format!("proxy: {HOST}:{p}, one address for the whole cluster\n"));
            s.push_str(&format!("connect: redis-cli -p {p}\n"));
            s.push_str(&format!("  or straight to the nodes (cluster-aware clients): redis-cli -c -p {first}\n"));
        }
        None => s.push_str(&format!("connect: redis-cli -c -p {first}\n")),
    }
    s.push_str(
        "note: keys are kept in memory only (persistence is not there yet): a restart keeps the cluster \
         (node ids, slots), not the keys\n",
    );
    s.push_str("Ctrl-C stops the cluster\n");
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

fn info_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')).map(str::trim)
}

/// A minimal blocking RESP client for talking to our own nodes during startup: one request,
/// one reply, with timeouts; replies parsed by [`crate::resp::frame`].
struct Client {
    port: u16,
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(port: u16) -> Result<Client, UpError> {
        let talk = |what: &str, source| UpError::Talk { port, what: what.into(), source };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| talk("connect", e))?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| talk("set timeout", e))?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| talk("set timeout", e))?;
        let _ = stream.set_nodelay(true);
        Ok(Client { port, stream, buf: Vec::new() })
    }

    /// Sends one command and reads its reply; an error reply is an `Err`.
    fn call(&mut self, args: &[&str]) -> Result<Frame, UpError> {
        let port = self.port;
        let command = args.join(" ");
        let talk = |source| UpError::Talk { port, what: command.clone(), source };
        self.stream.write_all(&Frame::command(args).to_bytes()).map_err(talk)?;
        loop {
            match frame_len(&self.buf) {
                Ok(Some(n)) => {
                    let bytes = Bytes::copy_from_slice(&self.buf[..n]);
                    self.buf.drain(..n);
                    return match Frame::parse(&bytes) {
                        Ok(Some((Frame::Error(e), _))) => {
                            Err(UpError::Reply { port, command, reply: String::from_utf8_lossy(&e).into_owned() })
                        }
                        Ok(Some((f, _))) => Ok(f),
                        Ok(None) => Err(UpError::Protocol { port, msg: "incomplete frame".into() }),
                        Err(e) => Err(UpError::Protocol { port, msg: e.to_string() }),
                    };
                }
                Ok(None) => {}
                Err(e) => return Err(UpError::Protocol { port, msg: e.to_string() }),
            }
            if self.buf.len() > MAX_REPLY {
                return Err(UpError::Protocol {
                    port,
                    msg: format!("reply to {command} larger than {MAX_REPLY} bytes"),
                });
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).map_err(talk)?;
            if n == 0 {
                return Err(talk(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// A command whose reply is text (CLUSTER INFO, CLUSTER NODES).
    fn text(&mut self, args: &[&str]) -> Result<String, UpError> {
        match self.call(args)? {
            f @ (Frame::Bulk(_) | Frame::Simple(_) | Frame::Verbatim(..)) => {
                Ok(String::from_utf8_lossy(f.as_bytes().map(|b| &b[..]).unwrap_or_default()).into_owned())
            }
            other => Err(UpError::Protocol { port: self.port, msg: format!("{} answered {other:?}", args.join(" ")) }),
        }
    }
}

/// Where the node on `port` keeps its files (nodes.conf now, the data files once persistence lands).
pub fn node_dir(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("node-{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_split_like_redis_cli() {
        assert_eq!(split_slots(3), vec![(0, 5460), (5461, 10922), (10923, 16383)]);
        assert_eq!(split_slots(1), vec![(0, 16383)]);
        // redis-cli --cluster create with 4 and 5 masters.
        assert_eq!(split_slots(4), vec![(0, 4095), (4096, 8191), (8192, 12287), (12288, 16383)]);
        assert_eq!(split_slots(5), vec![(0, 3276), (3277, 6553), (6554, 9829), (9830, 13106), (13107, 16383)]);
        for n in [2, 6, 7, 100, 1000] {
            let r = split_slots(n);
            assert_eq!(r.len(), n);
            assert_eq!(r[0].0, 0);
            assert_eq!(r[n - 1].1, 16383);
            assert!(r.windows(2).all(|w| w[1].0 == w[0].1 + 1 && w[0].0 <= w[0].1));
        }
    }

    #[test]
    fn plan_checks_ports() {
        let o = |port, masters| Options { port, masters, ..Options::default() };
        let p = plan(&o(7000, 3)).unwrap();
        assert_eq!(
            p.iter().map(|p| (p.port, p.bus_port)).collect::<Vec<_>>(),
            [(7000, 17000), (7001, 17001), (7002, 17002)]
        );
        assert!(p[1].dir.ends_with("node-7001"));
        assert!(plan(&o(7000, 0)).is_err());
        assert!(plan(&o(0, 3)).is_err());
        assert!(plan(&o(55534, 3)).is_err());
        assert!(plan(&o(55533, 3)).is_ok());
        let px = |proxy_port| Options { proxy_port: Some(proxy_port), ..Options::default() };
        assert!(plan(&px(7001)).is_err());
        assert!(plan(&px(17002)).is_err());
        assert!(plan(&px(0)).is_err());
        assert!(plan(&px(7003)).is_ok());
        assert!(plan(&Options { proxy_port: None, ..Options::default() }).is_ok());
    }

    #[test]
    fn nodes_lines() {
        let text = "e7d1 127.0.0.1:7001@17001 master - 0 1 2 connected 5461-10922\n\
                    a1b2 127.0.0.1:7000@17000,host myself,master - 0 0 1 connected 0-5460 [5460->-e7d1]\n\
                    bad\n";
        let l = parse_nodes(text);
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].port, l[0].slots.as_str()), (7001, "5461-10922"));
        assert_eq!((l[1].port, l[1].flags.as_str(), l[1].slots.as_str()), (7000, "myself,master", "0-5460"));
        assert_eq!(info_field("cluster_state:ok\r\ncluster_known_nodes:3\r\n", "cluster_known_nodes"), Some("3"));
        assert_eq!(info_field("cluster_state:ok\r\n", "cluster_size"), None);
    }
}
