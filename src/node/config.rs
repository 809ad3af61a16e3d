//! Node options: one registry drives redis.conf parsing, `--flag value` command lines, CONFIG GET
//! and CONFIG SET, so an option exists everywhere or nowhere. Values are kept in the normalized
//! text CONFIG GET prints; typed copies of the ones the hot path reads live in [`Config`]'s fields.
//!
//! The registry mirrors Redis 7.0's `static_configs` table (same names, aliases, defaults, bounds
//! and C types), so CONFIG GET/SET accept and reject exactly what Redis does, with its error texts.

use std::collections::BTreeMap;

/// Bounds and parsing rules of a numeric option, as Redis's `numericConfigData`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num {
    pub min: i128,
    pub max: i128,
    /// The C type is unsigned: bounds are checked after a cast to u64 (so `-1` reports the range).
    pub unsigned: bool,
    /// Accepts `1gb`, `100mb`, `1k` (Redis `memtoull`); printed as unsigned bytes.
    pub memory: bool,
    /// Accepts `N%` (kept negative, printed back as `N%`).
    pub percent: bool,
    /// Parsed and printed in base 8.
    pub octal: bool,
}

/// Extra validation of a string option.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StrCheck {
    None,
    FileName,
    AofFileName,
    AofDirName,
    Hostname,
    ProcTitle,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Bool,
    Num(Num),
    /// Names and their values; several names may share a value (the first one is printed).
    Enum(&'static [(&'static str, u32)]),
    /// A set of flags from a list of words (shutdown-on-sigint).
    Flags(&'static [(&'static str, u32)]),
    Str(StrCheck),
    /// The working directory (printed absolute).
    Dir,
    /// `save "3600 1 300 100"`: pairs of seconds/changes, or empty.
    Save,
    ClientOutputBufferLimit,
    OomScoreAdjValues,
    NotifyKeyspaceEvents,
    Bind,
    ReplicaOf,
    LatencyPercentiles,
}

pub const IMMUTABLE: u8 = 1;
/// Settable at run time only with `enable-protected-configs`.
pub const PROTECTED: u8 = 2;
/// Left out of CONFIG GET patterns (an exact name still works).
pub const HIDDEN: u8 = 4;
pub const SENSITIVE: u8 = 8;

#[derive(Debug)]
pub struct OptionDef {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    pub flags: u8,
}

impl OptionDef {
    pub fn mutable(&self) -> bool {
        self.flags & IMMUTABLE == 0
    }
    /// Options that take several words (split on single spaces in CONFIG SET).
    pub fn multi_arg(&self) -> bool {
        matches!(
            self.kind,
            Kind::Save
                | Kind::ClientOutputBufferLimit
                | Kind::OomScoreAdjValues
                | Kind::Bind
                | Kind::ReplicaOf
                | Kind::LatencyPercentiles
                | Kind::Flags(_)
        )
    }
}

const fn def(
    name: &'static str,
    alias: Option<&'static str>,
    kind: Kind,
    default: &'static str,
    flags: u8,
) -> OptionDef {
    OptionDef { name, alias, kind, default, flags }
}
const fn num(min: i128, max: i128, unsigned: bool) -> Kind {
    Kind::Num(Num { min, max, unsigned, memory: false, percent: false, octal: false })
}
const fn mem(min: i128, max: i128, unsigned: bool) -> Kind {
    Kind::Num(Num { min, max, unsigned, memory: true, percent: false, octal: false })
}

const INT_MIN: i128 = i32::MIN as i128;
const INT_MAX: i128 = i32::MAX as i128;
const UINT_MAX: i128 = u32::MAX as i128;
const LONG_MAX: i128 = i64::MAX as i128;
const ULLONG_MAX: i128 = u64::MAX as i128;

/// `int` options.
const fn int(min: i128, max: i128) -> Kind {
    num(min, max, false)
}
/// `size_t` counts (unsigned, 0..LONG_MAX).
const SIZE: Kind = num(0, LONG_MAX, true);
const B: Kind = Kind::Bool;
const S: Kind = Kind::Str(StrCheck::None);

const POLICIES: &[(&str, u32)] = &[
    ("volatile-lru", 0),
    ("volatile-lfu", 1),
    ("volatile-random", 2),
    ("volatile-ttl", 3),
    ("allkeys-lru", 4),
    ("allkeys-lfu", 5),
    ("allkeys-random", 6),
    ("noeviction", 7),
];
const LOGLEVELS: &[(&str, u32)] = &[("debug", 0), ("verbose", 1), ("notice", 2), ("warning", 3)];
const SUPERVISED: &[(&str, u32)] = &[("upstart", 0), ("systemd", 1), ("auto", 2), ("no", 3)];
const FACILITIES: &[(&str, u32)] = &[
    ("user", 0),
    ("local0", 1),
    ("local1", 2),
    ("local2", 3),
    ("local3", 4),
    ("local4", 5),
    ("local5", 6),
    ("local6", 7),
    ("local7", 8),
];
const FSYNC: &[(&str, u32)] = &[("everysec", 0), ("always", 1), ("no", 2)];
const DISKLESS_LOAD: &[(&str, u32)] = &[("disabled", 0), ("on-empty-db", 1), ("swapdb", 2)];
const TLS_AUTH: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("optional", 2)];
const OOM_ADJ: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)];
const PUBSUB_DEFAULT: &[(&str, u32)] = &[("allchannels", 1), ("resetchannels", 0)];
const SANITIZE: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("clients", 2)];
const PROTECTED_ACTION: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("local", 2)];
const ENDPOINT: &[(&str, u32)] = &[("ip", 0), ("hostname", 1), ("unknown-endpoint", 2)];
const PROPAGATION_ERR: &[(&str, u32)] = &[("ignore", 0), ("panic", 1), ("panic-on-replicas", 2)];
const SHUTDOWN_FLAGS: &[(&str, u32)] = &[("default", 0), ("save", 1), ("nosave", 2), ("now", 4), ("force", 8)];

