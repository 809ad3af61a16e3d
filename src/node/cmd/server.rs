//! Server commands: INFO CONFIG TIME SLOWLOG MONITOR SHUTDOWN LATENCY COMMAND LASTSAVE.

mod command_cmd;
mod config_cmd;
mod info;
pub mod sys;

use super::util::{int, is};
use super::{CmdResult, Ctx, Handler};
use crate::errors;
use crate::node::client::Client;
use crate::node::server::{unix_us, Server};
use crate::resp::Reply;

pub use info::info_string;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("info", info_cmd),
    ("config", container),
    ("config|get", config_cmd::get),
    ("config|set", config_cmd::set),
    ("config|resetstat", config_cmd::resetstat),
    ("config|help", config_cmd::help),
    ("time", time),
    ("lastsave", lastsave),
    ("slowlog", container),
    ("slowlog|get", slowlog_get),
    ("slowlog|len", slowlog_len),
    ("slowlog|reset", slowlog_reset),
    ("slowlog|help", slowlog_help),
    ("monitor", monitor),
    ("shutdown", shutdown),
    ("latency", container),
    ("latency|latest", latency_latest),
    ("latency|history", latency_history),
    ("latency|reset", latency_reset),
    ("latency|help", latency_help),
    ("command", command_cmd::command),
    ("command|count", command_cmd::count),
    ("command|list", command_cmd::list),
    ("command|info", command_cmd::info),
    ("command|getkeys", command_cmd::getkeys),
    ("command|docs", command_cmd::docs),
    ("command|help", command_cmd::help),
];

/// A container command (CONFIG, SLOWLOG, ...) alone. Its table arity (-2) already rejects it, so
/// this only exists to make the dispatcher report that arity error instead of "unknown command".
pub fn container(_ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let name = String::from_utf8_lossy(args[0]).to_ascii_lowercase();
    Err(errors::wrong_arity(&name).into())
}

/// Redis's `addReplyHelp`: a header naming the command as typed, the lines, then HELP.
pub fn help_reply(out: &mut Reply, cmd: &[u8], lines: &[&str]) {
    let name = String::from_utf8_lossy(cmd).to_ascii_uppercase();
    out.array(lines.len() + 3);
    out.simple(&format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

/// Redis's `addReplySubcommandSyntaxError`.
pub fn subcommand_syntax_error(args: &[&[u8]]) -> super::CmdError {
    errors::subcommand_syntax(args[0], args.get(1).copied().unwrap_or(b"")).into()
}

fn info_cmd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let text = info_string(ctx.srv, ctx.client, &args[1..]);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn time(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let us = unix_us();
    ctx.out.array(2);
    ctx.out.bulk_int(us / 1_000_000);
    ctx.out.bulk_int(us % 1_000_000);
    Ok(())
}

fn lastsave(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.out.int(ctx.srv.lastsave);
    Ok(())
}

fn slowlog_get(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax_error(args));
    }
    let len = ctx.srv.slowlog.entries.len();
    let mut count = 10usize;
    if let Some(a) = args.get(2) {
        let n = int(a).map_err(|_| errors::SLOWLOG_COUNT)?;
        if n < -1 {
            return Err(errors::SLOWLOG_COUNT.into());
        }
        count = if n == -1 { len } else { n as usize };
    }
    let count = count.min(len);
    let out = &mut *ctx.out;
    out.array(count);
    for e in ctx.srv.slowlog.entries.iter().take(count) {
        out.array(6);
        out.int(e.id as i64);
        out.int(e.time);
        out.int(e.micros as i64);
        out.array(e.args.len());
        e.args.iter().for_each(|a| out.bulk(a));
        out.bulk(e.addr.as_bytes());
        out.bulk(&e.name);
    }
    Ok(())
}

fn slowlog_len(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.out.int(ctx.srv.slowlog.entries.len() as i64);
    Ok(())
}

fn slowlog_reset(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.srv.slowlog.entries.clear();
    ctx.out.ok();
    Ok(())
}

