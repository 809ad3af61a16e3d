//! The slot check against reality: the same cluster layout is built with CLUSTER commands on real
//! redis-server nodes and on slotway nodes (A serves 0-8191, B 8192-16383, C replicates A), then the
//! same script of commands runs on both and every reply must match byte for byte, with each node's
//! port replaced by its name. Covers MOVED, ASK, ASKING, TRYAGAIN, CROSSSLOT (MULTI/EXEC included),
//! CLUSTERDOWN, READONLY/READWRITE, the db-0 rules, hash tags, and blocked clients whose slot moves
//! away or whose cluster goes down.

mod support;

use slotway::cluster::key_slot;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{Conn, ServerProc};

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const NAMES: [&str; 3] = ["A", "B", "C"];

/// One side: its nodes, their ids, and named connections (ASKING, READONLY, MULTI and blocking
/// state live on a connection).
struct Side {
    nodes: Vec<ServerProc>,
    ids: Vec<String>,
    conns: HashMap<(usize, &'static str), Conn>,
    transcript: Vec<String>,
    _dir: support::tempdir::Dir,
}

fn bulk_text(reply: &[u8]) -> String {
    let s = String::from_utf8_lossy(reply).into_owned();
    // `$N\r\n<text>\r\n` or `+text\r\n`: the text.
    match s.split_once("\r\n") {
        Some((head, rest)) if head.starts_with('$') => rest.trim_end_matches("\r\n").to_string(),
        _ => s.trim_start_matches(['+', '-', ':']).trim_end_matches("\r\n").to_string(),
    }
}

impl Side {
    fn start(real: bool) -> Side {
        let dir = support::tempdir::Dir::new(if real { "route-redis" } else { "route-slotway" });
        let mut nodes = Vec::new();
        for name in NAMES {
            let conf = dir.path().join(format!("nodes-{name}.conf"));
            let conf = conf.to_str().expect("utf-8 path").to_string();
            let args = ["--cluster-enabled", "yes", "--cluster-config-file", &conf, "--cluster-node-timeout", "5000"];
            nodes.push(if real { support::redis_server(&args) } else { support::slotway_node(&args) });
        }
        let mut side = Side { nodes, ids: Vec::new(), conns: HashMap::new(), transcript: Vec::new(), _dir: dir };
        for n in 0..NAMES.len() {
            let id = side.setup(n, &["CLUSTER", "MYID"]);
            side.ids.push(bulk_text(&id));
        }
        side.expect_ok(A, &["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]);
        side.expect_ok(B, &["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]);
        let (pb, pa) = (side.nodes[B].port.to_string(), side.nodes[A].port.to_string());
        side.expect_ok(A, &["CLUSTER", "MEET", "127.0.0.1", &pb]);
        side.expect_ok(C, &["CLUSTER", "MEET", "127.0.0.1", &pa]);
        // C must know A before it can replicate it.
        side.wait("C knows A", |s| {
            let nodes = bulk_text(&s.setup(C, &["CLUSTER", "NODES"]));
            nodes.contains(&s.ids[A])
        });
        let a_id = side.ids[A].clone();
        side.expect_ok(C, &["CLUSTER", "REPLICATE", &a_id]);
        side.wait("every node sees the whole cluster", |s| {
            (0..NAMES.len()).all(|n| {
                let info = bulk_text(&s.setup(n, &["CLUSTER", "INFO"]));
                let nodes = bulk_text(&s.setup(n, &["CLUSTER", "NODES"]));
                info.contains("cluster_state:ok")
                    && s.ids.iter().all(|id| nodes.contains(id.as_str()))
                    && nodes.lines().filter(|l| l.contains(" master ") || l.contains(",master ")).count() == 2
                    && nodes.lines().any(|l| l.contains("slave") && l.contains(&s.ids[C]))
            })
        });
        side
    }

    fn wait(&mut self, what: &str, mut done: impl FnMut(&mut Side) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(self) {
            if Instant::now() > deadline {
                let views: Vec<String> =
                    (0..NAMES.len()).map(|n| bulk_text(&self.setup(n, &["CLUSTER", "NODES"]))).collect();
                panic!(
                    "{} side: timed out waiting until {what}; CLUSTER NODES:\n{}",
                    self.kind(),
                    views.join("\n--\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kind(&self) -> &'static str {
        self.nodes[0].name
    }

    fn conn(&mut self, node: usize, conn: &'static str) -> &mut Conn {
        let port = self.nodes[node].port;
        self.conns.entry((node, conn)).or_insert_with(|| Conn::connect(port))
    }

    /// A command whose reply is not compared (layout, ids).
    fn setup(&mut self, node: usize, args: &[&str]) -> Vec<u8> {
        self.conn(node, "setup").raw(args)
    }

    fn expect_ok(&mut self, node: usize, args: &[&str]) {
        let r = self.setup(node, args);
        assert_eq!(r, b"+OK\r\n", "{} side: {args:?} on {}", self.kind(), NAMES[node]);
    }

    fn mask(&self, reply: &[u8]) -> String {
        let mut s = String::from_utf8_lossy(reply).into_owned();
        for (n, p) in self.nodes.iter().enumerate() {
            s = s.replace(&format!(":{}\r\n", p.port), &format!(":<{}>\r\n", NAMES[n]));
        }
        s
    }

    /// Sends a command on a named connection and records its reply.
    fn cmd(&mut self, node: usize, conn: &'static str, args: &[&str]) {
        let reply = self.conn(node, conn).raw(args);
        let ports: Vec<String> = self.nodes.iter().map(|p| p.port.to_string()).collect();
        let shown: Vec<String> = args
            .iter()
            .map(|a| match ports.iter().position(|p| p == a) {
                Some(n) => format!("<{}>", NAMES[n]),
                None => a.to_string(),
            })
            .collect();
        let line = format!("{}/{conn} {shown:?} -> {:?}", NAMES[node], self.mask(&reply));
        self.transcript.push(line);
    }

    /// Sends without reading (a command that blocks).
    fn send(&mut self, node: usize, conn: &'static str, args: &[&str]) {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.conn(node, conn).send(&a);
    }

    /// Records the next reply on a connection (what a blocked client eventually gets).
    fn read(&mut self, node: usize, conn: &'static str) {
        let reply = self.conn(node, conn).read_reply().expect("reply");
        let line = format!("{}/{conn} <- {:?}", NAMES[node], self.mask(&reply));
        self.transcript.push(line);
    }
}

/// A key whose slot is `slot`.
fn key_in_slot(slot: u16) -> String {
    (0..).map(|i| format!("k{i}")).find(|k| key_slot(k.as_bytes()) == slot).expect("some key")
}

/// The script both sides run. Keys: `bar` and `{bar}*` hash to 5061 (A), `b` to 3300 (A), `c` to
/// 7365 (A), `foo` to 12182 (B), `{}` to 15257 (B), `{}{a}` to 13650 (B), `{a}` to 15495 (B).
fn script(s: &mut Side) {
    let (a_id, b_id) = (s.ids[A].clone(), s.ids[B].clone());

    // --- stable slots
    for args in [
        &["GET", "bar"][..],
        &["GET", "foo"],
        &["SET", "foo", "1"],
        &["MGET", "bar", "foo"],
        &["MGET", "foo", "bar"],
        &["MGET", "bar", "b"],
        &["MGET", "bar", "bar"],
        &["MSET", "{bar}1", "x", "{bar}2", "y"],
        &["MGET", "{bar}1", "{bar}2", "bar"],
        &["GET", "{}"],
        &["GET", "{}{a}"],
        &["MGET", "{}{a}", "{a}"],
        &["MGET", "{a}", "{a}x"],
        &["GET", "{}bar"],
        &["GET", "x{bar}"],
        &["OBJECT", "ENCODING", "foo"],
        &["ZUNIONSTORE", "foo", "0", "bar"],
        &["ZUNIONSTORE", "{bar}d", "2", "bar", "b"],
        &["RPOPLPUSH", "foo", "foo"],
        &["BLPOP", "foo", "0"],
        &["WATCH", "foo"],
        &["PING"],
        &["PUBLISH", "foo", "x"],
        &["DBSIZE"],
        &["SELECT", "0"],
        &["SELECT", "1"],
        &["SELECT", "-1"],
        &["SELECT", "x"],
        &["MOVE", "bar", "1"],
        &["MOVE", "foo", "1"],
        &["SWAPDB", "0", "1"],
        &["SWAPDB", "x", "y"],
        &["COPY", "{bar}1", "{bar}c", "DB", "1"],
        &["COPY", "{bar}1", "{bar}1", "DB", "1"],
        &["COPY", "{bar}1", "{bar}c", "DB", "0"],
        &["COPY", "{bar}1", "b", "DB", "0"],
        &["RESTORE", "foo", "0", "payload"],
        &["ASKING"],
        &["GET", "foo"],
        &["READONLY"],
        &["GET", "foo"],
        &["READWRITE"],
    ] {
        s.cmd(A, "main", args);
    }
    // Transactions: each command is checked as it is queued, and the whole queue at EXEC.
    for args in [
        &["MULTI"][..],
        &["SET", "bar", "1"],
        &["SET", "b", "1"],
        &["EXEC"],
        &["GET", "bar"],
        &["MULTI"],
        &["SET", "bar", "1"],
        &["GET", "foo"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "bar", "1"],
        &["GET", "{bar}1"],
        &["EXEC"],
        &["MULTI"],
        &["EXEC"],
    ] {
        s.cmd(A, "txn", args);
    }
    // A subscribed client: the slot check comes before the subscribed-context check.
    s.cmd(A, "sub", &["SUBSCRIBE", "ch"]);
    s.cmd(A, "sub", &["GET", "foo"]);
    s.cmd(A, "sub", &["GET", "bar"]);

    // --- the replica C: READONLY serves reads of A's slots, never writes. The keys read here are
    // never written: a real replica may or may not have synced A's keys yet, slotway's never does
    // (no replication yet), and only the routing is under test.
    for args in [
        &["GET", "{bar}r"][..],
        &["READONLY"],
        &["GET", "{bar}r"],
        &["MGET", "{bar}x", "{bar}y"],
        &["SET", "bar", "1"],
        &["GET", "foo"],
        &["MULTI"],
        &["GET", "{bar}r"],
        &["EXEC"],
        &["MULTI"],
        &["GET", "{bar}r"],
        &["SET", "bar", "1"],
        &["EXEC"],
        &["READWRITE"],
        &["GET", "{bar}r"],
    ] {
        s.cmd(C, "ro", args);
    }

    // --- slot 5061 moving from A to B, with `{bar}k` still on A
    s.cmd(A, "main", &["DEL", "bar"]);
    s.cmd(A, "main", &["SET", "{bar}k", "here"]);
    s.expect_ok(B, &["CLUSTER", "SETSLOT", "5061", "IMPORTING", &a_id]);
    s.expect_ok(A, &["CLUSTER", "SETSLOT", "5061", "MIGRATING", &b_id]);
    for args in [
        &["GET", "bar"][..],
        &["SET", "bar", "2"],
        &["EXISTS", "bar"],
        &["GET", "{bar}k"],
        &["MGET", "{bar}k", "{bar}k"],
        &["MGET", "{bar}k", "bar"],
        &["MGET", "bar", "{bar}k"],
        &["MGET", "bar", "{bar}z"],
        &["DEL", "bar", "{bar}k"],
        &["GET", "b"],
        &["MULTI"],
        &["GET", "{bar}k"],
        &["GET", "bar"],
        &["EXEC"],
    ] {
        s.cmd(A, "mig", args);
    }
    // MIGRATE moves keys out of the open slot; the empty key of the KEYS form is not a key.
    let pb = s.nodes[B].port.to_string();
    for args in [
        &["MIGRATE", "127.0.0.1", &pb, "", "0", "5000", "KEYS", "{bar}k"][..],
        &["GET", "{bar}k"],
        &["MIGRATE", "127.0.0.1", &pb, "", "0", "5000", "KEYS", "{bar}k"],
        &["MIGRATE", "127.0.0.1", &pb, "", "0", "5000", "KEYS", "{bar}k", "b"],
        &["MIGRATE", "127.0.0.1", &pb, "{bar}k", "0", "5000"],
    ] {
        s.cmd(A, "mig", args);
    }
    s.cmd(B, "imp2", &["GET", "{bar}k"]);
    s.cmd(B, "imp2", &["ASKING"]);
    s.cmd(B, "imp2", &["GET", "{bar}k"]);
    for args in [
        &["GET", "bar"][..],
        &["ASKING"],
        &["GET", "bar"],
        &["GET", "bar"],
        &["ASKING"],
        &["MGET", "bar", "{bar}z"],
        &["ASKING"],
        &["SET", "bar", "x"],
        &["ASKING"],
        &["MGET", "bar", "{bar}z"],
        &["ASKING"],
        &["MGET", "bar", "bar"],
        &["ASKING"],
        &["MGET", "bar", "b"],
        &["RESTORE", "bar", "0", "payload"],
        &["RESTORE-ASKING", "bar", "0", "payload"],
        &["ASKING"],
        &["MULTI"],
        &["GET", "bar"],
        &["MGET", "{bar}1", "bar"],
        &["EXEC"],
        &["GET", "bar"],
        &["MULTI"],
        &["ASKING"],
        &["GET", "bar"],
        &["EXEC"],
        &["ASKING"],
        &["NOSUCHCOMMAND"],
        &["GET", "bar"],
        &["ASKING"],
        &["GET"],
        &["GET", "bar"],
        &["ASKING"],
        &["ASKING"],
        &["GET", "bar"],
        &["GET", "bar"],
    ] {
        s.cmd(B, "imp", args);
    }

    // --- a client blocked on a slot this node gives away gets MOVED
    s.send(A, "blocked-moved", &["BLPOP", "b", "0"]);
    s.setup(A, &["PING"]); // a round trip: the BLPOP is parked by now
    s.expect_ok(A, &["CLUSTER", "SETSLOT", "3300", "NODE", &b_id]);
    s.read(A, "blocked-moved");
    s.cmd(A, "blocked-moved", &["GET", "b"]);

    // --- the cluster goes down (A stops serving slot 100): blocked clients get CLUSTERDOWN
    s.send(A, "blocked-down", &["BLPOP", "c", "0"]);
    s.setup(A, &["PING"]);
    s.expect_ok(A, &["CLUSTER", "DELSLOTS", "100"]);
    s.read(A, "blocked-down");
    let unbound = key_in_slot(100);
    for args in [
        &["GET", "c"][..],
        &["SET", "c", "1"],
        &["GET", "foo"],
        &["GET", &unbound],
        &["PING"],
        &["PUBLISH", "c", "x"],
        &["MULTI"],
        &["GET", "c"],
        &["EXEC"],
        &["CONFIG", "SET", "cluster-allow-reads-when-down", "yes"],
        &["GET", "c"],
        &["SET", "c", "1"],
        &["GET", "foo"],
        &["GET", &unbound],
        &["MULTI"],
        &["GET", "c"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "c", "1"],
        &["EXEC"],
        &["CONFIG", "SET", "cluster-allow-reads-when-down", "no"],
        &["GET", "c"],
    ] {
        s.cmd(A, "down", args);
    }
}

fn stats(side: &mut Side) -> String {
    let info = bulk_text(&side.setup(A, &["INFO", "errorstats"]));
    let mut lines: Vec<&str> = info.lines().filter(|l| l.starts_with("errorstat_")).collect();
    lines.sort_unstable();
    lines.join(" ")
}

#[test]
fn redirections_match_real_redis_cluster() {
    assert!(support::redis_available(), "redis-server is not installed: run scripts/test, which installs it");
    let mut real = Side::start(true);
    script(&mut real);
    let real_stats = stats(&mut real);
    if std::env::var_os("ROUTE_TRANSCRIPT").is_some() {
        eprintln!("{}\n{real_stats}", real.transcript.join("\n"));
    }
    drop(real.nodes.drain(..));
    let mut ours = Side::start(false);
    script(&mut ours);
    let our_stats = stats(&mut ours);
    assert_eq!(real.transcript.len(), ours.transcript.len());
    for (r, o) in real.transcript.iter().zip(&ours.transcript) {
        assert_eq!(o, r, "slotway (left) differs from redis-server (right)");
    }
    assert_eq!(our_stats, real_stats, "INFO errorstats on A");
}

#[test]
fn cluster_commands_need_cluster_mode() {
    for server in [support::redis_server(&[]), support::slotway_node(&[])] {
        let mut c = server.conn();
        for (args, want) in [
            (&["ASKING"][..], &b"-ERR This instance has cluster support disabled\r\n"[..]),
            (&["READONLY"], b"-ERR This instance has cluster support disabled\r\n"),
            (&["READWRITE"], b"-ERR This instance has cluster support disabled\r\n"),
            (&["SELECT", "1"], b"+OK\r\n"),
            (&["MOVE", "x", "2"], b":0\r\n"),
        ] {
            assert_eq!(
                String::from_utf8_lossy(&c.raw(args)),
                String::from_utf8_lossy(want),
                "{} {args:?}",
                server.name
            );
        }
    }
}
