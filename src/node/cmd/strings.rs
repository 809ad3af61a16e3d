//! String commands: GET/SET and their variants, counters, ranges, LCS and the bit commands.
//! Parsing and error order follow Redis 7.0's t_string.c and bitops.c, since a client sees
//! which error wins when several arguments are wrong.

use super::util::{int, is};
use super::{CmdError, CmdResult, Ctx, Handler};
use crate::errors;
use crate::node::db::StrEnc;
use crate::node::types::Value;
use crate::resp::request::parse_i64;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("get", get),
    ("set", set),
    ("setnx", setnx),
    ("setex", setex),
    ("psetex", psetex),
    ("getset", getset),
    ("getdel", getdel),
    ("getex", getex),
    ("mget", mget),
    ("mset", mset),
    ("msetnx", msetnx),
    ("incr", incr),
    ("decr", decr),
    ("incrby", incrby),
    ("decrby", decrby),
    ("incrbyfloat", incrbyfloat),
    ("append", append),
    ("strlen", strlen),
    ("getrange", getrange),
    ("substr", getrange),
    ("setrange", setrange),
    ("lcs", lcs),
    ("setbit", setbit),
    ("getbit", getbit),
    ("bitcount", bitcount),
    ("bitpos", bitpos),
    ("bitop", bitop),
];

/// `ERR invalid expire time in '<cmd>' command`, named as the command table spells it.
pub fn invalid_expire(cmd: &str) -> CmdError {
    errors::INVALID_EXPIRE.replace("{}", cmd).into()
}

fn str_too_long() -> CmdError {
    errors::STRING_TOO_LONG.into()
}

/// GET: a plain read lookup. Borrows the db and the reply writer separately so the value is
/// written without a copy.
fn get(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    match ctx.srv.dbs[ctx.client.db].get(args[1], now) {
        None => ctx.out.null(),
        Some(e) => match &e.value {
            Value::Str(s) => ctx.out.bulk(s),
            _ => return Err(errors::WRONGTYPE.into()),
        },
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Ex,
    Px,
    ExAt,
    PxAt,
}

#[derive(Default)]
struct SetOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(Unit, &'a [u8])>,
}

impl SetOpts<'_> {
    fn has(&self, u: Unit) -> bool {
        matches!(self.expire, Some((x, _)) if x == u)
    }
}

/// `parseExtendedStringArgumentsOrReply`: the same option may repeat (the last value wins) but
/// conflicting ones are a syntax error, as is an option the command does not take.
fn parse_set_opts<'a>(args: &[&'a [u8]], for_set: bool) -> Result<SetOpts<'a>, CmdError> {
    let mut o = SetOpts::default();
    let mut j = 0;
    while j < args.len() {
        let opt = args[j];
        let next = args.get(j + 1).copied();
        let any_time = o.expire.is_some();
        if for_set && is(opt, "nx") && !o.xx {
            o.nx = true;
        } else if for_set && is(opt, "xx") && !o.nx {
            o.xx = true;
        } else if for_set && is(opt, "get") {
            o.get = true;
        } else if for_set && is(opt, "keepttl") && !o.persist && !any_time {
            o.keepttl = true;
        } else if !for_set && is(opt, "persist") && !any_time && !o.keepttl {
            o.persist = true;
        } else if let Some(unit) = [("ex", Unit::Ex), ("px", Unit::Px), ("exat", Unit::ExAt), ("pxat", Unit::PxAt)]
            .iter()
            .find(|(w, _)| is(opt, w))
            .map(|&(_, u)| u)
            .filter(|&u| !o.keepttl && !o.persist && next.is_some() && (!any_time || o.has(u)))
        {
            o.expire = Some((unit, next.unwrap_or_default()));
            j += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        j += 1;
    }
    Ok(o)
}

/// `getExpireMillisecondsOrReply`: a positive time, converted to absolute unix ms.
fn expire_at(cmd: &str, unit: Unit, arg: &[u8], now: i64) -> Result<i64, CmdError> {
    let mut ms = int(arg)?;
    let secs = matches!(unit, Unit::Ex | Unit::ExAt);
    if ms <= 0 || (secs && ms > i64::MAX / 1000) {
        return Err(invalid_expire(cmd));
    }
    if secs {
        ms *= 1000;
    }
    if matches!(unit, Unit::Ex | Unit::Px) {
        ms = ms.wrapping_add(now);
    }
    if ms <= 0 {
        return Err(invalid_expire(cmd));
    }
    Ok(ms)
}

