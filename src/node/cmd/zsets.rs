//! Sorted-set commands, following Redis 7.0's t_zset.c: same argument parsing order (so the same
//! error wins when several apply), same replies in RESP2 and RESP3.

use super::util;
use super::{CmdError, CmdResult, Ctx, Handler};
use crate::errors;
use crate::node::client::{Blocked, OwnedCommand, TimeoutReply};
use crate::node::db::Db;
use crate::node::types::zset::{AddFlags, Added, LexBound, LexRange, Limits, Pos, ScoreRange};
use crate::node::types::{Set, Value, ZSet};
use crate::resp::reply::fmt_double;
use crate::resp::request::parse_i64;
use crate::resp::Reply;
use smallvec::SmallVec;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("zadd", zadd),
    ("zincrby", zincrby),
    ("zrem", zrem),
    ("zcard", zcard),
    ("zscore", zscore),
    ("zmscore", zmscore),
    ("zrank", zrank),
    ("zrevrank", zrevrank),
    ("zrange", zrange),
    ("zrevrange", zrevrange),
    ("zrangestore", zrangestore),
    ("zrangebyscore", zrangebyscore),
    ("zrevrangebyscore", zrevrangebyscore),
    ("zrangebylex", zrangebylex),
    ("zrevrangebylex", zrevrangebylex),
    ("zcount", zcount),
    ("zlexcount", zlexcount),
    ("zremrangebyrank", zremrangebyrank),
    ("zremrangebyscore", zremrangebyscore),
    ("zremrangebylex", zremrangebylex),
    ("zpopmin", zpopmin),
    ("zpopmax", zpopmax),
    ("bzpopmin", bzpopmin),
    ("bzpopmax", bzpopmax),
    ("zmpop", zmpop),
    ("bzmpop", bzmpop),
    ("zunion", zunion),
    ("zinter", zinter),
    ("zdiff", zdiff),
    ("zunionstore", zunionstore),
    ("zinterstore", zinterstore),
    ("zdiffstore", zdiffstore),
    ("zintercard", zintercard),
    ("zrandmember", zrandmember),
    ("zscan", zscan),
];

// ---- lookups and replies ---------------------------------------------------------------------

fn limits(ctx: &Ctx) -> Limits {
    Limits { entries: ctx.srv.config.zset_max_listpack_entries, value: ctx.srv.config.zset_max_listpack_value }
}

/// `lookupKeyRead` + type check.
fn read<'a>(db: &'a mut Db, key: &[u8], now: i64) -> Result<Option<&'a mut ZSet>, CmdError> {
    match db.get(key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(errors::WRONGTYPE.into()),
        },
    }
}

/// `lookupKeyWrite` + type check.
fn write<'a>(db: &'a mut Db, key: &[u8], now: i64) -> Result<Option<&'a mut ZSet>, CmdError> {
    match db.get_mut(key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(errors::WRONGTYPE.into()),
        },
    }
}

/// Array header for `n` members, with scores: flat in RESP2, `[member, score]` pairs in RESP3.
fn pairs_header(out: &mut Reply, n: usize, withscores: bool) {
    out.array(if withscores && !out.resp3 { n * 2 } else { n });
}

fn emit(out: &mut Reply, member: &[u8], score: f64, withscores: bool) {
    if withscores && out.resp3 {
        out.array(2);
    }
    out.bulk(member);
    if withscores {
        out.double(score);
    }
}

/// Records that the client waits on `keys` (the command re-runs when one changes).
fn block(ctx: &mut Ctx, args: &[&[u8]], keys: &[&[u8]], deadline: Option<std::time::Instant>) {
    ctx.client.blocked = Some(Blocked {
        db: ctx.client.db,
        keys: keys.iter().map(|k| Box::<[u8]>::from(*k)).collect(),
        deadline,
        command: OwnedCommand::new(args),
        on_timeout: TimeoutReply::NullArray,
    });
}

/// Stores a computed set at `dst` (or deletes `dst` when it is empty) and replies its size.
fn store_result(ctx: &mut Ctx, dst: &[u8], z: ZSet) {
    let now = ctx.now;
    let n = z.len();
    if n > 0 {
        ctx.db().set(dst, Value::ZSet(Box::new(z)), now);
        ctx.out.int(n as i64);
        ctx.modified(dst);
    } else {
        ctx.out.int(0);
        if ctx.db().remove(dst).is_some() {
            ctx.modified(dst);
        }
    }
}

// ---- argument parsing ------------------------------------------------------------------------

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What C sees of an argument: the bytes before the first NUL.
fn cstr(arg: &[u8]) -> &[u8] {
    match memchr::memchr(0, arg) {
        Some(i) => &arg[..i],
        None => arg,
    }
}

