//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SMOVE SINTER
//! SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE SINTERCARD SSCAN, with Redis 7.0's replies and
//! encodings (see `types::set`). Also the SSCAN/HSCAN argument parsing both families share.
//!
//! Multi-key commands never hold two sets at once (the db hands out one `&mut` at a time): they
//! type-check every key first, then copy the smallest input (SINTER) or build the result while
//! visiting one input after the other (SUNION, SDIFF), which is also what Redis's cost model is.

use super::util::{int, is};
use super::{CmdError, CmdResult, Ctx, Handler};
use crate::errors;
use crate::node::types::set::Member;
use crate::node::types::{Set, Value};
use crate::resp::Reply;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("sadd", sadd),
    ("srem", srem),
    ("smembers", smembers),
    ("sismember", sismember),
    ("smismember", smismember),
    ("scard", scard),
    ("spop", spop),
    ("srandmember", srandmember),
    ("smove", smove),
    ("sinter", sinter),
    ("sunion", sunion),
    ("sdiff", sdiff),
    ("sinterstore", sinterstore),
    ("sunionstore", sunionstore),
    ("sdiffstore", sdiffstore),
    ("sintercard", sintercard),
    ("sscan", sscan),
];

/// SPOP uses "keep the rest in a new set" once the rest is this many times smaller than the
/// count (`SPOP_MOVE_STRATEGY_MUL`), which can change the encoding of what stays.
const SPOP_MOVE_STRATEGY_MUL: u64 = 5;
/// Negative SRANDMEMBER counts repeat picks; see hashes.rs for why there is a ceiling.
const MAX_REPEATED_PICKS: u64 = 10_000_000;

fn max_intset(ctx: &Ctx) -> usize {
    ctx.srv.config.set_max_intset_entries
}

/// Runs `f` on the set at `key` (None when missing) with the reply writer, for read commands.
fn with_set(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&Set>, &mut Reply)) -> CmdResult {
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let s = match db.get(key, now).map(|e| &e.value) {
        None => None,
        Some(Value::Set(s)) => Some(&**s),
        Some(_) => return Err(errors::WRONGTYPE.into()),
    };
    f(s, ctx.out);
    Ok(())
}

fn write_member(out: &mut Reply, m: Member) {
    match m {
        Member::Int(i) => out.bulk_int(i),
        Member::Str(s) => out.bulk(s),
    }
}

fn reply_members(out: &mut Reply, s: &Set) {
    out.set(s.len());
    for m in s.iter() {
        write_member(out, m);
    }
}

/// A member copied out of a set.
#[derive(Debug, Clone)]
enum Owned {
    Int(i64),
    Str(Box<[u8]>),
}

impl Owned {
    fn of(m: Member) -> Self {
        match m {
            Member::Int(i) => Owned::Int(i),
            Member::Str(s) => Owned::Str(s.into()),
        }
    }
    fn member(&self) -> Member<'_> {
        match self {
            Owned::Int(i) => Member::Int(*i),
            Owned::Str(s) => Member::Str(s),
        }
    }
}

fn sadd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let max = max_intset(ctx);
    let now = ctx.now;
    let db = ctx.db();
    let added = match db.get_mut(args[1], now).map(|e| &mut e.value) {
        Some(Value::Set(s)) => args[2..].iter().filter(|m| s.add_bytes(m, max)).count(),
        Some(_) => return Err(errors::WRONGTYPE.into()),
        None => {
            let mut s = Set::for_first(Member::Str(args[2]));
            let n = args[2..].iter().filter(|m| s.add_bytes(m, max)).count();
            db.set(args[1], Value::Set(Box::new(s)), now);
            n
        }
    };
    if added > 0 {
        ctx.modified(args[1]);
    }
    ctx.out.int(added as i64);
    Ok(())
}

