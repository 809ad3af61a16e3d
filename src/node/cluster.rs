//! Cluster mode: the node's view of the cluster (nodes, slots, epochs), kept as Redis 7.0 keeps
//! `clusterState`, and written to `nodes.conf` in Redis's own format so a restarted node rejoins
//! with its id, epochs and slots.
//!
//! - this file: the state, slot ownership, `cluster_state` (ok/fail), the NODES line format
//! - [`conf`]:  nodes.conf load and atomic save
//! - [`bus`]:   the cluster bus (Redis's binary protocol on the bus port): links, PING/PONG/MEET/FAIL,
//!   gossip, failure detection, epochs
//! - [`route`]: the slot check every keyed command passes (MOVED/ASK/CROSSSLOT/TRYAGAIN/CLUSTERDOWN)
//!
//! The state lives in [`crate::node::server::Server::cluster`], owned by the node's one thread like
//! the keyspace: commands and bus messages are handled in turn, never concurrently.

pub mod bus;
pub mod conf;
pub mod route;

use crate::cluster::SLOTS;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;

/// A node name: 40 lowercase hex characters.
pub type NodeId = [u8; 40];

/// Node flags, with Redis's bit values (`CLUSTER_NODE_*`) so they travel on the bus unchanged.
pub mod nflags {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;
}

/// The flags field of CLUSTER NODES, in Redis's order (`representClusterNodeFlags`).
pub fn flags_string(flags: u16) -> String {
    const NAMES: &[(u16, &str)] = &[
        (nflags::MYSELF, "myself"),
        (nflags::MASTER, "master"),
        (nflags::SLAVE, "slave"),
        (nflags::PFAIL, "fail?"),
        (nflags::FAIL, "fail"),
        (nflags::HANDSHAKE, "handshake"),
        (nflags::NOADDR, "noaddr"),
        (nflags::NOFAILOVER, "nofailover"),
    ];
    let words: Vec<&str> = NAMES.iter().filter(|(b, _)| flags & b != 0).map(|(_, n)| *n).collect();
    if words.is_empty() {
        "noflags".into()
    } else {
        words.join(",")
    }
}

/// A fresh random node name.
pub fn random_id() -> NodeId {
    use rand::Rng;
    let mut r = rand::thread_rng();
    let mut id = [0u8; 40];
    for b in id.iter_mut() {
        *b = b"0123456789abcdef"[r.gen_range(0..16)];
    }
    id
}

pub fn id_str(id: &NodeId) -> &str {
    std::str::from_utf8(id).unwrap_or("????????????????????????????????????????")
}

/// Parses a node name as CLUSTER commands receive it (exactly 40 bytes; case is kept, like Redis).
pub fn parse_id(s: &[u8]) -> Option<NodeId> {
    s.try_into().ok()
}

/// 16384 bits, one per slot.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotBitmap(pub Box<[u64; SLOTS as usize / 64]>);

impl Default for SlotBitmap {
    fn default() -> Self {
        SlotBitmap(Box::new([0; SLOTS as usize / 64]))
    }
}

impl std::fmt::Debug for SlotBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotBitmap({})", ranges_string(&self.ranges()))
    }
}

impl SlotBitmap {
    pub fn get(&self, slot: u16) -> bool {
        self.0[slot as usize / 64] & (1 << (slot % 64)) != 0
    }
    pub fn set(&mut self, slot: u16, on: bool) {
        let w = &mut self.0[slot as usize / 64];
        if on {
            *w |= 1 << (slot % 64);
        } else {
            *w &= !(1 << (slot % 64));
        }
    }
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    pub fn clear(&mut self) {
        self.0.fill(0);
    }
    /// The set slots as inclusive ranges, ascending.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        let mut push = |s: u16, e: u16| match out.last_mut() {
            Some(r) if r.1 + 1 == s => r.1 = e,
            _ => out.push((s, e)),
        };
        // Word at a time: CLUSTER NODES and every nodes.conf save print these.
        for (i, &w) in self.0.iter().enumerate() {
            let base = (i * 64) as u16;
            match w {
                0 => {}
                u64::MAX => push(base, base + 63),
                _ => {
                    for b in 0..64 {
                        if w & (1 << b) != 0 {
                            push(base + b, base + b);
                        }
                    }
                }
            }
        }
        out
    }
    /// The bitmap as the bus sends it: little-endian bit order within bytes, like Redis's
    /// `unsigned char slots[16384/8]` (bit `slot & 7` of byte `slot >> 3`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
    pub fn from_bytes(b: &[u8]) -> SlotBitmap {
        let mut m = SlotBitmap::default();
        for (i, chunk) in b.chunks(8).take(m.0.len()).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            m.0[i] = u64::from_le_bytes(w);
        }
        m
    }
}

