//! Node options: one registry drives redis.conf parsing, `--flag value` command lines, CONFIG GET
//! and CONFIG SET, so an option exists everywhere or nowhere. Values are kept in the normalized
//! text CONFIG GET prints; typed copies of the ones the hot path reads live in [`Config`]'s fields.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// A byte count: accepts `1gb`, `100mb`, `1k`; printed as plain bytes.
    Memory,
    Enum(&'static [&'static str]),
    Str,
    /// `save "3600 1 300 100"`: pairs of seconds/changes, or empty.
    Save,
    /// A list of words kept as given (client-output-buffer-limit, ...).
    Words,
}

#[derive(Debug)]
pub struct OptionDef {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    pub mutable: bool,
}

const fn opt(name: &'static str, kind: Kind, default: &'static str) -> OptionDef {
    OptionDef { name, alias: None, kind, default, mutable: true }
}
const fn fixed(name: &'static str, kind: Kind, default: &'static str) -> OptionDef {
    OptionDef { name, alias: None, kind, default, mutable: false }
}
const fn aliased(name: &'static str, alias: &'static str, kind: Kind, default: &'static str) -> OptionDef {
    OptionDef { name, alias: Some(alias), kind, default, mutable: true }
}

const I32: Kind = Kind::Int { min: i32::MIN as i64, max: i32::MAX as i64 };
const U31: Kind = Kind::Int { min: 0, max: i32::MAX as i64 };
const I64: Kind = Kind::Int { min: i64::MIN, max: i64::MAX };
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Every option the node accepts. Defaults are Redis 7.0's.
pub static OPTIONS: &[OptionDef] = &[
    fixed("port", Kind::Int { min: 0, max: 65535 }, "6379"),
    fixed("bind", Kind::Words, "* -::*"),
    fixed("unixsocket", Kind::Str, ""),
    opt("protected-mode", Kind::Bool, "yes"),
    fixed("databases", Kind::Int { min: 1, max: i32::MAX as i64 }, "16"),
    opt("dir", Kind::Str, "."),
    opt("dbfilename", Kind::Str, "dump.rdb"),
    opt("save", Kind::Save, "3600 1 300 100 60 10000"),
    opt("appendonly", Kind::Bool, "no"),
    fixed("appendfilename", Kind::Str, "appendonly.aof"),
    fixed("appenddirname", Kind::Str, "appendonlydir"),
    opt("appendfsync", Kind::Enum(&["always", "everysec", "no"]), "everysec"),
    opt("requirepass", Kind::Str, ""),
    opt("masterauth", Kind::Str, ""),
    opt("maxclients", Kind::Int { min: 1, max: i32::MAX as i64 }, "10000"),
    opt("loglevel", Kind::Enum(LOGLEVELS), "notice"),
    opt("logfile", Kind::Str, ""),
    fixed("daemonize", Kind::Bool, "no"),
    fixed("pidfile", Kind::Str, ""),
    opt("timeout", U31, "0"),
    opt("tcp-keepalive", U31, "300"),
    fixed("tcp-backlog", U31, "511"),
    opt("hz", Kind::Int { min: 0, max: i32::MAX as i64 }, "10"),
    opt("slowlog-log-slower-than", I64, "10000"),
    opt("slowlog-max-len", Kind::Int { min: 0, max: i64::MAX }, "128"),
    opt("latency-monitor-threshold", Kind::Int { min: 0, max: i64::MAX }, "0"),
    opt("proto-max-bulk-len", Kind::Memory, "536870912"),
    opt("client-query-buffer-limit", Kind::Memory, "1073741824"),
    opt("maxmemory", Kind::Memory, "0"),
    opt("maxmemory-policy", Kind::Enum(POLICIES), "noeviction"),
    opt("maxmemory-samples", Kind::Int { min: 1, max: 64 }, "5"),
    opt("lfu-log-factor", U31, "10"),
    opt("lfu-decay-time", U31, "1"),
    aliased("hash-max-listpack-entries", "hash-max-ziplist-entries", Kind::Memory, "128"),
    aliased("hash-max-listpack-value", "hash-max-ziplist-value", Kind::Memory, "64"),
    aliased("zset-max-listpack-entries", "zset-max-ziplist-entries", Kind::Memory, "128"),
    aliased("zset-max-listpack-value", "zset-max-ziplist-value", Kind::Memory, "64"),
    opt("set-max-intset-entries", Kind::Memory, "512"),
    aliased("list-max-listpack-size", "list-max-ziplist-size", I32, "-2"),
    opt("list-compress-depth", U31, "0"),
    opt("notify-keyspace-events", Kind::Str, ""),
    opt(
        "client-output-buffer-limit",
        Kind::Words,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    opt("lazyfree-lazy-user-del", Kind::Bool, "no"),
    opt("lazyfree-lazy-user-flush", Kind::Bool, "no"),
    opt("lazyfree-lazy-eviction", Kind::Bool, "no"),
    opt("lazyfree-lazy-expire", Kind::Bool, "no"),
    opt("lazyfree-lazy-server-del", Kind::Bool, "no"),
    opt("active-expire-effort", Kind::Int { min: 1, max: 10 }, "1"),
    opt("rdbcompression", Kind::Bool, "yes"),
    opt("rdbchecksum", Kind::Bool, "yes"),
    opt("stop-writes-on-bgsave-error", Kind::Bool, "yes"),
    opt("auto-aof-rewrite-percentage", U31, "100"),
    opt("auto-aof-rewrite-min-size", Kind::Memory, "67108864"),
    opt("aof-use-rdb-preamble", Kind::Bool, "yes"),
    opt("repl-backlog-size", Kind::Memory, "1048576"),
    opt("repl-diskless-sync", Kind::Bool, "yes"),
    opt("repl-timeout", Kind::Int { min: 1, max: i32::MAX as i64 }, "60"),
    opt("repl-ping-replica-period", Kind::Int { min: 1, max: i32::MAX as i64 }, "10"),
    opt("replica-read-only", Kind::Bool, "yes"),
    opt("replica-serve-stale-data", Kind::Bool, "yes"),
    opt("replica-priority", U31, "100"),
    opt("min-replicas-to-write", U31, "0"),
    opt("min-replicas-max-lag", U31, "10"),
    fixed("supervised", Kind::Enum(&["upstart", "systemd", "auto", "no"]), "no"),
    opt("always-show-logo", Kind::Bool, "no"),
    fixed("io-threads", Kind::Int { min: 1, max: 128 }, "1"),
    opt("lua-time-limit", I64, "5000"),
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("Bad directive or wrong number of arguments: '{0}'")]
    Unknown(String),
    #[error("argument(s) must be one of the following: {0}")]
    NotOneOf(String),
    #[error("argument must be 'yes' or 'no'")]
    NotBool,
    #[error("argument couldn't be parsed into an integer")]
    NotInt,
    #[error("argument must be a memory value")]
    NotMemory,
    #[error("argument must be between {0} and {1} inclusive")]
    Range(i64, i64),
    #[error("Invalid save parameters")]
    Save,
    #[error("can't set immutable config")]
    Immutable,
    #[error("wrong number of arguments")]
    Arity,
}

