//! INFO: Redis 7.0's sections, field names and order, `\r\n` line endings.
//!
//! Memory figures come from the process's resident set (`/proc/self/statm`): the crate forbids
//! `unsafe`, so there is no counting global allocator, and RSS is the honest measure of what the
//! node holds. `used_memory` is therefore RSS (and the fragmentation ratio 1.00); the peak is the
//! highest RSS the cron or an INFO call has seen.

use super::sys;
use crate::command;
use crate::node::client::Client;
use crate::node::cmd::connection::REDIS_VERSION;
use crate::node::db::lru_clock;
use crate::node::server::{unix_us, Server};
use std::fmt::Write;

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Which sections a request asks for (Redis's `genInfoSectionDict`).
struct Wanted {
    names: Vec<String>,
    all: bool,
    everything: bool,
}

impl Wanted {
    fn parse(args: &[&[u8]]) -> Wanted {
        let mut w = Wanted { names: Vec::new(), all: false, everything: false };
        if args.is_empty() {
            w.names = DEFAULT_SECTIONS.iter().map(|s| s.to_string()).collect();
            return w;
        }
        for a in args {
            let s = String::from_utf8_lossy(a).to_ascii_lowercase();
            match s.as_str() {
                "default" => w.names.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
                "all" => w.all = true,
                "everything" => {
                    w.all = true;
                    w.everything = true;
                }
                _ => w.names.push(s),
            }
        }
        w
    }

    fn has(&self, name: &str) -> bool {
        self.all || self.names.iter().any(|n| n == name)
    }
}

/// Builds the INFO text for `args` (section names, already without the command name).
pub fn info_string(srv: &mut Server, client: &Client, args: &[&[u8]]) -> String {
    let w = Wanted::parse(args);
    let mut out = String::new();
    let mut sections = 0;
    let mut section = |out: &mut String, title: &str| {
        if sections > 0 {
            out.push_str("\r\n");
        }
        sections += 1;
        let _ = write!(out, "# {title}\r\n");
    };
    let now_us = unix_us();
    if w.has("server") {
        section(&mut out, "Server");
        server_section(srv, &mut out, now_us);
    }
    if w.has("clients") {
        section(&mut out, "Clients");
        clients_section(srv, client, &mut out);
    }
    if w.has("memory") {
        section(&mut out, "Memory");
        memory_section(srv, &mut out);
    }
    if w.has("persistence") {
        section(&mut out, "Persistence");
        persistence_section(srv, &mut out);
    }
    if w.has("stats") {
        section(&mut out, "Stats");
        stats_section(srv, &mut out);
    }
    if w.has("replication") {
        section(&mut out, "Replication");
        replication_section(srv, &mut out);
    }
    if w.has("cpu") {
        section(&mut out, "CPU");
        cpu_section(&mut out);
    }
    if w.has("module_list") || w.has("modules") {
        section(&mut out, "Modules");
    }
    if w.has("commandstats") {
        section(&mut out, "Commandstats");
        for c in command::all() {
            let s = srv.stats.commands[c.id];
            if s.calls == 0 && s.failed == 0 && s.rejected == 0 {
                continue;
            }
            // Redis computes this in a C float.
            let per_call = if s.calls == 0 { 0.0 } else { (s.usec as f32 / s.calls as f32) as f64 };
            let _ = write!(
                out,
                "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}\r\n",
                c.name, s.calls, s.usec, per_call, s.rejected, s.failed
            );
        }
    }
    if w.has("errorstats") {
        section(&mut out, "Errorstats");
        for (name, count) in &srv.stats.errors {
            let _ = write!(out, "errorstat_{name}:count={count}\r\n");
        }
    }
    if w.has("latencystats") {
        section(&mut out, "Latencystats");
        let percentiles: Vec<(String, f64)> = srv
            .config
            .get("latency-tracking-info-percentiles")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|p| p.parse::<f64>().ok().map(|v| (p.to_string(), v)))
            .collect();
        for c in command::all() {
            let Some(h) = srv.stats.latency_hist[c.id].as_ref().filter(|h| h.total() > 0) else { continue };
            let _ = write!(out, "latency_percentiles_usec_{}:", c.name);
            for (i, (name, p)) in percentiles.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "p{name}={:.3}", h.value_at_percentile(*p) as f64 / 1000.0);
            }
            out.push_str("\r\n");
        }
    }
    if w.has("cluster") {
        section(&mut out, "Cluster");
        let _ = write!(out, "cluster_enabled:{}\r\n", srv.cluster.is_some() as u8);
    }
    if w.has("keyspace") {
        section(&mut out, "Keyspace");
        let now_ms = now_us / 1000;
        for (i, db) in srv.dbs.iter().enumerate() {
            if db.is_empty() {
                continue;
            }
            let _ =
                write!(out, "db{i}:keys={},expires={},avg_ttl={}\r\n", db.len(), db.expires_len(), db.avg_ttl(now_ms));
        }
    }
    out
}