/// `0-5460 5462 6000-6001`.
pub fn ranges_string(ranges: &[(u16, u16)]) -> String {
    let mut s = String::new();
    for (i, (a, b)) in ranges.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        if a == b {
            let _ = write!(s, "{a}");
        } else {
            let _ = write!(s, "{a}-{b}");
        }
    }
    s
}

/// A failure report: `node` said at `time` (unix ms) that the reported node is PFAIL or FAIL.
#[derive(Debug, Clone)]
pub struct FailReport {
    pub node: NodeId,
    pub time: i64,
}

/// One known node, as Redis's `clusterNode`.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    pub id: NodeId,
    /// Unix ms of creation (handshake timeouts).
    pub ctime: i64,
    pub flags: u16,
    pub ip: String,
    pub hostname: String,
    pub port: u16,
    pub cport: u16,
    pub config_epoch: u64,
    pub slots: SlotBitmap,
    /// The master this replica follows.
    pub master: Option<NodeId>,
    /// Unix ms: when the ping in flight was sent (0: none in flight).
    pub ping_sent: i64,
    /// Unix ms of the last PONG.
    pub pong_received: i64,
    /// Unix ms of the last data received on any link from this node.
    pub data_received: i64,
    /// Unix ms when FAIL was set.
    pub fail_time: i64,
    /// Unix ms of the last vote given for one of this master's replicas.
    pub voted_time: i64,
    pub repl_offset: i64,
    pub fail_reports: Vec<FailReport>,
    /// The outbound bus link (we connected to it).
    pub link: Option<bus::Link>,
    /// The inbound bus link (it connected to us).
    pub inbound_link: Option<bus::Link>,
}

impl ClusterNode {
    pub fn new(id: NodeId, flags: u16, now: i64) -> ClusterNode {
        ClusterNode {
            id,
            ctime: now,
            flags,
            ip: String::new(),
            hostname: String::new(),
            port: 0,
            cport: 0,
            config_epoch: 0,
            slots: SlotBitmap::default(),
            master: None,
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            voted_time: 0,
            repl_offset: 0,
            fail_reports: Vec::new(),
            link: None,
            inbound_link: None,
        }
    }
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
    pub fn is_master(&self) -> bool {
        self.has(nflags::MASTER)
    }
    pub fn is_replica(&self) -> bool {
        self.has(nflags::SLAVE)
    }
    pub fn failed(&self) -> bool {
        self.has(nflags::FAIL)
    }
    pub fn in_handshake(&self) -> bool {
        self.has(nflags::HANDSHAKE)
    }
    pub fn numslots(&self) -> usize {
        self.slots.count()
    }
}

/// How many bus message types Redis 7.0 has (`CLUSTERMSG_TYPE_COUNT`), for the per-type stats.
pub const MSG_TYPES: usize = 11;

