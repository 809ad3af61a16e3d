//! `slotway up` end to end, through the built binary and the real `redis-cli`: the cluster forms,
//! `redis-cli -c` reads and writes keys on every master, SIGINT stops it cleanly, and a second run
//! on the same directory is the same cluster (same node ids, `cluster_state:ok` again). The proxy
//! `up` starts in front of the cluster serves a plain `redis-cli -p <proxy port>` (no `-c`).

mod support;

use slotway::cluster::key_slot;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BANNER_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `slotway up`; killed on drop so a failing test leaves nothing behind.
struct Up {
    child: Child,
    /// stdout and stderr lines, as they come.
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Up {
    /// `up` on `port`..; its proxy on a free port unless `extra` says otherwise.
    fn start(dir: &std::path::Path, port: u16, extra: &[&str]) -> Up {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if !extra.contains(&"--proxy-port") && !extra.contains(&"--no-proxy") {
            args.extend(["--proxy-port".to_string(), support::free_port().to_string()]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_slotway"))
            .args(["up", "--port", &port.to_string(), "--dir"])
            .arg(dir)
            .args(&args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn slotway up");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let tx2 = tx.clone();
        std::thread::spawn(move || BufReader::new(out).lines().map_while(Result::ok).for_each(|l| drop(tx.send(l))));
        std::thread::spawn(move || BufReader::new(err).lines().map_while(Result::ok).for_each(|l| drop(tx2.send(l))));
        Up { child, lines, seen: Vec::new() }
    }

    /// Output lines until one contains `needle`, bounded; panics with everything seen so far.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(l.clone());
                if l.contains(needle) {
                    return l;
                }
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // Output may still be in flight; give the readers a moment.
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                panic!("slotway up exited ({st}) before printing {needle:?}; output:\n{}", self.seen.join("\n"));
            }
        }
        panic!("no {needle:?} from slotway up within {timeout:?}; output:\n{}", self.seen.join("\n"));
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("run kill");
        assert!(st.success(), "kill {sig} failed");
    }

    /// Waits (bounded) for the process to end.
    fn exit_status(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(l);
                }
                return st;
            }
            assert!(Instant::now() < deadline, "slotway up still running {timeout:?} after the signal");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A base port whose three client ports and three bus ports are free. Chosen in 20000-25000, below
/// the kernel's ephemeral range (so the bus ports +10000 stay below it too), varied per run.
fn free_base() -> u16 {
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0) ^ std::process::id();
    for i in 0..200u32 {
        let base = 20000 + ((seed.wrapping_add(i.wrapping_mul(7919))) % 5000) as u16;
        let ports = (0..3).flat_map(|k| [base + k, base + k + 10000]);
        let held: Vec<_> = ports.map(|p| TcpListener::bind(("127.0.0.1", p))).collect();
        if held.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no free port range found");
}

/// `redis-cli [-c] -p port args...`, stdout trimmed; bounded by coreutils `timeout`.
fn cli(cluster: bool, port: u16, args: &[&str]) -> String {
    let mut cmd = Command::new("timeout");
    cmd.args(["10", "redis-cli"]);
    if cluster {
        cmd.arg("-c");
    }
    let out = cmd.args(["-p", &port.to_string()]).args(args).output().expect("redis-cli must be installed");
    assert!(out.status.success(), "redis-cli {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn info_field(text: &str, key: &str) -> String {
    text.lines().find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(':')).unwrap_or("").to_string()
}

fn assert_cluster_ok(port: u16) {
    let info = cli(false, port, &["CLUSTER", "INFO"]);
    assert_eq!(info_field(&info, "cluster_state"), "ok", "{info}");
    assert_eq!(info_field(&info, "cluster_known_nodes"), "3", "{info}");
    assert_eq!(info_field(&info, "cluster_size"), "3", "{info}");
    assert_eq!(info_field(&info, "cluster_slots_assigned"), "16384", "{info}");
    assert_eq!(info_field(&info, "cluster_slots_ok"), "16384", "{info}");
}

/// One key per master: the node at `base + i` owns redis-cli's i-th third of the slots.
fn keys_per_master() -> Vec<(String, u16)> {
    let owner = |slot: u16| match slot {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    };
    let mut out: Vec<Option<(String, u16)>> = vec![None; 3];
    for i in 0..1000 {
        let k = format!("up-key:{i}");
        let slot = key_slot(k.as_bytes());
        let o = owner(slot);
        if out[o].is_none() {
            out[o] = Some((k, slot));
        }
    }
    out.into_iter().map(|k| k.expect("a key for every master")).collect()
}

#[test]
fn up_forms_serves_stops_and_restarts() {
    assert!(support::redis_available(), "redis-server is not installed: run scripts/test, which installs it");
    let dir = support::tempdir::Dir::new("up");
    let base = free_base();
    let ports = [base, base + 1, base + 2];

    let proxy_port = support::free_port();
    let mut up = Up::start(dir.path(), base, &["--proxy-port", &proxy_port.to_string()]);
    let ready = up.wait_for("cluster ready", BANNER_TIMEOUT);
    assert!(ready.contains("(formed)"), "first run must form the cluster: {ready}");
    let connect = up.wait_for("connect:", Duration::from_secs(5));
    assert_eq!(connect.trim(), format!("connect: redis-cli -p {proxy_port}"), "{connect}");
    let direct = up.wait_for("straight to the nodes", Duration::from_secs(5));
    assert!(direct.contains(&format!("redis-cli -c -p {base}")), "{direct}");

    for &p in &ports {
        assert_cluster_ok(p);
    }
    let slots = cli(false, base, &["CLUSTER", "NODES"]);
    for (i, range) in ["0-5460", "5461-10922", "10923-16383"].iter().enumerate() {
        let line = slots.lines().find(|l| l.contains(&format!(":{}@", ports[i]))).expect("a line per node");
        assert!(line.ends_with(range), "node {} should own {range}: {line}", ports[i]);
    }
    let ids: Vec<String> = ports.iter().map(|&p| cli(false, p, &["CLUSTER", "MYID"])).collect();
    assert!(ids.iter().all(|id| id.len() == 40), "{ids:?}");

    // Written through the first node, read through the last: redis-cli follows MOVED both times.
    for (i, (key, slot)) in keys_per_master().iter().enumerate() {
        assert_eq!(cli(true, base, &["SET", key, &format!("value-{i}")]), "OK");
        assert_eq!(cli(true, base + 2, &["GET", key]), format!("value-{i}"));
        // The key really lives on its owner, and another node redirects there.
        assert_eq!(cli(false, ports[i], &["GET", key]), format!("value-{i}"));
        let other = ports[(i + 1) % 3];
        let moved = cli(false, other, &["GET", key]);
        assert!(moved.contains(&format!("MOVED {slot} 127.0.0.1:{}", ports[i])), "{moved}");
    }

    // Through the proxy, a plain client sees one Redis: keys of every master, a cross-slot MGET.
    let keys = keys_per_master();
    for (i, (key, _)) in keys.iter().enumerate() {
        assert_eq!(cli(false, proxy_port, &["SET", key, &format!("proxied-{i}")]), "OK");
        assert_eq!(cli(false, ports[i], &["GET", key]), format!("proxied-{i}"), "stored on its owner");
    }
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let mget = cli(false, proxy_port, &[&["MGET"][..], &names].concat());
    assert_eq!(mget, "proxied-0\nproxied-1\nproxied-2");

    up.signal("-INT");
    let st = up.exit_status(STOP_TIMEOUT);
    assert!(st.success(), "exit after SIGINT: {st}; output:\n{}", up.seen.join("\n"));
    assert!(up.seen.iter().any(|l| l.contains("slotway: stopped")), "{}", up.seen.join("\n"));
    for &p in &ports {
        assert!(std::net::TcpStream::connect(("127.0.0.1", p)).is_err(), "port {p} still open after the stop");
        assert!(std::net::TcpStream::connect(("127.0.0.1", proxy_port)).is_err(), "proxy still open after the stop");
        let conf = std::fs::read_to_string(dir.path().join(format!("node-{p}/nodes.conf"))).expect("nodes.conf");
        assert_eq!(conf.lines().filter(|l| !l.starts_with("vars ")).count(), 3, "{conf}");
    }
    drop(up);

    // Same directory: the same cluster comes back.
    let mut up = Up::start(dir.path(), base, &[]);
    let ready = up.wait_for("cluster ready", BANNER_TIMEOUT);
    assert!(ready.contains("(rejoined from nodes.conf)"), "{ready}");
    let again: Vec<String> = ports.iter().map(|&p| cli(false, p, &["CLUSTER", "MYID"])).collect();
    assert_eq!(again, ids, "node ids must survive a restart");
    for &p in &ports {
        assert_cluster_ok(p);
    }
    assert_eq!(cli(true, base + 1, &["SET", "after-restart", "yes"]), "OK");
    assert_eq!(cli(true, base, &["GET", "after-restart"]), "yes");

    up.signal("-TERM");
    let st = up.exit_status(STOP_TIMEOUT);
    assert!(st.success(), "exit after SIGTERM: {st}; output:\n{}", up.seen.join("\n"));
}

#[test]
fn up_refuses_busy_ports() {
    let dir = support::tempdir::Dir::new("up-busy");
    let base = free_base();
    let _held = TcpListener::bind(("127.0.0.1", base + 1)).expect("hold a port");
    let mut up = Up::start(dir.path(), base, &[]);
    let line = up.wait_for("already in use", Duration::from_secs(10));
    assert!(line.contains(&format!("port {}", base + 1)), "{line}");
    let st = up.exit_status(Duration::from_secs(5));
    assert_eq!(st.code(), Some(1));
    // Nothing was started: the other ports stay free.
    assert!(std::net::TcpStream::connect(("127.0.0.1", base)).is_err());
}

#[test]
fn up_refuses_a_busy_proxy_port() {
    let dir = support::tempdir::Dir::new("up-busy-proxy");
    let base = free_base();
    let held = TcpListener::bind(("127.0.0.1", 0)).expect("hold a port");
    let port = held.local_addr().expect("addr").port();
    let mut up = Up::start(dir.path(), base, &["--proxy-port", &port.to_string()]);
    let line = up.wait_for("already in use", Duration::from_secs(10));
    assert!(line.contains(&format!("port {port} (proxy port)")) && line.contains("--no-proxy"), "{line}");
    let st = up.exit_status(Duration::from_secs(5));
    assert_eq!(st.code(), Some(1));
    assert!(std::net::TcpStream::connect(("127.0.0.1", base)).is_err());
}
