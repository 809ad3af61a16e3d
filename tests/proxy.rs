//! `slotway proxy` in front of a real Redis 7 cluster (3 masters + 3 replicas) and a slotway cluster (3 masters): an
//! ordinary non-cluster client must see one Redis. Single-key commands of every type, cross-slot
//! MGET/MSET/DEL/EXISTS merged, a 10,000-command pipeline answered in order, a live reshard with
//! no client-visible error, malformed input isolated to its client, and redis-benchmark clean.

mod support;

use slotway::cluster::key_slot;
use slotway::resp::Frame;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::cluster::both;
use support::cluster::{cli_cluster, run_bounded, Cluster, Kind};
use support::conn::encode;
use support::proxy::Proxy;
use support::Conn;

both!(commands_of_every_type, commands_of_every_type_redis, commands_of_every_type_slotway);
both!(cross_slot_multi_key, cross_slot_multi_key_redis, cross_slot_multi_key_slotway);
both!(pipeline_in_order, pipeline_in_order_redis, pipeline_in_order_slotway);
both!(fan_out_keyless, fan_out_keyless_redis, fan_out_keyless_slotway);
both!(reshard_under_load, reshard_under_load_redis, reshard_under_load_slotway);
both!(pipeline_order_across_slot_move, pipeline_order_across_slot_move_redis, pipeline_order_across_slot_move_slotway);
both!(pipeline_order_across_hello, pipeline_order_across_hello_redis, pipeline_order_across_hello_slotway);
both!(malformed_input_isolated, malformed_input_isolated_redis, malformed_input_isolated_slotway);
both!(benchmark_clean, benchmark_clean_redis, benchmark_clean_slotway);

/// The issue's clusters: a real Redis 7 cluster of 3 masters + 3 replicas made by
/// `redis-cli --cluster create --cluster-replicas 1` (nodes 0-2 are the masters), and a slotway
/// cluster of 3 masters (slotway nodes do not replicate yet).
fn cluster(kind: Kind) -> Cluster {
    let c = match kind {
        Kind::Redis => Cluster::create_replicated(kind, 3, 1),
        _ => Cluster::create(kind, 3),
    };
    c.wait_ok(Duration::from_secs(30));
    c
}

/// Keys held by the masters (replicas hold copies).
fn masters_dbsize(c: &Cluster) -> i64 {
    c.nodes.iter().filter(|n| is_master(n)).map(|n| n.dbsize()).sum()
}

fn is_master(n: &support::cluster::Node) -> bool {
    n.text(&["INFO", "replication"]).is_ok_and(|t| t.contains("role:master"))
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}
fn ok() -> Frame {
    Frame::Simple("OK".into())
}

