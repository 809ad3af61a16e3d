//! MIGRATE between slotway and Debian's redis-server 7.0: keys of every type moved both ways, and the
//! options, errors and connection handling compared reply for reply with a real Redis source.

mod support;

use slotway::resp::Frame;
use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use support::conn::Conn;
use support::corpus::sort_frame;
use support::{free_port, redis_available, redis_server, slotway_node, ServerProc};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Redis,
    Slotway,
}

fn start(kind: Kind, extra: &[&str]) -> ServerProc {
    match kind {
        Kind::Redis => redis_server(extra),
        Kind::Slotway => slotway_node(extra),
    }
}

fn need_redis() {
    assert!(redis_available(), "redis-server is not installed: run scripts/test, which installs it");
}

fn cmd(c: &mut Conn, args: &[&str]) -> Frame {
    c.cmd(args)
}

fn cmd_owned(c: &mut Conn, args: &[String]) -> Vec<u8> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    c.raw(&a)
}

fn int_of(f: &Frame) -> i64 {
    match f {
        Frame::Integer(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// `field:value` from INFO text.
fn info_field(c: &mut Conn, section: &str, field: &str) -> Option<String> {
    let Frame::Bulk(text) = cmd(c, &["INFO", section]) else { panic!("INFO") };
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
}

fn connections_received(c: &mut Conn) -> i64 {
    info_field(c, "stats", "total_connections_received").expect("field").parse().expect("number")
}

fn client_count(c: &mut Conn) -> usize {
    let Frame::Bulk(text) = cmd(c, &["CLIENT", "LIST"]) else { panic!("CLIENT LIST") };
    String::from_utf8_lossy(&text).lines().count()
}

/// One key per type and encoding, each also in a variant with a TTL.
fn fixtures() -> Vec<(String, Vec<Vec<String>>)> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let with = |head: &[&str], rest: Vec<String>| {
        let mut v = s(head);
        v.extend(rest);
        v
    };
    let n = |k: usize, f: &dyn Fn(usize) -> String| (0..k).map(f).collect::<Vec<_>>();
    let base: Vec<(&str, Vec<Vec<String>>)> = vec![
        ("str:raw", vec![with(&["SET", "str:raw"], vec!["raw ".repeat(30)])]),
        ("str:huge", vec![with(&["SET", "str:huge"], vec!["0123456789abcdef".repeat(200_000)])]),
        ("str:int", vec![s(&["SET", "str:int", "-9876543210"])]),
        ("str:emb", vec![s(&["SET", "str:emb", "short value"])]),
        ("list:small", vec![with(&["RPUSH", "list:small"], n(7, &|i| format!("{}", i as i64 * 1000 - 3)))]),
        ("list:big", vec![with(&["RPUSH", "list:big"], n(1500, &|i| format!("item-{i}-{}", "x".repeat(i % 40))))]),
        ("hash:small", vec![with(&["HSET", "hash:small"], n(10, &|i| format!("f{}", i / 2 * 7)))]),
        ("hash:big", vec![with(&["HSET", "hash:big"], n(1100, &|i| format!("v{i}")))]),
        ("set:int", vec![with(&["SADD", "set:int"], n(40, &|i| format!("{}", (i as i64 - 20) * 99_991)))]),
        ("set:big", vec![with(&["SADD", "set:big"], n(700, &|i| format!("member-{i}")))]),
        (
            "zset:small",
            vec![with(
                &["ZADD", "zset:small"],
                n(12, &|i| if i % 2 == 0 { format!("{}", i as f64 / 3.0) } else { format!("m{i}") }),
            )],
        ),
        (
            "zset:big",
            vec![
                with(
                    &["ZADD", "zset:big"],
                    n(500, &|i| if i % 2 == 0 { format!("{}", i as f64 * 0.25 - 9.0) } else { format!("z{i}") }),
                ),
                s(&["ZADD", "zset:big", "inf", "top", "-inf", "bottom"]),
            ],
        ),
    ];
    let mut out = Vec::new();
    for (key, cmds) in base {
        out.push((key.to_string(), cmds.clone()));
        let tkey = format!("{key}:ttl");
        let mut tcmds: Vec<Vec<String>> = cmds
            .into_iter()
            .map(|mut c| {
                c[1] = tkey.clone();
                c
            })
            .collect();
        tcmds.push(s(&["PEXPIRE", &tkey, "100000"]));
        out.push((tkey, tcmds));
    }
    out
}

/// Type and contents, read without DUMP.
fn read_value(c: &mut Conn, key: &str) -> (Frame, Frame) {
    let ty = cmd(c, &["TYPE", key]);
    let content = match ty.as_bytes().map(|b| b.to_vec()).as_deref() {
        Some(b"string") => cmd(c, &["GET", key]),
        Some(b"list") => cmd(c, &["LRANGE", key, "0", "-1"]),
        Some(b"hash") => sort_frame(cmd(c, &["HGETALL", key])),
        Some(b"set") => sort_frame(cmd(c, &["SMEMBERS", key])),
        Some(b"zset") => cmd(c, &["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        other => panic!("{key}: type {other:?}"),
    };
    (ty, content)
}

fn move_everything(src_kind: Kind, dst_kind: Kind) {
    let (src, dst) = (start(src_kind, &[]), start(dst_kind, &[]));
    let (mut s, mut d) = (src.conn(), dst.conn());
    let fx = fixtures();
    for (_, cmds) in &fx {
        for c in cmds {
            cmd_owned(&mut s, c);
        }
    }
    let mut before = Vec::new();
    for (key, _) in &fx {
        before.push((read_value(&mut s, key), int_of(&cmd(&mut s, &["PTTL", key]))));
    }
    let port = dst.port.to_string();
    // Half one key per MIGRATE, the other half in a single KEYS batch.
    let mut batch =
        vec!["MIGRATE".to_string(), "127.0.0.1".into(), port.clone(), String::new(), "0".into(), "5000".into()];
    batch.push("KEYS".into());
    for (i, (key, _)) in fx.iter().enumerate() {
        if i % 2 == 0 {
            let r = cmd(&mut s, &["MIGRATE", "127.0.0.1", &port, key, "0", "5000"]);
            assert_eq!(r, Frame::Simple("OK".into()), "{src_kind:?} -> {dst_kind:?}: MIGRATE {key}");
        } else {
            batch.push(key.clone());
        }
    }
    assert_eq!(cmd_owned(&mut s, &batch), b"+OK\r\n", "{src_kind:?} -> {dst_kind:?}: MIGRATE KEYS");
    for ((key, _), (value, pttl)) in fx.iter().zip(before) {
        assert_eq!(int_of(&cmd(&mut s, &["EXISTS", key])), 0, "{key} left the source");
        assert_eq!(read_value(&mut d, key), value, "{src_kind:?} -> {dst_kind:?}: {key} arrives intact");
        let got = int_of(&cmd(&mut d, &["PTTL", key]));
        if pttl == -1 {
            assert_eq!(got, -1, "{key}: no TTL");
        } else {
            assert!(got <= pttl && got > pttl - 5000, "{key}: TTL {got} carried over (was {pttl})");
        }
    }
}

#[test]
fn every_type_moves_slotway_to_redis() {
    need_redis();
    move_everything(Kind::Slotway, Kind::Redis);
}

#[test]
fn every_type_moves_redis_to_slotway() {
    need_redis();
    move_everything(Kind::Redis, Kind::Slotway);
}

#[test]
fn every_type_moves_slotway_to_slotway() {
    move_everything(Kind::Slotway, Kind::Slotway);
}

/// A port that accepts connections and never answers.
fn silent_target() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            // Read and drop what arrives, so writes never block; never answer.
            let mut s2 = s.try_clone().expect("clone");
            std::thread::spawn(move || {
                let mut b = [0u8; 4096];
                while matches!(s2.read(&mut b), Ok(n) if n > 0) {}
            });
            held.push(s);
        }
    });
    port
}

