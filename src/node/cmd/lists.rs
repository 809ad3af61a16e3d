//! List commands, following Redis 7.0's `t_list.c`: argument checks happen in the same order as
//! there (some before the key lookup, some after), so the same bad command gets the same error.
//! Blocking variants park the client through `Blocked`; when a key they wait on changes, the
//! command re-runs and, like Redis 7.0, only the key that changed may serve it.

use super::util::is;
use super::{CmdError, CmdResult, Ctx, Handler};
use crate::errors;
use crate::node::blocking;
use crate::node::client::{Blocked, OwnedCommand, TimeoutReply};
use crate::node::db::Db;
use crate::node::types::list::{End, List};
use crate::node::types::Value;
use crate::resp::request::parse_i64;
use std::time::Instant;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("lpush", lpush),
    ("rpush", rpush),
    ("lpushx", lpushx),
    ("rpushx", rpushx),
    ("lpop", lpop),
    ("rpop", rpop),
    ("llen", llen),
    ("lrange", lrange),
    ("lindex", lindex),
    ("lset", lset),
    ("linsert", linsert),
    ("lrem", lrem),
    ("ltrim", ltrim),
    ("lpos", lpos),
    ("lmove", lmove),
    ("rpoplpush", rpoplpush),
    ("lmpop", lmpop),
    ("blpop", blpop),
    ("brpop", brpop),
    ("blmove", blmove),
    ("brpoplpush", brpoplpush),
    ("blmpop", blmpop),
];

/// `getLongFromObjectOrReply` with no custom message.
fn long(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or_else(|| errors::NOT_INTEGER.into())
}

/// `getRangeLongFromObjectOrReply` with a custom message: a non-integer gets the same message.
fn long_at_least(arg: &[u8], min: i64, msg: &'static str) -> Result<i64, CmdError> {
    match parse_i64(arg) {
        Some(v) if v >= min => Ok(v),
        _ => Err(msg.into()),
    }
}

fn side(arg: &[u8]) -> Result<End, CmdError> {
    if is(arg, "left") {
        Ok(End::Left)
    } else if is(arg, "right") {
        Ok(End::Right)
    } else {
        Err(errors::SYNTAX.into())
    }
}

/// A read lookup (hit/miss stats): None when missing, WRONGTYPE when not a list.
fn read<'a>(db: &'a mut Db, key: &[u8], now: i64) -> Result<Option<&'a mut List>, CmdError> {
    match db.get(key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(errors::WRONGTYPE.into()),
        },
    }
}

/// A write lookup: None when missing, WRONGTYPE when not a list.
fn write<'a>(db: &'a mut Db, key: &[u8], now: i64) -> Result<Option<&'a mut List>, CmdError> {
    match db.get_mut(key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(errors::WRONGTYPE.into()),
        },
    }
}

/// Deletes `key` if its list became empty: an empty list never stays in the keyspace.
fn drop_if_empty(db: &mut Db, key: &[u8], now: i64) {
    if matches!(db.peek(key, now).map(|e| &e.value), Some(Value::List(l)) if l.is_empty()) {
        db.remove(key);
    }
}

// ---- push -------------------------------------------------------------------------------------

fn push(ctx: &mut Ctx, args: &[&[u8]], end: End, only_existing: bool) -> CmdResult {
    let now = ctx.now;
    let key = args[1];
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let len = match write(db, key, now)? {
        Some(l) => {
            for v in &args[2..] {
                l.push(end, (*v).into());
            }
            l.len()
        }
        None if only_existing => {
            ctx.out.int(0);
            return Ok(());
        }
        None => {
            let mut l = List::new();
            for v in &args[2..] {
                l.push(end, (*v).into());
            }
            let n = l.len();
            db.set(key, Value::List(Box::new(l)), now);
            n
        }
    };
    ctx.modified(key);
    ctx.out.int(len as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Left, false)
}
fn rpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Right, false)
}
fn lpushx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Left, true)
}
fn rpushx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Right, true)
}

// ---- pop --------------------------------------------------------------------------------------