/// What `setGenericCommand` answers with when it sets (`ok`) or aborts on NX/XX (`abort`).
#[derive(Clone, Copy)]
enum SetReply {
    Ok,
    Int,
}

#[allow(clippy::too_many_arguments)]
fn set_generic(ctx: &mut Ctx, opts: &SetOpts, key: &[u8], val: &[u8], when: Option<i64>, reply: SetReply) -> CmdResult {
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let found = if opts.get {
        match db.get(key, now) {
            None => {
                ctx.out.null();
                false
            }
            Some(e) => match &e.value {
                Value::Str(s) => {
                    ctx.out.bulk(s);
                    true
                }
                _ => return Err(errors::WRONGTYPE.into()),
            },
        }
    } else {
        db.contains(key, now)
    };
    if (opts.nx && found) || (opts.xx && !found) {
        if !opts.get {
            match reply {
                SetReply::Ok => ctx.out.null(),
                SetReply::Int => ctx.out.int(0),
            }
        }
        return Ok(());
    }
    let db = &mut ctx.srv.dbs[ctx.client.db];
    if opts.keepttl {
        db.set_keep_ttl(key, Value::Str(val.to_vec()), now);
    } else {
        db.set(key, Value::Str(val.to_vec()), now);
    }
    if let Some(at) = when {
        db.set_expire(key, at);
    }
    ctx.modified(key);
    if !opts.get {
        match reply {
            SetReply::Ok => ctx.out.ok(),
            SetReply::Int => ctx.out.int(1),
        }
    }
    Ok(())
}

fn set(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() == 3 {
        // The benchmarked path: no options.
        let now = ctx.now;
        ctx.srv.dbs[ctx.client.db].set(args[1], Value::Str(args[2].to_vec()), now);
        ctx.modified(args[1]);
        ctx.out.ok();
        return Ok(());
    }
    let opts = parse_set_opts(&args[3..], true)?;
    let when = match opts.expire {
        Some((unit, arg)) => Some(expire_at("set", unit, arg, ctx.now)?),
        None => None,
    };
    set_generic(ctx, &opts, args[1], args[2], when, SetReply::Ok)
}

fn setnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let opts = SetOpts { nx: true, ..Default::default() };
    set_generic(ctx, &opts, args[1], args[2], None, SetReply::Int)
}

fn setex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let when = expire_at("setex", Unit::Ex, args[2], ctx.now)?;
    set_generic(ctx, &SetOpts::default(), args[1], args[3], Some(when), SetReply::Ok)
}

fn psetex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let when = expire_at("psetex", Unit::Px, args[2], ctx.now)?;
    set_generic(ctx, &SetOpts::default(), args[1], args[3], Some(when), SetReply::Ok)
}

fn getset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    match db.get(args[1], now) {
        None => {
            db.set(args[1], Value::Str(args[2].to_vec()), now);
            ctx.out.null();
        }
        Some(e) => match &mut e.value {
            Value::Str(s) => {
                let old = std::mem::replace(s, args[2].to_vec());
                db.persist(args[1]);
                ctx.out.bulk(&old);
            }
            _ => return Err(errors::WRONGTYPE.into()),
        },
    }
    ctx.modified(args[1]);
    Ok(())
}

/// Read lookup of a string key: `Ok(false)` when missing, WRONGTYPE for another type.
fn is_string(ctx: &mut Ctx, key: &[u8]) -> Result<bool, CmdError> {
    let now = ctx.now;
    match ctx.srv.dbs[ctx.client.db].get(key, now) {
        None => Ok(false),
        Some(e) if matches!(e.value, Value::Str(_)) => Ok(true),
        Some(_) => Err(errors::WRONGTYPE.into()),
    }
}

fn getdel(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if !is_string(ctx, args[1])? {
        ctx.out.null();
        return Ok(());
    }
    if let Some(e) = ctx.db().remove(args[1]) {
        if let Value::Str(s) = &e.value {
            ctx.out.bulk(s);
        }
    }
    ctx.modified(args[1]);
    Ok(())
}

