//! Hash commands: HSET HSETNX HGET HMSET HMGET HDEL HLEN HEXISTS HGETALL HKEYS HVALS HINCRBY
//! HINCRBYFLOAT HSTRLEN HRANDFIELD HSCAN, with Redis 7.0's replies and encoding transitions
//! (see `types::hash`).

use super::sets::{parse_scan_cursor, parse_scan_options, reply_scan};
use super::util::ldouble::{self, Parsed};
use super::util::{int, is};
use super::{CmdResult, Ctx, Handler};
use crate::errors;
use crate::node::types::{Hash, Value};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("hset", hset),
    ("hmset", hset),
    ("hsetnx", hsetnx),
    ("hget", hget),
    ("hmget", hmget),
    ("hdel", hdel),
    ("hlen", hlen),
    ("hexists", hexists),
    ("hgetall", hgetall),
    ("hkeys", hkeys),
    ("hvals", hvals),
    ("hincrby", hincrby),
    ("hincrbyfloat", hincrbyfloat),
    ("hstrlen", hstrlen),
    ("hrandfield", hrandfield),
    ("hscan", hscan),
];

/// Negative HRANDFIELD counts repeat picks; Redis would build a reply of any size, we stop at a
/// size no client can want rather than exhaust memory.
const MAX_REPEATED_PICKS: u64 = 10_000_000;

/// The hash at `key` for a read; Ok(None) when missing.
fn read<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a Hash>, super::CmdError> {
    let now = ctx.now;
    match ctx.db().get(key, now).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(errors::WRONGTYPE.into()),
    }
}

/// The hash at `key` for a write, created empty (listpack) if missing: Redis's
/// `hashTypeLookupWriteOrCreate`. Callers must not leave it empty.
fn write_or_create<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<&'a mut Hash, super::CmdError> {
    let now = ctx.now;
    let db = ctx.db();
    if db.get_mut(key, now).is_none() {
        db.set(key, Value::Hash(Box::default()), now);
    }
    match db.get_mut(key, now).map(|e| &mut e.value) {
        Some(Value::Hash(h)) => Ok(h),
        _ => Err(errors::WRONGTYPE.into()),
    }
}

/// Errors with WRONGTYPE before anything is created.
fn check_type(ctx: &mut Ctx, key: &[u8]) -> CmdResult {
    let now = ctx.now;
    match ctx.db().get_mut(key, now).map(|e| &e.value) {
        None | Some(Value::Hash(_)) => Ok(()),
        Some(_) => Err(errors::WRONGTYPE.into()),
    }
}

fn limits(ctx: &Ctx) -> (usize, usize) {
    (ctx.srv.config.hash_max_listpack_entries, ctx.srv.config.hash_max_listpack_value)
}

/// HSET key field value [field value ...] / HMSET (same, replies OK).
fn hset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let hmset = args[0].len() > 1 && args[0][1].eq_ignore_ascii_case(&b'm');
    if args.len() % 2 == 1 {
        return Err(errors::wrong_arity(if hmset { "hmset" } else { "hset" }).into());
    }
    let (max_entries, max_value) = limits(ctx);
    let h = write_or_create(ctx, args[1])?;
    h.convert_for(args[2..].iter().copied(), max_value);
    let mut created = 0;
    for pair in args[2..].chunks_exact(2) {
        created += h.set(pair[0], pair[1], max_entries, max_value) as i64;
    }
    ctx.modified(args[1]);
    if hmset {
        ctx.out.ok();
    } else {
        ctx.out.int(created);
    }
    Ok(())
}

fn hsetnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    check_type(ctx, args[1])?;
    let (max_entries, max_value) = limits(ctx);
    let now = ctx.now;
    let exists =
        matches!(ctx.db().get_mut(args[1], now).map(|e| &e.value), Some(Value::Hash(h)) if h.contains(args[2]));
    if exists {
        ctx.out.int(0);
        return Ok(());
    }
    let h = write_or_create(ctx, args[1])?;
    h.convert_for([args[2], args[3]], max_value);
    h.set(args[2], args[3], max_entries, max_value);
    ctx.modified(args[1]);
    ctx.out.int(1);
    Ok(())
}

