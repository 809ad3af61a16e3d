//! The proxy's observability against a real Redis 7 cluster and a slotway cluster: /metrics
//! counts every request per command exactly (errors and rejections included), with hdrhistogram
//! quantiles and per-node lines; the nodes' own INFO commandstats agree with what the proxy says
//! it forwarded; INFO sections select like Redis's; /healthz tells a working proxy from one without
//! a cluster; garbage on the admin port gets 400 or a close and never hurts the proxy; SIGTERM
//! lets a request in flight finish, refuses new connections and exits 0.

mod support;

use slotway::resp::Frame;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::cluster::{both, query, Cluster, Kind};
use support::proxy::Proxy;
use support::{free_port, Conn};

both!(metrics_count_every_command, metrics_count_every_command_redis, metrics_count_every_command_slotway);
both!(info_sections_and_commandstats, info_sections_and_commandstats_redis, info_sections_and_commandstats_slotway);
both!(healthz_ok_with_a_cluster, healthz_ok_with_a_cluster_redis, healthz_ok_with_a_cluster_slotway);
both!(sigterm_drains_inflight, sigterm_drains_inflight_redis, sigterm_drains_inflight_slotway);

fn cluster(kind: Kind) -> Cluster {
    let c = Cluster::create(kind, 3);
    c.wait_ok(Duration::from_secs(30));
    c
}

fn ok() -> Frame {
    Frame::Simple("OK".into())
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

// --- a minimal HTTP client and Prometheus text parser ---

struct HttpReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl HttpReply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Sends `raw`, reads until the server closes; None when it closed without a response.
fn http_raw(port: u16, raw: &[u8]) -> Option<HttpReply> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to admin port");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = s.write_all(raw);
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    if all.is_empty() {
        return None;
    }
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").expect("response head ends");
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    assert!(head.starts_with("HTTP/1.1 "), "{head}");
    Some(HttpReply { status, head, body: all[end + 4..].to_vec() })
}

fn http_get(port: u16, path: &str) -> HttpReply {
    http_raw(port, format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n").as_bytes())
        .unwrap_or_else(|| panic!("no response to GET {path}"))
}

/// Series name + sorted labels -> value.
type Samples = HashMap<(String, BTreeMap<String, String>), f64>;

fn parse_prometheus(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap_or_else(|| panic!("bad labels in {line:?}"));
                let labels = rest
                    .split("\",")
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line:?}"));
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
        };
        assert!(out.insert((name, labels), value).is_none(), "duplicate series {line:?}");
    }
    out
}

fn sample(s: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    s.get(&(name.to_string(), labels)).copied()
}

/// A counter's value, 0 when the series does not exist yet (nothing counted).
fn count(s: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(s, name, labels).unwrap_or(0.0)
}

fn scrape(admin: u16) -> (Samples, String) {
    let r = http_get(admin, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = r.text();
    (parse_prometheus(&text), text)
}

/// Every `cmdstat_<cmd>` line of an INFO commandstats text: cmd -> field -> value.
fn cmdstats(text: &str) -> HashMap<String, HashMap<String, f64>> {
    text.lines()
        .filter_map(|l| l.trim_end().strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (cmd, fields) = l.split_once(':')?;
            let fields = fields
                .split(',')
                .filter_map(|f| f.split_once('=').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
                .collect();
            Some((cmd.to_string(), fields))
        })
        .collect()
}

fn info_text(f: Frame) -> String {
    String::from_utf8_lossy(f.as_bytes().unwrap_or_else(|| panic!("INFO reply {f:?}"))).into_owned()
}

/// `field` of `cmd` in INFO commandstats summed over the cluster's masters.
fn nodes_cmdstat(c: &Cluster, cmd: &str, field: &str) -> f64 {
    (0..c.nodes.len())
        .map(|i| {
            let text = info_text(c.node(i).cmd(&["INFO", "commandstats"]).expect("node INFO"));
            cmdstats(&text).get(cmd).and_then(|f| f.get(field)).copied().unwrap_or(0.0)
        })
        .sum()
}

fn signal(sig: &str, pid: u32) {
    let st = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().expect("run kill");
    assert!(st.success(), "kill -{sig} {pid}");
}

/// Sends SIGCONT on drop, so a failing test never leaves a node stopped.
struct Resume(u32);
impl Drop for Resume {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0.to_string()]).status();
    }
}

