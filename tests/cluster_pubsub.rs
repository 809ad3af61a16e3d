//! Pub/Sub across a cluster: PUBLISH on any node reaches the subscribers of every node through
//! the bus's PUBLISH message, while PUBLISH's reply counts this node's receivers only. Each
//! scenario runs on real redis-server 7.0 nodes and on slotway nodes and the transcripts must be
//! the same byte for byte; mixed clusters show that the bus message is Redis's own; a malformed
//! PUBLISH on the bus closes that link only.

mod support;

use slotway::node::cluster::bus::msg::{self, mtype, Body, Header, Msg};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use support::cluster::{Cluster, Kind, Node};
use support::Conn;

/// Waits until every node sees every other node connected, so a broadcast reaches all of them.
fn wait_all_connected(c: &Cluster) {
    let total = c.nodes.len();
    c.wait_for(Duration::from_secs(15), "every bus link connected", |c| {
        for n in &c.nodes {
            let lines = n.nodes()?;
            let connected = lines.iter().filter(|l| l.is_myself() || l.link == "connected").count();
            if lines.len() != total || connected != total {
                return Err(format!("node {} sees {lines:?}", n.port));
            }
        }
        Ok(())
    });
}

/// A client speaking `proto` (2 or 3) on node `port`; HELLO's reply names the server, so it is
/// checked, not recorded.
fn client(port: u16, proto: &str) -> Conn {
    let mut c = Conn::connect(port);
    if proto == "3" {
        let r = c.raw(&["HELLO", "3"]);
        assert!(r.starts_with(b"%"), "HELLO 3 on {port}: {}", String::from_utf8_lossy(&r));
    }
    c
}

/// The next message (or reply) a subscriber gets, as raw bytes, for the transcript.
fn next(c: &mut Conn, who: &str) -> String {
    let r = c.read_reply().unwrap_or_else(|| panic!("{who}: connection closed"));
    format!("{who} <- {}", String::from_utf8_lossy(&r))
}

/// The `n` pmessages one PUBLISH brings a client subscribed to several matching patterns, sorted:
/// Redis 7.0 walks its pattern dict in hash order (randomly seeded per process), so only the set
/// is Redis's behaviour, not the order.
fn next_pmessages(c: &mut Conn, who: &str, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|_| next(c, who)).collect();
    v.sort();
    v
}

/// The publish counters of CLUSTER INFO (Redis lists only the nonzero ones).
fn publish_stats(n: &Node) -> Vec<String> {
    let info = n.text(&["CLUSTER", "INFO"]).expect("CLUSTER INFO");
    info.lines().filter(|l| l.starts_with("cluster_stats_messages_publish")).map(str::to_string).collect()
}