/// The same script of MIGRATEs against fresh targets, from a source of `kind`: every reply and the
/// observable state after it, as raw bytes with a label.
fn scenario(kind: Kind) -> Vec<(String, Vec<u8>)> {
    let src = start(kind, &[]);
    let tgt = redis_server(&[]);
    let locked = redis_server(&["--requirepass", "sekret"]);
    let (mut s, mut t, mut l) = (src.conn(), tgt.conn(), locked.conn());
    cmd(&mut l, &["AUTH", "sekret"]);
    let (tp, lp) = (tgt.port.to_string(), locked.port.to_string());
    let closed = free_port().to_string();
    let silent = silent_target().to_string();
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let rec = |out: &mut Vec<(String, Vec<u8>)>, label: &str, c: &mut Conn, args: &[&str]| {
        let r = c.raw(args);
        out.push((label.to_string(), r));
    };

    // Argument errors, before any connection.
    cmd(&mut s, &["SET", "a", "1"]);
    rec(&mut out, "keys with a key", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "0", "1000", "KEYS", "a"]);
    rec(&mut out, "keys then junk", &mut s, &["MIGRATE", "127.0.0.1", &tp, "", "0", "1000", "KEYS"]);
    rec(&mut out, "auth no password", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "0", "1000", "AUTH"]);
    rec(&mut out, "auth2 one arg", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "0", "1000", "AUTH2", "u"]);
    rec(&mut out, "unknown option", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "0", "1000", "FOO"]);
    rec(
        &mut out,
        "option after keys is a key",
        &mut s,
        &["MIGRATE", "127.0.0.1", &tp, "", "0", "1000", "KEYS", "COPY"],
    );
    rec(&mut out, "bad timeout", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "0", "soon"]);
    rec(&mut out, "bad db", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "x", "1000"]);
    rec(&mut out, "bad db and option", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "x", "1000", "BAR"]);
    rec(&mut out, "arity", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "0"]);
    rec(&mut out, "nokey", &mut s, &["MIGRATE", "127.0.0.1", &tp, "missing", "0", "1000"]);
    rec(&mut out, "nokey keys", &mut s, &["MIGRATE", "127.0.0.1", &tp, "", "0", "1000", "KEYS", "m1", "m2"]);

    // COPY keeps the source; a second MIGRATE meets the copy (BUSYKEY); REPLACE overwrites.
    rec(&mut out, "copy", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "0", "1000", "COPY"]);
    rec(&mut out, "copy: source kept", &mut s, &["GET", "a"]);
    rec(&mut out, "copy: target has it", &mut t, &["GET", "a"]);
    rec(&mut out, "busykey", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "0", "1000"]);
    rec(&mut out, "busykey: source kept", &mut s, &["GET", "a"]);
    cmd(&mut s, &["SET", "a", "2"]);
    rec(&mut out, "replace", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "0", "1000", "REPLACE"]);
    rec(&mut out, "replace: source gone", &mut s, &["EXISTS", "a"]);
    rec(&mut out, "replace: target value", &mut t, &["GET", "a"]);
    cmd(&mut s, &["SET", "a", "3"]);
    rec(&mut out, "copy replace", &mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "0", "1000", "copy", "replace"]);

    // KEYS: missing keys are skipped; an error on one key leaves it, the others still move.
    cmd(&mut s, &["MSET", "k1", "v1", "k2", "v2", "k3", "v3"]);
    rec(&mut out, "keys", &mut s, &["MIGRATE", "127.0.0.1", &tp, "", "0", "1000", "KEYS", "k1", "nope", "k2"]);
    rec(&mut out, "keys: source", &mut s, &["EXISTS", "k1", "k2", "k3"]);
    rec(&mut out, "keys: target", &mut t, &["MGET", "k1", "k2", "k3"]);
    cmd(&mut s, &["MSET", "k1", "w1", "k2", "w2"]);
    cmd(&mut t, &["DEL", "k2"]);
    rec(
        &mut out,
        "keys busy in the middle",
        &mut s,
        &["MIGRATE", "127.0.0.1", &tp, "", "0", "1000", "KEYS", "k3", "k1", "k2"],
    );
    rec(&mut out, "keys busy: source", &mut s, &["MGET", "k1", "k2", "k3"]);
    rec(&mut out, "keys busy: target", &mut t, &["MGET", "k1", "k2", "k3"]);

    // Destination db, and one that does not exist.
    cmd(&mut s, &["SET", "d", "in-db-5"]);
    rec(&mut out, "db 5", &mut s, &["MIGRATE", "127.0.0.1", &tp, "d", "5", "1000"]);
    cmd(&mut t, &["SELECT", "5"]);
    rec(&mut out, "db 5: target", &mut t, &["GET", "d"]);
    cmd(&mut t, &["SELECT", "0"]);
    cmd(&mut s, &["SET", "d", "x"]);
    rec(&mut out, "db out of range", &mut s, &["MIGRATE", "127.0.0.1", &tp, "d", "99", "1000"]);
    rec(&mut out, "db negative", &mut s, &["MIGRATE", "127.0.0.1", &tp, "d", "-1", "1000"]);
    rec(&mut out, "db out of range: source kept", &mut s, &["GET", "d"]);
    rec(&mut out, "back to db 0", &mut s, &["MIGRATE", "127.0.0.1", &tp, "d", "0", "1000", "REPLACE"]);

    // A target with requirepass.
    cmd(&mut s, &["MSET", "p1", "x", "p2", "y", "p3", "z", "p4", "w"]);
    rec(&mut out, "no auth", &mut s, &["MIGRATE", "127.0.0.1", &lp, "p1", "0", "1000"]);
    rec(&mut out, "wrong password", &mut s, &["MIGRATE", "127.0.0.1", &lp, "p1", "0", "1000", "AUTH", "nope"]);
    rec(&mut out, "wrong password: source kept", &mut s, &["EXISTS", "p1"]);
    rec(&mut out, "auth", &mut s, &["MIGRATE", "127.0.0.1", &lp, "p1", "0", "1000", "AUTH", "sekret"]);
    rec(&mut out, "auth2", &mut s, &["MIGRATE", "127.0.0.1", &lp, "p2", "0", "1000", "AUTH2", "default", "sekret"]);
    rec(
        &mut out,
        "auth2 wrong user",
        &mut s,
        &["MIGRATE", "127.0.0.1", &lp, "p3", "0", "1000", "AUTH2", "bob", "sekret"],
    );
    rec(
        &mut out,
        "auth2 keys",
        &mut s,
        &["MIGRATE", "127.0.0.1", &lp, "", "0", "1000", "AUTH2", "default", "sekret", "KEYS", "p3", "p4"],
    );
    rec(&mut out, "auth: target", &mut l, &["MGET", "p1", "p2", "p3", "p4"]);
    rec(&mut out, "auth: source", &mut s, &["EXISTS", "p1", "p2", "p3", "p4"]);
    // Against a target without a password, AUTH is the target's error (the RESTORE still ran there).
    cmd(&mut s, &["SET", "q", "1"]);
    rec(&mut out, "auth without requirepass", &mut s, &["MIGRATE", "127.0.0.1", &tp, "q", "0", "1000", "AUTH", "x"]);

    // WATCH sees the key leave.
    let mut w = src.conn();
    cmd(&mut s, &["SET", "wq", "1"]);
    cmd(&mut w, &["WATCH", "wq"]);
    rec(&mut out, "migrate watched", &mut s, &["MIGRATE", "127.0.0.1", &tp, "wq", "0", "1000"]);
    cmd(&mut w, &["MULTI"]);
    cmd(&mut w, &["SET", "other", "1"]);
    rec(&mut out, "watch fails", &mut w, &["EXEC"]);

    // A cached connection the target closed: retried once on a new connection.
    cmd(&mut s, &["SET", "r", "1"]);
    let conns = connections_received(&mut t);
    cmd(&mut t, &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    rec(&mut out, "retry after the target closed", &mut s, &["MIGRATE", "127.0.0.1", &tp, "r", "0", "1000"]);
    out.push(("retry reconnected".into(), format!("{}", connections_received(&mut t) - conns).into_bytes()));

    // I/O failures.
    cmd(&mut s, &["SET", "r", "2"]);
    rec(&mut out, "closed port copy", &mut s, &["MIGRATE", "127.0.0.1", &closed, "r", "0", "500", "COPY"]);
    rec(&mut out, "closed port", &mut s, &["MIGRATE", "127.0.0.1", &closed, "r", "0", "500"]);
    rec(&mut out, "closed port: source kept", &mut s, &["GET", "r"]);
    rec(&mut out, "huge timeout", &mut s, &["MIGRATE", "127.0.0.1", &closed, "r", "0", "9223372036854775807"]);
    rec(&mut out, "bad host", &mut s, &["MIGRATE", "", "1", "r", "0", "500"]);
    rec(&mut out, "negative port", &mut s, &["MIGRATE", "127.0.0.1", "-1", "r", "0", "500"]);
    let t0 = Instant::now();
    rec(&mut out, "silent target", &mut s, &["MIGRATE", "127.0.0.1", &silent, "r", "0", "400"]);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(390) && waited < Duration::from_millis(1500),
        "{kind:?}: a timeout of 400 ms, not retried, took {waited:?}"
    );
    let mut other = src.conn();
    rec(&mut out, "still serving", &mut other, &["GET", "r"]);
    let t0 = Instant::now();
    rec(&mut out, "no keys after KEYS", &mut s, &["MIGRATE", "127.0.0.1", &silent, "", "0", "0", "KEYS"]);
    rec(&mut out, "timeout 0 means 1000", &mut s, &["MIGRATE", "127.0.0.1", &silent, "", "0", "0", "KEYS", "r"]);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(990) && waited < Duration::from_millis(2500),
        "{kind:?}: timeout 0 is 1000 ms, took {waited:?}"
    );
    rec(&mut out, "negative timeout", &mut s, &["MIGRATE", "127.0.0.1", &tp, "r", "0", "-5", "REPLACE"]);
    out
}

