//! The cluster as a router sees it: shards (a master, its replicas, its slot ranges) and a
//! 16384-entry slot -> shard map, built from any of the three replies a node gives about the
//! cluster (CLUSTER SHARDS, CLUSTER SLOTS, CLUSTER NODES), in RESP2 or RESP3.
//!
//! Everything here comes from the network, so every parser returns a [`TopologyError`] on
//! malformed input instead of panicking, and every view is normalised (shards and replicas sorted
//! by address) so two fetches of the same cluster compare equal whatever order the node used.
//!
//! What each reply is trusted for:
//! - SHARDS (Redis 7): every node of every shard with role, health and replication offset; the
//!   preferred first choice.
//! - SLOTS: slot ranges, the master and only the *available* replicas (Redis leaves out failed ones
//!   and those that have not synced yet); no health, no role beyond position; the fallback.
//! - NODES: the only one with config epochs (so the only one that can say which of two
//!   disagreeing views is fresher) and flags; migrating/importing brackets are ignored (routing
//!   follows the owner; ASK handles the migration).
//!
//! The endpoint rule (Redis's documentation of CLUSTER SLOTS and SHARDS): a NULL, empty or `?`
//! endpoint means "the address you sent this command to", so every parser takes that address.

use super::slot::SLOTS;
use crate::resp::Frame;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

const NSLOTS: usize = SLOTS as usize;
/// Marks an unowned slot in the slot map.
const NO_SHARD: u16 = u16::MAX;

/// Malformed replies: each says where, so a bad node can be named in a log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("the node replied with an error: {0}")]
    Server(String),
    #[error("{at}: expected {expected}")]
    Shape { at: &'static str, expected: &'static str },
    #[error("{at}: not valid UTF-8")]
    NotUtf8 { at: &'static str },
    #[error("slot {0} is out of range 0..16383")]
    BadSlot(i64),
    #[error("slot range {0}-{1} ends before it starts")]
    BadRange(i64, i64),
    #[error("port {0} is out of range")]
    BadPort(i64),
    #[error("slot {slot} claimed by both {a} and {b}")]
    SlotConflict { slot: u16, a: String, b: String },
    #[error("a shard owns slots but has no master")]
    NoMaster,
    #[error("more shards than the slot map can index")]
    TooManyShards,
    #[error("CLUSTER NODES line {line}: {why}")]
    NodesLine { line: usize, why: String },
}

type Result<T> = std::result::Result<T, TopologyError>;

/// Where to connect: the preferred endpoint (after the endpoint rule) and the client port. The
/// host is shared (`Arc<str>`): the proxy copies an address into every request it routes, and a
/// copy must not allocate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr {
    pub host: std::sync::Arc<str>,
    pub port: u16,
}

impl Addr {
    pub fn new(host: impl Into<String>, port: u16) -> Addr {
        Addr { host: host.into().into(), port }
    }

    /// `host:port` as MOVED/ASK print it (Redis does not bracket IPv6 there either); a host
    /// without a port is refused.
    pub fn parse(s: &str) -> Option<Addr> {
        let (host, port) = s.rsplit_once(':')?;
        Some(Addr::new(host, port.parse().ok()?))
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Master,
    Replica,
}

/// SHARDS's `health`; NODES maps its `fail` flag to `Fail` and everything else to `Online`
/// (as Redis's own SHARDS does: PFAIL is one node's suspicion, not the cluster's verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    Online,
    /// A replica that has not finished its first sync: it cannot serve reads yet.
    Loading,
    Fail,
    /// The reply did not say (SLOTS lists only nodes Redis considers available: treated as online).
    Unknown,
}

/// One node as a reply describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Empty when the reply did not carry one (CLUSTER SLOTS of Redis before 3.2, a MOVED target).
    pub id: String,
    pub addr: Addr,
    /// The announced IP; may differ from `addr.host` when hostnames are preferred.
    pub ip: String,
    pub hostname: Option<String>,
    pub tls_port: Option<u16>,
    pub role: Role,
    pub health: Health,
    pub replication_offset: Option<i64>,
}

