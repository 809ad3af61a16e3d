//! The slot check every command passes in cluster mode: Redis 7.0's `getNodeByQuery` and the
//! cluster part of `processCommand`, plus `clusterRedirectBlockedClientIfNeeded` for clients
//! blocked on keys whose slot moved away.
//!
//! A command runs here only when all its keys hash to one slot this node may serve for it: its own
//! slot, a slot it imports when the client sent ASKING, or (READONLY clients of a replica) a slot
//! of its master for a read. Otherwise the client gets Redis's redirection or error, byte for
//! byte: `MOVED`, `ASK`, `CROSSSLOT`, `TRYAGAIN`, `CLUSTERDOWN`. A transaction is checked command
//! by command as it is queued, and again as a whole at EXEC. `docs/moved-ask.md` says how a client
//! should react to each reply.
//!
//! The check costs one key-spec walk and one slot lookup per key; keys are only looked up in the
//! keyspace while their slot is migrating or importing, and nothing is allocated unless a command
//! has more than 16 keys or is an EXEC.

use super::{ClusterState, NodeId};
use crate::cluster::key_slot;
use crate::command::{self, flags, CommandSpec};
use crate::errors;
use crate::node::client::{Client, OwnedCommand};
use crate::node::db::Db;
use crate::node::server::{unix_ms, Server};
use crate::resp::Reply;
use smallvec::SmallVec;
use std::borrow::Cow;

/// Why a command does not run on this node (Redis's `CLUSTER_REDIR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirect {
    /// Keys in more than one slot.
    CrossSlot,
    /// Several keys of a slot being moved, some of them here and some not (`CLUSTER_REDIR_UNSTABLE`).
    TryAgain,
    /// `cluster_state:fail`.
    Down,
    /// `cluster_state:fail` with cluster-allow-reads-when-down, for a write.
    DownReadOnly,
    /// The key's slot has no owner.
    DownUnbound,
    /// The slot belongs to another node.
    Moved { slot: u16, to: NodeId },
    /// The slot is migrating to another node and the keys are not (all) here any more.
    Ask { slot: u16, to: NodeId },
}

impl Redirect {
    /// The error reply, as Redis's `clusterRedirectClient` writes it.
    pub fn message(&self, st: &ClusterState, config: &crate::node::config::Config) -> Cow<'static, str> {
        let (kind, slot, to) = match *self {
            Redirect::CrossSlot => return errors::CROSSSLOT.into(),
            Redirect::TryAgain => return errors::TRYAGAIN.into(),
            Redirect::Down => return errors::CLUSTERDOWN.into(),
            Redirect::DownReadOnly => return errors::CLUSTERDOWN_READ_ONLY.into(),
            Redirect::DownUnbound => return errors::CLUSTERDOWN_UNBOUND.into(),
            Redirect::Moved { slot, to } => ("MOVED", slot, to),
            Redirect::Ask { slot, to } => ("ASK", slot, to),
        };
        let (endpoint, port) = match st.node(&to) {
            Some(n) => (preferred_endpoint(n, config), n.port),
            None => ("?", 0),
        };
        format!("{kind} {slot} {endpoint}:{port}").into()
    }
}

/// The address a redirection names (`getPreferredEndpoint`): the IP unless
/// cluster-preferred-endpoint-type says hostname ("?" when the node announced none) or
/// unknown-endpoint (empty: "use the address you reached me on").
fn preferred_endpoint<'a>(n: &'a super::ClusterNode, config: &crate::node::config::Config) -> &'a str {
    match config.get("cluster-preferred-endpoint-type") {
        Some("hostname") if n.hostname.is_empty() => "?",
        Some("hostname") => &n.hostname,
        Some("unknown-endpoint") => "",
        _ => &n.ip,
    }
}

/// What the check knows about one request besides the cluster state and the keyspace.
pub struct Query<'a, 'k> {
    /// The command being processed: EXEC for a whole transaction.
    pub cmd: &'static CommandSpec,
    pub args: &'a [&'k [u8]],
    /// For EXEC inside MULTI: the queued commands, checked together.
    pub queued: Option<&'k [OwnedCommand]>,
    /// The client sent ASKING (or the command acts as if it had, like RESTORE-ASKING).
    pub asking: bool,
    /// The client sent READONLY.
    pub readonly: bool,
    /// cluster-allow-reads-when-down.
    pub allow_reads_when_down: bool,
}