fn server_section(srv: &Server, out: &mut String, now_us: i64) {
    let uptime = srv.started.elapsed().as_secs();
    let executable = std::env::current_exe().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let config_hz = srv.config.get("hz").unwrap_or("10");
    let _ = write!(
        out,
        "redis_version:{REDIS_VERSION}\r\n\
         redis_git_sha1:00000000\r\n\
         redis_git_dirty:0\r\n\
         redis_build_id:0000000000000000\r\n\
         redis_mode:standalone\r\n\
         os:{}\r\n\
         arch_bits:{}\r\n\
         monotonic_clock:POSIX clock_gettime\r\n\
         multiplexing_api:epoll\r\n\
         atomicvar_api:c11-builtin\r\n\
         gcc_version:0.0.0\r\n\
         process_id:{}\r\n\
         process_supervised:no\r\n\
         run_id:{}\r\n\
         tcp_port:{}\r\n\
         server_time_usec:{now_us}\r\n\
         uptime_in_seconds:{uptime}\r\n\
         uptime_in_days:{}\r\n\
         hz:{}\r\n\
         configured_hz:{config_hz}\r\n\
         lru_clock:{}\r\n\
         executable:{executable}\r\n\
         config_file:{}\r\n\
         io_threads_active:0\r\n",
        sys::os_name(),
        usize::BITS,
        std::process::id(),
        srv.run_id,
        srv.tcp_port,
        uptime / 86400,
        srv.config.hz,
        lru_clock(now_us / 1000) & ((1 << 24) - 1),
        srv.config_file.as_deref().unwrap_or(""),
    );
}

fn clients_section(srv: &Server, client: &Client, out: &mut String) {
    let (mut blocked, mut in_timeout) = (0, 0);
    srv.for_each_client(client, |c| {
        if let Some(b) = &c.blocked {
            blocked += 1;
            if b.deadline.is_some() {
                in_timeout += 1;
            }
        }
    });
    let _ = write!(
        out,
        "connected_clients:{}\r\n\
         cluster_connections:0\r\n\
         maxclients:{}\r\n\
         client_recent_max_input_buffer:0\r\n\
         client_recent_max_output_buffer:0\r\n\
         blocked_clients:{blocked}\r\n\
         tracking_clients:0\r\n\
         clients_in_timeout_table:{in_timeout}\r\n",
        srv.clients.len(),
        srv.config.maxclients,
    );
}

