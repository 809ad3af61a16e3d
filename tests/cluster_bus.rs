//! The cluster bus against reality: slotway nodes join clusters of real redis-server 7.0 nodes
//! (and each other) over Redis's own binary bus protocol, detect failures, propagate slots and
//! epochs, and shrug off garbage on the bus port.

mod support;

use slotway::node::cluster::bus::msg::{self, mtype, Body, Header, Msg};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::tempdir::Dir;
use support::Conn;

const NODE_TIMEOUT: &str = "1000";

/// A client port whose bus port (+10000) is free too.
fn free_cluster_port() -> u16 {
    for _ in 0..200 {
        let p = support::free_port();
        if p < 55000 && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
            return p;
        }
    }
    panic!("no free port pair");
}

/// A cluster-mode server process (real or slotway) on a fixed port and dir, killed on drop.
struct Node {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    real: bool,
    extra: Vec<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("server on {port} exited early: {st}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("server did not listen on {port}");
}

impl Node {
    fn real(dir: &Path) -> Node {
        let mut n = Node { child: None, port: free_cluster_port(), dir: dir.to_path_buf(), real: true, extra: vec![] };
        n.start();
        n
    }
    fn slotway(dir: &Path) -> Node {
        Node::slotway_with(dir, &[])
    }
    fn slotway_with(dir: &Path, extra: &[&str]) -> Node {
        let mut n = Node {
            child: None,
            port: free_cluster_port(),
            dir: dir.to_path_buf(),
            real: false,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        n.start();
        n
    }
    fn start(&mut self) {
        let port = self.port.to_string();
        let common = [
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            NODE_TIMEOUT,
        ];
        let mut cmd = if self.real {
            let mut c = Command::new("redis-server");
            c.args(common).args(["--appendonly", "no"]);
            c
        } else {
            let mut c = Command::new(env!("CARGO_BIN_EXE_slotway"));
            c.arg("node").args(common).env("NO_COLOR", "1");
            c
        };
        let mut child = cmd
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        wait_for_port(self.port, &mut child);
        // The bus port is bound just after the client port (as in Redis): wait for it too.
        wait_for_port(self.port + 10000, &mut child);
        self.child = Some(child);
    }
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }
    fn cmd(&self, args: &[&str]) -> String {
        text(&self.conn().raw(args))
    }
    /// The node's name, from its nodes.conf (written just after the client port opens).
    fn id(&self) -> String {
        let mut id = String::new();
        wait_until(5, "nodes.conf with a myself line", || {
            let conf = self.nodes_conf();
            let line = conf.lines().find(|l| l.contains("myself")).ok_or(conf.clone())?;
            id = line.get(..40).ok_or(conf.clone())?.to_string();
            Ok(())
        });
        id
    }
    fn nodes_conf(&self) -> String {
        std::fs::read_to_string(self.dir.join("nodes.conf")).unwrap_or_default()
    }
}

/// A reply as text: the payload of a bulk or simple string, the raw bytes otherwise.
fn text(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw).into_owned();
    if let Some(rest) = s.strip_prefix('$') {
        let body = rest.split_once("\r\n").map(|x| x.1).unwrap_or("");
        return body.strip_suffix("\r\n").unwrap_or(body).to_string();
    }
    if let Some(rest) = s.strip_prefix('+') {
        return rest.trim_end().to_string();
    }
    s
}

/// The CLUSTER NODES / nodes.conf line about `id`.
fn line_of(nodes: &str, id: &str) -> Option<String> {
    nodes.lines().find(|l| l.starts_with(id)).map(str::to_string)
}

fn flags_of(line: &str) -> Vec<String> {
    line.split_whitespace().nth(2).unwrap_or("").split(',').map(str::to_string).collect()
}