/// The node's configuration: normalized text per option plus typed copies for the hot path.
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    save_seen: bool,
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
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub pubsub_hard_limit: usize,
}

pub fn find(name: &str) -> Option<&'static OptionDef> {
    OPTIONS.iter().find(|o| o.name.eq_ignore_ascii_case(name) || o.alias.is_some_and(|a| a.eq_ignore_ascii_case(name)))
}

/// Redis's `memtoull`: `1k` = 1000, `1kb` = 1024, ... case-insensitive.
pub fn parse_memory(s: &str) -> Option<u64> {
    let l = s.to_ascii_lowercase();
    let (num, mul) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suf, m)| l.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((&l, 1));
    if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn normalize(def: &OptionDef, args: &[String]) -> Result<String, ConfigError> {
    let one = || if args.len() == 1 { Ok(args[0].as_str()) } else { Err(ConfigError::Arity) };
    Ok(match def.kind {
        Kind::Bool => match one()?.to_ascii_lowercase().as_str() {
            "yes" => "yes".into(),
            "no" => "no".into(),
            _ => return Err(ConfigError::NotBool),
        },
        Kind::Int { min, max } => {
            let v: i64 = one()?.parse().map_err(|_| ConfigError::NotInt)?;
            if v < min || v > max {
                return Err(ConfigError::Range(min, max));
            }
            v.to_string()
        }
        Kind::Memory => {
            let s = one()?;
            let v = if let Some(neg) = s.strip_prefix('-') {
                // Signed memory options (list-max-listpack-size style) are Int; here only plain.
                -(parse_memory(neg).ok_or(ConfigError::NotMemory)? as i64)
            } else {
                parse_memory(s).ok_or(ConfigError::NotMemory)? as i64
            };
            if v < 0 {
                return Err(ConfigError::NotMemory);
            }
            v.to_string()
        }
        Kind::Enum(vals) => {
            let s = one()?.to_ascii_lowercase();
            if !vals.contains(&s.as_str()) {
                return Err(ConfigError::NotOneOf(vals.join(", ")));
            }
            s
        }
        Kind::Str => one()?.to_string(),
        Kind::Save => {
            let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
            if words.len() % 2 != 0 || words.iter().any(|w| w.parse::<u64>().is_err()) {
                return Err(ConfigError::Save);
            }
            words.join(" ")
        }
        Kind::Words => args.iter().flat_map(|a| a.split_whitespace()).collect::<Vec<_>>().join(" "),
    })
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config {
            values: OPTIONS.iter().map(|o| (o.name, o.default.to_string())).collect(),
            save_seen: false,
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
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            set_max_intset_entries: 512,
            pubsub_hard_limit: 32 << 20,
        };
        c.refresh();
        c
    }
}