/// The first pass of `getNodeByQuery`: every key must hash to the first key's slot; while that
/// slot is migrating or importing, count which keys are here.
struct Scan<'k> {
    first: Option<&'k [u8]>,
    slot: u16,
    owner: Option<NodeId>,
    migrating: bool,
    importing: bool,
    multiple_keys: bool,
    missing: usize,
    existing: usize,
}

impl<'k> Scan<'k> {
    fn new() -> Self {
        Scan {
            first: None,
            slot: 0,
            owner: None,
            migrating: false,
            importing: false,
            multiple_keys: false,
            missing: 0,
            existing: 0,
        }
    }

    fn command(
        &mut self,
        st: &ClusterState,
        db: &Db,
        now: i64,
        cmd: &CommandSpec,
        args: &[&'k [u8]],
    ) -> Result<(), Redirect> {
        let mut positions: SmallVec<[usize; 16]> = SmallVec::new();
        key_positions(cmd, args, &mut positions);
        for &p in &positions {
            if let Some(&key) = args.get(p) {
                self.key(st, db, now, key)?;
            }
        }
        Ok(())
    }

    fn key(&mut self, st: &ClusterState, db: &Db, now: i64, key: &'k [u8]) -> Result<(), Redirect> {
        let slot = key_slot(key);
        match self.first {
            None => {
                self.first = Some(key);
                self.slot = slot;
                // An unassigned slot means the cluster is down, but the state may not have been
                // recomputed yet: say so now rather than run the command.
                let Some(owner) = st.slots[slot as usize] else {
                    return Err(Redirect::DownUnbound);
                };
                self.owner = Some(owner);
                if owner == st.myself && st.migrating.contains_key(&slot) {
                    self.migrating = true;
                } else if st.importing.contains_key(&slot) {
                    self.importing = true;
                }
            }
            Some(first) => {
                if first != key {
                    if slot != self.slot {
                        return Err(Redirect::CrossSlot);
                    }
                    self.multiple_keys = true;
                }
            }
        }
        if self.migrating || self.importing {
            // Redis looks the key up without touching it; an expired key counts as missing.
            if db.holds(key) && !db.is_stale(key, now) {
                self.existing += 1;
            } else {
                self.missing += 1;
            }
        }
        Ok(())
    }
}

/// The keys of a request, as `getKeysFromCommand` finds them: the key specs, except for MIGRATE,
/// whose own key finder (`migrateGetKeys`) skips the empty key argument of the `KEYS` form.
/// Arguments that do not fit the specs have no keys (the command reports its own error).
fn key_positions(cmd: &CommandSpec, args: &[&[u8]], out: &mut SmallVec<[usize; 16]>) {
    if cmd.name == "migrate" {
        let mut first = 3;
        let mut num = 1;
        if args.len() > 6 {
            if let Some(i) = (6..args.len()).find(|&i| args[i].eq_ignore_ascii_case(b"keys") && args[3].is_empty()) {
                first = i + 1;
                num = args.len() - first;
            }
        }
        out.extend(first..(first + num).min(args.len()));
        return;
    }
    if !command::visit_key_positions(cmd, args, |i| out.push(i)) {
        out.clear();
    }
}

/// Redis's `getNodeByQuery`: Ok when this node serves the request, else why not.
pub fn get_node_by_query(st: &ClusterState, db: &Db, now: i64, q: &Query) -> Result<(), Redirect> {
    let mut scan = Scan::new();
    // A transaction is judged on every queued command at once; any other request on itself.
    let mut write_in_multi = false;
    match q.queued {
        Some(queue) => {
            for c in queue {
                let argv: SmallVec<[&[u8]; 8]> = c.args.iter().map(|a| a.as_slice()).collect();
                if argv.is_empty() {
                    continue;
                }
                let Ok(spec) = command::resolve(&argv) else { continue };
                write_in_multi |= spec.has(flags::WRITE);
                scan.command(st, db, now, spec, &argv)?;
            }
        }
        None => scan.command(st, db, now, q.cmd, q.args)?,
    }
    // No key at all: any node may serve it.
    let Some(owner) = scan.owner else { return Ok(()) };
    if !st.ok {
        if !q.allow_reads_when_down {
            return Err(Redirect::Down);
        }
        if q.cmd.has(flags::WRITE) {
            return Err(Redirect::DownReadOnly);
        }
    }
    let slot = scan.slot;
    // MIGRATE works on an open slot whoever owns it: it is what moves the keys.
    if (scan.migrating || scan.importing) && q.cmd.name == "migrate" {
        return Ok(());
    }
    if scan.migrating && scan.missing > 0 {
        if scan.existing > 0 {
            return Err(Redirect::TryAgain);
        }
        if let Some(to) = st.migrating.get(&slot) {
            return Err(Redirect::Ask { slot, to: *to });
        }
    }
    if scan.importing && (q.asking || q.cmd.has(flags::ASKING)) {
        if scan.multiple_keys && scan.missing > 0 {
            return Err(Redirect::TryAgain);
        }
        return Ok(());
    }
    // A READONLY client of a replica reads its master's slots here.
    let is_write = q.cmd.has(flags::WRITE) || write_in_multi;
    if q.readonly && !is_write {
        let me = st.me();
        if me.is_replica() && me.master == Some(owner) {
            return Ok(());
        }
    }
    if owner != st.myself {
        return Err(Redirect::Moved { slot, to: owner });
    }
    Ok(())
}

/// The check `processCommand` makes before running (or queueing) a command in cluster mode.
/// Commands without keys pass at once (PUBLISH, PING, CLUSTER ...); so does EXEC outside MULTI,
/// which only reports its own error. Redis also skips the check for its master's replication
/// link (`CLIENT_MASTER`): the replication code must do the same once it lands.
pub fn check(srv: &Server, client: &Client, cmd: &'static CommandSpec, args: &[&[u8]]) -> Result<(), Redirect> {
    let Some(st) = srv.cluster.as_deref() else { return Ok(()) };
    let is_exec = cmd.key_specs.is_empty() && !cmd.has(flags::MOVABLEKEYS) && cmd.name == "exec";
    if cmd.key_specs.is_empty() && !cmd.has(flags::MOVABLEKEYS) && !is_exec {
        return Ok(());
    }
    let queued = if is_exec {
        match client.multi.as_deref() {
            Some(q) => Some(q),
            None => return Ok(()),
        }
    } else {
        None
    };
    let q = Query {
        cmd,
        args,
        queued,
        asking: client.asking,
        readonly: client.readonly,
        // Only read when the cluster is down, and the clock only while a slot is open: the common
        // case costs neither a config lookup nor a clock read.
        allow_reads_when_down: !st.ok && srv.config.get("cluster-allow-reads-when-down") == Some("yes"),
    };
    let open_slots = !st.migrating.is_empty() || !st.importing.is_empty();
    get_node_by_query(st, &srv.dbs[0], if open_slots { unix_ms() } else { 0 }, &q)
}

/// Redis's `clusterRedirectBlockedClientIfNeeded`, for every blocked client: one blocked on a
/// slot this node no longer serves (nor imports) gets MOVED, or "Hash slot not served" if nobody
/// does, and every blocked client gets CLUSTERDOWN while the cluster is down (a write that could
/// serve it may never come). Called from the cron and after the cluster state changed.
pub fn redirect_blocked(srv: &mut Server) {
    let Some(st) = srv.cluster.as_deref() else { return };
    if srv.blocking.waiters.is_empty() {
        return;
    }
    let mut ids: Vec<u64> = srv.blocking.waiters.values().flatten().copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut redirects: Vec<(u64, Redirect)> = Vec::new();
    for id in ids {
        let Some(cref) = srv.clients.get(&id) else { continue };
        // A parked client is not borrowed; if it somehow is, the next tick looks again.
        let Ok(client) = cref.try_borrow() else { continue };
        let Some(blocked) = client.blocked.as_ref() else { continue };
        if let Some(r) = blocked_redirect(st, &client, blocked) {
            redirects.push((id, r));
        }
    }
    for (id, r) in redirects {
        let text = match srv.cluster.as_deref() {
            Some(st) => r.message(st, &srv.config),
            None => return,
        };
        let Some(cref) = srv.clients.get(&id).cloned() else { continue };
        let Ok(mut client) = cref.try_borrow_mut() else { continue };
        crate::node::blocking::unpark(srv, &client);
        client.blocked = None;
        let mut out = Reply::new(client.resp3);
        out.error(&text);
        crate::node::cmd::count_error(srv, &text);
        client.shared.send(&out.buf);
    }
}

fn blocked_redirect(st: &ClusterState, client: &Client, blocked: &crate::node::client::Blocked) -> Option<Redirect> {
    if !st.ok {
        return Some(Redirect::Down);
    }
    // Every key of a blocking command is in one slot (the check saw to it): the first tells.
    let slot = key_slot(blocked.keys.first()?);
    let mut owner = st.slots[slot as usize];
    let me = st.me();
    if client.readonly && me.is_replica() && me.master.is_some() && me.master == owner {
        let argv = blocked.command.argv();
        let write = argv.is_empty() || command::resolve(&argv).map_or(true, |c| c.has(flags::WRITE));
        if !write {
            owner = Some(st.myself);
        }
    }
    if owner == Some(st.myself) || st.importing.contains_key(&slot) {
        return None;
    }
    Some(match owner {
        None => Redirect::DownUnbound,
        Some(to) => Redirect::Moved { slot, to },
    })
}

#[cfg(test)]
mod tests {
    use super::super::{nflags, ClusterNode};
    use super::*;
    use crate::node::types::Value;
    use std::path::PathBuf;

