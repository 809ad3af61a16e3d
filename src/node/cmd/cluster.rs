//! CLUSTER and its subcommands, ASKING, READONLY, READWRITE: Redis 7.0's `clusterCommand`, with its
//! checks in the same order and its reply formats and error texts byte for byte.
//!
//! Every handler changes the state only after all its checks passed, and calls
//! [`ClusterState::changed`] so that `before_sleep` writes nodes.conf before the reply leaves.

use super::server::{container, help_reply};
use super::util::int;
use super::{CmdError, CmdResult, Ctx, Handler};
use crate::cluster::{key_slot, SLOTS};
use crate::errors;
use crate::node::cluster::{self as cl, id_str, nflags, ClusterNode, ClusterState, NodeId};
use crate::node::server::Server;
use crate::resp::Reply;
use std::fmt::Write as _;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("cluster", container),
    ("cluster|help", help),
    ("cluster|info", info),
    ("cluster|myid", myid),
    ("cluster|nodes", nodes),
    ("cluster|slots", slots),
    ("cluster|shards", shards),
    ("cluster|keyslot", keyslot),
    ("cluster|countkeysinslot", countkeysinslot),
    ("cluster|getkeysinslot", getkeysinslot),
    ("cluster|addslots", addslots),
    ("cluster|delslots", addslots),
    ("cluster|addslotsrange", addslotsrange),
    ("cluster|delslotsrange", addslotsrange),
    ("cluster|flushslots", flushslots),
    ("cluster|setslot", setslot),
    ("cluster|meet", meet),
    ("cluster|forget", forget),
    ("cluster|replicate", replicate),
    ("cluster|replicas", replicas),
    ("cluster|slaves", replicas),
    ("cluster|reset", reset),
    ("cluster|saveconfig", saveconfig),
    ("cluster|set-config-epoch", set_config_epoch),
    ("cluster|bumpepoch", bumpepoch),
    ("cluster|count-failure-reports", count_failure_reports),
    ("cluster|links", links),
    ("asking", asking),
    ("readonly", readonly),
    ("readwrite", readwrite),
];

/// The cluster state, or Redis's error for a node started without cluster-enabled.
fn state(srv: &mut Server) -> Result<&mut ClusterState, CmdError> {
    srv.cluster.as_deref_mut().ok_or_else(|| errors::CLUSTER_DISABLED.into())
}

/// `getSlotOrReply`: an integer in 0..16384.
fn slot_arg(arg: &[u8]) -> Result<u16, CmdError> {
    match crate::resp::request::parse_i64(arg) {
        Some(s) if (0..SLOTS as i64).contains(&s) => Ok(s as u16),
        _ => Err(errors::INVALID_SLOT.into()),
    }
}

/// `clusterLookupNode`: a known node named exactly by the argument.
fn lookup(st: &ClusterState, arg: &[u8]) -> Option<NodeId> {
    cl::parse_id(arg).filter(|id| st.nodes.contains_key(id))
}

fn unknown_node(arg: &[u8]) -> CmdError {
    format!("ERR Unknown node {}", errors::lossy(arg, usize::MAX)).into()
}

fn endpoint_type(srv: &Server) -> &str {
    srv.config.get("cluster-preferred-endpoint-type").unwrap_or("ip")
}

const HELP: &[&str] = &[
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
];

fn help(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    state(ctx.srv)?;
    help_reply(ctx.out, args[0], HELP);
    Ok(())
}

/// CLUSTER INFO (`genClusterInfoString`).
pub fn info_text(st: &ClusterState) -> String {
    let fail = st.slots_served_by(|n| n.failed());
    let pfail = st.slots_served_by(|n| !n.failed() && n.has(nflags::PFAIL));
    let ok = st.slots_served_by(|n| !n.has(nflags::FAIL | nflags::PFAIL));
    let assigned = fail + pfail + ok;
    let me = st.me();
    let my_epoch = match me.master.as_ref().and_then(|m| st.node(m)) {
        Some(m) if me.is_replica() => m.config_epoch,
        _ => me.config_epoch,
    };
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok}\r\n\
         cluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\n\
         cluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{my_epoch}\r\n",
        if st.ok { "ok" } else { "fail" },
        st.nodes.len(),
        st.size,
        st.current_epoch,
    );
    for (dir, stats) in [("sent", &st.stats_sent), ("received", &st.stats_received)] {
        let mut total = 0;
        for (i, n) in stats.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            total += n;
            let _ = write!(s, "cluster_stats_messages_{}_{dir}:{n}\r\n", MSG_TYPE_NAMES[i]);
        }
        let _ = write!(s, "cluster_stats_messages_{dir}:{total}\r\n");
    }
    let _ = write!(s, "total_cluster_links_buffer_limit_exceeded:{}\r\n", cl::bus::links_buffer_limit_exceeded());
    s
}