/// Every option the node accepts: Redis 7.0.15's table. Defaults are Redis 7.0's.
#[rustfmt::skip]
pub static OPTIONS: &[OptionDef] = &[
    // Bool
    def("rdbchecksum", None, B, "yes", IMMUTABLE),
    def("daemonize", None, B, "no", IMMUTABLE),
    def("io-threads-do-reads", None, B, "no", IMMUTABLE),
    def("always-show-logo", None, B, "no", IMMUTABLE),
    def("protected-mode", None, B, "yes", 0),
    def("rdbcompression", None, B, "yes", 0),
    def("rdb-del-sync-files", None, B, "no", 0),
    def("activerehashing", None, B, "yes", 0),
    def("stop-writes-on-bgsave-error", None, B, "yes", 0),
    def("set-proc-title", None, B, "yes", IMMUTABLE),
    def("dynamic-hz", None, B, "yes", 0),
    def("lazyfree-lazy-eviction", None, B, "no", 0),
    def("lazyfree-lazy-expire", None, B, "no", 0),
    def("lazyfree-lazy-server-del", None, B, "no", 0),
    def("lazyfree-lazy-user-del", None, B, "no", 0),
    def("lazyfree-lazy-user-flush", None, B, "no", 0),
    def("repl-disable-tcp-nodelay", None, B, "no", 0),
    def("repl-diskless-sync", None, B, "yes", 0),
    def("aof-rewrite-incremental-fsync", None, B, "yes", 0),
    def("no-appendfsync-on-rewrite", None, B, "no", 0),
    def("cluster-require-full-coverage", None, B, "yes", 0),
    def("rdb-save-incremental-fsync", None, B, "yes", 0),
    def("aof-load-truncated", None, B, "yes", 0),
    def("aof-use-rdb-preamble", None, B, "yes", 0),
    def("aof-timestamp-enabled", None, B, "no", 0),
    def("cluster-replica-no-failover", Some("cluster-slave-no-failover"), B, "no", 0),
    def("replica-lazy-flush", Some("slave-lazy-flush"), B, "no", 0),
    def("replica-serve-stale-data", Some("slave-serve-stale-data"), B, "yes", 0),
    def("replica-read-only", Some("slave-read-only"), B, "yes", 0),
    def("replica-ignore-maxmemory", Some("slave-ignore-maxmemory"), B, "yes", 0),
    def("jemalloc-bg-thread", None, B, "yes", 0),
    def("activedefrag", None, B, "no", 0),
    def("syslog-enabled", None, B, "no", IMMUTABLE),
    def("cluster-enabled", None, B, "no", IMMUTABLE),
    def("appendonly", None, B, "no", 0),
    def("cluster-allow-reads-when-down", None, B, "no", 0),
    def("cluster-allow-pubsubshard-when-down", None, B, "yes", 0),
    def("crash-log-enabled", None, B, "yes", 0),
    def("crash-memcheck-enabled", None, B, "yes", 0),
    def("use-exit-on-panic", None, B, "no", HIDDEN),
    def("disable-thp", None, B, "yes", IMMUTABLE),
    def("cluster-allow-replica-migration", None, B, "yes", 0),
    def("replica-announced", None, B, "yes", 0),
    def("latency-tracking", None, B, "yes", 0),
    def("aof-disable-auto-gc", None, B, "no", 0),
    def("replica-ignore-disk-write-errors", None, B, "no", 0),
    def("tls-cluster", None, B, "no", 0),
    def("tls-replication", None, B, "no", 0),
    def("tls-prefer-server-ciphers", None, B, "no", 0),
    def("tls-session-caching", None, B, "yes", 0),
    // String
    def("aclfile", None, S, "", IMMUTABLE),
    def("unixsocket", None, S, "", IMMUTABLE),
    def("pidfile", None, S, "", IMMUTABLE),
    def("replica-announce-ip", Some("slave-announce-ip"), S, "", 0),
    def("masteruser", None, S, "", SENSITIVE),
    def("cluster-announce-ip", None, S, "", 0),
    def("cluster-config-file", None, S, "nodes.conf", IMMUTABLE),
    def("cluster-announce-hostname", None, Kind::Str(StrCheck::Hostname), "", 0),
    def("syslog-ident", None, S, "redis", IMMUTABLE),
    def("dbfilename", None, Kind::Str(StrCheck::FileName), "dump.rdb", PROTECTED),
    def("appendfilename", None, Kind::Str(StrCheck::AofFileName), "appendonly.aof", IMMUTABLE),
    def("appenddirname", None, Kind::Str(StrCheck::AofDirName), "appendonlydir", IMMUTABLE),
    def("server_cpulist", None, S, "", IMMUTABLE),
    def("bio_cpulist", None, S, "", IMMUTABLE),
    def("aof_rewrite_cpulist", None, S, "", IMMUTABLE),
    def("bgsave_cpulist", None, S, "", IMMUTABLE),
    def("ignore-warnings", None, S, "", 0),
    def("proc-title-template", None, Kind::Str(StrCheck::ProcTitle), "{title} {listen-addr} {server-mode}", 0),
    def("bind-source-addr", None, S, "", 0),
    def("logfile", None, S, "", IMMUTABLE),
    def("masterauth", None, S, "", SENSITIVE),
    def("requirepass", None, S, "", SENSITIVE),
    def("tls-cert-file", None, S, "", 0),
    def("tls-key-file", None, S, "", 0),
    def("tls-key-file-pass", None, S, "", 0),
    def("tls-client-cert-file", None, S, "", 0),
    def("tls-client-key-file", None, S, "", 0),
    def("tls-client-key-file-pass", None, S, "", 0),
    def("tls-dh-params-file", None, S, "", 0),
    def("tls-ca-cert-file", None, S, "", 0),
    def("tls-ca-cert-dir", None, S, "", 0),
    def("tls-protocols", None, S, "", 0),
    def("tls-ciphers", None, S, "", 0),
    def("tls-ciphersuites", None, S, "", 0),
    // Enum
    def("supervised", None, Kind::Enum(SUPERVISED), "no", IMMUTABLE),
    def("syslog-facility", None, Kind::Enum(FACILITIES), "local0", IMMUTABLE),
    def("repl-diskless-load", None, Kind::Enum(DISKLESS_LOAD), "disabled", 0),
    def("loglevel", None, Kind::Enum(LOGLEVELS), "notice", 0),
    def("maxmemory-policy", None, Kind::Enum(POLICIES), "noeviction", 0),
    def("appendfsync", None, Kind::Enum(FSYNC), "everysec", 0),
    def("oom-score-adj", None, Kind::Enum(OOM_ADJ), "no", 0),
    def("acl-pubsub-default", None, Kind::Enum(PUBSUB_DEFAULT), "resetchannels", 0),
    def("sanitize-dump-payload", None, Kind::Enum(SANITIZE), "no", 0),
    def("enable-protected-configs", None, Kind::Enum(PROTECTED_ACTION), "no", IMMUTABLE),
    def("enable-debug-command", None, Kind::Enum(PROTECTED_ACTION), "no", IMMUTABLE),
    def("enable-module-command", None, Kind::Enum(PROTECTED_ACTION), "no", IMMUTABLE),
    def("cluster-preferred-endpoint-type", None, Kind::Enum(ENDPOINT), "ip", 0),
    def("tls-auth-clients", None, Kind::Enum(TLS_AUTH), "yes", 0),
    def("propagation-error-behavior", None, Kind::Enum(PROPAGATION_ERR), "ignore", 0),
    def("shutdown-on-sigint", None, Kind::Flags(SHUTDOWN_FLAGS), "default", 0),
    def("shutdown-on-sigterm", None, Kind::Flags(SHUTDOWN_FLAGS), "default", 0),
    // int
    def("databases", None, int(1, INT_MAX), "16", IMMUTABLE),
    def("port", None, int(0, 65535), "6379", 0),
    def("io-threads", None, int(1, 128), "1", IMMUTABLE),
    def("auto-aof-rewrite-percentage", None, int(0, INT_MAX), "100", 0),
    def("cluster-replica-validity-factor", Some("cluster-slave-validity-factor"), int(0, INT_MAX), "10", 0),
    def("list-max-listpack-size", Some("list-max-ziplist-size"), int(INT_MIN, INT_MAX), "-2", 0),
    def("tcp-keepalive", None, int(0, INT_MAX), "300", 0),
    def("cluster-migration-barrier", None, int(0, INT_MAX), "1", 0),
    def("active-defrag-cycle-min", None, int(1, 99), "1", 0),
    def("active-defrag-cycle-max", None, int(1, 99), "25", 0),
    def("active-defrag-threshold-lower", None, int(0, 1000), "10", 0),
    def("active-defrag-threshold-upper", None, int(0, 1000), "100", 0),
    def("lfu-log-factor", None, int(0, INT_MAX), "10", 0),
    def("lfu-decay-time", None, int(0, INT_MAX), "1", 0),
    def("replica-priority", Some("slave-priority"), int(0, INT_MAX), "100", 0),
    def("repl-diskless-sync-delay", None, int(0, INT_MAX), "5", 0),
    def("maxmemory-samples", None, int(1, INT_MAX), "5", 0),
    def("maxmemory-eviction-tenacity", None, int(0, 100), "10", 0),
    def("timeout", None, int(0, INT_MAX), "0", 0),
    def("replica-announce-port", Some("slave-announce-port"), int(0, 65535), "0", 0),
    def("tcp-backlog", None, int(0, INT_MAX), "511", IMMUTABLE),
    def("cluster-port", None, int(0, 65535), "0", IMMUTABLE),
    def("cluster-announce-bus-port", None, int(0, 65535), "0", 0),
    def("cluster-announce-port", None, int(0, 65535), "0", 0),
    def("cluster-announce-tls-port", None, int(0, 65535), "0", 0),
    def("repl-timeout", None, int(1, INT_MAX), "60", 0),
    def("repl-ping-replica-period", Some("repl-ping-slave-period"), int(1, INT_MAX), "10", 0),
    def("list-compress-depth", None, int(0, INT_MAX), "0", 0),
    def("rdb-key-save-delay", None, int(INT_MIN, INT_MAX), "0", HIDDEN),
    def("key-load-delay", None, int(INT_MIN, INT_MAX), "0", HIDDEN),
    def("active-expire-effort", None, int(1, 10), "1", 0),
    def("hz", None, int(0, INT_MAX), "10", 0),
    def("min-replicas-to-write", Some("min-slaves-to-write"), int(0, INT_MAX), "0", 0),
    def("min-replicas-max-lag", Some("min-slaves-max-lag"), int(0, INT_MAX), "10", 0),
    def("watchdog-period", None, int(0, INT_MAX), "0", HIDDEN),
    def("shutdown-timeout", None, int(0, INT_MAX), "10", 0),
    def("repl-diskless-sync-max-replicas", None, int(0, INT_MAX), "0", 0),
    def("tls-port", None, int(0, 65535), "0", 0),
    def("tls-session-cache-size", None, int(0, INT_MAX), "20480", 0),
    def("tls-session-cache-timeout", None, int(0, INT_MAX), "300", 0),
    // unsigned int
    def("maxclients", None, num(1, UINT_MAX, true), "10000", 0),
    def("unixsocketperm", None, Kind::Num(Num { min: 0, max: 0o777, unsigned: true, memory: false, percent: false, octal: true }), "0", IMMUTABLE),
    def("socket-mark-id", None, num(0, UINT_MAX, true), "0", IMMUTABLE),
    // unsigned long (checked as signed, like Redis)
    def("active-defrag-max-scan-fields", None, int(1, LONG_MAX), "1000", 0),
    def("slowlog-max-len", None, int(0, LONG_MAX), "128", 0),
    def("acllog-max-len", None, int(0, LONG_MAX), "128", 0),
    // long long
    def("busy-reply-threshold", Some("lua-time-limit"), int(0, LONG_MAX), "5000", 0),
    def("cluster-node-timeout", None, int(0, LONG_MAX), "15000", 0),
    def("slowlog-log-slower-than", None, int(-1, LONG_MAX), "10000", 0),
    def("latency-monitor-threshold", None, int(0, LONG_MAX), "0", 0),
    def("proto-max-bulk-len", None, mem(1024 * 1024, LONG_MAX, false), "536870912", 0),
    def("stream-node-max-entries", None, int(0, LONG_MAX), "100", 0),
    def("repl-backlog-size", None, mem(1, LONG_MAX, false), "1048576", 0),
    // unsigned long long
    def("maxmemory", None, mem(0, ULLONG_MAX, true), "0", 0),
    def("cluster-link-sendbuf-limit", None, mem(0, ULLONG_MAX, true), "0", 0),
    // size_t
    def("hash-max-listpack-entries", Some("hash-max-ziplist-entries"), SIZE, "512", 0),
    def("set-max-intset-entries", None, SIZE, "512", 0),
    def("zset-max-listpack-entries", Some("zset-max-ziplist-entries"), SIZE, "128", 0),
    def("active-defrag-ignore-bytes", None, mem(1, LONG_MAX, true), "104857600", 0),
    def("hash-max-listpack-value", Some("hash-max-ziplist-value"), mem(0, LONG_MAX, true), "64", 0),
    def("stream-node-max-bytes", None, mem(0, LONG_MAX, true), "4096", 0),
    def("zset-max-listpack-value", Some("zset-max-ziplist-value"), mem(0, LONG_MAX, true), "64", 0),
    def("hll-sparse-max-bytes", None, mem(0, LONG_MAX, true), "3000", 0),
    def("tracking-table-max-keys", None, SIZE, "1000000", 0),
    def("client-query-buffer-limit", None, mem(1024 * 1024, LONG_MAX, true), "1073741824", 0),
    def("maxmemory-clients", None, Kind::Num(Num { min: -100, max: LONG_MAX, unsigned: false, memory: true, percent: true, octal: false }), "0", 0),
    // time_t, off_t
    def("repl-backlog-ttl", None, int(0, LONG_MAX), "3600", 0),
    def("auto-aof-rewrite-min-size", None, mem(0, LONG_MAX, false), "67108864", 0),
    def("loading-process-events-interval-bytes", None, int(1024, INT_MAX), "2097152", HIDDEN),
    // Special
    def("dir", None, Kind::Dir, ".", PROTECTED),
    def("save", None, Kind::Save, "3600 1 300 100 60 10000", 0),
    def("client-output-buffer-limit", None, Kind::ClientOutputBufferLimit, "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", 0),
    def("oom-score-adj-values", None, Kind::OomScoreAdjValues, "0 200 800", 0),
    def("notify-keyspace-events", None, Kind::NotifyKeyspaceEvents, "", 0),
    def("bind", None, Kind::Bind, "* -::*", 0),
    def("replicaof", Some("slaveof"), Kind::ReplicaOf, "", IMMUTABLE),
    def("latency-tracking-info-percentiles", None, Kind::LatencyPercentiles, "50 99 99.9", 0),
];

