//! Property tests for the RESP layer (src/resp): frames survive encode -> parse, requests parse the
//! same however the bytes are split, arbitrary bytes never panic any parser, and `frame_len` (the
//! forwarder's boundary finder) agrees with `Frame::parse` on where a frame ends.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use slotway::resp::{frame_len, Frame, Limits, Parsed, ProtocolError, RequestParser, RespCodec};
use tokio_util::codec::Decoder;

/// A line payload (simple string, error, double, big number): anything but CR, which ends it.
fn line() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>().prop_filter("no CR", |&c| c != b'\r'), 0..24).prop_map(Bytes::from)
}

fn blob() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..40),
        1 => vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'$'), Just(b'*')], 0..8),
    ]
    .prop_map(Bytes::from)
}

fn leaf() -> impl Strategy<Value = Frame> {
    prop_oneof![
        line().prop_map(Frame::Simple),
        line().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        blob().prop_map(Frame::Bulk),
        Just(Frame::Null),
        Just(Frame::NullArray),
        line().prop_map(Frame::Double),
        any::<bool>().prop_map(Frame::Boolean),
        line().prop_map(Frame::BigNumber),
        (vec(any::<u8>(), 3), blob()).prop_map(|(f, t)| Frame::Verbatim(Bytes::from(f), t)),
    ]
}

/// Any frame, RESP2 and RESP3 types, nested a few levels.
fn frame() -> impl Strategy<Value = Frame> {
    leaf().prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Frame::Array),
            vec(inner.clone(), 0..6).prop_map(Frame::Set),
            vec(inner.clone(), 0..6).prop_map(Frame::Push),
            vec((inner.clone(), inner), 0..4).prop_map(Frame::Map),
        ]
    })
}

fn encode(f: &Frame) -> Bytes {
    let mut b = BytesMut::new();
    f.encode(&mut b);
    b.freeze()
}

/// A request's arguments: arbitrary bytes, with the protocol's own bytes over-represented.
fn args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        1 => prop_oneof![Just(b'\r'), Just(b'\n'), Just(b' '), Just(b'"'), Just(b'\''), Just(b'\\'), Just(0u8)],
    ];
    vec(vec(byte, 0..20), 1..6)
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// An inline line that `sdssplitargs` turns back into `args`: every argument double-quoted,
/// with anything not plainly printable as `\xHH`.
fn inline(args: &[Vec<u8>], crlf: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.push(b'"');
        for &c in a {
            if c.is_ascii_graphic() && c != b'"' && c != b'\\' || c == b' ' {
                out.push(c);
            } else {
                out.extend_from_slice(format!("\\x{c:02x}").as_bytes());
            }
        }
        out.push(b'"');
    }
    out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    out
}

/// What a server does with a byte stream that arrives in `chunks`: the session's loop (parse
/// from the unconsumed part of a growing buffer, reset after each request), returning every
/// request's arguments and the protocol error that ended the stream, if any.
type Outcome = (Vec<Vec<Vec<u8>>>, Option<ProtocolError>);

fn feed(chunks: &[&[u8]], limits: &Limits) -> Outcome {
    let mut p = RequestParser::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut reqs = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        let mut consumed = 0;
        loop {
            match p.parse(&buf[consumed..], limits) {
                Ok(Parsed::Incomplete) => break,
                Ok(Parsed::Empty(n)) => {
                    assert!(n > 0 && consumed + n <= buf.len(), "Empty({n}) out of bounds");
                    consumed += n;
                    p.reset();
                }
                Ok(Parsed::Request(n)) => {
                    assert!(n > 0 && consumed + n <= buf.len(), "Request({n}) out of bounds");
                    let frame = &buf[consumed..consumed + n];
                    let mut argv: Vec<&[u8]> = Vec::new();
                    p.args(frame, &mut argv);
                    assert!(!argv.is_empty(), "a request without arguments");
                    reqs.push(argv.iter().map(|a| a.to_vec()).collect());
                    consumed += n;
                    p.reset();
                }
                Err(e) => return (reqs, Some(e)),
            }
        }
        buf.drain(..consumed);
    }
    (reqs, None)
}

fn whole(input: &[u8], limits: &Limits) -> Outcome {
    feed(&[input], limits)
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        4 => Just(Limits::default()),
        1 => (0u64..64, any::<bool>()).prop_map(|(max_bulk_len, unauthenticated)| Limits { max_bulk_len, unauthenticated }),
    ]
}

