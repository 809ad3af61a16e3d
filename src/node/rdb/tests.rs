use super::*;
use rand::{Rng, SeedableRng};

fn round_trip(v: &Value) -> Value {
    let lim = Limits::default();
    let p = dump_payload(v, &lim);
    assert!(verify_payload(&p));
    load_payload(&p, &lim).unwrap()
}

fn list(items: &[&[u8]]) -> Value {
    let mut l = List::new();
    for i in items {
        l.push(End::Right, (*i).into());
    }
    Value::List(Box::new(l))
}

#[test]
fn string_payload_matches_redis() {
    // DUMP of SET k hello / SET k 1 on Redis 7.0.15.
    let lim = Limits::default();
    let p = dump_payload(&Value::Str(b"hello".to_vec()), &lim);
    assert_eq!(&p[..8], b"\x00\x05hello\x0a");
    let p = dump_payload(&Value::Str(b"1".to_vec()), &lim);
    assert_eq!(&p[..4], b"\x00\xc0\x01\x0a");
    for s in [&b""[..], b"-129", b"70000", b"12345678901", b"abc", b"007", b"-0"] {
        match round_trip(&Value::Str(s.to_vec())) {
            Value::Str(x) => assert_eq!(x, s),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn collections_round_trip() {
    let big: Vec<Vec<u8>> = (0..3000).map(|i| format!("element-{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = big.iter().map(|v| &v[..]).collect();
    match round_trip(&list(&refs)) {
        Value::List(l) => assert!(l.items.iter().map(|x| &x[..]).eq(refs.iter().copied())),
        other => panic!("{other:?}"),
    }
    let lim = Limits::default();
    for n in [3usize, 600] {
        let mut h = Hash::default();
        let mut s = Set::default();
        let mut t = Set::default();
        let mut z = ZSet::default();
        let zl = zset::Limits { entries: lim.zset_entries, value: lim.zset_value };
        for i in 0..n {
            h.set(format!("f{i}").as_bytes(), format!("{i}").as_bytes(), lim.hash_entries, lim.hash_value);
            s.add(Member::Int(i as i64 * 1000 - 7), lim.set_intset);
            t.add(Member::Str(format!("m{i}").as_bytes()), lim.set_intset);
            z.add(i as f64 / 3.0, format!("z{i}").as_bytes(), AddFlags::default(), zl);
        }
        z.add(f64::INFINITY, b"inf", AddFlags::default(), zl);
        z.add(-0.0, b"negzero", AddFlags::default(), zl);
        match round_trip(&Value::Hash(Box::new(h.clone()))) {
            Value::Hash(b) => {
                assert_eq!(b.encoding(), h.encoding());
                assert!(b.iter().eq(h.iter()) || b.len() == h.len() && h.iter().all(|(f, v)| b.get(f) == Some(v)));
            }
            other => panic!("{other:?}"),
        }
        for set in [s, t] {
            match round_trip(&Value::Set(Box::new(set.clone()))) {
                Value::Set(b) => {
                    assert_eq!(b.encoding(), set.encoding());
                    assert_eq!(b.len(), set.len());
                    assert!(set.iter().all(|m| b.contains(m)));
                }
                other => panic!("{other:?}"),
            }
        }
        match round_trip(&Value::ZSet(Box::new(z.clone()))) {
            Value::ZSet(b) => {
                assert_eq!(b.encoding(), z.encoding());
                let x: Vec<_> = b.iter().map(|(m, s)| (m.to_vec(), s.to_bits())).collect();
                let y: Vec<_> = z.iter().map(|(m, s)| (m.to_vec(), s.to_bits())).collect();
                assert_eq!(x, y);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn old_encodings() {
    let lim = Limits::default();
    // RDB_TYPE_ZSET with text scores, and a ziplist list.
    let body = b"\x03\x02\x01a\x031.5\x01b\xfe";
    let mut r = Reader::new(&body[1..]);
    match read_object(&mut r, body[0], &lim).unwrap() {
        Value::ZSet(z) => {
            assert_eq!(z.encoding(), "listpack");
            assert_eq!(
                z.iter().map(|(m, s)| (m.to_vec(), s)).collect::<Vec<_>>(),
                [(b"a".to_vec(), 1.5), (b"b".to_vec(), f64::INFINITY)]
            );
        }
        other => panic!("{other:?}"),
    }
    let zl = [20u8, 0, 0, 0, 15, 0, 0, 0, 3, 0, 0, 0x01, b'a', 3, 0xF2, 2, 0xC0, 0x2c, 0x01, 0xFF];
    let mut body = vec![TYPE_LIST_ZIPLIST];
    write_string(&mut body, &zl);
    let mut r = Reader::new(&body[1..]);
    match read_object(&mut r, body[0], &lim).unwrap() {
        Value::List(l) => assert_eq!(l.items.len(), 3),
        other => panic!("{other:?}"),
    }
    // An LZF string: "abcabcabc".
    let body = [0u8, 0xC3, 6, 9, 2, b'a', b'b', b'c', (4 << 5), 2];
    let mut r = Reader::new(&body[1..]);
    match read_object(&mut r, 0, &lim).unwrap() {
        Value::Str(s) => assert_eq!(s, b"abcabcabc"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rejects_bad_payloads() {
    let lim = Limits::default();
    let mut p = dump_payload(&Value::Str(b"hello".to_vec()), &lim);
    assert!(verify_payload(&p));
    let n = p.len();
    p[n - 1] ^= 1;
    assert!(!verify_payload(&p));
    assert!(!verify_payload(b"short"));
    // Version 11 with a valid checksum is still refused.
    let mut q = b"\x00\x01a\x0b\x00".to_vec();
    let crc = crc64::crc64(0, &q);
    q.extend_from_slice(&crc.to_le_bytes());
    assert!(!verify_payload(&q));
    // Empty collections and duplicates are bad data.
    for body in [&b"\x02\x00"[..], b"\x02\x02\x01a\x01a", b"\x04\x01\x01a", b"\x09\x00", b"\x05\x01\x01a"] {
        let mut r = Reader::new(&body[1..]);
        assert!(read_object(&mut r, body[0], &lim).is_err(), "{body:?}");
    }
}

#[test]
fn random_bytes_never_panic() {
    let lim = Limits::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let seeds: Vec<Vec<u8>> = [
        Value::Str(b"hello world".to_vec()),
        list(&[b"a", b"1", b"300", b"-5000"]),
        Value::Hash(Box::new({
            let mut h = Hash::default();
            h.set(b"f", b"v", 128, 64);
            h
        })),
    ]
    .iter()
    .map(|v| {
        let mut out = Vec::new();
        write_object(&mut out, v, &lim);
        out
    })
    .collect();
    for i in 0..20000 {
        let mut body: Vec<u8> = if i % 2 == 0 {
            (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect()
        } else {
            seeds[i % seeds.len()].clone()
        };
        if !body.is_empty() {
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..body.len());
                body[at] = rng.gen();
            }
        }
        if body.is_empty() {
            continue;
        }
        let t = body[0] % 20;
        let mut r = Reader::new(&body[1..]);
        let _ = read_object(&mut r, t, &lim);
        for blob in [&body[..], &body[1..]] {
            let _ = listpack::parse(blob);
            let _ = ziplist::parse(blob);
            let _ = intset::parse(blob);
            let _ = lzf::decompress(blob, rng.gen_range(0..200));
        }
    }
}