#[test]
fn replies_match_a_redis_source() {
    need_redis();
    let (redis, ours) = (scenario(Kind::Redis), scenario(Kind::Slotway));
    assert_eq!(redis.len(), ours.len());
    for ((label, want), (_, got)) in redis.iter().zip(&ours) {
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(want),
            "{label}: slotway's reply differs from redis-server's"
        );
    }
    for (label, r) in &redis {
        eprintln!("{label:>40}: {}", String::from_utf8_lossy(r).replace("\r\n", " "));
    }
    // The script exercises what it claims (Redis's own answers, spelled out for a few).
    let find = |l: &str| String::from_utf8_lossy(&redis.iter().find(|(x, _)| x == l).expect(l).1).into_owned();
    assert_eq!(find("busykey"), "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n");
    assert_eq!(find("nokey"), "+NOKEY\r\n");
    assert!(find("wrong password").starts_with("-ERR Target instance replied with error: WRONGPASS"));
    assert_eq!(find("auth: target"), "*4\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n$1\r\nw\r\n");
    assert_eq!(find("silent target"), "-IOERR error or timeout reading to target instance\r\n");
    assert_eq!(find("closed port"), "-IOERR error or timeout writing to target instance\r\n");
    assert_eq!(find("retry after the target closed"), "+OK\r\n");
    assert_eq!(find("watch fails"), "*-1\r\n");
    assert_eq!(find("copy replace"), "+OK\r\n");
    assert_eq!(find("keys busy: source"), "*3\r\n$2\r\nw1\r\n$-1\r\n$-1\r\n");
}