fn getex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let opts = parse_set_opts(&args[2..], false)?;
    if !is_string(ctx, args[1])? {
        ctx.out.null();
        return Ok(());
    }
    let now = ctx.now;
    let when = match opts.expire {
        Some((unit, arg)) => Some(expire_at("getex", unit, arg, now)?),
        None => None,
    };
    let key = args[1];
    let db = &mut ctx.srv.dbs[ctx.client.db];
    if let Some(Value::Str(s)) = db.peek(key, now).map(|e| &e.value) {
        ctx.out.bulk(s);
    }
    let absolute = matches!(opts.expire, Some((Unit::ExAt | Unit::PxAt, _)));
    match when {
        Some(at) if absolute && at <= now => {
            db.remove(key);
            ctx.modified(key);
        }
        Some(at) => {
            db.set_expire(key, at);
            ctx.modified(key);
        }
        None if opts.persist && db.persist(key) => ctx.modified(key),
        None => {}
    }
    Ok(())
}

fn mget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    ctx.out.array(args.len() - 1);
    for key in &args[1..] {
        match db.get(key, now).map(|e| &e.value) {
            Some(Value::Str(s)) => ctx.out.bulk(s),
            _ => ctx.out.null(),
        }
    }
    Ok(())
}

fn mset_pairs(ctx: &mut Ctx, args: &[&[u8]]) {
    let now = ctx.now;
    for pair in args[1..].chunks(2) {
        ctx.srv.dbs[ctx.client.db].set(pair[0], Value::Str(pair[1].to_vec()), now);
        ctx.modified(pair[0]);
    }
}

fn mset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(errors::wrong_arity("mset").into());
    }
    mset_pairs(ctx, args);
    ctx.out.ok();
    Ok(())
}

fn msetnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(errors::wrong_arity("msetnx").into());
    }
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    if args[1..].chunks(2).any(|p| db.contains(p[0], now)) {
        ctx.out.int(0);
        return Ok(());
    }
    mset_pairs(ctx, args);
    ctx.out.int(1);
    Ok(())
}

/// INCR and friends: the value must be a strict 64-bit integer; the TTL is kept.
fn incr_by(ctx: &mut Ctx, key: &[u8], by: i64) -> CmdResult {
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let mut buf = itoa::Buffer::new();
    let n = match db.get_mut(key, now) {
        Some(e) => match &mut e.value {
            Value::Str(s) => {
                let old = parse_i64(s).ok_or(CmdError::from(errors::NOT_INTEGER))?;
                let n = old.checked_add(by).ok_or(CmdError::from(errors::OVERFLOW))?;
                s.clear();
                s.extend_from_slice(buf.format(n).as_bytes());
                e.str_enc = StrEnc::FromContent;
                n
            }
            _ => return Err(errors::WRONGTYPE.into()),
        },
        None => {
            db.set(key, Value::Str(buf.format(by).as_bytes().to_vec()), now);
            by
        }
    };
    ctx.modified(key);
    ctx.out.int(n);
    Ok(())
}

fn incr(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    incr_by(ctx, args[1], 1)
}

fn decr(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    incr_by(ctx, args[1], -1)
}

fn incrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let by = int(args[2])?;
    incr_by(ctx, args[1], by)
}

fn decrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let by = int(args[2])?;
    if by == i64::MIN {
        return Err(errors::DECREMENT_OVERFLOW.into());
    }
    incr_by(ctx, args[1], -by)
}

fn incrbyfloat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let key = args[1];
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let old = match db.get_mut(key, now) {
        None => None,
        Some(e) => match &e.value {
            Value::Str(s) => Some(super::util::ldouble::parse(s).ok_or(CmdError::from(errors::NOT_FLOAT))?),
            _ => return Err(errors::WRONGTYPE.into()),
        },
    };
    let by = super::util::ldouble::parse(args[2]).ok_or(CmdError::from(errors::NOT_FLOAT))?;
    let text = super::util::ldouble::incr(old.unwrap_or(super::util::ldouble::Parsed::ZERO), by)
        .ok_or(CmdError::from(errors::NAN_OR_INF))?;
    let exists = old.is_some();
    if exists {
        db.set_keep_ttl(key, Value::Str(text.as_bytes().to_vec()), now);
    } else {
        db.set(key, Value::Str(text.as_bytes().to_vec()), now);
    }
    db.set_str_enc(key, StrEnc::Embstr);
    ctx.modified(key);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