fn srem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let db = ctx.db();
    let (removed, empty) = match db.get_mut(args[1], now).map(|e| &mut e.value) {
        None => (0, false),
        Some(Value::Set(s)) => {
            let mut n = 0;
            for m in &args[2..] {
                if s.remove(Member::Str(m)) {
                    n += 1;
                    if s.is_empty() {
                        break;
                    }
                }
            }
            (n, s.is_empty())
        }
        Some(_) => return Err(errors::WRONGTYPE.into()),
    };
    if empty {
        db.remove(args[1]);
    }
    if removed > 0 {
        ctx.modified(args[1]);
    }
    ctx.out.int(removed);
    Ok(())
}

fn smembers(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    with_set(ctx, args[1], |s, out| match s {
        None => out.set(0),
        Some(s) => reply_members(out, s),
    })
}

fn sismember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    with_set(ctx, args[1], |s, out| out.int(s.is_some_and(|s| s.contains_bytes(args[2])) as i64))
}

fn smismember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    with_set(ctx, args[1], |s, out| {
        out.array(args.len() - 2);
        for m in &args[2..] {
            out.int(s.is_some_and(|s| s.contains_bytes(m)) as i64);
        }
    })
}

fn scard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    with_set(ctx, args[1], |s, out| out.int(s.map_or(0, |s| s.len()) as i64))
}

/// A new set holding `members` in order, built the way Redis builds result sets (starts as an
/// intset, converts as members demand).
fn build(members: impl IntoIterator<Item = Owned>, max: usize) -> Set {
    let mut s = Set::default();
    for m in members {
        s.add(m.member(), max);
    }
    s
}

fn spop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX.into());
    }
    if args.len() == 3 {
        return spop_count(ctx, args);
    }
    let now = ctx.now;
    let db = ctx.db();
    let (m, empty) = match db.get_mut(args[1], now).map(|e| &mut e.value) {
        None => {
            ctx.out.null();
            return Ok(());
        }
        Some(Value::Set(s)) => (s.pop_random(&mut rand::thread_rng()), s.is_empty()),
        Some(_) => return Err(errors::WRONGTYPE.into()),
    };
    if empty {
        db.remove(args[1]);
    }
    ctx.modified(args[1]);
    match m {
        Some(m) => ctx.out.bulk(&m),
        None => ctx.out.null(),
    }
    Ok(())
}

fn spop_count(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    // getPositiveLongFromObjectOrReply: any unparsable count is "out of range" too.
    let count = int(args[2]).ok().filter(|&c| c >= 0).ok_or(CmdError::from(errors::NOT_POSITIVE))? as u64;
    let max = max_intset(ctx);
    let now = ctx.now;
    let db = ctx.db();
    let set = match db.get_mut(args[1], now).map(|e| &mut e.value) {
        None => {
            ctx.out.set(0);
            return Ok(());
        }
        Some(Value::Set(s)) => s,
        Some(_) => return Err(errors::WRONGTYPE.into()),
    };
    if count == 0 {
        ctx.out.set(0);
        return Ok(());
    }
    let size = set.len() as u64;
    if count >= size {
        // Redis answers with SUNION of the one set: a rebuilt set, so a table whose members are
        // all integers comes out sorted.
        let all = build(set.iter().map(Owned::of), max);
        db.remove(args[1]);
        ctx.modified(args[1]);
        reply_members(ctx.out, &all);
        return Ok(());
    }
    let popped = set.pop_many(count as usize, &mut rand::thread_rng());
    if (size - count) * SPOP_MOVE_STRATEGY_MUL <= count {
        // Redis moves what stays into a new set, created for its first member.
        let rest: Vec<Owned> = set.iter().map(Owned::of).collect();
        let mut fresh = Set::for_first(rest[0].member());
        for m in &rest {
            fresh.add(m.member(), max);
        }
        **set = fresh;
    }
    ctx.modified(args[1]);
    ctx.out.set(popped.len());
    for m in &popped {
        ctx.out.bulk(m);
    }
    Ok(())
}