    const A: NodeId = *b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: NodeId = *b"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    // Slots of the keys used below (checked in `slots_of_test_keys`).
    const BAR: u16 = 5061;
    const FOO: u16 = 12182;
    const B_KEY: u16 = 3300;

    /// This node (A, 127.0.0.1:7000) serves 0-8191, B (127.0.0.1:7001) serves 8192-16383.
    fn two_nodes() -> ClusterState {
        let mut st = ClusterState::new(A, PathBuf::from("nodes.conf"), 0);
        st.me_mut().ip = "127.0.0.1".into();
        st.me_mut().port = 7000;
        let mut b = ClusterNode::new(B, nflags::MASTER, 0);
        b.ip = "127.0.0.1".into();
        b.port = 7001;
        st.add_node(b);
        for s in 0..8192 {
            st.add_slot(s, A);
        }
        for s in 8192..16384 {
            st.add_slot(s, B);
        }
        st.ok = true;
        st
    }

    struct Req {
        asking: bool,
        readonly: bool,
        reads_when_down: bool,
        queued: Option<Vec<OwnedCommand>>,
    }

    fn req() -> Req {
        Req { asking: false, readonly: false, reads_when_down: false, queued: None }
    }

    impl Req {
        fn run(&self, st: &ClusterState, db: &Db, args: &[&str]) -> Result<(), Redirect> {
            let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            let cmd = command::resolve(&argv).expect("known command");
            let q = Query {
                cmd,
                args: &argv,
                queued: self.queued.as_deref(),
                asking: self.asking,
                readonly: self.readonly,
                allow_reads_when_down: self.reads_when_down,
            };
            get_node_by_query(st, db, 1000, &q)
        }
    }

