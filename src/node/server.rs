//! The node's state, owned by one thread: databases, clients, pub/sub, blocked clients, stats.
//! Like Redis there is no lock on the data path; the runtime is single-threaded and this struct
//! lives in an `Rc<RefCell<_>>` borrowed only while a batch of commands runs.

use super::client::{Client, ClientShared};
use super::config::Config;
use super::db::{Db, Key};
use crate::command::table::COUNT;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub type ClientRef = Rc<RefCell<Client>>;

#[derive(Debug, Default, Clone, Copy)]
pub struct CommandStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub connections_received: u64,
    pub rejected_connections: u64,
    pub commands_processed: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub total_error_replies: u64,
    pub errors: BTreeMap<String, u64>,
    pub commands: Vec<CommandStat>,
    /// (time ms, commands processed) samples for instantaneous_ops_per_sec.
    pub ops_samples: VecDeque<(i64, u64)>,
    /// (time ms, net input bytes, net output bytes) samples for instantaneous_*_kbps.
    pub net_samples: VecDeque<(i64, u64, u64)>,
    /// Per-command latency histograms (INFO latencystats), allocated on a command's first call.
    pub latency_hist: Vec<Option<Box<Histogram>>>,
}

impl Stats {
    /// Records one call's duration in the command's latency histogram.
    pub fn record_histogram(&mut self, id: usize, nanos: u64) {
        if let Some(slot) = self.latency_hist.get_mut(id) {
            slot.get_or_insert_with(|| Box::new(Histogram::new())).record(nanos);
        }
    }

    /// CONFIG RESETSTAT: every counter INFO reports, back to zero.
    pub fn reset(&mut self) {
        let n = self.commands.len();
        *self = Stats {
            commands: vec![CommandStat::default(); n],
            latency_hist: (0..n).map(|_| None).collect(),
            ..Default::default()
        };
    }
}