/// Subscribers on nodes A and C (RESP2 and RESP3, channel and pattern), messages published on B,
/// then on A. Returns the transcript: every reply and every message delivered, in order.
fn scenario(kind: Kind) -> Vec<String> {
    let c = Cluster::create(kind, 3);
    wait_all_connected(&c);
    let (a, b, cc) = (c.node(0).port, c.node(1).port, c.node(2).port);
    let mut log = Vec::new();

    let mut sub_a = client(a, "2");
    log.push(format!("A2 subscribe: {}", String::from_utf8_lossy(&sub_a.raw(&["SUBSCRIBE", "news", "other"]))));
    log.push(next(&mut sub_a, "A2"));
    let mut sub_a3 = client(a, "3");
    log.push(format!("A3 subscribe: {}", String::from_utf8_lossy(&sub_a3.raw(&["SUBSCRIBE", "news"]))));
    let mut psub_c = client(cc, "2");
    log.push(format!("C2 psubscribe: {}", String::from_utf8_lossy(&psub_c.raw(&["PSUBSCRIBE", "n*", "*ws"]))));
    log.push(next(&mut psub_c, "C2"));
    let mut psub_c3 = client(cc, "3");
    log.push(format!("C3 psubscribe: {}", String::from_utf8_lossy(&psub_c3.raw(&["PSUBSCRIBE", "n?ws"]))));

    let mut pub_b = client(b, "2");
    // Nobody on B listens: 0, however many receive it elsewhere.
    log.push(format!("B publish news: {}", String::from_utf8_lossy(&pub_b.raw(&["PUBLISH", "news", "hello"]))));
    log.push(next(&mut sub_a, "A2"));
    log.push(next(&mut sub_a3, "A3"));
    log.extend(next_pmessages(&mut psub_c, "C2", 2));
    log.push(next(&mut psub_c3, "C3"));

    // A channel only C's pattern matches, then binary and empty payloads: A hears nothing of the
    // first (its next message is the second one, which travels the same link after it).
    log.push(format!("B publish nope: {}", String::from_utf8_lossy(&pub_b.raw(&["PUBLISH", "nope", "x"]))));
    log.push(next(&mut psub_c, "C2"));
    let binary = "bin\0\r\n\u{7f}ary";
    log.push(format!("B publish binary: {}", String::from_utf8_lossy(&pub_b.raw(&["PUBLISH", "news", binary]))));
    log.push(format!("B publish empty: {}", String::from_utf8_lossy(&pub_b.raw(&["PUBLISH", "other", ""]))));
    for _ in 0..2 {
        log.push(next(&mut sub_a, "A2"));
    }
    log.push(next(&mut sub_a3, "A3"));
    log.extend(next_pmessages(&mut psub_c, "C2", 2));
    log.push(next(&mut psub_c3, "C3"));

    // Published on A: A's two subscribers count, C's pattern subscribers get it too.
    let mut pub_a = client(a, "2");
    log.push(format!("A publish news: {}", String::from_utf8_lossy(&pub_a.raw(&["PUBLISH", "news", "from-a"]))));
    log.push(next(&mut sub_a, "A2"));
    log.push(next(&mut sub_a3, "A3"));
    log.extend(next_pmessages(&mut psub_c, "C2", 2));
    log.push(next(&mut psub_c3, "C3"));

    // PUBSUB stays local: B knows no channel even though A's subscribers get B's messages.
    log.push(format!("B numsub: {}", String::from_utf8_lossy(&pub_b.raw(&["PUBSUB", "NUMSUB", "news"]))));
    log.push(format!("A numsub: {}", String::from_utf8_lossy(&pub_a.raw(&["PUBSUB", "NUMSUB", "news"]))));

    // Nothing else arrived anywhere (no echo back from the other nodes, no duplicates): a PING
    // on each subscriber connection is answered next.
    for (name, conn) in [("A2", &mut sub_a), ("A3", &mut sub_a3), ("C2", &mut psub_c), ("C3", &mut psub_c3)] {
        log.push(format!("{name} ping: {}", String::from_utf8_lossy(&conn.raw(&["PING"]))));
    }

    // Every PUBLISH went once to each other node: B sent 2 x 4, A 2 x 1.
    for (name, i) in [("A", 0), ("B", 1), ("C", 2)] {
        log.push(format!("{name} stats: {:?}", publish_stats(c.node(i))));
    }
    log
}

#[test]
fn publish_reaches_every_node_as_in_redis() {
    assert!(support::redis_available(), "redis-server is not installed: run scripts/test, which installs it");
    let real = scenario(Kind::Redis);
    let ours = scenario(Kind::Slotway);
    for (i, (r, s)) in real.iter().zip(&ours).enumerate() {
        assert_eq!(r, s, "step {i} differs from real Redis");
    }
    assert_eq!(real.len(), ours.len());
    // The scenario is not vacuous: the messages really crossed nodes.
    assert!(real.iter().any(|l| l.starts_with("A2 <- *3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello")), "{real:#?}");
    assert!(real.iter().any(|l| l.starts_with("C3 <- >4\r\n$8\r\npmessage\r\n$4\r\nn?ws")), "{real:#?}");
    assert!(real.contains(&"B publish news: :0\r\n".to_string()), "{real:#?}");
    assert!(real.contains(&"A publish news: :2\r\n".to_string()), "{real:#?}");
}