/// `clusterGetMessageTypeString`, indexed by the bus message type.
const MSG_TYPE_NAMES: [&str; cl::MSG_TYPES] =
    ["ping", "pong", "meet", "fail", "publish", "auth-req", "auth-ack", "update", "mfstart", "module", "publishshard"];

fn info(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let text = info_text(state(ctx.srv)?);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn myid(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let st = state(ctx.srv)?;
    ctx.out.bulk(&st.myself);
    Ok(())
}

fn nodes(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let text = state(ctx.srv)?.nodes_text(|_| true);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// CLUSTER SLOTS / REPLICAS list a replica only once it has data to serve (`isReplicaAvailable`).
fn replica_available(n: &ClusterNode) -> bool {
    !n.failed() && n.repl_offset != 0
}

/// One node of a CLUSTER SLOTS range (`addNodeToNodeReply`): preferred endpoint, port, id, and a
/// map of the other known endpoints.
fn slots_node(out: &mut Reply, n: &ClusterNode, endpoint: &str) {
    out.array(4);
    match endpoint {
        "hostname" if !n.hostname.is_empty() => out.bulk_str(&n.hostname),
        "hostname" => out.bulk_str("?"),
        "unknown-endpoint" => out.null(),
        _ => out.bulk_str(&n.ip),
    }
    out.int(n.port as i64);
    out.bulk(&n.id);
    let with_ip = endpoint != "ip";
    let with_host = endpoint != "hostname" && !n.hostname.is_empty();
    out.map(with_ip as usize + with_host as usize);
    if with_ip {
        out.bulk_str("ip");
        out.bulk_str(&n.ip);
    }
    if with_host {
        out.bulk_str("hostname");
        out.bulk_str(&n.hostname);
    }
}

fn slots(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let endpoint = endpoint_type(ctx.srv).to_string();
    let st = state(ctx.srv)?;
    let mut runs: Vec<(u16, usize, &ClusterNode)> = Vec::new();
    st.owner_runs(|start, len, owner| {
        if let Some(n) = owner {
            runs.push((start, len, n));
        }
    });
    let out = &mut *ctx.out;
    out.array(runs.len());
    for (start, len, master) in runs {
        let reps: Vec<&ClusterNode> = st.replicas_of(&master.id).filter(|r| replica_available(r)).collect();
        out.array(3 + reps.len());
        out.int(start as i64);
        out.int(start as i64 + len as i64 - 1);
        slots_node(out, master, &endpoint);
        for r in reps {
            slots_node(out, r, &endpoint);
        }
    }
    Ok(())
}

/// One node of a CLUSTER SHARDS entry (`addNodeDetailsToShardReply`).
fn shard_node(out: &mut Reply, n: &ClusterNode, endpoint: &str) {
    let mut len = 6;
    if n.port != 0 {
        len += 1;
    }
    if !n.hostname.is_empty() {
        len += 1;
    }
    out.map(len);
    out.bulk_str("id");
    out.bulk(&n.id);
    if n.port != 0 {
        out.bulk_str("port");
        out.int(n.port as i64);
    }
    out.bulk_str("ip");
    out.bulk_str(&n.ip);
    out.bulk_str("endpoint");
    match endpoint {
        "hostname" if !n.hostname.is_empty() => out.bulk_str(&n.hostname),
        "hostname" => out.bulk_str("?"),
        "unknown-endpoint" => out.bulk_str(""),
        _ => out.bulk_str(&n.ip),
    }
    if !n.hostname.is_empty() {
        out.bulk_str("hostname");
        out.bulk_str(&n.hostname);
    }
    out.bulk_str("role");
    out.bulk_str(if n.is_replica() { "replica" } else { "master" });
    out.bulk_str("replication-offset");
    out.int(n.repl_offset);
    out.bulk_str("health");
    out.bulk_str(if n.failed() {
        "fail"
    } else if n.is_replica() && n.repl_offset == 0 {
        "loading"
    } else {
        "online"
    });
}

/// CLUSTER SHARDS: one entry per master (a node still in handshake is neither master nor replica
/// and is left out), with its slots and its replicas.
fn shards(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let endpoint = endpoint_type(ctx.srv).to_string();
    let st = state(ctx.srv)?;
    let heads: Vec<&ClusterNode> = st.nodes.values().filter(|n| n.is_master()).collect();
    let out = &mut *ctx.out;
    out.array(heads.len());
    for head in heads {
        out.map(2);
        out.bulk_str("slots");
        let mine = head.slots.ranges();
        out.array(mine.len() * 2);
        for (a, b) in mine {
            out.int(a as i64);
            out.int(b as i64);
        }
        out.bulk_str("nodes");
        let reps: Vec<&ClusterNode> = st.replicas_of(&head.id).collect();
        out.array(1 + reps.len());
        shard_node(out, head, &endpoint);
        for r in reps {
            shard_node(out, r, &endpoint);
        }
    }
    Ok(())
}

fn keyslot(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    state(ctx.srv)?;
    ctx.out.int(key_slot(args[2]) as i64);
    Ok(())
}

fn countkeysinslot(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    state(ctx.srv)?;
    let slot = int(args[2])?;
    if !(0..SLOTS as i64).contains(&slot) {
        return Err(errors::INVALID_SLOT_SHORT.into());
    }
    let n = ctx.srv.dbs[0].count_in_slot(slot as u16);
    ctx.out.int(n as i64);
    Ok(())
}

fn getkeysinslot(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    state(ctx.srv)?;
    let slot = int(args[2])?;
    let max = int(args[3])?;
    if !(0..SLOTS as i64).contains(&slot) || max < 0 {
        return Err(errors::INVALID_SLOT_OR_KEYS.into());
    }
    let keys = ctx.srv.dbs[0].keys_in_slot(slot as u16, usize::try_from(max).unwrap_or(usize::MAX));
    ctx.out.array(keys.len());
    for k in keys {
        ctx.out.bulk(&k);
    }
    Ok(())
}

/// `checkSlotAssignmentsOrReply`: every slot of `start..=end` must be free (add) or assigned
/// (del), and named once in the whole command.
fn check_slots(st: &ClusterState, seen: &mut [bool], del: bool, start: u16, end: u16) -> CmdResult {
    for s in start..=end {
        let owned = st.slots[s as usize].is_some();
        if del && !owned {
            return Err(format!("ERR Slot {s} is already unassigned").into());
        }
        if !del && owned {
            return Err(format!("ERR Slot {s} is already busy").into());
        }
        if std::mem::replace(&mut seen[s as usize], true) {
            return Err(format!("ERR Slot {s} specified multiple times").into());
        }
    }
    Ok(())
}

/// `clusterUpdateSlots`: an added or deleted slot is no longer being imported.
fn update_slots(st: &mut ClusterState, seen: &[bool], del: bool) {
    let me = st.myself;
    for s in 0..SLOTS {
        if !seen[s as usize] {
            continue;
        }
        st.importing.remove(&s);
        if del {
            st.del_slot(s);
        } else {
            st.add_slot(s, me);
        }
    }
    st.changed();
}

/// ADDSLOTS / DELSLOTS.
fn addslots(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let st = state(ctx.srv)?;
    let del = args[1].eq_ignore_ascii_case(b"delslots");
    let parsed = args[2..].iter().map(|a| slot_arg(a)).collect::<Result<Vec<u16>, _>>()?;
    let mut seen = vec![false; SLOTS as usize];
    for s in parsed {
        check_slots(st, &mut seen, del, s, s)?;
    }
    update_slots(st, &seen, del);
    ctx.out.ok();
    Ok(())
}

/// ADDSLOTSRANGE / DELSLOTSRANGE.
fn addslotsrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let st = state(ctx.srv)?;
    if args.len() % 2 == 1 {
        let name = format!("cluster|{}", String::from_utf8_lossy(args[1]).to_ascii_lowercase());
        return Err(errors::wrong_arity(&name).into());
    }
    let del = args[1].eq_ignore_ascii_case(b"delslotsrange");
    let mut seen = vec![false; SLOTS as usize];
    for pair in args[2..].chunks(2) {
        let start = slot_arg(pair[0])?;
        let end = slot_arg(pair[1])?;
        if start > end {
            return Err(format!("ERR start slot number {start} is greater than end slot number {end}").into());
        }
        check_slots(st, &mut seen, del, start, end)?;
    }
    update_slots(st, &seen, del);
    ctx.out.ok();
    Ok(())
}

fn flushslots(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let srv = &mut *ctx.srv;
    let st = srv.cluster.as_deref_mut().ok_or(CmdError::from(errors::CLUSTER_DISABLED))?;
    if !srv.dbs[0].is_empty() {
        return Err(errors::FLUSHSLOTS_DB_NOT_EMPTY.into());
    }
    let me = st.myself;
    st.del_node_slots(&me);
    st.changed();
    ctx.out.ok();
    Ok(())
}

/// CLUSTER SETSLOT <slot> IMPORTING|MIGRATING <node> | STABLE | NODE <node>.
fn setslot(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let srv = &mut *ctx.srv;
    let allow_migration = srv.config.get("cluster-allow-replica-migration") != Some("no");
    let st = srv.cluster.as_deref_mut().ok_or(CmdError::from(errors::CLUSTER_DISABLED))?;
    if st.me().is_replica() {
        return Err(errors::SETSLOT_ONLY_MASTERS.into());
    }
    let slot = slot_arg(args[2])?;
    let action = args[3];
    let me = st.myself;
    let target = |st: &ClusterState, unknown: fn(&[u8]) -> CmdError| -> Result<NodeId, CmdError> {
        let id = lookup(st, args[4]).ok_or_else(|| unknown(args[4]))?;
        if st.node(&id).is_some_and(|n| n.is_replica()) {
            return Err(errors::TARGET_NOT_MASTER.into());
        }
        Ok(id)
    };
    let dont_know = |a: &[u8]| CmdError::from(format!("ERR I don't know about node {}", errors::lossy(a, usize::MAX)));
    if action.eq_ignore_ascii_case(b"migrating") && args.len() == 5 {
        if st.slots[slot as usize] != Some(me) {
            return Err(format!("ERR I'm not the owner of hash slot {slot}").into());
        }
        let id = target(st, dont_know)?;
        st.migrating.insert(slot, id);
    } else if action.eq_ignore_ascii_case(b"importing") && args.len() == 5 {
        if st.slots[slot as usize] == Some(me) {
            return Err(format!("ERR I'm already the owner of hash slot {slot}").into());
        }
        let id = target(st, dont_know)?;
        st.importing.insert(slot, id);
    } else if action.eq_ignore_ascii_case(b"stable") && args.len() == 4 {
        st.importing.remove(&slot);
        st.migrating.remove(&slot);
    } else if action.eq_ignore_ascii_case(b"node") && args.len() == 5 {
        let id = target(st, unknown_node)?;
        let keys = srv.dbs[0].count_in_slot(slot);
        let was_mine = st.slots[slot as usize] == Some(me);
        if was_mine && id != me && keys != 0 {
            return Err(format!(
                "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
            )
            .into());
        }
        // A migrating slot with no keys left is done moving.
        if keys == 0 {
            st.migrating.remove(&slot);
        }
        st.set_slot_owner(slot, id);
        // A master left without slots follows the node that took its last one.
        if was_mine && id != me && st.me().numslots() == 0 && allow_migration {
            tracing::info!("Configuration change detected. Reconfiguring myself as a replica of {}", id_str(&id));
            st.set_my_master(id);
        }
        // Closing an import by hand: claim the slot with a new epoch so it wins over the old
        // owner's claim, and tell everyone now.
        if id == me && st.importing.remove(&slot).is_some() {
            if st.bump_epoch_without_consensus() {
                tracing::info!("configEpoch updated after importing slot {slot}");
            }
            st.todo_broadcast_pong = true;
        }
    } else {
        return Err(errors::SETSLOT_INVALID.into());
    }
    st.changed();
    ctx.out.ok();
    Ok(())
}

/// CLUSTER MEET ip port [cport] (`clusterStartHandshake`'s checks; a handshake already under way
/// with that address is not an error).
fn meet(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    let st = state(ctx.srv)?;
    if args.len() > 5 {
        return Err(super::server::subcommand_syntax_error(args));
    }
    let text = |a: &[u8]| errors::lossy(a, usize::MAX);
    let port = crate::resp::request::parse_i64(args[3])
        .ok_or_else(|| CmdError::from(format!("ERR Invalid TCP base port specified: {}", text(args[3]))))?;
    let cport = match args.get(4) {
        Some(a) => crate::resp::request::parse_i64(a)
            .ok_or_else(|| CmdError::from(format!("ERR Invalid TCP bus port specified: {}", text(a))))?,
        None => port.saturating_add(10000),
    };
    let invalid = || CmdError::from(format!("ERR Invalid node address specified: {}:{}", text(args[2]), text(args[3])));
    let ip: std::net::IpAddr = std::str::from_utf8(args[2]).ok().and_then(|s| s.parse().ok()).ok_or_else(invalid)?;
    let valid = |p: i64| (1..=65535).contains(&p);
    if !valid(port) || !valid(cport) {
        return Err(invalid());
    }
    st.start_handshake(&ip.to_string(), port as u16, cport as u16, now);
    st.changed();
    ctx.out.ok();
    Ok(())
}

fn forget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let now_secs = ctx.now / 1000;
    let st = state(ctx.srv)?;
    // Redis 7.0 answers "Unknown node" for a node already forgotten (7.2 pretends it worked).
    let id = lookup(st, args[2]).ok_or_else(|| unknown_node(args[2]))?;
    if id == st.myself {
        return Err(errors::FORGET_MYSELF.into());
    }
    if st.me().is_replica() && st.me().master == Some(id) {
        return Err(errors::FORGET_MY_MASTER.into());
    }
    st.blacklist_add(id, now_secs);
    st.del_node(&id);
    st.changed();
    ctx.out.ok();
    Ok(())
}