/// Polls `f` until it holds (at most `secs`), panicking with `what` and the last observation.
fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("timed out waiting for {what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `node` sees `id` as an up master, connected, optionally with these slots.
fn sees_healthy(nodes: &str, id: &str, slots: Option<&str>) -> Result<(), String> {
    let line = line_of(nodes, id).ok_or_else(|| format!("{id} unknown in\n{nodes}"))?;
    let flags = flags_of(&line);
    let ok = flags.iter().any(|f| f == "master")
        && !flags.iter().any(|f| f == "fail" || f == "fail?" || f == "handshake" || f == "noaddr")
        && line.contains(" connected");
    if !ok {
        return Err(line);
    }
    if let Some(s) = slots {
        let got: Vec<&str> = line.split_whitespace().skip(8).collect();
        if got.join(" ") != s {
            return Err(format!("slots {got:?}, want {s}: {line}"));
        }
    }
    Ok(())
}

fn sees_failed(nodes: &str, id: &str) -> Result<(), String> {
    let line = line_of(nodes, id).ok_or_else(|| format!("{id} unknown"))?;
    if flags_of(&line).iter().any(|f| f == "fail") {
        Ok(())
    } else {
        Err(line)
    }
}

fn configured_epochs(nodes: &str) -> Vec<u64> {
    nodes
        .lines()
        .filter(|l| !l.starts_with("vars"))
        .filter_map(|l| l.split_whitespace().nth(6).and_then(|e| e.parse().ok()))
        .collect()
}

/// A key hashing to `slot`.
fn key_in_slot(slot: u16) -> String {
    (0..1_000_000).map(|i| format!("key:{i}")).find(|k| slotway::cluster::key_slot(k.as_bytes()) == slot).expect("key")
}

#[test]
fn real_redis_nodes_and_a_slotway_node_form_one_cluster() {
    assert!(support::redis_available(), "redis-server is not installed: run scripts/test, which installs it");
    let (d1, d2, ds) = (Dir::new("bus-r1"), Dir::new("bus-r2"), Dir::new("bus-s"));
    let r1 = Node::real(d1.path());
    let r2 = Node::real(d2.path());
    // The slotway node starts with a nodes.conf that gives it slots 0-99, so its slot claims
    // travel to the real nodes, and epochs must be made unique across implementations.
    let sport = free_cluster_port();
    let sid = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
    std::fs::write(
        ds.path().join("nodes.conf"),
        format!(
            "{sid} 127.0.0.1:{sport}@{} myself,master - 0 0 0 connected 0-99\nvars currentEpoch 0 lastVoteEpoch 0\n",
            sport + 10000
        ),
    )
    .expect("write nodes.conf");
    // Alone with 100 slots the cluster is down unless full coverage is not required; even then a
    // master accepts writes only after its 2 s startup delay.
    let extra = vec!["--cluster-require-full-coverage".to_string(), "no".to_string()];
    let mut s = Node { child: None, port: sport, dir: ds.path().to_path_buf(), real: false, extra };
    s.start();
    assert_eq!(s.id(), sid);
    let key5 = key_in_slot(5);
    wait_until(10, "the lone slotway master accepts a write", || match s.cmd(&["SET", &key5, "v"]).as_str() {
        "OK" => Ok(()),
        other => Err(other.to_string()),
    });

    assert_eq!(r1.cmd(&["CLUSTER", "ADDSLOTSRANGE", "100", "8000"]), "OK");
    assert_eq!(r2.cmd(&["CLUSTER", "ADDSLOTSRANGE", "8001", "16383"]), "OK");
    assert_eq!(r1.cmd(&["CLUSTER", "MEET", "127.0.0.1", &r2.port.to_string()]), "OK");
    // A REAL node meets the slotway node: MEET arrives on slotway's bus port.
    assert_eq!(r1.cmd(&["CLUSTER", "MEET", "127.0.0.1", &sport.to_string()]), "OK");
    let (id1, id2) = (r1.id(), r2.id());

    wait_until(15, "every node to see every other as a connected master with its slots", || {
        for r in [&r1, &r2] {
            let nodes = r.cmd(&["CLUSTER", "NODES"]);
            sees_healthy(&nodes, sid, Some("0-99"))?;
        }
        let nodes = s.cmd(&["CLUSTER", "NODES"]);
        sees_healthy(&nodes, &id1, Some("100-8000"))?;
        sees_healthy(&nodes, &id2, Some("8001-16383"))?;
        // And persisted: nodes.conf holds what the real nodes own.
        let conf = s.nodes_conf();
        for (id, slots) in [(&id1, "100-8000"), (&id2, "8001-16383")] {
            let line = line_of(&conf, id).ok_or_else(|| conf.clone())?;
            if !line.ends_with(slots) || !flags_of(&line).contains(&"master".to_string()) {
                return Err(line);
            }
        }
        Ok(())
    });
    // The slotway node learned its own address from the MEET, as Redis does.
    let me = line_of(&s.nodes_conf(), sid).expect("myself");
    assert!(me.contains(&format!("127.0.0.1:{sport}@{}", sport + 10000)), "{me}");

    // Epoch collisions resolved across implementations: every master ends with its own
    // configEpoch, and currentEpoch agrees everywhere.
    wait_until(15, "unique configEpochs and one currentEpoch", || {
        let nodes = r1.cmd(&["CLUSTER", "NODES"]);
        let mut e = configured_epochs(&nodes);
        e.sort();
        e.dedup();
        if e.len() != 3 {
            return Err(nodes);
        }
        let info = r1.cmd(&["CLUSTER", "INFO"]);
        let cur = info.lines().find_map(|l| l.strip_prefix("cluster_current_epoch:")).unwrap_or("").trim().to_string();
        let conf = s.nodes_conf();
        if !conf.contains(&format!("vars currentEpoch {cur} ")) {
            return Err(format!("real currentEpoch {cur}, slotway {conf}"));
        }
        let mine = configured_epochs(&s.nodes_conf());
        if mine.len() != 3 || mine.iter().collect::<std::collections::BTreeSet<_>>().len() != 3 {
            return Err(conf);
        }
        Ok(())
    });

    // A real node takes slot 5 and bumps its epoch: the slotway node must give the slot up
    // (higher configEpoch wins) and delete the key it held there, as Redis 7.0 does.
    assert_eq!(r1.cmd(&["CLUSTER", "SETSLOT", "5", "NODE", &id1]), "OK");
    let bumped = r1.cmd(&["CLUSTER", "BUMPEPOCH"]);
    assert!(bumped.starts_with("BUMPED") || bumped.starts_with("STILL"), "{bumped}");
    wait_until(15, "slot 5 to move to the real node everywhere", || {
        let nodes = s.cmd(&["CLUSTER", "NODES"]);
        sees_healthy(&nodes, sid, Some("0-4 6-99"))?;
        sees_healthy(&nodes, &id1, Some("5 100-8000"))?;
        sees_healthy(&r2.cmd(&["CLUSTER", "NODES"]), sid, Some("0-4 6-99"))?;
        Ok(())
    });
    wait_until(5, "the key of the lost slot to be deleted", || {
        // EXISTS would be redirected now; the slot's key count is asked without a key.
        let v = s.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "5"]);
        if v == ":0\r\n" {
            Ok(())
        } else {
            Err(v)
        }
    });

    // Kill the slotway node: the real nodes flag it FAIL.
    s.kill();
    wait_until(15, "the real nodes to mark the slotway node as failed", || {
        sees_failed(&r1.cmd(&["CLUSTER", "NODES"]), sid)?;
        sees_failed(&r2.cmd(&["CLUSTER", "NODES"]), sid)
    });
    // Restart it from its nodes.conf: same name, it rejoins and FAIL is cleared.
    s.start();
    assert_eq!(s.id(), sid);
    wait_until(20, "the slotway node to rejoin", || {
        for r in [&r1, &r2] {
            sees_healthy(&r.cmd(&["CLUSTER", "NODES"]), sid, Some("0-4 6-99"))?;
        }
        let nodes = s.cmd(&["CLUSTER", "NODES"]);
        sees_healthy(&nodes, &id1, Some("5 100-8000"))?;
        sees_healthy(&nodes, &id2, Some("8001-16383"))
    });
    wait_until(15, "cluster_state:ok on a real node", || {
        let info = r2.cmd(&["CLUSTER", "INFO"]);
        if info.contains("cluster_state:ok") {
            Ok(())
        } else {
            Err(info)
        }
    });
}