/// Redis's per-command latency histogram: an HDR histogram of nanoseconds from 1 ns to 1 s with
/// two significant digits, so percentiles print exactly as Redis's `latency_percentiles_usec_*`.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    /// 2 significant figures: 256 sub-buckets, half of them per bucket after the first.
    const SUB_HALF_MAG: u32 = 7;
    const SUB_HALF: i64 = 128;
    const SUB_MASK: u64 = 255;
    /// Buckets needed to reach 1e9 (1 s) with 256 sub-buckets.
    const BUCKETS: usize = 23;
    pub const MAX: u64 = 1_000_000_000;

    pub fn new() -> Self {
        Histogram { counts: vec![0; (Self::BUCKETS + 1) * Self::SUB_HALF as usize], total: 0 }
    }

    fn bucket_of(v: u64) -> i64 {
        (64 - (v | Self::SUB_MASK).leading_zeros() as i64) - (Self::SUB_HALF_MAG as i64 + 1)
    }

    fn index_of(v: u64) -> usize {
        let b = Self::bucket_of(v);
        let sub = (v >> b) as i64;
        (((b + 1) << Self::SUB_HALF_MAG) + (sub - Self::SUB_HALF)) as usize
    }

    fn value_at_index(i: usize) -> u64 {
        let mut b = (i as i64 >> Self::SUB_HALF_MAG) - 1;
        let mut sub = (i as i64 & (Self::SUB_HALF - 1)) + Self::SUB_HALF;
        if b < 0 {
            sub -= Self::SUB_HALF;
            b = 0;
        }
        (sub as u64) << b
    }

    fn highest_equivalent(v: u64) -> u64 {
        let b = Self::bucket_of(v);
        let sub = (v >> b) as i64;
        let adjusted = if sub >= 2 * Self::SUB_HALF { b + 1 } else { b };
        let lowest = (sub as u64) << b;
        lowest + (1u64 << adjusted) - 1
    }

    pub fn record(&mut self, nanos: u64) {
        let v = nanos.clamp(1, Self::MAX);
        if let Some(c) = self.counts.get_mut(Self::index_of(v)) {
            *c += 1;
            self.total += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// `hdr_value_at_percentile`.
    pub fn value_at_percentile(&self, p: f64) -> u64 {
        let p = p.min(100.0);
        let want = (((p / 100.0) * self.total as f64) + 0.5) as u64;
        let want = want.max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                let v = Self::value_at_index(i);
                return if p == 0.0 { v } else { Self::highest_equivalent(v) };
            }
        }
        0
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone)]
pub struct SlowlogEntry {
    pub id: u64,
    pub time: i64,
    pub micros: u64,
    pub args: Vec<Vec<u8>>,
    pub addr: String,
    pub name: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Slowlog {
    pub entries: VecDeque<SlowlogEntry>,
    pub next_id: u64,
}

/// LATENCY: per event, the latest spike and a history of (unix seconds, ms) samples.
#[derive(Debug, Default)]
pub struct Latency {
    pub events: BTreeMap<&'static str, LatencySeries>,
}

#[derive(Debug, Default)]
pub struct LatencySeries {
    pub samples: VecDeque<(i64, u64)>,
    pub max: u64,
}

/// Channel and pattern subscribers.
#[derive(Default)]
pub struct PubSub {
    pub channels: HashMap<Vec<u8>, Vec<Rc<ClientShared>>>,
    pub patterns: BTreeMap<Vec<u8>, Vec<Rc<ClientShared>>>,
}

/// Clients blocked on keys, FIFO per key, and the keys that changed since the last check.
#[derive(Default)]
pub struct Blocking {
    pub waiters: HashMap<(usize, Key), VecDeque<u64>>,
    pub ready: Vec<(usize, Key)>,
}

impl Blocking {
    pub fn signal(&mut self, db: usize, key: &[u8]) {
        if !self.waiters.is_empty() && self.waiters.contains_key(&(db, Key::from(key))) {
            self.ready.push((db, key.into()));
        }
    }
}

pub struct Server {
    pub config: Config,
    pub dbs: Vec<Db>,
    pub clients: BTreeMap<u64, ClientRef>,
    pub next_client_id: u64,
    pub stats: Stats,
    pub pubsub: PubSub,
    pub blocking: Blocking,
    pub monitors: Vec<Rc<ClientShared>>,
    pub slowlog: Slowlog,
    pub latency: Latency,
    pub started: Instant,
    pub run_id: String,
    /// Writes since the last save.
    pub dirty: u64,
    pub lastsave: i64,
    pub tcp_port: u16,
    /// Set by SHUTDOWN; the acceptor watches it.
    pub shutdown: Rc<tokio::sync::Notify>,
    pub shutting_down: bool,
    pub config_file: Option<String>,
    /// Replication id INFO reports (this node is always a master with no history).
    pub master_replid: String,
    /// Highest resident memory seen (INFO used_memory_peak).
    pub memory_peak: u64,
    /// Resident memory when the server was created (INFO used_memory_startup).
    pub memory_startup: u64,
    /// Cluster mode (`cluster-enabled yes`): the node's view of the cluster.
    pub cluster: Option<Box<super::cluster::ClusterState>>,
    /// MIGRATE's cached connections to its targets.
    pub migrate_sockets: super::cmd::migrate::SocketCache,
}

pub fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn unix_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

impl Server {
    pub fn new(config: Config) -> Self {
        let dbs = (0..config.databases).map(|_| Db::new()).collect();
        let hex40 = || -> String {
            use rand::Rng;
            let mut r = rand::thread_rng();
            (0..40).map(|_| char::from_digit(r.gen_range(0..16), 16).expect("hex digit")).collect()
        };
        let run_id = hex40();
        let master_replid = hex40();
        let config_file = config.config_file.clone();
        Server {
            config,
            dbs,
            clients: BTreeMap::new(),
            next_client_id: 1,
            stats: Stats {
                commands: vec![CommandStat::default(); COUNT],
                latency_hist: (0..COUNT).map(|_| None).collect(),
                ..Default::default()
            },
            pubsub: PubSub::default(),
            blocking: Blocking::default(),
            monitors: Vec::new(),
            slowlog: Slowlog::default(),
            latency: Latency::default(),
            started: Instant::now(),
            run_id,
            dirty: 0,
            lastsave: unix_ms() / 1000,
            tcp_port: 0,
            shutdown: Rc::new(tokio::sync::Notify::new()),
            shutting_down: false,
            config_file,
            master_replid,
            memory_peak: 0,
            memory_startup: super::cmd::server::sys::rss_bytes(),
            cluster: None,
            migrate_sockets: Default::default(),
        }
    }

    /// A key changed: WATCHers must fail their EXEC, blocked clients may be served.
    pub fn signal_modified(&mut self, db: usize, key: &[u8]) {
        super::cmd::transactions::touch_watched_key(&self.dbs[db], key);
        self.blocking.signal(db, key);
    }