/// The node's view of the cluster, as Redis's `clusterState`.
#[derive(Debug)]
pub struct ClusterState {
    pub myself: NodeId,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    /// `cluster_state:ok`.
    pub ok: bool,
    pub nodes: BTreeMap<NodeId, ClusterNode>,
    /// Nodes forgotten by CLUSTER FORGET, with the unix-seconds time their ban ends: gossip about
    /// them is ignored until then, so they do not come back.
    pub blacklist: HashMap<NodeId, i64>,
    /// The owner of each slot.
    pub slots: Vec<Option<NodeId>>,
    /// Slots being moved from this node to another (`[slot->-id]`).
    pub migrating: BTreeMap<u16, NodeId>,
    /// Slots being moved to this node from another (`[slot-<-id]`).
    pub importing: BTreeMap<u16, NodeId>,
    /// Masters serving at least one slot (`cluster_size`).
    pub size: usize,
    pub stats_sent: [u64; MSG_TYPES],
    pub stats_received: [u64; MSG_TYPES],
    pub stats_pfail_nodes: u64,
    /// Where nodes.conf lives.
    pub config_path: PathBuf,
    /// Set when the state changed and nodes.conf must be written before the next reply leaves
    /// (Redis's `clusterDoBeforeSleep` with CLUSTER_TODO_SAVE_CONFIG).
    pub todo_save: bool,
    /// Set when `cluster_state` must be recomputed.
    pub todo_update_state: bool,
    /// The epochs (current, last vote, mine) last written with fsync: a save that changes them is
    /// made durable, others only atomic (see [`conf::save`]).
    pub saved_epochs: Option<(u64, u64, u64)>,
    /// Set when every node should hear our new configuration now rather than at the next ping
    /// (Redis's `clusterBroadcastPong` after SETSLOT NODE, BUMPEPOCH, a won election...).
    pub todo_broadcast_pong: bool,
    /// Unix ms when this master found itself in a minority partition (Redis's
    /// `among_minority_time`), and when the state last changed to fail.
    pub among_minority_time: i64,
    pub state_fail_time: i64,
    /// Unix ms when the node started (the first `cluster_state` may only turn ok after a delay
    /// once the node has seen the others, like Redis's rejoin delay).
    pub start_time: i64,
}

impl ClusterState {
    /// A new cluster of one: this node, a master with no slots.
    pub fn new(myself: NodeId, config_path: PathBuf, now: i64) -> ClusterState {
        let mut nodes = BTreeMap::new();
        nodes.insert(myself, ClusterNode::new(myself, nflags::MYSELF | nflags::MASTER, now));
        ClusterState {
            myself,
            current_epoch: 0,
            last_vote_epoch: 0,
            ok: false,
            nodes,
            blacklist: HashMap::new(),
            slots: vec![None; SLOTS as usize],
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            // Redis starts at 1 and recomputes it once the startup delay is over.
            size: 1,
            stats_sent: [0; MSG_TYPES],
            stats_received: [0; MSG_TYPES],
            stats_pfail_nodes: 0,
            config_path,
            todo_save: false,
            todo_update_state: true,
            todo_broadcast_pong: false,
            saved_epochs: None,
            among_minority_time: 0,
            state_fail_time: 0,
            start_time: now,
        }
    }

    /// What must survive a power loss once acknowledged: currentEpoch, lastVoteEpoch, my
    /// configEpoch.
    pub fn durable_epochs(&self) -> (u64, u64, u64) {
        (self.current_epoch, self.last_vote_epoch, self.me().config_epoch)
    }

    pub fn me(&self) -> &ClusterNode {
        self.nodes.get(&self.myself).expect("myself is always known")
    }
    pub fn me_mut(&mut self) -> &mut ClusterNode {
        self.nodes.get_mut(&self.myself).expect("myself is always known")
    }
    pub fn node(&self, id: &NodeId) -> Option<&ClusterNode> {
        self.nodes.get(id)
    }
    pub fn node_mut(&mut self, id: &NodeId) -> Option<&mut ClusterNode> {
        self.nodes.get_mut(id)
    }
    pub fn owner(&self, slot: u16) -> Option<&ClusterNode> {
        self.slots[slot as usize].as_ref().and_then(|id| self.nodes.get(id))
    }
    pub fn i_own(&self, slot: u16) -> bool {
        self.slots[slot as usize] == Some(self.myself)
    }
    /// The node whose slots a replica serves: itself for a master.
    pub fn master_of<'a>(&'a self, n: &'a ClusterNode) -> &'a ClusterNode {
        n.master.as_ref().and_then(|m| self.nodes.get(m)).unwrap_or(n)
    }

    /// Asks for nodes.conf to be written and the state recomputed before the next reply.
    pub fn changed(&mut self) {
        self.todo_save = true;
        self.todo_update_state = true;
    }

    /// Assigns a free slot; false if it already has an owner (Redis's `clusterAddSlot`).
    pub fn add_slot(&mut self, slot: u16, id: NodeId) -> bool {
        if self.slots[slot as usize].is_some() {
            return false;
        }
        if let Some(n) = self.nodes.get_mut(&id) {
            n.slots.set(slot, true);
        }
        self.slots[slot as usize] = Some(id);
        true
    }