/// Directives Redis still accepts in a config file and ignores.
const DEPRECATED: &[&str] = &["list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands"];

/// Finds an option by name or alias, case-insensitively. The second value is the name it is
/// registered under (the alias when the alias was used): Redis names it so in CONFIG GET replies
/// and CONFIG SET errors.
pub fn lookup(name: &str) -> Option<(&'static OptionDef, &'static str)> {
    OPTIONS.iter().find_map(|o| {
        if o.name.eq_ignore_ascii_case(name) {
            Some((o, o.name))
        } else {
            o.alias.filter(|a| a.eq_ignore_ascii_case(name)).map(|a| (o, a))
        }
    })
}

pub fn find(name: &str) -> Option<&'static OptionDef> {
    lookup(name).map(|(d, _)| d)
}

/// Every registered name (primary names and aliases), with its option.
pub fn names() -> impl Iterator<Item = (&'static str, &'static OptionDef)> {
    OPTIONS.iter().flat_map(|o| std::iter::once((o.name, o)).chain(o.alias.map(|a| (a, o))))
}

/// Redis's `memtoull`: digits then an optional unit (`b`, `k` = 1000, `kb` = 1024, `m`, `mb`, `g`,
/// `gb`, any case). Like Redis, an empty number is 0, too many digits saturate, and the product
/// wraps.
pub fn memtoull(s: &str) -> Option<u64> {
    if s.starts_with('-') {
        return None;
    }
    let digits_end = s.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.len() >= 128 {
        return None;
    }
    let mut v: u64 = 0;
    for c in digits.bytes() {
        v = v.saturating_mul(10).saturating_add((c - b'0') as u64);
    }
    Some(v.wrapping_mul(mul))
}

