//! What a bus message means: building PING/PONG/MEET (with gossip), FAIL and UPDATE, and
//! processing whatever arrives, following Redis 7.0's `clusterSendPing`, `clusterProcessPacket`,
//! `clusterProcessGossipSection` and `clusterUpdateSlotsConfigWith` step by step so that a slotway
//! node and redis-server nodes reach the same conclusions from the same messages.

use super::failure;
use super::msg::{self, mtype, Body, Gossip, Header, Msg};
use super::Link;
use crate::cluster::SLOTS;
use crate::node::cluster::{id_str, nflags, random_id, ClusterNode, ClusterState, NodeId, SlotBitmap, MSG_TYPES};
use crate::node::config::Config;
use crate::node::db::Db;
use crate::node::server::{unix_ms, Server};
use rand::Rng;

/// The configuration the bus reads, copied once per message or tick.
#[derive(Debug, Clone)]
pub struct Env {
    pub now: i64,
    pub node_timeout: i64,
    pub announce_ip: String,
    pub allow_replica_migration: bool,
    /// cluster-link-sendbuf-limit in bytes; 0 is no limit.
    pub sendbuf_limit: u64,
}

impl Env {
    pub fn new(config: &Config) -> Env {
        Env {
            now: unix_ms(),
            node_timeout: config.get("cluster-node-timeout").and_then(|v| v.parse().ok()).unwrap_or(15000).max(1),
            announce_ip: config.get("cluster-announce-ip").unwrap_or("").to_string(),
            allow_replica_migration: config.get("cluster-allow-replica-migration") != Some("no"),
            sendbuf_limit: config.get("cluster-link-sendbuf-limit").and_then(|v| v.parse().ok()).unwrap_or(0),
        }
    }
}

/// Work that needs the whole server rather than the cluster state, done once processing is over.
#[derive(Debug, Default)]
pub struct Effects {
    /// Slots whose keys must go: this node lost them to a newer configuration.
    pub del_slots: Vec<u16>,
    /// A message published on another node (channel, message), for this node's subscribers.
    pub publish: Option<(Vec<u8>, Vec<u8>)>,
}

/// Applies [`Effects`]: deletes the keys of lost slots (Redis's `delKeysInSlot`) and delivers a
/// message published elsewhere to the local subscribers (never sent on: the publishing node
/// broadcast it to everyone already).
pub fn apply(srv: &mut Server, fx: Effects) {
    if let Some((channel, message)) = fx.publish {
        crate::node::cmd::pubsub::publish_local(srv, &channel, &message, None);
    }
    for slot in fx.del_slots {
        let keys = srv.dbs[0].keys_in_slot(slot, usize::MAX);
        let n = keys.len();
        for k in keys {
            if srv.dbs[0].remove(&k).is_some() {
                srv.signal_modified(0, &k);
                srv.dirty += 1;
            }
        }
        if n > 0 {
            tracing::info!("Deleted {n} keys of slot {slot}: its ownership moved to another node.");
        }
    }
}