    /// Unassigns a slot; false if it had no owner (Redis's `clusterDelSlot`).
    pub fn del_slot(&mut self, slot: u16) -> bool {
        let Some(id) = self.slots[slot as usize].take() else {
            return false;
        };
        if let Some(n) = self.nodes.get_mut(&id) {
            n.slots.set(slot, false);
        }
        true
    }

    /// Gives a slot to `id`, whoever had it.
    pub fn set_slot_owner(&mut self, slot: u16, id: NodeId) {
        self.del_slot(slot);
        self.add_slot(slot, id);
    }

    /// Unassigns every slot of a node; returns how many it had.
    pub fn del_node_slots(&mut self, id: &NodeId) -> usize {
        let mut n = 0;
        for s in 0..SLOTS {
            if self.slots[s as usize] == Some(*id) {
                self.del_slot(s);
                n += 1;
            }
        }
        n
    }

    pub fn add_node(&mut self, node: ClusterNode) {
        self.nodes.insert(node.id, node);
    }

    /// Removes a node and every trace of it: its slots, its failure reports about others,
    /// migrating/importing entries naming it, replicas pointing at it (Redis's `clusterDelNode`).
    /// Its links are dropped with it (their tasks notice and end).
    pub fn del_node(&mut self, id: &NodeId) -> Option<ClusterNode> {
        for s in 0..SLOTS as usize {
            if self.slots[s] == Some(*id) {
                self.slots[s] = None;
            }
        }
        self.migrating.retain(|_, v| v != id);
        self.importing.retain(|_, v| v != id);
        for n in self.nodes.values_mut() {
            n.fail_reports.retain(|r| r.node != *id);
            if n.master == Some(*id) {
                n.master = None;
            }
        }
        let removed = self.nodes.remove(id);
        self.todo_update_state = true;
        removed
    }

    /// Gives a node met by handshake its real name (Redis's `clusterRenameNode`).
    pub fn rename_node(&mut self, old: &NodeId, new: NodeId) {
        if let Some(mut n) = self.nodes.remove(old) {
            n.id = new;
            for s in 0..SLOTS as usize {
                if self.slots[s] == Some(*old) {
                    self.slots[s] = Some(new);
                }
            }
            self.nodes.insert(new, n);
        }
    }

    /// CLUSTER MEET: adds a nameless node in HANDSHAKE|MEET state; the bus connects to it, sends
    /// MEET, and learns its real name from the reply (`clusterStartHandshake`). False if a
    /// handshake with that address is already under way.
    pub fn start_handshake(&mut self, ip: &str, port: u16, cport: u16, now: i64) -> bool {
        if self.handshake_in_progress(ip, port, cport) {
            return false;
        }
        let mut n = ClusterNode::new(random_id(), nflags::HANDSHAKE | nflags::MEET, now);
        n.ip = ip.to_string();
        n.port = port;
        n.cport = cport;
        self.add_node(n);
        true
    }

    /// CLUSTER FORGET bans a node for this long (seconds), so gossip does not bring it back.
    pub const BLACKLIST_TTL: i64 = 60;

    pub fn blacklist_add(&mut self, id: NodeId, now_secs: i64) {
        self.blacklist.retain(|_, until| *until > now_secs);
        self.blacklist.insert(id, now_secs + Self::BLACKLIST_TTL);
    }

    pub fn blacklisted(&self, id: &NodeId, now_secs: i64) -> bool {
        self.blacklist.get(id).is_some_and(|until| *until > now_secs)
    }

    /// Is a handshake with this address already under way (`clusterHandshakeInProgress`)?
    pub fn handshake_in_progress(&self, ip: &str, port: u16, cport: u16) -> bool {
        self.nodes.values().any(|n| n.in_handshake() && n.ip == ip && n.port == port && n.cport == cport)
    }

    pub fn masters(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.values().filter(|n| n.is_master())
    }