/// A byte count with units (`1gb`, `100mb`), for callers outside the registry.
pub fn parse_memory(s: &str) -> Option<u64> {
    memtoull(s)
}

/// C's `strtoll(s, &end, base)` with the check `*end == '\0'`: leading spaces and a sign are
/// allowed, overflow saturates; the empty string is 0.
fn strtoll_full(s: &str, base: u32) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() {
        // No conversion: the end pointer is the start of the string.
        return if s.is_empty() { Some(0) } else { None };
    }
    let mut v: i128 = 0;
    for c in digits.chars() {
        let d = c.to_digit(base)? as i128;
        v = (v * base as i128 + d).min(i64::MAX as i128 + 1);
    }
    let v = if neg { -v } else { v };
    Some(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

fn parse_num(n: &Num, s: &str) -> Result<String, String> {
    let mut parsed: Option<i64> = None;
    if n.memory {
        parsed = memtoull(s).map(|v| v as i64);
    }
    if parsed.is_none() && n.percent && s.len() > 1 && s.ends_with('%') {
        parsed = crate::resp::request::parse_i64(&s.as_bytes()[..s.len() - 1]).filter(|v| *v >= 0).map(|v| -v);
    }
    if parsed.is_none() && n.octal {
        parsed = strtoll_full(s, 8).filter(|_| !s.is_empty());
    }
    if parsed.is_none() && !n.memory && !n.percent && !n.octal {
        parsed = crate::resp::request::parse_i64(s.as_bytes());
    }
    let Some(v) = parsed else {
        return Err(if n.memory && n.percent {
            "argument must be a memory or percent value"
        } else if n.memory {
            "argument must be a memory value"
        } else if n.octal {
            "argument couldn't be parsed as an octal number"
        } else {
            "argument couldn't be parsed into an integer"
        }
        .into());
    };
    if n.unsigned {
        let u = v as u64 as i128;
        if u > n.max || u < n.min {
            return Err(if n.octal {
                format!("argument must be between {:o} and {:o} inclusive", n.min, n.max)
            } else {
                format!("argument must be between {} and {} inclusive", n.min, n.max)
            });
        }
    } else if n.percent && v < 0 {
        if (v as i128) < n.min {
            return Err(format!("percentage argument must be less or equal to {}", -n.min));
        }
    } else if (v as i128) > n.max || (v as i128) < n.min {
        return Err(format!("argument must be between {} and {} inclusive", n.min, n.max));
    }
    Ok(if n.percent && v < 0 {
        format!("{}%", -(v as i128))
    } else if n.memory {
        (v as u64).to_string()
    } else if n.octal {
        format!("{:o}", v)
    } else {
        v.to_string()
    })
}

const NOTIFY_GENERIC: u32 = 1 << 2;
const NOTIFY_STRING: u32 = 1 << 3;
const NOTIFY_LIST: u32 = 1 << 4;
const NOTIFY_SET: u32 = 1 << 5;
const NOTIFY_HASH: u32 = 1 << 6;
const NOTIFY_ZSET: u32 = 1 << 7;
const NOTIFY_EXPIRED: u32 = 1 << 8;
const NOTIFY_EVICTED: u32 = 1 << 9;
const NOTIFY_STREAM: u32 = 1 << 10;
const NOTIFY_KEY_MISS: u32 = 1 << 11;
const NOTIFY_LOADED: u32 = 1 << 12;
const NOTIFY_MODULE: u32 = 1 << 13;
const NOTIFY_NEW: u32 = 1 << 14;
const NOTIFY_KEYSPACE: u32 = 1 << 0;
const NOTIFY_KEYEVENT: u32 = 1 << 1;
const NOTIFY_ALL: u32 = NOTIFY_GENERIC
    | NOTIFY_STRING
    | NOTIFY_LIST
    | NOTIFY_SET
    | NOTIFY_HASH
    | NOTIFY_ZSET
    | NOTIFY_EXPIRED
    | NOTIFY_EVICTED
    | NOTIFY_STREAM
    | NOTIFY_MODULE;

/// Redis's `keyspaceEventsStringToFlags`.
pub fn keyspace_events_flags(s: &str) -> Option<u32> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => NOTIFY_ALL,
            'g' => NOTIFY_GENERIC,
            '$' => NOTIFY_STRING,
            'l' => NOTIFY_LIST,
            's' => NOTIFY_SET,
            'h' => NOTIFY_HASH,
            'z' => NOTIFY_ZSET,
            'x' => NOTIFY_EXPIRED,
            'e' => NOTIFY_EVICTED,
            'K' => NOTIFY_KEYSPACE,
            'E' => NOTIFY_KEYEVENT,
            't' => NOTIFY_STREAM,
            'm' => NOTIFY_KEY_MISS,
            'd' => NOTIFY_MODULE,
            'n' => NOTIFY_NEW,
            _ => return None,
        };
    }
    let _ = NOTIFY_LOADED;
    Some(f)
}

