//! Reads to replicas: which node of a slot's shard serves a read (a command flagged `readonly`
//! whose keys are in one slot) under the configured [`ReadFrom`] policy.
//!
//! A replica is used only over a connection whose prelude sent READONLY, and only for reads:
//! writes always go to the master over an ordinary connection, so a replica never sees a write
//! and, under `master`, no read can be served by a replica (not even by a node that became a
//! replica in a failover the proxy has not seen yet: it answers MOVED, as Redis does to a client
//! without READONLY).
//!
//! Replica reads trade freshness for load: a client's read from a replica may not see its own
//! write to the master yet (asynchronous replication). One client's reads of a shard stick to one
//! replica (picked by its lane), so they at least do not go back in time while that replica is
//! healthy.
//!
//! Health: the topology must call the replica serving (online, not failed, not still loading
//! its first sync), and the proxy must not have seen its connection fail in the last
//! `breaker_open` (a failed read marks it down; after that time the next read tries it again).
//! The check is one function, [`Reads::usable`], so that it can follow the backend's circuit
//! breaker once there is one.

use crate::cluster::topology::{Addr, NodeInfo, Topology};
use crate::proxy::{ReadFrom, Stats};
use arc_swap::ArcSwap;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The node that serves a request, and whether it is reached as a replica (a READONLY
/// connection) or as the master (an ordinary one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub addr: Addr,
    pub replica: bool,
}

impl Pick {
    fn master(n: &NodeInfo) -> Pick {
        Pick { addr: n.addr.clone(), replica: false }
    }
}

/// Picks the node for a read of `slot`. `spin` spreads the choice (the client's lane for the
/// replica policies, so one client stays on one replica; a rotating counter for round-robin).
/// `replica_failed`: this read already failed on a replica (connection lost or refused).
/// `usable` says whether a node may serve reads now.
pub fn pick(
    topo: &Topology,
    policy: ReadFrom,
    slot: u16,
    spin: u64,
    replica_failed: bool,
    usable: impl Fn(&NodeInfo) -> bool,
) -> Option<Pick> {
    let shard = topo.shard_for_slot(slot)?;
    let master = &shard.master;
    if policy == ReadFrom::Master {
        return Some(Pick::master(master));
    }
    let healthy: SmallVec<[&NodeInfo; 4]> = shard.replicas.iter().filter(|r| usable(r)).collect();
    let replica = |i: u64| Pick { addr: healthy[(i % healthy.len() as u64) as usize].addr.clone(), replica: true };
    Some(match policy {
        ReadFrom::Master => Pick::master(master),
        // The read failed on a replica: the master answers it rather than a second replica.
        ReadFrom::PreferReplica if replica_failed || healthy.is_empty() => Pick::master(master),
        ReadFrom::PreferReplica => replica(spin),
        // Another healthy replica if there is one (the failed one is marked down by now).
        ReadFrom::Replica if healthy.is_empty() => Pick::master(master),
        ReadFrom::Replica => replica(spin),
        ReadFrom::RoundRobin => {
            let master_ok = usable(master);
            let n = healthy.len() as u64 + u64::from(master_ok);
            if n == 0 {
                Pick::master(master)
            } else {
                match spin % n {
                    k if k < healthy.len() as u64 => replica(k),
                    _ => Pick::master(master),
                }
            }
        }
    })
}

/// Error replies of a replica that cannot serve reads now (loading a full sync; cut off from its
/// master with `replica-serve-stale-data no`): the read is retried on another node.
pub fn refuses_reads(reply: &[u8]) -> bool {
    reply.starts_with(b"-LOADING ") || reply.starts_with(b"-MASTERDOWN ")
}

/// Read-routing state shared by every session: the policy, the round-robin counter, the
/// replicas seen failing, and the counters INFO shows.
pub struct Reads {
    pub policy: ReadFrom,
    rotate: AtomicU64,
    /// Replicas whose connection failed, and when (last time). Few entries, short-lived.
    down: Mutex<Vec<(Addr, Instant)>>,
    /// `down.len()`, read without the lock: the common case (nothing down) takes no lock.
    n_down: AtomicUsize,
    retry_after: Duration,
    pub to_replicas: AtomicU64,
    pub to_masters: AtomicU64,
    /// Reads retried on another node after a replica failed them.
    pub replica_failures: AtomicU64,
    /// Reads per node, for INFO's node lines (counted only under a policy other than `master`).
    per_node: ArcSwap<HashMap<Addr, Arc<AtomicU64>>>,
}

