//! Codec micro-benchmarks: the request parser on pipelined GET/SET traffic and on a wide MSET,
//! the reply writer on an array reply, and frame_len (the proxy's reply boundary finder) on a
//! big reply. `cargo bench --bench codec`; throughput is reported in requests or bytes.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use slotway::resp::{frame_len, Frame, Limits, Parsed, Reply, RequestParser};

fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// 1000 pipelined commands, half GET and half SET, 16-byte keys and 64-byte values: what
/// `redis-benchmark -P` sends.
fn get_set_pipeline() -> Vec<u8> {
    let mut buf = Vec::new();
    let value = [b'v'; 64];
    for i in 0..1000 {
        let key = format!("key:{i:012}");
        if i % 2 == 0 {
            encode(&[b"SET", key.as_bytes(), &value], &mut buf);
        } else {
            encode(&[b"GET", key.as_bytes()], &mut buf);
        }
    }
    buf
}

fn mset_100() -> Vec<u8> {
    let keys: Vec<String> = (0..100).map(|i| format!("key:{i:012}")).collect();
    let value = [b'v'; 16];
    let mut args: Vec<&[u8]> = vec![b"MSET"];
    for k in &keys {
        args.push(k.as_bytes());
        args.push(&value);
    }
    let mut buf = Vec::new();
    encode(&args, &mut buf);
    buf
}

/// Parses every request in `buf` the way a session does; returns the argument count seen.
fn parse_all(parser: &mut RequestParser, buf: &[u8], limits: &Limits) -> usize {
    let mut off = 0;
    let mut seen = 0;
    loop {
        match parser.parse(&buf[off..], limits) {
            Ok(Parsed::Request(n)) => {
                // As the session does: arguments borrow the buffer, collected on the stack.
                let mut argv: smallvec::SmallVec<[&[u8]; 8]> = smallvec::SmallVec::new();
                parser.args(&buf[off..off + n], &mut argv);
                seen += black_box(&argv).len();
                drop(argv);
                off += n;
                parser.reset();
            }
            Ok(Parsed::Empty(n)) => {
                off += n;
                parser.reset();
            }
            Ok(Parsed::Incomplete) | Err(_) => return seen,
        }
    }
}

fn request_parser(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("request_parser");

    let pipeline = get_set_pipeline();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("get_set_pipeline_1000", |b| {
        let mut p = RequestParser::new();
        b.iter(|| black_box(parse_all(&mut p, black_box(&pipeline), &limits)))
    });

    let mset = mset_100();
    g.throughput(Throughput::Elements(1));
    g.bench_function("mset_100_keys", |b| {
        let mut p = RequestParser::new();
        b.iter(|| black_box(parse_all(&mut p, black_box(&mset), &limits)))
    });

    // The same pipeline arriving in 16 KB reads, as a socket delivers it.
    g.throughput(Throughput::Elements(1000));
    g.bench_function("get_set_pipeline_1000_16k_reads", |b| {
        let mut p = RequestParser::new();
        b.iter(|| {
            let mut inbuf: Vec<u8> = Vec::with_capacity(32 * 1024);
            let mut seen = 0;
            for chunk in pipeline.chunks(16 * 1024) {
                inbuf.extend_from_slice(chunk);
                let mut consumed = 0;
                while let Ok(Parsed::Request(n)) = p.parse(&inbuf[consumed..], &limits) {
                    let mut argv: smallvec::SmallVec<[&[u8]; 8]> = smallvec::SmallVec::new();
                    p.args(&inbuf[consumed..consumed + n], &mut argv);
                    seen += black_box(&argv).len();
                    drop(argv);
                    consumed += n;
                    p.reset();
                }
                inbuf.drain(..consumed);
            }
            black_box(seen)
        })
    });
    g.finish();
}

fn reply_writer(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply_writer");
    let items: Vec<Vec<u8>> = (0..100).map(|i| format!("element-{i:04}-payload").into_bytes()).collect();
    for resp3 in [false, true] {
        g.throughput(Throughput::Elements(100));
        g.bench_with_input(
            BenchmarkId::new("array_100_bulks", if resp3 { "resp3" } else { "resp2" }),
            &resp3,
            |b, &r3| {
                let mut out = Reply::new(r3);
                b.iter(|| {
                    out.buf.clear();
                    out.array(items.len());
                    for it in &items {
                        out.bulk(it);
                    }
                    black_box(out.len())
                })
            },
        );
    }
    g.throughput(Throughput::Elements(100));
    g.bench_function("zrange_withscores_50", |b| {
        let mut out = Reply::new(true);
        b.iter(|| {
            out.buf.clear();
            out.array(50);
            for (i, it) in items.iter().take(50).enumerate() {
                out.array(2);
                out.bulk(it);
                out.double(i as f64 * 1.5);
            }
            black_box(out.len())
        })
    });
    g.finish();
}

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frames");
    // An LRANGE-style reply of 10,000 elements of 100 bytes (about 1 MB).
    let big = Frame::Array((0..10_000).map(|_| Frame::Bulk(Bytes::from(vec![b'x'; 100]))).collect());
    let mut enc = BytesMut::new();
    big.encode(&mut enc);
    let enc = enc.freeze();
    g.throughput(Throughput::Bytes(enc.len() as u64));
    g.bench_function("frame_len_1mb_array", |b| b.iter(|| black_box(frame_len(black_box(&enc)))));
    g.bench_function("frame_parse_1mb_array", |b| b.iter(|| black_box(Frame::parse(black_box(&enc)))));
    g.bench_function("frame_encode_1mb_array", |b| {
        let mut out = BytesMut::with_capacity(enc.len());
        b.iter(|| {
            out.clear();
            big.encode(&mut out);
            black_box(out.len())
        })
    });
    // Many small replies back to back, as a pipelined backend connection returns them.
    let mut small = BytesMut::new();
    for i in 0..1000 {
        if i % 2 == 0 {
            small.extend_from_slice(b"+OK\r\n");
        } else {
            Frame::Bulk(Bytes::from(vec![b'v'; 64])).encode(&mut small);
        }
    }
    let small = small.freeze();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("frame_len_1000_small_replies", |b| {
        b.iter(|| {
            let mut off = 0;
            while let Ok(Some(n)) = frame_len(&small[off..]) {
                off += n;
            }
            black_box(off)
        })
    });
    g.finish();
}

criterion_group!(benches, request_parser, reply_writer, frames);
criterion_main!(benches);