fn commands_of_every_type(kind: Kind) {
    let c = cluster(kind);
    let p = Proxy::start(&c);
    let mut k = p.conn();
    assert_eq!(k.cmd(&["PING"]), Frame::Simple("PONG".into()));
    assert_eq!(k.cmd(&["ECHO", "hi"]), bulk("hi"));
    assert_eq!(k.cmd(&["SELECT", "0"]), ok());
    assert!(matches!(k.cmd(&["SELECT", "1"]), Frame::Error(_)));
    // Keys spread over all three masters.
    for i in 0..30 {
        let key = format!("str:{i}");
        assert_eq!(k.cmd(&["SET", &key, &i.to_string()]), ok());
        assert_eq!(k.cmd(&["GET", &key]), bulk(&i.to_string()));
        assert_eq!(k.cmd(&["INCRBY", &key, "10"]), Frame::Integer(i + 10));
    }
    assert_eq!(k.cmd(&["RPUSH", "list", "a", "b", "c"]), Frame::Integer(3));
    assert_eq!(k.cmd(&["LRANGE", "list", "0", "-1"]), Frame::Array(vec![bulk("a"), bulk("b"), bulk("c")]));
    assert_eq!(k.cmd(&["HSET", "hash", "f", "v"]), Frame::Integer(1));
    assert_eq!(k.cmd(&["HGET", "hash", "f"]), bulk("v"));
    assert_eq!(k.cmd(&["SADD", "set", "x", "y"]), Frame::Integer(2));
    assert_eq!(k.cmd(&["SCARD", "set"]), Frame::Integer(2));
    assert_eq!(k.cmd(&["ZADD", "zset", "1", "m"]), Frame::Integer(1));
    assert_eq!(k.cmd(&["ZSCORE", "zset", "m"]), bulk("1"));
    assert_eq!(k.cmd(&["EXPIRE", "hash", "100"]), Frame::Integer(1));
    assert!(matches!(k.cmd(&["TTL", "hash"]), Frame::Integer(t) if t > 90));
    assert_eq!(k.cmd(&["TYPE", "zset"]), Frame::Simple("zset".into()));
    let wrong = k.cmd(&["LPUSH", "hash", "x"]);
    assert!(matches!(&wrong, Frame::Error(e) if e.starts_with(b"WRONGTYPE")), "{wrong:?}");
    assert_eq!(k.cmd(&["CLIENT", "SETNAME", "me"]), ok());
    assert_eq!(k.cmd(&["CLIENT", "GETNAME"]), bulk("me"));
    assert!(matches!(k.cmd(&["CLIENT", "ID"]), Frame::Integer(_)));
    assert_eq!(k.cmd(&["CONFIG", "GET", "save"]), Frame::Array(vec![bulk("save"), bulk("")]),);
    let info = k.cmd(&["INFO"]);
    let text = String::from_utf8_lossy(info.as_bytes().expect("info text")).into_owned();
    assert!(text.contains("# Proxy") && text.contains("proxy_topology_slots_covered:16384"), "{text}");
    assert!(matches!(k.cmd(&["HELLO", "3"]), Frame::Map(_)));
    assert_eq!(k.cmd(&["HGETALL", "hash"]), Frame::Map(vec![(bulk("f"), bulk("v"))]));
    client_info_like_redis(&p);
    assert_eq!(k.cmd(&["QUIT"]), ok());
    assert!(k.is_closed());
}

/// CLIENT INFO through the proxy: Redis 7.0's fields in Redis's order, with the proxy's own id,
/// name, protocol and addresses.
fn client_info_like_redis(p: &Proxy) {
    let fields = |line: &str| -> Vec<(String, String)> {
        line.trim_end()
            .split(' ')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    };
    let text = |f: Frame| match f {
        Frame::Bulk(b) | Frame::Verbatim(_, b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    };
    let real = support::redis_server(&[]);
    let want = fields(&text(real.conn().cmd(&["CLIENT", "INFO"])));
    let mut k = p.conn();
    assert_eq!(k.cmd(&["CLIENT", "SETNAME", "infotest"]), ok());
    let Frame::Integer(id) = k.cmd(&["CLIENT", "ID"]) else { panic!("CLIENT ID") };
    let got = fields(&text(k.cmd(&["CLIENT", "INFO"])));
    let names = |v: &[(String, String)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want));
    let get = |k: &str| got.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("");
    assert_eq!(get("id"), id.to_string());
    assert_eq!(get("name"), "infotest");
    assert_eq!(get("laddr"), format!("127.0.0.1:{}", p.port));
    assert!(get("addr").starts_with("127.0.0.1:"));
    assert_eq!((get("cmd"), get("resp"), get("db")), ("client|info", "2", "0"));
}