fn hget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    with_hash(ctx, args[1], |h, out| match h.and_then(|h| h.get(args[2])) {
        Some(v) => out.bulk(v),
        None => out.null(),
    })
}

/// Replies go straight into the output buffer while the hash is borrowed: `read` borrows the db
/// through `ctx.srv`, and `ctx.out` is a separate field, so split the borrows by hand.
fn with_hash(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&Hash>, &mut crate::resp::Reply)) -> CmdResult {
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let h = match db.get(key, now).map(|e| &e.value) {
        None => None,
        Some(Value::Hash(h)) => Some(&**h),
        Some(_) => return Err(errors::WRONGTYPE.into()),
    };
    f(h, ctx.out);
    Ok(())
}

fn hmget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    with_hash(ctx, args[1], |h, out| {
        out.array(args.len() - 2);
        for f in &args[2..] {
            match h.and_then(|h| h.get(f)) {
                Some(v) => out.bulk(v),
                None => out.null(),
            }
        }
    })
}

fn hdel(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let (deleted, empty) = match db.get_mut(args[1], now).map(|e| &mut e.value) {
        None => (0, false),
        Some(Value::Hash(h)) => {
            let mut n = 0;
            for f in &args[2..] {
                if h.remove(f) {
                    n += 1;
                    if h.is_empty() {
                        break;
                    }
                }
            }
            (n, h.is_empty())
        }
        Some(_) => return Err(errors::WRONGTYPE.into()),
    };
    if empty {
        db.remove(args[1]);
    }
    if deleted > 0 {
        ctx.modified(args[1]);
    }
    ctx.out.int(deleted);
    Ok(())
}

