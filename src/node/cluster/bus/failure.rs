//! Failure detection, as Redis 7.0: a node that does not answer a ping within node-timeout is
//! PFAIL from our point of view; masters gossip their PFAIL/FAIL views as failure reports; once a
//! majority of the masters that serve slots (ourselves included if we are one) report it within
//! twice node-timeout, it is FAIL and every node is told so with a FAIL message.

use super::proto::{send_fail, Env};
use crate::node::cluster::{id_str, nflags, ClusterNode, ClusterState, FailReport, NodeId};

/// Failure reports older than node-timeout times this are dropped
/// (`CLUSTER_FAIL_REPORT_VALIDITY_MULT`).
pub const FAIL_REPORT_VALIDITY_MULT: i64 = 2;
/// A master that comes back while still serving its slots has FAIL cleared after node-timeout
/// times this (`CLUSTER_FAIL_UNDO_TIME_MULT`), if nobody failed it over.
pub const FAIL_UNDO_TIME_MULT: i64 = 2;

/// Records that `reporter` sees `node` as failing; true if this reporter is new
/// (`clusterNodeAddFailureReport`).
pub fn add_report(node: &mut ClusterNode, reporter: &NodeId, now: i64) -> bool {
    if let Some(r) = node.fail_reports.iter_mut().find(|r| r.node == *reporter) {
        r.time = now;
        return false;
    }
    node.fail_reports.push(FailReport { node: *reporter, time: now });
    true
}

/// `clusterNodeDelFailureReport`: the reporter sees the node healthy again.
pub fn del_report(node: &mut ClusterNode, reporter: &NodeId, now: i64, node_timeout: i64) -> bool {
    cleanup(node, now, node_timeout);
    let before = node.fail_reports.len();
    node.fail_reports.retain(|r| r.node != *reporter);
    before != node.fail_reports.len()
}

fn cleanup(node: &mut ClusterNode, now: i64, node_timeout: i64) {
    let max_age = node_timeout * FAIL_REPORT_VALIDITY_MULT;
    node.fail_reports.retain(|r| now - r.time <= max_age);
}

/// Valid failure reports, expired ones dropped first (`clusterNodeFailureReportsCount`).
pub fn count(node: &mut ClusterNode, now: i64, node_timeout: i64) -> usize {
    cleanup(node, now, node_timeout);
    node.fail_reports.len()
}

/// `markNodeAsFailingIfNeeded`: PFAIL becomes FAIL when enough masters agree; the FAIL is
/// broadcast so the whole cluster flips at once.
pub fn mark_failing_if_needed(st: &mut ClusterState, env: &Env, id: &NodeId) {
    let needed_quorum = st.size / 2 + 1;
    let me_master = st.me().is_master();
    let Some(node) = st.nodes.get_mut(id) else { return };
    if !node.has(nflags::PFAIL) || node.has(nflags::FAIL) {
        return;
    }
    let mut failures = count(node, env.now, env.node_timeout);
    if me_master {
        failures += 1;
    }
    if failures < needed_quorum {
        return;
    }
    tracing::info!("Marking node {} as failing (quorum reached).", id_str(id));
    node.flags &= !nflags::PFAIL;
    node.flags |= nflags::FAIL;
    node.fail_time = env.now;
    // Even a replica broadcasts: it only propagates what the masters agreed on.
    send_fail(st, env, id);
    st.changed();
}

/// `clearNodeFailureIfNeeded`, called when a FAIL node answers again.
pub fn clear_failure_if_needed(st: &mut ClusterState, env: &Env, id: &NodeId) {
    let Some(node) = st.nodes.get_mut(id) else { return };
    if !node.failed() {
        return;
    }
    // Replicas and slotless masters: nothing to fail over, clear at once.
    if node.is_replica() || node.numslots() == 0 {
        tracing::info!(
            "Clear FAIL state for node {}: {} is reachable again.",
            id_str(id),
            if node.is_replica() { "replica" } else { "master without slots" }
        );
        node.flags &= !nflags::FAIL;
        st.changed();
        return;
    }
    // A master still serving its slots long after the FAIL: nobody is going to fail it over.
    if node.is_master() && node.numslots() > 0 && env.now - node.fail_time > env.node_timeout * FAIL_UNDO_TIME_MULT {
        tracing::info!(
            "Clear FAIL state for node {}: is reachable again and nobody is serving its slots after some time.",
            id_str(id)
        );
        node.flags &= !nflags::FAIL;
        st.changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_expire_after_twice_the_timeout() {
        let mut n = ClusterNode::new([b'a'; 40], nflags::MASTER, 0);
        assert!(add_report(&mut n, &[b'b'; 40], 1000));
        assert!(!add_report(&mut n, &[b'b'; 40], 1500));
        assert!(add_report(&mut n, &[b'c'; 40], 1000));
        assert_eq!(count(&mut n, 3000, 1000), 2);
        // b refreshed at 1500: valid until 3500; c until 3000.
        assert_eq!(count(&mut n, 3200, 1000), 1);
        assert!(del_report(&mut n, &[b'b'; 40], 3200, 1000));
        assert_eq!(count(&mut n, 3200, 1000), 0);
    }
}