impl Reads {
    /// `retry_after`: how long a replica whose connection failed gets no reads.
    pub fn new(policy: ReadFrom, retry_after: Duration) -> Reads {
        Reads {
            policy,
            rotate: AtomicU64::new(0),
            down: Mutex::new(Vec::new()),
            n_down: AtomicUsize::new(0),
            retry_after,
            to_replicas: AtomicU64::new(0),
            to_masters: AtomicU64::new(0),
            replica_failures: AtomicU64::new(0),
            per_node: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// The node for a read of `slot` by the client on `lane`, counted for INFO.
    pub fn route(&self, topo: &Topology, slot: u16, lane: u64, replica_failed: bool) -> Option<Pick> {
        let spin = match self.policy {
            ReadFrom::RoundRobin => self.rotate.fetch_add(1, Ordering::Relaxed),
            _ => lane,
        };
        let p = pick(topo, self.policy, slot, spin, replica_failed, |n| self.usable(n))?;
        if self.policy != ReadFrom::Master {
            self.count(&p);
        }
        Some(p)
    }

    /// Whether a node may serve reads now: serving in the topology, reachable, and its
    /// connection not seen failing lately.
    pub fn usable(&self, n: &NodeInfo) -> bool {
        n.is_serving() && n.is_reachable() && !self.is_down(&n.addr)
    }

    fn is_down(&self, addr: &Addr) -> bool {
        if self.n_down.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        down.iter().any(|(a, at)| a == addr && at.elapsed() < self.retry_after)
    }

    /// A read on the replica at `addr` failed to reach it or lost its connection.
    pub fn mark_down(&self, addr: &Addr) {
        self.replica_failures.fetch_add(1, Ordering::Relaxed);
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Entries long past their time go, so the list stays as short as the set of failing nodes.
        down.retain(|(a, at)| a != addr && at.elapsed() < self.retry_after * 10);
        down.push((addr.clone(), now));
        self.n_down.store(down.len(), Ordering::Relaxed);
    }

    /// A replica answered: it is usable again at once.
    pub fn mark_up(&self, addr: &Addr) {
        if self.n_down.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        down.retain(|(a, _)| a != addr);
        self.n_down.store(down.len(), Ordering::Relaxed);
    }

    fn count(&self, p: &Pick) {
        Stats::inc(if p.replica { &self.to_replicas } else { &self.to_masters });
        if let Some(c) = self.per_node.load().get(&p.addr) {
            Stats::inc(c);
            return;
        }
        self.per_node.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.entry(p.addr.clone()).or_default();
            m
        });
        if let Some(c) = self.per_node.load().get(&p.addr) {
            Stats::inc(c);
        }
    }