fn srandmember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX.into());
    }
    let mut rng = rand::thread_rng();
    if args.len() == 2 {
        return with_set(ctx, args[1], |s, out| match s.and_then(|s| s.random(&mut rng)) {
            Some(m) => write_member(out, m),
            None => out.null(),
        });
    }
    let count = int(args[2])?;
    if count == i64::MIN {
        return Err(errors::RANDOM_COUNT_RANGE.into());
    }
    if count < 0 && count.unsigned_abs() > MAX_REPEATED_PICKS {
        return Err(errors::VALUE_OUT_OF_RANGE.into());
    }
    with_set(ctx, args[1], |s, out| {
        let Some(s) = s.filter(|_| count != 0) else {
            out.array(0);
            return;
        };
        if count < 0 || count == 1 {
            let n = count.unsigned_abs() as usize;
            out.array(n);
            for _ in 0..n {
                if let Some(m) = s.random(&mut rng) {
                    write_member(out, m);
                }
            }
        } else if count as usize >= s.len() {
            out.array(s.len());
            for m in s.iter() {
                write_member(out, m);
            }
        } else {
            let picks = s.sample(count as usize, &mut rng);
            out.array(picks.len());
            for m in picks {
                write_member(out, m);
            }
        }
    })
}

fn smove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (src, dst, m) = (args[1], args[2], args[3]);
    let max = max_intset(ctx);
    let now = ctx.now;
    let db = ctx.db();
    let src_has = match db.get_mut(src, now).map(|e| &e.value) {
        None => {
            ctx.out.int(0);
            return Ok(());
        }
        Some(Value::Set(s)) => s.contains_bytes(m),
        Some(_) => return Err(errors::WRONGTYPE.into()),
    };
    match db.get_mut(dst, now).map(|e| &e.value) {
        None | Some(Value::Set(_)) => {}
        Some(_) => return Err(errors::WRONGTYPE.into()),
    }
    if src == dst || !src_has {
        ctx.out.int(src_has as i64);
        return Ok(());
    }
    if let Some(Value::Set(s)) = db.get_mut(src, now).map(|e| &mut e.value) {
        s.remove(Member::Str(m));
        if s.is_empty() {
            db.remove(src);
        }
    }
    let added = match db.get_mut(dst, now).map(|e| &mut e.value) {
        Some(Value::Set(s)) => s.add_bytes(m, max),
        _ => {
            let mut s = Set::for_first(Member::Str(m));
            s.add_bytes(m, max);
            db.set(dst, Value::Set(Box::new(s)), now);
            true
        }
    };
    ctx.modified(src);
    if added {
        ctx.modified(dst);
    }
    ctx.out.int(1);
    Ok(())
}

/// Looks every key up for reading (expiry, stats) and checks its type, as Redis does before any
/// work. Returns each key's cardinality, None for a missing key.
fn sizes(ctx: &mut Ctx, keys: &[&[u8]]) -> Result<Vec<Option<usize>>, CmdError> {
    let now = ctx.now;
    let db = ctx.db();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        out.push(match db.get(k, now).map(|e| &e.value) {
            None => None,
            Some(Value::Set(s)) => Some(s.len()),
            Some(_) => return Err(errors::WRONGTYPE.into()),
        });
    }
    Ok(out)
}

/// The set at a key already checked by [`sizes`].
fn peek<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Option<&'a Set> {
    let now = ctx.now;
    match ctx.db().peek(key, now).map(|e| &e.value) {
        Some(Value::Set(s)) => Some(s),
        _ => None,
    }
}

/// The intersection, in the iteration order of the smallest set (the first of equal ones), up
/// to `limit` members (0: no limit). None when a key is missing.
fn intersect(ctx: &mut Ctx, keys: &[&[u8]], limit: usize) -> Result<Option<Vec<Owned>>, CmdError> {
    let sizes = sizes(ctx, keys)?;
    if sizes.iter().any(|s| s.is_none()) {
        return Ok(None);
    }
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let first = keys[order[0]];
    let mut acc: Vec<Owned> = peek(ctx, first).map(|s| s.iter().map(Owned::of).collect()).unwrap_or_default();
    for &i in &order[1..] {
        if keys[i] == first {
            continue;
        }
        if let Some(s) = peek(ctx, keys[i]) {
            acc.retain(|m| s.contains(m.member()));
        }
        if acc.is_empty() {
            break;
        }
    }
    if limit > 0 {
        acc.truncate(limit);
    }
    Ok(Some(acc))
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Diff,
}