fn replicate(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let srv = &mut *ctx.srv;
    let st = srv.cluster.as_deref_mut().ok_or(CmdError::from(errors::CLUSTER_DISABLED))?;
    let id = lookup(st, args[2]).ok_or_else(|| unknown_node(args[2]))?;
    if id == st.myself {
        return Err(errors::REPLICATE_MYSELF.into());
    }
    if st.node(&id).is_some_and(|n| n.is_replica()) {
        return Err(errors::REPLICATE_REPLICA.into());
    }
    if st.me().is_master() && (st.me().numslots() != 0 || !srv.dbs[0].is_empty()) {
        return Err(errors::REPLICATE_NOT_EMPTY.into());
    }
    st.set_my_master(id);
    st.changed();
    ctx.out.ok();
    Ok(())
}

fn replicas(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let st = state(ctx.srv)?;
    let id = lookup(st, args[2]).ok_or_else(|| unknown_node(args[2]))?;
    if st.node(&id).is_some_and(|n| n.is_replica()) {
        return Err(errors::NOT_A_MASTER.into());
    }
    let lines: Vec<String> = st.replicas_of(&id).map(|r| st.describe(r)).collect();
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.bulk_str(&l);
    }
    Ok(())
}

/// CLUSTER RESET [SOFT|HARD] (`clusterReset`).
fn reset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    state(ctx.srv)?;
    if args.len() > 3 {
        return Err(super::server::subcommand_syntax_error(args));
    }
    let hard = match args.get(2) {
        None => false,
        Some(a) if a.eq_ignore_ascii_case(b"hard") => true,
        Some(a) if a.eq_ignore_ascii_case(b"soft") => false,
        Some(_) => return Err(errors::SYNTAX.into()),
    };
    let was_replica = {
        let srv = &mut *ctx.srv;
        let st = state(srv)?;
        let master = st.me().is_master();
        if master && !srv.dbs[ctx.client.db].is_empty() {
            return Err(errors::RESET_MASTER_WITH_KEYS.into());
        }
        !master
    };
    if was_replica {
        // A replica's data came from its old master: it goes with it.
        for idx in 0..ctx.srv.dbs.len() {
            super::transactions::touch_all_watched_in_db(&ctx.srv.dbs, idx, None, ctx.now);
            ctx.srv.dbs[idx].clear();
        }
    }
    state(ctx.srv)?.reset(hard);
    ctx.out.ok();
    Ok(())
}

