//! The one command table, shared by the node (dispatch, arity errors, COMMAND) and the proxy
//! (routing). Metadata comes from Redis 7's own COMMAND INFO (see `scripts/gen-command-table`),
//! so key positions and flags agree with Redis by construction.

pub mod table;

use crate::resp::request::parse_i64;
use crate::resp::Reply;

/// Command flag bits, for checks on the hot path (the string forms are kept for COMMAND INFO).
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const MOVABLEKEYS: u32 = 1 << 14;
    pub const NO_MULTI: u32 = 1 << 15;
    pub const ALLOW_BUSY: u32 = 1 << 16;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 17;
    pub const SENTINEL: u32 = 1 << 18;
    pub const ONLY_SENTINEL: u32 = 1 << 19;
    pub const NO_ASYNC_LOADING: u32 = 1 << 20;
    /// RESTORE-ASKING: acts as if ASKING had been sent first.
    pub const ASKING: u32 = 1 << 21;
}

#[derive(Debug)]
pub struct CommandSpec {
    /// Dense index over every entry, subcommands included: per-command stats live in arrays.
    pub id: usize,
    /// Lowercase; `container|sub` for subcommands, as Redis's `fullname`.
    pub name: &'static str,
    /// Redis arity: positive = exact argument count (name included), negative = at least.
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub bits: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub acl: &'static [&'static str],
    pub tips: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    pub subcommands: &'static [CommandSpec],
}

#[derive(Debug)]
pub struct KeySpec {
    /// Redis's free-text note on the spec ("" when it has none).
    pub notes: &'static str,
    pub flags: &'static [&'static str],
    pub begin: BeginSearch,
    pub find: FindKeys,
}

#[derive(Debug)]
pub enum BeginSearch {
    Index(i32),
    Keyword { keyword: &'static str, startfrom: i32 },
    Unknown,
}

#[derive(Debug)]
pub enum FindKeys {
    Range { lastkey: i32, keystep: i32, limit: i32 },
    Keynum { keynumidx: i32, firstkey: i32, keystep: i32 },
    Unknown,
}

impl CommandSpec {
    pub fn has(&self, bit: u32) -> bool {
        self.bits & bit != 0
    }
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        if a >= 0 {
            argc == a as usize
        } else {
            argc >= (-a) as usize
        }
    }
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        let prefix = self.name.len() + 1;
        self.subcommands.iter().find(|s| s.name.as_bytes()[prefix..].eq_ignore_ascii_case(name))
    }
    /// The name without the container: `setname` for `client|setname`.
    pub fn short_name(&self) -> &'static str {
        match self.name.split_once('|') {
            Some((_, s)) => s,
            None => self.name,
        }
    }
}

/// Finds a top-level command by name, case-insensitively, without allocating. This runs for every
/// request on the node and on the proxy, so the index is a small open-addressing table hashed on
/// the lowercased bytes as they are read: no copy of the name, no general-purpose hasher.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    use std::sync::OnceLock;
    /// Slots (a power of two, at least 4 per command: short probe runs), and the longest name.
    static INDEX: OnceLock<(Vec<Option<&'static CommandSpec>>, usize)> = OnceLock::new();
    let (slots, longest) = INDEX.get_or_init(|| {
        let size = (table::COMMANDS.len() * 4).next_power_of_two();
        let mut slots = vec![None; size];
        for c in table::COMMANDS {
            let mut i = name_hash(c.name.as_bytes()) as usize & (size - 1);
            while slots[i].is_some() {
                i = (i + 1) & (size - 1);
            }
            slots[i] = Some(c);
        }
        (slots, table::COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0))
    });
    if name.len() > *longest {
        return None;
    }
    let mask = slots.len() - 1;
    let mut i = name_hash(name) as usize & mask;
    loop {
        match slots[i] {
            None => return None,
            Some(c) if c.name.as_bytes().eq_ignore_ascii_case(name) => return Some(c),
            Some(_) => i = (i + 1) & mask,
        }
    }
}