impl NodeInfo {
    fn new(id: String, addr: Addr, role: Role) -> NodeInfo {
        NodeInfo {
            id,
            ip: addr.host.to_string(),
            addr,
            hostname: None,
            tls_port: None,
            role,
            health: Health::Unknown,
            replication_offset: None,
        }
    }

    /// Whether reads may go here: not failed, not still loading its first sync.
    pub fn is_serving(&self) -> bool {
        matches!(self.health, Health::Online | Health::Unknown)
    }

    /// A node whose address nobody knows (NODES `noaddr`, port 0) cannot be connected to.
    pub fn is_reachable(&self) -> bool {
        !self.addr.host.is_empty() && self.addr.port != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub master: NodeInfo,
    pub replicas: Vec<NodeInfo>,
    /// Inclusive ranges, ascending, as the slot map has them (recomputed after every change).
    pub slots: Vec<(u16, u16)>,
    /// The master's configEpoch when the reply says (only CLUSTER NODES does).
    pub config_epoch: Option<u64>,
}

impl Shard {
    pub fn slot_count(&self) -> usize {
        self.slots.iter().map(|&(a, b)| (b - a) as usize + 1).sum()
    }
}

/// A routing snapshot: cheap to read (one index per slot), rebuilt or patched on change.
#[derive(Clone, PartialEq, Eq)]
pub struct Topology {
    shards: Vec<Shard>,
    slot_map: Box<[u16]>,
    /// The highest configEpoch in the view (0 when the reply carries none): when nodes disagree,
    /// the view with the higher epoch has seen the later slot assignment.
    pub config_epoch: u64,
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology").field("config_epoch", &self.config_epoch).field("shards", &self.shards).finish()
    }
}

/// A run of slots whose master changed between two views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMove {
    pub start: u16,
    pub end: u16,
    pub from: Option<Addr>,
    pub to: Option<Addr>,
}

/// What a refresh changed, in the terms a router cares about (replication offsets, TLS ports and
/// hostnames beside the preferred endpoint do not route anything and are not compared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopologyDiff {
    pub moved: Vec<SlotMove>,
    /// Serving nodes (slot owners and their serving replicas) that appeared / went away.
    pub added: Vec<Addr>,
    pub removed: Vec<Addr>,
    /// Masters (in the new view) whose set of serving replicas changed.
    pub replicas_changed: Vec<Addr>,
}

impl TopologyDiff {
    pub fn is_empty(&self) -> bool {
        self.moved.is_empty() && self.added.is_empty() && self.removed.is_empty() && self.replicas_changed.is_empty()
    }

    /// How many slots changed master.
    pub fn moved_slots(&self) -> usize {
        self.moved.iter().map(|m| (m.end - m.start) as usize + 1).sum()
    }
}

impl Default for Topology {
    fn default() -> Self {
        Topology { shards: Vec::new(), slot_map: vec![NO_SHARD; NSLOTS].into_boxed_slice(), config_epoch: 0 }
    }
}

