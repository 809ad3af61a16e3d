//! CLIENT subcommands: SETNAME GETNAME ID LIST KILL INFO SETINFO NO-EVICT HELP.

use super::server::{container, help_reply, validate_client_name};
use super::util::is;
use super::{CmdError, CmdResult, Ctx, Handler};
use crate::errors;
use crate::node::client::Client;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("client", container),
    ("client|setname", setname),
    ("client|getname", getname),
    ("client|id", id),
    ("client|list", list),
    ("client|kill", kill),
    ("client|info", info),
    ("client|setinfo", setinfo),
    ("client|no-evict", no_evict),
    ("client|help", help),
];

/// Client classes of CLIENT LIST TYPE / CLIENT KILL TYPE. This server has no replication, so
/// only normal and pub/sub clients exist; the other names are valid and match nobody.
#[derive(Clone, Copy, PartialEq)]
enum ClientType {
    Normal,
    Replica,
    PubSub,
    Master,
}

fn client_type(name: &[u8]) -> Result<ClientType, CmdError> {
    if is(name, "normal") {
        Ok(ClientType::Normal)
    } else if is(name, "slave") || is(name, "replica") {
        Ok(ClientType::Replica)
    } else if is(name, "pubsub") {
        Ok(ClientType::PubSub)
    } else if is(name, "master") {
        Ok(ClientType::Master)
    } else {
        Err(errors::unknown_client_type(name).into())
    }
}

/// Redis's `getClientType`: a client with subscriptions is a pub/sub client; MONITOR clients are
/// normal ones.
fn type_of(c: &Client) -> ClientType {
    if c.sub_count() > 0 {
        ClientType::PubSub
    } else {
        ClientType::Normal
    }
}

fn setname(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    validate_client_name(args[2])?;
    ctx.client.name = if args[2].is_empty() { None } else { Some(args[2].to_vec()) };
    ctx.out.ok();
    Ok(())
}

fn getname(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    match &ctx.client.name {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
    Ok(())
}

fn id(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.out.int(ctx.client.id as i64);
    Ok(())
}

/// CLIENT LIST [TYPE type] | [ID id ...]: one line per client, in connection order.
fn list(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut text = String::new();
    if args.len() == 4 && is(args[2], "type") {
        let t = client_type(args[3])?;
        ctx.srv.for_each_client(ctx.client, |c| {
            if type_of(c) == t {
                text.push_str(&c.info_line());
                text.push('\n');
            }
        });
    } else if args.len() > 3 && is(args[2], "id") {
        let mut ids = Vec::with_capacity(args.len() - 3);
        for a in &args[3..] {
            ids.push(crate::resp::request::parse_i64(a).ok_or(CmdError::from(errors::INVALID_CLIENT_ID))?);
        }
        // Redis answers in the order asked, repeats included.
        for id in ids {
            let line = if id == ctx.client.id as i64 {
                Some(ctx.client.info_line())
            } else {
                u64::try_from(id)
                    .ok()
                    .and_then(|id| ctx.srv.clients.get(&id))
                    .and_then(|c| c.try_borrow().ok().map(|c| c.info_line()))
            };
            if let Some(l) = line {
                text.push_str(&l);
                text.push('\n');
            }
        }
    } else if args.len() != 2 {
        return Err(errors::SYNTAX.into());
    } else {
        ctx.srv.for_each_client(ctx.client, |c| {
            text.push_str(&c.info_line());
            text.push('\n');
        });
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn info(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let mut line = ctx.client.info_line();
    line.push('\n');
    ctx.out.verbatim(line.as_bytes());
    Ok(())
}

/// CLIENT KILL ip:port (old form: kills one client, may be the caller, `+OK` or an error), or
/// CLIENT KILL [ID id] [TYPE type] [ADDR ip:port] [LADDR ip:port] [USER name] [SKIPME yes|no]
/// (every matching client, the caller skipped by default; replies the number killed).
fn kill(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut addr: Option<&[u8]> = None;
    let mut laddr: Option<&[u8]> = None;
    let mut ctype: Option<ClientType> = None;
    let mut id: Option<u64> = None;
    let old_form = args.len() == 3;
    let mut skipme = !old_form;
    if old_form {
        addr = Some(args[2]);
    } else {
        let mut i = 2;
        while i < args.len() {
            let opt = args[i];
            let Some(&val) = args.get(i + 1) else {
                return Err(errors::SYNTAX.into());
            };
            if is(opt, "id") {
                let v = crate::resp::request::parse_i64(val)
                    .filter(|v| *v >= 1)
                    .ok_or(CmdError::from(errors::CLIENT_ID_NOT_POSITIVE))?;
                id = Some(v as u64);
            } else if is(opt, "type") {
                ctype = Some(client_type(val)?);
            } else if is(opt, "addr") {
                addr = Some(val);
            } else if is(opt, "laddr") {
                laddr = Some(val);
            } else if is(opt, "user") {
                // The only user is "default", and every client is authenticated as it.
                if val != b"default" {
                    return Err(errors::no_such_user(val).into());
                }
            } else if is(opt, "skipme") {
                if is(val, "yes") {
                    skipme = true;
                } else if is(val, "no") {
                    skipme = false;
                } else {
                    return Err(errors::SYNTAX.into());
                }
            } else {
                return Err(errors::SYNTAX.into());
            }
            i += 2;
        }
    }
    let matches = |c: &Client| {
        addr.is_none_or(|a| a == c.addr.as_bytes())
            && laddr.is_none_or(|a| a == c.laddr.as_bytes())
            && ctype.is_none_or(|t| t == type_of(c))
            && id.is_none_or(|id| id == c.id)
    };
    let me = ctx.client.id;
    let mut victims = Vec::new();
    let mut kill_self = false;
    ctx.srv.for_each_client(ctx.client, |c| {
        if !matches(c) {
            return;
        }
        if c.id == me {
            if !skipme {
                kill_self = true;
            }
        } else {
            victims.push(c.shared.clone());
        }
    });
    let killed = victims.len() + kill_self as usize;
    if old_form {
        if killed == 0 {
            return Err(errors::NO_SUCH_CLIENT.into());
        }
        ctx.out.ok();
    } else {
        ctx.out.int(killed as i64);
    }
    for v in victims {
        v.kill();
    }
    if kill_self {
        ctx.client.close_after_reply = true;
    }
    Ok(())
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2): the client library's name and version.
fn setinfo(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (attr, val) = (args[2], args[3]);
    let lib_name = if is(attr, "lib-name") {
        true
    } else if is(attr, "lib-ver") {
        false
    } else {
        return Err(errors::client_setinfo_option(attr).into());
    };
    if val.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(errors::client_setinfo_chars(attr).into());
    }
    let v = if val.is_empty() { None } else { Some(val.to_vec()) };
    if lib_name {
        ctx.client.lib_name = v;
    } else {
        ctx.client.lib_ver = v;
    }
    ctx.out.ok();
    Ok(())
}

fn no_evict(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if is(args[2], "on") {
        ctx.client.no_evict = true;
    } else if is(args[2], "off") {
        ctx.client.no_evict = false;
    } else {
        return Err(errors::SYNTAX.into());
    }
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    help_reply(
        ctx.out,
        args[0],
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
        ],
    );
    Ok(())
}