/// Two MIGRATEs share one connection (and one SELECT); the cron closes it after 10 s idle.
#[test]
fn connections_are_cached_then_closed_when_idle() {
    need_redis();
    let mut runs = Vec::new();
    for kind in [Kind::Redis, Kind::Slotway] {
        let src = start(kind, &[]);
        let tgt = redis_server(&[]);
        let (mut s, mut t) = (src.conn(), tgt.conn());
        let tp = tgt.port.to_string();
        let before = connections_received(&mut t);
        cmd(&mut s, &["MSET", "a", "1", "b", "2", "c", "3"]);
        assert_eq!(cmd(&mut s, &["MIGRATE", "127.0.0.1", &tp, "a", "3", "1000"]), Frame::Simple("OK".into()));
        assert_eq!(cmd(&mut s, &["MIGRATE", "127.0.0.1", &tp, "b", "3", "1000"]), Frame::Simple("OK".into()));
        assert_eq!(connections_received(&mut t) - before, 1, "{kind:?}: one connection for two MIGRATEs");
        assert_eq!(client_count(&mut t), 2, "{kind:?}: the test's client and the cached one");
        let selects = info_field(&mut t, "commandstats", "cmdstat_select").expect("select stats");
        assert!(selects.starts_with("calls=1,"), "{kind:?}: SELECT sent once, got {selects}");
        runs.push((src, tgt, s, t));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for (_, _, s, t) in &mut runs {
        while client_count(t) > 1 {
            assert!(Instant::now() < deadline, "cached connection never closed");
            std::thread::sleep(Duration::from_millis(250));
        }
        // A later MIGRATE connects again.
        let before = connections_received(t);
        let tp = t.stream.peer_addr().expect("peer").port().to_string();
        assert_eq!(cmd(s, &["MIGRATE", "127.0.0.1", &tp, "c", "0", "1000"]), Frame::Simple("OK".into()));
        assert_eq!(connections_received(t) - before, 1);
    }
}

/// At most 64 cached connections: the 65th target evicts one. Distinct names for one target
/// (`0`-padded ports) make distinct cache entries, as in Redis.
#[test]
fn at_most_64_cached_connections() {
    need_redis();
    for kind in [Kind::Redis, Kind::Slotway] {
        let src = start(kind, &[]);
        let tgt = redis_server(&[]);
        let (mut s, mut t) = (src.conn(), tgt.conn());
        cmd(&mut s, &["SET", "k", "v"]);
        let before = connections_received(&mut t);
        for i in 0..70 {
            let port = format!("{}{}", "0".repeat(i), tgt.port);
            let r = cmd(&mut s, &["MIGRATE", "127.0.0.1", &port, "k", "0", "1000", "COPY", "REPLACE"]);
            assert_eq!(r, Frame::Simple("OK".into()), "{kind:?}: port {port}");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while client_count(&mut t) != 65 {
            assert!(Instant::now() < deadline, "{kind:?}: {} clients on the target, want 64 + 1", client_count(&mut t));
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(connections_received(&mut t) - before, 70, "{kind:?}: one connection per name");
    }
}

/// In cluster mode the source sends RESTORE-ASKING, as Redis does; RESTORE-ASKING restores.
#[test]
fn cluster_mode_sends_restore_asking() {
    need_redis();
    for kind in [Kind::Redis, Kind::Slotway] {
        let bus = free_port().to_string();
        let src = start(kind, &["--cluster-enabled", "yes", "--cluster-port", &bus]);
        let tgt = redis_server(&[]);
        let (mut s, mut t) = (src.conn(), tgt.conn());
        let _ = cmd(&mut s, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while cmd(&mut s, &["SET", "k", "v"]) != Frame::Simple("OK".into()) {
            assert!(Instant::now() < deadline, "{kind:?}: cluster never accepted writes");
            std::thread::sleep(Duration::from_millis(100));
        }
        let r = cmd(&mut s, &["MIGRATE", "127.0.0.1", &tgt.port.to_string(), "k", "0", "1000"]);
        assert_eq!(r, Frame::Simple("OK".into()), "{kind:?}");
        let stat = info_field(&mut t, "commandstats", "cmdstat_restore-asking");
        assert!(stat.is_some_and(|s| s.starts_with("calls=1,")), "{kind:?}: target got RESTORE-ASKING");
        assert_eq!(cmd(&mut t, &["GET", "k"]), Frame::Bulk("v".into()));
    }
    // RESTORE-ASKING on a slotway node is RESTORE.
    let node = slotway_node(&[]);
    let mut n = node.conn();
    cmd(&mut n, &["SET", "x", "payload"]);
    let Frame::Bulk(dump) = cmd(&mut n, &["DUMP", "x"]) else { panic!("DUMP") };
    n.send(&[b"RESTORE-ASKING", b"y", b"0", &dump]);
    assert_eq!(support::conn::parse(&n.read_reply().expect("reply")), Frame::Simple("OK".into()));
    assert_eq!(cmd(&mut n, &["GET", "y"]), Frame::Bulk("payload".into()));
    n.send(&[b"RESTORE-ASKING", b"y", b"0", &dump]);
    assert_eq!(
        support::conn::parse(&n.read_reply().expect("reply")),
        Frame::Error("BUSYKEY Target key name already exists.".into())
    );
}