fn memory_section(srv: &mut Server, out: &mut String) {
    let used = sys::rss_bytes();
    srv.memory_peak = srv.memory_peak.max(used);
    let peak = srv.memory_peak;
    let startup = srv.memory_startup.min(used);
    let dataset = used - startup;
    let system = sys::total_system_memory();
    let maxmemory = srv.config.maxmemory;
    let h = sys::bytes_to_human;
    let _ = write!(
        out,
        "used_memory:{used}\r\n\
         used_memory_human:{}\r\n\
         used_memory_rss:{used}\r\n\
         used_memory_rss_human:{}\r\n\
         used_memory_peak:{peak}\r\n\
         used_memory_peak_human:{}\r\n\
         used_memory_peak_perc:{:.2}%\r\n\
         used_memory_overhead:{startup}\r\n\
         used_memory_startup:{startup}\r\n\
         used_memory_dataset:{dataset}\r\n\
         used_memory_dataset_perc:{:.2}%\r\n\
         allocator_allocated:{used}\r\n\
         allocator_active:{used}\r\n\
         allocator_resident:{used}\r\n\
         total_system_memory:{system}\r\n\
         total_system_memory_human:{}\r\n\
         used_memory_lua:0\r\n\
         used_memory_vm_eval:0\r\n\
         used_memory_lua_human:0B\r\n\
         used_memory_scripts_eval:0\r\n\
         number_of_cached_scripts:0\r\n\
         number_of_functions:0\r\n\
         number_of_libraries:0\r\n\
         used_memory_vm_functions:0\r\n\
         used_memory_vm_total:0\r\n\
         used_memory_vm_total_human:0B\r\n\
         used_memory_functions:0\r\n\
         used_memory_scripts:0\r\n\
         used_memory_scripts_human:0B\r\n\
         maxmemory:{maxmemory}\r\n\
         maxmemory_human:{}\r\n\
         maxmemory_policy:{}\r\n\
         allocator_frag_ratio:1.00\r\n\
         allocator_frag_bytes:0\r\n\
         allocator_rss_ratio:1.00\r\n\
         allocator_rss_bytes:0\r\n\
         rss_overhead_ratio:1.00\r\n\
         rss_overhead_bytes:0\r\n\
         mem_fragmentation_ratio:1.00\r\n\
         mem_fragmentation_bytes:0\r\n\
         mem_not_counted_for_evict:0\r\n\
         mem_replication_backlog:0\r\n\
         mem_total_replication_buffers:0\r\n\
         mem_clients_slaves:0\r\n\
         mem_clients_normal:0\r\n\
         mem_cluster_links:0\r\n\
         mem_aof_buffer:0\r\n\
         mem_allocator:libc\r\n\
         active_defrag_running:0\r\n\
         lazyfree_pending_objects:0\r\n\
         lazyfreed_objects:0\r\n",
        h(used),
        h(used),
        h(peak),
        if peak == 0 { 0.0 } else { used as f64 * 100.0 / peak as f64 },
        if used == 0 { 0.0 } else { dataset as f64 * 100.0 / used as f64 },
        h(system),
        h(maxmemory),
        srv.config.get("maxmemory-policy").unwrap_or("noeviction"),
    );
}

fn persistence_section(srv: &Server, out: &mut String) {
    let _ = write!(
        out,
        "loading:0\r\n\
         async_loading:0\r\n\
         current_cow_peak:0\r\n\
         current_cow_size:0\r\n\
         current_cow_size_age:0\r\n\
         current_fork_perc:0.00\r\n\
         current_save_keys_processed:0\r\n\
         current_save_keys_total:0\r\n\
         rdb_changes_since_last_save:{}\r\n\
         rdb_bgsave_in_progress:0\r\n\
         rdb_last_save_time:{}\r\n\
         rdb_last_bgsave_status:ok\r\n\
         rdb_last_bgsave_time_sec:-1\r\n\
         rdb_current_bgsave_time_sec:-1\r\n\
         rdb_saves:0\r\n\
         rdb_last_cow_size:0\r\n\
         rdb_last_load_keys_expired:0\r\n\
         rdb_last_load_keys_loaded:0\r\n\
         aof_enabled:0\r\n\
         aof_rewrite_in_progress:0\r\n\
         aof_rewrite_scheduled:0\r\n\
         aof_last_rewrite_time_sec:-1\r\n\
         aof_current_rewrite_time_sec:-1\r\n\
         aof_last_bgrewrite_status:ok\r\n\
         aof_rewrites:0\r\n\
         aof_rewrites_consecutive_failures:0\r\n\
         aof_last_write_status:ok\r\n\
         aof_last_cow_size:0\r\n\
         module_fork_in_progress:0\r\n\
         module_fork_last_cow_size:0\r\n",
        srv.dirty, srv.lastsave,
    );
}