fn hlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let n = read(ctx, args[1])?.map_or(0, |h| h.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let found = read(ctx, args[1])?.is_some_and(|h| h.contains(args[2]));
    ctx.out.int(found as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let n = read(ctx, args[1])?.and_then(|h| h.get(args[2])).map_or(0, |v| v.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn hgetall(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    with_hash(ctx, args[1], |h, out| match h {
        None => out.map(0),
        Some(h) => {
            out.map(h.len());
            for (f, v) in h.iter() {
                out.bulk(f);
                out.bulk(v);
            }
        }
    })
}

fn hkeys(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    with_hash(ctx, args[1], |h, out| {
        out.array(h.map_or(0, |h| h.len()));
        for (f, _) in h.into_iter().flat_map(|h| h.iter()) {
            out.bulk(f);
        }
    })
}

fn hvals(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    with_hash(ctx, args[1], |h, out| {
        out.array(h.map_or(0, |h| h.len()));
        for (_, v) in h.into_iter().flat_map(|h| h.iter()) {
            out.bulk(v);
        }
    })
}

fn hincrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let incr = int(args[3])?;
    check_type(ctx, args[1])?;
    let now = ctx.now;
    let old = match ctx.db().get_mut(args[1], now).map(|e| &e.value) {
        Some(Value::Hash(h)) => match h.get(args[2]) {
            Some(v) => Some(crate::resp::request::parse_i64(v).ok_or(super::CmdError::from(errors::HASH_NOT_INTEGER))?),
            None => None,
        },
        _ => None,
    };
    let old = old.unwrap_or(0);
    let new = old.checked_add(incr).ok_or(super::CmdError::from(errors::OVERFLOW))?;
    let (max_entries, max_value) = limits(ctx);
    let mut buf = itoa::Buffer::new();
    let s = buf.format(new);
    write_or_create(ctx, args[1])?.set(args[2], s.as_bytes(), max_entries, max_value);
    ctx.modified(args[1]);
    ctx.out.int(new);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let incr = ldouble::parse(args[3]).ok_or(super::CmdError::from(errors::NOT_FLOAT))?;
    if incr == Parsed::Infinite {
        return Err(errors::NAN_OR_INFINITY.into());
    }
    check_type(ctx, args[1])?;
    let now = ctx.now;
    let old = match ctx.db().get_mut(args[1], now).map(|e| &e.value) {
        Some(Value::Hash(h)) => match h.get(args[2]) {
            Some(v) => Some(ldouble::parse(v).ok_or(super::CmdError::from(errors::HASH_NOT_FLOAT))?),
            None => None,
        },
        _ => None,
    };
    let s = ldouble::incr(old.unwrap_or(Parsed::ZERO), incr).ok_or(super::CmdError::from(errors::NAN_OR_INF))?;
    let (max_entries, max_value) = limits(ctx);
    write_or_create(ctx, args[1])?.set(args[2], s.as_bytes(), max_entries, max_value);
    ctx.modified(args[1]);
    ctx.out.bulk(s.as_bytes());
    Ok(())
}

/// HRANDFIELD key [count [WITHVALUES]]
fn hrandfield(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() == 2 {
        let mut rng = rand::thread_rng();
        return with_hash(ctx, args[1], |h, out| match h.and_then(|h| h.random(&mut rng)) {
            Some((f, _)) => out.bulk(f),
            None => out.null(),
        });
    }
    let count = int(args[2])?;
    if count == i64::MIN {
        return Err(errors::RANDOM_COUNT_RANGE.into());
    }
    if args.len() > 4 || (args.len() == 4 && !is(args[3], "withvalues")) {
        return Err(errors::SYNTAX.into());
    }
    let withvalues = args.len() == 4;
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(errors::VALUE_OUT_OF_RANGE.into());
    }
    if count < 0 && count.unsigned_abs() > MAX_REPEATED_PICKS {
        return Err(errors::VALUE_OUT_OF_RANGE.into());
    }
    let resp3 = ctx.out.resp3;
    let mut rng = rand::thread_rng();
    with_hash(ctx, args[1], |h, out| {
        let Some(h) = h.filter(|_| count != 0) else {
            out.array(0);
            return;
        };
        let pair = |out: &mut crate::resp::Reply, f: &[u8], v: &[u8]| {
            if withvalues && resp3 {
                out.array(2);
            }
            out.bulk(f);
            if withvalues {
                out.bulk(v);
            }
        };
        let header = |out: &mut crate::resp::Reply, n: usize| out.array(if withvalues && !resp3 { n * 2 } else { n });
        if count < 0 || count == 1 {
            // Independent picks, repeats allowed (also the count of 1).
            let n = count.unsigned_abs() as usize;
            header(out, n);
            for _ in 0..n {
                if let Some((f, v)) = h.random(&mut rng) {
                    pair(out, f, v);
                }
            }
        } else if count as usize >= h.len() {
            header(out, h.len());
            for (f, v) in h.iter() {
                pair(out, f, v);
            }
        } else {
            let picks = h.sample(count as usize, &mut rng);
            header(out, picks.len());
            for (f, v) in picks {
                pair(out, f, v);
            }
        }
    })
}

fn hscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let cursor = parse_scan_cursor(args[2])?;
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let h = match db.get(args[1], now).map(|e| &e.value) {
        None => {
            reply_scan(ctx.out, 0, &[]);
            return Ok(());
        }
        Some(Value::Hash(h)) => h,
        Some(_) => return Err(errors::WRONGTYPE.into()),
    };
    let (count, pattern) = parse_scan_options(&args[3..])?;
    let mut items: Vec<&[u8]> = Vec::new();
    let next = h.scan(cursor, count, |f, v| {
        if pattern.is_none_or(|p| super::util::glob_match(p, f, false)) {
            items.push(f);
            items.push(v);
        }
    });
    reply_scan(ctx.out, next, &items);
    Ok(())
}