#[test]
fn slotway_detects_a_dead_real_node() {
    assert!(support::redis_available(), "redis-server is not installed: run scripts/test, which installs it");
    let dirs: Vec<Dir> = (0..4).map(|i| Dir::new(&format!("bus-fd{i}"))).collect();
    let r: Vec<Node> = (0..3).map(|i| Node::real(dirs[i].path())).collect();
    let s = Node::slotway(dirs[3].path());
    let ranges = [("0", "5000"), ("5001", "10000"), ("10001", "16383")];
    for (n, (a, b)) in r.iter().zip(ranges) {
        assert_eq!(n.cmd(&["CLUSTER", "ADDSLOTSRANGE", a, b]), "OK");
    }
    for n in &r[1..] {
        assert_eq!(r[0].cmd(&["CLUSTER", "MEET", "127.0.0.1", &n.port.to_string()]), "OK");
    }
    assert_eq!(r[0].cmd(&["CLUSTER", "MEET", "127.0.0.1", &s.port.to_string()]), "OK");
    let ids: Vec<String> = r.iter().map(Node::id).collect();
    let sid = s.id();
    wait_until(15, "the slotway node to learn every real node (via gossip for two of them)", || {
        let nodes = s.cmd(&["CLUSTER", "NODES"]);
        for (id, (a, b)) in ids.iter().zip(ranges) {
            sees_healthy(&nodes, id, Some(&format!("{a}-{b}")))?;
        }
        for n in &r {
            sees_healthy(&n.cmd(&["CLUSTER", "NODES"]), &sid, None)?;
        }
        Ok(())
    });
    let mut victim = r.into_iter().collect::<Vec<_>>();
    let dead = victim.pop().expect("third node");
    drop(dead);
    // FAIL is a saved state change: nodes.conf has it too.
    wait_until(15, "the slotway node to mark the killed node FAIL", || sees_failed(&s.nodes_conf(), &ids[2]));
    sees_failed(&s.cmd(&["CLUSTER", "NODES"]), &ids[2]).expect("CLUSTER NODES shows FAIL");
    // The survivors stay healthy in its view.
    let conf = s.cmd(&["CLUSTER", "NODES"]);
    sees_healthy(&conf, &ids[0], None).expect("first real node healthy");
    sees_healthy(&conf, &ids[1], None).expect("second real node healthy");
}