fn stats_section(srv: &Server, out: &mut String) {
    let st = &srv.stats;
    let hits: u64 = srv.dbs.iter().map(|d| d.hits).sum();
    let misses: u64 = srv.dbs.iter().map(|d| d.misses).sum();
    let (kin, kout) = srv.instantaneous_kbps();
    let _ = write!(
        out,
        "total_connections_received:{}\r\n\
         total_commands_processed:{}\r\n\
         instantaneous_ops_per_sec:{}\r\n\
         total_net_input_bytes:{}\r\n\
         total_net_output_bytes:{}\r\n\
         total_net_repl_input_bytes:0\r\n\
         total_net_repl_output_bytes:0\r\n\
         instantaneous_input_kbps:{kin:.2}\r\n\
         instantaneous_output_kbps:{kout:.2}\r\n\
         instantaneous_input_repl_kbps:0.00\r\n\
         instantaneous_output_repl_kbps:0.00\r\n\
         rejected_connections:{}\r\n\
         sync_full:0\r\n\
         sync_partial_ok:0\r\n\
         sync_partial_err:0\r\n\
         expired_keys:{}\r\n\
         expired_stale_perc:0.00\r\n\
         expired_time_cap_reached_count:0\r\n\
         expire_cycle_cpu_milliseconds:0\r\n\
         evicted_keys:{}\r\n\
         evicted_clients:0\r\n\
         total_eviction_exceeded_time:0\r\n\
         current_eviction_exceeded_time:0\r\n\
         keyspace_hits:{hits}\r\n\
         keyspace_misses:{misses}\r\n\
         pubsub_channels:{}\r\n\
         pubsub_patterns:{}\r\n\
         pubsubshard_channels:0\r\n\
         latest_fork_usec:0\r\n\
         total_forks:0\r\n\
         migrate_cached_sockets:0\r\n\
         slave_expires_tracked_keys:0\r\n\
         active_defrag_hits:0\r\n\
         active_defrag_misses:0\r\n\
         active_defrag_key_hits:0\r\n\
         active_defrag_key_misses:0\r\n\
         total_active_defrag_time:0\r\n\
         current_active_defrag_time:0\r\n\
         tracking_total_keys:0\r\n\
         tracking_total_items:0\r\n\
         tracking_total_prefixes:0\r\n\
         unexpected_error_replies:0\r\n\
         total_error_replies:{}\r\n\
         dump_payload_sanitizations:0\r\n\
         total_reads_processed:{}\r\n\
         total_writes_processed:{}\r\n\
         io_threaded_reads_processed:0\r\n\
         io_threaded_writes_processed:0\r\n\
         reply_buffer_shrinks:0\r\n\
         reply_buffer_expands:0\r\n",
        st.connections_received,
        st.commands_processed,
        srv.instantaneous_ops(),
        st.net_input_bytes,
        st.net_output_bytes,
        st.rejected_connections,
        srv.expired_total(),
        st.evicted_keys,
        srv.pubsub.channels.len(),
        srv.pubsub.patterns.len(),
        st.total_error_replies,
        0,
        0,
    );
}

fn replication_section(srv: &Server, out: &mut String) {
    let _ = write!(
        out,
        "role:master\r\n\
         connected_slaves:0\r\n\
         master_failover_state:no-failover\r\n\
         master_replid:{}\r\n\
         master_replid2:0000000000000000000000000000000000000000\r\n\
         master_repl_offset:0\r\n\
         second_repl_offset:-1\r\n\
         repl_backlog_active:0\r\n\
         repl_backlog_size:{}\r\n\
         repl_backlog_first_byte_offset:0\r\n\
         repl_backlog_histlen:0\r\n",
        srv.master_replid,
        srv.config.get("repl-backlog-size").unwrap_or("1048576"),
    );
}

fn cpu_section(out: &mut String) {
    let p = sys::cpu_process();
    let m = sys::cpu_main_thread();
    let tv = |t: (u64, u64)| format!("{}.{:06}", t.0, t.1);
    let _ = write!(
        out,
        "used_cpu_sys:{}\r\n\
         used_cpu_user:{}\r\n\
         used_cpu_sys_children:{}\r\n\
         used_cpu_user_children:{}\r\n\
         used_cpu_sys_main_thread:{}\r\n\
         used_cpu_user_main_thread:{}\r\n",
        tv(p.sys),
        tv(p.user),
        tv(p.children_sys),
        tv(p.children_user),
        tv(m.sys),
        tv(m.user),
    );
}