/// SUNION / SDIFF result, built like Redis's temporary set (so its encoding and order follow).
fn union_diff(ctx: &mut Ctx, keys: &[&[u8]], op: Op) -> Result<Set, CmdError> {
    let sizes = sizes(ctx, keys)?;
    let max = max_intset(ctx);
    let mut result = Set::default();
    match op {
        Op::Union => {
            for k in keys.iter().zip(&sizes).filter(|(_, s)| s.is_some()).map(|(k, _)| k) {
                if let Some(s) = peek(ctx, k) {
                    for m in s.iter() {
                        result.add(m, max);
                    }
                }
            }
        }
        Op::Diff => {
            if sizes[0].is_none() || keys[1..].contains(&keys[0]) {
                return Ok(result);
            }
            let mut members: Vec<Owned> =
                peek(ctx, keys[0]).map(|s| s.iter().map(Owned::of).collect()).unwrap_or_default();
            // Redis picks between "add the survivors of the first set" and "add the whole first
            // set, then remove the others"; the second can leave a table where the first would
            // have built an intset, so the choice is observable and copied here.
            let n0 = members.len() as u64;
            let present = sizes.iter().flatten();
            let algo_one = present.clone().map(|_| n0).sum::<u64>() / 2;
            let algo_two: u64 = present.map(|&n| n as u64).sum();
            let add_then_remove = algo_one > algo_two;
            if add_then_remove {
                result = build(members.iter().cloned(), max);
            }
            for (k, _) in keys[1..].iter().zip(&sizes[1..]).filter(|(_, s)| s.is_some()) {
                if let Some(s) = peek(ctx, k) {
                    members.retain(|m| !s.contains(m.member()));
                    if add_then_remove {
                        for m in s.iter() {
                            result.remove(m);
                        }
                    }
                }
                if members.is_empty() {
                    break;
                }
            }
            if !add_then_remove {
                result = build(members, max);
            }
        }
    }
    Ok(result)
}

/// Stores a STORE command's result at `dst` (or deletes `dst` when empty) and replies its size.
fn store(ctx: &mut Ctx, dst: &[u8], result: Set) {
    let now = ctx.now;
    let n = result.len();
    let db = ctx.db();
    if n > 0 {
        db.set(dst, Value::Set(Box::new(result)), now);
        ctx.modified(dst);
    } else if db.remove(dst).is_some() {
        ctx.modified(dst);
    }
    ctx.out.int(n as i64);
}

fn sinter(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let members = intersect(ctx, &args[1..], 0)?.unwrap_or_default();
    ctx.out.set(members.len());
    for m in &members {
        write_member(ctx.out, m.member());
    }
    Ok(())
}

fn sinterstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let members = intersect(ctx, &args[2..], 0)?.unwrap_or_default();
    let max = max_intset(ctx);
    store(ctx, args[1], build(members, max));
    Ok(())
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
fn sintercard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let numkeys = int(args[1]).ok().filter(|&n| n >= 1).ok_or(CmdError::from(errors::NUMKEYS_NOT_POSITIVE))?;
    if numkeys > (args.len() - 2) as i64 {
        return Err(errors::NUMKEYS_TOO_MANY.into());
    }
    let numkeys = numkeys as usize;
    let mut limit = 0;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if is(args[i], "limit") && i + 1 < args.len() {
            limit = int(args[i + 1]).ok().filter(|&l| l >= 0).ok_or(CmdError::from(errors::LIMIT_NEGATIVE))?;
            i += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    let n = intersect(ctx, &args[2..2 + numkeys], limit as usize)?.map_or(0, |m| m.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn sunion(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let s = union_diff(ctx, &args[1..], Op::Union)?;
    reply_members(ctx.out, &s);
    Ok(())
}

fn sdiff(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let s = union_diff(ctx, &args[1..], Op::Diff)?;
    reply_members(ctx.out, &s);
    Ok(())
}

fn sunionstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let s = union_diff(ctx, &args[2..], Op::Union)?;
    store(ctx, args[1], s);
    Ok(())
}

fn sdiffstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let s = union_diff(ctx, &args[2..], Op::Diff)?;
    store(ctx, args[1], s);
    Ok(())
}