/// Three slotway nodes alone: MEET, gossip, slot propagation and PFAIL -> FAIL among themselves.
#[test]
fn slotway_nodes_converge_and_detect_failure() {
    let dirs: Vec<Dir> = (0..3).map(|i| Dir::new(&format!("bus-sw{i}"))).collect();
    let mut n: Vec<Node> = dirs.iter().map(|d| Node::slotway(d.path())).collect();
    let ranges = [("0", "5460"), ("5461", "10922"), ("10923", "16383")];
    for (node, (a, b)) in n.iter().zip(ranges) {
        assert_eq!(node.cmd(&["CLUSTER", "ADDSLOTSRANGE", a, b]), "OK");
    }
    // A chain of MEETs: 0 meets 1, 1 meets 2; 0 and 2 learn each other through gossip.
    assert_eq!(n[0].cmd(&["CLUSTER", "MEET", "127.0.0.1", &n[1].port.to_string()]), "OK");
    assert_eq!(n[1].cmd(&["CLUSTER", "MEET", "127.0.0.1", &n[2].port.to_string()]), "OK");
    let ids: Vec<String> = n.iter().map(|x| x.cmd(&["CLUSTER", "MYID"])).collect();
    assert_eq!(ids[0], n[0].id());
    wait_until(20, "full convergence", || {
        for node in &n {
            let nodes = node.cmd(&["CLUSTER", "NODES"]);
            for (id, (a, b)) in ids.iter().zip(ranges) {
                let line = line_of(&nodes, id).ok_or_else(|| nodes.clone())?;
                if line.contains("myself") {
                    continue;
                }
                sees_healthy(&nodes, id, Some(&format!("{a}-{b}")))?;
            }
            let info = node.cmd(&["CLUSTER", "INFO"]);
            if !info.contains("cluster_state:ok") || !info.contains("cluster_known_nodes:3") {
                return Err(info);
            }
        }
        Ok(())
    });
    // Messages were counted by type.
    let info = n[0].cmd(&["CLUSTER", "INFO"]);
    for field in ["cluster_stats_messages_ping_sent:", "cluster_stats_messages_pong_received:"] {
        let v: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} missing in {info}"));
        assert!(v > 0, "{field}{v}");
    }
    // Kill node 2: the others flag it FAIL (2 of 3 masters agree) and the state turns fail
    // (slots uncovered).
    n[2].kill();
    wait_until(15, "FAIL on both survivors", || {
        for node in &n[..2] {
            sees_failed(&node.cmd(&["CLUSTER", "NODES"]), &ids[2])?;
        }
        Ok(())
    });
    wait_until(5, "cluster_state:fail", || {
        let info = n[0].cmd(&["CLUSTER", "INFO"]);
        if info.contains("cluster_state:fail") {
            Ok(())
        } else {
            Err(info)
        }
    });
    // Bring it back: FAIL clears (a master still serving its slots, after 2 x node-timeout).
    n[2].start();
    wait_until(20, "node 2 back and the cluster ok", || {
        for node in &n[..2] {
            sees_healthy(&node.cmd(&["CLUSTER", "NODES"]), &ids[2], Some("10923-16383"))?;
            let info = node.cmd(&["CLUSTER", "INFO"]);
            if !info.contains("cluster_state:ok") {
                return Err(info);
            }
        }
        Ok(())
    });
    // Kill two of three: the survivor sees both PFAIL ("fail?") but, alone, is no majority of
    // the masters, so neither may turn FAIL.
    n[1].kill();
    n[2].kill();
    let pfail_both = || {
        let nodes = n[0].cmd(&["CLUSTER", "NODES"]);
        for id in &ids[1..] {
            let line = line_of(&nodes, id).ok_or_else(|| nodes.clone())?;
            if flags_of(&line) != ["master", "fail?"] {
                return Err(line);
            }
        }
        Ok(())
    };
    wait_until(10, "PFAIL on the two dead nodes", pfail_both);
    std::thread::sleep(Duration::from_millis(3000));
    pfail_both().expect("still PFAIL, never FAIL, without a majority");
    let reports = n[0].cmd(&["CLUSTER", "COUNT-FAILURE-REPORTS", &ids[1]]);
    assert_eq!(reports, ":0\r\n", "nobody else could report");
}