    fn db_with(keys: &[&str]) -> Db {
        let mut db = Db::new();
        for k in keys {
            db.set(k.as_bytes(), Value::Str(b"v".to_vec()), 0);
        }
        db
    }

    fn queue(cmds: &[&[&str]]) -> Option<Vec<OwnedCommand>> {
        Some(cmds.iter().map(|c| OwnedCommand::new(&c.iter().map(|a| a.as_bytes()).collect::<Vec<_>>())).collect())
    }

    #[test]
    fn slots_of_test_keys() {
        assert_eq!(key_slot(b"bar"), BAR);
        assert_eq!(key_slot(b"{bar}2"), BAR);
        assert_eq!(key_slot(b"foo"), FOO);
        assert_eq!(key_slot(b"b"), B_KEY);
    }

    #[test]
    fn local_keys_run_and_others_are_moved() {
        let st = two_nodes();
        let db = Db::new();
        assert_eq!(req().run(&st, &db, &["get", "bar"]), Ok(()));
        let r = req().run(&st, &db, &["get", "foo"]);
        assert_eq!(r, Err(Redirect::Moved { slot: FOO, to: B }));
        let cfg = crate::node::config::Config::default();
        assert_eq!(r.unwrap_err().message(&st, &cfg), "MOVED 12182 127.0.0.1:7001");
        // Subcommands find their keys too.
        assert_eq!(req().run(&st, &db, &["object", "encoding", "foo"]), Err(Redirect::Moved { slot: FOO, to: B }));
    }