/// Redis's `keyspaceEventsFlagsToString`.
fn keyspace_events_string(f: u32) -> String {
    let mut s = String::new();
    if f & NOTIFY_ALL == NOTIFY_ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (NOTIFY_GENERIC, 'g'),
            (NOTIFY_STRING, '$'),
            (NOTIFY_LIST, 'l'),
            (NOTIFY_SET, 's'),
            (NOTIFY_HASH, 'h'),
            (NOTIFY_ZSET, 'z'),
            (NOTIFY_EXPIRED, 'x'),
            (NOTIFY_EVICTED, 'e'),
            (NOTIFY_STREAM, 't'),
            (NOTIFY_MODULE, 'd'),
            (NOTIFY_NEW, 'n'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(NOTIFY_KEYSPACE, 'K'), (NOTIFY_KEYEVENT, 'E'), (NOTIFY_KEY_MISS, 'm')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Redis's `sdstemplate` expansion with the variables of `proc-title-template`.
fn valid_proc_title(t: &str) -> bool {
    let mut out = String::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if after.is_empty() {
            return false;
        }
        if let Some(r) = after.strip_prefix('{') {
            out.push('{');
            rest = r;
            continue;
        }
        let Some(close) = after.find('}') else { return false };
        match &after[..close] {
            "title" | "server-mode" | "unixsocket" | "config-file" => {}
            "listen-addr" => out.push_str("*:6379"),
            "port" | "tls-port" => out.push('0'),
            _ => return false,
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    !out.trim_matches(' ').is_empty()
}

/// C's `%f` then Redis's `trimDoubleString`.
fn fmt_percentile(p: f64) -> String {
    let s = format!("{p:.6}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn one(args: &[String]) -> Result<&str, String> {
    match args {
        [a] => Ok(a.as_str()),
        _ => Err("wrong number of arguments".into()),
    }
}

/// `strerror` for the errors a directory change can meet.
fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(2) => "No such file or directory".into(),
        Some(13) => "Permission denied".into(),
        Some(20) => "Not a directory".into(),
        Some(36) => "File name too long".into(),
        Some(40) => "Too many levels of symbolic links".into(),
        _ => e.to_string(),
    }
}

/// Validates `args` for option `def` and returns the text CONFIG GET will print. `prev` is the
/// current text (options set partially, like client-output-buffer-limit, keep the rest).
fn normalize(def: &OptionDef, args: &[String], prev: &str) -> Result<String, String> {
    Ok(match def.kind {
        Kind::Bool => match one(args)?.to_ascii_lowercase().as_str() {
            "yes" => "yes".into(),
            "no" => "no".into(),
            _ => return Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Num(n) => {
            let v = parse_num(&n, one(args)?)?;
            if def.name == "hz" {
                // Redis accepts any hz but keeps it within 1..=500 (updateHZ), visibly.
                v.parse::<i64>().map(|h| h.clamp(1, 500).to_string()).unwrap_or(v)
            } else {
                v
            }
        }
        Kind::Enum(vals) => {
            let s = one(args)?;
            let Some(&(_, id)) = vals.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) else {
                let names: Vec<&str> = vals.iter().map(|(n, _)| *n).collect();
                return Err(format!("argument(s) must be one of the following: {}", names.join(", ")));
            };
            vals.iter().find(|(_, v)| *v == id).map(|(n, _)| n.to_string()).unwrap_or_default()
        }
        Kind::Flags(vals) => {
            let mut f = 0;
            let bad = || {
                let names: Vec<&str> = vals.iter().map(|(n, _)| *n).collect();
                format!("argument(s) must be one of the following: {}", names.join(", "))
            };
            if args.is_empty() {
                return Err(bad());
            }
            for a in args {
                let Some(&(_, v)) = vals.iter().find(|(n, _)| n.eq_ignore_ascii_case(a)) else {
                    return Err(bad());
                };
                f |= v;
            }
            if f & 1 != 0 && f & 2 != 0 {
                return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
            }
            if let Some((n, _)) = vals.iter().find(|(_, v)| *v == f) {
                n.to_string()
            } else {
                let names: Vec<&str> = vals.iter().filter(|(_, v)| *v != 0 && f & v == *v).map(|(n, _)| *n).collect();
                names.join(" ")
            }
        }
        Kind::Str(check) => {
            let s = one(args)?;
            let base_name = !s.contains('/') && !s.contains('\\');
            match check {
                StrCheck::None => {}
                StrCheck::FileName if !base_name => return Err("dbfilename can't be a path, just a filename".into()),
                StrCheck::AofFileName if s.is_empty() => return Err("appendfilename can't be empty".into()),
                StrCheck::AofFileName if !base_name => {
                    return Err("appendfilename can't be a path, just a filename".into())
                }
                StrCheck::AofDirName if s.is_empty() => return Err("appenddirname can't be empty".into()),
                StrCheck::AofDirName if !base_name => {
                    return Err("appenddirname can't be a path, just a dirname".into())
                }
                StrCheck::Hostname if s.len() >= 256 => return Err("Hostnames must be less than 256 characters".into()),
                StrCheck::Hostname if !s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') => {
                    return Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into())
                }
                StrCheck::ProcTitle if !valid_proc_title(s) => {
                    return Err("template format is invalid or contains unknown variables".into())
                }
                _ => {}
            }
            s.to_string()
        }
        Kind::Dir => {
            let s = one(args)?;
            let p = std::fs::canonicalize(s).map_err(|e| strerror(&e))?;
            if !p.is_dir() {
                return Err("Not a directory".into());
            }
            p.to_string_lossy().into_owned()
        }
        Kind::Save => {
            let words: Vec<&str> = if args.len() == 1 && args[0].is_empty() {
                Vec::new()
            } else {
                args.iter().map(|s| s.as_str()).collect()
            };
            if !words.len().is_multiple_of(2) {
                return Err("Invalid save parameters".into());
            }
            let mut out = Vec::new();
            for (j, w) in words.iter().enumerate() {
                let v = strtoll_full(w, 10).ok_or("Invalid save parameters")?;
                if (j % 2 == 0 && v < 1) || (j % 2 == 1 && v < 0) {
                    return Err("Invalid save parameters".into());
                }
                out.push(if j % 2 == 1 { (v as i32).to_string() } else { v.to_string() });
            }
            out.join(" ")
        }
        Kind::ClientOutputBufferLimit => {
            if !args.len().is_multiple_of(4) {
                return Err("Wrong number of arguments in buffer limit configuration.".into());
            }
            let mut classes: Vec<(String, String)> = ["normal", "slave", "pubsub"]
                .iter()
                .map(|c| {
                    let v = prev.split(' ').skip_while(|w| w != c).skip(1).take(3).collect::<Vec<_>>().join(" ");
                    (c.to_string(), v)
                })
                .collect();
            for chunk in args.chunks(4) {
                let class = match chunk[0].to_ascii_lowercase().as_str() {
                    "normal" => 0,
                    "slave" | "replica" => 1,
                    "pubsub" => 2,
                    _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
                };
                let bad = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
                let hard = memtoull(&chunk[1]).ok_or(bad)?;
                let soft = memtoull(&chunk[2]).ok_or(bad)?;
                let secs = strtoll_full(&chunk[3], 10).filter(|s| *s >= 0).ok_or(bad)?;
                classes[class].1 = format!("{hard} {soft} {}", secs as i32 as i64);
            }
            classes.iter().map(|(c, v)| format!("{c} {v}")).collect::<Vec<_>>().join(" ")
        }
        Kind::OomScoreAdjValues => {
            if args.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            let mut out = Vec::new();
            for a in args {
                match strtoll_full(a, 10) {
                    Some(v) if (-2000..=2000).contains(&v) => out.push(v.to_string()),
                    _ => return Err("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into()),
                }
            }
            out.join(" ")
        }
        Kind::NotifyKeyspaceEvents => {
            let f = keyspace_events_flags(one(args)?).ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?;
            keyspace_events_string(f)
        }
        Kind::Bind => {
            if args.len() > 16 {
                return Err("Too many bind addresses specified.".into());
            }
            if args.len() == 1 && args[0].is_empty() {
                String::new()
            } else {
                args.join(" ")
            }
        }
        Kind::ReplicaOf => {
            if args.len() != 2 {
                return Err("wrong number of arguments".into());
            }
            if args[0].eq_ignore_ascii_case("no") && args[1].eq_ignore_ascii_case("one") {
                String::new()
            } else {
                // This node has no replication: refusing beats pretending to be a replica.
                return Err("replication is not supported by this server".into());
            }
        }
        Kind::LatencyPercentiles => {
            if args.len() == 1 && args[0].is_empty() {
                String::new()
            } else {
                let mut out = Vec::new();
                for a in args {
                    let p = crate::node::cmd::util::parse_f64(a.as_bytes())
                        .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
                    if !(0.0..=100.0).contains(&p) {
                        return Err(
                            "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into()
                        );
                    }
                    out.push(fmt_percentile(p));
                }
                out.join(" ")
            }
        }
    })
}

/// The node's configuration: normalized text per option plus typed copies for the hot path.
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    save_seen: bool,
    /// Absolute path of the config file the node started with, if any.
    pub config_file: Option<String>,
    pub port: u16,
    pub databases: usize,
    pub requirepass: Option<Vec<u8>>,
    pub maxclients: usize,
    pub proto_max_bulk_len: u64,
    pub hz: u64,
    pub slowlog_slower_than: i64,
    pub slowlog_max_len: usize,
    pub latency_threshold_ms: u64,
    pub timeout_secs: u64,
    pub maxmemory: u64,
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub list_max_listpack_size: i64,
    pub list_compress_depth: usize,
    pub pubsub_hard_limit: usize,
    /// `notify-keyspace-events` as Redis's flag bits (`keyspace_events_flags`).
    pub notify_keyspace_events: u32,
    /// Per-command latency histograms are kept (INFO latencystats).
    pub latency_tracking: bool,
}