/// glibc's `strtod`: (value, bytes consumed, ERANGE). Consumes nothing when there is no number.
fn strtod(s: &[u8]) -> (f64, usize, bool) {
    let mut i = 0;
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    let neg = i < s.len() && s[i] == b'-';
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        i += 1;
    }
    let sign = if neg { -1.0 } else { 1.0 };
    let rest = &s[i..];
    let starts = |w: &[u8]| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w);
    if starts(b"infinity") {
        return (sign * f64::INFINITY, i + 8, false);
    }
    if starts(b"inf") {
        return (sign * f64::INFINITY, i + 3, false);
    }
    if starts(b"nan") {
        let mut j = i + 3;
        if j < s.len() && s[j] == b'(' {
            let mut k = j + 1;
            while k < s.len() && (s[k].is_ascii_alphanumeric() || s[k] == b'_') {
                k += 1;
            }
            if k < s.len() && s[k] == b')' {
                j = k + 1;
            }
        }
        return (f64::NAN, j, false);
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        return match hex_float(&rest[2..]) {
            Some((v, n, erange)) => (sign * v, i + 2 + n, erange),
            None => (sign * 0.0, i + 1, false),
        };
    }
    let start = i;
    let mut j = i;
    let (mut digits, mut nonzero) = (0, false);
    while j < s.len() && s[j].is_ascii_digit() {
        nonzero |= s[j] != b'0';
        digits += 1;
        j += 1;
    }
    if j < s.len() && s[j] == b'.' {
        j += 1;
        while j < s.len() && s[j].is_ascii_digit() {
            nonzero |= s[j] != b'0';
            digits += 1;
            j += 1;
        }
    }
    if digits == 0 {
        return (0.0, 0, false);
    }
    if j < s.len() && (s[j] | 0x20) == b'e' {
        let mut k = j + 1;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            while k < s.len() && s[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let v: f64 = std::str::from_utf8(&s[start..j]).ok().and_then(|t| t.parse().ok()).unwrap_or(0.0);
    let erange = v.is_infinite() || (v == 0.0 && nonzero);
    (sign * v, j, erange)
}

/// The part of a hex float after `0x`: (value, bytes consumed, ERANGE), or None without digits.
fn hex_float(s: &[u8]) -> Option<(f64, usize, bool)> {
    let (mut mant, mut exp, mut any, mut j) = (0u64, 0i64, false, 0);
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u64);
    while let Some(d) = s.get(j).and_then(|&c| hex(c)) {
        if mant >> 56 == 0 {
            mant = mant * 16 + d;
        } else {
            exp += 4;
        }
        any = true;
        j += 1;
    }
    if s.get(j) == Some(&b'.') {
        let mut k = j + 1;
        let mut frac = false;
        while let Some(d) = s.get(k).and_then(|&c| hex(c)) {
            if mant >> 56 == 0 {
                mant = mant * 16 + d;
                exp -= 4;
            }
            frac = true;
            k += 1;
        }
        if any || frac {
            any = true;
            j = k;
        }
    }
    if !any {
        return None;
    }
    if matches!(s.get(j), Some(b'p') | Some(b'P')) {
        let mut k = j + 1;
        let eneg = s.get(k) == Some(&b'-');
        if matches!(s.get(k), Some(b'+') | Some(b'-')) {
            k += 1;
        }
        if s.get(k).is_some_and(|c| c.is_ascii_digit()) {
            let mut e: i64 = 0;
            while let Some(c) = s.get(k).filter(|c| c.is_ascii_digit()) {
                e = (e * 10 + (c - b'0') as i64).min(1 << 20);
                k += 1;
            }
            exp += if eneg { -e } else { e };
            j = k;
        }
    }
    let mut v = mant as f64;
    let mut e = exp.clamp(-4000, 4000) as i32;
    while e != 0 && v != 0.0 && v.is_finite() {
        let step = e.clamp(-1000, 1000);
        v *= 2f64.powi(step);
        e -= step;
    }
    let erange = v.is_infinite() || (v == 0.0 && mant != 0);
    Some((v, j, erange))
}

/// `getDoubleFromObject`: the whole argument must be a number, no leading space, no NaN, no
/// overflow or underflow to zero.
fn parse_double(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || is_space(arg[0]) {
        return None;
    }
    let (v, n, erange) = strtod(arg);
    if n != arg.len() || v.is_nan() || (erange && (v.is_infinite() || v == 0.0)) {
        return None;
    }
    Some(v)
}

/// One bound of a score range (`zslParseRange`): `(` makes it exclusive; strtod's leniency
/// (leading spaces, empty string = 0) is Redis's too.
fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let c = cstr(arg);
    let (body, ex) = match c.first() {
        Some(b'(') => (&c[1..], true),
        _ => (c, false),
    };
    let (v, n, _) = strtod(body);
    if n != body.len() || v.is_nan() {
        return None;
    }
    Some((v, ex))
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    match (parse_score_bound(min), parse_score_bound(max)) {
        (Some((min, minex)), Some((max, maxex))) => Ok(ScoreRange { min, max, minex, maxex }),
        _ => Err(errors::ZSET_MINMAX_FLOAT.into()),
    }
}

/// One end of a lex range (`zslParseLexRangeItem`).
fn parse_lex_bound(arg: &[u8]) -> Option<(LexBound, bool)> {
    let alone = arg.len() == 1 || arg.get(1) == Some(&0);
    match arg.first() {
        Some(b'+') if alone => Some((LexBound::Max, true)),
        Some(b'-') if alone => Some((LexBound::Min, true)),
        Some(b'(') => Some((LexBound::Str(arg[1..].to_vec()), true)),
        Some(b'[') => Some((LexBound::Str(arg[1..].to_vec()), false)),
        _ => None,
    }
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
    match (parse_lex_bound(min), parse_lex_bound(max)) {
        (Some((min, minex)), Some((max, maxex))) => Ok(LexRange { min, max, minex, maxex }),
        _ => Err(errors::ZSET_MINMAX_LEX.into()),
    }
}

