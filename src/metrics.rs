//! Metrics: the process's Prometheus recorder (metrics-exporter-prometheus) for counters and
//! gauges, the metric names, and per-command statistics (calls, errors, latency quantiles from
//! hdrhistogram) cheap enough to record on every request.
//!
//! Counters whose source of truth already lives in atomics elsewhere (the proxy's `Stats`, each
//! node connection's state) are copied into the recorder at scrape time with `absolute` / `set`
//! and written by [`PrometheusHandle::render`]; nothing on the request path touches the recorder.
//! Per-command latency is an hdrhistogram per command per thread; a scrape merges them and writes
//! a Prometheus summary (quantile lines, `_sum`, `_count`) itself, because the exporter's own
//! summaries use a different sketch. INFO's `# Commandstats` and `# Latencystats` come from the
//! same numbers.
//!
//! Nothing here knows about the proxy: the node can record into a [`CommandStats`] of its own.

use hdrhistogram::Histogram;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::cell::RefCell;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Metric names: `slotway_proxy_` prefix, `_total` for counters, base units (seconds).
pub mod names {
    pub const COMMANDS: &str = "slotway_proxy_commands_total";
    pub const COMMAND_ERRORS: &str = "slotway_proxy_command_errors_total";
    pub const COMMANDS_REJECTED: &str = "slotway_proxy_commands_rejected_total";
    pub const COMMAND_LATENCY: &str = "slotway_proxy_command_latency_seconds";
    pub const COMMANDS_PROCESSED: &str = "slotway_proxy_commands_processed_total";
    pub const CONNECTED_CLIENTS: &str = "slotway_proxy_connected_clients";
    pub const CONNECTIONS_RECEIVED: &str = "slotway_proxy_connections_received_total";
    pub const LISTENERS: &str = "slotway_proxy_listeners";
    pub const REDIRECTS: &str = "slotway_proxy_redirects_total";
    pub const CLUSTER_ERRORS: &str = "slotway_proxy_cluster_errors_total";
    pub const BACKEND_ERRORS: &str = "slotway_proxy_backend_errors_total";
    pub const TOPOLOGY_REFRESHES: &str = "slotway_proxy_topology_refreshes_total";
    pub const TOPOLOGY_EPOCH: &str = "slotway_proxy_topology_epoch";
    pub const TOPOLOGY_SLOTS_COVERED: &str = "slotway_proxy_topology_slots_covered";
    pub const TOPOLOGY_SHARDS: &str = "slotway_proxy_topology_shards";
    pub const NODE_CONNECTIONS: &str = "slotway_proxy_node_connections";
    pub const NODE_INFLIGHT: &str = "slotway_proxy_node_inflight_requests";
    pub const NODE_ERRORS: &str = "slotway_proxy_node_errors_total";
    pub const NODE_SLOTS: &str = "slotway_proxy_node_slots";
    pub const NODE_BREAKER: &str = "slotway_proxy_node_breaker_state";
}

/// Quantiles of the latency summaries on /metrics.
pub const SUMMARY_QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];
/// Percentiles of INFO's `# Latencystats`, Redis's default `latency-tracking-info-percentiles`.
pub const INFO_PERCENTILES: [f64; 3] = [50.0, 99.0, 99.9];

/// Latencies are recorded in nanoseconds with 2 significant digits (1% error), as Redis does;
/// longer than a minute counts as a minute. One histogram is ~31 KiB, and exists only for
/// commands a thread has seen.
const HIGHEST_NS: u64 = 60_000_000_000;
const SIGFIG: u8 = 2;