fn pop(ctx: &mut Ctx, args: &[&[u8]], end: End) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::wrong_arity(ctx.cmd.name).into());
    }
    let count = match args.get(2) {
        Some(a) => Some(long_at_least(a, 0, errors::NOT_POSITIVE)?),
        None => None,
    };
    let now = ctx.now;
    let key = args[1];
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let Some(l) = write(db, key, now)? else {
        match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    match count {
        None => match l.pop(end) {
            Some(v) => ctx.out.bulk(&v),
            None => ctx.out.null(),
        },
        Some(0) => {
            ctx.out.array(0);
            return Ok(());
        }
        Some(n) => pop_n(l, end, n, ctx.out),
    }
    if l.is_empty() {
        db.remove(key);
    }
    ctx.modified(key);
    Ok(())
}

/// Pops up to `n` elements and replies with them as an array.
fn pop_n(l: &mut List, end: End, n: i64, out: &mut crate::resp::Reply) {
    let k = l.len().min(usize::try_from(n).unwrap_or(usize::MAX));
    out.array(k);
    for _ in 0..k {
        if let Some(v) = l.pop(end) {
            out.bulk(&v);
        }
    }
}

fn lpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, End::Left)
}
fn rpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, End::Right)
}

// ---- reads ------------------------------------------------------------------------------------

fn llen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let n = read(&mut ctx.srv.dbs[ctx.client.db], args[1], now)?.map_or(0, |l| l.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn lrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let start = long(args[2])?;
    let end = long(args[3])?;
    let now = ctx.now;
    let Some(l) = read(&mut ctx.srv.dbs[ctx.client.db], args[1], now)? else {
        ctx.out.array(0);
        return Ok(());
    };
    match l.range(start, end) {
        None => ctx.out.array(0),
        Some((s, e)) => {
            ctx.out.array(e - s + 1);
            for v in l.items.range(s..=e) {
                ctx.out.bulk(v);
            }
        }
    }
    Ok(())
}

