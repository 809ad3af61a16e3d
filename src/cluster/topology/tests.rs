use super::*;
use bytes::Bytes;
use proptest::prelude::*;

fn parse_raw(raw: &[u8]) -> Vec<Frame> {
    let buf = Bytes::copy_from_slice(raw);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = buf.slice(pos..);
        let (f, n) = Frame::parse(&rest).expect("valid").expect("complete");
        out.push(f);
        pos += n;
    }
    out
}

fn b(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}
fn i(n: i64) -> Frame {
    Frame::Integer(n)
}
fn arr(v: Vec<Frame>) -> Frame {
    Frame::Array(v)
}
fn map(v: Vec<(&str, Frame)>) -> Frame {
    Frame::Map(v.into_iter().map(|(k, v)| (b(k), v)).collect())
}
/// The same reply as a RESP2 server sends it: maps flattened to `[k, v, ...]` arrays.
fn resp2(f: &Frame) -> Frame {
    match f {
        Frame::Map(kv) => Frame::Array(kv.iter().flat_map(|(k, v)| [resp2(k), resp2(v)]).collect()),
        Frame::Array(v) => Frame::Array(v.iter().map(resp2).collect()),
        Frame::Null => Frame::Null,
        other => other.clone(),
    }
}

// Replies captured from Debian's redis-server 7.0.15, one node owning 0-100 and 200, never told
// its own IP (so every address is empty): the endpoint rule must fill in the seed's host.
const REAL_7_0: &[u8] = b"*1\r\n*4\r\n$5\r\nslots\r\n*4\r\n:0\r\n:100\r\n:200\r\n:200\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n$40\r\na8dd7a7328f633513bdc914fcc0049d88971e262\r\n$4\r\nport\r\n:17411\r\n$2\r\nip\r\n$0\r\n\r\n$8\r\nendpoint\r\n$0\r\n\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n\
*2\r\n*3\r\n:0\r\n:100\r\n*4\r\n$0\r\n\r\n:17411\r\n$40\r\na8dd7a7328f633513bdc914fcc0049d88971e262\r\n*0\r\n*3\r\n:200\r\n:200\r\n*4\r\n$0\r\n\r\n:17411\r\n$40\r\na8dd7a7328f633513bdc914fcc0049d88971e262\r\n*0\r\n\
$96\r\na8dd7a7328f633513bdc914fcc0049d88971e262 :17411@27411 myself,master - 0 0 0 connected 0-100 200\n\r\n\
*1\r\n%2\r\n$5\r\nslots\r\n*4\r\n:0\r\n:100\r\n:200\r\n:200\r\n$5\r\nnodes\r\n*1\r\n%7\r\n$2\r\nid\r\n$40\r\na8dd7a7328f633513bdc914fcc0049d88971e262\r\n$4\r\nport\r\n:17411\r\n$2\r\nip\r\n$0\r\n\r\n$8\r\nendpoint\r\n$0\r\n\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n\
=100\r\ntxt:a8dd7a7328f633513bdc914fcc0049d88971e262 :17411@27411 myself,master - 0 0 0 connected 0-100 200\n\r\n\
*2\r\n*3\r\n:0\r\n:100\r\n*4\r\n_\r\n:17411\r\n$40\r\na8dd7a7328f633513bdc914fcc0049d88971e262\r\n%1\r\n$2\r\nip\r\n$0\r\n\r\n*3\r\n:200\r\n:200\r\n*4\r\n_\r\n:17411\r\n$40\r\na8dd7a7328f633513bdc914fcc0049d88971e262\r\n%1\r\n$2\r\nip\r\n$0\r\n\r\n\
*2\r\n*3\r\n:0\r\n:100\r\n*4\r\n$1\r\n?\r\n:17411\r\n$40\r\na8dd7a7328f633513bdc914fcc0049d88971e262\r\n%1\r\n$2\r\nip\r\n$0\r\n\r\n*3\r\n:200\r\n:200\r\n*4\r\n$1\r\n?\r\n:17411\r\n$40\r\na8dd7a7328f633513bdc914fcc0049d88971e262\r\n%1\r\n$2\r\nip\r\n$0\r\n\r\n";