impl Topology {
    /// Builds a snapshot from shards whose `slots` say what they own; refuses overlaps.
    pub fn from_shards(mut shards: Vec<Shard>) -> Result<Topology> {
        if shards.len() >= NO_SHARD as usize {
            return Err(TopologyError::TooManyShards);
        }
        for s in &mut shards {
            s.replicas.sort_by(|a, b| (&a.addr, &a.id).cmp(&(&b.addr, &b.id)));
        }
        shards.sort_by(|a, b| (&a.master.addr, &a.master.id).cmp(&(&b.master.addr, &b.master.id)));
        let mut slot_map = vec![NO_SHARD; NSLOTS].into_boxed_slice();
        for (i, s) in shards.iter().enumerate() {
            for &(a, b) in &s.slots {
                if b < a || b >= SLOTS {
                    return Err(TopologyError::BadRange(a as i64, b as i64));
                }
                for slot in a..=b {
                    let cur = slot_map[slot as usize];
                    if cur != NO_SHARD && cur as usize != i {
                        return Err(TopologyError::SlotConflict {
                            slot,
                            a: shards[cur as usize].master.addr.to_string(),
                            b: s.master.addr.to_string(),
                        });
                    }
                    slot_map[slot as usize] = i as u16;
                }
            }
        }
        let config_epoch = shards.iter().filter_map(|s| s.config_epoch).max().unwrap_or(0);
        let mut t = Topology { shards, slot_map, config_epoch };
        for i in 0..t.shards.len() {
            t.recompute_ranges(i);
        }
        Ok(t)
    }

    /// Sets the epoch from elsewhere (CLUSTER INFO's `cluster_current_epoch` next to a SHARDS or
    /// SLOTS reply, which carry none).
    pub fn with_config_epoch(mut self, epoch: u64) -> Topology {
        self.config_epoch = epoch;
        self
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    pub fn shard_for_slot(&self, slot: u16) -> Option<&Shard> {
        let i = *self.slot_map.get(slot as usize)?;
        self.shards.get(i as usize)
    }

    pub fn master_for_slot(&self, slot: u16) -> Option<&NodeInfo> {
        self.shard_for_slot(slot).map(|s| &s.master)
    }

    /// The replicas of the slot's master, serving or not (the read policy filters with
    /// [`NodeInfo::is_serving`]).
    pub fn replicas_for_slot(&self, slot: u16) -> &[NodeInfo] {
        self.shard_for_slot(slot).map_or(&[], |s| &s.replicas)
    }

    /// Every node of the view, masters first within each shard.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.shards.iter().flat_map(|s| std::iter::once(&s.master).chain(s.replicas.iter()))
    }

    pub fn node_by_addr(&self, addr: &Addr) -> Option<&NodeInfo> {
        self.nodes().find(|n| &n.addr == addr)
    }

    /// Every slot has an owner: what `cluster_state:ok` needs (with full coverage required).
    pub fn is_complete(&self) -> bool {
        self.slot_map.iter().all(|&i| i != NO_SHARD)
    }

    pub fn covered_slots(&self) -> usize {
        self.slot_map.iter().filter(|&&i| i != NO_SHARD).count()
    }

    /// Applies a `MOVED slot host:port`: the slot now belongs to the master at `to`. A node not in
    /// the view (or known only as a replica, as after a failover) becomes a shard of its own until
    /// the next refresh says more. Returns whether anything changed.
    pub fn set_slot_owner(&mut self, slot: u16, to: &Addr) -> Result<bool> {
        if slot >= SLOTS {
            return Err(TopologyError::BadSlot(slot as i64));
        }
        let target = match self.shards.iter().position(|s| &s.master.addr == to) {
            Some(i) => i,
            None => {
                if self.shards.len() + 1 >= NO_SHARD as usize {
                    return Err(TopologyError::TooManyShards);
                }
                let mut master = None;
                for s in &mut self.shards {
                    if let Some(r) = s.replicas.iter().position(|r| &r.addr == to) {
                        master = Some(s.replicas.remove(r));
                        break;
                    }
                }
                let mut master = master.unwrap_or_else(|| NodeInfo::new(String::new(), to.clone(), Role::Master));
                master.role = Role::Master;
                self.shards.push(Shard { master, replicas: Vec::new(), slots: Vec::new(), config_epoch: None });
                self.shards.len() - 1
            }
        };
        let old = self.slot_map[slot as usize];
        if old as usize == target {
            return Ok(false);
        }
        self.slot_map[slot as usize] = target as u16;
        self.recompute_ranges(target);
        if old != NO_SHARD {
            self.recompute_ranges(old as usize);
        }
        Ok(true)
    }