/// `getRangeLongFromObjectOrReply` with a message: used for both a non-integer and a value out
/// of range.
fn ranged(arg: &[u8], min: i64, max: i64, msg: &'static str) -> Result<i64, CmdError> {
    match parse_i64(arg) {
        Some(v) if v >= min && v <= max => Ok(v),
        _ => Err(msg.into()),
    }
}

/// `getPositiveLongFromObjectOrReply` without a message.
fn positive(arg: &[u8]) -> Result<i64, CmdError> {
    ranged(arg, 0, i64::MAX, errors::NOT_POSITIVE)
}

/// The scan cursor as `strtoul` reads it (sign allowed, `-1` wraps), no leading space.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let s = cstr(arg);
    if s.is_empty() {
        return Some(0);
    }
    if is_space(s[0]) {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// How a listpack stores a score (`d2string`): integral values in a safe range as integers.
fn listpack_score(d: f64) -> String {
    let lim = (i64::MAX / 2) as f64;
    if d.is_finite() && d >= -lim && d <= lim {
        let l = d as i64;
        if l as f64 == d {
            return l.to_string();
        }
    }
    fmt_double(d)
}

// ---- ZADD / ZINCRBY / ZREM -------------------------------------------------------------------

fn zadd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, args, false)
}

fn zincrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, args, true)
}

fn zadd_generic(ctx: &mut Ctx, args: &[&[u8]], incr_cmd: bool) -> CmdResult {
    let mut f = AddFlags { incr: incr_cmd, ..AddFlags::default() };
    let mut ch = false;
    let mut idx = 2;
    while idx < args.len() {
        let a = args[idx];
        if util::is(a, "nx") {
            f.nx = true;
        } else if util::is(a, "xx") {
            f.xx = true;
        } else if util::is(a, "ch") {
            ch = true;
        } else if util::is(a, "incr") {
            f.incr = true;
        } else if util::is(a, "gt") {
            f.gt = true;
        } else if util::is(a, "lt") {
            f.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let elements = args.len() - idx;
    if elements % 2 == 1 || elements == 0 {
        return Err(errors::SYNTAX.into());
    }
    let elements = elements / 2;
    if f.nx && f.xx {
        return Err(errors::ZSET_XX_NX.into());
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(errors::ZSET_GT_LT_NX.into());
    }
    if f.incr && elements > 1 {
        return Err(errors::ZSET_INCR_PAIR.into());
    }
    let mut scores: SmallVec<[f64; 8]> = SmallVec::with_capacity(elements);
    for j in 0..elements {
        scores.push(parse_double(args[idx + j * 2]).ok_or(CmdError::from(errors::NOT_FLOAT))?);
    }
    let lim = limits(ctx);
    let now = ctx.now;
    let key = args[1];
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let z = match write(db, key, now)? {
        Some(z) => z,
        None => {
            if f.xx {
                if f.incr {
                    ctx.out.null();
                } else {
                    ctx.out.int(0);
                }
                return Ok(());
            }
            let first = args[idx + 1];
            let listpack = !(lim.entries == 0 || lim.value < first.len());
            db.set(key, Value::ZSet(Box::new(ZSet::new(listpack))), now);
            match write(db, key, now)? {
                Some(z) => z,
                None => return Err(errors::WRONGTYPE.into()),
            }
        }
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut score = 0.0;
    let mut nan = false;
    for (j, &s) in scores.iter().enumerate() {
        match z.add(s, args[idx + 1 + j * 2], f, lim) {
            Added::Nan => {
                nan = true;
                break;
            }
            Added::Nop => {}
            Added::Added(s) => {
                added += 1;
                processed += 1;
                score = s;
            }
            Added::Updated(s) => {
                updated += 1;
                processed += 1;
                score = s;
            }
            Added::Same(s) => {
                processed += 1;
                score = s;
            }
        }
    }
    if added + updated > 0 {
        ctx.modified(key);
    }
    if nan {
        return Err(errors::ZSET_NAN.into());
    }
    if f.incr {
        if processed > 0 {
            ctx.out.double(score);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out.int(if ch { added + updated } else { added });
    }
    Ok(())
}

fn zrem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let key = args[1];
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let Some(z) = write(db, key, now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    let mut emptied = false;
    for m in &args[2..] {
        if z.remove(m) {
            deleted += 1;
        }
        if z.is_empty() {
            emptied = true;
            break;
        }
    }
    if emptied {
        db.remove(key);
    }
    if deleted > 0 {
        ctx.modified(key);
    }
    ctx.out.int(deleted);
    Ok(())
}

// ---- point reads -----------------------------------------------------------------------------

fn zcard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let n = read(ctx.db(), args[1], now)?.map_or(0, |z| z.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    match read(ctx.db(), args[1], now)?.and_then(|z| z.score(args[2])) {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let z = read(&mut ctx.srv.dbs[ctx.client.db], args[1], now)?;
    let out = &mut *ctx.out;
    out.array(args.len() - 2);
    for m in &args[2..] {
        match z.as_ref().and_then(|z| z.score(m)) {
            Some(s) => out.double(s),
            None => out.null(),
        }
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrank_generic(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrank_generic(ctx, args, true)
}

fn zrank_generic(ctx: &mut Ctx, args: &[&[u8]], reverse: bool) -> CmdResult {
    let now = ctx.now;
    let rank = read(ctx.db(), args[1], now)?.and_then(|z| z.rank(args[2]).map(|r| (r, z.len())));
    match rank {
        Some((r, len)) => ctx.out.int(if reverse { len - 1 - r } else { r } as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

// ---- ranges ----------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Auto,
    Forward,
    Reverse,
}

enum Spec {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

fn zrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, Kind::Auto, Dir::Auto)
}
fn zrangestore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 2, true, Kind::Auto, Dir::Auto)
}
fn zrevrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, Kind::Rank, Dir::Reverse)
}
fn zrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, Kind::Score, Dir::Forward)
}
fn zrevrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, Kind::Score, Dir::Reverse)
}
fn zrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, Kind::Lex, Dir::Forward)
}
fn zrevrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zrange_generic(ctx, args, 1, false, Kind::Lex, Dir::Reverse)
}

