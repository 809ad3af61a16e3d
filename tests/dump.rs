//! DUMP/RESTORE against Debian's redis-server 7.0: payloads made by one server restored on the
//! other, for every type in its small and big encodings, contents and OBJECT ENCODING compared.

mod support;

use slotway::resp::Frame;
use support::conn::Conn;
use support::corpus::sort_frame;
use support::{redis_available, redis_server, slotway_node};

fn cmd(c: &mut Conn, args: &[&[u8]]) -> Frame {
    c.send(args);
    support::conn::parse(&c.read_reply().expect("reply"))
}

/// Commands that build one key per type and encoding, the same on both servers.
fn fixtures() -> Vec<(&'static str, Vec<Vec<Vec<u8>>>)> {
    let b = |v: Vec<String>| v.into_iter().map(String::into_bytes).collect::<Vec<_>>();
    let s = |x: &str| x.to_string();
    let n = |k: usize, f: &dyn Fn(usize) -> String| (0..k).map(f).collect::<Vec<_>>();
    let with = |head: &[&str], rest: Vec<String>| {
        let mut v: Vec<String> = head.iter().map(|x| x.to_string()).collect();
        v.extend(rest);
        b(v)
    };
    vec![
        ("str", vec![b(vec![s("SET"), s("str"), s("hello")])]),
        ("int", vec![b(vec![s("SET"), s("int"), s("-12345")])]),
        ("bigint", vec![b(vec![s("SET"), s("bigint"), s("12345678901234")])]),
        ("long", vec![b(vec![s("SET"), s("long"), "abc".repeat(100)])]),
        ("list", vec![with(&["RPUSH", "list"], n(10, &|i| format!("{}", i as i64 * 977 - 3000)))]),
        ("biglist", vec![with(&["RPUSH", "biglist"], n(2000, &|i| format!("item-{i}-{}", "x".repeat(i % 50))))]),
        ("hash", vec![with(&["HSET", "hash"], n(20, &|i| if i % 2 == 0 { format!("f{i}") } else { format!("{i}") }))]),
        ("bighash", vec![with(&["HSET", "bighash"], n(1200, &|i| format!("v{i}")))]),
        ("longhash", vec![b(vec![s("HSET"), s("longhash"), s("f"), "y".repeat(100)])]),
        ("intset", vec![with(&["SADD", "intset"], n(30, &|i| format!("{}", (i as i64 - 10) * 100_000)))]),
        ("set", vec![with(&["SADD", "set"], n(30, &|i| format!("m{i}")))]),
        ("bigintset", vec![with(&["SADD", "bigintset"], n(600, &|i| format!("{i}")))]),
        (
            "zset",
            vec![with(
                &["ZADD", "zset"],
                n(20, &|i| if i % 2 == 0 { format!("{}", i as f64 / 7.0) } else { format!("z{i}") }),
            )],
        ),
        (
            "bigzset",
            vec![
                with(
                    &["ZADD", "bigzset"],
                    n(400, &|i| if i % 2 == 0 { format!("{}", i as f64 * 1.5) } else { format!("z{i}") }),
                ),
                b(vec![s("ZADD"), s("bigzset"), s("inf"), s("top"), s("-inf"), s("bottom")]),
            ],
        ),
    ]
}

