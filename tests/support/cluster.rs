//! Local clusters for end-to-end tests: N nodes of one kind (Debian's real redis-server or a slotway
//! node) on loopback, formed and changed with the unmodified `redis-cli --cluster` tool.
//!
//! Ports are picked below the kernel's ephemeral range (so an outgoing connection never steals one)
//! with the bus port (+10000) free too; a node that still fails to bind is retried on other ports.
//! Every process is killed when its handle drops; every wait is bounded and panics with what it saw.

/// One scenario, two tests: `both!(scenario, name_redis, name_slotway)` runs `scenario(Kind)` against
/// a real Redis cluster and against a slotway cluster.
#[allow(unused_macros)]
macro_rules! both {
    ($scenario:ident, $redis:ident, $slotway:ident) => {
        #[test]
        fn $redis() {
            assert!(
                $crate::support::redis_available(),
                "redis-server is not installed: run scripts/test, which installs it"
            );
            $scenario($crate::support::cluster::Kind::Redis);
        }
        #[test]
        fn $slotway() {
            $scenario($crate::support::cluster::Kind::Slotway);
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both;

use super::conn::parse;
use super::tempdir;
use slotway::resp::{frame_len, Frame};
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Short, so that failure detection and tests are fast; gossip still settles in well under a second.
pub const NODE_TIMEOUT_MS: u64 = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Redis,
    Slotway,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Slotway => "slotway",
        }
    }
}

/// Ports handed out by this test process, so parallel tests never pick the same one.
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static SEED: AtomicU64 = AtomicU64::new(0);

/// A port P in 12000..22000 with P and P+10000 bindable right now and not handed out before.
fn pick_port() -> u16 {
    let mut seed = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ (std::process::id() as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let p = 12000 + (seed % 10000) as u16;
        if taken.contains(&p) {
            continue;
        }
        let ok = TcpListener::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok();
        if ok {
            taken.insert(p);
            return p;
        }
    }
    panic!("no free port pair (P, P+10000) found in 12000..22000");
}