fn lindex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let Some(l) = read(&mut ctx.srv.dbs[ctx.client.db], args[1], now)? else {
        ctx.out.null();
        return Ok(());
    };
    let index = long(args[2])?;
    match l.get(index) {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

fn lpos(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        if is(args[j], "rank") && more {
            j += 1;
            rank = long(args[j])?;
            if rank == 0 {
                return Err(errors::LPOS_RANK_ZERO.into());
            }
        } else if is(args[j], "count") && more {
            j += 1;
            count = Some(long_at_least(args[j], 0, errors::LPOS_COUNT_NEGATIVE)?);
        } else if is(args[j], "maxlen") && more {
            j += 1;
            maxlen = long_at_least(args[j], 0, errors::LPOS_MAXLEN_NEGATIVE)?;
        } else {
            return Err(errors::SYNTAX.into());
        }
        j += 1;
    }
    // A negative rank searches from the tail. Redis negates with C overflow (LONG_MIN stays
    // negative, and then matches from the first hit on): wrapping arithmetic keeps that.
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let now = ctx.now;
    let ele = args[2];
    let Some(l) = read(&mut ctx.srv.dbs[ctx.client.db], args[1], now)? else {
        match count {
            Some(_) => ctx.out.array(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let len = l.len() as i64;
    let mut matches: i64 = 0;
    let mut found: Vec<i64> = Vec::new();
    let mut first: Option<i64> = None;
    let iter: Box<dyn Iterator<Item = &Box<[u8]>>> =
        if from_tail { Box::new(l.items.iter().rev()) } else { Box::new(l.items.iter()) };
    for (index, e) in (0i64..).zip(iter) {
        if maxlen != 0 && index >= maxlen {
            break;
        }
        if **e != *ele {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        let pos = if from_tail { len - index - 1 } else { index };
        match count {
            Some(c) => {
                found.push(pos);
                if c != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= c {
                    break;
                }
            }
            None => {
                first = Some(pos);
                break;
            }
        }
    }
    if count.is_some() {
        ctx.out.array(found.len());
        for p in found {
            ctx.out.int(p);
        }
    } else {
        match first {
            Some(p) => ctx.out.int(p),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

// ---- in-place writes --------------------------------------------------------------------------

fn lset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let Some(l) = write(&mut ctx.srv.dbs[ctx.client.db], args[1], now)? else {
        return Err(errors::NO_SUCH_KEY.into());
    };
    let index = long(args[2])?;
    if !l.set(index, args[3].into()) {
        return Err(errors::INDEX_OUT_OF_RANGE.into());
    }
    ctx.modified(args[1]);
    ctx.out.ok();
    Ok(())
}

fn linsert(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let after = if is(args[2], "after") {
        true
    } else if is(args[2], "before") {
        false
    } else {
        return Err(errors::SYNTAX.into());
    };
    let now = ctx.now;
    let Some(l) = write(&mut ctx.srv.dbs[ctx.client.db], args[1], now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    if !l.insert(args[3], after, args[4].into()) {
        ctx.out.int(-1);
        return Ok(());
    }
    let n = l.len();
    ctx.modified(args[1]);
    ctx.out.int(n as i64);
    Ok(())
}

fn lrem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let count = long(args[2])?;
    let now = ctx.now;
    let key = args[1];
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let Some(l) = write(db, key, now)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let removed = l.remove(args[3], count);
    if removed > 0 {
        if l.is_empty() {
            db.remove(key);
        }
        ctx.modified(key);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let start = long(args[2])?;
    let end = long(args[3])?;
    let now = ctx.now;
    let key = args[1];
    let db = &mut ctx.srv.dbs[ctx.client.db];
    let Some(l) = write(db, key, now)? else {
        ctx.out.ok();
        return Ok(());
    };
    l.trim(start, end);
    if l.is_empty() {
        db.remove(key);
    }
    ctx.modified(key);
    ctx.out.ok();
    Ok(())
}

// ---- moves ------------------------------------------------------------------------------------

/// LMOVE's body once the sides are parsed. Replies with the moved element and returns true, or
/// returns false (no reply) when `src` does not exist. `lenient_src`: a re-run blocked client
/// treats a non-list source like a missing one.
fn move_one(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End, lenient_src: bool) -> Result<bool, CmdError> {
    let now = ctx.now;
    let db = &mut ctx.srv.dbs[ctx.client.db];
    match write(db, src, now) {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(false),
        Err(_) if lenient_src => return Ok(false),
        Err(e) => return Err(e),
    }
    let dst_exists = if src == dst { true } else { write(db, dst, now)?.is_some() };
    let Some(Some(v)) = write(db, src, now)?.map(|l| l.pop(from)) else {
        return Ok(false);
    };
    ctx.out.bulk(&v);
    if dst_exists {
        if let Some(l) = write(db, dst, now)? {
            l.push(to, v);
        }
    } else {
        let mut l = List::new();
        l.push(to, v);
        db.set(dst, Value::List(Box::new(l)), now);
    }
    drop_if_empty(db, src, now);
    ctx.modified(dst);
    ctx.modified(src);
    Ok(true)
}

fn lmove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let from = side(args[3])?;
    let to = side(args[4])?;
    if !move_one(ctx, args[1], args[2], from, to, false)? {
        ctx.out.null();
    }
    Ok(())
}

fn rpoplpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if !move_one(ctx, args[1], args[2], End::Right, End::Left, false)? {
        ctx.out.null();
    }
    Ok(())
}

// ---- multi-key pops ---------------------------------------------------------------------------

/// LMPOP/BLMPOP arguments from `numkeys` on: the key range in `args`, the side, the count.
fn mpop_args(args: &[&[u8]], numkeys_idx: usize) -> Result<(usize, usize, End, i64), CmdError> {
    let numkeys = long_at_least(args[numkeys_idx], 1, errors::NUMKEYS_NOT_POSITIVE)?;
    let where_idx = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_idx + 1))
        .filter(|&i| i < args.len())
        .ok_or(CmdError::from(errors::SYNTAX))?;
    let end = side(args[where_idx])?;
    let mut count: Option<i64> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && is(args[j], "count") && j + 1 < args.len() {
            j += 1;
            count = Some(long_at_least(args[j], 1, errors::COUNT_NOT_POSITIVE)?);
        } else {
            return Err(errors::SYNTAX.into());
        }
        j += 1;
    }
    Ok((numkeys_idx + 1, where_idx, end, count.unwrap_or(1)))
}

/// Pops from the first non-empty list among `keys` and replies: `[key, element]` without a
/// count, `[key, [elements...]]` with one. Returns false (no reply) when all are empty. While a
/// blocked client is re-run, only the key that changed is looked at, and a non-list is skipped.
fn pop_first(ctx: &mut Ctx, keys: &[&[u8]], end: End, count: Option<i64>) -> Result<bool, CmdError> {
    let serving = blocking::serving_key();
    let now = ctx.now;
    for &key in keys {
        if serving.as_deref().is_some_and(|s| s != key) {
            continue;
        }
        let db = &mut ctx.srv.dbs[ctx.client.db];
        let l = match write(db, key, now) {
            Ok(Some(l)) if !l.is_empty() => l,
            Ok(_) => continue,
            Err(_) if serving.is_some() => continue,
            Err(e) => return Err(e),
        };
        ctx.out.array(2);
        ctx.out.bulk(key);
        match count {
            Some(n) => pop_n(l, end, n, ctx.out),
            None => match l.pop(end) {
                Some(v) => ctx.out.bulk(&v),
                None => ctx.out.null(),
            },
        }
        if l.is_empty() {
            db.remove(key);
        }
        ctx.modified(key);
        return Ok(true);
    }
    Ok(false)
}

fn lmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (first, where_idx, end, count) = mpop_args(args, 1)?;
    if !pop_first(ctx, &args[first..where_idx], end, Some(count))? {
        ctx.out.null_array();
    }
    Ok(())
}

// ---- blocking ---------------------------------------------------------------------------------

use super::util::timeout as block_timeout;

/// Nothing to serve: park the client, or inside EXEC answer `denied`. Redis 7.0 answers every
/// timed-out list wait with a null array, BLMOVE included, but a BLMOVE that may not block with
/// a null bulk.
fn block(ctx: &mut Ctx, args: &[&[u8]], keys: &[&[u8]], deadline: Option<Instant>, denied: TimeoutReply) {
    if !ctx.can_block() {
        blocking::timeout_reply(denied, ctx.out);
        return;
    }
    let on_timeout = TimeoutReply::NullArray;
    ctx.client.blocked = Some(Blocked {
        db: ctx.client.db,
        keys: keys.iter().map(|k| Box::<[u8]>::from(*k)).collect(),
        deadline,
        command: OwnedCommand::new(args),
        on_timeout,
    });
}

fn bpop(ctx: &mut Ctx, args: &[&[u8]], end: End) -> CmdResult {
    let last = args.len() - 1;
    let deadline = block_timeout(args[last])?;
    let keys = &args[1..last];
    if !pop_first(ctx, keys, end, None)? {
        block(ctx, args, keys, deadline, TimeoutReply::NullArray);
    }
    Ok(())
}

fn blpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    bpop(ctx, args, End::Left)
}
fn brpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    bpop(ctx, args, End::Right)
}