/// A raw bus connection to a node's bus port.
fn bus_conn(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port + 10000)).expect("bus connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s
}

fn ping_from(sender: [u8; 40], t: u16) -> Vec<u8> {
    let mut h = Header::new(t, sender);
    h.port = 1;
    h.cport = 1;
    h.flags = 1;
    msg::encode(&Msg { hdr: h, body: Body::Ping { gossip: vec![], hostname: None, other: vec![] } })
}

#[test]
fn garbage_on_the_bus_port_closes_that_link_only() {
    let d = Dir::new("bus-garbage");
    let s = Node::slotway(d.path());
    let mut client = s.conn();
    let stranger = *b"0123456789abcdef0123456789abcdef01234567";

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad signature", b"XXXX\x00\x00\x10\x00".iter().copied().chain([0u8; 4088]).collect()),
        ("length below the header size", b"RCmb\x00\x00\x00\x10\x00\x01".to_vec()),
        ("huge totlen", b"RCmb\xff\xff\xff\xff".to_vec()),
        ("HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("RESP command", b"*1\r\n$4\r\nPING\r\n".to_vec()),
    ];
    // A PING claiming 3 gossip entries it does not carry.
    let mut lying = ping_from(stranger, mtype::PING);
    lying[msg::off::COUNT + 1] = 3;
    cases.push(("gossip count past the end", lying));
    // A FAIL of the wrong length.
    let mut fail = ping_from(stranger, mtype::PING);
    fail[msg::off::TYPE + 1] = mtype::FAIL as u8;
    cases.push(("FAIL of the wrong length", fail));
    // Random bytes.
    let mut rng = support::rng::Rng::new(42);
    cases.push(("random bytes", (0..5000).map(|_| rng.next() as u8).collect()));

    for (what, bytes) in &cases {
        let mut b = bus_conn(s.port);
        let _ = b.write_all(bytes);
        assert!(support::closed_by_peer(&mut b), "{what}: the node should close the link");
        assert_eq!(client.raw(&["PING"]), b"+PONG\r\n", "{what}: the node must stay up");
    }

    // A truncated message: the node waits for the rest, then the peer goes away.
    {
        let mut b = bus_conn(s.port);
        let full = ping_from(stranger, mtype::PING);
        let _ = b.write_all(&full[..100]);
        std::thread::sleep(Duration::from_millis(200));
        assert!(!closed_by_peer_quick(&mut b), "a partial message is not an error yet");
    }
    assert_eq!(client.raw(&["PING"]), b"+PONG\r\n");

    // Many connections in parallel sending a valid prefix and never finishing.
    let stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut b = bus_conn(s.port);
            let _ = b.write_all(b"RCmb\x00\x10\x00\x00");
            b
        })
        .collect();
    assert_eq!(client.raw(&["PING"]), b"+PONG\r\n");
    drop(stalled);

    // After all that, a well-formed MEET from a stranger still gets a PONG in Redis's format.
    let mut b = bus_conn(s.port);
    b.write_all(&ping_from(stranger, mtype::MEET)).expect("write meet");
    let reply = read_frame(&mut b).expect("a PONG");
    let m = msg::decode(&reply).expect("decodes");
    assert_eq!(m.hdr.mtype, mtype::PONG);
    assert_eq!(String::from_utf8_lossy(&m.hdr.sender), s.id());
    assert_eq!(m.hdr.port, s.port);
    assert_eq!(m.hdr.cport, s.port + 10000);
    assert_eq!(client.raw(&["PING"]), b"+PONG\r\n");
}