/// FNV-1a over the ASCII-lowercased bytes, so `GET` and `get` hash alike.
fn name_hash(name: &[u8]) -> u32 {
    name.iter().fold(0x811c_9dc5, |h, &b| (h ^ u32::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0193))
}

/// The command spec for a whole request: the subcommand entry for container commands
/// (`CLIENT SETNAME` -> `client|setname`). `Err` carries Redis's error text for an unknown
/// command or subcommand.
pub fn resolve(args: &[&[u8]]) -> Result<&'static CommandSpec, String> {
    let Some(cmd) = lookup(args[0]) else {
        return Err(crate::errors::unknown_command(args[0], &args[1..]));
    };
    if cmd.subcommands.is_empty() || args.len() < 2 {
        return Ok(cmd);
    }
    cmd.subcommand(args[1]).ok_or_else(|| crate::errors::unknown_subcommand(args[1], cmd.name))
}

/// Every entry, subcommands included, in id order.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    table::COMMANDS.iter().flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
}

/// Key positions of a request, the way Redis's `getKeysUsingKeySpecs` finds them.
/// `None` when the arguments do not fit the specs (Redis: "Invalid arguments").
pub fn key_positions(cmd: &CommandSpec, args: &[&[u8]]) -> Option<Vec<usize>> {
    let mut keys = Vec::new();
    visit_key_positions(cmd, args, |i| keys.push(i)).then_some(keys)
}