fn saveconfig(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let st = state(ctx.srv)?;
    // SAVECONFIG is an explicit request to make the file durable (Redis fsyncs it too).
    if let Err(e) = cl::conf::save(st, true) {
        // `strerror` text, as Redis prints it (Rust adds " (os error N)").
        let msg = e.to_string();
        let msg = msg.split(" (os error").next().unwrap_or(&msg);
        return Err(format!("ERR error saving the cluster node config: {msg}").into());
    }
    ctx.out.ok();
    Ok(())
}

fn set_config_epoch(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let st = state(ctx.srv)?;
    let epoch = int(args[2])?;
    if epoch < 0 {
        return Err(format!("ERR Invalid config epoch specified: {epoch}").into());
    }
    if st.nodes.len() > 1 {
        return Err(errors::SET_EPOCH_NOT_ALONE.into());
    }
    if st.me().config_epoch != 0 {
        return Err(errors::SET_EPOCH_NOT_ZERO.into());
    }
    st.me_mut().config_epoch = epoch as u64;
    tracing::info!("configEpoch set to {epoch} via CLUSTER SET-CONFIG-EPOCH");
    if st.current_epoch < epoch as u64 {
        st.current_epoch = epoch as u64;
    }
    st.changed();
    ctx.out.ok();
    Ok(())
}