fn append(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let max = ctx.srv.config.proto_max_bulk_len;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let len = match db.get_mut(args[1], now) {
        None => {
            db.set(args[1], Value::Str(args[2].to_vec()), now);
            args[2].len()
        }
        Some(e) => match &mut e.value {
            Value::Str(s) => {
                if (s.len() + args[2].len()) as u64 > max {
                    return Err(str_too_long());
                }
                s.extend_from_slice(args[2]);
                e.str_enc = StrEnc::Raw;
                s.len()
            }
            _ => return Err(errors::WRONGTYPE.into()),
        },
    };
    ctx.modified(args[1]);
    ctx.out.int(len as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let n = match ctx.srv.dbs[ctx.client.db].get(args[1], now) {
        None => 0,
        Some(e) => match &e.value {
            Value::Str(s) => s.len(),
            _ => return Err(errors::WRONGTYPE.into()),
        },
    };
    ctx.out.int(n as i64);
    Ok(())
}

fn getrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut start = int(args[2])?;
    let mut end = int(args[3])?;
    let now = ctx.now;
    let s = match ctx.srv.dbs[ctx.client.db].get(args[1], now) {
        None => {
            ctx.out.bulk(b"");
            return Ok(());
        }
        Some(e) => match &e.value {
            Value::Str(s) => s,
            _ => return Err(errors::WRONGTYPE.into()),
        },
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return Ok(());
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&s[start as usize..=end as usize]);
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let offset = int(args[2])?;
    if offset < 0 {
        return Err(errors::OFFSET_RANGE.into());
    }
    let value = args[3];
    let now = ctx.now;
    let key = args[1];
    let existing = match ctx.srv.dbs[ctx.client.db].get_mut(key, now) {
        None => None,
        Some(e) => match &e.value {
            Value::Str(s) => Some(s.len()),
            _ => return Err(errors::WRONGTYPE.into()),
        },
    };
    if value.is_empty() {
        ctx.out.int(existing.unwrap_or(0) as i64);
        return Ok(());
    }
    if offset as u64 + value.len() as u64 > ctx.srv.config.proto_max_bulk_len {
        return Err(str_too_long());
    }
    let offset = offset as usize;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let len = match db.get_mut(key, now).map(|e| &mut e.value) {
        Some(Value::Str(s)) => {
            write_at(s, offset, value);
            s.len()
        }
        _ => {
            let mut s = Vec::new();
            write_at(&mut s, offset, value);
            let n = s.len();
            db.set(key, Value::Str(s), now);
            n
        }
    };
    db.set_str_enc(key, StrEnc::Raw);
    ctx.modified(key);
    ctx.out.int(len as i64);
    Ok(())
}

fn write_at(s: &mut Vec<u8>, offset: usize, value: &[u8]) {
    let end = offset + value.len();
    if s.len() < end {
        s.resize(end, 0);
    }
    s[offset..end].copy_from_slice(value);
}

/// One matching range of LCS IDX: positions in a, in b, and the length.
struct Match {
    a: (u32, u32),
    b: (u32, u32),
    len: u32,
}