/// [`key_positions`] without the vector, for the cluster slot check on every command. False when
/// the arguments do not fit the specs; positions of earlier specs may have been visited by then.
pub fn visit_key_positions(cmd: &CommandSpec, args: &[&[u8]], mut visit: impl FnMut(usize)) -> bool {
    let argc = args.len() as i64;
    for spec in cmd.key_specs {
        let mut first: i64 = match spec.begin {
            BeginSearch::Index(i) => i as i64,
            BeginSearch::Keyword { keyword, startfrom } => {
                let (start, end) =
                    if startfrom > 0 { (startfrom as i64, argc - 1) } else { (argc + startfrom as i64, 1) };
                let mut found = 0;
                let mut i = start;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if args[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
                        found = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            BeginSearch::Unknown => continue,
        };
        let (last, step) = match spec.find {
            FindKeys::Range { lastkey, keystep, limit } => {
                let last = if lastkey >= 0 {
                    first + lastkey as i64
                } else if limit == 0 {
                    argc + lastkey as i64
                } else {
                    first + ((argc - first) / limit as i64 + lastkey as i64)
                };
                (last, keystep as i64)
            }
            FindKeys::Keynum { keynumidx, firstkey, keystep } => {
                if keynumidx as i64 >= argc - first {
                    return false;
                }
                let Some(n) = parse_i64(args[(first + keynumidx as i64) as usize]).filter(|n| *n >= 0) else {
                    return false;
                };
                first += firstkey as i64;
                (first + n - 1, keystep as i64)
            }
            FindKeys::Unknown => continue,
        };
        if last >= argc || last < first || first >= argc {
            // Redis treats this (numkeys 0 included) as invalid; the command reports its own error.
            return false;
        }
        let mut i = first;
        while i <= last {
            visit(i as usize);
            i += step.max(1);
        }
    }
    true
}

/// One entry of COMMAND / COMMAND INFO, laid out as Redis 7 prints it.
pub fn write_info(c: &CommandSpec, out: &mut Reply) {
    out.array(10);
    out.bulk(c.name.as_bytes());
    out.int(c.arity as i64);
    out.set(c.flags.len());
    c.flags.iter().for_each(|f| out.simple(f));
    out.int(c.first_key as i64);
    out.int(c.last_key as i64);
    out.int(c.step as i64);
    out.set(c.acl.len());
    c.acl.iter().for_each(|a| out.simple(a));
    out.set(c.tips.len());
    c.tips.iter().for_each(|t| out.bulk(t.as_bytes()));
    out.set(c.key_specs.len());
    for ks in c.key_specs {
        if ks.notes.is_empty() {
            out.map(3);
        } else {
            out.map(4);
            out.bulk(b"notes");
            out.bulk(ks.notes.as_bytes());
        }
        out.bulk(b"flags");
        out.set(ks.flags.len());
        ks.flags.iter().for_each(|f| out.simple(f));
        out.bulk(b"begin_search");
        out.map(2);
        out.bulk(b"type");
        match ks.begin {
            BeginSearch::Index(i) => {
                out.bulk(b"index");
                out.bulk(b"spec");
                out.map(1);
                out.bulk(b"index");
                out.int(i as i64);
            }
            BeginSearch::Keyword { keyword, startfrom } => {
                out.bulk(b"keyword");
                out.bulk(b"spec");
                out.map(2);
                out.bulk(b"keyword");
                out.bulk(keyword.as_bytes());
                out.bulk(b"startfrom");
                out.int(startfrom as i64);
            }
            BeginSearch::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
        out.bulk(b"find_keys");
        out.map(2);
        out.bulk(b"type");
        match ks.find {
            FindKeys::Range { lastkey, keystep, limit } => {
                out.bulk(b"range");
                out.bulk(b"spec");
                out.map(3);
                out.bulk(b"lastkey");
                out.int(lastkey as i64);
                out.bulk(b"keystep");
                out.int(keystep as i64);
                out.bulk(b"limit");
                out.int(limit as i64);
            }
            FindKeys::Keynum { keynumidx, firstkey, keystep } => {
                out.bulk(b"keynum");
                out.bulk(b"spec");
                out.map(3);
                out.bulk(b"keynumidx");
                out.int(keynumidx as i64);
                out.bulk(b"firstkey");
                out.int(firstkey as i64);
                out.bulk(b"keystep");
                out.int(keystep as i64);
            }
            FindKeys::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
    }
    if c.subcommands.is_empty() {
        out.set(0);
    } else {
        out.array(c.subcommands.len());
        c.subcommands.iter().for_each(|s| write_info(s, out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command is found under its name in any case; near misses are not.
    #[test]
    fn lookup_finds_every_command_in_any_case() {
        for c in table::COMMANDS {
            let upper = c.name.to_ascii_uppercase();
            let mixed: String = c
                .name
                .chars()
                .enumerate()
                .map(|(i, ch)| if i % 2 == 0 { ch.to_ascii_uppercase() } else { ch })
                .collect();
            for name in [c.name, upper.as_str(), mixed.as_str()] {
                assert_eq!(lookup(name.as_bytes()).map(|f| f.id), Some(c.id), "{name}");
            }
            // Longer and shorter names are other commands (LPUSH, LPUSHX) or none.
            for other in [format!("{}x", c.name), c.name[..c.name.len() - 1].to_string()] {
                let expect = table::COMMANDS.iter().find(|t| t.name == other).map(|t| t.id);
                assert_eq!(lookup(other.as_bytes()).map(|f| f.id), expect, "{other}");
            }
        }
        assert!(lookup(b"").is_none());
        assert!(lookup(b"g\xc3\xa9t").is_none());
        assert!(lookup(&[b'a'; 100_000]).is_none());
    }

    #[test]
    fn ids_are_dense() {
        let ids: Vec<usize> = all().map(|c| c.id).collect();
        assert_eq!(ids, (0..table::COUNT).collect::<Vec<_>>());
    }

    #[test]
    fn keys_from_specs() {
        let k = |v: &[&str]| {
            let a: Vec<&[u8]> = v.iter().map(|s| s.as_bytes()).collect();
            key_positions(lookup(a[0]).unwrap(), &a)
        };
        assert_eq!(k(&["GET", "a"]), Some(vec![1]));
        assert_eq!(k(&["mset", "a", "1", "b", "2"]), Some(vec![1, 3]));
        assert_eq!(k(&["zunionstore", "d", "2", "a", "b"]), Some(vec![1, 3, 4]));
        assert_eq!(k(&["blpop", "a", "b", "0"]), Some(vec![1, 2]));
        assert_eq!(k(&["lmpop", "2", "a", "b", "left"]), Some(vec![2, 3]));
    }
}