fn cross_slot_multi_key(kind: Kind) {
    let c = cluster(kind);
    let p = Proxy::start(&c);
    let mut k = p.conn();
    let keys: Vec<String> = (0..20).map(|i| format!("mk:{i}")).collect();
    let mut mset = vec!["MSET".to_string()];
    for (i, key) in keys.iter().enumerate() {
        mset.push(key.clone());
        mset.push(format!("v{i}"));
    }
    let args: Vec<&str> = mset.iter().map(|s| s.as_str()).collect();
    assert_eq!(k.cmd(&args), ok());
    let mut mget: Vec<&str> = vec!["MGET"];
    mget.extend(keys.iter().map(|s| s.as_str()));
    mget.insert(3, "missing:key");
    let mut want: Vec<Frame> = (0..20).map(|i| bulk(&format!("v{i}"))).collect();
    want.insert(2, Frame::Null);
    assert_eq!(k.cmd(&mget), Frame::Array(want));
    let mut exists = vec!["EXISTS"];
    exists.extend(keys.iter().map(|s| s.as_str()));
    exists.push("missing:key");
    exists.push("mk:0");
    assert_eq!(k.cmd(&exists), Frame::Integer(21));
    let mut del = vec!["DEL"];
    del.extend(keys[..10].iter().map(|s| s.as_str()));
    del.push("missing:key");
    assert_eq!(k.cmd(&del), Frame::Integer(10));
    exists[0] = "EXISTS";
    assert_eq!(k.cmd(&exists), Frame::Integer(10));
    assert_eq!(
        k.cmd(&["MSETNX", "a", "1", "b", "2"]),
        Frame::Error("CROSSSLOT Keys in request don't hash to the same slot".into())
    );
    assert_eq!(k.cmd(&["MSETNX", "{t}a", "1", "{t}b", "2"]), Frame::Integer(1));
    assert_eq!(
        k.cmd(&["SUNION", "set:a", "set:b"]),
        Frame::Error("CROSSSLOT Keys in request don't hash to the same slot".into())
    );
}