/// `zrangeGenericCommand`: ZRANGE, ZRANGESTORE and the legacy Z[REV]RANGE[BYSCORE|BYLEX].
/// `src` is the index of the source key; the store variant's destination is `args[1]`.
fn zrange_generic(ctx: &mut Ctx, args: &[&[u8]], src: usize, store: bool, mut kind: Kind, mut dir: Dir) -> CmdResult {
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = src + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = args[j];
        if !store && util::is(a, "withscores") {
            withscores = true;
        } else if util::is(a, "limit") && left >= 2 {
            offset = util::int(args[j + 1])?;
            limit = util::int(args[j + 2])?;
            j += 2;
        } else if dir == Dir::Auto && util::is(a, "rev") {
            dir = Dir::Reverse;
        } else if kind == Kind::Auto && util::is(a, "bylex") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && util::is(a, "byscore") {
            kind = Kind::Score;
        } else {
            return Err(errors::SYNTAX.into());
        }
        j += 1;
    }
    let reverse = dir == Dir::Reverse;
    if kind == Kind::Auto {
        kind = Kind::Rank;
    }
    if limit != -1 && kind == Kind::Rank {
        return Err(errors::ZSET_LIMIT_NEEDS_BY.into());
    }
    if withscores && kind == Kind::Lex {
        return Err(errors::ZSET_WITHSCORES_BYLEX.into());
    }
    let (mut lo, mut hi) = (args[src + 1], args[src + 2]);
    if reverse && kind != Kind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let spec = match kind {
        Kind::Score => Spec::Score(parse_score_range(lo, hi)?),
        Kind::Lex => Spec::Lex(parse_lex_range(lo, hi)?),
        _ => Spec::Rank(util::int(lo)?, util::int(hi)?),
    };
    let withscores = withscores || store;
    let lim = limits(ctx);
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let Some(z) = read(db, args[src], now)? else {
        if store {
            store_result(ctx, args[1], ZSet::new(true));
        } else {
            ctx.out.array(0);
        }
        return Ok(());
    };
    let picked = select(z, &spec, reverse, offset, limit);
    if store {
        let mut dst = ZSet::new(true);
        for &p in &picked {
            let (m, s) = z.at(p);
            dst.add(s, m, AddFlags::default(), lim);
        }
        store_result(ctx, args[1], dst);
        return Ok(());
    }
    let out = &mut *ctx.out;
    pairs_header(out, picked.len(), withscores);
    for &p in &picked {
        let (m, s) = z.at(p);
        emit(out, m, s, withscores);
    }
    Ok(())
}

/// The positions a range selects, in reply order.
fn select(z: &ZSet, spec: &Spec, reverse: bool, offset: i64, limit: i64) -> Vec<Pos> {
    let len = z.len() as i64;
    let mut picked = Vec::new();
    match spec {
        Spec::Rank(start, end) => {
            let (mut start, mut end) = (*start, *end);
            if start < 0 {
                start += len;
            }
            if end < 0 {
                end += len;
            }
            if start < 0 {
                start = 0;
            }
            if start > end || start >= len {
                return picked;
            }
            if end >= len {
                end = len - 1;
            }
            let n = (end - start + 1) as usize;
            let first = if reverse { len - 1 - start } else { start };
            let mut p = z.pos_at(first as usize);
            picked.reserve(n);
            while let Some(x) = p {
                if picked.len() == n {
                    break;
                }
                picked.push(x);
                p = z.step(x, reverse);
            }
        }
        Spec::Score(r) => {
            if offset > 0 && offset >= len {
                return picked;
            }
            let start = z.score_start(r, reverse).map(|(_, p)| p);
            walk_range(z, start, reverse, offset, limit, &mut picked, |_, s| {
                if reverse {
                    r.gte_min(s)
                } else {
                    r.lte_max(s)
                }
            });
        }
        Spec::Lex(r) => {
            let start = z.lex_start(r, reverse).map(|(_, p)| p);
            walk_range(z, start, reverse, offset, limit, &mut picked, |m, _| {
                if reverse {
                    r.gte_min(m)
                } else {
                    r.lte_max(m)
                }
            });
        }
    }
    picked
}

/// From `start`, skips `offset` elements (a negative offset skips everything, as in Redis), then
/// takes up to `limit` (negative: no limit) while `in_range` holds.
fn walk_range(
    z: &ZSet,
    start: Option<Pos>,
    reverse: bool,
    offset: i64,
    limit: i64,
    picked: &mut Vec<Pos>,
    in_range: impl Fn(&[u8], f64) -> bool,
) {
    let mut p = start;
    if offset < 0 {
        return;
    }
    let mut skip = offset;
    while let Some(x) = p {
        if skip == 0 {
            break;
        }
        skip -= 1;
        p = z.step(x, reverse);
    }
    let mut left = limit;
    while let Some(x) = p {
        if left == 0 {
            break;
        }
        left -= 1;
        let (m, s) = z.at(x);
        if !in_range(m, s) {
            break;
        }
        picked.push(x);
        p = z.step(x, reverse);
    }
}