    pub fn replicas_of(&self, id: &NodeId) -> impl Iterator<Item = &ClusterNode> + '_ {
        let id = *id;
        self.nodes.values().filter(move |n| n.is_replica() && n.master == Some(id))
    }

    /// The largest configEpoch any node has (`clusterGetMaxEpoch`), at least currentEpoch.
    pub fn max_epoch(&self) -> u64 {
        self.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0).max(self.current_epoch)
    }

    /// Makes myself a replica of `master` (`clusterSetMaster`): a master stops serving open
    /// slots. The data side (replication) hooks in where this is called.
    pub fn set_my_master(&mut self, master: NodeId) {
        let me = self.me_mut();
        if me.is_master() {
            me.flags &= !(nflags::MASTER | nflags::MIGRATE_TO);
            me.flags |= nflags::SLAVE;
            self.migrating.clear();
            self.importing.clear();
        }
        self.me_mut().master = Some(master);
        self.changed();
    }

    /// Takes a new configEpoch without asking the other masters, unless mine is already the
    /// unique greatest (`clusterBumpConfigEpochWithoutConsensus`). True if it changed.
    pub fn bump_epoch_without_consensus(&mut self) -> bool {
        let max = self.max_epoch();
        let mine = self.me().config_epoch;
        if mine == 0 || mine != max {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            self.changed();
            tracing::info!("New configEpoch set to {e}");
            true
        } else {
            false
        }
    }

    /// CLUSTER RESET (`clusterReset`): become a master of no slots that knows no other node;
    /// a hard reset also takes a new name and zeroes the epochs. The caller empties the data of
    /// a former replica.
    pub fn reset(&mut self, hard: bool) {
        let me = self.me_mut();
        if me.is_replica() {
            me.flags &= !nflags::SLAVE;
            me.flags |= nflags::MASTER;
            me.master = None;
        }
        self.migrating.clear();
        self.importing.clear();
        for s in 0..SLOTS {
            self.del_slot(s);
        }
        let others: Vec<NodeId> = self.nodes.keys().filter(|id| **id != self.myself).copied().collect();
        for id in others {
            self.del_node(&id);
        }
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            self.me_mut().config_epoch = 0;
            tracing::warn!("configEpoch set to 0 via CLUSTER RESET HARD");
            let (old, new) = (self.myself, random_id());
            self.rename_node(&old, new);
            self.myself = new;
            tracing::info!("Node hard reset, now I'm {}", id_str(&new));
        }
        self.changed();
    }

    /// How many slots the nodes matching `pred` serve, from their bitmaps (256 words a node, not
    /// 16384 owner lookups: this runs after every CLUSTER SETSLOT, five per slot a reshard moves).
    /// A node's bitmap holds exactly the slots `slots` gives it: both change only through
    /// `add_slot`/`del_slot`.
    pub fn slots_served_by(&self, pred: impl Fn(&ClusterNode) -> bool) -> usize {
        let mut union = [0u64; SLOTS as usize / 64];
        for n in self.nodes.values().filter(|n| pred(n)) {
            for (u, w) in union.iter_mut().zip(n.slots.0.iter()) {
                *u |= w;
            }
        }
        union.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Calls `f(first slot, length, owner)` once per run of consecutive slots with the same owner
    /// (None: unassigned or an unknown node), ascending. Owners come in long runs, so this looks a
    /// node up a few times instead of 16384 (CLUSTER SLOTS).
    pub fn owner_runs<'a>(&'a self, mut f: impl FnMut(u16, usize, Option<&'a ClusterNode>)) {
        let mut i = 0;
        while i < self.slots.len() {
            let id = &self.slots[i];
            let len = self.slots[i..].iter().take_while(|o| *o == id).count();
            f(i as u16, len, id.as_ref().and_then(|id| self.nodes.get(id)));
            i += len;
        }
    }

    /// Recomputes `cluster_state` and `cluster_size` (Redis's `clusterUpdateState`): fail when a
    /// slot is unassigned or served by a FAIL node (with cluster-require-full-coverage), or when
    /// this master can reach less than a majority of the masters that serve slots.
    pub fn update_state(&mut self, now: i64, node_timeout: i64, require_full_coverage: bool) {
        self.todo_update_state = false;
        // A master that just started waits before turning ok, so that it learns about a newer
        // configuration first if it was partitioned (`CLUSTER_WRITABLE_DELAY`, 2 s).
        let me_master = self.me().is_master();
        if me_master && !self.ok && now - self.start_time < 2000 {
            return;
        }
        let mut new_ok = true;
        if require_full_coverage && self.slots_served_by(|n| !n.failed()) < SLOTS as usize {
            new_ok = false;
        }
        let mut size = 0;
        let mut reachable = 0;
        for n in self.nodes.values() {
            if n.is_master() && n.numslots() > 0 {
                size += 1;
                if !n.has(nflags::FAIL | nflags::PFAIL) {
                    reachable += 1;
                }
            }
        }
        self.size = size;
        let quorum = size / 2 + 1;
        if reachable < quorum {
            new_ok = false;
            self.among_minority_time = now;
        }
        if new_ok != self.ok {
            // Rejoining the majority side: wait a little (`CLUSTER_MAX_REJOIN_DELAY` bounds it)
            // so this master does not accept writes before it learns what changed.
            let rejoin_delay = node_timeout.clamp(500, 5000);
            if new_ok && me_master && now - self.among_minority_time < rejoin_delay {
                return;
            }
            if !new_ok {
                self.state_fail_time = now;
            }
            tracing::info!("Cluster state changed: {}", if new_ok { "ok" } else { "fail" });
            self.ok = new_ok;
        }
    }

    /// One CLUSTER NODES line (and nodes.conf line), without the newline, as Redis's
    /// `clusterGenNodeDescription`. Migrating/importing entries are shown for myself only.
    pub fn describe(&self, n: &ClusterNode) -> String {
        let mut s = String::with_capacity(128);
        let _ = write!(s, "{} {}:{}@{}", id_str(&n.id), n.ip, n.port, n.cport);
        if !n.hostname.is_empty() {
            let _ = write!(s, ",{}", n.hostname);
        }
        let _ = write!(s, " {} ", flags_string(n.flags));
        match &n.master {
            Some(m) => s.push_str(id_str(m)),
            None => s.push('-'),
        }
        let connected = n.has(nflags::MYSELF) || n.link.is_some();
        // A replica shows its master's epoch (Redis 7.0), the epoch of the slots it serves.
        let epoch = match n.master.as_ref().and_then(|m| self.nodes.get(m)) {
            Some(m) if n.is_replica() => m.config_epoch,
            _ => n.config_epoch,
        };
        let _ = write!(
            s,
            " {} {} {} {}",
            n.ping_sent,
            n.pong_received,
            epoch,
            if connected { "connected" } else { "disconnected" }
        );
        // A replica's slots are not printed (Redis prints the slots a node claims: its own).
        let ranges = n.slots.ranges();
        if !ranges.is_empty() {
            s.push(' ');
            s.push_str(&ranges_string(&ranges));
        }
        if n.has(nflags::MYSELF) {
            // In slot order; a slot both migrating and importing shows as migrating (Redis).
            let mut open: Vec<(u16, bool, &NodeId)> = self.migrating.iter().map(|(k, v)| (*k, true, v)).collect();
            open.extend(
                self.importing.iter().filter(|(k, _)| !self.migrating.contains_key(k)).map(|(k, v)| (*k, false, v)),
            );
            open.sort_by_key(|(slot, _, _)| *slot);
            for (slot, migrating, other) in open {
                if migrating {
                    let _ = write!(s, " [{}->-{}]", slot, id_str(other));
                } else {
                    let _ = write!(s, " [{}-<-{}]", slot, id_str(other));
                }
            }
        }
        s
    }

    /// CLUSTER NODES and nodes.conf: the nodes `filter` keeps, one line each ending in "\n", in
    /// name order (Redis walks a dict; any order is valid, a stable one is easier to diff).
    pub fn nodes_text(&self, filter: impl Fn(&ClusterNode) -> bool) -> String {
        let mut out = String::new();
        for n in self.nodes.values().filter(|n| filter(n)) {
            out.push_str(&self.describe(n));
            out.push('\n');
        }
        out
    }
}

