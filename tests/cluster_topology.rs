//! The topology parsers against live clusters: a real Redis 7.0 cluster (3 masters + 3 replicas,
//! made by `redis-cli --cluster create --cluster-replicas 1`) and a slotway cluster (3 masters).
//! From every node, CLUSTER SHARDS, SLOTS and NODES in RESP2 and in RESP3 (after HELLO 3) must
//! parse into one routing view; that view must send every sampled key to the node that answers it
//! without MOVED; and after `redis-cli --cluster reshard` the re-fetched view and `diff` must show
//! exactly the slots that moved.

mod support;

use slotway::cluster::key_slot;
use slotway::cluster::topology::{parse_info_epoch, parse_nodes, parse_shards, parse_slots, Addr, Role, Topology};
use slotway::resp::Frame;
use std::collections::BTreeSet;
use std::time::Duration;
use support::cluster::both;
use support::cluster::{cli_cluster, Cluster, Kind};
use support::Conn;

const HOST: &str = "127.0.0.1";

both!(
    views_agree_and_follow_a_reshard,
    views_agree_and_follow_a_reshard_redis,
    views_agree_and_follow_a_reshard_slotway
);

/// Every view one node gives: (what, topology).
fn fetch(port: u16) -> Result<Vec<(String, Topology)>, String> {
    let mut c = Conn::connect(port);
    let mut out = Vec::new();
    let epoch = parse_info_epoch(&c.cmd(&["CLUSTER", "INFO"])).map_err(|e| format!("{port} INFO: {e}"))?;
    for proto in ["resp2", "resp3"] {
        if proto == "resp3" {
            match c.cmd(&["HELLO", "3"]) {
                Frame::Map(_) => {}
                other => return Err(format!("{port}: HELLO 3 -> {other:?}")),
            }
        }
        for what in ["SHARDS", "SLOTS", "NODES"] {
            let reply = c.cmd(&["CLUSTER", what]);
            let parsed = match what {
                "SHARDS" => parse_shards(&reply, HOST).map(|t| t.with_config_epoch(epoch)),
                "SLOTS" => parse_slots(&reply, HOST).map(|t| t.with_config_epoch(epoch)),
                _ => parse_nodes(&reply, HOST),
            };
            let t = parsed.map_err(|e| format!("{port} {what} {proto}: {e}: {reply:?}"))?;
            out.push((format!("{port} {what} {proto}"), t));
        }
    }
    Ok(out)
}

/// Fetches every view from every node and checks that they route alike, with ids, roles and
/// epochs consistent, and `replicas` serving replicas per master. Returns the reference view
/// (node 0's SHARDS) and node 0's NODES view (the one with per-master config epochs).
fn agreed_view(c: &Cluster, replicas: usize) -> Result<(Topology, Topology), String> {
    let ids: BTreeSet<String> = c.nodes.iter().map(|n| n.myid()).collect();
    let mut reference: Option<(String, Topology)> = None;
    let mut with_epochs: Option<Topology> = None;
    for n in &c.nodes {
        for (what, t) in fetch(n.port)? {
            if !t.is_complete() {
                return Err(format!("{what}: {} slots covered", t.covered_slots()));
            }
            if t.shards().len() != 3 {
                return Err(format!("{what}: {} shards: {t:?}", t.shards().len()));
            }
            for s in t.shards() {
                if s.master.role != Role::Master || s.replicas.iter().any(|r| r.role != Role::Replica) {
                    return Err(format!("{what}: roles wrong in {s:?}"));
                }
                let serving = s.replicas.iter().filter(|r| r.is_serving()).count();
                if serving != replicas {
                    return Err(format!("{what}: {serving} serving replicas of {}, want {replicas}", s.master.addr));
                }
            }
            let seen: BTreeSet<String> = t.nodes().map(|n| n.id.clone()).collect();
            if seen != ids {
                return Err(format!("{what}: node ids {seen:?}, CLUSTER MYID says {ids:?}"));
            }
            if what.contains("NODES") {
                // configEpochs are unique per master after create; the highest is the current epoch
                // whenever no failover happened.
                let epochs: BTreeSet<u64> = t.shards().iter().filter_map(|s| s.config_epoch).collect();
                if epochs.len() != 3 || t.config_epoch == 0 {
                    return Err(format!("{what}: config epochs {epochs:?}"));
                }
                with_epochs.get_or_insert_with(|| t.clone());
            }
            match &reference {
                None => reference = Some((what, t)),
                Some((rw, r)) => {
                    let d = r.diff(&t);
                    if !d.is_empty() {
                        return Err(format!("{what} differs from {rw}: {d:?}"));
                    }
                    // Routing equality compares addresses; the ids behind them must match too.
                    for s in r.shards() {
                        let (a, _) = s.slots[0];
                        let other = t.master_for_slot(a).map(|m| m.id.as_str());
                        if other != Some(s.master.id.as_str()) {
                            return Err(format!("{what}: slot {a} owner id {other:?}, {rw} says {}", s.master.id));
                        }
                    }
                }
            }
        }
    }
    match (reference, with_epochs) {
        (Some((_, r)), Some(e)) => Ok((r, e)),
        _ => Err("no nodes".into()),
    }
}

fn node_of(c: &Cluster, addr: &Addr) -> u16 {
    assert_eq!(&*addr.host, HOST, "{addr}");
    assert!(c.nodes.iter().any(|n| n.port == addr.port), "{addr} is not a node of the cluster");
    addr.port
}