#[test]
fn real_redis_7_0_replies_with_empty_and_unknown_endpoints() {
    let f = parse_raw(REAL_7_0);
    assert_eq!(f.len(), 7);
    let views = [
        parse_shards(&f[0], "10.0.0.5").unwrap(),
        parse_slots(&f[1], "10.0.0.5").unwrap(),
        parse_nodes(&f[2], "10.0.0.5").unwrap(),
        parse_shards(&f[3], "10.0.0.5").unwrap(),
        parse_nodes(&f[4], "10.0.0.5").unwrap(),
        parse_slots(&f[5], "10.0.0.5").unwrap(), // unknown-endpoint: NULL
        parse_slots(&f[6], "10.0.0.5").unwrap(), // hostname preferred, none set: "?"
    ];
    for (n, v) in views.iter().enumerate() {
        assert_eq!(v.shards().len(), 1, "view {n}");
        let s = &v.shards()[0];
        assert_eq!(s.master.addr, Addr::new("10.0.0.5", 17411), "view {n}");
        assert_eq!(s.master.ip, "10.0.0.5", "view {n}");
        assert_eq!(s.master.id, "a8dd7a7328f633513bdc914fcc0049d88971e262", "view {n}");
        assert_eq!(s.slots, vec![(0, 100), (200, 200)], "view {n}");
        assert_eq!(v.master_for_slot(50).map(|m| m.addr.port), Some(17411));
        assert!(v.master_for_slot(101).is_none());
        assert_eq!(v.covered_slots(), 102);
        assert!(!v.is_complete());
        assert!(views[0].same_routing(v), "view {n} differs: {:?}", views[0].diff(v));
    }
    assert_eq!(views[0].shards()[0].master.health, Health::Online);
    assert_eq!(views[0].shards()[0].master.replication_offset, Some(0));
    // RESP2 and RESP3 SHARDS are the same view, byte for byte of what matters and more.
    assert_eq!(views[0], views[3]);
}

const IDS: [&str; 6] = [
    "1111111111111111111111111111111111111111",
    "2222222222222222222222222222222222222222",
    "3333333333333333333333333333333333333333",
    "4444444444444444444444444444444444444444",
    "5555555555555555555555555555555555555555",
    "6666666666666666666666666666666666666666",
];

fn shard_node(n: usize, role: &str, health: &str) -> Frame {
    map(vec![
        ("id", b(IDS[n])),
        ("port", i(7000 + n as i64)),
        ("ip", b("10.0.0.1")),
        ("endpoint", b("10.0.0.1")),
        ("role", b(role)),
        ("replication-offset", i(1234)),
        ("health", b(health)),
    ])
}

/// Three masters (7000..7002) with one replica each (7003..7005): 0-5460, 5461-10922, 10923-16383,
/// and master 7000 also owning a lone slot moved out of the middle range.
fn shards3() -> Frame {
    arr(vec![
        map(vec![
            ("slots", arr(vec![i(0), i(5460), i(6000), i(6000)])),
            ("nodes", arr(vec![shard_node(0, "master", "online"), shard_node(3, "replica", "online")])),
        ]),
        map(vec![
            ("slots", arr(vec![i(5461), i(5999), i(6001), i(10922)])),
            ("nodes", arr(vec![shard_node(4, "replica", "online"), shard_node(1, "master", "online")])),
        ]),
        map(vec![
            ("slots", arr(vec![i(10923), i(16383)])),
            ("nodes", arr(vec![shard_node(2, "master", "online"), shard_node(5, "replica", "online")])),
        ]),
    ])
}

fn slots_node(n: usize) -> Frame {
    arr(vec![b("10.0.0.1"), i(7000 + n as i64), b(IDS[n]), map(vec![])])
}

fn slots3() -> Frame {
    let e = |a, z, m: usize, r: usize| arr(vec![i(a), i(z), slots_node(m), slots_node(r)]);
    arr(vec![e(10923, 16383, 2, 5), e(0, 5460, 0, 3), e(6000, 6000, 0, 3), e(5461, 5999, 1, 4), e(6001, 10922, 1, 4)])
}