    #[test]
    fn keyless_commands_always_run() {
        let mut st = two_nodes();
        st.ok = false;
        let db = Db::new();
        for args in [&["ping"][..], &["publish", "foo", "x"], &["dbsize"], &["cluster", "info"]] {
            assert_eq!(req().run(&st, &db, args), Ok(()), "{args:?}");
        }
    }

    #[test]
    fn keys_of_two_slots_are_crossslot() {
        let st = two_nodes();
        let db = Db::new();
        assert_eq!(req().run(&st, &db, &["mget", "bar", "b"]), Err(Redirect::CrossSlot));
        assert_eq!(req().run(&st, &db, &["mget", "bar", "foo"]), Err(Redirect::CrossSlot));
        assert_eq!(req().run(&st, &db, &["mset", "{bar}1", "x", "{bar}2", "y"]), Ok(()));
        assert_eq!(req().run(&st, &db, &["rpoplpush", "bar", "bar"]), Ok(()));
        // `{}` is not a tag: the whole key is hashed, so `{}{a}` and `{a}` differ.
        assert_ne!(key_slot(b"{}{a}"), key_slot(b"{a}"));
        assert_eq!(req().run(&st, &db, &["mget", "{}{a}", "{a}"]), Err(Redirect::CrossSlot));
        // The first key decides: a remote first key with a local second one is still CROSSSLOT.
        assert_eq!(req().run(&st, &db, &["del", "foo", "bar"]), Err(Redirect::CrossSlot));
        // Keynum commands: ZUNIONSTORE's destination and sources.
        assert_eq!(req().run(&st, &db, &["zunionstore", "{bar}d", "2", "bar", "{bar}x"]), Ok(()));
        assert_eq!(req().run(&st, &db, &["zunionstore", "b", "2", "bar", "{bar}x"]), Err(Redirect::CrossSlot));
        // Arguments that do not fit the key specs give no keys: the command reports its own error.
        assert_eq!(req().run(&st, &db, &["zunionstore", "foo", "0", "bar"]), Ok(()));
    }

    #[test]
    fn migrating_slot_asks_for_missing_keys() {
        let mut st = two_nodes();
        st.migrating.insert(BAR, B);
        let db = db_with(&["{bar}1"]);
        let ask = Err(Redirect::Ask { slot: BAR, to: B });
        assert_eq!(req().run(&st, &db, &["get", "bar"]), ask);
        assert_eq!(req().run(&st, &db, &["set", "bar", "1"]), ask);
        assert_eq!(req().run(&st, &db, &["get", "{bar}1"]), Ok(()));
        assert_eq!(req().run(&st, &db, &["mget", "{bar}1", "{bar}1"]), Ok(()));
        assert_eq!(req().run(&st, &db, &["mget", "{bar}2", "{bar}3"]), ask);
        // Some keys here, some gone: nobody can serve it until the move ends.
        assert_eq!(req().run(&st, &db, &["mget", "{bar}1", "{bar}2"]), Err(Redirect::TryAgain));
        let cfg = crate::node::config::Config::default();
        assert_eq!(Redirect::Ask { slot: BAR, to: B }.message(&st, &cfg), "ASK 5061 127.0.0.1:7001");
        // Other slots are not affected.
        assert_eq!(req().run(&st, &db, &["get", "b"]), Ok(()));
    }

