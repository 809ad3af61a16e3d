//! String commands.

use super::{CmdResult, Ctx, Handler};
use crate::errors;
use crate::node::types::Value;

pub const COMMANDS: &[(&str, Handler)] = &[("get", get), ("set", set)];

fn get(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    match ctx.db().get(args[1], now).map(|e| &e.value) {
        None => ctx.out.null(),
        Some(Value::Str(s)) => {
            let s = s.clone();
            ctx.out.bulk(&s)
        }
        Some(_) => return Err(errors::WRONGTYPE.into()),
    }
    Ok(())
}

fn set(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    ctx.db().set(args[1], Value::Str(args[2].to_vec()), now);
    ctx.modified(args[1]);
    ctx.out.ok();
    Ok(())
}