    fn recompute_ranges(&mut self, shard: usize) {
        let mut ranges = Vec::new();
        let mut start: Option<u16> = None;
        for slot in 0..SLOTS {
            let mine = self.slot_map[slot as usize] as usize == shard;
            match (mine, start) {
                (true, None) => start = Some(slot),
                (false, Some(a)) => {
                    ranges.push((a, slot - 1));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(a) = start {
            ranges.push((a, SLOTS - 1));
        }
        if let Some(s) = self.shards.get_mut(shard) {
            s.slots = ranges;
        }
    }

    /// Serving nodes: slot owners and their serving replicas, by address.
    fn serving(&self) -> BTreeMap<Addr, BTreeSet<Addr>> {
        self.shards
            .iter()
            .filter(|s| !s.slots.is_empty())
            .map(|s| {
                let reps = s.replicas.iter().filter(|r| r.is_serving()).map(|r| r.addr.clone()).collect();
                (s.master.addr.clone(), reps)
            })
            .collect()
    }

    /// What changed from `self` (the old view) to `new`, for routing. Empty means a refresh can
    /// keep the current snapshot.
    pub fn diff(&self, new: &Topology) -> TopologyDiff {
        let mut d = TopologyDiff::default();
        fn owner(t: &Topology, slot: usize) -> Option<&Addr> {
            t.shards.get(t.slot_map[slot] as usize).map(|s| &s.master.addr)
        }
        let mut slot = 0usize;
        while slot < NSLOTS {
            let (from, to) = (owner(self, slot), owner(new, slot));
            let start = slot;
            while slot + 1 < NSLOTS && owner(self, slot + 1) == from && owner(new, slot + 1) == to {
                slot += 1;
            }
            if from != to {
                d.moved.push(SlotMove { start: start as u16, end: slot as u16, from: from.cloned(), to: to.cloned() });
            }
            slot += 1;
        }
        let (a, b) = (self.serving(), new.serving());
        let all = |m: &BTreeMap<Addr, BTreeSet<Addr>>| -> BTreeSet<Addr> {
            m.iter().flat_map(|(k, v)| std::iter::once(k.clone()).chain(v.iter().cloned())).collect()
        };
        let (na, nb) = (all(&a), all(&b));
        d.added = nb.difference(&na).cloned().collect();
        d.removed = na.difference(&nb).cloned().collect();
        d.replicas_changed =
            b.iter().filter(|(m, reps)| a.get(*m).is_some_and(|r| r != *reps)).map(|(m, _)| m.clone()).collect();
        d
    }

    /// Whether `self` routes every request as `other` does.
    pub fn same_routing(&self, other: &Topology) -> bool {
        self.diff(other).is_empty()
    }
}

/// Of several nodes' views, the one to trust: the highest config epoch, then the most slots
/// covered (a node that has not heard of an assignment covers fewer).
pub fn freshest<'a>(views: impl IntoIterator<Item = &'a Topology>) -> Option<&'a Topology> {
    views.into_iter().max_by_key(|t| (t.config_epoch, t.covered_slots()))
}

// ---------------------------------------------------------------------------------------------
// Frame helpers

fn check_error(f: &Frame) -> Result<()> {
    if let Frame::Error(e) = f {
        return Err(TopologyError::Server(String::from_utf8_lossy(e).into_owned()));
    }
    Ok(())
}

fn elements<'a>(f: &'a Frame, at: &'static str) -> Result<&'a [Frame]> {
    check_error(f)?;
    match f {
        Frame::Array(v) | Frame::Set(v) => Ok(v),
        _ => Err(TopologyError::Shape { at, expected: "an array" }),
    }
}

/// Key/value pairs of a RESP3 map or of RESP2's flat `[k, v, k, v]` array.
fn pairs<'a>(f: &'a Frame, at: &'static str) -> Result<Vec<(&'a Frame, &'a Frame)>> {
    match f {
        Frame::Map(kv) => Ok(kv.iter().map(|(k, v)| (k, v)).collect()),
        Frame::Array(v) if v.len() % 2 == 0 => Ok(v.chunks_exact(2).map(|c| (&c[0], &c[1])).collect()),
        _ => Err(TopologyError::Shape { at, expected: "a map or an even-length array" }),
    }
}