// --- scenarios ---

fn metrics_count_every_command(kind: Kind) {
    let c = cluster(kind);
    let admin = free_port();
    let p = Proxy::start_with(&c, &["--admin", &format!("127.0.0.1:{admin}")]);
    let (before, _) = scrape(admin);
    let node_set = nodes_cmdstat(&c, "set", "calls");
    let node_get = nodes_cmdstat(&c, "get", "calls");
    let node_lpush_failed = nodes_cmdstat(&c, "lpush", "failed_calls");

    let mut k = p.conn();
    for i in 0..10 {
        assert_eq!(k.cmd(&["SET", &format!("m:{i}"), "v"]), ok());
    }
    for i in 0..7 {
        assert_eq!(k.cmd(&["GET", &format!("m:{i}")]), bulk("v"));
    }
    for _ in 0..3 {
        assert!(matches!(k.cmd(&["GET"]), Frame::Error(_)));
    }
    assert_eq!(k.cmd(&["SET", "m:str", "x"]), ok());
    for _ in 0..2 {
        let r = k.cmd(&["LPUSH", "m:str", "y"]);
        assert!(matches!(&r, Frame::Error(e) if e.starts_with(b"WRONGTYPE")), "{r:?}");
    }
    for _ in 0..4 {
        assert_eq!(k.cmd(&["PING"]), Frame::Simple("PONG".into()));
    }
    for _ in 0..2 {
        assert!(matches!(k.cmd(&["MGET", "m:0", "m:1", "m:2", "m:3"]), Frame::Array(_)));
    }
    assert!(matches!(k.cmd(&["NOSUCHCOMMAND", "x"]), Frame::Error(_)));
    let (after, text) = scrape(admin);

    let delta = |name: &str, cmd: &str| count(&after, name, &[("cmd", cmd)]) - count(&before, name, &[("cmd", cmd)]);
    let cmds = "slotway_proxy_commands_total";
    let errs = "slotway_proxy_command_errors_total";
    let rej = "slotway_proxy_commands_rejected_total";
    let lat = "slotway_proxy_command_latency_seconds";
    for (cmd, n, e, r) in [
        ("set", 11.0, 0.0, 0.0),
        ("get", 10.0, 3.0, 3.0),
        ("lpush", 2.0, 2.0, 0.0),
        ("ping", 4.0, 0.0, 0.0),
        ("mget", 2.0, 0.0, 0.0),
    ] {
        assert_eq!((delta(cmds, cmd), delta(errs, cmd), delta(rej, cmd)), (n, e, r), "{cmd}:\n{text}");
        // The summary counts the requests that ran (not the rejected ones).
        assert_eq!(delta(&format!("{lat}_count"), cmd), n - r, "{cmd} latency count:\n{text}");
    }
    assert!(!text.contains("cmd=\"nosuchcommand\""), "{text}");
    let processed = "slotway_proxy_commands_processed_total";
    assert_eq!(count(&after, processed, &[]) - count(&before, processed, &[]), 30.0, "{text}");

    // Quantiles from the histograms: all four, ordered, positive, within the histogram's range.
    for cmd in ["set", "get", "lpush", "ping", "mget"] {
        let qs: Vec<f64> = ["0.5", "0.9", "0.99", "0.999"]
            .iter()
            .map(|q| {
                sample(&after, lat, &[("cmd", cmd), ("quantile", q)]).unwrap_or_else(|| panic!("{cmd} q{q}:\n{text}"))
            })
            .collect();
        assert!(qs[0] > 0.0 && qs.windows(2).all(|w| w[0] <= w[1]) && qs[3] <= 60.0, "{cmd} {qs:?}");
        let sum = sample(&after, &format!("{lat}_sum"), &[("cmd", cmd)]).unwrap_or(0.0);
        assert!(sum > 0.0, "{cmd} sum {sum}");
    }
    assert!(text.contains(&format!("# TYPE {lat} summary")), "{text}");

    // What the proxy says it forwarded is what the nodes say they ran.
    assert_eq!(nodes_cmdstat(&c, "set", "calls") - node_set, 11.0, "nodes' SET calls");
    assert_eq!(
        nodes_cmdstat(&c, "get", "calls") - node_get,
        7.0,
        "nodes' GET calls (the rejected never left the proxy)"
    );
    assert_eq!(nodes_cmdstat(&c, "lpush", "failed_calls") - node_lpush_failed, 2.0, "nodes' failed LPUSH calls");

    // One line per master, with its slots and a live connection; the slots add up.
    let mut slots = 0.0;
    for n in &c.nodes {
        let node = n.addr();
        let conns = sample(&after, "slotway_proxy_node_connections", &[("node", &node)]);
        assert!(conns.is_some_and(|v| v >= 1.0), "{node} connections {conns:?}:\n{text}");
        let s = sample(&after, "slotway_proxy_node_slots", &[("node", &node)]).unwrap_or(0.0);
        assert!(s > 0.0, "{node} slots:\n{text}");
        slots += s;
        assert!(sample(&after, "slotway_proxy_node_inflight_requests", &[("node", &node)]).is_some(), "{text}");
        assert_eq!(sample(&after, "slotway_proxy_node_errors_total", &[("node", &node)]), Some(0.0), "{text}");
        assert_eq!(sample(&after, "slotway_proxy_node_breaker_state", &[("node", &node)]), Some(0.0), "{text}");
    }
    assert_eq!(slots, 16384.0);
    assert_eq!(sample(&after, "slotway_proxy_topology_slots_covered", &[]), Some(16384.0));
    assert_eq!(sample(&after, "slotway_proxy_topology_shards", &[]), Some(3.0));
    assert!(sample(&after, "slotway_proxy_topology_refreshes_total", &[]).is_some_and(|v| v >= 1.0));
    assert!(sample(&after, "slotway_proxy_topology_epoch", &[]).is_some_and(|v| v >= 1.0));
    assert_eq!(sample(&after, "slotway_proxy_listeners", &[]), Some(1.0));
    assert!(sample(&after, "slotway_proxy_connected_clients", &[]).is_some_and(|v| v >= 1.0));
    for t in ["moved", "ask"] {
        assert_eq!(sample(&after, "slotway_proxy_redirects_total", &[("type", t)]), Some(0.0), "{text}");
    }
    for t in ["tryagain", "clusterdown"] {
        assert_eq!(sample(&after, "slotway_proxy_cluster_errors_total", &[("type", t)]), Some(0.0), "{text}");
    }
}