impl Default for Config {
    fn default() -> Self {
        let mut values: BTreeMap<&'static str, String> =
            OPTIONS.iter().map(|o| (o.name, o.default.to_string())).collect();
        let cwd = std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| ".".into());
        values.insert("dir", cwd);
        let mut c = Config {
            values,
            save_seen: false,
            config_file: None,
            port: 6379,
            databases: 16,
            requirepass: None,
            maxclients: 10000,
            proto_max_bulk_len: 512 << 20,
            hz: 10,
            slowlog_slower_than: 10000,
            slowlog_max_len: 128,
            latency_threshold_ms: 0,
            timeout_secs: 0,
            maxmemory: 0,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            set_max_intset_entries: 512,
            list_max_listpack_size: -2,
            list_compress_depth: 0,
            pubsub_hard_limit: 32 << 20,
            notify_keyspace_events: 0,
            latency_tracking: true,
        };
        c.refresh();
        c
    }
}

impl Config {
    /// Applies one directive (`name arg...`), as at startup: immutable options are allowed.
    /// The error is Redis's text for a bad directive.
    pub fn apply(&mut self, name: &str, args: &[String]) -> Result<(), String> {
        let Some(def) = find(name) else {
            if DEPRECATED.iter().any(|d| d.eq_ignore_ascii_case(name)) && args.len() == 1 {
                return Ok(());
            }
            return Err("Bad directive or wrong number of arguments".into());
        };
        if !def.multi_arg() && args.len() != 1 {
            return Err("wrong number of arguments".into());
        }
        let mut v = normalize(def, args, &self.values[def.name])?;
        // Like redis.conf, repeated `save` lines add up; the first one replaces the default.
        if def.kind == Kind::Save && self.save_seen && !v.is_empty() {
            let prev = &self.values[def.name];
            if !prev.is_empty() {
                v = format!("{prev} {v}");
            }
        }
        self.save_seen |= def.kind == Kind::Save;
        self.values.insert(def.name, v);
        self.refresh();
        Ok(())
    }