fn bumpepoch(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let st = state(ctx.srv)?;
    let bumped = st.bump_epoch_without_consensus();
    let word = if bumped { "BUMPED" } else { "STILL" };
    ctx.out.simple(&format!("{word} {}", st.me().config_epoch));
    Ok(())
}

fn count_failure_reports(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let timeout = ctx.srv.config.get("cluster-node-timeout").and_then(|v| v.parse::<i64>().ok()).unwrap_or(15000);
    let now = ctx.now;
    let st = state(ctx.srv)?;
    let id = lookup(st, args[2]).ok_or_else(|| unknown_node(args[2]))?;
    let n = st.node_mut(&id).map_or(0, |n| cl::bus::failure::count(n, now, timeout));
    ctx.out.int(n as i64);
    Ok(())
}

fn link_entry(out: &mut Reply, node: &NodeId, link: &cl::bus::Link, inbound: bool) {
    out.map(6);
    out.bulk_str("direction");
    out.bulk_str(if inbound { "from" } else { "to" });
    out.bulk_str("node");
    out.bulk(node);
    out.bulk_str("create-time");
    out.int(link.ctime);
    out.bulk_str("events");
    out.bulk_str(link.events());
    out.bulk_str("send-buffer-allocated");
    out.int(link.send_buffer_allocated() as i64);
    out.bulk_str("send-buffer-used");
    out.int(link.send_buffer_used() as i64);
}

