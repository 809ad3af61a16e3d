//! MIGRATE: moves keys to another Redis (or slotway) by sending it RESTORE commands with Redis 7.0's
//! DUMP payloads. Like Redis this is synchronous: the node blocks on the target for at most the
//! given timeout per I/O step, and connections are cached per `host:port` for reuse.

use super::util::{int, is};
use super::{CmdError, CmdResult, Ctx, Handler};
use crate::errors;
use crate::node::rdb;
use crate::node::server::unix_ms;
use crate::resp::{frame_len, Frame};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub const COMMANDS: &[(&str, Handler)] = &[("migrate", migrate)];

/// Redis's MIGRATE_SOCKET_CACHE_ITEMS: beyond this a random cached connection is dropped.
const CACHE_ITEMS: usize = 64;
/// Redis's MIGRATE_SOCKET_CACHE_TTL (seconds): idle cached connections are closed by the cron.
const CACHE_TTL_S: i64 = 10;
/// Redis writes the request in 64 KiB chunks, each under the timeout.
const WRITE_CHUNK: usize = 64 * 1024;
/// Redis reads each reply line into a 1024-byte buffer, so a target's error text is cut there.
const LINE_MAX: usize = 1022;
/// A reply bigger than this is not something RESTORE/AUTH/SELECT answer: the target is broken.
const REPLY_MAX: usize = 1 << 20;

/// A cached connection to a MIGRATE target.
struct Cached {
    link: Link,
    /// The db the target connection has SELECTed, once known to have succeeded; -1 when unknown.
    /// Redis uses -1 as that marker, so a MIGRATE to db -1 skips SELECT on an unknown connection
    /// (its RESTOREs land in whatever db the connection is on); kept for identical replies.
    last_dbid: i64,
    /// Unix seconds of the last MIGRATE that used it.
    last_use: i64,
}

enum Link {
    Open(TcpStream),
    /// Redis's blocking connect reports success even when the connection was refused or timed out;
    /// the failure surfaces as a write error ("writing to target instance"), so it is kept here
    /// until the first write.
    Failed {
        timed_out: bool,
    },
}

/// Redis's `migrate_cached_sockets`, keyed by the `host:port` text as the client wrote it.
#[derive(Default)]
pub struct SocketCache {
    map: HashMap<Vec<u8>, Cached>,
}

impl SocketCache {
    /// Closes connections idle for more than 10 seconds (Redis's `migrateCloseTimedoutSockets`).
    pub fn close_idle(&mut self, now_s: i64) {
        self.map.retain(|_, c| now_s - c.last_use <= CACHE_TTL_S);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn close(&mut self, name: &[u8]) {
        self.map.remove(name);
    }
}

/// An I/O failure, and whether it was a timeout (Redis never retries after one).
struct IoFail {
    timed_out: bool,
}

impl From<io::Error> for IoFail {
    fn from(e: io::Error) -> Self {
        IoFail { timed_out: matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) }
    }
}

/// Parsed arguments.
struct Request<'a> {
    host: &'a [u8],
    port: &'a [u8],
    dbid: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    username: Option<&'a [u8]>,
    password: Option<&'a [u8]>,
    keys: &'a [&'a [u8]],
}