    /// FLUSHDB / FLUSHALL (once per emptied db): fails the EXEC of clients watching a key that
    /// exists in `db`. Call it BEFORE emptying the db.
    pub fn signal_db(&mut self, db: usize) {
        super::cmd::transactions::touch_all_watched_in_db(&self.dbs, db, None, unix_ms());
    }

    /// Runs `f` over every client; `current` is the one whose RefCell is already borrowed.
    pub fn for_each_client(&self, current: &Client, mut f: impl FnMut(&Client)) {
        for (id, c) in &self.clients {
            if *id == current.id {
                f(current);
            } else if let Ok(c) = c.try_borrow() {
                f(&c);
            }
        }
    }

    pub fn record_slowlog(&mut self, micros: u64, args: &[&[u8]], client: &Client) {
        let threshold = self.config.slowlog_slower_than;
        if threshold < 0 || micros < threshold as u64 {
            return;
        }
        // Like Redis: at most 32 arguments, each cut to 128 bytes, with a note of what was cut.
        let mut kept: Vec<Vec<u8>> = Vec::new();
        let max_args = 32;
        for (i, a) in args.iter().enumerate() {
            if i == max_args - 1 && args.len() > max_args {
                kept.push(format!("... ({} more arguments)", args.len() - max_args + 1).into_bytes());
                break;
            }
            if a.len() > 128 {
                let mut v = a[..128].to_vec();
                v.extend_from_slice(format!("... ({} more bytes)", a.len() - 128).as_bytes());
                kept.push(v);
            } else {
                kept.push(a.to_vec());
            }
        }
        let entry = SlowlogEntry {
            id: self.slowlog.next_id,
            time: unix_ms() / 1000,
            micros,
            args: kept,
            addr: client.addr.clone(),
            name: client.name.clone().unwrap_or_default(),
        };
        self.slowlog.next_id += 1;
        self.slowlog.entries.push_front(entry);
        while self.slowlog.entries.len() > self.config.slowlog_max_len {
            self.slowlog.entries.pop_back();
        }
    }

    pub fn record_latency(&mut self, event: &'static str, ms: u64) {
        let threshold = self.config.latency_threshold_ms;
        if threshold == 0 || ms < threshold {
            return;
        }
        let series = self.latency.events.entry(event).or_default();
        let now = unix_ms() / 1000;
        match series.samples.back_mut() {
            Some(last) if last.0 == now => last.1 = last.1.max(ms),
            _ => series.samples.push_back((now, ms)),
        }
        while series.samples.len() > 160 {
            series.samples.pop_front();
        }
        series.max = series.max.max(ms);
    }

    /// One tick of the background cron: active expiry, ops/sec samples.
    pub fn cron(&mut self) {
        let now = unix_ms();
        for db in 0..self.dbs.len() {
            let deleted = self.dbs[db].active_expire(now, 16);
            for k in deleted {
                self.signal_modified(db, &k);
            }
        }
        self.stats.ops_samples.push_back((now, self.stats.commands_processed));
        while self.stats.ops_samples.len() > 16 {
            self.stats.ops_samples.pop_front();
        }
        self.stats.net_samples.push_back((now, self.stats.net_input_bytes, self.stats.net_output_bytes));
        while self.stats.net_samples.len() > 16 {
            self.stats.net_samples.pop_front();
        }
        self.memory_peak = self.memory_peak.max(super::cmd::server::sys::rss_bytes());
        self.migrate_sockets.close_idle(now / 1000);
    }

    /// Input and output rates in KB/s over the recent samples (INFO instantaneous_*_kbps).
    pub fn instantaneous_kbps(&self) -> (f64, f64) {
        match (self.stats.net_samples.front(), self.stats.net_samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let secs = (b.0 - a.0) as f64 / 1000.0;
                (b.1.saturating_sub(a.1) as f64 / 1024.0 / secs, b.2.saturating_sub(a.2) as f64 / 1024.0 / secs)
            }
            _ => (0.0, 0.0),
        }
    }

    pub fn instantaneous_ops(&self) -> u64 {
        match (self.stats.ops_samples.front(), self.stats.ops_samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => b.1.saturating_sub(a.1) * 1000 / (b.0 - a.0) as u64,
            _ => 0,
        }
    }

    pub fn expired_total(&self) -> u64 {
        self.stats.expired_keys + self.dbs.iter().map(|d| d.expired).sum::<u64>()
    }
}