/// Cuts `input` at the given (sorted, deduplicated) offsets.
fn cut<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut pts: Vec<usize> = cuts.iter().map(|&c| c % (input.len() + 1)).collect();
    pts.sort_unstable();
    pts.dedup();
    let mut out = Vec::new();
    let mut last = 0;
    for p in pts {
        out.push(&input[last..p]);
        last = p;
    }
    out.push(&input[last..]);
    out
}

/// Bytes shaped like protocol: valid frames and requests, then a few random edits.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let base = prop_oneof![
        frame().prop_map(|f| encode(&f).to_vec()),
        args().prop_map(|a| multibulk(&a)),
        args().prop_map(|a| inline(&a, true)),
    ];
    (base, vec((any::<usize>(), 0u8..4, any::<u8>()), 0..4)).prop_map(|(mut b, edits)| {
        for (at, op, byte) in edits {
            if b.is_empty() {
                break;
            }
            let at = at % b.len();
            match op {
                0 => b[at] = byte,
                1 => b.insert(at, byte),
                2 => {
                    b.remove(at);
                }
                _ => b.truncate(at),
            }
        }
        b
    })
}

fn noise() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..256),
        vec(
            prop_oneof![
                Just(b'*'),
                Just(b'$'),
                Just(b'\r'),
                Just(b'\n'),
                Just(b'-'),
                Just(b'1'),
                Just(b'0'),
                Just(b'%'),
                Just(b'~'),
                Just(b':'),
                Just(b'=')
            ],
            0..64
        ),
        mutated(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// (a) Every frame encodes to bytes that parse back to the same frame, using all of them.
    #[test]
    fn frame_round_trip(f in frame()) {
        let bytes = encode(&f);
        let (back, used) = Frame::parse(&bytes).expect("parse ok").expect("complete");
        prop_assert_eq!(&back, &f);
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(f.to_bytes(), bytes);
    }

    /// (a) Back-to-back frames come out one by one, through the codec as well.
    #[test]
    fn frames_back_to_back(fs in vec(frame(), 1..5), split in any::<usize>()) {
        let mut all = BytesMut::new();
        fs.iter().for_each(|f| f.encode(&mut all));
        let all = all.freeze();
        let mut off = 0;
        for f in &fs {
            let rest = all.slice(off..);
            let (got, used) = Frame::parse(&rest).expect("ok").expect("complete");
            prop_assert_eq!(&got, f);
            off += used;
        }
        prop_assert_eq!(off, all.len());
        // The codec, fed in two pieces.
        let at = split % (all.len() + 1);
        let mut codec = RespCodec;
        let mut buf = BytesMut::from(&all[..at]);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).expect("decode") {
            out.push(f);
        }
        buf.extend_from_slice(&all[at..]);
        while let Some(f) = codec.decode(&mut buf).expect("decode") {
            out.push(f);
        }
        prop_assert_eq!(out, fs);
        prop_assert!(buf.is_empty());
    }

    /// The proxy's resumable scanner, fed back-to-back frames in random chunks, finds exactly the
    /// frames' boundaries.
    #[test]
    fn scanner_resumes_in_chunks(fs in vec(frame(), 1..5), cuts in vec(any::<usize>(), 0..8)) {
        let mut all = BytesMut::new();
        fs.iter().for_each(|f| f.encode(&mut all));
        let lens: Vec<usize> = fs.iter().map(|f| encode(f).len()).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (all.len() + 1)).collect();
        points.push(all.len());
        points.sort_unstable();
        let mut sc = slotway::resp::FrameScanner::default();
        let (mut buf, mut fed, mut got) = (Vec::new(), 0usize, Vec::new());
        for p in points {
            buf.extend_from_slice(&all[fed..p]);
            fed = p;
            while let Some(n) = sc.scan(&buf).expect("valid frames") {
                got.push(n);
                buf.drain(..n);
            }
        }
        prop_assert_eq!(got, lens);
        prop_assert!(buf.is_empty());
    }

    /// (a, d) No proper prefix of a frame is a frame, for either parser.
    #[test]
    fn prefixes_are_incomplete(f in frame()) {
        let bytes = encode(&f);
        for i in 0..bytes.len() {
            let prefix = bytes.slice(..i);
            prop_assert_eq!(Frame::parse(&prefix).expect("prefix parses"), None, "prefix {}", i);
            prop_assert_eq!(frame_len(&prefix).expect("prefix scans"), None, "prefix {}", i);
        }
    }

    /// (d) frame_len finds the same boundary as parsing the whole frame.
    #[test]
    fn frame_len_matches_parse(f in frame(), tail in vec(any::<u8>(), 0..16)) {
        let mut b = BytesMut::new();
        f.encode(&mut b);
        let n = b.len();
        b.extend_from_slice(&tail);
        let b = b.freeze();
        prop_assert_eq!(frame_len(&b), Ok(Some(n)));
        prop_assert_eq!(Frame::parse(&b).expect("ok").expect("complete").1, n);
    }

    /// (b) Requests, multibulk and inline, pipelined and split at every byte boundary, give the
    /// same arguments as the whole buffer, and those are the arguments that were encoded.
    #[test]
    fn requests_split_anywhere(reqs in vec((args(), 0u8..3), 1..4)) {
        let mut input = Vec::new();
        for (a, kind) in &reqs {
            match kind {
                0 => input.extend(multibulk(a)),
                1 => input.extend(inline(a, true)),
                _ => input.extend(inline(a, false)),
            }
        }
        let want: Vec<Vec<Vec<u8>>> = reqs.iter().map(|(a, _)| a.clone()).collect();
        let limits = Limits::default();
        let (got, err) = whole(&input, &limits);
        prop_assert_eq!(err, None);
        prop_assert_eq!(&got, &want);
        for i in 0..=input.len() {
            let (got, err) = feed(&[&input[..i], &input[i..]], &limits);
            prop_assert_eq!(err, None);
            prop_assert_eq!(&got, &want, "split at {}", i);
        }
        // And one byte at a time.
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let (got, err) = feed(&bytes, &limits);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, want);
    }

    /// (b, c) For any bytes at all, how they are chunked changes nothing: same requests, same
    /// protocol error. And nothing panics on the way.
    #[test]
    fn any_bytes_chunking_is_invisible(input in noise(), cuts in vec(any::<usize>(), 0..6), limits in limits()) {
        let want = whole(&input, &limits);
        let got = feed(&cut(&input, &cuts), &limits);
        prop_assert_eq!(&got, &want);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(feed(&bytes, &limits), want);
    }

    /// (c, d) Arbitrary bytes never panic Frame::parse, frame_len or the codec; whenever a frame
    /// parses, frame_len reports exactly the bytes it used.
    #[test]
    fn any_bytes_frames(input in noise()) {
        let b = Bytes::from(input);
        let parsed = Frame::parse(&b);
        let len = frame_len(&b);
        if let Ok(Some((f, used))) = &parsed {
            prop_assert_eq!(len.clone(), Ok(Some(*used)));
            prop_assert!(*used <= b.len());
            // What parsed re-encodes to something that parses to the same frame.
            let again = encode(f);
            prop_assert_eq!(&Frame::parse(&again).expect("ok").expect("complete").0, f);
        }
        // A frame that frame_len accepts either parses with the same length or is refused by
        // the stricter parser, never left "incomplete" (the codec relies on that).
        if let Ok(Some(n)) = len {
            prop_assert!(!matches!(parsed, Ok(None)), "frame_len says {} bytes, parse wants more", n);
        }
        let mut codec = RespCodec;
        let mut buf = BytesMut::from(&b[..]);
        for _ in 0..64 {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

/// Edge cases the generators reach rarely.
#[test]
fn parser_edges() {
    let l = Limits::default();
    // Deep nesting is refused, not recursed into without bound.
    let deep = "*1\r\n".repeat(10_000);
    assert!(Frame::parse(&Bytes::from(deep.clone())).is_err());
    assert_eq!(frame_len(deep.as_bytes()), Ok(None));
    // Huge announced aggregates and bulks do not allocate by the announcement.
    assert_eq!(Frame::parse(&Bytes::from_static(b"*536870912\r\n:1\r\n")), Ok(None));
    assert_eq!(frame_len(b"$536870912\r\nabc"), Ok(None));
    assert!(Frame::parse(&Bytes::from_static(b"*536870913\r\n")).is_err());
    // Request side.
    assert_eq!(whole(b"*2147483647\r\n$1\r\na\r\n", &l), (vec![], None));
    assert!(whole(b"*2147483648\r\n", &l).1.is_some());
    assert_eq!(whole(b"\x00PING\r\n", &l), (vec![], None));
    assert_eq!(whole(b"PING\r\n\x00\r\n", &l), (vec![vec![b"PING".to_vec()]], None));
    let unauth = Limits { unauthenticated: true, ..Limits::default() };
    assert!(whole(b"*11\r\n", &unauth).1.is_some());
    assert!(whole(b"*1\r\n$16385\r\n", &unauth).1.is_some());
}