/// Is a node name 40 lowercase hex characters (what nodes.conf can hold and reload)?
fn valid_name(id: &NodeId) -> bool {
    id.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Is this link still the one its node uses? A link whose node was deleted, renamed away or
/// given another link is dead and must be closed; an inbound link not yet tied to a node is live.
pub fn attached(st: &ClusterState, link: &Link) -> bool {
    if link.is_closed() {
        return false;
    }
    match link.node() {
        None => link.inbound(),
        Some(id) => match st.nodes.get(&id) {
            None => false,
            Some(n) => {
                let l = if link.inbound() { &n.inbound_link } else { &n.link };
                l.as_ref().is_some_and(|l| l.same(link))
            }
        },
    }
}

/// Takes a link away from its node and closes it (`freeClusterLink`).
pub fn free_link(st: &mut ClusterState, link: &Link) {
    if let Some(n) = link.node().and_then(|id| st.nodes.get_mut(&id)) {
        if n.link.as_ref().is_some_and(|l| l.same(link)) {
            n.link = None;
        }
        if n.inbound_link.as_ref().is_some_and(|l| l.same(link)) {
            n.inbound_link = None;
        }
    }
    link.close();
}

/// Queues a message on a link and counts it.
pub fn send(st: &mut ClusterState, link: &Link, t: u16, bytes: Vec<u8>) {
    if (t as usize) < MSG_TYPES {
        st.stats_sent[t as usize] += 1;
    }
    if !link.enqueue(bytes) {
        tracing::warn!(
            "Freeing cluster link to node {}: its send queue passed the hard limit of {} bytes.",
            link.node().map(|n| id_str(&n).to_string()).unwrap_or_else(|| "?".into()),
            super::HARD_SENDQ_LIMIT
        );
        super::note_buffer_limit_exceeded();
        free_link(st, link);
    }
}

/// The header every message starts with (`clusterBuildMessageHdr`): a replica advertises its
/// master's slots and configEpoch, flagged as a replica so nobody thinks it serves them.
pub fn build_header(st: &ClusterState, env: &Env, t: u16) -> Header {
    let me = st.me();
    let master = if me.is_replica() { me.master.as_ref().and_then(|m| st.nodes.get(m)).unwrap_or(me) } else { me };
    let mut h = Header::new(t, me.id);
    h.myip = env.announce_ip.clone();
    h.myslots = master.slots.clone();
    h.slaveof = me.master;
    h.port = me.port;
    h.pport = 0;
    h.cport = me.cport;
    h.flags = me.flags;
    h.state = if st.ok { 0 } else { 1 };
    h.current_epoch = st.current_epoch;
    h.config_epoch = master.config_epoch;
    h.offset = 0;
    h
}

fn gossip_entry(n: &ClusterNode) -> Gossip {
    Gossip {
        name: n.id,
        ping_sent: (n.ping_sent / 1000) as u32,
        pong_received: (n.pong_received / 1000) as u32,
        ip: n.ip.clone(),
        port: n.port,
        cport: n.cport,
        flags: n.flags,
        pport: 0,
    }
}

/// `clusterSendPing`: a PING, PONG or MEET carrying gossip about max(3, n/10) random healthy
/// nodes plus every PFAIL node, so failure reports spread fast.
pub fn send_ping(st: &mut ClusterState, env: &Env, link: &Link, t: u16) {
    let total = st.nodes.len() as i64;
    let mut freshnodes = total - 2;
    let wanted = (total / 10).max(3).min(freshnodes.max(0));
    let mut pfail_wanted = st.stats_pfail_nodes;
    if !link.inbound() && t == mtype::PING {
        if let Some(n) = link.node().and_then(|id| st.nodes.get_mut(&id)) {
            n.ping_sent = env.now;
        }
    }
    let hdr = build_header(st, env, t);
    let ids: Vec<NodeId> = st.nodes.keys().copied().collect();
    let mut gossip: Vec<Gossip> = Vec::with_capacity(wanted as usize + pfail_wanted as usize);
    let mut rng = rand::thread_rng();
    let mut maxiterations = wanted * 3;
    while freshnodes > 0 && (gossip.len() as i64) < wanted && maxiterations > 0 {
        maxiterations -= 1;
        let Some(n) = st.nodes.get(&ids[rng.gen_range(0..ids.len())]) else { continue };
        if n.has(nflags::MYSELF) || n.has(nflags::PFAIL) {
            continue;
        }
        if n.has(nflags::HANDSHAKE | nflags::NOADDR) || (n.link.is_none() && n.numslots() == 0) {
            freshnodes -= 1; // Not exactly right, but bounds the work, as in Redis.
            continue;
        }
        if gossip.iter().any(|g| g.name == n.id) {
            continue;
        }
        gossip.push(gossip_entry(n));
        freshnodes -= 1;
    }
    if pfail_wanted > 0 {
        for n in st.nodes.values() {
            if n.has(nflags::HANDSHAKE | nflags::NOADDR) || !n.has(nflags::PFAIL) {
                continue;
            }
            gossip.push(gossip_entry(n));
            pfail_wanted -= 1;
            if pfail_wanted == 0 {
                break;
            }
        }
    }
    let hostname = Some(st.me().hostname.clone()).filter(|h| !h.is_empty());
    let bytes = msg::encode(&Msg { hdr, body: Body::Ping { gossip, hostname, other: Vec::new() } });
    send(st, link, t, bytes);
}

/// Links to every node that can hear a broadcast (not myself, not in handshake).
fn broadcast_links(st: &ClusterState) -> Vec<Link> {
    st.nodes.values().filter(|n| !n.has(nflags::MYSELF | nflags::HANDSHAKE)).filter_map(|n| n.link.clone()).collect()
}

/// `clusterBroadcastPong`: tell every node our configuration now.
pub fn broadcast_pong(st: &mut ClusterState, env: &Env) {
    for link in broadcast_links(st) {
        send_ping(st, env, &link, mtype::PONG);
    }
}

/// `clusterSendFail`: every node must flag `about` as FAIL.
pub fn send_fail(st: &mut ClusterState, env: &Env, about: &NodeId) {
    let bytes = msg::encode(&Msg { hdr: build_header(st, env, mtype::FAIL), body: Body::Fail { about: *about } });
    for link in broadcast_links(st) {
        send(st, &link, mtype::FAIL, bytes.clone());
    }
}

/// `clusterSendPublish` broadcast: every connected node delivers the message to its own
/// subscribers. A message too big for a slotway peer to accept ([`msg::MAX_MSG_LEN`]) would only
/// get the links closed, so it stays on this node.
pub fn send_publish(st: &mut ClusterState, env: &Env, channel: &[u8], message: &[u8]) {
    let len = msg::HEADER_LEN + msg::PUBLISH_FIXED + channel.len() + message.len();
    if len > msg::MAX_MSG_LEN {
        tracing::warn!("PUBLISH of {len} bytes not propagated to the cluster: above the bus message limit");
        return;
    }
    let links = broadcast_links(st);
    if links.is_empty() {
        return;
    }
    let body = Body::Publish { channel: channel.to_vec(), message: message.to_vec() };
    let bytes = msg::encode(&Msg { hdr: build_header(st, env, mtype::PUBLISH), body });
    for link in links {
        send(st, &link, mtype::PUBLISH, bytes.clone());
    }
}

/// `clusterSendUpdate`: tells a node with a stale view who owns its slots now.
pub fn send_update(st: &mut ClusterState, env: &Env, link: Option<Link>, about: &NodeId) {
    let Some(link) = link else { return };
    let Some(n) = st.nodes.get(about) else { return };
    let body = Body::Update { config_epoch: n.config_epoch, node: n.id, slots: n.slots.clone() };
    let bytes = msg::encode(&Msg { hdr: build_header(st, env, mtype::UPDATE), body });
    send(st, &link, mtype::UPDATE, bytes);
}

/// The address a node is reached at: what it announces, else what the socket shows
/// (`nodeIp2String`).
fn node_ip(link: &Link, announced: &str) -> String {
    if announced.is_empty() {
        link.peer_ip()
    } else {
        announced.to_string()
    }
}

/// `nodeUpdateAddressIfNeeded`: a node that pings us from another address has moved; drop the
/// old outbound link so the cron reconnects to the new one.
fn update_address_if_needed(st: &mut ClusterState, id: &NodeId, link: &Link, hdr: &Header) -> bool {
    let Some(n) = st.nodes.get_mut(id) else { return false };
    if n.link.as_ref().is_some_and(|l| l.same(link)) {
        return false;
    }
    let ip = node_ip(link, &hdr.myip);
    if n.port == hdr.port && n.cport == hdr.cport && n.ip == ip {
        return false;
    }
    n.ip = ip;
    n.port = hdr.port;
    n.cport = hdr.cport;
    n.flags &= !nflags::NOADDR;
    let old = n.link.take();
    tracing::warn!("Address updated for node {}, now {}:{}", id_str(id), n.ip, n.port);
    if let Some(old) = old {
        old.close();
    }
    true
}

/// `clusterSetNodeAsMaster`.
fn set_node_as_master(st: &mut ClusterState, id: &NodeId) {
    let myself = st.myself;
    let Some(n) = st.nodes.get_mut(id) else { return };
    if n.is_master() {
        return;
    }
    if n.master.is_some() && *id != myself {
        n.flags |= nflags::MIGRATE_TO;
    }
    n.flags &= !nflags::SLAVE;
    n.flags |= nflags::MASTER;
    n.master = None;
    st.changed();
}

/// `clusterSetMaster`: this node becomes a replica of `master` in the cluster's eyes. The data
/// side (a full sync from the new master) comes with replication; until then the keys of the
/// slots this node lost are deleted by the caller so that nothing stale is served.
fn set_my_master(st: &mut ClusterState, master: &NodeId) {
    if *master == st.myself {
        return;
    }
    let me = st.me_mut();
    if me.is_master() {
        me.flags &= !(nflags::MASTER | nflags::MIGRATE_TO);
        me.flags |= nflags::SLAVE;
        st.migrating.clear();
        st.importing.clear();
    }
    st.me_mut().master = Some(*master);
    st.changed();
}

/// `clusterHandleConfigEpochCollision`: two masters with one configEpoch; the one with the
/// smaller name takes a new epoch, so all configEpochs end up unique.
fn handle_epoch_collision(st: &mut ClusterState, sender: &NodeId) {
    let Some(s) = st.nodes.get(sender) else { return };
    let me = st.me();
    if s.config_epoch != me.config_epoch || !s.is_master() || !me.is_master() {
        return;
    }
    // Don't act if the colliding node has a smaller name.
    if s.id <= me.id {
        return;
    }
    st.current_epoch += 1;
    let e = st.current_epoch;
    st.me_mut().config_epoch = e;
    st.changed();
    tracing::info!("WARNING: configEpoch collision with node {}. configEpoch set to {}", id_str(sender), e);
}

/// `clusterUpdateSlotsConfigWith`: `sender` claims `slots` with `epoch`; every slot whose owner
/// has a smaller configEpoch (or none) moves to it, except slots being imported.
fn update_slots_config_with(
    st: &mut ClusterState,
    env: &Env,
    db0: &Db,
    sender: &NodeId,
    epoch: u64,
    slots: &SlotBitmap,
    fx: &mut Effects,
) {
    if *sender == st.myself {
        tracing::warn!("Discarding UPDATE message about myself.");
        return;
    }
    let myself = st.myself;
    let curmaster = if st.me().is_master() { Some(myself) } else { st.me().master };
    let mut dirty: Vec<u16> = Vec::new();
    let mut newmaster = false;
    let mut sender_slots = 0usize;
    let mut migrated_our_slots = 0usize;
    for j in 0..SLOTS {
        if !slots.get(j) {
            continue;
        }
        sender_slots += 1;
        let owner = st.slots[j as usize];
        if owner == Some(*sender) || st.importing.contains_key(&j) {
            continue;
        }
        let owner_epoch = owner.and_then(|o| st.nodes.get(&o)).map(|n| n.config_epoch);
        if owner.is_none() || owner_epoch.is_none_or(|e| e < epoch) {
            if owner == Some(myself) && db0.count_in_slot(j) > 0 {
                dirty.push(j);
            }
            if owner.is_some() && owner == curmaster {
                newmaster = true;
                migrated_our_slots += 1;
            }
            st.set_slot_owner(j, *sender);
            st.changed();
        }
    }
    let cur_empty = curmaster.and_then(|c| st.nodes.get(&c)).is_some_and(|c| c.numslots() == 0);
    let grand_master = st.me().master.and_then(|m| st.nodes.get(&m)).and_then(|m| m.master);
    if newmaster && cur_empty && (env.allow_replica_migration || sender_slots == migrated_our_slots) {
        tracing::warn!("Configuration change detected. Reconfiguring myself as a replica of {}", id_str(sender));
        set_my_master(st, sender);
        fx.del_slots.extend(dirty);
    } else if let Some(gm) = grand_master {
        // Never a replica of a replica: follow the top of the chain.
        set_my_master(st, &gm);
        fx.del_slots.extend(dirty);
    } else if !dirty.is_empty() {
        fx.del_slots.extend(dirty);
    }
}

/// Gives an inbound link to the node that sent on it, replacing an older one
/// (`setClusterNodeToInboundClusterLink`).
fn set_inbound_link(st: &mut ClusterState, id: &NodeId, link: &Link) {
    let Some(n) = st.nodes.get_mut(id) else { return };
    if n.inbound_link.as_ref().is_some_and(|l| l.same(link)) {
        return;
    }
    if let Some(old) = n.inbound_link.replace(link.clone()) {
        tracing::debug!("Replacing inbound link for node {}", id_str(id));
        old.close();
    }
    link.set_node(Some(*id));
}

/// `clusterProcessGossipSection`.
fn process_gossip(st: &mut ClusterState, env: &Env, hdr: &Header, gossip: &[Gossip], link: &Link) {
    let sender = link.node().or(Some(hdr.sender)).filter(|s| st.nodes.contains_key(s));
    let sender_is_master = sender.and_then(|s| st.nodes.get(&s)).is_some_and(|s| s.is_master());
    let myself = st.myself;
    let now = env.now;
    for g in gossip {
        let gfail = g.flags & (nflags::FAIL | nflags::PFAIL) != 0;
        if st.nodes.contains_key(&g.name) {
            if let Some(s) = sender.filter(|_| sender_is_master && g.name != myself) {
                let Some(node) = st.nodes.get_mut(&g.name) else { continue };
                if gfail {
                    if failure::add_report(node, &s, now) {
                        tracing::debug!("Node {} reported node {} as not reachable.", id_str(&s), id_str(&g.name));
                    }
                    failure::mark_failing_if_needed(st, env, &g.name);
                } else if failure::del_report(node, &s, now, env.node_timeout) {
                    tracing::debug!("Node {} reported node {} is back online.", id_str(&s), id_str(&g.name));
                }
            }
            let Some(node) = st.nodes.get_mut(&g.name) else { continue };
            // Healthy from everyone's view and no ping of ours pending: take the freshest pong
            // time anyone saw, unless it is in the future.
            if !gfail && node.ping_sent == 0 && failure::count(node, now, env.node_timeout) == 0 {
                let pongtime = g.pong_received as i64 * 1000;
                if pongtime <= now + 500 && pongtime > node.pong_received {
                    node.pong_received = pongtime;
                }
            }
            // Unreachable for us, but reachable at another address for the sender: move.
            if node.has(nflags::FAIL | nflags::PFAIL)
                && g.flags & nflags::NOADDR == 0
                && !gfail
                && (!node.ip.eq_ignore_ascii_case(&g.ip) || node.port != g.port || node.cport != g.cport)
            {
                if let Some(old) = node.link.take() {
                    old.close();
                }
                node.ip = g.ip.clone();
                node.port = g.port;
                node.cport = g.cport;
                node.flags &= !nflags::NOADDR;
            }
        } else if sender.is_some()
            && g.flags & nflags::NOADDR == 0
            && !st.blacklisted(&g.name, now / 1000)
            && valid_name(&g.name)
        {
            // A node we never heard of, vouched for by a node we know: add it with its real name
            // (no handshake: its address may have been reused by another cluster).
            let mut n = ClusterNode::new(g.name, g.flags & !(nflags::MYSELF | nflags::MEET), now);
            n.ip = g.ip.clone();
            n.port = g.port;
            n.cport = g.cport;
            st.add_node(n);
            st.changed();
        }
    }
}

/// `clusterProcessPacket`. Returns false when the link must be closed.
pub fn process(srv: &mut Server, link: &Link, m: Msg) -> bool {
    let env = Env::new(&srv.config);
    let mut fx = Effects::default();
    let keep = {
        let db0 = &srv.dbs[0];
        let Some(st) = srv.cluster.as_deref_mut() else { return false };
        process_in(st, &env, db0, link, m, &mut fx)
    };
    apply(srv, fx);
    keep
}

fn process_in(st: &mut ClusterState, env: &Env, db0: &Db, link: &Link, m: Msg, fx: &mut Effects) -> bool {
    if !attached(st, link) {
        return false;
    }
    let now = env.now;
    let hdr = &m.hdr;
    let t = hdr.mtype;
    if (t as usize) < MSG_TYPES {
        st.stats_received[t as usize] += 1;
    }
    if hdr.ver != msg::PROTO_VER {
        tracing::debug!("Ignoring a cluster bus message of protocol version {}", hdr.ver);
        return true;
    }
    let myself = st.myself;
    let sender = Some(hdr.sender).filter(|s| st.nodes.contains_key(s));
    if sender == Some(myself) {
        // Our own name: we met ourselves (CLUSTER MEET to our own address) or a node cloned
        // our nodes.conf. Drop a handshake node behind it; ignore anything else.
        if let Some(lnode) = link.node().filter(|_| !link.inbound()) {
            if st.node(&lnode).is_some_and(|n| n.in_handshake()) {
                st.del_node(&lnode);
                st.changed();
                return false;
            }
        }
        return true;
    }
    if let Some(s) = sender {
        if link.inbound() && link.node().is_none() {
            set_inbound_link(st, &s, link);
        }
    }
    let mut sender_config_epoch = 0;
    if let Some(s) = sender.and_then(|s| st.nodes.get_mut(&s)) {
        s.data_received = now;
        if !s.in_handshake() {
            sender_config_epoch = hdr.config_epoch;
            if sender_config_epoch > s.config_epoch {
                s.config_epoch = sender_config_epoch;
                st.todo_save = true;
            }
            if hdr.current_epoch > st.current_epoch {
                st.current_epoch = hdr.current_epoch;
                st.todo_save = true;
            }
        }
    }
    if let Some(s) = sender.and_then(|s| st.nodes.get_mut(&s)) {
        s.repl_offset = hdr.offset as i64;
    }

    let is_ping = matches!(t, mtype::PING | mtype::PONG | mtype::MEET);
    if t == mtype::PING || t == mtype::MEET {
        // Learn our own address from the socket the peer reached us on (MEET, or any PING while
        // we know none), unless it is announced.
        if (t == mtype::MEET || st.me().ip.is_empty()) && env.announce_ip.is_empty() {
            let ip = link.local_ip();
            if !ip.is_empty() && ip != st.me().ip {
                tracing::warn!("IP address for this node updated to {ip}");
                st.me_mut().ip = ip;
                st.todo_save = true;
            }
        }
        if sender.is_none() && t == mtype::MEET {
            // Add it in handshake; its real name, role and slots come with its PONG.
            let mut n = ClusterNode::new(random_id(), nflags::HANDSHAKE, now);
            n.ip = node_ip(link, &hdr.myip);
            n.port = hdr.port;
            n.cport = hdr.cport;
            st.add_node(n);
            st.changed();
            if let Body::Ping { gossip, .. } = &m.body {
                process_gossip(st, env, hdr, gossip, link);
            }
        }
        send_ping(st, env, link, mtype::PONG);
    }

    if is_ping {
        if !link.inbound() {
            let Some(lnode) = link.node() else { return false };
            let in_handshake = st.node(&lnode).is_some_and(|n| n.in_handshake());
            if in_handshake {
                if let Some(s) = sender {
                    // We already know it: maybe it moved. Drop the handshake node (and link).
                    if update_address_if_needed(st, &s, link, hdr) {
                        st.changed();
                    }
                    st.del_node(&lnode);
                    st.changed();
                    return false;
                }
                if !valid_name(&hdr.sender) {
                    tracing::warn!("Handshake with a node sending an invalid name: dropping it.");
                    st.del_node(&lnode);
                    st.changed();
                    return false;
                }
                st.rename_node(&lnode, hdr.sender);
                link.set_node(Some(hdr.sender));
                if let Some(n) = st.nodes.get_mut(&hdr.sender) {
                    n.flags &= !nflags::HANDSHAKE;
                    n.flags |= hdr.flags & (nflags::MASTER | nflags::SLAVE);
                }
                tracing::debug!("Handshake with node {} completed.", id_str(&hdr.sender));
                st.changed();
            } else if lnode != hdr.sender {
                // Someone else answers at that address now: forget the address.
                tracing::debug!("PONG contains mismatching sender ID. About node {}", id_str(&lnode));
                if let Some(n) = st.nodes.get_mut(&lnode) {
                    n.flags |= nflags::NOADDR;
                    n.ip.clear();
                    n.port = 0;
                    n.cport = 0;
                }
                free_link(st, link);
                st.changed();
                return false;
            }
        }

        // The replica-failover opt-out is dynamic: trust what the sender says now.
        if let Some(s) = sender.and_then(|s| st.nodes.get_mut(&s)) {
            s.flags = (s.flags & !nflags::NOFAILOVER) | (hdr.flags & nflags::NOFAILOVER);
        }
        if let Some(s) = sender {
            let hs = st.node(&s).is_some_and(|n| n.in_handshake());
            if t == mtype::PING && !hs && update_address_if_needed(st, &s, link, hdr) {
                st.changed();
            }
        }
        if !link.inbound() && t == mtype::PONG {
            if let Some(id) = link.node() {
                let mut clear_fail = false;
                if let Some(n) = st.nodes.get_mut(&id) {
                    n.pong_received = now;
                    n.ping_sent = 0;
                    if n.has(nflags::PFAIL) {
                        n.flags &= !nflags::PFAIL;
                        st.changed();
                    } else if n.failed() {
                        clear_fail = true;
                    }
                }
                if clear_fail {
                    failure::clear_failure_if_needed(st, env, &id);
                }
            }
        }

        // Role: master, or replica of whom.
        if let Some(s) = sender {
            match hdr.slaveof {
                None => set_node_as_master(st, &s),
                Some(mid) => {
                    let master_known = st.nodes.contains_key(&mid);
                    if let Some(n) = st.nodes.get_mut(&s) {
                        if n.is_master() {
                            n.flags &= !(nflags::MASTER | nflags::MIGRATE_TO);
                            n.flags |= nflags::SLAVE;
                            st.del_node_slots(&s);
                            st.changed();
                        }
                    }
                    if master_known {
                        if let Some(n) = st.nodes.get_mut(&s) {
                            if n.master != Some(mid) {
                                n.master = Some(mid);
                                st.changed();
                            }
                        }
                    }
                }
            }
        }

        // Slots: only the differences matter.
        let mut dirty_slots = false;
        let mut sender_is_master = false;
        if let Some(sn) = sender.and_then(|s| st.nodes.get(&s)) {
            sender_is_master = sn.is_master();
            let sender_master =
                if sn.is_master() { Some(sn) } else { sn.master.as_ref().and_then(|m| st.nodes.get(m)) };
            if let Some(sm) = sender_master {
                dirty_slots = sm.slots != hdr.myslots;
            }
        }
        if let Some(s) = sender {
            if sender_is_master && dirty_slots {
                update_slots_config_with(st, env, db0, &s, sender_config_epoch, &hdr.myslots, fx);
            }
            // The sender claims slots that a node with a newer configEpoch owns: tell it.
            if dirty_slots {
                for j in 0..SLOTS {
                    if !hdr.myslots.get(j) {
                        continue;
                    }
                    let Some(owner) = st.slots[j as usize] else { continue };
                    if owner == s {
                        continue;
                    }
                    if st.node(&owner).is_some_and(|o| o.config_epoch > sender_config_epoch) {
                        tracing::debug!(
                            "Node {} has old slots configuration, sending an UPDATE message about {}",
                            id_str(&s),
                            id_str(&owner)
                        );
                        let l = st.node(&s).and_then(|n| n.link.clone());
                        send_update(st, env, l, &owner);
                        break;
                    }
                }
            }
            let collide = {
                let me = st.me();
                let sn = st.node(&s);
                me.is_master() && sn.is_some_and(|n| n.is_master()) && sender_config_epoch == me.config_epoch
            };
            if collide {
                handle_epoch_collision(st, &s);
            }
            if let Body::Ping { gossip, hostname, .. } = &m.body {
                process_gossip(st, env, hdr, gossip, link);
                let h = hostname.clone().unwrap_or_default();
                if let Some(n) = st.nodes.get_mut(&s) {
                    if n.hostname != h {
                        n.hostname = h;
                        st.todo_save = true;
                    }
                }
            }
        }
    } else if t == mtype::FAIL {
        let Body::Fail { about } = &m.body else { return true };
        if sender.is_some() {
            if let Some(f) = st.nodes.get_mut(about) {
                if !f.has(nflags::FAIL | nflags::MYSELF) {
                    tracing::info!("FAIL message received from {} about {}", id_str(&hdr.sender), id_str(about));
                    f.flags |= nflags::FAIL;
                    f.fail_time = now;
                    f.flags &= !nflags::PFAIL;
                    st.changed();
                }
            }
        } else {
            tracing::info!(
                "Ignoring FAIL message from unknown node {} about {}",
                String::from_utf8_lossy(&hdr.sender),
                String::from_utf8_lossy(about)
            );
        }
    } else if t == mtype::UPDATE {
        let Body::Update { config_epoch, node, slots } = &m.body else { return true };
        if sender.is_none() {
            return true;
        }
        let Some(n) = st.nodes.get(node) else { return true };
        if n.config_epoch >= *config_epoch {
            return true;
        }
        if n.is_replica() {
            set_node_as_master(st, node);
        }
        if let Some(n) = st.nodes.get_mut(node) {
            n.config_epoch = *config_epoch;
        }
        st.todo_save = true;
        update_slots_config_with(st, env, db0, node, *config_epoch, slots, fx);
    } else if t == mtype::PUBLISH {
        // From an unknown node: ignored, as Redis does.
        let Body::Publish { channel, message } = m.body else { return true };
        if sender.is_none() {
            return true;
        }
        fx.publish = Some((channel, message));
    } else if (t as usize) < MSG_TYPES {
        // Sharded PUBLISH, failover votes, manual failover, modules: counted; acted upon once
        // sharded pub/sub and failover land.
        tracing::debug!("{} message received from {}", mtype::name(t), String::from_utf8_lossy(&hdr.sender));
    } else {
        tracing::warn!("Received unknown packet type: {t}");
    }
    true
}

/// A fresh outbound link is up: greet with MEET (CLUSTER MEET) or PING, keeping the time of a
/// ping that was already in flight so a flapping link cannot hide a dead node.
pub fn on_connected(srv: &mut Server, link: &Link) -> bool {
    let env = Env::new(&srv.config);
    let Some(st) = srv.cluster.as_deref_mut() else { return false };
    if !attached(st, link) {
        return false;
    }
    let Some(id) = link.node() else { return false };
    let Some(n) = st.nodes.get(&id) else { return false };
    let old_ping_sent = n.ping_sent;
    let t = if n.has(nflags::MEET) { mtype::MEET } else { mtype::PING };
    send_ping(st, &env, link, t);
    if let Some(n) = st.nodes.get_mut(&id) {
        if old_ping_sent != 0 {
            n.ping_sent = old_ping_sent;
        }
        n.flags &= !nflags::MEET;
    }
    true
}

/// Sends the PONGs commands asked for (`todo_broadcast_pong`).
pub fn flush_todo(st: &mut ClusterState, env: &Env) {
    if st.todo_broadcast_pong {
        st.todo_broadcast_pong = false;
        broadcast_pong(st, env);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const ME: NodeId = *b"5555555555555555555555555555555555555555";
    const A: NodeId = *b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: NodeId = *b"1111111111111111111111111111111111111111";

    fn env() -> Env {
        Env {
            now: 1_000_000,
            node_timeout: 1000,
            announce_ip: String::new(),
            allow_replica_migration: true,
            sendbuf_limit: 0,
        }
    }

    fn state() -> ClusterState {
        let mut st = ClusterState::new(ME, PathBuf::from("/nonexistent/nodes.conf"), 0);
        for id in [A, B] {
            let mut n = ClusterNode::new(id, nflags::MASTER, 0);
            n.ip = "127.0.0.1".into();
            n.port = 1;
            n.cport = 2;
            st.add_node(n);
        }
        st
    }

    fn ping(t: u16, sender: NodeId, epoch: u64, slots: &[u16], gossip: Vec<Gossip>) -> Msg {
        let mut hdr = Header::new(t, sender);
        hdr.config_epoch = epoch;
        hdr.current_epoch = epoch;
        hdr.port = 1;
        hdr.cport = 2;
        hdr.flags = nflags::MASTER;
        for s in slots {
            hdr.myslots.set(*s, true);
        }
        Msg { hdr, body: Body::Ping { gossip, hostname: None, other: Vec::new() } }
    }

    fn inbound() -> Link {
        let l = Link::new(true, None);
        *l.shared.peer_ip.borrow_mut() = "127.0.0.1".into();
        *l.shared.local_ip.borrow_mut() = "127.0.0.9".into();
        l
    }

    #[test]
    fn higher_config_epoch_wins_slots_and_lost_keys_are_listed() {
        let mut st = state();
        let mut db = Db::new();
        db.enable_slot_index();
        let key = (0..100_000).map(|i| format!("k{i}")).find(|k| crate::cluster::key_slot(k.as_bytes()) == 7).unwrap();
        db.set(key.as_bytes(), crate::node::types::Value::Str(b"v".to_vec()), 0);
        st.me_mut().config_epoch = 3;
        for s in 0..10 {
            st.add_slot(s, ME);
        }
        st.add_slot(20, B);
        st.add_slot(21, B);
        st.importing.insert(21, B);
        st.node_mut(&B).unwrap().config_epoch = 9;
        let mut fx = Effects::default();
        // A claims 5..=7 with epoch 2 (older than ours): nothing moves.
        let m = ping(mtype::PING, A, 2, &[5, 6, 7], vec![]);
        assert!(process_in(&mut st, &env(), &db, &inbound(), m, &mut fx));
        assert!(st.i_own(7));
        // With epoch 4 it wins 5..=7; slot 7 held a key. Slot 20 (B, epoch 9) stays, slot 21 is
        // being imported and stays too.
        let m = ping(mtype::PING, A, 4, &[5, 6, 7, 20, 21], vec![]);
        assert!(process_in(&mut st, &env(), &db, &inbound(), m, &mut fx));
        assert_eq!(st.slots[7], Some(A));
        assert_eq!(st.slots[5], Some(A));
        assert_eq!(st.slots[20], Some(B));
        assert_eq!(st.slots[21], Some(B));
        assert!(st.i_own(4));
        assert_eq!(fx.del_slots, vec![7]);
        assert!(st.me().is_master());
        assert!(st.todo_save);
    }

    #[test]
    fn a_master_losing_every_slot_becomes_a_replica_of_the_winner() {
        let mut st = state();
        let db = Db::new();
        st.me_mut().config_epoch = 1;
        st.add_slot(100, ME);
        let mut fx = Effects::default();
        let m = ping(mtype::PING, A, 5, &[100], vec![]);
        assert!(process_in(&mut st, &env(), &db, &inbound(), m, &mut fx));
        assert!(st.me().is_replica());
        assert_eq!(st.me().master, Some(A));
    }

    #[test]
    fn epoch_collision_bumps_the_smaller_name_only() {
        let mut st = state();
        st.current_epoch = 7;
        st.me_mut().config_epoch = 4;
        st.node_mut(&A).unwrap().config_epoch = 4;
        st.node_mut(&B).unwrap().config_epoch = 4;
        handle_epoch_collision(&mut st, &B); // B's name is smaller than ours: B moves, not us
        assert_eq!(st.me().config_epoch, 4);
        handle_epoch_collision(&mut st, &A); // A's name is larger: we take a new epoch
        assert_eq!(st.current_epoch, 8);
        assert_eq!(st.me().config_epoch, 8);
    }

    #[test]
    fn meet_from_a_stranger_adds_a_handshake_node_and_learns_our_ip() {
        let mut st = state();
        let db = Db::new();
        let stranger = *b"9999999999999999999999999999999999999999";
        let link = inbound();
        let before = st.nodes.len();
        let mut fx = Effects::default();
        assert!(process_in(&mut st, &env(), &db, &link, ping(mtype::MEET, stranger, 0, &[], vec![]), &mut fx));
        assert_eq!(st.nodes.len(), before + 1);
        let hs = st.nodes.values().find(|n| n.in_handshake()).expect("handshake node");
        assert_eq!((hs.ip.as_str(), hs.port, hs.cport), ("127.0.0.1", 1, 2));
        assert_eq!(st.me().ip, "127.0.0.9");
        assert_eq!(st.stats_received[mtype::MEET as usize], 1);
        assert_eq!(st.stats_sent[mtype::PONG as usize], 1);
        // The PONG went back on the link the MEET came in on.
        assert!(link.send_buffer_used() >= msg::HEADER_LEN);
    }

    #[test]
    fn gossip_adds_vouched_nodes_and_counts_failure_reports() {
        let mut st = state();
        let db = Db::new();
        st.size = 3;
        let g = |name: NodeId, flags: u16| Gossip {
            name,
            ping_sent: 0,
            pong_received: 0,
            ip: "127.0.0.1".into(),
            port: 9,
            cport: 10,
            flags,
            pport: 0,
        };
        let new_ok = *b"cccccccccccccccccccccccccccccccccccccccc";
        let banned = *b"dddddddddddddddddddddddddddddddddddddddd";
        let bad_name = *b"ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";
        st.blacklist_add(banned, 1000);
        st.node_mut(&B).unwrap().flags |= nflags::PFAIL;
        let mut fx = Effects::default();
        let gossip = vec![
            g(new_ok, nflags::MASTER),
            g(banned, nflags::MASTER),
            g(bad_name, nflags::MASTER),
            g(B, nflags::PFAIL | nflags::MASTER),
        ];
        // From an unknown sender nothing is added.
        let stranger = *b"9999999999999999999999999999999999999999";
        assert!(process_in(
            &mut st,
            &env(),
            &db,
            &inbound(),
            ping(mtype::PING, stranger, 0, &[], gossip.clone()),
            &mut fx
        ));
        assert!(st.node(&new_ok).is_none());
        // From A (a known master): the valid, unbanned node is added; A's report plus our own
        // vote reach the quorum of 2 out of 3, so B turns FAIL and a FAIL is broadcast.
        let a_link = Link::new(false, Some(A));
        st.node_mut(&A).unwrap().link = Some(a_link.clone());
        assert!(process_in(&mut st, &env(), &db, &inbound(), ping(mtype::PING, A, 0, &[], gossip), &mut fx));
        assert!(st.node(&new_ok).is_some_and(|n| n.port == 9 && n.cport == 10 && !n.in_handshake()));
        assert!(st.node(&banned).is_none());
        assert!(st.node(&bad_name).is_none());
        let b = st.node(&B).unwrap();
        assert!(b.failed() && !b.has(nflags::PFAIL));
        assert_eq!(st.stats_sent[mtype::FAIL as usize], 1);
        assert!(a_link.send_buffer_used() > 0);
    }

    #[test]
    fn publish_is_broadcast_to_every_linked_node_and_delivered_once() {
        let mut st = state();
        let db = Db::new();
        // A has a link; B has none (not connected yet): only A's link gets the message.
        let a_link = Link::new(false, Some(A));
        st.node_mut(&A).unwrap().link = Some(a_link.clone());
        send_publish(&mut st, &env(), b"ch", b"hi");
        assert_eq!(st.stats_sent[mtype::PUBLISH as usize], 1);
        let q = a_link.shared.queue.borrow().front().cloned().expect("queued on A's link");
        let m = msg::decode(&q).expect("decodes");
        assert_eq!(m.hdr.mtype, mtype::PUBLISH);
        assert_eq!(m.hdr.sender, ME);
        assert_eq!(m.body, Body::Publish { channel: b"ch".to_vec(), message: b"hi".to_vec() });
        // One byte more than a bus message may carry: kept local, nothing queued.
        let huge = vec![b'x'; msg::MAX_MSG_LEN - msg::HEADER_LEN - msg::PUBLISH_FIXED - 1];
        send_publish(&mut st, &env(), b"ch", &huge);
        assert_eq!(st.stats_sent[mtype::PUBLISH as usize], 1);
        assert_eq!(a_link.shared.queue.borrow().len(), 1);

        // Received from a known node: delivered locally, nothing sent back or on.
        let mut fx = Effects::default();
        let from_a = Msg { hdr: Header::new(mtype::PUBLISH, A), body: m.body.clone() };
        assert!(process_in(&mut st, &env(), &db, &inbound(), from_a, &mut fx));
        assert_eq!(fx.publish, Some((b"ch".to_vec(), b"hi".to_vec())));
        assert_eq!(st.stats_received[mtype::PUBLISH as usize], 1);
        assert_eq!(st.stats_sent[mtype::PUBLISH as usize], 1);

        // From a node we do not know: ignored, as Redis does.
        let mut fx = Effects::default();
        let stranger = *b"9999999999999999999999999999999999999999";
        let from_stranger = Msg { hdr: Header::new(mtype::PUBLISH, stranger), body: m.body };
        assert!(process_in(&mut st, &env(), &db, &inbound(), from_stranger, &mut fx));
        assert_eq!(fx.publish, None);
    }
}