/// Which `# Section` headers an INFO text has, lowercased, in order.
fn headers(text: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.strip_prefix("# ")).map(|h| h.trim().to_ascii_lowercase()).collect()
}

fn info_sections_and_commandstats(kind: Kind) {
    let c = cluster(kind);
    let admin = free_port();
    let p = Proxy::start_with(&c, &["--admin", &format!("127.0.0.1:{admin}")]);
    let mut k = p.conn();
    for i in 0..5 {
        assert_eq!(k.cmd(&["SET", &format!("i:{i}"), "v"]), ok());
        assert_eq!(k.cmd(&["GET", &format!("i:{i}")]), bulk("v"));
    }
    assert!(matches!(k.cmd(&["GET"]), Frame::Error(_)));
    assert!(matches!(k.cmd(&["INCR", "i:0"]), Frame::Error(_)));

    let info = |k: &mut Conn, args: &[&str]| {
        let mut a = vec!["INFO"];
        a.extend_from_slice(args);
        info_text(k.cmd(&a))
    };
    // Section selection as Redis 7 does it, checked against a real Redis node for the sections
    // both have; the proxy's own `# Proxy` section is a default one.
    let common = ["server", "clients", "stats", "commandstats", "latencystats"];
    let redis = support::redis_server(&[]);
    let mut r = redis.conn();
    for args in [
        &[][..],
        &["default"],
        &["all"],
        &["everything"],
        &["commandstats"],
        &["SERVER", "Clients"],
        &["nosuch"],
        &["default", "latencystats"],
        &["latencystats", "server"],
    ] {
        let ours = headers(&info(&mut k, args));
        let theirs: Vec<String> =
            headers(&info(&mut r, args)).into_iter().filter(|h| common.contains(&h.as_str())).collect();
        let ours_common: Vec<String> = ours.iter().filter(|h| common.contains(&h.as_str())).cloned().collect();
        assert_eq!(ours_common, theirs, "INFO {args:?}");
        let proxy_section = args.is_empty() || args.iter().any(|a| ["default", "all", "everything"].contains(a));
        assert_eq!(ours.contains(&"proxy".to_string()), proxy_section, "INFO {args:?}: {ours:?}");
    }
    assert_eq!(k.cmd(&["INFO", "nosuch"]), bulk(""));
    let text = info(&mut k, &["server", "clients"]);
    assert!(text.starts_with("# Server\r\n") && text.contains("\r\n\r\n# Clients\r\n") && text.ends_with("\r\n"));
    assert!(!text.ends_with("\r\n\r\n"), "{text:?}");

    // Commandstats: Redis's fields, and the same numbers as /metrics.
    let stats = cmdstats(&info(&mut k, &["commandstats"]));
    let get = &stats["get"];
    assert_eq!((get["calls"], get["rejected_calls"], get["failed_calls"]), (5.0, 1.0, 0.0), "{stats:?}");
    let incr = &stats["incr"];
    assert_eq!((incr["calls"], incr["rejected_calls"], incr["failed_calls"]), (1.0, 0.0, 1.0), "{stats:?}");
    assert!(get["usec"] >= 0.0 && get.contains_key("usec_per_call"), "{stats:?}");
    let (m, text) = scrape(admin);
    for cmd in ["get", "set", "incr"] {
        let s = &stats[cmd];
        assert_eq!(
            count(&m, "slotway_proxy_commands_total", &[("cmd", cmd)]),
            s["calls"] + s["rejected_calls"],
            "{text}"
        );
        assert_eq!(
            count(&m, "slotway_proxy_command_errors_total", &[("cmd", cmd)]),
            s["failed_calls"] + s["rejected_calls"],
            "{text}"
        );
    }
    // Latencystats: p50 <= p99 <= p99.9 in microseconds, for commands that ran.
    let lat = info(&mut k, &["latencystats"]);
    let line = lat.lines().find(|l| l.starts_with("latency_percentiles_usec_get:")).unwrap_or_else(|| panic!("{lat}"));
    let ps: Vec<f64> = line
        .split_once(':')
        .map(|(_, v)| {
            v.split(',').map(|kv| kv.split_once('=').and_then(|(_, x)| x.parse().ok()).unwrap_or(-1.0)).collect()
        })
        .unwrap_or_default();
    assert!(line.contains(":p50=") && line.contains(",p99=") && line.contains(",p99.9="), "{line}");
    assert!(ps.len() == 3 && ps[0] > 0.0 && ps[0] <= ps[1] && ps[1] <= ps[2], "{line}");
}