fn sscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let cursor = parse_scan_cursor(args[2])?;
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let s = match db.get(args[1], now).map(|e| &e.value) {
        None => {
            reply_scan(ctx.out, 0, &[]);
            return Ok(());
        }
        Some(Value::Set(s)) => s,
        Some(_) => return Err(errors::WRONGTYPE.into()),
    };
    let (count, pattern) = parse_scan_options(&args[3..])?;
    let mut items: Vec<Box<[u8]>> = Vec::new();
    let next = s.scan(cursor, count, |m| {
        m.with_bytes(|b| {
            if pattern.is_none_or(|p| super::util::glob_match(p, b, false)) {
                items.push(b.into());
            }
        })
    });
    let refs: Vec<&[u8]> = items.iter().map(|b| &**b).collect();
    reply_scan(ctx.out, next, &refs);
    Ok(())
}

/// `parseScanCursorOrReply`: C's `strtoul` over the whole argument (sign allowed, "-1" wraps,
/// empty is 0), no leading space, no overflow.
pub(super) fn parse_scan_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::from(errors::INVALID_CURSOR);
    if arg.first().is_some_and(|&c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)) {
        return Err(invalid());
    }
    // The argument is a C string to strtoul: it ends at the first NUL.
    let s = match arg.iter().position(|&c| c == 0) {
        Some(n) => &arg[..n],
        None => arg,
    };
    if s.is_empty() {
        return Ok(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10).and_then(|v| v.checked_add((d - b'0') as u64)).ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// SCAN options after the cursor: `COUNT n` (n >= 1) and `MATCH pattern`, repeatable, the last
/// one winning. A pattern of just `*` matches everything and is dropped.
pub(super) fn parse_scan_options<'a>(opts: &[&'a [u8]]) -> Result<(usize, Option<&'a [u8]>), CmdError> {
    let mut count = 10usize;
    let mut pattern = None;
    let mut i = 0;
    while i < opts.len() {
        if is(opts[i], "count") && i + 1 < opts.len() {
            let n = int(opts[i + 1])?;
            if n < 1 {
                return Err(errors::SYNTAX.into());
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
            i += 2;
        } else if is(opts[i], "match") && i + 1 < opts.len() {
            pattern = if opts[i + 1] == b"*" { None } else { Some(opts[i + 1]) };
            i += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    Ok((count, pattern))
}

/// `[cursor, [items...]]`, the same shape in RESP2 and RESP3.
pub(super) fn reply_scan(out: &mut Reply, cursor: u64, items: &[&[u8]]) {
    out.array(2);
    out.bulk_int(cursor as i64);
    out.array(items.len());
    for it in items {
        out.bulk(it);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_like_strtoul() {
        assert_eq!(parse_scan_cursor(b"").ok(), Some(0));
        assert_eq!(parse_scan_cursor(b"0").ok(), Some(0));
        assert_eq!(parse_scan_cursor(b"+5").ok(), Some(5));
        assert_eq!(parse_scan_cursor(b"-1").ok(), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b"18446744073709551615").ok(), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b"7\0x").ok(), Some(7));
        for bad in [&b" 5"[..], b"18446744073709551616", b"-", b"+", b"1x", b"0x10", b"5 "] {
            assert!(parse_scan_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scan_options() {
        assert_eq!(parse_scan_options(&[]).ok(), Some((10, None)));
        assert_eq!(parse_scan_options(&[b"COUNT", b"5", b"match", b"a*"]).ok(), Some((5, Some(&b"a*"[..]))));
        assert_eq!(parse_scan_options(&[b"match", b"*"]).ok(), Some((10, None)));
        assert!(parse_scan_options(&[b"count", b"0"]).is_err());
        assert!(parse_scan_options(&[b"count"]).is_err());
        assert!(parse_scan_options(&[b"type", b"string"]).is_err());
    }
}