fn zcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let r = parse_score_range(args[2], args[3])?;
    let now = ctx.now;
    let n = match read(ctx.db(), args[1], now)? {
        None => 0,
        Some(z) => match (z.score_start(&r, false), z.score_start(&r, true)) {
            (Some((a, _)), Some((b, _))) => b + 1 - a,
            (Some((a, _)), None) => z.len() - a,
            _ => 0,
        },
    };
    ctx.out.int(n as i64);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let r = parse_lex_range(args[2], args[3])?;
    let now = ctx.now;
    let n = match read(ctx.db(), args[1], now)? {
        None => 0,
        Some(z) if z.is_listpack() => match z.lex_start(&r, false) {
            // A listpack counts forward from the first match while under max.
            Some((_, p)) => {
                let mut n = 0;
                let mut q = Some(p);
                while let Some(x) = q {
                    if !r.lte_max(z.at(x).0) {
                        break;
                    }
                    n += 1;
                    q = z.next_pos(x);
                }
                n
            }
            None => 0,
        },
        Some(z) => match (z.lex_start(&r, false), z.lex_start(&r, true)) {
            (Some((a, _)), Some((b, _))) => (b + 1).saturating_sub(a),
            (Some((a, _)), None) => z.len() - a,
            _ => 0,
        },
    };
    ctx.out.int(n as i64);
    Ok(())
}

// ---- ZREMRANGEBY* ----------------------------------------------------------------------------

fn zremrangebyrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let spec = Spec::Rank(util::int(args[2])?, util::int(args[3])?);
    zremrange_generic(ctx, args, spec)
}

fn zremrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let spec = Spec::Score(parse_score_range(args[2], args[3])?);
    zremrange_generic(ctx, args, spec)
}

fn zremrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let spec = Spec::Lex(parse_lex_range(args[2], args[3])?);
    zremrange_generic(ctx, args, spec)
}

fn zremrange_generic(ctx: &mut Ctx, args: &[&[u8]], spec: Spec) -> CmdResult {
    let now = ctx.now;
    let key = args[1];
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let Some(z) = write(db, key, now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    // The doomed elements are consecutive: find the first one's rank and count them.
    let (start, n) = match &spec {
        Spec::Rank(..) => {
            let picked = select(z, &spec, false, 0, -1);
            match picked.first() {
                Some(&p) => (z.rank_at(p), picked.len()),
                None => (0, 0),
            }
        }
        Spec::Score(r) => count_from(z, z.score_start(r, false), |_, s| r.lte_max(s)),
        Spec::Lex(r) => count_from(z, z.lex_start(r, false), |m, _| r.lte_max(m)),
    };
    let deleted = if n > 0 { z.remove_rank_range(start, start + n - 1) } else { 0 };
    if z.is_empty() {
        db.remove(key);
    }
    if deleted > 0 {
        ctx.modified(key);
    }
    ctx.out.int(deleted as i64);
    Ok(())
}

/// (rank of `start`, how many elements from it on satisfy `ok`).
fn count_from(z: &ZSet, start: Option<(usize, Pos)>, ok: impl Fn(&[u8], f64) -> bool) -> (usize, usize) {
    let Some((rank, p)) = start else { return (0, 0) };
    let mut n = 0;
    let mut q = Some(p);
    while let Some(x) = q {
        let (m, s) = z.at(x);
        if !ok(m, s) {
            break;
        }
        n += 1;
        q = z.next_pos(x);
    }
    (rank, n)
}

// ---- pops ------------------------------------------------------------------------------------

/// `genericZpopCommand`. `count` -1 is a plain single pop. `emitkey` prefixes the key (BZPOP*,
/// Z*MPOP), `nested` makes pairs arrays, `nil_when_empty` answers a null array instead of `*0`.
fn zpop_generic(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    max: bool,
    emitkey: bool,
    count: i64,
    nested: bool,
    nil_when_empty: bool,
) -> CmdResult {
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let out = &mut *ctx.out;
    for &key in keys {
        let Some(z) = write(db, key, now)? else { continue };
        if count == 0 {
            out.array(0);
            return Ok(());
        }
        let count = if count == -1 { 1 } else { count };
        let n = (count as u64).min(z.len() as u64) as usize;
        match (emitkey, nested) {
            (false, false) => out.array(n * 2),
            (false, true) => out.array(n),
            (true, false) => {
                out.array(n * 2 + 1);
                out.bulk(key);
            }
            (true, true) => {
                out.array(2);
                out.bulk(key);
                out.array(n);
            }
        }
        for _ in 0..n {
            let Some((m, s)) = z.pop(max) else { break };
            if nested {
                out.array(2);
            }
            out.bulk(&m);
            out.double(s);
        }
        if z.is_empty() {
            db.remove(key);
        }
        ctx.modified(key);
        return Ok(());
    }
    if nil_when_empty {
        out.null_array();
    } else {
        out.array(0);
    }
    Ok(())
}

fn zpopmin(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zpop_minmax(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zpop_minmax(ctx, args, true)
}

fn zpop_minmax(ctx: &mut Ctx, args: &[&[u8]], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX.into());
    }
    let count = if args.len() == 3 { positive(args[2])? } else { -1 };
    let nested = ctx.out.resp3 && count != -1;
    zpop_generic(ctx, &args[1..2], max, false, count, nested, false)
}