fn healthz_ok_with_a_cluster(kind: Kind) {
    let c = cluster(kind);
    let admin = free_port();
    let _p = Proxy::start_with(&c, &["--admin", &format!("127.0.0.1:{admin}")]);
    let r = http_get(admin, "/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    // HEAD: the same head, no body.
    let r = http_raw(admin, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("HEAD response");
    assert_eq!((r.status, r.header("content-length").as_deref(), r.body.len()), (200, Some("3"), 0));
    assert_eq!(http_get(admin, "/nope").status, 404);
}

/// A proxy whose seed is a port nobody listens on, with an admin port: it starts (a sidecar may
/// start before its cluster) but is not healthy.
fn proxy_without_cluster() -> (Proxy, u16) {
    let (port, admin, seed) = (free_port(), free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_slotway"))
        .args(["proxy", "--listen", &format!("127.0.0.1:{port}"), "--threads", "2"])
        .args(["--seed", &format!("127.0.0.1:{seed}"), "--admin", &format!("127.0.0.1:{admin}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn proxy");
    let mut p = Proxy { child, port };
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", admin)).is_err() {
        assert!(p.child.try_wait().ok().flatten().is_none(), "proxy exited");
        assert!(Instant::now() < deadline, "admin port never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    (p, admin)
}

#[test]
fn healthz_unavailable_without_a_cluster() {
    let (_p, admin) = proxy_without_cluster();
    let r = http_get(admin, "/healthz");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("topology covers 0 of 16384 slots"), "{}", r.text());
    let (m, text) = scrape(admin);
    assert_eq!(sample(&m, "slotway_proxy_topology_slots_covered", &[]), Some(0.0), "{text}");
}

#[test]
fn admin_survives_garbage() {
    let (mut p, admin) = proxy_without_cluster();
    // Idle connections that never finish a request do not block others.
    let idle: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(("127.0.0.1", admin)).expect("connect")).collect();
    let status = |raw: &[u8]| http_raw(admin, raw).map(|r| r.status);
    assert_eq!(status(b"\x00\x01garbage\r\n\r\n"), Some(400));
    assert_eq!(status(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Some(400));
    assert_eq!(status(b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n"), Some(400));
    assert_eq!(status(b"get /metrics HTTP/1.1\r\n\r\n"), Some(400));
    assert_eq!(status(b"GET /metrics SPDY/3\r\n\r\n"), Some(400));
    let r = http_raw(admin, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").expect("405");
    assert_eq!((r.status, r.header("allow").as_deref()), (405, Some("GET, HEAD")));
    let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    assert_eq!(status(&big), Some(431));
    // RESP on the admin port, then the client stops writing: closed without a response.
    let mut s = TcpStream::connect(("127.0.0.1", admin)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(b"*1\r\n$4\r\nPING\r\n").expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    // Random bytes, each ending the head: always a 4xx, never a crash.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..50 {
        let mut raw = Vec::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        for _ in 0..(seed % 600) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            raw.push((seed >> 24) as u8);
        }
        raw.extend_from_slice(b"\r\n\r\n");
        let st = status(&raw);
        assert!(st.is_some_and(|s| (400..500).contains(&s)), "{st:?} for {raw:?}");
    }
    assert_eq!(http_get(admin, "/metrics").status, 200);
    assert_eq!(http_get(admin, "/healthz").status, 503);
    drop(idle);
    assert!(p.child.try_wait().ok().flatten().is_none(), "the proxy died");
}

fn sigterm_drains_inflight(kind: Kind) {
    let c = cluster(kind);
    let mut p = Proxy::start(&c);
    let mut k = p.conn();
    assert_eq!(k.cmd(&["SET", "drain:key", "kept"]), ok());
    // The master that owns the key answers GET itself; the others answer MOVED.
    let owner = (0..c.nodes.len())
        .find(|&i| query(c.node(i).port, &["GET", "drain:key"]) == Ok(bulk("kept")))
        .expect("a node owns drain:key");
    let pid = c.node(owner).pid().expect("owner runs");

    signal("STOP", pid);
    let resume = Resume(pid);
    k.send(&[b"GET", b"drain:key"]);
    // Long enough for the proxy to forward it to the stopped node: the request is in flight.
    std::thread::sleep(Duration::from_millis(300));
    signal("TERM", p.child.id());

    // The listener closes at once; the process stays up while the request is unanswered.
    let deadline = Instant::now() + Duration::from_secs(3);
    while TcpStream::connect(("127.0.0.1", p.port)).is_ok() {
        assert!(Instant::now() < deadline, "the proxy still accepts connections after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(p.child.try_wait().ok().flatten().is_none(), "the proxy exited with a request in flight");

    drop(resume);
    let reply = k.read_reply().expect("the in-flight request got its reply");
    assert_eq!(reply, b"$4\r\nkept\r\n");
    let deadline = Instant::now() + Duration::from_secs(3);
    let status = loop {
        if let Some(st) = p.child.try_wait().expect("wait proxy") {
            break st;
        }
        assert!(Instant::now() < deadline, "the proxy did not exit after draining");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status}");
}
