//! DUMP and RESTORE: values serialized in Redis 7.0's payload format (see [`crate::node::rdb`]),
//! so keys move between this node and a real Redis in both directions.

use super::util::{int, is};
use super::{CmdResult, Ctx, Handler};
use crate::errors;
use crate::node::db::{lru_clock, Entry, StrEnc};
use crate::node::rdb;

/// RESTORE-ASKING is RESTORE; what ASKING changes (slot routing) is decided before the handler runs.
pub const COMMANDS: &[(&str, Handler)] = &[("dump", dump), ("restore", restore), ("restore-asking", restore)];

fn dump(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let lim = rdb::Limits::from_config(&ctx.srv.config);
    let now = ctx.now;
    let Some(entry) = ctx.db().get(args[1], now) else {
        ctx.out.null();
        return Ok(());
    };
    let payload = rdb::dump_payload(&entry.value, &lim);
    ctx.out.bulk(&payload);
    Ok(())
}

fn lfu_policy(ctx: &Ctx) -> bool {
    ctx.srv.config.get("maxmemory-policy").is_some_and(|p| p.ends_with("lfu"))
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], checked in Redis's order:
/// options, existing key, TTL, payload footer, payload body.
fn restore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (key, now) = (args[1], ctx.now);
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < args.len() {
        let more = j + 1 < args.len();
        if is(args[j], "replace") {
            replace = true;
        } else if is(args[j], "absttl") {
            absttl = true;
        } else if is(args[j], "idletime") && more && freq.is_none() {
            let v = int(args[j + 1])?;
            if v < 0 {
                return Err(errors::INVALID_IDLETIME.into());
            }
            idle = Some(v);
            j += 1;
        } else if is(args[j], "freq") && more && idle.is_none() {
            let v = int(args[j + 1])?;
            if !(0..=255).contains(&v) {
                return Err(errors::INVALID_FREQ.into());
            }
            freq = Some(v);
            j += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        j += 1;
    }
    if !replace && ctx.db().contains(key, now) {
        return Err(errors::BUSYKEY.into());
    }
    let mut ttl = int(args[2])?;
    if ttl < 0 {
        return Err(errors::INVALID_TTL.into());
    }
    let payload = args[3];
    if !rdb::verify_payload(payload) {
        return Err(errors::DUMP_PAYLOAD.into());
    }
    let lim = rdb::Limits::from_config(&ctx.srv.config);
    let value = rdb::load_payload(payload, &lim).map_err(|_| errors::BAD_DATA_FORMAT)?;

    let deleted = replace && ctx.db().remove(key).is_some();
    if ttl != 0 && !absttl {
        ttl = ttl.saturating_add(now);
    }
    if ttl != 0 && ttl <= now {
        if deleted {
            ctx.modified(key);
        }
        ctx.out.ok();
        return Ok(());
    }
    let lfu = lfu_policy(ctx);
    let clock = lru_clock(now);
    let mut entry = Entry { value, lru: clock, freq: 5, str_enc: StrEnc::FromContent };
    if lfu {
        if let Some(f) = freq {
            entry.freq = f as u8;
        }
    } else if let Some(s) = idle {
        entry.lru = clock.saturating_sub(u32::try_from(s).unwrap_or(u32::MAX));
    }
    let db = ctx.db();
    db.insert_entry(key.into(), entry);
    if ttl != 0 {
        db.set_expire(key, ttl);
    }
    ctx.modified(key);
    ctx.out.ok();
    Ok(())
}
