//! The routing plan of one request, from the shared command table: answered here, sent to the
//! owner of one slot, split by slot (the multi-key commands whose results merge), or sent to any
//! master (no keys). Everything else that spans slots gets Redis's CROSSSLOT error.

use crate::cluster::key_slot;
use crate::command::{self, flags, CommandSpec};
use crate::errors;

/// How the parts of a split command merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitKind {
    /// MGET: the values, back in key order.
    Values,
    /// MSET: OK when every part said OK.
    AllOk,
    /// DEL, UNLINK, EXISTS, TOUCH: counts summed.
    Sum,
}

#[derive(Debug)]
pub enum Plan {
    Local(&'static CommandSpec),
    Error(String),
    Slot(u16),
    AnyMaster,
    /// Per slot, in order of first appearance: the argument positions of its keys.
    Split(SplitKind, Vec<(u16, Vec<usize>)>),
}

fn split_kind(name: &str) -> Option<SplitKind> {
    Some(match name {
        "mget" => SplitKind::Values,
        "mset" => SplitKind::AllOk,
        "del" | "unlink" | "exists" | "touch" => SplitKind::Sum,
        _ => return None,
    })
}

fn is_local(name: &str) -> bool {
    matches!(
        name,
        "ping"
            | "echo"
            | "quit"
            | "select"
            | "hello"
            | "command"
            | "command|count"
            | "command|info"
            | "config|get"
            | "client|setname"
            | "client|getname"
            | "client|id"
            | "client|setinfo"
            | "info"
    )
}

/// Commands that change or hold connection state: on a connection shared by many clients they
/// would leak into other clients' requests. Transactions, blocking commands and pub/sub get
/// dedicated connections in the next step; until then they are refused with a clear error.
fn needs_own_connection(c: &CommandSpec) -> bool {
    if c.has(flags::BLOCKING) || c.has(flags::PUBSUB) && !c.name.starts_with("pubsub") && c.name != "publish" {
        return true;
    }
    let base = c.name.split('|').next().unwrap_or(c.name);
    matches!(
        base,
        "multi"
            | "exec"
            | "discard"
            | "watch"
            | "unwatch"
            | "monitor"
            | "asking"
            | "readonly"
            | "readwrite"
            | "auth"
            | "reset"
            | "sync"
            | "psync"
            | "replconf"
            | "client"
            | "wait"
            | "shutdown"
    )
}

pub fn plan(args: &[&[u8]]) -> Plan {
    match command::resolve(args) {
        Ok(spec) => plan_for(spec, args),
        Err(e) => Plan::Error(e),
    }
}

/// [`plan`] for a request whose command the caller has resolved already (the session needs the
/// spec too, for per-command statistics).
pub fn plan_for(spec: &'static CommandSpec, args: &[&[u8]]) -> Plan {
    if !spec.arity_ok(args.len()) {
        return Plan::Error(errors::wrong_arity(spec.name));
    }
    if is_local(spec.name) {
        return Plan::Local(spec);
    }
    if needs_own_connection(spec) {
        return Plan::Error(errors::proxy_unsupported(spec.name));
    }
    let mut first: Option<u16> = None;
    let mut cross = false;
    let valid = command::visit_key_positions(spec, args, |i| {
        let s = key_slot(args[i]);
        match first {
            None => first = Some(s),
            Some(f) if f != s => cross = true,
            _ => {}
        }
    });
    if !valid {
        // The node produces the command's own error for arguments that do not fit.
        return Plan::AnyMaster;
    }
    match (first, cross) {
        (None, _) => Plan::AnyMaster,
        (Some(s), false) => Plan::Slot(s),
        (Some(_), true) => match split_kind(spec.name) {
            Some(kind) => {
                let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
                command::visit_key_positions(spec, args, |i| {
                    let s = key_slot(args[i]);
                    match groups.iter_mut().find(|(g, _)| *g == s) {
                        Some((_, v)) => v.push(i),
                        None => groups.push((s, vec![i])),
                    }
                });
                Plan::Split(kind, groups)
            }
            None => Plan::Error(errors::CROSSSLOT.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Plan {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        plan(&a)
    }

    #[test]
    fn plans() {
        assert!(matches!(p(&["GET", "foo"]), Plan::Slot(12182)));
        assert!(matches!(p(&["ping"]), Plan::Local(_)));
        assert!(matches!(p(&["client", "setname", "x"]), Plan::Local(_)));
        assert!(matches!(p(&["dbsize"]), Plan::AnyMaster));
        assert!(matches!(p(&["mget", "{a}1", "{a}2"]), Plan::Slot(_)));
        match p(&["mset", "a", "1", "b", "2", "{a}c", "3"]) {
            Plan::Split(SplitKind::AllOk, g) => {
                assert_eq!(g, vec![(key_slot(b"a"), vec![1, 5]), (key_slot(b"b"), vec![3])])
            }
            other => panic!("{other:?}"),
        }
        match p(&["msetnx", "a", "1", "b", "2"]) {
            Plan::Error(e) => assert_eq!(e, errors::CROSSSLOT),
            other => panic!("{other:?}"),
        }
        match p(&["get"]) {
            Plan::Error(e) => assert_eq!(e, "ERR wrong number of arguments for 'get' command"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(p(&["nosuch"]), Plan::Error(_)));
        assert!(matches!(p(&["blpop", "a", "0"]), Plan::Error(_)));
        assert!(matches!(p(&["multi"]), Plan::Error(_)));
    }
}