fn bzpopmin(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let keys = &args[1..args.len() - 1];
    blocking_zpop(ctx, args, keys, false, args[args.len() - 1], -1, false, false)
}

fn bzpopmax(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let keys = &args[1..args.len() - 1];
    blocking_zpop(ctx, args, keys, true, args[args.len() - 1], -1, false, false)
}

/// `blockingGenericZpopCommand`: pop from the first non-empty key or block on all of them.
#[allow(clippy::too_many_arguments)]
fn blocking_zpop(
    ctx: &mut Ctx,
    args: &[&[u8]],
    keys: &[&[u8]],
    max: bool,
    timeout: &[u8],
    count: i64,
    nested: bool,
    nil_when_empty: bool,
) -> CmdResult {
    let deadline = util::timeout(timeout)?;
    let now = ctx.now;
    for k in keys {
        if write(ctx.db(), k, now)?.is_some() {
            return zpop_generic(ctx, &[k], max, true, count, nested, nil_when_empty);
        }
    }
    if !ctx.can_block() {
        ctx.out.null_array();
        return Ok(());
    }
    block(ctx, args, keys, deadline);
    Ok(())
}

fn zmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zmpop_generic(ctx, args, 1, false)
}

fn bzmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zmpop_generic(ctx, args, 2, true)
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]; BZMPOP has the timeout first.
fn zmpop_generic(ctx: &mut Ctx, args: &[&[u8]], numkeys_idx: usize, blocking: bool) -> CmdResult {
    let numkeys = ranged(args[numkeys_idx], 1, i64::MAX, errors::NUMKEYS_NOT_POSITIVE)? as u64;
    if numkeys >= (args.len() - numkeys_idx - 1) as u64 {
        return Err(errors::SYNTAX.into());
    }
    let where_idx = numkeys_idx + numkeys as usize + 1;
    let max = if util::is(args[where_idx], "min") {
        false
    } else if util::is(args[where_idx], "max") {
        true
    } else {
        return Err(errors::SYNTAX.into());
    };
    let mut count = -1;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count == -1 && util::is(args[j], "count") && more > 0 {
            j += 1;
            count = ranged(args[j], 1, i64::MAX, errors::COUNT_NOT_POSITIVE)?;
        } else {
            return Err(errors::SYNTAX.into());
        }
        j += 1;
    }
    if count == -1 {
        count = 1;
    }
    let keys = &args[numkeys_idx + 1..where_idx];
    if blocking {
        blocking_zpop(ctx, args, keys, max, args[1], count, true, true)
    } else {
        zpop_generic(ctx, keys, max, true, count, true, true)
    }
}

// ---- ZRANDMEMBER -----------------------------------------------------------------------------

fn zrandmember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    if args.len() >= 3 {
        let l = match parse_i64(args[2]) {
            None => return Err(errors::NOT_INTEGER.into()),
            Some(i64::MIN) => return Err(errors::RANDOM_COUNT_RANGE.into()),
            Some(l) => l,
        };
        if args.len() > 4 || (args.len() == 4 && !util::is(args[3], "withscores")) {
            return Err(errors::SYNTAX.into());
        }
        let withscores = args.len() == 4;
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return Err(errors::VALUE_OUT_OF_RANGE.into());
        }
        return zrandmember_count(ctx, args[1], l, withscores);
    }
    match read(ctx.db(), args[1], now)? {
        None => ctx.out.null(),
        Some(z) => match z.random() {
            Some((m, _)) => {
                let m = m.to_vec();
                ctx.out.bulk(&m);
            }
            None => ctx.out.null(),
        },
    }
    Ok(())
}

fn zrandmember_count(ctx: &mut Ctx, key: &[u8], l: i64, withscores: bool) -> CmdResult {
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let out = &mut *ctx.out;
    let Some(z) = read(db, key, now)? else {
        out.array(0);
        return Ok(());
    };
    let size = z.len();
    let count = l.unsigned_abs() as usize;
    if count == 0 {
        out.array(0);
        return Ok(());
    }
    // Repeats allowed (negative count), or a single pick.
    if l < 0 || count == 1 {
        pairs_header(out, count, withscores);
        for _ in 0..count {
            if let Some((m, s)) = z.random() {
                emit(out, m, s, withscores);
            }
        }
        return Ok(());
    }
    pairs_header(out, count.min(size), withscores);
    if count >= size {
        // The whole set, walked from the top as Redis's set-op iterator does.
        let mut p = z.last_pos();
        while let Some(x) = p {
            let (m, s) = z.at(x);
            emit(out, m, s, withscores);
            p = z.prev_pos(x);
        }
        return Ok(());
    }
    // Distinct random ranks (Floyd's sampling), in order like a listpack's unique sampling.
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut chosen = std::collections::BTreeSet::new();
    for j in size - count..size {
        let t = rng.gen_range(0..=j);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    let mut ranks: Vec<usize> = chosen.into_iter().collect();
    if !z.is_listpack() {
        // A hash table hands them out in no particular order.
        for i in (1..ranks.len()).rev() {
            ranks.swap(i, rng.gen_range(0..=i));
        }
    }
    for r in ranks {
        if let Some(p) = z.pos_at(r) {
            let (m, s) = z.at(p);
            emit(out, m, s, withscores);
        }
    }
    Ok(())
}

// ---- ZSCAN -----------------------------------------------------------------------------------

fn zscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut cursor = parse_cursor(args[2]).ok_or(CmdError::from(errors::INVALID_CURSOR))?;
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let out = &mut *ctx.out;
    let Some(z) = read(db, args[1], now)? else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let left = args.len() - i;
        if util::is(args[i], "count") && left >= 2 {
            count = util::int(args[i + 1])?;
            if count < 1 {
                return Err(errors::SYNTAX.into());
            }
            i += 2;
        } else if util::is(args[i], "match") && left >= 2 {
            pattern = if args[i + 1] == b"*" { None } else { Some(args[i + 1]) };
            i += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    let mut items: Vec<(Vec<u8>, String)> = Vec::new();
    if z.is_listpack() {
        for (m, s) in z.iter() {
            items.push((m.to_vec(), listpack_score(s)));
        }
        cursor = 0;
    } else {
        let mut budget = count.saturating_mul(10);
        loop {
            cursor = z.scan_step(cursor, |m, s| items.push((m.to_vec(), fmt_double(s))));
            if cursor == 0 || budget == 0 || (items.len() * 2) as i64 >= count {
                break;
            }
            budget -= 1;
        }
    }
    if let Some(p) = pattern {
        items.retain(|(m, _)| util::glob_match(p, m, false));
    }
    out.array(2);
    let mut b = itoa::Buffer::new();
    out.bulk(b.format(cursor).as_bytes());
    out.array(items.len() * 2);
    for (m, s) in &items {
        out.bulk(m);
        out.bulk(s.as_bytes());
    }
    Ok(())
}

// ---- ZUNION / ZINTER / ZDIFF -----------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Min,
    Max,
}