fn text<'a>(f: &'a Frame, at: &'static str) -> Result<&'a str> {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) | Frame::Verbatim(_, b) => {
            std::str::from_utf8(b).map_err(|_| TopologyError::NotUtf8 { at })
        }
        _ => Err(TopologyError::Shape { at, expected: "a string" }),
    }
}

/// An integer, also as a string of digits (some servers send slots and ports as bulk strings).
fn int(f: &Frame, at: &'static str) -> Result<i64> {
    match f {
        Frame::Integer(n) => Ok(*n),
        Frame::Bulk(b) | Frame::Simple(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(TopologyError::Shape { at, expected: "an integer" }),
        _ => Err(TopologyError::Shape { at, expected: "an integer" }),
    }
}

fn slot(n: i64) -> Result<u16> {
    if (0..SLOTS as i64).contains(&n) {
        Ok(n as u16)
    } else {
        Err(TopologyError::BadSlot(n))
    }
}

fn slot_range(a: i64, b: i64) -> Result<(u16, u16)> {
    let (a, b) = (slot(a)?, slot(b)?);
    if b < a {
        return Err(TopologyError::BadRange(a as i64, b as i64));
    }
    Ok((a, b))
}

fn port(n: i64) -> Result<u16> {
    u16::try_from(n).map_err(|_| TopologyError::BadPort(n))
}

/// The endpoint rule: NULL, empty and `?` mean the host this reply came from.
fn endpoint(given: Option<&str>, seed_host: &str) -> String {
    match given {
        None | Some("") | Some("?") => seed_host.to_string(),
        Some(h) => h.to_string(),
    }
}

/// Every parser ends here: normalise, index, refuse overlaps.
fn build(shards: Vec<Shard>) -> Result<Topology> {
    Topology::from_shards(shards)
}

// ---------------------------------------------------------------------------------------------
// CLUSTER SHARDS

/// Parses a CLUSTER SHARDS reply (Redis 7) received from `seed_host`.
pub fn parse_shards(reply: &Frame, seed_host: &str) -> Result<Topology> {
    let mut shards = Vec::new();
    for entry in elements(reply, "SHARDS reply")? {
        let mut ranges = Vec::new();
        let mut nodes = Vec::new();
        for (k, v) in pairs(entry, "SHARDS entry")? {
            match text(k, "SHARDS entry key")? {
                "slots" => {
                    let v = elements(v, "SHARDS slots")?;
                    if v.len() % 2 != 0 {
                        return Err(TopologyError::Shape { at: "SHARDS slots", expected: "start/end pairs" });
                    }
                    for c in v.chunks_exact(2) {
                        ranges.push(slot_range(int(&c[0], "SHARDS slot")?, int(&c[1], "SHARDS slot")?)?);
                    }
                }
                "nodes" => {
                    for n in elements(v, "SHARDS nodes")? {
                        nodes.push(shard_node(n, seed_host)?);
                    }
                }
                _ => {}
            }
        }
        let Some(m) = nodes.iter().position(|n| n.role == Role::Master) else {
            if ranges.is_empty() {
                continue;
            }
            return Err(TopologyError::NoMaster);
        };
        let master = nodes.remove(m);
        shards.push(Shard { master, replicas: nodes, slots: ranges, config_epoch: None });
    }
    build(shards)
}

fn shard_node(f: &Frame, seed_host: &str) -> Result<NodeInfo> {
    let mut id = None;
    let mut port_ = None;
    let mut tls_port = None;
    let mut ip = String::new();
    let mut ep = None;
    let mut hostname = None;
    let mut role = None;
    let mut health = Health::Unknown;
    let mut offset = None;
    for (k, v) in pairs(f, "SHARDS node")? {
        match text(k, "SHARDS node key")? {
            "id" => id = Some(text(v, "SHARDS node id")?.to_string()),
            "port" => port_ = Some(port(int(v, "SHARDS node port")?)?),
            "tls-port" => tls_port = Some(port(int(v, "SHARDS node tls-port")?)?),
            "ip" => ip = text(v, "SHARDS node ip")?.to_string(),
            "endpoint" => ep = Some(text(v, "SHARDS node endpoint")?.to_string()),
            "hostname" => hostname = Some(text(v, "SHARDS node hostname")?.to_string()).filter(|h| !h.is_empty()),
            "role" => {
                role = Some(match text(v, "SHARDS node role")? {
                    "master" => Role::Master,
                    "replica" | "slave" => Role::Replica,
                    _ => return Err(TopologyError::Shape { at: "SHARDS node role", expected: "master or replica" }),
                })
            }
            "replication-offset" => offset = Some(int(v, "SHARDS node replication-offset")?),
            "health" => {
                health = match text(v, "SHARDS node health")? {
                    "online" => Health::Online,
                    "loading" => Health::Loading,
                    "fail" | "failed" => Health::Fail,
                    _ => Health::Unknown,
                }
            }
            _ => {}
        }
    }
    let id = id.ok_or(TopologyError::Shape { at: "SHARDS node", expected: "an id" })?;
    let role = role.ok_or(TopologyError::Shape { at: "SHARDS node", expected: "a role" })?;
    // A TLS-only node announces no plain port: connect to the TLS one.
    let p = port_.or(tls_port).ok_or(TopologyError::Shape { at: "SHARDS node", expected: "a port" })?;
    // Without an endpoint field (not Redis 7.0, but cheap to accept), the IP is the endpoint.
    let host = endpoint(Some(ep.as_deref().unwrap_or(&ip)), seed_host);
    let ip = if ip.is_empty() { seed_host.to_string() } else { ip };
    Ok(NodeInfo { id, addr: Addr::new(host, p), ip, hostname, tls_port, role, health, replication_offset: offset })
}

// ---------------------------------------------------------------------------------------------
// CLUSTER SLOTS

/// Parses a CLUSTER SLOTS reply received from `seed_host`: `[start, end, master, replica...]`
/// per range, each node `[endpoint, port]` (Redis < 3.2), `[endpoint, port, id]` (< 7) or
/// `[endpoint, port, id, {ip, hostname}]` (7+).
pub fn parse_slots(reply: &Frame, seed_host: &str) -> Result<Topology> {
    // Ranges of one master arrive as separate entries: group them by master address.
    let mut by_master: BTreeMap<Addr, Shard> = BTreeMap::new();
    for entry in elements(reply, "SLOTS reply")? {
        let e = elements(entry, "SLOTS entry")?;
        if e.len() < 3 {
            return Err(TopologyError::Shape { at: "SLOTS entry", expected: "start, end and a master" });
        }
        let range = slot_range(int(&e[0], "SLOTS start")?, int(&e[1], "SLOTS end")?)?;
        let master = slots_node(&e[2], seed_host, Role::Master)?;
        let replicas = e[3..].iter().map(|r| slots_node(r, seed_host, Role::Replica)).collect::<Result<Vec<_>>>()?;
        let shard = by_master.entry(master.addr.clone()).or_insert_with(|| Shard {
            master: master.clone(),
            replicas: Vec::new(),
            slots: Vec::new(),
            config_epoch: None,
        });
        if !master.id.is_empty() && !shard.master.id.is_empty() && master.id != shard.master.id {
            return Err(TopologyError::Shape { at: "SLOTS entry", expected: "one node id per address" });
        }
        shard.slots.push(range);
        for r in replicas {
            if !shard.replicas.iter().any(|x| x.addr == r.addr) {
                shard.replicas.push(r);
            }
        }
    }
    build(by_master.into_values().collect())
}

fn slots_node(f: &Frame, seed_host: &str, role: Role) -> Result<NodeInfo> {
    let v = elements(f, "SLOTS node")?;
    if v.len() < 2 {
        return Err(TopologyError::Shape { at: "SLOTS node", expected: "an endpoint and a port" });
    }
    let ep = match &v[0] {
        Frame::Null => None,
        other => Some(text(other, "SLOTS node endpoint")?),
    };
    let p = port(int(&v[1], "SLOTS node port")?)?;
    let id = match v.get(2) {
        Some(f) => text(f, "SLOTS node id")?.to_string(),
        None => String::new(),
    };
    let mut ip = None;
    let mut hostname = None;
    if let Some(meta) = v.get(3) {
        for (k, val) in pairs(meta, "SLOTS node metadata")? {
            match text(k, "SLOTS metadata key")? {
                "ip" => ip = Some(text(val, "SLOTS metadata ip")?.to_string()),
                "hostname" => {
                    hostname = Some(text(val, "SLOTS metadata hostname")?.to_string()).filter(|h| !h.is_empty())
                }
                _ => {}
            }
        }
    }
    let host = endpoint(ep, seed_host);
    // Without an `ip` entry the preferred endpoint is the IP (Redis leaves out what it repeats).
    let ip = match ip {
        Some(ip) if !ip.is_empty() => ip,
        _ => host.clone(),
    };
    let mut n = NodeInfo::new(id, Addr::new(host, p), role);
    n.ip = ip;
    n.hostname = hostname;
    Ok(n)
}

// ---------------------------------------------------------------------------------------------
// CLUSTER NODES

/// Parses a CLUSTER NODES reply (a bulk string in RESP2, a verbatim `txt` string in RESP3).
pub fn parse_nodes(reply: &Frame, seed_host: &str) -> Result<Topology> {
    check_error(reply)?;
    let t = text(reply, "NODES reply")?;
    parse_nodes_text(t, seed_host)
}

struct NodesLine {
    line: usize,
    id: String,
    node: NodeInfo,
    master_id: Option<String>,
    epoch: u64,
    slots: Vec<(u16, u16)>,
}

/// The CLUSTER NODES text: `id ip:port@cport[,hostname] flags master ping pong epoch link slot...`.
/// Nodes in handshake are skipped (temporary random ids, not yet in the cluster); `noaddr` nodes
/// keep their slots but no address (so [`NodeInfo::is_reachable`] is false); replicas of a master
/// the view does not know are left out (they serve no slot).
pub fn parse_nodes_text(text: &str, seed_host: &str) -> Result<Topology> {
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Some(l) =
            nodes_line(line, i + 1, seed_host).map_err(|why| TopologyError::NodesLine { line: i + 1, why })?
        {
            lines.push(l);
        }
    }
    let mut shards: Vec<Shard> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.master_id.is_none()) {
        if index.contains_key(&l.id) {
            return Err(TopologyError::NodesLine { line: l.line, why: format!("node {} listed twice", l.id) });
        }
        index.insert(l.id.clone(), shards.len());
        shards.push(Shard {
            master: l.node.clone(),
            replicas: Vec::new(),
            slots: l.slots.clone(),
            config_epoch: Some(l.epoch),
        });
    }
    for l in lines.iter().filter(|l| l.master_id.is_some()) {
        if !l.slots.is_empty() {
            return Err(TopologyError::NodesLine { line: l.line, why: format!("replica {} lists slots", l.id) });
        }
        if let Some(&i) = l.master_id.as_ref().and_then(|m| index.get(m)) {
            shards[i].replicas.push(l.node.clone());
        }
    }
    build(shards)
}