/// Real and slotway nodes in one cluster: messages cross from one kind to the other both ways.
#[test]
fn publish_between_redis_and_slotway_nodes() {
    assert!(support::redis_available(), "redis-server is not installed: run scripts/test, which installs it");
    let c = Cluster::create_with(&[Kind::Redis, Kind::Slotway, Kind::Redis]);
    wait_all_connected(&c);
    let (r1, s, r2) = (c.node(0).port, c.node(1).port, c.node(2).port);

    let mut on_slotway = client(s, "2");
    on_slotway.raw(&["SUBSCRIBE", "ch"]);
    let mut on_slotway3 = client(s, "3");
    on_slotway3.raw(&["PSUBSCRIBE", "c*"]);
    let mut on_redis = client(r2, "2");
    on_redis.raw(&["PSUBSCRIBE", "c?"]);
    let mut on_redis3 = client(r1, "3");
    on_redis3.raw(&["SUBSCRIBE", "ch"]);

    // Real Redis publishes, slotway delivers.
    let mut pub_redis = client(r1, "2");
    assert_eq!(pub_redis.raw(&["PUBLISH", "ch", "from-redis"]), b":1\r\n", "r1's own RESP3 subscriber");
    assert_eq!(on_slotway.read_reply().expect("message"), b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$10\r\nfrom-redis\r\n");
    assert_eq!(
        on_slotway3.read_reply().expect("pmessage"),
        b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$10\r\nfrom-redis\r\n"
    );
    assert_eq!(
        on_redis.read_reply().expect("pmessage"),
        b"*4\r\n$8\r\npmessage\r\n$2\r\nc?\r\n$2\r\nch\r\n$10\r\nfrom-redis\r\n"
    );
    assert_eq!(on_redis3.read_reply().expect("message"), b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$10\r\nfrom-redis\r\n");

    // Slotway publishes, real Redis delivers (and slotway's own subscribers count).
    let big = "x".repeat(100_000);
    let mut pub_slotway = client(s, "2");
    assert_eq!(pub_slotway.raw(&["PUBLISH", "ch", &big]), b":2\r\n");
    let mut expect =
        format!("*4\r\n$8\r\npmessage\r\n$2\r\nc?\r\n$2\r\nch\r\n${}\r\n{big}\r\n", big.len()).into_bytes();
    assert_eq!(on_redis.read_reply().expect("pmessage"), expect);
    expect = format!(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n${}\r\n{big}\r\n", big.len()).into_bytes();
    assert_eq!(on_redis3.read_reply().expect("message"), expect);
    assert!(on_slotway.read_reply().expect("own message").ends_with(format!("{big}\r\n").as_bytes()));
    assert!(on_slotway3.read_reply().expect("own pmessage").ends_with(format!("{big}\r\n").as_bytes()));

    // The counters agree on both sides of the link.
    let sent = publish_stats(c.node(1));
    assert!(sent.contains(&"cluster_stats_messages_publish_sent:2".to_string()), "{sent:?}");
    assert!(sent.contains(&"cluster_stats_messages_publish_received:1".to_string()), "{sent:?}");
    let got = publish_stats(c.node(2));
    assert!(got.contains(&"cluster_stats_messages_publish_received:2".to_string()), "{got:?}");
    for conn in [&mut on_slotway, &mut on_slotway3, &mut on_redis, &mut on_redis3] {
        let pong = conn.raw(&["PING"]);
        assert!(pong == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n" || pong == b"+PONG\r\n", "nothing more: {pong:?}");
    }
}

/// A PUBLISH frame from `sender` carrying `data` after the header, with whatever lengths it says.
fn publish_frame(sender: [u8; 40], data: &[u8]) -> Vec<u8> {
    let mut h = Header::new(mtype::PUBLISH, sender);
    h.port = 1;
    h.cport = 1;
    h.flags = 1;
    msg::encode(&Msg { hdr: h, body: Body::Raw(data.to_vec()) })
}

fn publish_data(channel_len: u32, message_len: u32, bytes: &[u8]) -> Vec<u8> {
    let mut d = channel_len.to_be_bytes().to_vec();
    d.extend_from_slice(&message_len.to_be_bytes());
    d.extend_from_slice(bytes);
    d
}

#[test]
fn publish_with_bad_lengths_closes_that_link_only() {
    let node = Node::start(Kind::Slotway);
    let mut cmd = client(node.port, "2");
    let mut sub = client(node.port, "2");
    sub.raw(&["SUBSCRIBE", "ch"]);
    let stranger = *b"0123456789abcdef0123456789abcdef01234567";
    let bus = |timeout_ms: u64| {
        let s = TcpStream::connect(("127.0.0.1", node.port + 10000)).expect("bus connect");
        s.set_read_timeout(Some(Duration::from_millis(timeout_ms))).expect("timeout");
        s
    };

    // Well formed: the link stays open (from an unknown node, so it is ignored, as in Redis).
    let good = publish_frame(stranger, &publish_data(2, 5, b"chhello"));
    assert!(msg::decode(&good).is_ok());
    let mut b = bus(500);
    b.write_all(&good).expect("write");
    assert!(!support::closed_by_peer(&mut b), "a well-formed PUBLISH must not close the link");
    drop(b);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no room for the two lengths", publish_frame(stranger, &[0, 0, 0, 2])),
        ("channel length past the end", publish_frame(stranger, &publish_data(100, 5, b"chhello"))),
        ("message length past the end", publish_frame(stranger, &publish_data(2, 100, b"chhello"))),
        ("lengths short of the frame", publish_frame(stranger, &publish_data(2, 2, b"chhello"))),
        ("lengths that wrap around in 32 bits", publish_frame(stranger, &publish_data(u32::MAX, 8, b"chhello"))),
        ("both lengths huge", publish_frame(stranger, &publish_data(u32::MAX, u32::MAX, b"chhello"))),
    ];
    for (what, frame) in &cases {
        assert!(msg::decode(frame).is_err(), "{what}: the codec must refuse it");
        let mut b = bus(5000);
        let _ = b.write_all(frame);
        assert!(support::closed_by_peer(&mut b), "{what}: the node should close the link");
        assert_eq!(cmd.raw(&["PING"]), b"+PONG\r\n", "{what}: the node must stay up");
    }
    // Nothing reached the subscriber; local PUBLISH still works.
    assert_eq!(cmd.raw(&["PUBLISH", "ch", "still"]), b":1\r\n");
    assert_eq!(sub.read_reply().expect("message"), b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nstill\r\n");
}