fn nodes3() -> String {
    [
        "1111111111111111111111111111111111111111 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 6000",
        "2222222222222222222222222222222222222222 10.0.0.1:7001@17001 master - 0 1700000000000 7 connected 5461-5999 6001-10922 [6001->-3333333333333333333333333333333333333333]",
        "3333333333333333333333333333333333333333 10.0.0.1:7002@17002 master - 0 1700000000000 3 connected 10923-16383 [6001-<-2222222222222222222222222222222222222222]",
        "4444444444444444444444444444444444444444 10.0.0.1:7003@17003 slave 1111111111111111111111111111111111111111 0 1700000000000 1 connected",
        "5555555555555555555555555555555555555555 10.0.0.1:7004@17004 slave 2222222222222222222222222222222222222222 0 1700000000000 7 connected",
        "6666666666666666666666666666666666666666 10.0.0.1:7005@17005 slave 3333333333333333333333333333333333333333 0 1700000000000 3 connected",
        "",
    ]
    .join("\n")
}

#[test]
fn three_views_of_one_cluster_agree_in_resp2_and_resp3() {
    let shards = parse_shards(&shards3(), "seed").unwrap();
    let shards2 = parse_shards(&resp2(&shards3()), "seed").unwrap();
    let slots = parse_slots(&slots3(), "seed").unwrap();
    let slots2 = parse_slots(&resp2(&slots3()), "seed").unwrap();
    let nodes = parse_nodes(&b(&nodes3()), "seed").unwrap();
    let nodes3v = parse_nodes(&Frame::Verbatim(Bytes::from_static(b"txt"), Bytes::from(nodes3())), "seed").unwrap();
    assert_eq!(shards, shards2);
    assert_eq!(slots, slots2);
    assert_eq!(nodes, nodes3v);
    for v in [&slots, &nodes] {
        assert!(shards.same_routing(v), "{:?}", shards.diff(v));
    }
    for v in [&shards, &slots, &nodes] {
        assert!(v.is_complete());
        assert_eq!(v.shards().len(), 3);
        assert_eq!(v.master_for_slot(6000).unwrap().id, IDS[0]);
        assert_eq!(v.master_for_slot(6001).unwrap().addr, Addr::new("10.0.0.1", 7001));
        assert_eq!(v.master_for_slot(16383).unwrap().id, IDS[2]);
        let reps = v.replicas_for_slot(0);
        assert_eq!(reps.len(), 1);
        assert_eq!((reps[0].id.as_str(), reps[0].role), (IDS[3], Role::Replica));
        assert_eq!(v.nodes().count(), 6);
        assert_eq!(v.shards()[1].slots, vec![(5461, 5999), (6001, 10922)]);
    }
    // Only NODES carries epochs; SHARDS and SLOTS take one from CLUSTER INFO.
    assert_eq!(nodes.config_epoch, 7);
    assert_eq!(shards.config_epoch, 0);
    let info = b("cluster_state:ok\r\ncluster_current_epoch:9\r\ncluster_my_epoch:1\r\n");
    assert_eq!(parse_info_epoch(&info).unwrap(), 9);
    assert_eq!(shards.clone().with_config_epoch(9).config_epoch, 9);
    assert_eq!(freshest([&shards, &nodes, &slots]).unwrap().config_epoch, 7);
    assert_eq!(parse_reply("shards", &shards3(), "seed").unwrap(), shards);
}