/// `zunionInterAggregate`: a SUM that gives NaN (inf + -inf) becomes 0.
fn aggregate(target: &mut f64, val: f64, agg: Agg) {
    match agg {
        Agg::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Agg::Min => {
            if val < *target {
                *target = val;
            }
        }
        Agg::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// An input of a set operation: sorted sets, or plain sets whose members score 1.
enum Src<'a> {
    Missing,
    Z(&'a ZSet),
    S(&'a Set),
}

impl Src<'_> {
    fn of(v: Option<&Value>) -> Src<'_> {
        match v {
            Some(Value::ZSet(z)) => Src::Z(z),
            Some(Value::Set(s)) => Src::S(s),
            _ => Src::Missing,
        }
    }

    /// Every element; a sorted set from the highest score down, as Redis's `zuiNext` walks it.
    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Src::Missing => {}
            Src::Z(z) => {
                let mut p = z.last_pos();
                while let Some(x) = p {
                    let (m, s) = z.at(x);
                    f(m, s);
                    p = z.prev_pos(x);
                }
            }
            Src::S(Set::Intset(v)) => {
                let mut b = itoa::Buffer::new();
                for &i in v.iter() {
                    f(b.format(i).as_bytes(), 1.0);
                }
            }
            Src::S(Set::Table(t)) => {
                for m in t.iter() {
                    f(m, 1.0);
                }
            }
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::Missing => None,
            Src::Z(z) => z.score(m),
            Src::S(Set::Intset(v)) => parse_i64(m).and_then(|i| v.binary_search(&i).ok()).map(|_| 1.0),
            Src::S(Set::Table(t)) => t.contains(m).then_some(1.0),
        }
    }
}

fn zunion(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zsetop(ctx, args, None, 1, SetOp::Union, false)
}
fn zinter(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zsetop(ctx, args, None, 1, SetOp::Inter, false)
}
fn zdiff(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zsetop(ctx, args, None, 1, SetOp::Diff, false)
}
fn zunionstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zsetop(ctx, args, Some(args[1]), 2, SetOp::Union, false)
}
fn zinterstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zsetop(ctx, args, Some(args[1]), 2, SetOp::Inter, false)
}
fn zdiffstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zsetop(ctx, args, Some(args[1]), 2, SetOp::Diff, false)
}
fn zintercard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zsetop(ctx, args, None, 1, SetOp::Inter, true)
}