impl Config {
    /// Applies one directive (`name arg...`), as at startup: immutable options are allowed.
    pub fn apply(&mut self, name: &str, args: &[String]) -> Result<(), ConfigError> {
        let def =
            find(name).ok_or_else(|| ConfigError::Unknown(format!("{name} {}", args.join(" ")).trim().to_string()))?;
        let mut v = normalize(def, args)?;
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

    /// CONFIG SET of one option at run time.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let def = find(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        if !def.mutable {
            return Err(ConfigError::Immutable);
        }
        let args = vec![value.to_string()];
        let v = normalize(def, &args)?;
        self.values.insert(def.name, v);
        self.refresh();
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        find(name).and_then(|d| self.values.get(d.name)).map(|s| s.as_str())
    }

    /// Options whose name matches a glob, for CONFIG GET.
    pub fn matching<'a>(
        &'a self,
        matches: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = (&'static str, &'a str)> + 'a {
        OPTIONS.iter().filter(move |o| matches(o.name)).map(move |o| (o.name, self.values[o.name].as_str()))
    }

    fn num(&self, name: &str) -> i64 {
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
        self.hash_max_listpack_entries = self.num("hash-max-listpack-entries") as usize;
        self.hash_max_listpack_value = self.num("hash-max-listpack-value") as usize;
        self.zset_max_listpack_entries = self.num("zset-max-listpack-entries") as usize;
        self.zset_max_listpack_value = self.num("zset-max-listpack-value") as usize;
        self.set_max_intset_entries = self.num("set-max-intset-entries") as usize;
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
            c.apply(name, &vals).map_err(|e| match e {
                ConfigError::Unknown(_) => format!("unknown option '--{name}'"),
                e => format!("option '--{name}': {e}"),
            })?;
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
        assert!(Config::from_args(&s(&["--nosuch", "1"])).unwrap_err().contains("nosuch"));
        let c = Config::from_args(&s(&["--save", "900", "1", "--save", "300 10"])).unwrap();
        assert_eq!(c.get("save"), Some("900 1 300 10"));
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("x"), None);
    }
}
