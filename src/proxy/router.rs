//! The routing plan of one request, from the shared command table: answered here, sent to the
//! owner of one slot, split by slot (the multi-key commands whose results merge), or sent to any
//! master (no keys). Everything else that spans slots gets Redis's CROSSSLOT error. A keyed
//! command flagged `readonly` in the table is a read: the read policy may send it to a replica.

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
    /// DEL, UNLINK, EXISTS, TOUCH, DBSIZE: counts summed.
    Sum,
    /// KEYS: every part's array, concatenated.
    Concat,
    /// RANDOMKEY: a random one of the parts' non-nil replies (nil when every master is empty).
    AnyValue,
}

/// Whether a keyed command may be served by a replica (flagged `readonly` in the command table)
/// or must go to the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    fn of(c: &CommandSpec) -> Access {
        if c.has(flags::READONLY) {
            Access::Read
        } else {
            Access::Write
        }
    }
}

#[derive(Debug)]
pub enum Plan {
    Local(&'static CommandSpec),
    Error(String),
    Slot(u16, Access),
    AnyMaster,
    /// Per slot, in order of first appearance: the argument positions of its keys.
    Split(SplitKind, Access, Vec<(u16, Vec<usize>)>),
    /// The same request to every master, the replies merged: what one Redis holding every key
    /// would answer (DBSIZE, KEYS, FLUSHALL, FLUSHDB).
    FanOut(SplitKind),
}

fn fan_out_kind(name: &str) -> Option<SplitKind> {
    Some(match name {
        "dbsize" => SplitKind::Sum,
        "keys" => SplitKind::Concat,
        "flushall" | "flushdb" => SplitKind::AllOk,
        "randomkey" => SplitKind::AnyValue,
        _ => return None,
    })
}

/// Commands that need more than one node and a merge the proxy does not do yet: sent to one
/// master they would answer wrongly without an error (SCAN's cursor belongs to one node).
fn not_yet(name: &str) -> bool {
    name == "scan"
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
            | "auth"
            | "command"
            | "command|count"
            | "command|info"
            | "config|get"
            | "client|setname"
            | "client|getname"
            | "client|id"
            | "client|info"
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
            | "reset"
            | "sync"
            | "psync"
            | "replconf"
            | "client"
            | "wait"
            | "shutdown"
    )
}

/// For a client that has not authenticated yet: whether this request gets NOAUTH. Unknown
/// commands and wrong arity keep their own errors (Redis checks those first); the commands Redis 7
/// flags `no_auth` (AUTH, HELLO, QUIT, RESET) go through.
pub fn refused_before_auth(spec: &CommandSpec, argc: usize) -> bool {
    spec.arity_ok(argc) && !spec.has(flags::NO_AUTH)
}

/// What the proxy does with a command, whatever its arguments: decided once per table entry (by
/// the string tests above) and looked up by the entry's id on every request.
#[derive(Debug, Clone, Copy)]
enum Class {
    Local,
    Refused,
    FanOut(SplitKind),
    Keyed { split: Option<SplitKind>, access: Access },
}

fn class(spec: &CommandSpec) -> Class {
    static CLASSES: std::sync::OnceLock<Vec<Class>> = std::sync::OnceLock::new();
    let classes = CLASSES.get_or_init(|| {
        let mut v = vec![Class::Refused; command::all().map(|c| c.id + 1).max().unwrap_or(0)];
        for c in command::all() {
            v[c.id] = if is_local(c.name) {
                Class::Local
            } else if needs_own_connection(c) || not_yet(c.name) {
                Class::Refused
            } else if let Some(kind) = fan_out_kind(c.name) {
                Class::FanOut(kind)
            } else {
                Class::Keyed { split: split_kind(c.name), access: Access::of(c) }
            };
        }
        v
    });
    classes.get(spec.id).copied().unwrap_or(Class::Refused)
}