/// Every sample key: KEYSLOT agrees with ours; the topology's master answers SET/GET without a
/// redirect; another master redirects to exactly that master; a replica (without READONLY) does too.
fn check_keys(c: &Cluster, t: &Topology, round: &str) {
    let mut conns: std::collections::HashMap<u16, Conn> = c.nodes.iter().map(|n| (n.port, n.conn_plain())).collect();
    for k in 0..300 {
        let key = format!("topo:{k}");
        let slot = key_slot(key.as_bytes());
        let ks = conns.get_mut(&c.nodes[0].port).expect("conn").cmd(&["CLUSTER", "KEYSLOT", &key]);
        assert_eq!(ks, Frame::Integer(slot as i64), "KEYSLOT {key}");
        let master = t.master_for_slot(slot).unwrap_or_else(|| panic!("{round}: slot {slot} has no master"));
        let port = node_of(c, &master.addr);
        let value = format!("{round}:{k}");
        let conn = conns.get_mut(&port).expect("conn");
        assert_eq!(conn.cmd(&["SET", &key, &value]), Frame::Simple("OK".into()), "{round}: SET {key} on {port}");
        assert_eq!(conn.cmd(&["GET", &key]), Frame::Bulk(value.clone().into()), "{round}: GET {key} on {port}");
        let moved = format!("MOVED {slot} {}", master.addr);
        let others = t.shards().iter().map(|s| &s.master).filter(|m| m.addr != master.addr);
        for other in others.chain(t.replicas_for_slot(slot).iter()).take(3) {
            let reply = conns.get_mut(&node_of(c, &other.addr)).expect("conn").cmd(&["GET", &key]);
            assert_eq!(reply, Frame::Error(moved.clone().into()), "{round}: GET {key} on {}", other.addr);
        }
    }
}

trait PlainConn {
    fn conn_plain(&self) -> Conn;
}
impl PlainConn for support::cluster::Node {
    fn conn_plain(&self) -> Conn {
        Conn::connect(self.port)
    }
}

fn views_agree_and_follow_a_reshard(kind: Kind) {
    // slotway nodes do not replicate yet: its cluster has masters only.
    let (c, replicas) = match kind {
        Kind::Redis => (Cluster::create_replicated(kind, 3, 1), 1),
        Kind::Slotway => (Cluster::create(kind, 3), 0),
    };
    // Gossip and the replicas' first sync take a moment: views agree once both settled.
    let (before, before_epochs) =
        c.wait_for(Duration::from_secs(30), "every view agreeing", |c| agreed_view(c, replicas));
    assert_eq!(before.nodes().count(), 3 * (1 + replicas));
    check_keys(&c, &before, "before");

    let (from, to) = (&before.shards()[0].master, &before.shards()[1].master);
    let out = cli_cluster(
        "reshard",
        &[
            &c.node(0).addr(),
            "--cluster-from",
            &from.id,
            "--cluster-to",
            &to.id,
            "--cluster-slots",
            "100",
            "--cluster-yes",
        ],
        Duration::from_secs(60),
    );
    assert!(out.ok, "{kind:?}: reshard failed: {}\n{}", out.describe(), c.logs());
    let (after, after_epochs) = c.wait_for(Duration::from_secs(30), "every view agreeing after the reshard", |c| {
        let (t, e) = agreed_view(c, replicas)?;
        if t.same_routing(&before) {
            return Err("no change seen yet".into());
        }
        Ok((t, e))
    });
    let d = before.diff(&after);
    assert_eq!(d.moved_slots(), 100, "{kind:?}: {d:?}");
    assert!(d.moved.iter().all(|m| m.from.as_ref() == Some(&from.addr) && m.to.as_ref() == Some(&to.addr)), "{d:?}");
    assert!(d.added.is_empty() && d.removed.is_empty() && d.replicas_changed.is_empty(), "{d:?}");
    // redis-cli takes the lowest slots of the source first.
    assert_eq!(d.moved[0].start, before.shards()[0].slots[0].0, "{d:?}");
    // Closing the import bumps the target's configEpoch unless it already had the highest one: either
    // way the target now holds the view's highest epoch, and the view is at least as fresh.
    let target_epoch = |t: &Topology| {
        t.master_for_slot(d.moved[0].start)
            .and_then(|s| t.shards().iter().find(|x| x.master.id == s.id).and_then(|x| x.config_epoch))
    };
    assert_eq!(target_epoch(&after_epochs), Some(after_epochs.config_epoch), "{after_epochs:?}");
    assert!(after_epochs.config_epoch >= before_epochs.config_epoch);
    assert!(after.config_epoch >= before.config_epoch);
    let bumped = before_epochs.shards().iter().find(|s| s.master.id == to.id).and_then(|s| s.config_epoch)
        != Some(before_epochs.config_epoch);
    if bumped {
        assert!(after_epochs.config_epoch > before_epochs.config_epoch, "{before_epochs:?} -> {after_epochs:?}");
    }
    // A MOVED-driven patch of the old view reaches the same routing as the refresh.
    let mut patched = before.clone();
    for m in &d.moved {
        for slot in m.start..=m.end {
            assert!(patched.set_slot_owner(slot, &to.addr).expect("valid slot"));
        }
    }
    assert!(patched.same_routing(&after), "{:?}", patched.diff(&after));
    check_keys(&c, &after, "after");
}