    #[test]
    fn expired_keys_count_as_missing() {
        let mut st = two_nodes();
        st.migrating.insert(BAR, B);
        let mut db = db_with(&["bar"]);
        db.set_expire(b"bar", 500);
        assert_eq!(req().run(&st, &db, &["get", "bar"]), Err(Redirect::Ask { slot: BAR, to: B }));
    }

    #[test]
    fn importing_slot_needs_asking() {
        let mut st = two_nodes();
        st.importing.insert(FOO, B);
        let db = db_with(&["{foo}1"]);
        let moved = Err(Redirect::Moved { slot: FOO, to: B });
        assert_eq!(req().run(&st, &db, &["get", "foo"]), moved);
        let asking = Req { asking: true, ..req() };
        assert_eq!(asking.run(&st, &db, &["get", "foo"]), Ok(()));
        assert_eq!(asking.run(&st, &db, &["set", "foo", "1"]), Ok(()));
        assert_eq!(asking.run(&st, &db, &["mget", "foo", "foo"]), Ok(()));
        assert_eq!(asking.run(&st, &db, &["mget", "{foo}1", "{foo}1"]), Ok(()));
        assert_eq!(asking.run(&st, &db, &["mget", "foo", "{foo}2"]), Err(Redirect::TryAgain));
        assert_eq!(asking.run(&st, &db, &["mget", "{foo}1", "foo"]), Err(Redirect::TryAgain));
        // RESTORE-ASKING acts as if ASKING came first.
        assert_eq!(req().run(&st, &db, &["restore-asking", "foo", "0", "x"]), Ok(()));
        assert_eq!(req().run(&st, &db, &["restore", "foo", "0", "x"]), moved);
        // ASKING does not open slots that are not imported.
        assert_eq!(asking.run(&st, &db, &["get", "y"]), Err(Redirect::Moved { slot: key_slot(b"y"), to: B }));
    }

    #[test]
    fn migrate_runs_on_open_slots() {
        let mut st = two_nodes();
        st.migrating.insert(BAR, B);
        let db = Db::new();
        let m = |keys: &[&str]| {
            let mut a = vec!["migrate", "127.0.0.1", "7001", "", "0", "1000", "KEYS"];
            a.extend_from_slice(keys);
            req().run(&st, &db, &a)
        };
        // The empty key argument of the KEYS form is not a key.
        assert_eq!(m(&["bar", "{bar}2"]), Ok(()));
        assert_eq!(m(&["bar", "b"]), Err(Redirect::CrossSlot));
        assert_eq!(req().run(&st, &db, &["migrate", "127.0.0.1", "7001", "bar", "0", "1000"]), Ok(()));
        assert_eq!(
            req().run(&st, &db, &["migrate", "127.0.0.1", "7000", "foo", "0", "1000"]),
            Err(Redirect::Moved { slot: FOO, to: B })
        );
    }

    #[test]
    fn cluster_down() {
        let mut st = two_nodes();
        let db = Db::new();
        st.del_slot(B_KEY);
        // An unassigned slot is reported even before the state turns fail.
        assert_eq!(req().run(&st, &db, &["get", "b"]), Err(Redirect::DownUnbound));
        st.ok = false;
        assert_eq!(req().run(&st, &db, &["get", "b"]), Err(Redirect::DownUnbound));
        assert_eq!(req().run(&st, &db, &["get", "bar"]), Err(Redirect::Down));
        assert_eq!(req().run(&st, &db, &["get", "foo"]), Err(Redirect::Down));
        let reads = Req { reads_when_down: true, ..req() };
        assert_eq!(reads.run(&st, &db, &["get", "bar"]), Ok(()));
        assert_eq!(reads.run(&st, &db, &["get", "foo"]), Err(Redirect::Moved { slot: FOO, to: B }));
        assert_eq!(reads.run(&st, &db, &["set", "bar", "1"]), Err(Redirect::DownReadOnly));
        let cfg = crate::node::config::Config::default();
        assert_eq!(Redirect::DownUnbound.message(&st, &cfg), "CLUSTERDOWN Hash slot not served");
        assert_eq!(Redirect::Down.message(&st, &cfg), "CLUSTERDOWN The cluster is down");
    }

