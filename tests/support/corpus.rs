//! The differential corpus runner. A corpus file is a list of commands in redis-cli syntax; each
//! runs on Debian's redis-server and on a slotway node, and the replies must match byte for byte.
//!
//! Line prefixes (before the command):
//! - `@N` run on connection N (default 0; connections open on first use)
//! - `!unordered` compare after sorting every aggregate, recursively (set members, hash tables)
//! - `!pairs` a flat array/map of field-value pairs, compared as an unordered set of pairs
//! - `!len` compare only the reply type and its element count (random picks: SPOP n, SRANDMEMBER n)
//! - `!type` compare only the reply type (RANDOMKEY, TIME)
//! - `!approx` non-negative integers within 100 of each other (PTTL of a live key: a millisecond may
//!   pass between the write and the read); anything else exact
//! - `!skip` run on both, do not compare
//! - `!send` send without reading a reply (a command that blocks); `!read` reads one reply.
//!   Follow a `!send` with `!sleep 50` so the command is parked before another connection acts:
//!   connections race to the server otherwise, and FIFO order among waiters would be luck
//! - `!sleep MS` pause; `!raw "bytes"` send raw protocol bytes (double-quote escapes) and compare

use super::conn::{encode, parse};
use super::{Conn, ServerProc};
use slotway::resp::Frame;
use std::collections::HashMap;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Exact,
    Unordered,
    Pairs,
    Len,
    Type,
    Approx,
    Skip,
    Send,
    Read,
    Raw,
}

struct Side {
    server: ServerProc,
    conns: HashMap<usize, Conn>,
}

impl Side {
    fn conn(&mut self, n: usize) -> &mut Conn {
        let (port, name) = (self.server.port, self.server.name);
        // A failure names the server that went away.
        self.conns.entry(n).or_insert_with(|| {
            Conn::try_connect(port).unwrap_or_else(|e| panic!("connection {n} to {name} on port {port}: {e}"))
        })
    }
}

pub fn show(b: &[u8]) -> String {
    let s: String = b.iter().flat_map(|&c| std::ascii::escape_default(c)).map(|c| c as char).collect();
    if s.len() > 600 {
        format!("{}... ({} bytes)", &s[..600], b.len())
    } else {
        s
    }
}

/// Sorts every aggregate recursively: replies whose order Redis leaves open compare equal.
pub fn sort_frame(f: Frame) -> Frame {
    let sort = |v: Vec<Frame>| {
        let mut v: Vec<Frame> = v.into_iter().map(sort_frame).collect();
        v.sort_by_key(|f| f.to_bytes().to_vec());
        v
    };
    match f {
        Frame::Array(v) => Frame::Array(sort(v)),
        Frame::Set(v) => Frame::Set(sort(v)),
        Frame::Push(v) => Frame::Push(sort(v)),
        Frame::Map(kv) => {
            let mut kv: Vec<(Frame, Frame)> = kv.into_iter().map(|(k, v)| (sort_frame(k), sort_frame(v))).collect();
            kv.sort_by_key(|(k, v)| (k.to_bytes().to_vec(), v.to_bytes().to_vec()));
            Frame::Map(kv)
        }
        other => other,
    }
}

fn pairs(f: Frame) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<(Vec<u8>, Vec<u8>)> = match f {
        Frame::Array(v) => v
            .chunks(2)
            .map(|c| (c[0].to_bytes().to_vec(), c.get(1).map(|x| x.to_bytes().to_vec()).unwrap_or_default()))
            .collect(),
        Frame::Map(kv) => kv.into_iter().map(|(k, v)| (k.to_bytes().to_vec(), v.to_bytes().to_vec())).collect(),
        other => vec![(other.to_bytes().to_vec(), vec![])],
    };
    v.sort();
    v
}

fn len_of(f: &Frame) -> (u8, usize) {
    let tag = f.to_bytes()[0];
    let n = match f {
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => v.len(),
        Frame::Map(kv) => kv.len(),
        _ => 0,
    };
    (tag, n)
}

fn same(mode: Mode, a: &[u8], b: &[u8]) -> bool {
    match mode {
        Mode::Exact | Mode::Read | Mode::Raw => a == b,
        Mode::Unordered => sort_frame(parse(a)) == sort_frame(parse(b)),
        Mode::Pairs => pairs(parse(a)) == pairs(parse(b)),
        Mode::Len => len_of(&parse(a)) == len_of(&parse(b)),
        Mode::Type => a.first() == b.first(),
        Mode::Approx => match (parse(a), parse(b)) {
            // -1 / -2 (no TTL / no key) stay exact.
            (Frame::Integer(x), Frame::Integer(y)) if x >= 0 && y >= 0 => (x - y).abs() <= 100,
            (x, y) => x == y,
        },
        Mode::Skip | Mode::Send => true,
    }
}