/// DBSIZE, KEYS, FLUSHALL and FLUSHDB answer as one Redis holding every key would: every master
/// is asked and the replies merged (checked against the nodes themselves).
fn fan_out_keyless(kind: Kind) {
    let c = cluster(kind);
    let p = Proxy::start(&c);
    let mut k = p.conn();
    assert_eq!(k.cmd(&["FLUSHALL"]), ok());
    assert_eq!(masters_dbsize(&c), 0);
    let keys: Vec<String> = (0..200).map(|i| format!("fan:{i}")).collect();
    for key in &keys {
        assert_eq!(k.cmd(&["SET", key, "v"]), ok());
    }
    assert_eq!(k.cmd(&["SET", "other", "v"]), ok());
    assert_eq!(k.cmd(&["DBSIZE"]), Frame::Integer(201));
    assert_eq!(masters_dbsize(&c), 201);
    assert!(c.nodes.iter().filter(|n| is_master(n)).all(|n| n.dbsize() > 0), "keys on every master");
    let Frame::Array(found) = k.cmd(&["KEYS", "fan:*"]) else { panic!("KEYS reply") };
    let mut found: Vec<String> = found
        .into_iter()
        .map(|f| match f {
            Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    found.sort();
    let mut want = keys.clone();
    want.sort();
    assert_eq!(found, want);
    assert_eq!(k.cmd(&["KEYS", "nomatch*"]), Frame::Array(vec![]));
    match k.cmd(&["RANDOMKEY"]) {
        Frame::Bulk(b) => assert!(want.contains(&String::from_utf8(b.to_vec()).unwrap()) || &b[..] == b"other"),
        other => panic!("RANDOMKEY: {other:?}"),
    }
    // A reply that spans many reads of the backend connection (KEYS of 20,000 keys, ~400 KB over
    // the three masters) comes back whole.
    let mut pipe = Vec::new();
    for i in 0..20_000 {
        pipe.extend(encode(&[b"SET", format!("big:{i:05}").as_bytes(), b"v"]));
    }
    k.send_raw(&pipe);
    for _ in 0..20_000 {
        assert_eq!(k.read_reply().expect("SET reply"), b"+OK\r\n");
    }
    let Frame::Array(big) = k.cmd(&["KEYS", "big:*"]) else { panic!("KEYS big:*") };
    assert_eq!(big.len(), 20_000);
    assert_eq!(k.cmd(&["DBSIZE"]), Frame::Integer(20_201));
    let mut del = vec!["DEL".to_string()];
    del.extend((0..20_000).map(|i| format!("big:{i:05}")));
    let del: Vec<&str> = del.iter().map(|s| s.as_str()).collect();
    assert_eq!(k.cmd(&del), Frame::Integer(20_000));
    // One key left, on one master: RANDOMKEY finds it whichever master would have been asked.
    let mut del = vec!["DEL", "other"];
    del.extend(keys.iter().skip(1).map(|s| s.as_str()));
    assert_eq!(k.cmd(&del), Frame::Integer(200));
    for _ in 0..10 {
        assert_eq!(k.cmd(&["RANDOMKEY"]), bulk(&keys[0]));
    }
    assert_eq!(k.cmd(&["FLUSHDB", "SYNC"]), ok());
    assert_eq!(k.cmd(&["RANDOMKEY"]), Frame::Null);
    assert_eq!(k.cmd(&["DBSIZE"]), Frame::Integer(0));
    assert_eq!(masters_dbsize(&c), 0);
    assert_eq!(
        k.cmd(&["FLUSHALL", "NOW"]),
        Frame::Error("ERR syntax error".into()),
        "a node's own error comes back as is"
    );
}

fn pipeline_in_order(kind: Kind) {
    let c = cluster(kind);
    let p = Proxy::start(&c);
    let mut k = p.conn();
    let mut out = Vec::new();
    let mut want = Vec::new();
    for i in 0..10_000u32 {
        let key = format!("p:{}", i % 500);
        match i % 4 {
            0 => {
                out.extend(encode(&[b"SET", key.as_bytes(), i.to_string().as_bytes()]));
                want.push(b"+OK\r\n".to_vec());
            }
            1 => {
                // Answered by the proxy itself, in between forwarded replies.
                out.extend(encode(&[b"ECHO", i.to_string().as_bytes()]));
                want.push(format!("${}\r\n{i}\r\n", i.to_string().len()).into_bytes());
            }
            2 => {
                let k2 = format!("p:{}", (i - 2) % 500);
                out.extend(encode(&[b"GET", k2.as_bytes()]));
                let v = (i - 2).to_string();
                want.push(format!("${}\r\n{v}\r\n", v.len()).into_bytes());
            }
            _ => {
                let ck = format!("cnt:{}", i % 97);
                out.extend(encode(&[b"INCR", ck.as_bytes()]));
                want.push(format!(":{}\r\n", (i / 97) / 4 + 1).into_bytes());
            }
        }
    }
    // Counter values depend on how often each counter key came up: compute them exactly.
    let mut counts = std::collections::HashMap::new();
    for i in 0..10_000u32 {
        if i % 4 == 3 {
            let c = counts.entry(i % 97).or_insert(0u32);
            *c += 1;
            want[i as usize] = format!(":{c}\r\n").into_bytes();
        }
    }
    k.send_raw(&out);
    for (i, w) in want.iter().enumerate() {
        let got = k.read_reply().expect("reply");
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(w), "reply {i}");
    }
}

fn reshard_under_load(kind: Kind) {
    let c = cluster(kind);
    let p = Proxy::start(&c);
    let stop = Arc::new(AtomicBool::new(false));
    let port = p.port;
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut k = Conn::connect(port);
            let mut n = 0u64;
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let key = format!("load:{}", n % 2000);
                let v = n.to_string();
                match k.cmd(&["SET", &key, &v]) {
                    Frame::Simple(s) if s == "OK" => {}
                    other => errors.push(format!("SET {key}: {other:?}")),
                }
                match k.cmd(&["GET", &key]) {
                    Frame::Bulk(b) if b == v.as_bytes() => {}
                    other => errors.push(format!("GET {key}: {other:?}")),
                }
                n += 1;
            }
            (n, errors)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (from, to) = (c.node(0).myid(), c.node(1).myid());
    let out = cli_cluster(
        "reshard",
        &[&c.node(0).addr(), "--cluster-from", &from, "--cluster-to", &to, "--cluster-slots", "300", "--cluster-yes"],
        Duration::from_secs(120),
    );
    assert!(out.ok, "reshard failed: {}", out.describe());
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (n, errors) = writer.join().expect("writer");
    assert!(
        errors.is_empty(),
        "{} client-visible errors in {n} rounds, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(n > 100, "only {n} rounds");
    // The proxy's map follows the reshard (by MOVED at once, by refresh at the latest).
    let want = format!("addr={},role=Master,slots={}", c.node(0).addr(), 5461 - 300);
    let mut text = String::new();
    for _ in 0..100 {
        let info = p.conn().cmd(&["INFO"]);
        text = String::from_utf8_lossy(info.as_bytes().expect("info")).into_owned();
        if text.contains(&want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("proxy map never showed {want}: {text}");
}

/// A client pipelines INCRs of one key while its slot moves to another master (IMPORTING,
/// MIGRATING, MIGRATE, SETSLOT NODE, by hand so the move lands under a full pipeline). Requests
/// in flight to the old owner come back MOVED and are sent again; requests parsed after the map
/// changed must not overtake them, so every INCR's reply is the previous one plus one.
fn pipeline_order_across_slot_move(kind: Kind) {
    let c = cluster(kind);
    let p = Proxy::start(&c);
    // Slots 0-5460 belong to node 0 and node 1 is another master (`redis-cli --cluster create`).
    let key = (0..).map(|i| format!("order:{i}")).find(|k| key_slot(k.as_bytes()) < 5461).expect("a key");
    let slot = key_slot(key.as_bytes()).to_string();
    let (from, to) = (c.node(0), c.node(1));
    let (from_id, to_id) = (from.myid(), to.myid());
    // One connection, written by one thread and read by another, so the proxy always holds
    // requests of this client in flight (a client that waits for each batch would not).
    let stop = Arc::new(AtomicBool::new(false));
    let sock = std::net::TcpStream::connect(("127.0.0.1", p.port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    sock.set_write_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let closer = sock.try_clone().expect("clone");
    let writer = {
        let (stop, read, key) = (stop.clone(), read.clone(), key.clone());
        let mut w = sock.try_clone().expect("clone");
        std::thread::spawn(move || {
            use std::io::Write;
            let batch: Vec<u8> = (0..50).flat_map(|_| encode(&[b"INCR", key.as_bytes()])).collect();
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if sent - read.load(Ordering::Relaxed) > 2000 {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                w.write_all(&batch).expect("write");
                sent += 50;
            }
            sent
        })
    };
    let reader = {
        let read = read.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut r = std::io::BufReader::new(sock);
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return Ok(read.load(Ordering::Relaxed));
                }
                let n = read.load(Ordering::Relaxed) + 1;
                if line != format!(":{n}\r\n") {
                    return Err(format!("after {} INCRs the reply was {line:?}", n - 1));
                }
                read.store(n, Ordering::Relaxed);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let run = |n: &support::cluster::Node, args: &[&str]| {
        let r = n.cmd(args).unwrap_or_else(|e| panic!("{args:?} on {}: {e}", n.addr()));
        assert!(!matches!(r, Frame::Error(_)), "{args:?} on {}: {r:?}", n.addr());
    };
    run(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
    run(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
    std::thread::sleep(Duration::from_millis(100));
    let (host, port_s) = to.addr().rsplit_once(':').map(|(h, p)| (h.to_string(), p.to_string())).expect("addr");
    run(from, &["MIGRATE", &host, &port_s, "", "0", "5000", "KEYS", &key]);
    std::thread::sleep(Duration::from_millis(100));
    run(to, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
    run(from, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let sent = writer.join().expect("writer");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while read.load(Ordering::Relaxed) < sent && !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = closer.shutdown(std::net::Shutdown::Both);
    let n = reader.join().expect("reader").unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    assert_eq!(n, sent, "{kind:?}: replies read");
    assert!(n >= 1000, "{kind:?}: only {n} INCRs");
    let got = p.conn().cmd(&["GET", &key]);
    assert_eq!(got, bulk(&n.to_string()), "{kind:?}: the key's final value");
}

/// HELLO 3 / HELLO 2 in the middle of a pipeline: the requests after it go on backend
/// connections of the other protocol, and must still run after the ones before it.
fn pipeline_order_across_hello(kind: Kind) {
    let c = cluster(kind);
    let p = Proxy::start(&c);
    let mut k = p.conn();
    let mut batch = Vec::new();
    for round in 0..40 {
        for _ in 0..100 {
            batch.extend(encode(&[b"INCR", b"hello-order"]));
        }
        batch.extend(encode(&[b"HELLO", if round % 2 == 0 { b"3" } else { b"2" }]));
    }
    k.send_raw(&batch);
    let mut n = 0;
    for round in 0..40 {
        for _ in 0..100 {
            n += 1;
            let r = k.read_reply().expect("a reply");
            assert_eq!(String::from_utf8_lossy(&r), format!(":{n}\r\n"), "{kind:?}: INCR {n} (round {round})");
        }
        let hello = k.read_reply().expect("HELLO's reply");
        assert!(hello.starts_with(if round % 2 == 0 { b"%" } else { b"*" }), "{kind:?}: {hello:?}");
    }
}

fn malformed_input_isolated(kind: Kind) {
    let c = cluster(kind);
    let p = Proxy::start(&c);
    let mut good = p.conn();
    assert_eq!(good.cmd(&["SET", "iso", "1"]), ok());
    let mut bad = p.conn();
    bad.send_raw(b"*1\r\n$4\r\nPING\r\n*abc\r\n");
    assert_eq!(bad.read_reply().expect("pong"), b"+PONG\r\n");
    assert_eq!(bad.read_reply().expect("error"), b"-ERR Protocol error: invalid multibulk length\r\n");
    assert!(bad.is_closed());
    let mut bad2 = p.conn();
    assert_eq!(bad2.raw(&["NOSUCHCMD", "x"]), b"-ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' \r\n");
    assert_eq!(bad2.raw(&["GET"]), b"-ERR wrong number of arguments for 'get' command\r\n");
    assert_eq!(bad2.raw(&["GET", "iso"]), b"$1\r\n1\r\n");
    assert_eq!(good.cmd(&["GET", "iso"]), bulk("1"));
    // Inline commands are re-encoded before forwarding.
    good.send_raw(b"GET iso\r\n");
    assert_eq!(good.read_reply().expect("inline"), b"$1\r\n1\r\n");
    // An MSET whose last key has no value, its keys in different slots (so it would be split)
    // and in one slot (so a node answers): Redis's own reply both times, the connection stays.
    let real = support::redis_server(&[]);
    let mut r = real.conn();
    for args in [&["MSET", "a", "1", "b"][..], &["MSET", "{t}a", "1", "{t}b"]] {
        assert_eq!(bad2.raw(args), r.raw(args), "{args:?}");
    }
    assert_eq!(bad2.raw(&["GET", "iso"]), b"$1\r\n1\r\n");
    // SCAN would see one master only: refused with a clear error, not answered wrongly.
    assert_eq!(bad2.raw(&["SCAN", "0"]), b"-ERR 'scan' is not supported through the slotway proxy yet\r\n");
}

fn benchmark_clean(kind: Kind) {
    let c = cluster(kind);
    let p = Proxy::start(&c);
    let args: Vec<String> = [
        "-p",
        &p.port.to_string(),
        "-P",
        "16",
        "-r",
        "100000",
        "-t",
        "set,get,incr,lpush,lpop,mset",
        "-n",
        "20000",
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_bounded("redis-benchmark", &args, Duration::from_secs(180));
    assert!(out.ok, "{}", out.describe());
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains("ERR") && !all.to_lowercase().contains("error"), "{all}");
    for t in ["SET", "GET", "INCR", "LPUSH", "LPOP", "MSET"] {
        assert!(all.contains(&format!("{t}: ")) || all.contains(&format!("{t} (")), "{t} missing: {all}");
    }
    let info = p.conn().cmd(&["INFO"]);
    let text = String::from_utf8_lossy(info.as_bytes().expect("info")).into_owned();
    assert!(text.contains("proxy_backend_errors:0"), "{text}");
}