fn lcs(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let mut fetch = |k: &[u8]| -> Result<Vec<u8>, CmdError> {
        match db.get(k, now).map(|e| &e.value) {
            None => Ok(Vec::new()),
            Some(Value::Str(s)) => Ok(s.clone()),
            Some(_) => Err(errors::LCS_WRONGTYPE.into()),
        }
    };
    // Both keys are looked up before either is checked.
    let (a, b) = (fetch(args[1]), fetch(args[2]));
    let (a, b) = (a?, b?);
    let (mut getidx, mut getlen, mut withmatchlen, mut minmatchlen) = (false, false, false, 0i64);
    let mut j = 3;
    while j < args.len() {
        let opt = args[j];
        if is(opt, "idx") {
            getidx = true;
        } else if is(opt, "len") {
            getlen = true;
        } else if is(opt, "withmatchlen") {
            withmatchlen = true;
        } else if is(opt, "minmatchlen") && j + 1 < args.len() {
            minmatchlen = int(args[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        j += 1;
    }
    if getidx && getlen {
        return Err(errors::LCS_IDX_AND_LEN.into());
    }
    if a.len() as u64 >= u32::MAX as u64 - 1 || b.len() as u64 >= u32::MAX as u64 - 1 {
        return Err(errors::LCS_TOO_LONG.into());
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells * 4 > ctx.srv.config.proto_max_bulk_len {
        return Err(errors::LCS_TOO_BIG.into());
    }
    let w = blen + 1;
    let mut t = vec![0u32; cells as usize];
    for i in 1..=alen {
        for jj in 1..=blen {
            t[i * w + jj] = if a[i - 1] == b[jj - 1] {
                t[(i - 1) * w + jj - 1] + 1
            } else {
                t[(i - 1) * w + jj].max(t[i * w + jj - 1])
            };
        }
    }
    let total = t[alen * w + blen];
    let mut idx = total as usize;
    let mut result = vec![0u8; idx];
    let mut matches: Vec<Match> = Vec::new();
    let computelcs = getidx || !getlen;
    // Walk back from the end like Redis does, so ranges come out in the same order.
    let (mut i, mut jj) = (alen, blen);
    let unset = alen as u32;
    let (mut as_, mut ae, mut bs, mut be) = (unset, 0u32, 0u32, 0u32);
    while computelcs && i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            if as_ == unset {
                as_ = (i - 1) as u32;
                ae = as_;
                bs = (jj - 1) as u32;
                be = bs;
            } else if as_ == i as u32 && bs == jj as u32 {
                as_ -= 1;
                bs -= 1;
            } else {
                emit = true;
            }
            if as_ == 0 || bs == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            if t[(i - 1) * w + jj] > t[i * w + jj - 1] {
                i -= 1;
            } else {
                jj -= 1;
            }
            if as_ != unset {
                emit = true;
            }
        }
        if emit {
            let len = ae.wrapping_sub(as_).wrapping_add(1);
            if minmatchlen == 0 || len as i64 >= minmatchlen {
                matches.push(Match { a: (as_, ae), b: (bs, be), len });
            }
            as_ = unset;
        }
    }
    if getidx {
        ctx.out.map(2);
        ctx.out.bulk(b"matches");
        ctx.out.array(matches.len());
        for m in &matches {
            ctx.out.array(2 + withmatchlen as usize);
            ctx.out.array(2);
            ctx.out.int(m.a.0 as i64);
            ctx.out.int(m.a.1 as i64);
            ctx.out.array(2);
            ctx.out.int(m.b.0 as i64);
            ctx.out.int(m.b.1 as i64);
            if withmatchlen {
                ctx.out.int(m.len as i64);
            }
        }
        ctx.out.bulk(b"len");
        ctx.out.int(total as i64);
    } else if getlen {
        ctx.out.int(total as i64);
    } else {
        ctx.out.bulk(&result);
    }
    Ok(())
}

/// `getBitOffsetFromArgument`: a bit offset inside proto-max-bulk-len bytes.
fn bit_offset(ctx: &Ctx, arg: &[u8]) -> Result<u64, CmdError> {
    match parse_i64(arg) {
        Some(v) if v >= 0 && ((v >> 3) as u64) < ctx.srv.config.proto_max_bulk_len => Ok(v as u64),
        _ => Err(errors::BIT_OFFSET.into()),
    }
}

fn setbit(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let off = bit_offset(ctx, args[2])?;
    let on = parse_i64(args[3]).ok_or(CmdError::from(errors::BIT_VALUE))?;
    if on & !1 != 0 {
        return Err(errors::BIT_VALUE.into());
    }
    let now = ctx.now;
    let key = args[1];
    let byte = (off >> 3) as usize;
    let shift = 7 - (off & 7) as u32;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let (old, changed) = match db.get_mut(key, now) {
        Some(e) => match &mut e.value {
            Value::Str(s) => {
                let grew = s.len() < byte + 1;
                if grew {
                    s.resize(byte + 1, 0);
                }
                let old = (s[byte] >> shift) & 1;
                s[byte] = (s[byte] & !(1 << shift)) | ((on as u8) << shift);
                e.str_enc = StrEnc::Raw;
                (old, grew || old as i64 != on)
            }
            _ => return Err(errors::WRONGTYPE.into()),
        },
        None => {
            let mut s = vec![0u8; byte + 1];
            s[byte] |= (on as u8) << shift;
            db.set(key, Value::Str(s), now);
            db.set_str_enc(key, StrEnc::Raw);
            (0, true)
        }
    };
    if changed {
        ctx.modified(key);
    }
    ctx.out.int(old as i64);
    Ok(())
}

fn getbit(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let off = bit_offset(ctx, args[2])?;
    let now = ctx.now;
    let bit = match ctx.srv.dbs[ctx.client.db].get(args[1], now) {
        None => 0,
        Some(e) => match &e.value {
            Value::Str(s) => {
                let byte = (off >> 3) as usize;
                s.get(byte).map_or(0, |b| (b >> (7 - (off & 7))) & 1)
            }
            _ => return Err(errors::WRONGTYPE.into()),
        },
    };
    ctx.out.int(bit as i64);
    Ok(())
}

/// Normalises a BYTE or BIT range like bitcount/bitpos: returns the inclusive range in bits,
/// or None when it is empty.
fn bit_range(mut start: i64, mut end: i64, totlen: i64) -> Option<(i64, i64)> {
    if start < 0 {
        start += totlen;
    }
    if end < 0 {
        end += totlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    (start <= end).then_some((start, end))
}

fn unit_is_bit(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "bit") {
        Ok(true)
    } else if is(arg, "byte") {
        Ok(false)
    } else {
        Err(errors::SYNTAX.into())
    }
}

fn count_bits(s: &[u8], from: u64, to: u64) -> i64 {
    let (fb, tb) = ((from / 8) as usize, (to / 8) as usize);
    let mut n: i64 = s[fb..=tb].iter().map(|b| b.count_ones() as i64).sum();
    // Take away the bits before `from` in the first byte and after `to` in the last.
    let lead = (from % 8) as u32;
    if lead > 0 {
        n -= (s[fb] >> (8 - lead)).count_ones() as i64;
    }
    let trail = 7 - (to % 8) as u32;
    if trail > 0 {
        n -= (s[tb] & ((1u8 << trail) - 1)).count_ones() as i64;
    }
    n
}

fn bitcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let s = match ctx.srv.dbs[ctx.client.db].get(args[1], now) {
        None => {
            ctx.out.int(0);
            return Ok(());
        }
        Some(e) => match &e.value {
            Value::Str(s) => s,
            _ => return Err(errors::WRONGTYPE.into()),
        },
    };
    let len = s.len() as i64;
    let range = match args.len() {
        2 => (len > 0).then(|| (0, len * 8 - 1)),
        4 | 5 => {
            let start = int(args[2])?;
            let end = int(args[3])?;
            if start < 0 && end < 0 && start > end {
                ctx.out.int(0);
                return Ok(());
            }
            let isbit = if args.len() == 5 { unit_is_bit(args[4])? } else { false };
            if isbit {
                bit_range(start, end, len * 8)
            } else {
                bit_range(start, end, len).map(|(a, b)| (a * 8, b * 8 + 7))
            }
        }
        _ => return Err(errors::SYNTAX.into()),
    };
    let n = match range {
        Some((a, b)) => count_bits(s, a as u64, b as u64),
        None => 0,
    };
    ctx.out.int(n);
    Ok(())
}

fn bitpos(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let bit = int(args[2])?;
    if bit != 0 && bit != 1 {
        return Err(errors::BIT_ARG.into());
    }
    let now = ctx.now;
    let s = match ctx.srv.dbs[ctx.client.db].get(args[1], now) {
        None => {
            ctx.out.int(if bit == 1 { -1 } else { 0 });
            return Ok(());
        }
        Some(e) => match &e.value {
            Value::Str(s) => s,
            _ => return Err(errors::WRONGTYPE.into()),
        },
    };
    let len = s.len() as i64;
    let mut end_given = false;
    let range = match args.len() {
        3 => (len > 0).then(|| (0, len * 8 - 1)),
        4..=6 => {
            let start = int(args[3])?;
            let isbit = if args.len() == 6 { unit_is_bit(args[5])? } else { false };
            let end = if args.len() >= 5 {
                end_given = true;
                int(args[4])?
            } else {
                len - 1
            };
            if isbit {
                bit_range(start, end, len * 8)
            } else {
                bit_range(start, end, len).map(|(a, b)| (a * 8, b * 8 + 7))
            }
        }
        _ => return Err(errors::SYNTAX.into()),
    };
    let pos = match range {
        None => -1,
        Some((a, b)) => {
            match find_bit(s, a as u64, b as u64, bit as u8).map(|p| p as i64) {
                Some(p) => p,
                None if bit == 1 || end_given => -1,
                // Looking for a clear bit with no explicit end: the string is zero-padded.
                None => b + 1,
            }
        }
    };
    ctx.out.int(pos);
    Ok(())
}

/// First position in the inclusive bit range `from..=to` holding `bit`; whole bytes are skipped
/// at once so a scan over a large string stays cheap.
fn find_bit(s: &[u8], from: u64, to: u64, bit: u8) -> Option<u64> {
    let want = |i: u64| (s[(i / 8) as usize] >> (7 - i % 8)) & 1 == bit;
    let mut i = from;
    while i <= to && !i.is_multiple_of(8) {
        if want(i) {
            return Some(i);
        }
        i += 1;
    }
    let (first, end) = ((i / 8) as usize, ((to + 1) / 8) as usize);
    if first < end {
        let skip = if bit == 1 { 0 } else { 0xff };
        match s[first..end].iter().position(|&b| b != skip) {
            Some(p) => {
                let byte = if bit == 1 { s[first + p] } else { !s[first + p] };
                return Some((first + p) as u64 * 8 + byte.leading_zeros() as u64);
            }
            None => i = end as u64 * 8,
        }
    }
    while i <= to {
        if want(i) {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[derive(Clone, Copy, PartialEq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let op = if is(args[1], "and") {
        BitOp::And
    } else if is(args[1], "or") {
        BitOp::Or
    } else if is(args[1], "xor") {
        BitOp::Xor
    } else if is(args[1], "not") {
        BitOp::Not
    } else {
        return Err(errors::SYNTAX.into());
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(errors::BITOP_NOT_ARITY.into());
    }
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let mut srcs: Vec<Option<Vec<u8>>> = Vec::with_capacity(args.len() - 3);
    for k in &args[3..] {
        match db.get(k, now).map(|e| &e.value) {
            None => srcs.push(None),
            Some(Value::Str(s)) => srcs.push(Some(s.clone())),
            Some(_) => return Err(errors::WRONGTYPE.into()),
        }
    }
    let maxlen = srcs.iter().map(|s| s.as_ref().map_or(0, |v| v.len())).max().unwrap_or(0);
    let byte = |s: &Option<Vec<u8>>, i: usize| s.as_ref().and_then(|v| v.get(i).copied()).unwrap_or(0);
    let key = args[2];
    if maxlen > 0 {
        let mut res = vec![0u8; maxlen];
        for (i, out) in res.iter_mut().enumerate() {
            let mut acc = byte(&srcs[0], i);
            if op == BitOp::Not {
                acc = !acc;
            }
            for s in &srcs[1..] {
                let b = byte(s, i);
                match op {
                    BitOp::And => acc &= b,
                    BitOp::Or => acc |= b,
                    BitOp::Xor => acc ^= b,
                    BitOp::Not => {}
                }
            }
            *out = acc;
        }
        db.set(key, Value::Str(res), now);
        db.set_str_enc(key, StrEnc::Raw);
        ctx.modified(key);
    } else if db.remove(key).is_some() {
        ctx.modified(key);
    }
    ctx.out.int(maxlen as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow_find(s: &[u8], from: u64, to: u64, bit: u8) -> Option<u64> {
        (from..=to).find(|&i| (s[(i / 8) as usize] >> (7 - i % 8)) & 1 == bit)
    }

    fn slow_count(s: &[u8], from: u64, to: u64) -> i64 {
        (from..=to).filter(|&i| (s[(i / 8) as usize] >> (7 - i % 8)) & 1 == 1).count() as i64
    }

    #[test]
    fn bit_scans_match_bit_by_bit() {
        let data: Vec<u8> = vec![0x00, 0xff, 0x10, 0x00, 0x00, 0xfe, 0xff, 0x01, 0x80, 0x00];
        let n = data.len() as u64 * 8;
        for from in 0..n {
            for to in from..n {
                for bit in 0..2 {
                    assert_eq!(find_bit(&data, from, to, bit), slow_find(&data, from, to, bit), "{from} {to} {bit}");
                }
                assert_eq!(count_bits(&data, from, to), slow_count(&data, from, to), "{from} {to}");
            }
        }
    }

    #[test]
    fn set_options_conflicts() {
        let p = |a: &[&[u8]]| parse_set_opts(a, true).is_ok();
        assert!(p(&[b"ex", b"1", b"ex", b"2"]));
        assert!(!p(&[b"ex", b"1", b"px", b"2"]));
        assert!(!p(&[b"nx", b"xx"]));
        assert!(p(&[b"nx", b"get"]));
        assert!(!p(&[b"keepttl", b"ex", b"1"]));
        assert!(!p(&[b"ex"]));
        assert!(!p(&[b"persist"]));
        assert!(parse_set_opts(&[b"persist"], false).is_ok());
        assert!(parse_set_opts(&[b"nx"], false).is_err());
    }
}