    /// Reads sent to `addr` so far (0 under `master`, which does not count them).
    pub fn reads_of(&self, addr: &Addr) -> u64 {
        self.per_node.load().get(addr).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::{Health, Role, Shard};

    fn node(port: u16, role: Role, health: Health) -> NodeInfo {
        NodeInfo {
            id: format!("n{port}"),
            addr: Addr::new("127.0.0.1", port),
            ip: "127.0.0.1".into(),
            hostname: None,
            tls_port: None,
            role,
            health,
            replication_offset: None,
        }
    }

    /// Shard A (slots 0-8191): master 1, replicas 11 and 12 (12 in the given health);
    /// shard B (8192-16383): master 2, no replica.
    fn topo(r12: Health) -> Topology {
        Topology::from_shards(vec![
            Shard {
                master: node(1, Role::Master, Health::Online),
                replicas: vec![node(11, Role::Replica, Health::Online), node(12, Role::Replica, r12)],
                slots: vec![(0, 8191)],
                config_epoch: None,
            },
            Shard {
                master: node(2, Role::Master, Health::Online),
                replicas: vec![],
                slots: vec![(8192, 16383)],
                config_epoch: None,
            },
        ])
        .expect("topology")
    }

    fn port(p: Option<Pick>) -> (u16, bool) {
        let p = p.expect("a pick");
        (p.addr.port, p.replica)
    }

    #[test]
    fn master_policy_never_picks_a_replica() {
        let t = topo(Health::Online);
        for spin in 0..8 {
            assert_eq!(port(pick(&t, ReadFrom::Master, 5, spin, false, |_| true)), (1, false));
        }
    }

    #[test]
    fn replica_policies_spread_by_spin_and_fall_back_to_master() {
        let t = topo(Health::Online);
        for policy in [ReadFrom::PreferReplica, ReadFrom::Replica] {
            assert_eq!(port(pick(&t, policy, 5, 0, false, |_| true)), (11, true));
            assert_eq!(port(pick(&t, policy, 5, 1, false, |_| true)), (12, true));
            // The shard without replicas: its master.
            assert_eq!(port(pick(&t, policy, 9000, 1, false, |_| true)), (2, false));
            // Every replica unusable: the master.
            assert_eq!(port(pick(&t, policy, 5, 1, false, |n| n.role == Role::Master)), (1, false));
        }
        // Replica 12 still loading its first sync: never picked.
        let t = topo(Health::Loading);
        let r = Reads::new(ReadFrom::Replica, Duration::from_secs(1));
        for lane in 0..6 {
            assert_eq!(port(r.route(&t, 5, lane, false)), (11, true));
        }
    }

    #[test]
    fn after_a_replica_failure_prefer_replica_goes_to_the_master_and_replica_to_another_replica() {
        let t = topo(Health::Online);
        let r = Reads::new(ReadFrom::Replica, Duration::from_secs(60));
        r.mark_down(&Addr::new("127.0.0.1", 11));
        assert_eq!(port(r.route(&t, 5, 0, true)), (12, true));
        assert_eq!(port(r.route(&t, 5, 1, true)), (12, true));
        r.mark_down(&Addr::new("127.0.0.1", 12));
        assert_eq!(port(r.route(&t, 5, 0, true)), (1, false));
        // An answer from a replica makes it usable again at once.
        r.mark_up(&Addr::new("127.0.0.1", 11));
        assert_eq!(port(r.route(&t, 5, 0, false)), (11, true));
        assert_eq!(r.replica_failures.load(Ordering::Relaxed), 2);

        let p = Reads::new(ReadFrom::PreferReplica, Duration::from_secs(60));
        p.mark_down(&Addr::new("127.0.0.1", 11));
        assert_eq!(port(p.route(&t, 5, 0, true)), (1, false));
        assert_eq!(port(p.route(&t, 5, 0, false)), (12, true));
    }

    #[test]
    fn a_down_mark_expires() {
        let t = topo(Health::Online);
        let r = Reads::new(ReadFrom::Replica, Duration::from_millis(0));
        r.mark_down(&Addr::new("127.0.0.1", 11));
        assert_eq!(port(r.route(&t, 5, 0, false)), (11, true));
    }

    #[test]
    fn round_robin_rotates_over_master_and_replicas() {
        let t = topo(Health::Online);
        let r = Reads::new(ReadFrom::RoundRobin, Duration::from_secs(1));
        let picks: Vec<_> = (0..6).map(|_| port(r.route(&t, 5, 7, false))).collect();
        assert_eq!(picks, vec![(11, true), (12, true), (1, false), (11, true), (12, true), (1, false)]);
        let b: Vec<_> = (0..3).map(|_| port(r.route(&t, 9000, 7, false))).collect();
        assert_eq!(b, vec![(2, false); 3]);
        assert_eq!(r.reads_of(&Addr::new("127.0.0.1", 11)), 2);
        assert_eq!(r.reads_of(&Addr::new("127.0.0.1", 2)), 3);
        assert_eq!(r.to_masters.load(Ordering::Relaxed), 5);
        // A failed master is skipped while a replica can serve.
        let mut shards = t.shards().to_vec();
        shards[0].master.health = Health::Fail;
        let t = Topology::from_shards(shards).expect("topology");
        for _ in 0..4 {
            assert!(port(r.route(&t, 5, 7, false)).1);
        }
    }

    #[test]
    fn replies_of_a_replica_that_cannot_serve() {
        assert!(refuses_reads(b"-LOADING Redis is loading the dataset in memory\r\n"));
        assert!(refuses_reads(
            b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"
        ));
        assert!(!refuses_reads(b"-ERR LOADING\r\n"));
        assert!(!refuses_reads(b"$7\r\nLOADING\r\n"));
    }

    #[test]
    fn unowned_slot_has_no_pick() {
        let t = Topology::default();
        assert_eq!(pick(&t, ReadFrom::Replica, 5, 0, false, |_| true), None);
    }
}
