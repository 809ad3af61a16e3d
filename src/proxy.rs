//! The proxy: one address for a whole cluster. A client that knows nothing about clusters talks
//! to it as to one Redis; requests are routed by slot to the owning master over multiplexed,
//! pipelined backend connections, and replies come back in the client's order.
//!
//! - [`server`]   runtime, listener, worker groups, graceful shutdown
//! - [`session`]  one client: parse, classify, dispatch, write replies in order
//! - [`router`]   the routing plan of a request (local, single slot, split, any master)
//! - [`backend`]  pipelined, multiplexed connections to one node (FIFO reply matching, timeouts)
//! - [`breaker`]  the per-node circuit breaker
//! - [`split`]    multi-key commands split by slot and merged
//! - [`redirect`] MOVED / ASK / TRYAGAIN / CLUSTERDOWN handling and the bounded retry loop
//! - [`refresh`]  topology discovery and refresh (ArcSwap snapshot)
//! - [`readpolicy`] which node serves a read: the master or a replica, by `--read-from`
//! - [`local`]    commands the proxy answers itself
//! - [`admin`]    the HTTP admin endpoint: /metrics (Prometheus) and /healthz
//! - [`config`]   the YAML config file and the flags over it

pub mod admin;
pub mod backend;
pub mod breaker;
pub mod config;
pub mod local;
pub mod readpolicy;
pub mod redirect;
pub mod refresh;
pub mod router;
pub mod server;
pub mod session;
pub mod split;

use crate::cluster::topology::Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use server::run;

/// Where reads (commands flagged `readonly` in the command table) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// Every command to the slot's master.
    #[default]
    Master,
    /// A healthy replica of the slot's shard, else its master.
    PreferReplica,
    /// Only replicas; the master only when the shard has no healthy replica.
    Replica,
    /// Master and replicas in turn.
    RoundRobin,
}

impl ReadFrom {
    pub const NAMES: &'static [&'static str] = &["master", "prefer-replica", "replica", "round-robin"];

    /// The name `--read-from` and the config file use (and INFO shows).
    pub fn name(self) -> &'static str {
        match self {
            ReadFrom::Master => "master",
            ReadFrom::PreferReplica => "prefer-replica",
            ReadFrom::Replica => "replica",
            ReadFrom::RoundRobin => "round-robin",
        }
    }

    pub fn parse(s: &str) -> Option<ReadFrom> {
        Some(match s {
            "master" => ReadFrom::Master,
            "prefer-replica" => ReadFrom::PreferReplica,
            "replica" => ReadFrom::Replica,
            "round-robin" => ReadFrom::RoundRobin,
            _ => return None,
        })
    }
}

/// A user clients may AUTH as on the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: String,
}

/// Everything the proxy is started with: built from the YAML file, then the flags override.
#[derive(Debug, Clone)]
pub struct Options {
    /// `host:port` for TCP, `unix:/path` for a unix socket; one listener each.
    pub listen: Vec<String>,
    pub seeds: Vec<Addr>,
    /// Worker threads; also the number of backend connection groups.
    pub threads: usize,
    pub read_from: ReadFrom,
    /// Users clients AUTH as; empty: no AUTH needed (like a Redis without requirepass).
    pub users: Vec<User>,
    /// Credentials the proxy sends to every node (AUTH [user] password) on each new connection.
    pub backend_user: Option<String>,
    pub backend_password: Option<String>,
    /// `host:port` of the HTTP admin endpoint (`/metrics`, `/healthz`); none: not served.
    pub admin: Option<String>,
    /// Backend connections per node per worker group.
    pub conns_per_node: usize,
    /// Requests written to one backend connection and not yet answered.
    pub max_inflight_per_conn: usize,
    /// Requests of one client parsed and not yet answered.
    pub max_inflight_per_client: usize,
    pub connect_timeout: Duration,
    /// A request without a reply after this long fails with an error naming the node.
    pub request_timeout: Duration,
    /// Consecutive failures (connect errors, timeouts) that open a node's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker fails that node's requests at once before one probe is let through.
    pub breaker_open: Duration,
    pub refresh_interval: Duration,
    /// MOVED/ASK hops before the client gets an error.
    pub max_redirects: u32,
    /// TRYAGAIN / CLUSTERDOWN / unreachable-node retries before the client gets an error.
    pub max_retries: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            listen: vec!["127.0.0.1:6380".into()],
            seeds: Vec::new(),
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            read_from: ReadFrom::Master,
            users: Vec::new(),
            backend_user: None,
            backend_password: None,
            admin: None,
            conns_per_node: 2,
            max_inflight_per_conn: 1024,
            max_inflight_per_client: 1024,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            breaker_failures: 5,
            breaker_open: Duration::from_secs(1),
            refresh_interval: Duration::from_secs(5),
            max_redirects: 5,
            max_retries: 6,
        }
    }
}

impl Options {
    pub fn new(listen: String, seeds: Vec<Addr>, threads: usize) -> Options {
        Options { listen: vec![listen], seeds, threads: threads.max(1), ..Options::default() }
    }
}

/// Typed failures of the proxy as a whole (startup); per-request failures are error replies.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("no seed answered with a usable topology: {0}")]
    NoTopology(String),
}

/// Counters shown by INFO's `# Proxy` section.
#[derive(Debug, Default)]
pub struct Stats {
    pub clients: AtomicU64,
    pub total_clients: AtomicU64,
    pub ops: AtomicU64,
    pub moved: AtomicU64,
    pub ask: AtomicU64,
    pub tryagain: AtomicU64,
    pub clusterdown: AtomicU64,
    pub conn_errors: AtomicU64,
    pub refreshes: AtomicU64,
    /// Client listeners accepting now (for /healthz).
    pub listeners: AtomicU64,
}

impl Stats {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