fn parse<'a>(args: &'a [&'a [u8]]) -> Result<Request<'a>, CmdError> {
    let (mut copy, mut replace) = (false, false);
    let (mut username, mut password) = (None, None);
    let mut keys = &args[3..4];
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is(args[j], "copy") {
            copy = true;
        } else if is(args[j], "replace") {
            replace = true;
        } else if is(args[j], "auth") {
            if more == 0 {
                return Err(errors::SYNTAX.into());
            }
            j += 1;
            password = Some(args[j]);
        } else if is(args[j], "auth2") {
            if more < 2 {
                return Err(errors::SYNTAX.into());
            }
            username = Some(args[j + 1]);
            password = Some(args[j + 2]);
            j += 2;
        } else if is(args[j], "keys") {
            if !args[3].is_empty() {
                return Err(errors::MIGRATE_KEYS_NEEDS_EMPTY_KEY.into());
            }
            keys = &args[j + 1..];
            break;
        } else {
            return Err(errors::SYNTAX.into());
        }
        j += 1;
    }
    let timeout = int(args[5])?;
    let dbid = int(args[4])?;
    let timeout = if timeout <= 0 { 1000 } else { timeout };
    Ok(Request {
        host: args[1],
        port: args[2],
        dbid,
        timeout: Duration::from_millis(timeout as u64),
        copy,
        replace,
        username,
        password,
        keys,
    })
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
/// [AUTH2 username password] [KEYS key ...], following Redis 7.0's `migrateCommand` step by step,
/// including its single retry after an I/O error that is not a timeout, when no key was acknowledged.
fn migrate(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let req = parse(args)?;
    let now = ctx.now;
    // Keys that exist now; the rest are skipped. None at all is not an error (a key may simply
    // have expired meanwhile).
    let mut keys: Vec<&[u8]> = Vec::with_capacity(req.keys.len());
    for k in req.keys {
        if ctx.db().get(k, now).is_some() {
            keys.push(k);
        }
    }
    if keys.is_empty() {
        ctx.out.simple("NOKEY");
        return Ok(());
    }
    let mut name = req.host.to_vec();
    name.push(b':');
    name.extend_from_slice(req.port);

    let mut may_retry = true;
    loop {
        match attempt(ctx, &req, &name, &mut keys, may_retry) {
            Attempt::Done(r) => return r,
            Attempt::SocketErr { write_error, timed_out, retry_allowed } => {
                ctx.srv.migrate_sockets.close(&name);
                if retry_allowed && may_retry && !timed_out {
                    may_retry = false;
                    continue;
                }
                return Err(if write_error { errors::MIGRATE_IOERR_WRITE } else { errors::MIGRATE_IOERR_READ }.into());
            }
        }
    }
}

enum Attempt {
    Done(CmdResult),
    /// Redis's `socket_err` label: the connection is dropped and, unless forbidden, retried once.
    SocketErr {
        write_error: bool,
        timed_out: bool,
        retry_allowed: bool,
    },
}

fn attempt(ctx: &mut Ctx, req: &Request, name: &[u8], keys: &mut Vec<&[u8]>, may_retry: bool) -> Attempt {
    let cache = &mut ctx.srv.migrate_sockets;
    let now_s = unix_ms() / 1000;
    if !cache.map.contains_key(name) {
        let Some(link) = connect(req.host, req.port, req.timeout) else {
            return Attempt::Done(Err(errors::MIGRATE_IOERR_CONNECT.into()));
        };
        if cache.map.len() >= CACHE_ITEMS {
            use rand::seq::IteratorRandom;
            let victim = cache.map.keys().choose(&mut rand::thread_rng()).cloned();
            if let Some(v) = victim {
                cache.map.remove(&v);
            }
        }
        cache.map.insert(name.to_vec(), Cached { link, last_dbid: -1, last_use: now_s });
    }
    let Some(cs) = cache.map.get_mut(name) else {
        return Attempt::Done(Err(errors::MIGRATE_IOERR_CONNECT.into()));
    };
    cs.last_use = now_s;
    let select = cs.last_dbid != req.dbid;

    // The request: AUTH, SELECT when the connection is not already on the db, one RESTORE per
    // key still alive (a TTL that ran out while connecting drops the key from the batch).
    let mut cmd: Vec<u8> = Vec::new();
    if let Some(pw) = req.password {
        match req.username {
            Some(user) => encode(&mut cmd, &[b"AUTH", user, pw]),
            None => encode(&mut cmd, &[b"AUTH", pw]),
        }
    }
    if select {
        encode(&mut cmd, &[b"SELECT", req.dbid.to_string().as_bytes()]);
    }
    let restore: &[u8] = if ctx.srv.cluster.is_some() { b"RESTORE-ASKING" } else { b"RESTORE" };
    let lim = rdb::Limits::from_config(&ctx.srv.config);
    let (dbi, now) = (ctx.client.db, ctx.now);
    let clock = unix_ms();
    let db = &mut ctx.srv.dbs[dbi];
    keys.retain(|k| {
        let expire_at = db.ttl_of(k);
        let Some(entry) = db.peek(k, now) else { return false };
        let mut ttl = 0;
        if let Some(at) = expire_at {
            ttl = at - clock;
            if ttl < 0 {
                return false;
            }
            ttl = ttl.max(1);
        }
        let payload = rdb::dump_payload(&entry.value, &lim);
        let ttl = ttl.to_string();
        let mut parts: Vec<&[u8]> = vec![restore, k, ttl.as_bytes(), &payload];
        if req.replace {
            parts.push(b"REPLACE");
        }
        encode(&mut cmd, &parts);
        true
    });

    let Some(cs) = ctx.srv.migrate_sockets.map.get_mut(name) else {
        return Attempt::Done(Err(errors::MIGRATE_IOERR_CONNECT.into()));
    };
    let stream = match &mut cs.link {
        Link::Open(s) => s,
        Link::Failed { timed_out } => {
            return Attempt::SocketErr { write_error: true, timed_out: *timed_out, retry_allowed: true };
        }
    };
    if let Err(e) = write_all(stream, &cmd, req.timeout) {
        return Attempt::SocketErr { write_error: true, timed_out: e.timed_out, retry_allowed: true };
    }
    let mut rd = ReplyReader { buf: Vec::new() };
    let auth_reply = match req.password {
        Some(_) => match rd.next(stream, req.timeout) {
            Ok(r) => Some(r),
            Err(e) => return Attempt::SocketErr { write_error: false, timed_out: e.timed_out, retry_allowed: true },
        },
        None => None,
    };
    let select_reply = if select {
        match rd.next(stream, req.timeout) {
            Ok(r) => Some(r),
            Err(e) => return Attempt::SocketErr { write_error: false, timed_out: e.timed_out, retry_allowed: true },
        }
    } else {
        None
    };

    let mut target_error: Option<String> = None;
    let mut socket_error: Option<IoFail> = None;
    let mut acked = 0;
    let mut deleted: Vec<&[u8]> = Vec::new();
    for k in keys.iter() {
        let r = match rd.next(stream, req.timeout) {
            Ok(r) => r,
            Err(e) => {
                socket_error = Some(e);
                break;
            }
        };
        acked += 1;
        let failed =
            [auth_reply.as_ref(), select_reply.as_ref(), Some(&r)].into_iter().flatten().find_map(|f| match f {
                Frame::Error(e) => Some(e.clone()),
                _ => None,
            });
        if let Some(e) = failed {
            if target_error.is_none() {
                cs.last_dbid = -1;
                let text = &e[..e.len().min(LINE_MAX)];
                target_error = Some(errors::migrate_target_error(&String::from_utf8_lossy(text)));
            }
        } else if !req.copy {
            deleted.push(k);
        }
    }
    if socket_error.is_none() && target_error.is_none() {
        cs.last_dbid = req.dbid;
    }
    for k in deleted {
        if ctx.db().remove(k).is_some() {
            ctx.modified(k);
        }
    }
    if let Some(e) = socket_error {
        if target_error.is_none() {
            // Retried only when nothing was acknowledged: the target may have applied part of a
            // batch otherwise.
            return Attempt::SocketErr {
                write_error: false,
                timed_out: e.timed_out,
                retry_allowed: acked == 0 && may_retry,
            };
        }
        ctx.srv.migrate_sockets.close(name);
    }
    Attempt::Done(match target_error {
        Some(t) => Err(t.into()),
        None => {
            ctx.out.ok();
            Ok(())
        }
    })
}

/// A request as a RESP array of bulk strings, written straight into the output (payloads can be
/// large; no intermediate frame).
fn encode(out: &mut Vec<u8>, parts: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
}

/// Redis's `atoi` of the port: leading blanks, a sign, digits, anything after ignored; `strtol`
/// saturates and the result is cut to an `int`.
fn atoi(b: &[u8]) -> i32 {
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        i += 1;
    }
    (if neg { v.saturating_neg() } else { v }) as i32
}