fn read_all(c: &mut Conn, key: &str) -> Vec<Frame> {
    let k = key.as_bytes();
    let ty = cmd(c, &[b"TYPE", k]);
    let enc = cmd(c, &[b"OBJECT", b"ENCODING", k]);
    let content = match ty.as_bytes().map(|b| b.to_vec()).as_deref() {
        Some(b"string") => cmd(c, &[b"GET", k]),
        Some(b"list") => cmd(c, &[b"LRANGE", k, b"0", b"-1"]),
        Some(b"hash") => sort_frame(cmd(c, &[b"HGETALL", k])),
        Some(b"set") => sort_frame(cmd(c, &[b"SMEMBERS", k])),
        Some(b"zset") => cmd(c, &[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"]),
        other => panic!("{key}: type {other:?}"),
    };
    // Listpack hashes are observable in order.
    let ordered = if enc.as_bytes().map(|b| &b[..]) == Some(&b"listpack"[..])
        && ty.as_bytes().map(|b| &b[..]) == Some(&b"hash"[..])
    {
        cmd(c, &[b"HGETALL", k])
    } else {
        Frame::Null
    };
    vec![ty, enc, content, ordered]
}

#[test]
fn payloads_cross_between_redis_and_slotway() {
    if !redis_available() {
        eprintln!("redis-server not installed; skipping");
        return;
    }
    let redis = redis_server(&[]);
    let node = slotway_node(&[]);
    let (mut r, mut s) = (redis.conn(), node.conn());
    for (key, cmds) in fixtures() {
        for c in &cmds {
            let a: Vec<&[u8]> = c.iter().map(|x| &x[..]).collect();
            cmd(&mut r, &a);
            cmd(&mut s, &a);
        }
        let expect = read_all(&mut r, key);
        assert_eq!(read_all(&mut s, key), expect, "{key}: same writes, same contents");

        // Redis -> slotway.
        let Frame::Bulk(payload) = cmd(&mut r, &[b"DUMP", key.as_bytes()]) else { panic!("{key}: DUMP") };
        let copy = format!("{key}:from-redis");
        let ok = cmd(&mut s, &[b"RESTORE", copy.as_bytes(), b"0", &payload]);
        assert_eq!(ok, Frame::Simple("OK".into()), "{key}: RESTORE of Redis's payload on slotway");
        assert_eq!(read_all(&mut s, &copy), expect, "{key}: restored from redis");

        // slotway -> Redis.
        let Frame::Bulk(ours) = cmd(&mut s, &[b"DUMP", key.as_bytes()]) else { panic!("{key}: DUMP") };
        let copy = format!("{key}:from-slotway");
        let ok = cmd(&mut r, &[b"RESTORE", copy.as_bytes(), b"0", &ours]);
        assert_eq!(ok, Frame::Simple("OK".into()), "{key}: RESTORE of our payload on redis");
        assert_eq!(read_all(&mut r, &copy), expect, "{key}: restored on redis");
        // Our payload restores on ourselves too.
        let copy = format!("{key}:self");
        cmd(&mut s, &[b"RESTORE", copy.as_bytes(), b"0", &ours]);
        assert_eq!(read_all(&mut s, &copy), expect, "{key}: restored on slotway");

        // Corruption: a flipped byte anywhere is refused the same way on both.
        for at in [0, payload.len() / 2, payload.len() - 1] {
            let mut bad = payload.to_vec();
            bad[at] ^= 0x20;
            let want = cmd(&mut r, &[b"RESTORE", b"corrupt", b"0", &bad]);
            assert_eq!(cmd(&mut s, &[b"RESTORE", b"corrupt", b"0", &bad]), want, "{key}: corrupt at {at}");
        }
    }
}

#[test]
fn garbage_payloads_never_hurt() {
    let node = slotway_node(&[]);
    let mut s = node.conn();
    let mut rng = support::rng::Rng::new(11);
    for i in 0..3000u32 {
        let len = (rng.next() % 64) as usize;
        let mut body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 && !body.is_empty() {
            body[0] %= 20;
        }
        // A valid footer, so the body itself reaches the decoder.
        body.extend_from_slice(&10u16.to_le_bytes());
        let crc = slotway::node::rdb::crc64::crc64(0, &body);
        body.extend_from_slice(&crc.to_le_bytes());
        match cmd(&mut s, &[b"RESTORE", b"g", b"0", &body, b"REPLACE"]) {
            Frame::Simple(_) | Frame::Error(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(cmd(&mut s, &[b"PING"]), Frame::Simple("PONG".into()));
}
