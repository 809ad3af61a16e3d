//! `clusterCron`, every 100 ms: keeps a link to every node, expires handshakes, pings (one random
//! node a second, plus anyone not heard from in node-timeout/2), resets links that look stuck,
//! and flags nodes that do not answer within node-timeout as PFAIL.

use super::proto::{self, Env};
use super::{msg::mtype, Bus, Link};
use crate::node::cluster::{id_str, nflags, ClusterState, NodeId};
use crate::node::server::Server;
use rand::Rng;
use std::rc::Rc;

pub(crate) fn tick(bus: &Rc<Bus>, srv: &mut Server, iteration: u64) {
    let env = Env::new(&srv.config);
    let Some(st) = srv.cluster.as_deref_mut() else { return };
    sweep_links(bus, st, &env);
    let handshake_timeout = env.node_timeout.max(1000);
    let now = env.now;

    // Reconnects and handshake timeouts (`clusterNodeCronHandleReconnect`).
    st.stats_pfail_nodes = 0;
    let ids: Vec<NodeId> = st.nodes.keys().copied().collect();
    for id in &ids {
        // A link whose tasks ended is gone (they normally detach themselves; this is the backstop).
        if let Some(n) = st.nodes.get_mut(id) {
            if n.link.as_ref().is_some_and(|l| l.is_closed()) {
                n.link = None;
            }
            if n.inbound_link.as_ref().is_some_and(|l| l.is_closed()) {
                n.inbound_link = None;
            }
        }
        let Some(n) = st.nodes.get(id) else { continue };
        if n.has(nflags::MYSELF | nflags::NOADDR) {
            continue;
        }
        if n.has(nflags::PFAIL) {
            st.stats_pfail_nodes += 1;
        }
        if n.in_handshake() && now - n.ctime > handshake_timeout {
            tracing::debug!("Handshake with {}:{} timed out: forgetting it", n.ip, n.cport);
            st.del_node(id);
            st.changed();
            continue;
        }
        if n.link.is_none() && n.cport != 0 {
            super::connect(bus, st, id, handshake_timeout);
        }
    }

    // Once a second, ping the node with the oldest pong among 5 random ones.
    if iteration.is_multiple_of(10) && !ids.is_empty() {
        let mut rng = rand::thread_rng();
        let mut best: Option<(i64, Link)> = None;
        for _ in 0..5 {
            let Some(n) = st.nodes.get(&ids[rng.gen_range(0..ids.len())]) else { continue };
            let Some(link) = &n.link else { continue };
            if n.ping_sent != 0 || n.has(nflags::MYSELF | nflags::HANDSHAKE) {
                continue;
            }
            if best.as_ref().is_none_or(|(p, _)| *p > n.pong_received) {
                best = Some((n.pong_received, link.clone()));
            }
        }
        if let Some((_, link)) = best {
            proto::send_ping(st, &env, &link, mtype::PING);
        }
    }

    // Failure detection and keeping every node pinged.
    let mut update_state = false;
    for id in &ids {
        let Some(n) = st.nodes.get(id) else { continue };
        if n.has(nflags::MYSELF | nflags::NOADDR | nflags::HANDSHAKE) {
            continue;
        }
        let ping_delay = now - n.ping_sent;
        let data_delay = now - n.data_received;
        // Waiting for a pong for more than node-timeout/2 and no traffic at all: the link may be
        // broken even if the node is alive; drop it, the next tick reconnects.
        if let Some(link) = &n.link {
            if now - link.ctime > env.node_timeout
                && n.ping_sent != 0
                && ping_delay > env.node_timeout / 2
                && data_delay > env.node_timeout / 2
            {
                let link = link.clone();
                proto::free_link(st, &link);
            }
        }
        let Some(n) = st.nodes.get(id) else { continue };
        if let Some(link) = &n.link {
            if n.ping_sent == 0 && now - n.pong_received > env.node_timeout / 2 {
                let link = link.clone();
                proto::send_ping(st, &env, &link, mtype::PING);
                continue;
            }
        }
        if n.ping_sent == 0 {
            continue;
        }
        let node_delay = ping_delay.min(data_delay);
        if node_delay > env.node_timeout && !n.has(nflags::PFAIL | nflags::FAIL) {
            tracing::debug!("*** NODE {} possibly failing", id_str(id));
            if let Some(n) = st.nodes.get_mut(id) {
                n.flags |= nflags::PFAIL;
            }
            update_state = true;
        }
    }
    // Replica duties (failover, migration) come with replication.
    if update_state || !st.ok {
        st.todo_update_state = true;
    }
    proto::flush_todo(st, &env);
}

/// Closes links no longer tied to their node, and links whose send queue passed
/// cluster-link-sendbuf-limit (`clusterNodeCronFreeLinkOnBufferLimitReached`).
fn sweep_links(bus: &Bus, st: &mut ClusterState, env: &Env) {
    for link in bus.live_links() {
        if !proto::attached(st, &link) {
            link.close();
            continue;
        }
        if env.sendbuf_limit > 0 && link.send_buffer_used() as u64 > env.sendbuf_limit {
            tracing::warn!(
                "Freeing cluster link({} node {}, used memory: {}) due to exceeding send buffer memory limit.",
                if link.inbound() { "from" } else { "to" },
                link.node().map(|n| id_str(&n).to_string()).unwrap_or_default(),
                link.send_buffer_used()
            );
            super::note_buffer_limit_exceeded();
            proto::free_link(st, &link);
        }
    }
}