#[test]
fn shards_health_tls_and_hostnames() {
    let reply = arr(vec![map(vec![
        ("slots", arr(vec![b("0"), b("16383")])), // slots as bulk strings are accepted too
        (
            "nodes",
            arr(vec![
                map(vec![
                    ("id", b(IDS[0])),
                    ("tls-port", i(7443)),
                    ("ip", b("10.0.0.1")),
                    ("endpoint", b("node-a.example")),
                    ("hostname", b("node-a.example")),
                    ("role", b("master")),
                    ("replication-offset", i(10)),
                    ("health", b("online")),
                    ("future-field", arr(vec![])),
                ]),
                map(vec![
                    ("id", b(IDS[1])),
                    ("port", i(7001)),
                    ("ip", b("10.0.0.2")),
                    ("endpoint", b("?")),
                    ("role", b("replica")),
                    ("replication-offset", i(0)),
                    ("health", b("loading")),
                ]),
                map(vec![
                    ("id", b(IDS[2])),
                    ("port", i(7002)),
                    ("ip", b("10.0.0.3")),
                    ("endpoint", b("10.0.0.3")),
                    ("role", b("replica")),
                    ("replication-offset", i(10)),
                    ("health", b("fail")),
                ]),
            ]),
        ),
    ])]);
    let t = parse_shards(&reply, "192.168.1.1").unwrap();
    let m = t.master_for_slot(0).unwrap();
    assert_eq!(m.addr, Addr::new("node-a.example", 7443));
    assert_eq!((m.tls_port, m.hostname.as_deref(), m.ip.as_str()), (Some(7443), Some("node-a.example"), "10.0.0.1"));
    // Replicas are sorted by address.
    let r = t.replicas_for_slot(0);
    assert_eq!(r[1].addr, Addr::new("192.168.1.1", 7001));
    assert_eq!(r[1].health, Health::Loading);
    assert!(!r[1].is_serving());
    assert_eq!((&*r[0].addr.host, r[0].health), ("10.0.0.3", Health::Fail));
    assert!(!r[0].is_serving());
    // A shard of a failed master with no slots and no master left is dropped; with slots it is an error.
    let orphan = |slots: Vec<Frame>| {
        arr(vec![map(vec![("slots", arr(slots)), ("nodes", arr(vec![shard_node(3, "replica", "online")]))])])
    };
    assert_eq!(parse_shards(&orphan(vec![]), "s").unwrap().shards().len(), 0);
    assert_eq!(parse_shards(&orphan(vec![i(1), i(2)]), "s"), Err(TopologyError::NoMaster));
}

#[test]
fn slots_node_entry_variants() {
    let reply = arr(vec![
        // Redis < 3.2: endpoint and port only.
        arr(vec![i(0), i(99), arr(vec![b("10.0.0.1"), i(7000)])]),
        // Redis 3.2 - 6.2: with the id.
        arr(vec![i(100), i(199), arr(vec![b("10.0.0.2"), i(7001), b(IDS[1])])]),
        // Redis 7, hostname preferred: the metadata map has the ip.
        arr(vec![
            i(200),
            i(299),
            arr(vec![b("host-c"), i(7002), b(IDS[2]), map(vec![("ip", b("10.0.0.3"))])]),
            arr(vec![Frame::Null, i(7005), b(IDS[5]), map(vec![("ip", b("10.0.0.6")), ("hostname", b("host-f"))])]),
        ]),
    ]);
    for r in [reply.clone(), resp2(&reply)] {
        let t = parse_slots(&r, "seed.local").unwrap();
        let a = t.master_for_slot(0).unwrap();
        assert_eq!((a.addr.clone(), a.id.as_str()), (Addr::new("10.0.0.1", 7000), ""));
        assert_eq!(t.master_for_slot(150).unwrap().id, IDS[1]);
        let c = t.master_for_slot(250).unwrap();
        assert_eq!((&*c.addr.host, c.ip.as_str()), ("host-c", "10.0.0.3"));
        let f = &t.replicas_for_slot(250)[0];
        assert_eq!(
            (f.addr.clone(), f.ip.as_str(), f.hostname.as_deref()),
            (Addr::new("seed.local", 7005), "10.0.0.6", Some("host-f"))
        );
        assert!(t.master_for_slot(300).is_none());
    }
}