/// Where the bus listens: `cluster-port`, or the client port + 10000.
pub fn bus_port(config: &crate::node::config::Config, port: u16) -> u16 {
    match config.get("cluster-port").and_then(|v| v.parse::<u16>().ok()) {
        Some(p) if p != 0 => p,
        _ => port.wrapping_add(10000),
    }
}

/// Loads nodes.conf (or starts a cluster of one and writes it), then applies this run's ports and
/// announced address. Errors are fatal at startup, as in Redis.
pub fn init(
    config: &crate::node::config::Config,
    port: u16,
    cport: u16,
    now: i64,
) -> Result<ClusterState, conf::ConfError> {
    let dir = PathBuf::from(config.get("dir").unwrap_or("."));
    let path = dir.join(config.get("cluster-config-file").unwrap_or("nodes.conf"));
    let mut st = match conf::load(&path, now)? {
        Some(st) => {
            tracing::info!("Node configuration loaded, I'm {}", id_str(&st.myself));
            st
        }
        None => {
            let st = ClusterState::new(random_id(), path, now);
            tracing::info!("No cluster configuration found, I'm {}", id_str(&st.myself));
            st
        }
    };
    apply_announce(&mut st, config, port, cport);
    st.start_time = now;
    st.todo_save = true;
    Ok(st)
}