fn closed_by_peer_quick(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    support::closed_by_peer(s)
}

/// One whole bus frame.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head).ok()?;
    let len = msg::frame_len(&head).ok()?;
    let mut rest = vec![0u8; len - 8];
    s.read_exact(&mut rest).ok()?;
    let mut all = head.to_vec();
    all.extend_from_slice(&rest);
    Some(all)
}

/// A peer that sends PINGs and never reads the PONGs: once the PONGs queued for it pass
/// cluster-link-sendbuf-limit, the node frees that link, and stays up.
#[test]
fn a_peer_that_does_not_read_is_cut_off_at_the_send_buffer_limit() {
    let d = Dir::new("bus-sendbuf");
    let s = Node::slotway_with(d.path(), &["--cluster-link-sendbuf-limit", "1048576"]);
    let mut client = s.conn();
    let mut b = bus_conn(s.port);
    let ping = ping_from(*b"0123456789abcdef0123456789abcdef01234567", mtype::PING);
    // 45 MB of PONGs asked for: below the 64 MiB hard bound, far above the 1 MiB limit and what
    // the kernel buffers hold.
    let mut written = 0;
    for _ in 0..20_000 {
        if b.write_all(&ping).is_err() {
            break;
        }
        written += 1;
    }
    assert!(written > 100, "the node must read for a while first");
    assert!(support::closed_by_peer(&mut b), "the link should have been freed");
    assert_eq!(client.raw(&["PING"]), b"+PONG\r\n");
}