#[test]
fn nodes_flags_and_odd_lines() {
    let text = [
        // myself without a known IP, a hostname, 7.2-style aux fields.
        "1111111111111111111111111111111111111111 :7000@17000,host-a,shard-id=abc myself,master - 0 0 5 connected 0-100",
        // 7.2 with no hostname: an empty field before the aux fields.
        "2222222222222222222222222222222222222222 10.0.0.2:7001@17001,,shard-id=def master - 0 0 6 connected 101-200 [201->-1111111111111111111111111111111111111111]",
        // handshake: temporary id, skipped.
        "7777777777777777777777777777777777777777 10.0.0.9:7009@17009 handshake - 0 0 0 disconnected",
        // a failed master keeps its slots (routing fails fast there until a failover).
        "3333333333333333333333333333333333333333 10.0.0.3:7002@17002 master,fail - 0 0 2 disconnected 201-300",
        // noaddr: no address to connect to.
        "4444444444444444444444444444444444444444 :0@0 master,noaddr - 0 0 1 disconnected 301",
        // a replica with pfail is still online as far as the cluster knows.
        "5555555555555555555555555555555555555555 10.0.0.5:7004@17004 slave,fail? 2222222222222222222222222222222222222222 0 0 6 connected",
        // a replica of an unknown master: left out.
        "6666666666666666666666666666666666666666 10.0.0.6:7005@17005 slave 9999999999999999999999999999999999999999 0 0 1 connected",
        "",
    ]
    .join("\r\n");
    let t = parse_nodes_text(&text, "seed").unwrap();
    assert_eq!(t.shards().len(), 4);
    assert_eq!(t.config_epoch, 6);
    let a = t.master_for_slot(0).unwrap();
    assert_eq!((a.addr.clone(), a.hostname.as_deref()), (Addr::new("seed", 7000), Some("host-a")));
    let b2 = t.master_for_slot(150).unwrap();
    assert_eq!((&*b2.addr.host, b2.hostname.as_deref()), ("10.0.0.2", None));
    assert_eq!(t.shards().iter().find(|s| s.master.id == IDS[1]).unwrap().slots, vec![(101, 200)]);
    assert_eq!(t.master_for_slot(201).unwrap().health, Health::Fail);
    let n = t.master_for_slot(301).unwrap();
    assert!(!n.is_reachable());
    assert_eq!(t.replicas_for_slot(150)[0].health, Health::Online);
    assert!(t.nodes().all(|n| n.id != IDS[5] && !n.id.starts_with('7')));
    assert_eq!(t.covered_slots(), 302);
}

#[test]
fn moved_updates_and_diff() {
    let old = parse_slots(&slots3(), "seed").unwrap();
    let mut t = old.clone();
    // A slot to a known master.
    assert!(t.set_slot_owner(100, &Addr::new("10.0.0.1", 7001)).unwrap());
    assert!(!t.set_slot_owner(100, &Addr::new("10.0.0.1", 7001)).unwrap());
    assert_eq!(t.master_for_slot(100).unwrap().id, IDS[1]);
    assert_eq!(t.shards()[0].slots, vec![(0, 99), (101, 5460), (6000, 6000)]);
    // A slot to a replica (a failover): it becomes a master of its own.
    assert!(t.set_slot_owner(16383, &Addr::new("10.0.0.1", 7005)).unwrap());
    let m = t.master_for_slot(16383).unwrap();
    assert_eq!((m.id.as_str(), m.role), (IDS[5], Role::Master));
    assert!(t.replicas_for_slot(10923).is_empty());
    // A slot to a node nobody mentioned yet.
    assert!(t.set_slot_owner(0, &Addr::new("10.0.0.9", 7009)).unwrap());
    assert_eq!(t.master_for_slot(0).unwrap().id, "");
    assert!(t.set_slot_owner(16384, &Addr::new("x", 1)).is_err());

    let d = old.diff(&t);
    assert_eq!(d.moved_slots(), 3);
    assert_eq!(
        d.moved,
        vec![
            SlotMove {
                start: 0,
                end: 0,
                from: Some(Addr::new("10.0.0.1", 7000)),
                to: Some(Addr::new("10.0.0.9", 7009))
            },
            SlotMove {
                start: 100,
                end: 100,
                from: Some(Addr::new("10.0.0.1", 7000)),
                to: Some(Addr::new("10.0.0.1", 7001))
            },
            SlotMove {
                start: 16383,
                end: 16383,
                from: Some(Addr::new("10.0.0.1", 7002)),
                to: Some(Addr::new("10.0.0.1", 7005))
            },
        ]
    );
    assert_eq!(d.added, vec![Addr::new("10.0.0.9", 7009)]);
    assert!(d.removed.is_empty());
    assert_eq!(d.replicas_changed, vec![Addr::new("10.0.0.1", 7002)]);
    assert!(!old.same_routing(&t));
    assert!(t.diff(&t.clone()).is_empty());

    // Contiguous moves merge into one range; losing coverage shows as `to: None`.
    let whole = parse_slots(&arr(vec![arr(vec![i(0), i(16383), slots_node(0)])]), "s").unwrap();
    let half = parse_slots(&arr(vec![arr(vec![i(0), i(8191), slots_node(0)])]), "s").unwrap();
    let d = whole.diff(&half);
    assert_eq!(d.moved, vec![SlotMove { start: 8192, end: 16383, from: Some(Addr::new("10.0.0.1", 7000)), to: None }]);
}

