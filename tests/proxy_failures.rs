//! A dead or stalled node behind the proxy, against a real Redis 7 cluster and a slotway cluster
//! (3 masters, `cluster-require-full-coverage no` so the healthy masters keep serving): its own
//! requests fail fast with an error naming it, other clients' requests to healthy nodes go on at
//! normal latency, a client pipelining into a stalled node is held back (bounded, not buffered),
//! the circuit breaker opens and stops connection attempts, and everything recovers when the node
//! comes back (or, with replicas, when the cluster fails over: real Redis only until slotway nodes
//! replicate). The proxy runs in-process (`proxy::server::serve`) so each test sets its timeouts.

mod support;

use slotway::cluster::{key_slot, Addr};
use slotway::proxy::{server, Options};
use slotway::resp::Frame;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::cluster::both;
use support::cluster::{Cluster, Kind, Node};
use support::conn::encode;
use support::Conn;

both!(killed_node_fails_fast, killed_node_fails_fast_redis, killed_node_fails_fast_slotway);
both!(stalled_node_times_out, stalled_node_times_out_redis, stalled_node_times_out_slotway);
both!(breaker_opens_and_closes, breaker_opens_and_closes_redis, breaker_opens_and_closes_slotway);

/// Needs replicas: real Redis only until slotway nodes replicate.
#[test]
fn failover_reroutes_redis() {
    assert!(support::redis_available(), "redis-server is not installed: run scripts/test, which installs it");
    failover_reroutes(Kind::Redis);
}

/// The proxy on its own runtime thread, stopped (gracefully) and joined on drop.
struct InProc {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for InProc {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl InProc {
    /// One worker group (so every client shares the same backend connections: the strictest
    /// setting for head-of-line blocking), seeded with every node of `c`; ready once a SET routes.
    fn start(c: &Cluster, tweak: impl FnOnce(&mut Options)) -> InProc {
        let port = support::free_port();
        let seeds = c.nodes.iter().map(|n| Addr::new("127.0.0.1", n.port)).collect();
        let mut opts = Options::new(format!("127.0.0.1:{port}"), seeds, 1);
        tweak(&mut opts);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async {
                server::serve(opts, async {
                    let _ = rx.await;
                })
                .await
                .expect("proxy serve")
            });
        });
        let p = InProc { port, stop: Some(tx), thread: Some(thread) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut k) = Conn::try_connect(port) {
                if k.cmd(&["SET", "proxy:ready", "1"]) == Frame::Simple("OK".into()) {
                    return p;
                }
            }
            assert!(Instant::now() < deadline, "in-process proxy never routed a SET");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }
}

