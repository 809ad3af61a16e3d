//! Connection commands: PING ECHO QUIT SELECT HELLO AUTH RESET.

use super::util::{int, is};
use super::{CmdResult, Ctx, Handler};
use crate::errors;

/// The Redis version we answer with: tools gate features on it, and our replies follow 7.0.
pub const REDIS_VERSION: &str = "7.0.15";

pub const COMMANDS: &[(&str, Handler)] = &[
    ("ping", ping),
    ("echo", echo),
    ("quit", quit),
    ("select", select),
    ("hello", hello),
    ("auth", auth),
    ("reset", reset),
];

fn ping(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 2 {
        return Err(errors::wrong_arity("ping").into());
    }
    if ctx.client.in_pubsub_mode() {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).copied().unwrap_or(b""));
    } else if let Some(msg) = args.get(1) {
        ctx.out.bulk(msg);
    } else {
        ctx.out.simple("PONG");
    }
    Ok(())
}

fn echo(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ctx.out.bulk(args[1]);
    Ok(())
}

fn quit(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

fn select(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = int(args[1])?;
    if db != 0 && ctx.srv.cluster.is_some() {
        return Err(errors::SELECT_IN_CLUSTER.into());
    }
    if db < 0 || db as usize >= ctx.srv.dbs.len() {
        return Err(errors::DB_INDEX_OUT_OF_RANGE.into());
    }
    ctx.client.db = db as usize;
    ctx.out.ok();
    Ok(())
}

fn check_password(ctx: &Ctx, user: &[u8], pass: &[u8]) -> CmdResult {
    match &ctx.srv.config.requirepass {
        Some(p) if user == b"default" && p.as_slice() == pass => Ok(()),
        _ => Err(errors::WRONGPASS.into()),
    }
}

fn auth(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX.into());
    }
    if args.len() == 2 && ctx.srv.config.requirepass.is_none() {
        return Err(errors::AUTH_NOT_CONFIGURED.into());
    }
    let (user, pass) = if args.len() == 3 { (args[1], args[2]) } else { (&b"default"[..], args[1]) };
    if ctx.srv.config.requirepass.is_none() && user == b"default" {
        // The default user has no password: any password authenticates it (Redis `nopass`).
        ctx.client.authenticated = true;
        ctx.out.ok();
        return Ok(());
    }
    check_password(ctx, user, pass)?;
    ctx.client.authenticated = true;
    ctx.out.ok();
    Ok(())
}

fn hello(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut proto = None;
    let mut i = 1;
    if args.len() > 1 {
        let v = crate::resp::request::parse_i64(args[1])
            .ok_or(super::CmdError::from("ERR Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(errors::NOPROTO.into());
        }
        proto = Some(v);
        i = 2;
    }
    let mut auth_pair = None;
    let mut setname = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(args[i], "auth") && more >= 2 {
            auth_pair = Some((args[i + 1], args[i + 2]));
            i += 3;
        } else if is(args[i], "setname") && more >= 1 {
            setname = Some(args[i + 1]);
            i += 2;
        } else {
            return Err(format!("ERR Syntax error in HELLO option '{}'", errors::lossy(args[i], 128)).into());
        }
    }
    if let Some((u, p)) = auth_pair {
        if ctx.srv.config.requirepass.is_some() || u != b"default" {
            check_password(ctx, u, p)?;
        }
        ctx.client.authenticated = true;
    }
    if ctx.srv.config.requirepass.is_some() && !ctx.client.authenticated {
        return Err(errors::NOAUTH_HELLO.into());
    }
    if let Some(name) = setname {
        super::server::validate_client_name(name)?;
        ctx.client.name = if name.is_empty() { None } else { Some(name.to_vec()) };
    }
    if let Some(p) = proto {
        ctx.client.set_resp3(p == 3);
        ctx.out.resp3 = p == 3;
    }
    let cluster = ctx.srv.cluster.is_some();
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if ctx.client.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(ctx.client.id as i64);
    out.bulk(b"mode");
    out.bulk(if cluster { b"cluster" } else { b"standalone" });
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

fn reset(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.client.multi = None;
    ctx.client.multi_error = false;
    super::transactions::unwatch(ctx);
    super::pubsub::unsubscribe_all(ctx.srv, ctx.client);
    ctx.client.subs.clear();
    ctx.client.psubs.clear();
    if ctx.client.monitor {
        let id = ctx.client.id;
        ctx.srv.monitors.retain(|m| m.id != id);
        ctx.client.monitor = false;
    }
    ctx.client.db = 0;
    ctx.client.name = None;
    ctx.client.no_evict = false;
    ctx.client.set_resp3(false);
    ctx.out.resp3 = false;
    if ctx.srv.config.requirepass.is_some() {
        ctx.client.authenticated = false;
    }
    ctx.out.simple("RESET");
    Ok(())
}