fn links(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let st = state(ctx.srv)?;
    let n = st.nodes.values().map(|n| n.link.is_some() as usize + n.inbound_link.is_some() as usize).sum();
    ctx.out.array(n);
    for node in st.nodes.values() {
        if let Some(l) = &node.link {
            link_entry(ctx.out, &node.id, l, false);
        }
        if let Some(l) = &node.inbound_link {
            link_entry(ctx.out, &node.id, l, true);
        }
    }
    Ok(())
}

fn asking(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    state(ctx.srv)?;
    ctx.client.asking = true;
    ctx.out.ok();
    Ok(())
}

fn readonly(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    state(ctx.srv)?;
    ctx.client.readonly = true;
    ctx.out.ok();
    Ok(())
}

fn readwrite(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    state(ctx.srv)?;
    ctx.client.readonly = false;
    ctx.out.ok();
    Ok(())
}

/// CONFIG SET of a `cluster-announce-*` option: myself advertises the new address at once, and
/// nodes.conf records it.
/// Like Redis 7.0, emptying `cluster-announce-ip` leaves myself with no address until a peer
/// tells it which one it sees.
pub fn announce_changed(srv: &mut Server, ip_changed: bool) {
    let port = srv.tcp_port;
    let cport = cl::bus_port(&srv.config, port);
    let config = &srv.config;
    if let Some(st) = srv.cluster.as_deref_mut() {
        cl::apply_announce(st, config, port, cport);
        if ip_changed {
            st.me_mut().ip = config.get("cluster-announce-ip").unwrap_or("").to_string();
        }
        st.changed();
    }
}