    /// Sets one option at run time from a CONFIG SET value, without the mutability checks (the
    /// command does those, for all its pairs first). Multi-word options split the value on single
    /// spaces, as Redis does. The error is the part after "CONFIG SET failed (...) - ".
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let def = find(name).ok_or_else(|| format!("Unknown option '{name}'"))?;
        // Like Redis's sdssplitlen: an empty value is no words at all.
        let args: Vec<String> = if !def.multi_arg() {
            vec![value.to_string()]
        } else if value.is_empty() {
            Vec::new()
        } else {
            value.split(' ').map(str::to_string).collect()
        };
        let v = normalize(def, &args, &self.values[def.name])?;
        self.values.insert(def.name, v);
        self.refresh();
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        find(name).and_then(|d| self.values.get(d.name)).map(|s| s.as_str())
    }

    /// Options whose registered name (aliases included) matches, for CONFIG GET patterns.
    /// Hidden options only answer to their exact name.
    pub fn matching<'a>(
        &'a self,
        matches: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = (&'static str, &'a str)> + 'a {
        names()
            .filter(|(_, o)| o.flags & HIDDEN == 0)
            .filter(move |(n, _)| matches(n))
            .map(move |(n, o)| (n, self.values[o.name].as_str()))
    }

    fn num(&self, name: &str) -> i64 {
        self.values[name].parse().unwrap_or(0)
    }

    fn unum(&self, name: &str) -> u64 {
        self.values[name].parse().unwrap_or(0)
    }

    fn refresh(&mut self) {
        self.port = self.num("port") as u16;
        self.databases = self.num("databases") as usize;
        let pass = &self.values["requirepass"];
        self.requirepass = if pass.is_empty() { None } else { Some(pass.as_bytes().to_vec()) };
        self.maxclients = self.num("maxclients") as usize;
        self.proto_max_bulk_len = self.num("proto-max-bulk-len") as u64;
        self.hz = self.num("hz").clamp(1, 500) as u64;
        self.slowlog_slower_than = self.num("slowlog-log-slower-than");
        self.slowlog_max_len = self.num("slowlog-max-len") as usize;
        self.latency_threshold_ms = self.num("latency-monitor-threshold") as u64;
        self.timeout_secs = self.num("timeout") as u64;
        self.maxmemory = self.unum("maxmemory");
        self.hash_max_listpack_entries = self.unum("hash-max-listpack-entries") as usize;
        self.hash_max_listpack_value = self.unum("hash-max-listpack-value") as usize;
        self.zset_max_listpack_entries = self.unum("zset-max-listpack-entries") as usize;
        self.zset_max_listpack_value = self.unum("zset-max-listpack-value") as usize;
        self.set_max_intset_entries = self.unum("set-max-intset-entries") as usize;
        self.list_max_listpack_size = self.num("list-max-listpack-size");
        self.list_compress_depth = self.num("list-compress-depth") as usize;
        self.latency_tracking = self.values["latency-tracking"] == "yes";
        self.notify_keyspace_events = keyspace_events_flags(&self.values["notify-keyspace-events"]).unwrap_or(0);
        let limits: Vec<&str> = self.values["client-output-buffer-limit"].split_whitespace().collect();
        if let Some(i) = limits.iter().position(|w| *w == "pubsub") {
            self.pubsub_hard_limit = limits.get(i + 1).and_then(|v| parse_memory(v)).unwrap_or(32 << 20) as usize;
        }
    }

    pub fn bind_addrs(&self) -> Vec<String> {
        self.values["bind"].split_whitespace().map(|s| s.trim_start_matches('-').to_string()).collect()
    }

    /// Parses redis.conf text into directives (`name`, args), with redis-server's quoting rules.
    pub fn parse_text(text: &str) -> Result<Vec<(String, Vec<String>)>, String> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = crate::resp::request::split_args(line.as_bytes())
                .ok_or_else(|| format!("line {}: unbalanced quotes in '{line}'", n + 1))?;
            let mut words = words.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned());
            let name = words.next().unwrap_or_default().to_ascii_lowercase();
            out.push((name, words.collect()));
        }
        Ok(out)
    }

    /// redis-server style arguments: `[file] --port 7000 --save "" --save 900 1`.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut c = Config::default();
        let mut rest = args;
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                let text =
                    std::fs::read_to_string(first).map_err(|e| format!("can't open config file '{first}': {e}"))?;
                for (name, vals) in Self::parse_text(&text)? {
                    if name == "include" {
                        continue;
                    }
                    c.apply(&name, &vals).map_err(|e| format!("config file '{first}', directive '{name}': {e}"))?;
                }
                c.config_file = Some(
                    std::fs::canonicalize(first).map(|p| p.to_string_lossy().into_owned()).unwrap_or(first.clone()),
                );
                rest = &args[1..];
            }
        }
        let mut i = 0;
        while i < rest.len() {
            let Some(name) = rest[i].strip_prefix("--") else {
                return Err(format!("unexpected argument '{}': options are written --name value", rest[i]));
            };
            let mut vals = Vec::new();
            i += 1;
            while i < rest.len() && !rest[i].starts_with("--") {
                vals.push(rest[i].clone());
                i += 1;
            }
            if vals.is_empty() && find(name).is_some_and(|d| d.kind == Kind::Bool) {
                vals.push("yes".into());
            }
            // `--save "900 1"` is one word holding a list, as redis-server reads it.
            if vals.len() == 1 && find(name).is_some_and(|d| d.multi_arg()) && vals[0].contains(' ') {
                vals = vals[0].split_whitespace().map(str::to_string).collect();
            }
            if find(name).is_none() && !DEPRECATED.iter().any(|d| d.eq_ignore_ascii_case(name)) {
                return Err(format!("unknown option '--{name}'"));
            }
            c.apply(name, &vals).map_err(|e| format!("option '--{name}': {e}"))?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_like_redis_server() {
        let c = Config::from_args(&s(&["--port", "7001", "--save", "", "--appendonly", "yes", "--maxmemory", "1gb"]))
            .unwrap();
        assert_eq!(c.port, 7001);
        assert_eq!(c.get("save"), Some(""));
        assert_eq!(c.get("appendonly"), Some("yes"));
        assert_eq!(c.get("maxmemory"), Some("1073741824"));
        assert_eq!(c.maxmemory, 1 << 30);
        assert!(Config::from_args(&s(&["--nosuch", "1"])).unwrap_err().contains("nosuch"));
        let c = Config::from_args(&s(&["--save", "900", "1", "--save", "300 10"])).unwrap();
        assert_eq!(c.get("save"), Some("900 1 300 10"));
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(memtoull(""), Some(0));
        assert_eq!(memtoull("-1"), None);
        assert_eq!(memtoull("99999999999999999999999"), Some(u64::MAX));
        assert_eq!(memtoull("1.5mb"), None);
    }

    #[test]
    fn runtime_set_rules() {
        let mut c = Config::default();
        assert_eq!(c.get("hash-max-ziplist-entries"), Some("512"));
        assert_eq!(c.set("maxmemory", "-1").unwrap_err(), "argument must be a memory value");
        assert_eq!(c.set("maxclients", "-1").unwrap_err(), "argument must be between 1 and 4294967295 inclusive");
        assert_eq!(c.set("timeout", "01").unwrap_err(), "argument couldn't be parsed into an integer");
        c.set("maxmemory-clients", "10%").unwrap();
        assert_eq!(c.get("maxmemory-clients"), Some("10%"));
        assert_eq!(c.set("maxmemory-clients", "101%").unwrap_err(), "percentage argument must be less or equal to 100");
        c.set("hz", "1000").unwrap();
        assert_eq!(c.get("hz"), Some("500"));
        c.set("notify-keyspace-events", "KEA").unwrap();
        assert_eq!(c.get("notify-keyspace-events"), Some("AKE"));
        c.set("notify-keyspace-events", "nKx").unwrap();
        assert_eq!(c.get("notify-keyspace-events"), Some("xnK"));
        assert!(c.set("save", "100  5").is_err());
        c.set("save", "100 5").unwrap();
        assert_eq!(c.get("save"), Some("100 5"));
        c.set("client-output-buffer-limit", "normal 1mb 2mb 3").unwrap();
        assert_eq!(
            c.get("client-output-buffer-limit"),
            Some("normal 1048576 2097152 3 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
        );
        c.set("shutdown-on-sigint", "now save").unwrap();
        assert_eq!(c.get("shutdown-on-sigint"), Some("save now"));
        c.set("oom-score-adj", "relative").unwrap();
        assert_eq!(c.get("oom-score-adj"), Some("yes"));
        c.set("latency-tracking-info-percentiles", "50 99.5 100").unwrap();
        assert_eq!(c.get("latency-tracking-info-percentiles"), Some("50 99.5 100"));
        assert!(c.set("proc-title-template", "{bad}").is_err());
        c.set("proc-title-template", "{title} {port}").unwrap();
    }
}