/// Myself's advertised address: `cluster-announce-*` when set, else the listening ports (the IP
/// is learned from the first peer that talks to us, as Redis does).
pub fn apply_announce(st: &mut ClusterState, config: &crate::node::config::Config, port: u16, cport: u16) {
    let num = |k: &str| config.get(k).and_then(|v| v.parse::<u16>().ok()).filter(|p| *p != 0);
    let ip = config.get("cluster-announce-ip").unwrap_or("").to_string();
    let hostname = config.get("cluster-announce-hostname").unwrap_or("").to_string();
    let me = st.me_mut();
    me.port = num("cluster-announce-port").unwrap_or(port);
    me.cport = num("cluster-announce-bus-port").unwrap_or(cport);
    if !ip.is_empty() {
        me.ip = ip;
    }
    me.hostname = hostname;
}

/// What Redis does in `clusterBeforeSleep`: recompute the state and write nodes.conf when
/// something changed, before any reply about the change leaves this node.
pub fn before_sleep(srv: &mut crate::node::server::Server) {
    let Some(st) = srv.cluster.as_deref_mut() else { return };
    let changed = st.todo_update_state || st.todo_save;
    if st.todo_update_state {
        let timeout = srv.config.get("cluster-node-timeout").and_then(|v| v.parse().ok()).unwrap_or(15000);
        let full = srv.config.get("cluster-require-full-coverage") != Some("no");
        st.update_state(crate::node::server::unix_ms(), timeout, full);
    }
    if st.todo_broadcast_pong {
        let env = bus::proto::Env::new(&srv.config);
        bus::proto::flush_todo(st, &env);
    }
    if st.todo_save {
        st.todo_save = false;
        let epochs = st.durable_epochs();
        let durable = st.saved_epochs != Some(epochs);
        if let Err(e) = conf::save(st, durable) {
            tracing::warn!("Could not save the cluster config {}: {e}", st.config_path.display());
        } else if durable {
            st.saved_epochs = Some(epochs);
        }
    }
    // Slots or the state changed: clients blocked on keys this node no longer serves hear it now.
    if changed {
        route::redirect_blocked(srv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_in_redis_order() {
        assert_eq!(flags_string(nflags::MYSELF | nflags::MASTER), "myself,master");
        assert_eq!(flags_string(nflags::SLAVE | nflags::PFAIL), "slave,fail?");
        assert_eq!(flags_string(0), "noflags");
    }

    #[test]
    fn bitmap_ranges_and_bytes() {
        let mut m = SlotBitmap::default();
        for s in [0u16, 1, 2, 5, 16383] {
            m.set(s, true);
        }
        assert_eq!(ranges_string(&m.ranges()), "0-2 5 16383");
        let b = m.to_bytes();
        assert_eq!(b.len(), 2048);
        assert_eq!(b[0], 0b0010_0111);
        assert_eq!(b[2047], 0x80);
        assert_eq!(SlotBitmap::from_bytes(&b), m);
    }

    #[test]
    fn describe_matches_redis_layout() {
        let id = *b"78db59655d9e7a9c27852967dab7062c787f056d";
        let mut st = ClusterState::new(id, PathBuf::from("nodes.conf"), 0);
        {
            let me = st.me_mut();
            me.ip = "127.0.0.1".into();
            me.port = 17001;
            me.cport = 27001;
            me.config_epoch = 1;
        }
        for s in 0..=5460 {
            st.add_slot(s, id);
        }
        assert_eq!(
            st.describe(st.me()),
            "78db59655d9e7a9c27852967dab7062c787f056d 127.0.0.1:17001@27001 myself,master - 0 0 1 connected 0-5460"
        );
    }
}