/// `zunionInterDiffGenericCommand`.
fn zsetop(
    ctx: &mut Ctx,
    args: &[&[u8]],
    dst: Option<&[u8]>,
    numkeys_idx: usize,
    op: SetOp,
    card_only: bool,
) -> CmdResult {
    let setnum = util::int(args[numkeys_idx])?;
    if setnum < 1 {
        return Err(errors::zset_no_keys(ctx.cmd.name).into());
    }
    if setnum > (args.len() - numkeys_idx - 1) as i64 {
        return Err(errors::SYNTAX.into());
    }
    let setnum = setnum as usize;
    let keys = &args[numkeys_idx + 1..numkeys_idx + 1 + setnum];
    let now = ctx.now;
    let lim = limits(ctx);
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let mut lens = Vec::with_capacity(setnum);
    for k in keys {
        lens.push(match db.get(k, now).map(|e| &e.value) {
            None => 0,
            Some(Value::ZSet(z)) => z.len(),
            Some(Value::Set(s)) => s.len(),
            Some(_) => return Err(errors::WRONGTYPE.into()),
        });
    }
    let mut weights = vec![1.0f64; setnum];
    let mut agg = Agg::Sum;
    let mut withscores = false;
    let mut limit: i64 = 0;
    let mut j = numkeys_idx + 1 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = args[j];
        if op != SetOp::Diff && !card_only && remaining > setnum && util::is(a, "weights") {
            j += 1;
            for w in weights.iter_mut() {
                *w = parse_double(args[j]).ok_or(CmdError::from(errors::ZSET_WEIGHT_FLOAT))?;
                j += 1;
            }
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && util::is(a, "aggregate") {
            let v = args[j + 1];
            agg = if util::is(v, "sum") {
                Agg::Sum
            } else if util::is(v, "min") {
                Agg::Min
            } else if util::is(v, "max") {
                Agg::Max
            } else {
                return Err(errors::SYNTAX.into());
            };
            j += 2;
        } else if dst.is_none() && !card_only && util::is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && util::is(a, "limit") {
            limit = ranged(args[j + 1], 0, i64::MAX, errors::LIMIT_NEGATIVE)?;
            j += 2;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    // Smallest first (Redis sorts by cardinality, which also fixes the order scores are summed).
    let mut order: Vec<usize> = (0..setnum).collect();
    if op != SetOp::Diff {
        order.sort_by_key(|&i| lens[i]);
    }
    let mut result = ZSet::new(false);
    let mut card = 0usize;
    match op {
        SetOp::Inter => {
            let i0 = order[0];
            if lens[i0] > 0 {
                let mut cand: Vec<(Box<[u8]>, f64)> = Vec::with_capacity(lens[i0]);
                let w0 = weights[i0];
                Src::of(db.peek(keys[i0], now).map(|e| &e.value)).for_each(|m, s| {
                    let mut score = w0 * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    cand.push((m.into(), score));
                });
                for &ij in &order[1..] {
                    let w = weights[ij];
                    let src = Src::of(db.peek(keys[ij], now).map(|e| &e.value));
                    cand.retain_mut(|(m, score)| match src.score(m) {
                        Some(v) => {
                            aggregate(score, v * w, agg);
                            true
                        }
                        None => false,
                    });
                    if cand.is_empty() {
                        break;
                    }
                }
                card = cand.len();
                if limit > 0 {
                    card = card.min(limit as usize);
                }
                if !card_only {
                    for (m, s) in cand {
                        result.add(s, &m, AddFlags::default(), lim);
                    }
                }
            }
        }
        SetOp::Union => {
            let mut acc: hashbrown::HashMap<Box<[u8]>, f64> = hashbrown::HashMap::new();
            for &i in &order {
                if lens[i] == 0 {
                    continue;
                }
                let w = weights[i];
                Src::of(db.peek(keys[i], now).map(|e| &e.value)).for_each(|m, s| {
                    let mut score = w * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(m.into(), score);
                        }
                    }
                });
            }
            for (m, s) in acc {
                result.add(s, &m, AddFlags::default(), lim);
            }
        }
        SetOp::Diff => {
            if lens[0] > 0 {
                let mut cand: Vec<(Box<[u8]>, f64)> = Vec::with_capacity(lens[0]);
                Src::of(db.peek(keys[0], now).map(|e| &e.value)).for_each(|m, s| cand.push((m.into(), s)));
                for k in &keys[1..] {
                    let src = Src::of(db.peek(k, now).map(|e| &e.value));
                    cand.retain(|(m, _)| src.score(m).is_none());
                    if cand.is_empty() {
                        break;
                    }
                }
                for (m, s) in cand {
                    result.add(s, &m, AddFlags::default(), lim);
                }
            }
        }
    }
    if let Some(dst) = dst {
        result.convert_to_listpack_if_fits(lim);
        store_result(ctx, dst, result);
    } else if card_only {
        ctx.out.int(card as i64);
    } else {
        let out = &mut *ctx.out;
        pairs_header(out, result.len(), withscores);
        for (m, s) in result.iter() {
            emit(out, m, s, withscores);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_like_glibc() {
        assert_eq!(parse_double(b"1.5"), Some(1.5));
        assert_eq!(parse_double(b"0x10"), Some(16.0));
        assert_eq!(parse_double(b"0x1p-2"), Some(0.25));
        assert_eq!(parse_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_double(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_double(b"1e400"), None);
        assert_eq!(parse_double(b"1e-400"), None);
        assert_eq!(parse_double(b"0e-400"), Some(0.0));
        assert_eq!(parse_double(b" 1"), None);
        assert_eq!(parse_double(b"1 "), None);
        assert_eq!(parse_double(b""), None);
        assert_eq!(parse_double(b"nan"), None);
        assert_eq!(parse_double(b"1e"), None);
        assert_eq!(parse_double(b".5"), Some(0.5));
        assert_eq!(parse_double(b"5."), Some(5.0));
        assert_eq!(parse_double(b"."), None);
        assert!(parse_double(b"-0").is_some_and(|v| v == 0.0 && v.is_sign_negative()));
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b" 2"), Some((2.0, false)));
        assert_eq!(parse_score_bound(b"2 "), None);
        assert_eq!(parse_score_bound(b"(1e400"), Some((f64::INFINITY, true)));
        assert_eq!(parse_score_bound(b"1\0junk"), Some((1.0, false)));
    }

    #[test]
    fn cursors_like_strtoul() {
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
    }

    #[test]
    fn listpack_scores() {
        assert_eq!(listpack_score(1.2345678901234568e17), "123456789012345680");
        assert_eq!(listpack_score(1e20), "1e+20");
        assert_eq!(listpack_score(0.1), "0.10000000000000001");
        assert_eq!(listpack_score(-0.0), "0");
    }
}