#[test]
fn malformed_replies_are_typed_errors() {
    let err = |f: &Frame| {
        let a = parse_shards(f, "s").err();
        let b2 = parse_slots(f, "s").err();
        assert!(a.is_some() && b2.is_some(), "{f:?} accepted: {a:?} {b2:?}");
    };
    err(&Frame::Error(Bytes::from_static(b"ERR This instance has cluster support disabled")));
    err(&i(3));
    err(&arr(vec![i(3)]));
    err(&arr(vec![arr(vec![i(0)])]));
    assert_eq!(
        parse_slots(&Frame::Error(Bytes::from_static(b"ERR x")), "s"),
        Err(TopologyError::Server("ERR x".into()))
    );

    let slots = |e: Vec<Frame>| parse_slots(&arr(vec![arr(e)]), "s");
    assert_eq!(slots(vec![i(0), i(16384), slots_node(0)]), Err(TopologyError::BadSlot(16384)));
    assert_eq!(slots(vec![i(-1), i(5), slots_node(0)]), Err(TopologyError::BadSlot(-1)));
    assert_eq!(slots(vec![i(9), i(5), slots_node(0)]), Err(TopologyError::BadRange(9, 5)));
    assert_eq!(slots(vec![i(0), i(5), arr(vec![b("h"), i(70000)])]), Err(TopologyError::BadPort(70000)));
    assert!(slots(vec![i(0), i(5), arr(vec![b("h")])]).is_err());
    assert!(slots(vec![i(0), i(5), arr(vec![i(1), i(2)])]).is_err());
    assert!(slots(vec![i(0), i(5), arr(vec![b("h"), i(1), b("id"), i(4)])]).is_err());
    assert!(slots(vec![i(0), i(5), arr(vec![b("h"), i(1), b("id"), map(vec![("ip", i(4))])])]).is_err());
    assert!(slots(vec![i(0), i(5), arr(vec![Frame::Bulk(Bytes::from_static(b"\xff")), i(1)])]).is_err());
    // Two owners of one slot.
    let two = arr(vec![arr(vec![i(0), i(10), slots_node(0)]), arr(vec![i(10), i(20), slots_node(1)])]);
    assert!(matches!(parse_slots(&two, "s"), Err(TopologyError::SlotConflict { slot: 10, .. })));

    let shard = |slots: Frame, node: Frame| {
        parse_shards(&arr(vec![map(vec![("slots", slots), ("nodes", arr(vec![node]))])]), "s")
    };
    assert!(shard(arr(vec![i(0)]), shard_node(0, "master", "online")).is_err());
    assert!(shard(arr(vec![i(0), b("x")]), shard_node(0, "master", "online")).is_err());
    assert!(shard(arr(vec![i(0), i(1)]), shard_node(0, "boss", "online")).is_err());
    assert!(shard(arr(vec![i(0), i(1)]), map(vec![("role", b("master"))])).is_err());
    assert!(shard(arr(vec![i(0), i(1)]), map(vec![("id", b("x")), ("role", b("master"))])).is_err());
    assert!(shard(arr(vec![i(0), i(1)]), arr(vec![b("id")])).is_err());
    assert!(shard(b("0-1"), shard_node(0, "master", "online")).is_err());

    let nodes = |t: &str| parse_nodes_text(t, "s");
    for bad in [
        "short line",
        "1111 10.0.0.1:7000@17000 master - 0 0 x connected",
        "1111 10.0.0.1 master - 0 0 1 connected",
        "1111 10.0.0.1:99999@1 master - 0 0 1 connected",
        "1111 10.0.0.1:7000@17000 master - 0 0 1 connected 5-3",
        "1111 10.0.0.1:7000@17000 master - 0 0 1 connected 16384",
        "1111 10.0.0.1:7000@17000 master - 0 0 1 connected abc",
        "1111 10.0.0.1:7000@17000 master - 0 0 1 connected 1--2",
        "11:11 10.0.0.1:7000@17000 master - 0 0 1 connected",
        "1111 10.0.0.1:7000@17000 master - 0 0 1 connected\n1111 10.0.0.1:7001@17001 master - 0 0 1 connected",
        "1111 10.0.0.1:7000@17000 master - 0 0 1 connected 0\n2222 10.0.0.1:7001@17001 slave 1111 0 0 1 connected 5",
        "1111 10.0.0.1:7000@17000 master - 0 0 1 connected 0-10\n2222 10.0.0.1:7001@17001 master - 0 0 1 connected 10",
    ] {
        assert!(nodes(bad).is_err(), "{bad:?} accepted");
    }
    assert!(matches!(
        nodes("1111 10.0.0.1:7000@17000 master - 0 0 1 connected\nshort line"),
        Err(TopologyError::NodesLine { line: 2, .. })
    ));
    assert!(parse_nodes(&arr(vec![]), "s").is_err());
    assert!(parse_info_epoch(&b("cluster_state:ok")).is_err());
    assert!(parse_reply("INFO", &arr(vec![]), "s").is_err());
}