/// The plan for a request whose command the caller has resolved (the session needs the spec
/// too, for NOAUTH and per-command statistics).
pub fn plan(spec: &'static CommandSpec, args: &[&[u8]]) -> Plan {
    if !spec.arity_ok(args.len()) {
        return Plan::Error(errors::wrong_arity(spec.name));
    }
    let (split, access) = match class(spec) {
        Class::Local => return Plan::Local(spec),
        Class::Refused => return Plan::Error(errors::proxy_unsupported(spec.name)),
        Class::FanOut(kind) => return Plan::FanOut(kind),
        Class::Keyed { split, access } => (split, access),
    };
    // MSET's keys are every other argument: an odd pair count would leave a split part short of
    // its value. Redis's own reply for it, before any routing.
    if split == Some(SplitKind::AllOk) && args.len().is_multiple_of(2) {
        return Plan::Error(errors::wrong_arity(spec.name));
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
        (Some(s), false) => Plan::Slot(s, access),
        (Some(_), true) => match split {
            Some(kind) => {
                let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
                // Slot -> group, so a request with many keys over many slots stays linear.
                let mut index: hashbrown::HashMap<u16, usize> = hashbrown::HashMap::new();
                command::visit_key_positions(spec, args, |i| {
                    let s = key_slot(args[i]);
                    let g = *index.entry(s).or_insert_with(|| {
                        groups.push((s, Vec::new()));
                        groups.len() - 1
                    });
                    groups[g].1.push(i);
                });
                Plan::Split(kind, access, groups)
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
        match command::resolve(&a) {
            Ok(spec) => plan(spec, &a),
            Err(e) => Plan::Error(e),
        }
    }

    #[test]
    fn plans() {
        assert!(matches!(p(&["GET", "foo"]), Plan::Slot(12182, Access::Read)));
        assert!(matches!(p(&["SET", "foo", "1"]), Plan::Slot(12182, Access::Write)));
        // The table's flag decides, not the name: GETEX and GETDEL change the key.
        assert!(matches!(p(&["GETEX", "foo"]), Plan::Slot(12182, Access::Write)));
        assert!(matches!(p(&["GETDEL", "foo"]), Plan::Slot(12182, Access::Write)));
        assert!(matches!(p(&["ZRANGE", "foo", "0", "-1"]), Plan::Slot(12182, Access::Read)));
        assert!(matches!(p(&["OBJECT", "ENCODING", "foo"]), Plan::Slot(12182, Access::Read)));
        assert!(matches!(p(&["ping"]), Plan::Local(_)));
        assert!(matches!(p(&["client", "setname", "x"]), Plan::Local(_)));
        assert!(matches!(p(&["dbsize"]), Plan::FanOut(SplitKind::Sum)));
        assert!(matches!(p(&["keys", "*"]), Plan::FanOut(SplitKind::Concat)));
        assert!(matches!(p(&["flushall", "sync"]), Plan::FanOut(SplitKind::AllOk)));
        assert!(matches!(p(&["time"]), Plan::AnyMaster));
        assert!(matches!(p(&["randomkey"]), Plan::FanOut(SplitKind::AnyValue)));
        assert!(matches!(p(&["scan", "0"]), Plan::Error(_)));
        // An odd pair count: Redis's arity error whether or not the keys share a slot.
        for args in [&["mset", "a", "1", "b"][..], &["mset", "{t}a", "1", "{t}b"]] {
            match p(args) {
                Plan::Error(e) => assert_eq!(e, "ERR wrong number of arguments for 'mset' command"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(p(&["mget", "{a}1", "{a}2"]), Plan::Slot(_, Access::Read)));
        assert!(matches!(p(&["mget", "a", "b"]), Plan::Split(SplitKind::Values, Access::Read, _)));
        assert!(matches!(p(&["exists", "a", "b"]), Plan::Split(SplitKind::Sum, Access::Read, _)));
        assert!(matches!(p(&["del", "a", "b"]), Plan::Split(SplitKind::Sum, Access::Write, _)));
        match p(&["mset", "a", "1", "b", "2", "{a}c", "3"]) {
            Plan::Split(SplitKind::AllOk, Access::Write, g) => {
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
        assert!(matches!(p(&["auth", "a", "b"]), Plan::Local(_)));
    }

    #[test]
    fn before_auth() {
        let refused = |args: &[&str]| {
            let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
            command::resolve(&a).is_ok_and(|spec| refused_before_auth(spec, a.len()))
        };
        for ok in [
            &["auth", "x"][..],
            &["HELLO", "3"],
            &["hello"],
            &["quit"],
            &["reset"],
            &["nosuch"],
            &["get"],
            &["client", "nosuch"],
        ] {
            assert!(!refused(ok), "{ok:?}");
        }
        for no in [&["get", "a"][..], &["ping"], &["client", "id"], &["command"], &["select", "0"], &["info"]] {
            assert!(refused(no), "{no:?}");
        }
    }
}