fn bmove(ctx: &mut Ctx, args: &[&[u8]], from: End, to: End, timeout: &[u8]) -> CmdResult {
    let deadline = block_timeout(timeout)?;
    let rerun = blocking::serving_key().is_some();
    if !move_one(ctx, args[1], args[2], from, to, rerun)? {
        block(ctx, args, &args[1..2], deadline, TimeoutReply::NullBulk);
    }
    Ok(())
}

fn blmove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let from = side(args[3])?;
    let to = side(args[4])?;
    bmove(ctx, args, from, to, args[5])
}

fn brpoplpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    bmove(ctx, args, End::Right, End::Left, args[3])
}

fn blmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (first, where_idx, end, count) = mpop_args(args, 2)?;
    let deadline = block_timeout(args[1])?;
    let keys = &args[first..where_idx];
    if !pop_first(ctx, keys, end, Some(count))? {
        block(ctx, args, keys, deadline, TimeoutReply::NullArray);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::node::client::Client;
    use crate::node::config::Config;
    use crate::node::server::Server;
    use crate::resp::Reply;
    use std::cell::RefCell;
    use std::rc::Rc;

    fn call(srv: &mut Server, client: &mut Client, line: &str, in_exec: bool) -> String {
        let words: Vec<&[u8]> = line.split(' ').map(|w| w.as_bytes()).collect();
        let spec = crate::command::resolve(&words).expect("known command");
        let handler = super::super::handler_of(spec).expect("implemented");
        let mut out = Reply::new(client.resp3);
        super::super::run(srv, client, &mut out, spec, handler, &words, in_exec, crate::node::server::unix_ms());
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    #[test]
    fn blocking_commands_do_not_block_inside_exec() {
        let mut srv = Server::new(Config::default());
        let mut c = Client::new(1, "a".into(), "b".into());
        assert_eq!(call(&mut srv, &mut c, "BLPOP q 0", true), "*-1\r\n");
        assert_eq!(call(&mut srv, &mut c, "BRPOP q q2 1", true), "*-1\r\n");
        assert_eq!(call(&mut srv, &mut c, "BLMPOP 0 1 q LEFT", true), "*-1\r\n");
        assert_eq!(call(&mut srv, &mut c, "BLMOVE q d LEFT LEFT 0", true), "$-1\r\n");
        assert_eq!(call(&mut srv, &mut c, "BRPOPLPUSH q d 0", true), "$-1\r\n");
        assert!(c.blocked.is_none());
        c.set_resp3(true);
        assert_eq!(call(&mut srv, &mut c, "BLPOP q 0", true), "_\r\n");
        assert_eq!(call(&mut srv, &mut c, "BLMOVE q d LEFT LEFT 0", true), "_\r\n");
        c.set_resp3(false);
        assert_eq!(call(&mut srv, &mut c, "RPUSH q a", true), ":1\r\n");
        assert_eq!(call(&mut srv, &mut c, "BLPOP q 0", true), "*2\r\n$1\r\nq\r\n$1\r\na\r\n");
        // Outside EXEC the same command parks the client and writes nothing.
        assert_eq!(call(&mut srv, &mut c, "BLMOVE q d LEFT LEFT 0", false), "");
        let b = c.blocked.as_ref().expect("blocked");
        assert_eq!(b.keys, vec![Box::<[u8]>::from(&b"q"[..])]);
        assert_eq!(b.on_timeout, TimeoutReply::NullArray);
        assert!(b.deadline.is_none());
    }

    /// Two pushes in one transaction: like Redis 7.0, the waiter is served from the key that
    /// became ready first, not from the first key of its own argument list.
    #[test]
    fn waiter_is_served_from_the_key_that_became_ready_first() {
        let mut srv = Server::new(Config::default());
        let waiter = Rc::new(RefCell::new(Client::new(1, "w".into(), "l".into())));
        srv.clients.insert(1, waiter.clone());
        assert_eq!(call(&mut srv, &mut waiter.borrow_mut(), "BLPOP a b 0", false), "");
        blocking::park(&mut srv, &waiter.borrow());
        let mut pusher = Client::new(2, "p".into(), "l".into());
        assert_eq!(call(&mut srv, &mut pusher, "RPUSH b 1", true), ":1\r\n");
        assert_eq!(call(&mut srv, &mut pusher, "RPUSH a 2", true), ":1\r\n");
        blocking::serve_ready(&mut srv);
        let w = waiter.borrow();
        assert!(w.blocked.is_none());
        assert_eq!(&w.shared.outbox.borrow()[..], b"*2\r\n$1\r\nb\r\n$1\r\n1\r\n");
        assert!(srv.blocking.waiters.is_empty());
        drop(w);
        assert_eq!(call(&mut srv, &mut pusher, "LRANGE a 0 -1", false), "*1\r\n$1\r\n2\r\n");
    }

    /// A waiter that is woken but finds nothing keeps its place in every queue it is in.
    #[test]
    fn woken_waiter_that_finds_nothing_keeps_its_place() {
        let mut srv = Server::new(Config::default());
        let w1 = Rc::new(RefCell::new(Client::new(1, "w1".into(), "l".into())));
        let w2 = Rc::new(RefCell::new(Client::new(2, "w2".into(), "l".into())));
        srv.clients.insert(1, w1.clone());
        srv.clients.insert(2, w2.clone());
        assert_eq!(call(&mut srv, &mut w1.borrow_mut(), "BLPOP a b 0", false), "");
        blocking::park(&mut srv, &w1.borrow());
        assert_eq!(call(&mut srv, &mut w2.borrow_mut(), "BLPOP a 0", false), "");
        blocking::park(&mut srv, &w2.borrow());
        let mut other = Client::new(3, "o".into(), "l".into());
        // b changes type: w1 is woken, stays blocked, and must stay ahead of w2 on a.
        assert_eq!(call(&mut srv, &mut other, "SET b x", false), "+OK\r\n");
        blocking::serve_ready(&mut srv);
        assert!(w1.borrow().blocked.is_some());
        assert_eq!(call(&mut srv, &mut other, "RPUSH a v", false), ":1\r\n");
        blocking::serve_ready(&mut srv);
        assert!(w1.borrow().blocked.is_none());
        assert_eq!(&w1.borrow().shared.outbox.borrow()[..], b"*2\r\n$1\r\na\r\n$1\r\nv\r\n");
        assert!(w2.borrow().blocked.is_some());
    }
}