fn slowlog_help(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    help_reply(
        ctx.out,
        args[0],
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
    Ok(())
}

fn monitor(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    if ctx.in_exec {
        return Err(errors::MONITOR_DENY_BLOCKING.into());
    }
    // Like Redis, a second MONITOR is ignored without a reply.
    if ctx.client.monitor {
        return Ok(());
    }
    ctx.client.monitor = true;
    ctx.srv.monitors.push(ctx.client.shared.clone());
    ctx.out.ok();
    Ok(())
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT].
///
/// There is no persistence yet, so nothing can be saved: an explicit SAVE fails the way Redis
/// fails when its save fails ("Errors trying to SHUTDOWN"), unless FORCE is given; the implicit
/// save of configured `save` points is skipped (with a log line), since there is no data file a
/// restart could load anyway. The shutdown itself is immediate (no replicas to wait for), so ABORT
/// never finds one in progress.
fn shutdown(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (mut nosave, mut save, mut now, mut force, mut abort) = (false, false, false, false, false);
    for a in &args[1..] {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") {
            now = true;
        } else if is(a, "force") {
            force = true;
        } else if is(a, "abort") {
            abort = true;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    if (abort && (nosave || save || now || force)) || (nosave && save) {
        return Err(errors::SYNTAX.into());
    }
    if abort {
        return Err(errors::SHUTDOWN_NOT_IN_PROGRESS.into());
    }
    if !now && ctx.in_exec {
        return Err(errors::SHUTDOWN_DENY_BLOCKING.into());
    }
    if save && !force {
        tracing::warn!("Error trying to save the DB: persistence is not available on this server");
        return Err(errors::SHUTDOWN_SAVE_FAILED.into());
    }
    tracing::warn!("User requested shutdown...");
    if !nosave && !ctx.srv.config.get("save").unwrap_or("").is_empty() {
        tracing::warn!("Not saving the DB before exiting: persistence is not available on this server");
    }
    ctx.srv.shutting_down = true;
    ctx.srv.shutdown.notify_one();
    // No reply: the connection closes with the process, as in Redis.
    ctx.client.close_after_reply = true;
    Ok(())
}

fn latency_latest(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let out = &mut *ctx.out;
    out.array(ctx.srv.latency.events.len());
    for (name, s) in &ctx.srv.latency.events {
        let (t, ms) = s.samples.back().copied().unwrap_or((0, 0));
        out.array(4);
        out.bulk(name.as_bytes());
        out.int(t);
        out.int(ms as i64);
        out.int(s.max as i64);
    }
    Ok(())
}

fn latency_history(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let out = &mut *ctx.out;
    let Some(s) = std::str::from_utf8(args[2]).ok().and_then(|e| ctx.srv.latency.events.get(e)) else {
        out.array(0);
        return Ok(());
    };
    out.array(s.samples.len());
    for (t, ms) in &s.samples {
        out.array(2);
        out.int(*t);
        out.int(*ms as i64);
    }
    Ok(())
}

fn latency_reset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let events = &mut ctx.srv.latency.events;
    let n = if args.len() == 2 {
        let n = events.len();
        events.clear();
        n
    } else {
        args[2..].iter().filter(|e| std::str::from_utf8(e).ok().and_then(|e| events.remove(e)).is_some()).count()
    };
    ctx.out.int(n as i64);
    Ok(())
}

fn latency_help(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    help_reply(
        ctx.out,
        args[0],
        &[
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
        ],
    );
    Ok(())
}

/// Sends a command line to every MONITOR client, in Redis's format:
/// `+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"`.
pub fn feed_monitors(srv: &mut Server, client: &Client, args: &[&[u8]]) {
    let now = crate::node::server::unix_us();
    let mut line = format!("+{}.{:06} [{} {}]", now / 1_000_000, now % 1_000_000, client.db, client.addr);
    for a in args {
        line.push_str(" \"");
        for &c in a.iter() {
            match c {
                b'\\' => line.push_str("\\\\"),
                b'"' => line.push_str("\\\""),
                b'\n' => line.push_str("\\n"),
                b'\r' => line.push_str("\\r"),
                b'\t' => line.push_str("\\t"),
                7 => line.push_str("\\a"),
                8 => line.push_str("\\b"),
                c if c.is_ascii_graphic() || c == b' ' => line.push(c as char),
                c => line.push_str(&format!("\\x{c:02x}")),
            }
        }
        line.push('"');
    }
    line.push_str("\r\n");
    for m in &srv.monitors {
        m.send(line.as_bytes());
    }
}

/// CLIENT SETNAME / HELLO SETNAME: no spaces or newlines.
pub fn validate_client_name(name: &[u8]) -> CmdResult {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(errors::CLIENT_NAME_CHARS.into());
    }
    Ok(())
}