static EXPORTER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's Prometheus recorder, installed as the global `metrics` recorder on first use
/// (so `metrics::counter!` anywhere in the process lands in /metrics). `Err` when some other
/// recorder was installed first.
pub fn exporter() -> Result<&'static PrometheusHandle, &'static str> {
    EXPORTER
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().map_err(|e| e.to_string())?;
            describe();
            Ok(handle)
        })
        .as_ref()
        .map_err(|e| e.as_str())
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge};
    use names::*;
    describe_counter!(COMMANDS, "Requests per command (the command table's name), rejected ones included");
    describe_counter!(COMMAND_ERRORS, "Error replies per command, rejected requests included");
    describe_counter!(COMMANDS_REJECTED, "Requests refused before reaching a node (arity, CROSSSLOT, unsupported)");
    describe_counter!(COMMANDS_PROCESSED, "Requests parsed, unknown commands included");
    describe_gauge!(CONNECTED_CLIENTS, "Client connections open now");
    describe_counter!(CONNECTIONS_RECEIVED, "Client connections accepted");
    describe_gauge!(LISTENERS, "Client listeners accepting connections");
    describe_counter!(REDIRECTS, "MOVED and ASK replies from nodes, followed by the proxy");
    describe_counter!(CLUSTER_ERRORS, "TRYAGAIN and CLUSTERDOWN replies from nodes, retried by the proxy");
    describe_counter!(BACKEND_ERRORS, "Requests that met a connection error towards a node");
    describe_counter!(TOPOLOGY_REFRESHES, "Topology refreshes attempted (periodic and triggered)");
    describe_gauge!(TOPOLOGY_EPOCH, "Config epoch of the routing snapshot");
    describe_gauge!(TOPOLOGY_SLOTS_COVERED, "Slots with a known owner in the routing snapshot");
    describe_gauge!(TOPOLOGY_SHARDS, "Shards in the routing snapshot");
    describe_gauge!(NODE_CONNECTIONS, "Connected backend connection sets to the node (one per worker group and kind)");
    describe_gauge!(NODE_INFLIGHT, "Requests written to the node and not answered yet");
    describe_counter!(NODE_ERRORS, "Connection failures towards the node (connect errors, lost connections)");
    describe_gauge!(NODE_SLOTS, "Slots the node serves as master in the routing snapshot");
    describe_gauge!(NODE_BREAKER, "Circuit breaker towards the node: 0 closed, 1 half-open, 2 open");
}

/// One command's counts, summed over threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests that ran (forwarded or answered here): Redis's `calls`.
    pub calls: u64,
    /// Of those, the ones whose reply was an error: Redis's `failed_calls`.
    pub failed: u64,
    /// Requests refused before running (arity, CROSSSLOT, ...): Redis's `rejected_calls`.
    pub rejected: u64,
    /// Latency of the `calls`, summed.
    pub nanos: u64,
}

#[derive(Default)]
struct Entry {
    counts: Counts,
    hist: Option<Box<Histogram<u64>>>,
}

/// One thread's entries, indexed by command id. Only its own thread locks it per request, so the
/// lock is uncontended except while a scrape copies it.
struct Shard {
    entries: Mutex<Vec<Entry>>,
}

/// How a request ended, for [`CommandStats::record_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// It ran and the reply was an error.
    Failed,
    /// Refused before running; not timed.
    Rejected,
}

/// One request to record: its command id, how long until its reply was ready, how it ended.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub cmd: usize,
    pub nanos: u64,
    pub outcome: Outcome,
    /// Requests this sample stands for: the requests of one pipelined read share command,
    /// start time and outcome, and are recorded as one.
    pub count: u64,
}

/// One command's merged statistics.
pub struct CommandSnapshot {
    pub name: &'static str,
    pub counts: Counts,
    /// Absent when the command never ran (only rejected).
    pub hist: Option<Histogram<u64>>,
}

/// Per-command statistics with per-thread shards: recording locks only the calling thread's
/// shard, once per batch (no cross-thread contention, no allocation after a command's first use
/// on a thread); [`CommandStats::snapshot`] merges every shard.
pub struct CommandStats {
    id: u64,
    names: Vec<&'static str>,
    shards: Mutex<Vec<Arc<Shard>>>,
}

thread_local! {
    /// This thread's shard of each live [`CommandStats`] (usually one), by its id.
    static LOCAL: RefCell<Vec<(u64, Arc<Shard>)>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_NS, SIGFIG).expect("constant histogram bounds are valid")
}