/// Replays `tests/corpus/<name>.txt` on both servers; returns (commands compared, mismatches).
pub fn run(name: &str) -> (usize, Vec<String>) {
    let path = format!("{}/tests/corpus/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut sides = [
        Side { server: super::redis_server(&[]), conns: HashMap::new() },
        Side { server: super::slotway_node(&[]), conns: HashMap::new() },
    ];
    let mut compared = 0;
    let mut bad = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = slotway::resp::request::split_args(line.as_bytes())
            .unwrap_or_else(|| panic!("{path}:{}: bad quoting", lineno + 1));
        let mut conn = 0;
        let mut mode = Mode::Exact;
        let mut i = 0;
        while i < words.len() {
            let w = String::from_utf8_lossy(&words[i]).to_string();
            if let Some(n) = w.strip_prefix('@') {
                conn = n.parse().expect("connection number");
            } else if let Some(d) = w.strip_prefix('!') {
                mode = match d {
                    "unordered" => Mode::Unordered,
                    "pairs" => Mode::Pairs,
                    "len" => Mode::Len,
                    "type" => Mode::Type,
                    "approx" => Mode::Approx,
                    "skip" => Mode::Skip,
                    "send" => Mode::Send,
                    "read" => Mode::Read,
                    "raw" => Mode::Raw,
                    "sleep" => {
                        let ms: u64 = String::from_utf8_lossy(&words[i + 1]).parse().expect("sleep ms");
                        std::thread::sleep(std::time::Duration::from_millis(ms));
                        i = words.len();
                        mode = Mode::Skip;
                        break;
                    }
                    other => panic!("{path}:{}: unknown directive !{other}", lineno + 1),
                };
            } else {
                break;
            }
            i += 1;
        }
        let cmd: Vec<&[u8]> = words[i..].iter().map(|w| w.as_slice()).collect();
        if std::env::var_os("CORPUS_TRACE").is_some() {
            eprintln!(
                "{name}.txt:{}: {line} [{:?}]",
                lineno + 1,
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() % 100_000)
                    .unwrap_or(0)
            );
        }
        if cmd.is_empty() && mode != Mode::Read {
            continue;
        }
        let mut replies: Vec<Option<Vec<u8>>> = Vec::new();
        for side in sides.iter_mut() {
            let c = side.conn(conn);
            match mode {
                Mode::Read => {}
                Mode::Raw => c.send_raw(cmd[0]),
                _ => c.send(&cmd),
            }
            let reply = if mode == Mode::Send {
                Some(vec![])
            } else {
                match c.try_read_reply() {
                    Ok(r) => r,
                    // A hang is always a mismatch, even when both servers hang.
                    Err(_) => Some(b"<no reply within the timeout>".to_vec()),
                }
            };
            if reply.is_none() || reply.as_deref() == Some(b"<no reply within the timeout>") {
                // Closed (QUIT, protocol error) or hung: the next line on this connection reconnects.
                side.conns.remove(&conn);
            }
            replies.push(reply);
        }
        compared += 1;
        let (a, b) = (&replies[0], &replies[1]);
        let hung = |r: &Option<Vec<u8>>| r.as_deref() == Some(b"<no reply within the timeout>");
        let ok = match (a, b) {
            _ if hung(a) || hung(b) => false,
            (Some(a), Some(b)) => same(mode, a, b),
            (None, None) => true,
            _ => false,
        };
        if !ok {
            let fmt = |r: &Option<Vec<u8>>| r.as_ref().map(|r| show(r)).unwrap_or_else(|| "<closed>".into());
            bad.push(format!("{name}.txt:{}: {line}\n    redis:   {}\n    slotway: {}", lineno + 1, fmt(a), fmt(b)));
        }
    }
    (compared, bad)
}

/// Runs a corpus and fails with every mismatch listed.
pub fn check(name: &str) {
    if !super::redis_available() {
        panic!("redis-server is not installed: run scripts/test, which installs it");
    }
    let (n, bad) = run(name);
    assert!(bad.is_empty(), "{} of {n} replies differ from redis-server:\n{}", bad.len(), bad.join("\n"));
    eprintln!("{name}: {n} replies identical to redis-server");
    let _ = encode;
}
