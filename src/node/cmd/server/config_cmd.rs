//! CONFIG GET / SET / RESETSTAT / HELP, with Redis 7.0's matching, atomicity and error texts.

use super::help_reply;
use crate::errors;
use crate::node::cmd::util::glob_match;
use crate::node::cmd::{CmdError, CmdResult, Ctx};
use crate::node::config::{self, OptionDef, PROTECTED};

fn unknown(name: &[u8]) -> CmdError {
    errors::config_set_unknown(name).into()
}

fn failed(name: &str, why: &str) -> CmdError {
    errors::config_set_failed(name, why).into()
}

/// CONFIG GET pattern [pattern ...]: a map of name to value. An exact name answers with the name
/// as typed (hidden options included); a pattern lists every matching registered name, aliases
/// included. A name already in the reply is not repeated.
pub fn get(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let cfg = &ctx.srv.config;
    let mut found: Vec<(String, &str)> = Vec::new();
    let seen = |found: &Vec<(String, &str)>, n: &str| found.iter().any(|(f, _)| f.eq_ignore_ascii_case(n));
    for pat in &args[2..] {
        let p = String::from_utf8_lossy(pat);
        if !p.contains(['[', '*', '?']) {
            if seen(&found, &p) {
                continue;
            }
            if let Some(v) = cfg.get(&p) {
                found.push((p.into_owned(), v));
            }
            continue;
        }
        for (name, value) in cfg.matching(|n| glob_match(pat, n.as_bytes(), true)) {
            if !seen(&found, name) {
                found.push((name.to_string(), value));
            }
        }
    }
    ctx.out.map(found.len());
    for (k, v) in found {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

/// Protected options (dir, dbfilename) are settable only with `enable-protected-configs`.
fn protected_allowed(ctx: &Ctx) -> bool {
    match ctx.srv.config.get("enable-protected-configs") {
        Some("yes") => true,
        Some("local") => {
            let host = ctx.client.addr.rsplit_once(':').map(|(h, _)| h).unwrap_or("");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
        }
        _ => false,
    }
}

/// CONFIG SET name value [name value ...]: all or nothing. Every pair is checked (unknown,
/// immutable, protected, duplicate: the first problem is reported), then every value is parsed
/// into a copy of the configuration, then the changes this server cannot apply at run time are
/// refused; only then does the copy replace the configuration.
pub fn set(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(errors::SYNTAX.into());
    }
    let mut planned: Vec<(&'static OptionDef, &'static str, String)> = Vec::new();
    let mut first_err: Option<CmdError> = None;
    for pair in args[2..].chunks(2) {
        let typed = String::from_utf8_lossy(pair[0]);
        let Some((def, registered)) = config::lookup(&typed) else {
            if first_err.is_none() {
                first_err = Some(unknown(pair[0]));
            }
            continue;
        };
        if first_err.is_some() {
            continue;
        }
        if !def.mutable() {
            first_err = Some(failed(&typed, "can't set immutable config"));
            continue;
        }
        if def.flags & PROTECTED != 0 && !protected_allowed(ctx) {
            first_err = Some(failed(&typed, "can't set protected config"));
            continue;
        }
        // Like Redis, an option and its alias are distinct entries: only the same name repeats.
        if planned.iter().any(|(_, r, _)| *r == registered) {
            first_err = Some(failed(&typed, "duplicate parameter"));
            continue;
        }
        planned.push((def, registered, String::from_utf8_lossy(pair[1]).into_owned()));
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let old = &ctx.srv.config;
    let mut new = old.clone();
    for (def, registered, value) in &planned {
        if def.name == "activedefrag" && value.eq_ignore_ascii_case("yes") {
            return Err(failed(
                registered,
                "Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution",
            ));
        }
        new.set(registered, value).map_err(|e| failed(registered, &e))?;
    }
    // The apply step: what would need the server to act, and cannot be done here.
    for (def, registered, _) in &planned {
        let changed = |n: &str| old.get(n) != new.get(n);
        let refuse = match def.name {
            // The port actually listened on (with `--port 0`, the one the OS picked) is fine.
            "port" if changed("port") && new.port != ctx.srv.tcp_port => {
                Some("Unable to listen on this port. Check server logs.")
            }
            "bind" if changed("bind") => Some("Failed to bind to specified addresses."),
            "appendonly" if changed("appendonly") && new.get("appendonly") == Some("yes") => {
                Some("Unable to turn on AOF. Check server logs.")
            }
            _ => None,
        };
        if let Some(why) = refuse {
            return Err(failed(registered, why));
        }
    }
    let password_set = old.requirepass.is_none() && new.requirepass.is_some();
    ctx.srv.config = new;
    if planned.iter().any(|(d, _, _)| d.name.starts_with("cluster-announce-")) {
        let ip_changed = planned.iter().any(|(d, _, _)| d.name == "cluster-announce-ip");
        super::super::cluster::announce_changed(ctx.srv, ip_changed);
    }
    if password_set {
        // Clients connected while the default user had no password are authenticated, as in
        // Redis: a new password only concerns new connections.
        ctx.client.authenticated = true;
        for (id, c) in &ctx.srv.clients {
            if *id != ctx.client.id {
                if let Ok(mut c) = c.try_borrow_mut() {
                    c.authenticated = true;
                }
            }
        }
    }
    ctx.out.ok();
    Ok(())
}

/// CONFIG RESETSTAT: the counters of INFO stats, commandstats, errorstats and latencystats.
pub fn resetstat(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.srv.stats.reset();
    for db in ctx.srv.dbs.iter_mut() {
        db.hits = 0;
        db.misses = 0;
        db.expired = 0;
    }
    ctx.out.ok();
    Ok(())
}

pub fn help(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    help_reply(
        ctx.out,
        args[0],
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
        ],
    );
    Ok(())
}
