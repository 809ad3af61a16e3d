//! Slot math against reality: CLUSTER KEYSLOT of a real redis-server in cluster mode for keys built
//! to hit every hash-tag rule (nested, empty and unclosed braces, binary bytes).

mod support;

use slotway::cluster::key_slot;
use slotway::resp::Frame;
use support::rng::Rng;

fn random_key(rng: &mut Rng) -> Vec<u8> {
    const PIECES: &[&[u8]] =
        &[b"{", b"}", b"{}", b"user", b"1000", b"{a}", b"\x00", b"\xff", b":", b"foo", b"{{", b"}}"];
    let n = rng.below(6);
    let mut k = Vec::new();
    for _ in 0..n {
        if rng.one_in(4) {
            k.push(rng.next() as u8);
        } else {
            k.extend_from_slice(rng.pick::<&[u8]>(PIECES));
        }
    }
    k
}

#[test]
fn key_slot_matches_redis_cluster_keyslot() {
    assert!(support::redis_available(), "redis-server is not installed: run scripts/test, which installs it");
    let dir = support::tempdir::Dir::new("cluster-slot");
    let conf = dir.path().join("nodes.conf");
    let server = support::redis_server(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        conf.to_str().expect("utf-8 path"),
    ]);
    let mut conn = server.conn();
    let mut rng = Rng::new(7);
    let mut keys: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"foo".to_vec(),
        b"{user1000}.following".to_vec(),
        b"foo{}{bar}".to_vec(),
        b"foo{{bar}}zap".to_vec(),
    ];
    keys.extend((0..3000).map(|_| random_key(&mut rng)));
    // Pipelined: send all, then read all.
    let mut wire = Vec::new();
    for k in &keys {
        wire.extend_from_slice(&support::conn::encode(&[b"CLUSTER", b"KEYSLOT", k]));
    }
    conn.send_raw(&wire);
    for k in &keys {
        let reply = support::conn::parse(&conn.read_reply().expect("reply"));
        assert_eq!(reply, Frame::Integer(key_slot(k) as i64), "key {:?}", String::from_utf8_lossy(k));
    }
}
