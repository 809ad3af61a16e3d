//! COMMAND and its subcommands, answered from the shared command table (which lists exactly the
//! commands this server implements). COMMAND DOCS has no documentation to give: each command
//! maps to an empty map.

use super::help_reply;
use crate::command::{self, flags, table, CommandSpec};
use crate::errors;
use crate::node::cmd::util::{glob_match, is};
use crate::node::cmd::{CmdResult, Ctx};

/// A command by its full name, `container|sub` included (Redis's `lookupCommandBySds`).
fn by_full_name(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut parts = name.split(|&c| c == b'|');
    let base = command::lookup(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(base),
        (Some(sub), None) => base.subcommand(sub),
        _ => None,
    }
}

pub fn command(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.out.array(table::COMMANDS.len());
    table::COMMANDS.iter().for_each(|c| command::write_info(c, ctx.out));
    Ok(())
}

pub fn count(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.out.int(table::COMMANDS.len() as i64);
    Ok(())
}

enum Filter<'a> {
    None,
    Module,
    AclCat(String),
    Pattern(&'a [u8]),
}

impl Filter<'_> {
    fn keeps(&self, c: &CommandSpec) -> bool {
        match self {
            Filter::None => true,
            // No modules are loaded: no command belongs to one.
            Filter::Module => false,
            Filter::AclCat(cat) => {
                c.acl.iter().any(|a| a.strip_prefix('@').is_some_and(|a| a.eq_ignore_ascii_case(cat)))
            }
            Filter::Pattern(p) => glob_match(p, c.name.as_bytes(), true),
        }
    }
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: every name,
/// subcommands (`client|list`) included.
pub fn list(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut filter = Filter::None;
    let mut i = 2;
    while i < args.len() {
        if is(args[i], "filterby") && args.len() - 1 - i == 2 {
            let kind = args[i + 1];
            filter = if is(kind, "module") {
                Filter::Module
            } else if is(kind, "aclcat") {
                Filter::AclCat(String::from_utf8_lossy(args[i + 2]).into_owned())
            } else if is(kind, "pattern") {
                Filter::Pattern(args[i + 2])
            } else {
                return Err(errors::SYNTAX.into());
            };
            i += 3;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    let names: Vec<&str> = command::all().filter(|c| filter.keeps(c)).map(|c| c.name).collect();
    ctx.out.array(names.len());
    names.iter().for_each(|n| ctx.out.bulk(n.as_bytes()));
    Ok(())
}

/// COMMAND INFO [name ...]: all commands without names; a null for an unknown name.
pub fn info(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() == 2 {
        return command(ctx, args);
    }
    ctx.out.array(args.len() - 2);
    for name in &args[2..] {
        match by_full_name(name) {
            Some(c) => command::write_info(c, ctx.out),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// COMMAND DOCS [name ...]: a map of command name to its documentation (empty here).
pub fn docs(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let found: Vec<&CommandSpec> = if args.len() == 2 {
        table::COMMANDS.iter().collect()
    } else {
        args[2..].iter().filter_map(|n| by_full_name(n)).collect()
    };
    ctx.out.map(found.len());
    for c in found {
        ctx.out.bulk(c.name.as_bytes());
        ctx.out.map(0);
    }
    Ok(())
}

/// COMMAND GETKEYS command [arg ...]: the key arguments, found with the command's key specs.
pub fn getkeys(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let cmd_args = &args[2..];
    let Some(base) = command::lookup(cmd_args[0]) else {
        return Err(errors::GETKEYS_INVALID_COMMAND.into());
    };
    let cmd = if cmd_args.len() > 1 && !base.subcommands.is_empty() {
        base.subcommand(cmd_args[1]).ok_or(crate::node::cmd::CmdError::from(errors::GETKEYS_INVALID_COMMAND))?
    } else {
        base
    };
    if !cmd.key_specs.iter().any(|ks| !ks.flags.contains(&"not_key")) {
        return Err(errors::GETKEYS_NO_KEYS.into());
    }
    if !cmd.arity_ok(cmd_args.len()) {
        return Err(errors::GETKEYS_ARITY.into());
    }
    match command::key_positions(cmd, cmd_args) {
        Some(keys) => {
            ctx.out.array(keys.len());
            keys.iter().for_each(|&k| ctx.out.bulk(cmd_args[k]));
        }
        None if cmd.has(flags::NO_MANDATORY_KEYS) => ctx.out.array(0),
        None => return Err(errors::GETKEYS_INVALID_ARGS.into()),
    }
    Ok(())
}

pub fn help(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    help_reply(
        ctx.out,
        args[0],
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
        ],
    );
    Ok(())
}