/// Replaces the element that `path` leads to (indices taken modulo each aggregate's length).
fn replace_at(f: &mut Frame, path: &[usize], with: &Frame) {
    let Some((&p, rest)) = path.split_first() else {
        *f = with.clone();
        return;
    };
    match f {
        Frame::Array(v) if !v.is_empty() => {
            let n = v.len();
            replace_at(&mut v[p % n], rest, with)
        }
        Frame::Map(kv) if !kv.is_empty() => {
            let n = kv.len();
            replace_at(&mut kv[p % n].1, rest, with)
        }
        _ => *f = with.clone(),
    }
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Frame::Integer),
        (-2i64..16400).prop_map(Frame::Integer),
        "[a-z?:0-9.-]{0,12}".prop_map(|s| b(&s)),
        prop::sample::select(vec![
            "slots", "nodes", "id", "port", "ip", "endpoint", "role", "master", "replica", "health", "tls-port",
            "hostname"
        ])
        .prop_map(b),
        Just(Frame::Null),
        Just(Frame::Bulk(Bytes::from_static(b"\xff\xfe"))),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Frame::Array),
            prop::collection::vec((inner.clone(), inner), 0..6).prop_map(Frame::Map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_frames_never_panic(f in arb_frame()) {
        let _ = parse_shards(&f, "s");
        let _ = parse_slots(&f, "s");
        let _ = parse_nodes(&f, "s");
        let _ = parse_info_epoch(&f);
    }

    /// Valid replies with one element replaced: an error or a consistent view, never a panic.
    #[test]
    fn mutated_replies_never_panic(path in prop::collection::vec(0usize..16, 1..5), with in arb_frame()) {
        for base in [shards3(), resp2(&shards3()), slots3()] {
            let mut f = base;
            replace_at(&mut f, &path, &with);
            for t in [parse_shards(&f, "s"), parse_slots(&f, "s")].into_iter().flatten() {
                for s in t.shards() {
                    for &(a, z) in &s.slots {
                        prop_assert!(a <= z && z < SLOTS);
                        prop_assert!(t.shard_for_slot(a).map(|x| &x.master) == Some(&s.master));
                    }
                }
            }
        }
    }

    #[test]
    fn mutated_nodes_text_never_panics(cut in 0usize..2000, junk in "[ -~\n]{0,40}") {
        let text = nodes3();
        let cut = cut.min(text.len());
        let mutated = format!("{}{}{}", &text[..cut], junk, &text[cut..]);
        let _ = parse_nodes_text(&mutated, "s");
    }
}