    #[test]
    fn exec_checks_the_whole_transaction() {
        let st = two_nodes();
        let db = Db::new();
        let txn = |cmds: &[&[&str]]| Req { queued: queue(cmds), ..req() }.run(&st, &db, &["exec"]);
        assert_eq!(txn(&[&["set", "bar", "1"], &["get", "{bar}x"]]), Ok(()));
        assert_eq!(txn(&[&["set", "bar", "1"], &["set", "b", "1"]]), Err(Redirect::CrossSlot));
        assert_eq!(txn(&[&["ping"], &["get", "foo"]]), Err(Redirect::Moved { slot: FOO, to: B }));
        assert_eq!(txn(&[]), Ok(()));
        assert_eq!(txn(&[&["ping"]]), Ok(()));
    }

    #[test]
    fn readonly_replica_serves_reads_of_its_master() {
        let mut st = two_nodes();
        {
            let me = st.me_mut();
            me.flags = nflags::MYSELF | nflags::SLAVE;
            me.master = Some(B);
        }
        for s in 0..8192 {
            st.set_slot_owner(s, B);
        }
        let db = Db::new();
        let moved = Err(Redirect::Moved { slot: BAR, to: B });
        assert_eq!(req().run(&st, &db, &["get", "bar"]), moved);
        let ro = Req { readonly: true, ..req() };
        assert_eq!(ro.run(&st, &db, &["get", "bar"]), Ok(()));
        assert_eq!(ro.run(&st, &db, &["set", "bar", "1"]), moved);
        let ro_txn = |cmds: &[&[&str]]| Req { readonly: true, queued: queue(cmds), ..req() }.run(&st, &db, &["exec"]);
        assert_eq!(ro_txn(&[&["get", "bar"]]), Ok(()));
        assert_eq!(ro_txn(&[&["get", "bar"], &["set", "bar", "1"]]), moved);
    }

    fn blocked_on(key: &str, cmd: &[&str]) -> (Client, crate::node::client::Blocked) {
        let client = Client::new(1, "127.0.0.1:1".into(), "127.0.0.1:2".into());
        let argv: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        let blocked = crate::node::client::Blocked {
            db: 0,
            keys: vec![key.as_bytes().into()],
            deadline: None,
            command: OwnedCommand::new(&argv),
            on_timeout: crate::node::client::TimeoutReply::NullArray,
        };
        (client, blocked)
    }

    #[test]
    fn blocked_clients_follow_their_slot() {
        let mut st = two_nodes();
        let (client, blocked) = blocked_on("bar", &["blpop", "bar", "0"]);
        assert_eq!(blocked_redirect(&st, &client, &blocked), None);
        st.set_slot_owner(BAR, B);
        assert_eq!(blocked_redirect(&st, &client, &blocked), Some(Redirect::Moved { slot: BAR, to: B }));
        // A slot being imported keeps its waiters: the keys are on their way here.
        st.importing.insert(BAR, B);
        assert_eq!(blocked_redirect(&st, &client, &blocked), None);
        st.importing.clear();
        st.del_slot(BAR);
        assert_eq!(blocked_redirect(&st, &client, &blocked), Some(Redirect::DownUnbound));
        // Down: every waiter hears it, even one on a slot this node serves.
        let (client, blocked) = blocked_on("b", &["blpop", "b", "0"]);
        st.ok = false;
        assert_eq!(blocked_redirect(&st, &client, &blocked), Some(Redirect::Down));
    }

    #[test]
    fn redirections_name_the_preferred_endpoint() {
        let mut st = two_nodes();
        let mut cfg = crate::node::config::Config::default();
        let r = Redirect::Moved { slot: 1, to: B };
        cfg.set("cluster-preferred-endpoint-type", "hostname").expect("valid");
        assert_eq!(r.message(&st, &cfg), "MOVED 1 ?:7001");
        st.node_mut(&B).expect("b").hostname = "b.example".into();
        assert_eq!(r.message(&st, &cfg), "MOVED 1 b.example:7001");
        cfg.set("cluster-preferred-endpoint-type", "unknown-endpoint").expect("valid");
        assert_eq!(r.message(&st, &cfg), "MOVED 1 :7001");
    }
}