fn nodes_line(line: &str, line_no: usize, seed_host: &str) -> std::result::Result<Option<NodesLine>, String> {
    let f: Vec<&str> = line.split(' ').filter(|s| !s.is_empty()).collect();
    if f.len() < 8 {
        return Err(format!("{} fields, expected at least 8", f.len()));
    }
    let id = f[0];
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("bad node id {id:?}"));
    }
    let flags: Vec<&str> = f[2].split(',').collect();
    if flags.contains(&"handshake") {
        return Ok(None);
    }
    // ip:port@cport[,hostname][,aux=value...] (hostname as in 7.0; aux fields as in 7.2).
    let mut parts = f[1].split(',');
    let hostport = parts.next().unwrap_or("");
    let hostname = parts.next().filter(|h| !h.is_empty() && !h.contains('=')).map(str::to_string);
    let hostport = hostport.split('@').next().unwrap_or("");
    let (ip, p) = hostport.rsplit_once(':').ok_or_else(|| format!("bad address {:?}", f[1]))?;
    let p: u16 = p.parse().map_err(|_| format!("bad port in {:?}", f[1]))?;
    let role = if flags.contains(&"master") {
        Role::Master
    } else if flags.contains(&"slave") || flags.contains(&"replica") {
        Role::Replica
    } else {
        // Neither yet (a node just met, not in handshake any more): holds nothing to route.
        return Ok(None);
    };
    let noaddr = flags.contains(&"noaddr");
    let host = if noaddr {
        String::new()
    } else if ip.is_empty() && flags.contains(&"myself") {
        // A node that never learned its own IP prints an empty one for itself: the seed's.
        seed_host.to_string()
    } else {
        endpoint(Some(ip), seed_host)
    };
    let master_id = match (role, f[3]) {
        (Role::Master, _) => None,
        (Role::Replica, "-") => return Ok(None),
        (Role::Replica, m) => Some(m.to_string()),
    };
    let epoch: u64 = f[6].parse().map_err(|_| format!("bad config epoch {:?}", f[6]))?;
    let mut slots = Vec::new();
    for tok in &f[8..] {
        if tok.starts_with('[') {
            continue;
        }
        let range = match tok.split_once('-') {
            Some((a, b)) => (a.parse::<i64>(), b.parse::<i64>()),
            None => (tok.parse::<i64>(), tok.parse::<i64>()),
        };
        match range {
            (Ok(a), Ok(b)) => slots.push(slot_range(a, b).map_err(|e| e.to_string())?),
            _ => return Err(format!("bad slot token {tok:?}")),
        }
    }
    let health = if flags.contains(&"fail") { Health::Fail } else { Health::Online };
    let mut node = NodeInfo::new(id.to_string(), Addr::new(host.clone(), if noaddr { 0 } else { p }), role);
    node.ip = if ip.is_empty() { host } else { ip.to_string() };
    node.hostname = hostname;
    node.health = health;
    Ok(Some(NodesLine { line: line_no, id: id.to_string(), node, master_id, epoch, slots }))
}

/// `cluster_current_epoch` from a CLUSTER INFO reply: the epoch to attach to a SHARDS or SLOTS
/// view fetched from the same node.
pub fn parse_info_epoch(reply: &Frame) -> Result<u64> {
    check_error(reply)?;
    let t = text(reply, "CLUSTER INFO reply")?;
    t.lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("cluster_current_epoch:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(TopologyError::Shape { at: "CLUSTER INFO reply", expected: "a cluster_current_epoch line" })
}

/// Parses the reply of the named command (`SHARDS`, `SLOTS`, `NODES`, any case).
pub fn parse_reply(command: &str, reply: &Frame, seed_host: &str) -> Result<Topology> {
    match command.to_ascii_uppercase().as_str() {
        "SHARDS" => parse_shards(reply, seed_host),
        "SLOTS" => parse_slots(reply, seed_host),
        "NODES" => parse_nodes(reply, seed_host),
        _ => Err(TopologyError::Shape { at: "command", expected: "SHARDS, SLOTS or NODES" }),
    }
}

#[cfg(test)]
mod tests;