/// Redis's `connBlockingConnect`: a name that does not resolve (or a negative port) fails here,
/// with "connecting to the client"; a refused or timed-out connection is only noticed when
/// writing.
fn connect(host: &[u8], port: &[u8], timeout: Duration) -> Option<Link> {
    let port = atoi(port);
    if port < 0 {
        return None;
    }
    // getaddrinfo takes a numeric service modulo 2^16.
    let port = (port as u32 & 0xffff) as u16;
    let host = std::str::from_utf8(host).ok()?;
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().ok()?.collect();
    if addrs.is_empty() {
        return None;
    }
    // A timeout too large for the clock is as good as none.
    let deadline = Instant::now().checked_add(timeout);
    let mut timed_out = false;
    for a in addrs {
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            timed_out = true;
            break;
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Some(Link::Open(s));
            }
            Err(e) => timed_out = matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        }
    }
    Some(Link::Failed { timed_out })
}

fn write_all(s: &mut TcpStream, buf: &[u8], timeout: Duration) -> Result<(), IoFail> {
    s.set_write_timeout(Some(timeout))?;
    for chunk in buf.chunks(WRITE_CHUNK) {
        s.write_all(chunk)?;
    }
    Ok(())
}

/// Reads whole replies from the target, each read waiting at most the timeout.
struct ReplyReader {
    buf: Vec<u8>,
}

impl ReplyReader {
    fn next(&mut self, s: &mut TcpStream, timeout: Duration) -> Result<Frame, IoFail> {
        s.set_read_timeout(Some(timeout))?;
        loop {
            match frame_len(&self.buf) {
                Ok(Some(n)) => {
                    let bytes = bytes::Bytes::from(self.buf.drain(..n).collect::<Vec<u8>>());
                    return match Frame::parse(&bytes) {
                        Ok(Some((f, _))) => Ok(f),
                        _ => Err(IoFail { timed_out: false }),
                    };
                }
                Ok(None) if self.buf.len() <= REPLY_MAX => {}
                // Not RESP, or absurdly large: the target is not a Redis we can talk to.
                _ => return Err(IoFail { timed_out: false }),
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk) {
                Ok(0) => return Err(IoFail { timed_out: false }),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::atoi;

    #[test]
    fn atoi_is_c_atoi() {
        assert_eq!(atoi(b"6379"), 6379);
        assert_eq!(atoi(b" +17001x"), 17001);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b"-1"), -1);
        assert_eq!(atoi(b""), 0);
        assert_eq!(atoi(b"99999999999"), 99999999999i64 as i32);
    }
}