/// SIGSTOP until dropped (SIGCONT), so a failing test never leaves a frozen server behind.
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Stopped {
        signal("-STOP", pid);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

fn signal(sig: &str, pid: u32) {
    let st = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().expect("run kill");
    assert!(st.success(), "kill {sig} {pid}: {st}");
}

fn pid_of(n: &Node) -> u32 {
    let info = n.text(&["INFO", "server"]).expect("INFO server");
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no process_id in INFO:\n{info}"))
}

/// A 3-master cluster whose healthy masters keep serving their slots while one is down.
fn cluster(kind: Kind) -> Cluster {
    let c = Cluster::create(kind, 3);
    c.wait_ok(Duration::from_secs(30));
    c.nodes.iter().for_each(allow_partial_coverage);
    c
}

fn allow_partial_coverage(n: &Node) {
    let r = n.cmd(&["CONFIG", "SET", "cluster-require-full-coverage", "no"]);
    assert_eq!(r, Ok(Frame::Simple("OK".into())), "CONFIG SET on {}", n.addr());
}

/// `count` keys whose slots node `n` owns (from its own CLUSTER NODES line).
fn keys_of(n: &Node, count: usize) -> Vec<String> {
    let me = n.nodes().expect("CLUSTER NODES").into_iter().find(|l| l.is_myself()).expect("myself line");
    let ranges: Vec<(u16, u16)> = me
        .slots
        .iter()
        .filter(|s| !s.starts_with('['))
        .map(|s| match s.split_once('-') {
            Some((a, b)) => (a.parse().expect("slot"), b.parse().expect("slot")),
            None => (s.parse().expect("slot"), s.parse().expect("slot")),
        })
        .collect();
    let keys: Vec<String> = (0..)
        .map(|i| format!("k:{i}"))
        .filter(|k| {
            let s = key_slot(k.as_bytes());
            ranges.iter().any(|&(a, b)| (a..=b).contains(&s))
        })
        .take(count)
        .collect();
    assert_eq!(keys.len(), count);
    keys
}

fn text(f: &Frame) -> String {
    match f {
        Frame::Error(e) | Frame::Simple(e) | Frame::Bulk(e) => String::from_utf8_lossy(e).into_owned(),
        other => format!("{other:?}"),
    }
}

fn is_ok(f: &Frame) -> bool {
    *f == Frame::Simple("OK".into())
}

/// The proxy's error for a request to `addr` that it failed itself.
fn names_node(f: &Frame, addr: &str) -> bool {
    matches!(f, Frame::Error(e) if e.starts_with(format!("ERR slotway proxy: node {addr}: ").as_bytes()))
}

/// A client's traffic to healthy nodes, run until `stop`: every reply must be right; returns the
/// number of round trips and the slowest one.
fn healthy_traffic(port: u16, keys: &[String], stop: &AtomicBool) -> (usize, Duration) {
    let mut k = Conn::connect(port);
    let (mut n, mut slowest) = (0usize, Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        let key = &keys[n % keys.len()];
        let t = Instant::now();
        let set = k.cmd(&["SET", key, &n.to_string()]);
        let get = k.cmd(&["GET", key]);
        slowest = slowest.max(t.elapsed());
        assert!(is_ok(&set), "SET {key} to a healthy node: {}", text(&set));
        assert_eq!(text(&get), n.to_string(), "GET {key} from a healthy node");
        n += 1;
    }
    (n, slowest)
}

/// The node line of INFO for `addr`.
fn info_node_line(k: &mut Conn, addr: &str) -> String {
    let info = text(&k.cmd(&["INFO"]));
    let needle = format!("addr={addr},");
    info.lines().find(|l| l.contains(&needle)).unwrap_or_else(|| panic!("no INFO line for {addr}:\n{info}")).to_string()
}

fn info_field(line: &str, field: &str) -> String {
    line.split([',', ':'])
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
        .unwrap_or_else(|| panic!("no {field} in {line}"))
        .to_string()
}

fn ops(k: &mut Conn) -> u64 {
    let info = text(&k.cmd(&["INFO"]));
    info.lines()
        .find_map(|l| l.strip_prefix("proxy_ops:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no proxy_ops in INFO:\n{info}"))
}

/// Waits (bounded) until a SET and GET of every key in `keys` go through the proxy.
fn wait_recovered(k: &mut Conn, keys: &[String], what: &str) -> Duration {
    let t = Instant::now();
    let deadline = t + Duration::from_secs(30);
    loop {
        let last = keys.iter().map(|key| k.cmd(&["SET", key, "back"])).find(|r| !is_ok(r));
        match last {
            None => {
                for key in keys {
                    assert_eq!(text(&k.cmd(&["GET", key])), "back", "{what}: GET {key}");
                }
                return t.elapsed();
            }
            Some(r) => assert!(Instant::now() < deadline, "{what}: traffic did not recover; last: {}", text(&r)),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGKILL one master: its keys fail fast (far under the request timeout) with an error naming
/// it, while another client's traffic to the other masters goes on without an error; after a
/// restart its keys work again.
fn killed_node_fails_fast(kind: Kind) {
    let mut c = cluster(kind);
    let p = InProc::start(&c, |_| {});
    let timeout = Options::default().request_timeout;
    let dead = c.node(1).addr();
    let dead_keys = keys_of(c.node(1), 10);
    let mut live_keys = keys_of(c.node(0), 10);
    live_keys.extend(keys_of(c.node(2), 10));
    let mut a = p.conn();
    for key in &dead_keys {
        assert!(is_ok(&a.cmd(&["SET", key, "v"])), "{kind:?}: SET before the kill");
    }
    c.nodes[1].kill();
    let stop = AtomicBool::new(false);
    let mut failed_in = Duration::ZERO;
    let (done, slowest) = std::thread::scope(|s| {
        let other = s.spawn(|| healthy_traffic(p.port, &live_keys, &stop));
        for key in &dead_keys {
            let t = Instant::now();
            let r = a.cmd(&["GET", key]);
            let took = t.elapsed();
            assert!(names_node(&r, &dead), "{kind:?}: GET {key} on the killed node: {}", text(&r));
            assert!(took < timeout, "{kind:?}: GET {key} took {took:?}, the request timeout is {timeout:?}");
            failed_in = failed_in.max(took);
        }
        stop.store(true, Ordering::Relaxed);
        other.join().expect("healthy traffic")
    });
    eprintln!("{kind:?}: the killed node's requests failed within {failed_in:?}");
    assert!(done > 0, "{kind:?}: the other client got nothing done");
    eprintln!("{kind:?}: during the kill: {done} healthy round trips, slowest {slowest:?}");
    assert!(slowest < timeout, "{kind:?}: a healthy node's round trip took {slowest:?}");
    c.nodes[1].restart();
    allow_partial_coverage(c.node(1));
    let took = wait_recovered(&mut a, &dead_keys, &format!("{kind:?} after restart"));
    eprintln!("{kind:?}: recovered {took:?} after the restart");
}

/// SIGSTOP one master (it accepts connections but never answers): a client pipelining into it is
/// held back by the per-client bound, its requests fail after about the request timeout naming
/// the node, another client's requests to the other masters keep their normal latency meanwhile,
/// and after SIGCONT the node's keys work again.
fn stalled_node_times_out(kind: Kind) {
    let c = cluster(kind);
    let timeout = Duration::from_millis(1500);
    let per_client = 64;
    let p = InProc::start(&c, |o| {
        o.request_timeout = timeout;
        o.max_inflight_per_client = per_client;
        o.max_inflight_per_conn = 16;
        o.breaker_failures = 3;
    });
    let slow = c.node(1).addr();
    let slow_keys = keys_of(c.node(1), 50);
    let mut live_keys = keys_of(c.node(0), 10);
    live_keys.extend(keys_of(c.node(2), 10));
    let mut a = p.conn();
    let mut watcher = p.conn();
    let pid = pid_of(c.node(1));
    let stopped = Stopped::new(pid);
    // One client, a healthy node's request pipelined before a stalled one's: the first reply is
    // ready at once and must not wait for the second.
    let mut m = p.conn();
    let t = Instant::now();
    m.send_raw(&[encode(&[b"GET", live_keys[0].as_bytes()]), encode(&[b"GET", slow_keys[0].as_bytes()])].concat());
    let r = support::conn::parse(&m.read_reply().expect("reply"));
    let first = t.elapsed();
    assert!(!matches!(r, Frame::Error(_)), "{kind:?}: GET from a healthy node: {}", text(&r));
    let r = support::conn::parse(&m.read_reply().expect("reply"));
    let second = t.elapsed();
    assert!(names_node(&r, &slow) && text(&r).contains("request timed out"), "{kind:?}: {}", text(&r));
    eprintln!("{kind:?}: pipelined healthy + stalled: replies after {first:?} and {second:?}");
    assert!(first < timeout, "{kind:?}: the healthy reply waited {first:?} for the stalled one");
    // Big writes first: the stopped node's socket buffers fill up and the proxy's write to it
    // blocks; that write is bounded by the request timeout too.
    let mut w = p.conn();
    let big = vec![b'x'; 1 << 20];
    let mut batch = Vec::new();
    for key in &slow_keys[..12] {
        batch.extend(encode(&[b"SET", key.as_bytes(), &big]));
    }
    let t = Instant::now();
    w.send_raw(&batch);
    for key in &slow_keys[..12] {
        let r = support::conn::parse(&w.read_reply().expect("a reply to the big SET"));
        assert!(names_node(&r, &slow), "{kind:?}: 1 MB SET {key} to the stalled node: {}", text(&r));
    }
    let took = t.elapsed();
    eprintln!("{kind:?}: 12 MB of SETs to the stalled node failed after {took:?}");
    assert!(took < 3 * timeout, "{kind:?}: the blocked write took {took:?}, the request timeout is {timeout:?}");
    let before = ops(&mut watcher);
    // A pipeline far larger than the per-client bound, all to the stalled node.
    const PIPELINE: usize = 2000;
    let mut batch = Vec::new();
    for i in 0..PIPELINE {
        let key = &slow_keys[i % slow_keys.len()];
        batch.extend(encode(&[b"GET", key.as_bytes()]));
    }
    let sent = Instant::now();
    a.send_raw(&batch);
    std::thread::sleep(timeout / 4);
    // The proxy stopped reading: it parsed what its bounded queues hold (the node connection's
    // written and queued requests, the client's pending replies), not the whole pipeline.
    let parsed = ops(&mut watcher) - before - 1;
    eprintln!("{kind:?}: {parsed} of {PIPELINE} pipelined requests parsed while the node is stalled");
    assert!(
        parsed >= 1 && parsed <= 2 * per_client as u64,
        "{kind:?}: {parsed} of {PIPELINE} requests to a stalled node parsed; the per-client bound is {per_client}"
    );
    let stop = AtomicBool::new(false);
    let (replies, (done, slowest)) = std::thread::scope(|s| {
        let other = s.spawn(|| healthy_traffic(p.port, &live_keys, &stop));
        let mut replies = Vec::with_capacity(PIPELINE);
        a.stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        for _ in 0..PIPELINE {
            let raw = a.read_reply().expect("a reply for every pipelined request");
            replies.push((support::conn::parse(&raw), sent.elapsed()));
        }
        stop.store(true, Ordering::Relaxed);
        (replies, other.join().expect("healthy traffic"))
    });
    let (first, first_at) = &replies[0];
    assert!(names_node(first, &slow), "{kind:?}: first reply: {}", text(first));
    assert!(text(first).contains("request timed out"), "{kind:?}: first reply: {}", text(first));
    // It waited for the timeout (a little clock slack), not for several of them.
    assert!(
        *first_at >= timeout - Duration::from_millis(50) && *first_at < 2 * timeout,
        "{kind:?}: first error after {first_at:?}, the request timeout is {timeout:?}"
    );
    for (r, _) in &replies {
        assert!(names_node(r, &slow), "{kind:?}: a request to the stalled node: {}", text(r));
    }
    let kinds = |needle: &str| replies.iter().filter(|(r, _)| text(r).contains(needle)).count();
    let last_at = replies.last().map(|r| r.1).unwrap_or_default();
    eprintln!(
        "{kind:?}: {PIPELINE} requests to the stalled node: {} timed out, {} not sent, {} circuit open; first after {first_at:?}, last after {last_at:?}",
        kinds("request timed out"),
        kinds("not sent"),
        kinds("circuit breaker open")
    );
    assert!(kinds("circuit breaker open") > 0, "{kind:?}: the breaker never opened");
    assert!(done > 0, "{kind:?}: the other client got nothing done");
    eprintln!("{kind:?}: during the stall: {done} healthy round trips, slowest {slowest:?}");
    assert!(slowest < timeout, "{kind:?}: a healthy node's round trip took {slowest:?} during the stall");
    drop(stopped);
    let took = wait_recovered(&mut a, &slow_keys[..5], &format!("{kind:?} after SIGCONT"));
    eprintln!("{kind:?}: recovered {took:?} after SIGCONT");
    assert_eq!(info_field(&info_node_line(&mut watcher, &slow), "breaker"), "closed");
}

/// After a few consecutive failures the breaker opens: the node's requests fail at once with the
/// open-circuit error and the proxy stops trying to connect (its error count stands still), the
/// other nodes' breakers stay closed; after a restart the probe gets through and it closes.
fn breaker_opens_and_closes(kind: Kind) {
    let mut c = cluster(kind);
    let p = InProc::start(&c, |o| {
        o.breaker_failures = 3;
        o.breaker_open = Duration::from_secs(3);
    });
    let dead = c.node(1).addr();
    let dead_keys = keys_of(c.node(1), 5);
    let mut k = p.conn();
    let mut watcher = p.conn();
    for key in &dead_keys {
        assert!(is_ok(&k.cmd(&["SET", key, "v"])), "{kind:?}: SET before the kill");
    }
    assert_eq!(info_field(&info_node_line(&mut watcher, &dead), "breaker"), "closed");
    c.nodes[1].kill();
    let open = (0..20)
        .map(|_| k.cmd(&["GET", &dead_keys[0]]))
        .inspect(|r| assert!(names_node(r, &dead), "{kind:?}: {}", text(r)))
        .position(|r| text(&r).contains("circuit breaker open after 3 consecutive failures"));
    assert!(open.is_some(), "{kind:?}: the breaker did not open within 20 requests");
    let line = info_node_line(&mut watcher, &dead);
    assert_eq!(info_field(&line, "breaker"), "open", "{kind:?}: {line}");
    let errors = info_field(&line, "errors");
    for key in &dead_keys {
        let r = k.cmd(&["GET", key]);
        assert!(text(&r).contains("circuit breaker open"), "{kind:?}: GET {key} with the breaker open: {}", text(&r));
        assert!(names_node(&r, &dead), "{kind:?}: {}", text(&r));
    }
    let line = info_node_line(&mut watcher, &dead);
    assert_eq!(info_field(&line, "errors"), errors, "{kind:?}: the proxy kept trying the node: {line}");
    for other in [0, 2] {
        let line = info_node_line(&mut watcher, &c.node(other).addr());
        assert_eq!(info_field(&line, "breaker"), "closed", "{kind:?}: {line}");
    }
    c.nodes[1].restart();
    allow_partial_coverage(c.node(1));
    let took = wait_recovered(&mut k, &dead_keys, &format!("{kind:?} after restart"));
    eprintln!("{kind:?}: breaker closed and traffic back {took:?} after the restart");
    let line = info_node_line(&mut watcher, &dead);
    assert_eq!(info_field(&line, "breaker"), "closed", "{kind:?}: {line}");
}

/// SIGKILL a master that has a replica: its requests fail fast naming it (the breaker opens) until
/// the cluster promotes the replica; the refresh picks up the new owner and the same requests go
/// there, without the old master ever coming back.
fn failover_reroutes(kind: Kind) {
    let mut c = Cluster::create_replicated(kind, 3, 1);
    c.nodes.iter().for_each(allow_partial_coverage);
    // A replica that has not finished its first sync may not take over.
    c.wait_for(Duration::from_secs(30), "every replica synced", |c| {
        for n in &c.nodes {
            let info = n.text(&["INFO", "replication"])?;
            if info.contains("role:slave") && !info.contains("master_link_status:up") {
                return Err(format!("{}: {info}", n.addr()));
            }
        }
        Ok(())
    });
    let p = InProc::start(&c, |_| {});
    let lines = c.node(0).nodes().expect("CLUSTER NODES");
    let victim = lines
        .iter()
        .find(|l| l.flags.iter().any(|f| f == "master") && l.slot_count() > 0)
        .expect("a master with slots")
        .addr
        .split('@')
        .next()
        .expect("addr")
        .to_string();
    let i = c.nodes.iter().position(|n| n.addr() == victim).expect("victim is one of ours");
    let keys = keys_of(c.node(i), 5);
    let mut k = p.conn();
    for key in &keys {
        assert!(is_ok(&k.cmd(&["SET", key, "v"])), "{kind:?}: SET before the kill");
    }
    c.nodes[i].kill();
    let t = Instant::now();
    let deadline = t + Duration::from_secs(30);
    let mut failures = 0;
    loop {
        let r = k.cmd(&["SET", &keys[0], "after"]);
        if is_ok(&r) {
            break;
        }
        assert!(names_node(&r, &victim), "{kind:?}: before the failover: {}", text(&r));
        failures += 1;
        if Instant::now() >= deadline {
            let mut w = p.conn();
            let info = text(&w.cmd(&["INFO"]));
            let nodes = c.node((i + 1) % c.nodes.len()).text(&["CLUSTER", "NODES"]);
            panic!("{kind:?}: no failover seen within 30 s; last: {}\n{info}\n{nodes:?}", text(&r));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("{kind:?}: {failures} fast failures, then the new master took the traffic after {:?}", t.elapsed());
    assert!(failures > 0, "{kind:?}: the kill went unnoticed");
    for key in &keys {
        assert!(is_ok(&k.cmd(&["SET", key, "after"])), "{kind:?}: SET {key} after the failover");
        assert_eq!(text(&k.cmd(&["GET", key])), "after", "{kind:?}: GET {key} after the failover");
    }
    let new_owner = c.node((i + 1) % c.nodes.len()).text(&["CLUSTER", "NODES"]).expect("CLUSTER NODES");
    assert!(
        new_owner.lines().any(|l| l.contains(&format!("{victim}@")) && l.contains("fail")),
        "{kind:?}: the old master is not marked failed:\n{new_owner}"
    );
}