/// One cluster node process with its own directory (nodes.conf, log), kept across restarts.
pub struct Node {
    pub kind: Kind,
    pub port: u16,
    dir: tempdir::Dir,
    child: Option<Child>,
    /// More server arguments (`--requirepass pw`), kept across restarts.
    extra: Vec<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Node {
    /// Starts a fresh cluster-enabled node, retrying on other ports if the chosen pair was taken
    /// between the check and the bind (other test processes share the machine).
    pub fn start(kind: Kind) -> Node {
        Node::start_with(kind, &[])
    }

    /// Like [`Node::start`] with more server arguments; a `--requirepass` among them is what
    /// [`Node::cmd`] and the `redis-cli --cluster` calls of [`Cluster`] authenticate with.
    pub fn start_with(kind: Kind, extra: &[&str]) -> Node {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempdir::Dir::new(kind.name());
            let mut node = Node { kind, port: pick_port(), dir, child: None, extra: extra.clone() };
            match node.spawn() {
                Ok(()) => return node,
                Err(e) => last = e,
            }
        }
        panic!("could not start a {} cluster node: {last}", kind.name());
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    pub fn nodes_conf(&self) -> PathBuf {
        self.dir.path().join("nodes.conf")
    }

    fn spawn(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let timeout = NODE_TIMEOUT_MS.to_string();
        let log =
            File::options().create(true).append(true).open(self.log_path()).map_err(|e| format!("open log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("dup log: {e}"))?;
        let common = [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &timeout,
        ];
        let mut cmd = match self.kind {
            Kind::Redis => {
                let mut c = Command::new("redis-server");
                c.args(common).arg("--dir").arg(self.dir.path()).args(&self.extra);
                c
            }
            Kind::Slotway => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_slotway"));
                // No backtrace in the log: a startup error must show as its one line in `log_tail`.
                c.arg("node")
                    .args(common)
                    .arg("--dir")
                    .arg(self.dir.path())
                    .args(&self.extra)
                    .env("NO_COLOR", "1")
                    .env("RUST_BACKTRACE", "0");
                c
            }
        };
        let mut child = cmd
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.kind.name()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && TcpStream::connect(("127.0.0.1", self.port + 10000)).is_ok()
            {
                // Both ports listen; a node that lost either to someone else exits at once, so
                // give it a moment to do so before calling it started.
                std::thread::sleep(Duration::from_millis(50));
                if let Ok(Some(st)) = child.try_wait() {
                    return Err(format!("exited right after start ({st}): {}", self.log_tail(20)));
                }
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(st)) = child.try_wait() {
                return Err(format!("exited early ({st}): {}", self.log_tail(20)));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not listen on {} within 10s: {}", self.port, self.log_tail(20)));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, no chance to save anything: what survives is what was already in nodes.conf.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again on the same port and directory (so from the same nodes.conf).
    pub fn restart(&mut self) {
        self.kill();
        let mut last = String::new();
        // The old sockets are gone with the process, but give the port a few tries anyway.
        for _ in 0..20 {
            match self.spawn() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("{} node on {} did not restart: {last}", self.kind.name(), self.port);
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The running process's id (for SIGSTOP/SIGCONT in tests), none after [`Node::kill`].
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The last lines of the node's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        // Redis's memory-overcommit warning is noise here.
        let all: Vec<&str> = text.lines().filter(|l| !l.contains("overcommit")).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The node's `--requirepass`, if it was started with one.
    pub fn password(&self) -> Option<&str> {
        self.extra.windows(2).find(|w| w[0] == "--requirepass").map(|w| w[1].as_str())
    }

    pub fn cmd(&self, args: &[&str]) -> Result<Frame, String> {
        query_as(self.port, self.password(), args)
    }

    /// A command whose reply is a bulk or simple string (CLUSTER INFO, NODES, MYID).
    pub fn text(&self, args: &[&str]) -> Result<String, String> {
        match self.cmd(args)? {
            Frame::Bulk(b) | Frame::Simple(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            Frame::Error(e) => Err(format!("{args:?} -> error {}", String::from_utf8_lossy(&e))),
            other => Err(format!("{args:?} -> unexpected {other:?}")),
        }
    }

    /// DBSIZE; panics (naming the node) on anything but an integer reply.
    pub fn dbsize(&self) -> i64 {
        match self.cmd(&["DBSIZE"]) {
            Ok(Frame::Integer(n)) => n,
            other => panic!("{}: DBSIZE on {}: {other:?}", self.kind.name(), self.port),
        }
    }

    pub fn myid(&self) -> String {
        self.text(&["CLUSTER", "MYID"]).unwrap_or_else(|e| panic!("CLUSTER MYID on {}: {e}", self.port))
    }

    /// The `cluster_state` field of CLUSTER INFO, or why it could not be read.
    pub fn cluster_state(&self) -> Result<String, String> {
        let info = self.text(&["CLUSTER", "INFO"])?;
        info.lines()
            .find_map(|l| l.strip_prefix("cluster_state:"))
            .map(|s| s.trim().to_string())
            .ok_or_else(|| format!("no cluster_state in {info:?}"))
    }

    /// CLUSTER NODES parsed into lines of fields.
    pub fn nodes(&self) -> Result<Vec<NodeLine>, String> {
        Ok(self.text(&["CLUSTER", "NODES"])?.lines().filter(|l| !l.is_empty()).map(NodeLine::parse).collect())
    }
}

/// One line of CLUSTER NODES.
#[derive(Clone, Debug)]
pub struct NodeLine {
    pub id: String,
    pub addr: String,
    pub flags: Vec<String>,
    pub master: String,
    pub config_epoch: String,
    pub link: String,
    pub slots: Vec<String>,
    pub raw: String,
}

impl NodeLine {
    pub fn parse(line: &str) -> NodeLine {
        let f: Vec<&str> = line.split(' ').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("").to_string();
        NodeLine {
            id: get(0),
            addr: get(1),
            flags: get(2).split(',').map(str::to_string).collect(),
            master: get(3),
            config_epoch: get(6),
            link: get(7),
            slots: f.iter().skip(8).map(|s| s.to_string()).collect(),
            raw: line.to_string(),
        }
    }
    pub fn is_myself(&self) -> bool {
        self.flags.iter().any(|f| f == "myself")
    }
    /// How many slots this line says the node owns (ranges and single slots; not migrations).
    pub fn slot_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !s.starts_with('['))
            .map(|s| match s.split_once('-') {
                Some((a, b)) => b.parse::<usize>().unwrap_or(0) + 1 - a.parse::<usize>().unwrap_or(0),
                None => 1,
            })
            .sum()
    }
}

/// One command on a fresh connection with a short timeout; never panics.
pub fn query(port: u16, args: &[&str]) -> Result<Frame, String> {
    query_as(port, None, args)
}

/// [`query`] after `AUTH password` when one is given (its reply is skipped; a refused AUTH shows
/// as the command's NOAUTH).
pub fn query_as(port: u16, password: Option<&str>, args: &[&str]) -> Result<Frame, String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
        .map_err(|e| format!("connect {port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut req = Vec::new();
    if let Some(p) = password {
        req.extend_from_slice(&super::conn::encode(&[b"AUTH", p.as_bytes()]));
    }
    let a: Vec<&[u8]> = args.iter().map(|x| x.as_bytes()).collect();
    req.extend_from_slice(&super::conn::encode(&a));
    s.write_all(&req).map_err(|e| format!("write {port}: {e}"))?;
    let mut skip = usize::from(password.is_some());
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        while let Ok(Some(n)) = frame_len(&buf) {
            if skip == 0 {
                return Ok(parse(&buf[..n]));
            }
            skip -= 1;
            buf.drain(..n);
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err(format!("{port} closed the connection after {args:?}")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read {port} after {args:?}: {e}")),
        }
    }
}

/// What a `redis-cli` run printed and how it ended.
#[derive(Debug)]
pub struct CliOut {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl CliOut {
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            if self.timed_out { " (killed: timed out)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

/// Runs a program with a wall-clock bound; output is drained on threads so it never blocks.
pub fn run_bounded(program: &str, args: &[String], timeout: Duration) -> CliOut {
    let mut child = Command::new(program)
        .args(args)
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() > deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let code = status.and_then(|s| s.code());
    CliOut { ok: code == Some(0) && !timed_out, code, stdout, stderr, timed_out }
}

/// `redis-cli --cluster <sub> <args...>`, bounded by `timeout`.
pub fn cli_cluster(sub: &str, args: &[&str], timeout: Duration) -> CliOut {
    let mut a = vec!["--cluster".to_string(), sub.to_string()];
    a.extend(args.iter().map(|s| s.to_string()));
    run_bounded("redis-cli", &a, timeout)
}

/// N nodes of one kind formed into a cluster by `redis-cli --cluster create`.
pub struct Cluster {
    pub kind: Kind,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Starts `masters` nodes, creates the cluster (no replicas) and waits for `cluster_state:ok`
    /// on every node.
    pub fn create(kind: Kind, masters: usize) -> Cluster {
        Cluster::create_with(&vec![kind; masters])
    }

    /// Like `create`, one node of each listed kind: real Redis and slotway nodes in one cluster
    /// show that the bus and MIGRATE payloads are Redis's own. `kind` (for new nodes and messages)
    /// is the first one's.
    pub fn create_with(kinds: &[Kind]) -> Cluster {
        Cluster::create_nodes(kinds, 0, &[])
    }

    /// Like `create`, every node started with `extra` server arguments (`--requirepass pw`).
    pub fn create_with_args(kind: Kind, masters: usize, extra: &[&str]) -> Cluster {
        Cluster::create_nodes(&vec![kind; masters], 0, extra)
    }

    /// `masters * (1 + replicas)` nodes of one kind made into a cluster by `--cluster create
    /// --cluster-replicas <replicas>` (redis-cli picks which nodes become replicas); waits for
    /// `cluster_state:ok` everywhere, not for the replicas' first sync.
    pub fn create_replicated(kind: Kind, masters: usize, replicas: usize) -> Cluster {
        Cluster::create_nodes(&vec![kind; masters * (1 + replicas)], replicas, &[])
    }

    fn create_nodes(kinds: &[Kind], replicas: usize, extra: &[&str]) -> Cluster {
        let kind = kinds[0];
        let nodes: Vec<Node> = kinds.iter().map(|&k| Node::start_with(k, extra)).collect();
        let cluster = Cluster { kind, nodes };
        let addrs: Vec<String> = cluster.nodes.iter().map(Node::addr).collect();
        let mut args: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let replicas = replicas.to_string();
        args.extend(["--cluster-replicas", &replicas, "--cluster-yes"]);
        let auth = cluster.nodes[0].password().map(str::to_string);
        if let Some(p) = &auth {
            args.extend(["-a", p.as_str(), "--no-auth-warning"]);
        }
        let out = cli_cluster("create", &args, Duration::from_secs(20));
        assert!(out.ok, "{kinds:?}: redis-cli --cluster create failed: {}\n{}", out.describe(), cluster.logs());
        cluster.wait_ok(Duration::from_secs(20));
        cluster
    }

    /// Keys held by all nodes together.
    pub fn dbsize_total(&self) -> i64 {
        self.nodes.iter().map(Node::dbsize).sum()
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Starts a fresh empty node of the cluster's kind (not yet met) and keeps it with the others.
    pub fn start_empty_node(&mut self) -> usize {
        self.nodes.push(Node::start(self.kind));
        self.nodes.len() - 1
    }

    /// Starts an empty node, joins it with `--cluster add-node`, and waits until every node knows it and
    /// `--cluster check` is clean; returns its index.
    pub fn add_empty_node(&mut self) -> usize {
        let kind = self.kind;
        let new = self.start_empty_node();
        let out = cli_cluster("add-node", &[&self.node(new).addr(), &self.node(0).addr()], Duration::from_secs(30));
        assert!(out.ok, "{kind:?}: add-node failed: {}\n{}", out.describe(), self.logs());
        // rebalance and reshard refuse a cluster whose nodes do not agree yet: wait for gossip to spread
        // the newcomer.
        let id = self.node(new).myid();
        let total = self.nodes.len();
        self.wait_for(Duration::from_secs(15), "every node knowing the new node", |c| {
            for n in &c.nodes {
                let lines = n.nodes()?;
                if !lines
                    .iter()
                    .any(|l| l.id == id && l.link == "connected" && !l.flags.iter().any(|f| f.contains("fail")))
                {
                    return Err(format!("node {} does not see {id} yet: {lines:?}", n.port));
                }
                if lines.len() != total {
                    return Err(format!("node {} sees {} nodes, not {total}", n.port, lines.len()));
                }
            }
            Ok(())
        });
        // A node that just joined keeps cluster_state:fail for a moment (Redis's rejoin delay), and a
        // MIGRATE into it gets CLUSTERDOWN until then.
        self.wait_ok(Duration::from_secs(15));
        self.wait_check_clean(0, Duration::from_secs(15), "after add-node");
        self.wait_check_clean(new, Duration::from_secs(15), "after add-node, seen from the new node");
        new
    }

    /// The last log lines of every node, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} node {} log ---\n{}", n.kind.name(), n.port, n.log_tail(15)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until every node reports `cluster_state:ok`.
    pub fn wait_ok(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let states: Vec<(u16, Result<String, String>)> =
                self.nodes.iter().map(|n| (n.port, n.cluster_state())).collect();
            if states.iter().all(|(_, s)| matches!(s, Ok(x) if x == "ok")) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{:?}: cluster_state did not become ok on every node within {timeout:?}: {states:?}\n{}",
                    self.kind,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `redis-cli --cluster check` against node `i`.
    pub fn check(&self, i: usize) -> CliOut {
        let addr = self.nodes[i].addr();
        let mut args = vec![addr.as_str()];
        if let Some(p) = self.nodes[i].password() {
            args.extend(["-a", p, "--no-auth-warning"]);
        }
        cli_cluster("check", &args, Duration::from_secs(20))
    }

    /// Re-runs `--cluster check` until it is clean (gossip needs a moment after a change).
    pub fn wait_check_clean(&self, i: usize, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.check(i);
            if check_is_clean(&out) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{:?} {what}: --cluster check not clean within {timeout:?}: {}\n{}",
                    self.kind,
                    out.describe(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Runs `f` until it returns Ok or `timeout` passes; panics with the last error.
    pub fn wait_for<T>(&self, timeout: Duration, what: &str, mut f: impl FnMut(&Cluster) -> Result<T, String>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            match f(self) {
                Ok(v) => return v,
                Err(e) if Instant::now() > deadline => {
                    panic!("{:?}: {what} not within {timeout:?}: {e}\n{}", self.kind, self.logs())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `redis://` URLs of every node, for cluster clients.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("redis://127.0.0.1:{}/", n.port)).collect()
    }
}

/// Exit 0, all slots covered, nodes agree, no `[ERR]` / `[WARNING]` lines.
pub fn check_is_clean(out: &CliOut) -> bool {
    out.ok
        && out.stdout.contains("[OK] All nodes agree about slots configuration.")
        && out.stdout.contains("[OK] All 16384 slots covered.")
        && !out.stdout.contains("[ERR]")
        && !out.stdout.contains("[WARNING]")
}