impl CommandStats {
    /// Statistics over `names`, indexed by position (the command table's ids).
    pub fn new(names: Vec<&'static str>) -> CommandStats {
        CommandStats { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), names, shards: Mutex::new(Vec::new()) }
    }

    /// Statistics over every entry of the command table, subcommands included.
    pub fn for_command_table() -> CommandStats {
        let mut names = vec![""; crate::command::table::COUNT];
        for c in crate::command::all() {
            if let Some(n) = names.get_mut(c.id) {
                *n = c.name;
            }
        }
        CommandStats::new(names)
    }

    /// Runs `f` on this thread's shard (created on the thread's first use).
    fn with_shard(&self, f: impl FnOnce(&mut [Entry])) {
        // `try_with`: a thread being torn down records nothing rather than panicking.
        let _ = LOCAL.try_with(|local| {
            let mut local = local.borrow_mut();
            let i = match local.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    // Shards of dropped instances (only tests make several) are let go here.
                    local.retain(|(_, s)| Arc::strong_count(s) > 1);
                    let mut entries = Vec::new();
                    entries.resize_with(self.names.len(), Entry::default);
                    let shard = Arc::new(Shard { entries: Mutex::new(entries) });
                    self.shards.lock().unwrap_or_else(PoisonError::into_inner).push(shard.clone());
                    local.push((self.id, shard));
                    local.len() - 1
                }
            };
            let mut entries = local[i].1.entries.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut entries);
        });
    }

    /// Records requests whose replies became ready together (one write's worth): one shard
    /// lock for all of them. Unknown command ids are ignored.
    pub fn record_all(&self, samples: impl IntoIterator<Item = Sample>) {
        self.with_shard(|entries| {
            for s in samples {
                let Some(e) = entries.get_mut(s.cmd) else { continue };
                let n = s.count;
                match s.outcome {
                    Outcome::Rejected => e.counts.rejected += n,
                    ran => {
                        e.counts.calls += n;
                        e.counts.failed += if ran == Outcome::Failed { n } else { 0 };
                        e.counts.nanos = e.counts.nanos.saturating_add(s.nanos.saturating_mul(n));
                        let h = e.hist.get_or_insert_with(|| Box::new(new_hist()));
                        h.saturating_record_n(s.nanos.max(1), n);
                    }
                }
            }
        });
    }

    /// One request of command `cmd` that ran and took `nanos` until its reply was ready.
    pub fn record(&self, cmd: usize, nanos: u64, failed: bool) {
        let outcome = if failed { Outcome::Failed } else { Outcome::Ok };
        self.record_all([Sample { cmd, nanos, outcome, count: 1 }]);
    }

    /// One request of command `cmd` refused before it ran.
    pub fn reject(&self, cmd: usize) {
        self.record_all([Sample { cmd, nanos: 0, outcome: Outcome::Rejected, count: 1 }]);
    }

    /// Every command with any count, merged over threads, in id order.
    pub fn snapshot(&self) -> Vec<CommandSnapshot> {
        let mut merged: Vec<(Counts, Option<Histogram<u64>>)> = Vec::new();
        merged.resize_with(self.names.len(), Default::default);
        let shards: Vec<Arc<Shard>> = self.shards.lock().unwrap_or_else(PoisonError::into_inner).clone();
        for shard in shards {
            let entries = shard.entries.lock().unwrap_or_else(PoisonError::into_inner);
            for (m, e) in merged.iter_mut().zip(entries.iter()) {
                m.0.calls += e.counts.calls;
                m.0.failed += e.counts.failed;
                m.0.rejected += e.counts.rejected;
                m.0.nanos = m.0.nanos.saturating_add(e.counts.nanos);
                if let Some(h) = &e.hist {
                    // Same bounds everywhere, so adding cannot fail.
                    let _ = m.1.get_or_insert_with(new_hist).add(&**h);
                }
            }
        }
        merged
            .into_iter()
            .zip(&self.names)
            .filter(|((c, _), _)| c.calls + c.rejected > 0)
            .map(|((counts, hist), name)| CommandSnapshot { name, counts, hist })
            .collect()
    }
}

/// INFO's `# Commandstats` lines, as Redis 7 writes them.
pub fn write_commandstats(out: &mut String, snap: &[CommandSnapshot]) {
    for s in snap {
        let c = &s.counts;
        let usec = c.nanos / 1000;
        let per_call = if c.calls == 0 { 0.0 } else { usec as f64 / c.calls as f64 };
        let _ = write!(
            out,
            "cmdstat_{}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
            s.name, c.calls, c.rejected, c.failed
        );
    }
}

/// INFO's `# Latencystats` lines, as Redis 7 writes them (microseconds, 3 decimals).
pub fn write_latencystats(out: &mut String, snap: &[CommandSnapshot]) {
    for s in snap {
        let Some(h) = &s.hist else { continue };
        let _ = write!(out, "latency_percentiles_usec_{}:", s.name);
        for (i, p) in INFO_PERCENTILES.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(out, "{sep}p{p}={:.3}", h.value_at_percentile(*p) as f64 / 1000.0);
        }
        out.push_str("\r\n");
    }
}

/// The latency summary of every command that ran, in Prometheus text format: quantile lines in
/// seconds, `_sum` (seconds) and `_count` (calls).
pub fn write_latency_summary(out: &mut String, snap: &[CommandSnapshot]) {
    let name = names::COMMAND_LATENCY;
    let _ = write!(
        out,
        "# HELP {name} Latency per command from request read to the write of its reply (hdrhistogram quantiles)\n# TYPE {name} summary\n"
    );
    for s in snap {
        let Some(h) = &s.hist else { continue };
        for q in SUMMARY_QUANTILES {
            let v = h.value_at_quantile(q) as f64 / 1e9;
            let _ = writeln!(out, "{name}{{cmd=\"{}\",quantile=\"{q}\"}} {v}", s.name);
        }
        let _ = writeln!(out, "{name}_sum{{cmd=\"{}\"}} {}", s.name, s.counts.nanos as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{{cmd=\"{}\"}} {}", s.name, s.counts.calls);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_threads_and_formats_like_redis() {
        let st = Arc::new(CommandStats::new(vec!["get", "set", "client|id"]));
        st.record(0, 2_000, false);
        let st2 = st.clone();
        std::thread::spawn(move || {
            st2.record(0, 4_000, true);
            st2.record(2, 10_000, false);
            st2.reject(1);
        })
        .join()
        .unwrap_or_default();
        let snap = st.snapshot();
        assert_eq!(snap.len(), 3);
        assert_eq!(snap[0].counts, Counts { calls: 2, failed: 1, rejected: 0, nanos: 6_000 });
        assert_eq!(snap[1].counts, Counts { calls: 0, failed: 0, rejected: 1, nanos: 0 });
        assert!(snap[1].hist.is_none());
        let mut s = String::new();
        write_commandstats(&mut s, &snap);
        assert_eq!(
            s,
            "cmdstat_get:calls=2,usec=6,usec_per_call=3.00,rejected_calls=0,failed_calls=1\r\n\
             cmdstat_set:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0\r\n\
             cmdstat_client|id:calls=1,usec=10,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n"
        );
        let mut s = String::new();
        write_latencystats(&mut s, &snap);
        let lines: Vec<&str> = s.split("\r\n").collect();
        assert!(lines[0].starts_with("latency_percentiles_usec_get:p50=2.0"), "{s}");
        assert!(lines[0].contains(",p99=4.0") && lines[0].contains(",p99.9=4.0"), "{s}");
        assert!(lines[1].starts_with("latency_percentiles_usec_client|id:p50=10.0"), "{s}");
        let mut s = String::new();
        write_latency_summary(&mut s, &snap);
        assert!(s.contains("slotway_proxy_command_latency_seconds{cmd=\"get\",quantile=\"0.5\"} 0.000002"), "{s}");
        assert!(s.contains("slotway_proxy_command_latency_seconds_count{cmd=\"get\"} 2\n"), "{s}");
        assert!(s.contains("slotway_proxy_command_latency_seconds_sum{cmd=\"get\"} 0.000006\n"), "{s}");
        assert!(!s.contains("cmd=\"set\""), "{s}");
    }

    #[test]
    fn out_of_range_ids_and_huge_latencies_are_harmless() {
        let st = CommandStats::new(vec!["get"]);
        st.record(7, 1, false);
        st.reject(99);
        st.record(0, u64::MAX, false);
        let snap = st.snapshot();
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].hist.as_ref().map(|h| h.len()), Some(1));
    }
}
