//! Commands the proxy answers itself, as a single Redis would: the connection commands (the
//! proxy is the client's connection), COMMAND from the shared table, the CONFIG GET keys tools ask
//! at startup, and INFO with a `# Proxy` section plus Redis's `# Commandstats` / `# Latencystats`.

use crate::command::{self, CommandSpec};
use crate::errors;
use crate::proxy::server::Shared;
use crate::proxy::{Stats, User};
use crate::resp::{request::parse_i64, Reply};
use bytes::Bytes;

/// What HELLO and INFO report: the Redis version whose behaviour the proxy follows.
const REDIS_VERSION: &str = "7.0.15";
/// CONFIG GET answers: what redis-benchmark and redis-cli ask for at startup.
const CONFIG: &[(&str, &str)] = &[("save", ""), ("appendonly", "no")];

/// Where a client is connected, for CLIENT INFO.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub addr: String,
    pub laddr: String,
    pub fd: i64,
    /// A unix-socket client: CLIENT INFO's `flags=U`, as Redis shows it.
    pub unix: bool,
}

impl Peer {
    pub fn tcp(s: &tokio::net::TcpStream) -> Peer {
        Peer {
            addr: s.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
            laddr: s.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            fd: raw_fd(s),
            unix: false,
        }
    }

    /// Redis shows a unix-socket client as `addr=<socket path>:0` on both sides.
    #[cfg(unix)]
    pub fn unix(s: &tokio::net::UnixStream, path: &std::path::Path) -> Peer {
        let a = format!("{}:0", path.display());
        Peer { addr: a.clone(), laddr: a, fd: raw_fd(s), unix: true }
    }
}

#[cfg(unix)]
fn raw_fd(s: &impl std::os::fd::AsRawFd) -> i64 {
    i64::from(s.as_raw_fd())
}

#[cfg(not(unix))]
fn raw_fd<T>(_: &T) -> i64 {
    -1
}

/// Per-client state the local commands read and change.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub peer: Peer,
    pub created: std::time::Instant,
    pub last_interaction: std::time::Instant,
    /// Whether commands other than AUTH/HELLO/QUIT/RESET may run: from the start when no users
    /// are configured, else after a successful AUTH or HELLO AUTH.
    pub authenticated: bool,
    /// The user the client is logged in as (CLIENT INFO's `user=`).
    pub user: String,
    pub name: Option<Vec<u8>>,
    pub resp3: bool,
    pub lib_name: Option<Vec<u8>>,
    pub lib_ver: Option<Vec<u8>>,
}

impl ClientState {
    /// `authenticated` from the start when the proxy has no users (like Redis without requirepass).
    pub fn new(id: u64, peer: Peer, authenticated: bool) -> ClientState {
        let now = std::time::Instant::now();
        ClientState {
            id,
            peer,
            created: now,
            last_interaction: now,
            authenticated,
            user: "default".into(),
            name: None,
            resp3: false,
            lib_name: None,
            lib_ver: None,
        }
    }

    /// CLIENT INFO's line, in Redis 7.0's field order. The proxy holds no per-client query or
    /// output buffers of Redis's kind, so those fields read as an idle Redis client's would.
    fn info_line(&self) -> String {
        let now = std::time::Instant::now();
        let name = self.name.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=1024 events=r cmd=client|info user={} redir=-1 resp={}\n",
            self.id,
            self.peer.addr,
            self.peer.laddr,
            self.peer.fd,
            name,
            now.duration_since(self.created).as_secs(),
            now.duration_since(self.last_interaction).as_secs(),
            if self.peer.unix { "U" } else { "N" },
            self.user,
            if self.resp3 { 3 } else { 2 },
        )
    }
}

/// The reply, and whether the connection closes after it (QUIT).
pub fn run(spec: &CommandSpec, args: &[&[u8]], c: &mut ClientState, sh: &Shared) -> (Bytes, bool) {
    let mut r = Reply::new(c.resp3);
    let mut close = false;
    match spec.name {
        "ping" => match args.len() {
            1 => r.simple("PONG"),
            2 => r.bulk(args[1]),
            _ => r.error(&errors::wrong_arity("ping")),
        },
        "echo" => r.bulk(args[1]),
        "quit" => {
            r.ok();
            close = true;
        }
        "select" => match parse_i64(args[1]) {
            Some(0) => r.ok(),
            Some(_) => r.error(errors::DB_INDEX_OUT_OF_RANGE),
            None => r.error(errors::NOT_INTEGER),
        },
        "hello" => hello(args, c, &sh.opts.users, &mut r),
        "auth" => auth(args, c, &sh.opts.users, &mut r),
        "command" => {
            r.array(command::table::COMMANDS.len());
            command::table::COMMANDS.iter().for_each(|s| command::write_info(s, &mut r));
        }
        "command|count" => r.int(command::table::COMMANDS.len() as i64),
        "command|info" => {
            if args.len() == 2 {
                r.array(command::table::COMMANDS.len());
                command::table::COMMANDS.iter().for_each(|s| command::write_info(s, &mut r));
            } else {
                r.array(args.len() - 2);
                for name in &args[2..] {
                    match command::lookup(name) {
                        Some(s) => command::write_info(s, &mut r),
                        None => r.null_array(),
                    }
                }
            }
        }
        "config|get" => {
            let found: Vec<&(&str, &str)> =
                CONFIG.iter().filter(|(k, _)| args[2..].iter().any(|p| glob_match(p, k.as_bytes()))).collect();
            r.map(found.len());
            for (k, v) in found {
                r.bulk_str(k);
                r.bulk_str(v);
            }
        }
        "client|setname" => {
            if args[2].iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                r.error(errors::CLIENT_NAME_CHARS);
            } else {
                c.name = (!args[2].is_empty()).then(|| args[2].to_vec());
                r.ok();
            }
        }
        "client|getname" => match &c.name {
            Some(n) => r.bulk(n),
            None => r.null(),
        },
        "client|id" => r.int(c.id as i64),
        "client|info" => r.verbatim(c.info_line().as_bytes()),
        "client|setinfo" => {
            let attr = args[2];
            let val = args[3];
            let is_name = attr.eq_ignore_ascii_case(b"lib-name");
            if !is_name && !attr.eq_ignore_ascii_case(b"lib-ver") {
                r.error(&errors::client_setinfo_option(attr));
            } else if val.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                r.error(&errors::client_setinfo_chars(attr));
            } else {
                let v = (!val.is_empty()).then(|| val.to_vec());
                if is_name {
                    c.lib_name = v;
                } else {
                    c.lib_ver = v;
                }
                r.ok();
            }
        }
        "info" => r.verbatim(info(sh, &args[1..]).as_bytes()),
        other => r.error(&errors::proxy_unsupported(other)),
    }
    (r.buf.freeze(), close)
}

/// `AUTH [user] password`. Without configured users the proxy is a Redis without requirepass:
/// the default user takes any password and `AUTH password` alone is called a configuration
/// mistake, with Redis's text. A failed AUTH leaves an authenticated client authenticated.
fn auth(args: &[&[u8]], c: &mut ClientState, users: &[User], r: &mut Reply) {
    if args.len() > 3 {
        return r.error(errors::SYNTAX);
    }
    if users.is_empty() && args.len() == 2 {
        return r.error(errors::AUTH_NOT_CONFIGURED);
    }
    let (user, pass) = if args.len() == 3 { (args[1], args[2]) } else { (&b"default"[..], args[1]) };
    if !credentials_ok(users, user, pass) {
        return r.error(errors::WRONGPASS);
    }
    c.authenticated = true;
    c.user = String::from_utf8_lossy(user).into_owned();
    r.ok();
}

/// Whether `user` / `pass` log in. No users configured: the default user, with any password.
/// Users configured without one named `default`: `AUTH password` fails (Redis's `default off`).
pub fn credentials_ok(users: &[User], user: &[u8], pass: &[u8]) -> bool {
    if users.is_empty() {
        return user == b"default";
    }
    users.iter().find(|u| u.name.as_bytes() == user).is_some_and(|u| same_secret(u.password.as_bytes(), pass))
}

/// Compares every byte whatever the first difference, so the time taken tells nothing about how
/// much of a guessed password was right (only whether its length was).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// HELLO as Redis 7.0 runs it: options take effect as they are read (an AUTH or SETNAME before a
/// bad option still happened), then a client still not authenticated gets NOAUTH.
fn hello(args: &[&[u8]], c: &mut ClientState, users: &[User], r: &mut Reply) {
    let mut proto = if c.resp3 { 3 } else { 2 };
    if args.len() >= 2 {
        match parse_i64(args[1]) {
            Some(v @ 2..=3) => proto = v,
            Some(_) => return r.error(errors::NOPROTO),
            None => return r.error(errors::PROXY_PROTOCOL_VERSION),
        }
    }
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        if args[i].eq_ignore_ascii_case(b"auth") && more >= 2 {
            if !credentials_ok(users, args[i + 1], args[i + 2]) {
                return r.error(errors::WRONGPASS);
            }
            c.authenticated = true;
            c.user = String::from_utf8_lossy(args[i + 1]).into_owned();
            i += 3;
        } else if args[i].eq_ignore_ascii_case(b"setname") && more >= 1 {
            let n = args[i + 1];
            if n.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                return r.error(errors::CLIENT_NAME_CHARS);
            }
            c.name = (!n.is_empty()).then(|| n.to_vec());
            i += 2;
        } else {
            return r.error(&errors::hello_syntax(args[i]));
        }
    }
    if !c.authenticated {
        return r.error(errors::NOAUTH_HELLO);
    }
    c.resp3 = proto == 3;
    r.resp3 = c.resp3;
    r.map(7);
    r.bulk_str("server");
    r.bulk_str("redis");
    r.bulk_str("version");
    r.bulk_str(REDIS_VERSION);
    r.bulk_str("proto");
    r.int(proto);
    r.bulk_str("id");
    r.int(c.id as i64);
    r.bulk_str("mode");
    r.bulk_str("standalone");
    r.bulk_str("role");
    r.bulk_str("master");
    r.bulk_str("modules");
    r.array(0);
}

/// Redis's `stringmatchlen` subset that CONFIG GET patterns use: `*`, `?` and literals, no case.
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob_match(&pat[1..], s) || (!s.is_empty() && glob_match(pat, &s[1..])),
        (Some(b'?'), Some(_)) => glob_match(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p.eq_ignore_ascii_case(c) => glob_match(&pat[1..], &s[1..]),
        _ => false,
    }
}

/// INFO's sections in the order they are printed, and whether plain `INFO` (`default`) shows
/// them. As in Redis 7, the per-command sections only come with `all`, `everything` or by name.
const SECTIONS: [(&str, bool); 6] = [
    ("server", true),
    ("clients", true),
    ("stats", true),
    ("commandstats", false),
    ("latencystats", false),
    ("proxy", true),
];

/// Which sections `INFO [section ...]` asks for: names case-insensitive, `default`, `all`,
/// `everything`; unknown names select nothing (Redis answers an empty string for those).
fn selected_sections(args: &[&[u8]]) -> [bool; SECTIONS.len()] {
    let mut sel = [false; SECTIONS.len()];
    let defaults = SECTIONS.map(|(_, d)| d);
    if args.is_empty() {
        return defaults;
    }
    for a in args {
        if a.eq_ignore_ascii_case(b"default") {
            sel.iter_mut().zip(defaults).for_each(|(s, d)| *s |= d);
        } else if a.eq_ignore_ascii_case(b"all") || a.eq_ignore_ascii_case(b"everything") {
            sel = [true; SECTIONS.len()];
        } else if let Some(i) = SECTIONS.iter().position(|(n, _)| a.eq_ignore_ascii_case(n.as_bytes())) {
            sel[i] = true;
        }
    }
    sel
}

fn info(sh: &Shared, args: &[&[u8]]) -> String {
    let sel = selected_sections(args);
    // Only read the per-command shards when a section needs them.
    let snap = if sel[3] || sel[4] { sh.cmdstats.snapshot() } else { Vec::new() };
    let mut out = String::new();
    for (i, (name, _)) in SECTIONS.iter().enumerate() {
        if !sel[i] {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        match *name {
            "server" => info_server(&mut out),
            "clients" => info_clients(sh, &mut out),
            "stats" => info_stats(sh, &mut out),
            "commandstats" => {
                out.push_str("# Commandstats\r\n");
                crate::metrics::write_commandstats(&mut out, &snap);
            }
            "latencystats" => {
                out.push_str("# Latencystats\r\n");
                crate::metrics::write_latencystats(&mut out, &snap);
            }
            _ => info_proxy(sh, &mut out),
        }
    }
    out
}

fn info_server(s: &mut String) {
    use std::fmt::Write;
    let _ = write!(
        s,
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nslotway_version:{}\r\nslotway_role:proxy\r\nprocess_id:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
}

fn info_clients(sh: &Shared, s: &mut String) {
    use std::fmt::Write;
    let _ = write!(s, "# Clients\r\nconnected_clients:{}\r\n", Stats::get(&sh.stats.clients));
}

fn info_stats(sh: &Shared, s: &mut String) {
    use std::fmt::Write;
    let st = &sh.stats;
    let _ = write!(
        s,
        "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n",
        Stats::get(&st.total_clients),
        Stats::get(&st.ops)
    );
}

fn info_proxy(sh: &Shared, s: &mut String) {
    use std::fmt::Write;
    let st = &sh.stats;
    let topo = sh.topo.load();
    let _ = write!(
        s,
        "# Proxy\r\nproxy_clients:{}\r\nproxy_ops:{}\r\nproxy_threads:{}\r\nproxy_redirects_moved:{}\r\nproxy_redirects_ask:{}\r\nproxy_tryagain:{}\r\nproxy_clusterdown:{}\r\nproxy_backend_errors:{}\r\nproxy_topology_refreshes:{}\r\nproxy_topology_epoch:{}\r\nproxy_topology_slots_covered:{}\r\nproxy_topology_shards:{}\r\n",
        Stats::get(&st.clients),
        Stats::get(&st.ops),
        sh.opts.threads,
        Stats::get(&st.moved),
        Stats::get(&st.ask),
        Stats::get(&st.tryagain),
        Stats::get(&st.clusterdown),
        Stats::get(&st.conn_errors),
        Stats::get(&st.refreshes),
        topo.config_epoch,
        topo.covered_slots(),
        topo.shards().len()
    );
    let reads = &sh.reads;
    let _ = write!(
        s,
        "proxy_read_from:{}\r\nproxy_reads_to_replicas:{}\r\nproxy_reads_to_masters:{}\r\nproxy_replica_read_failures:{}\r\n",
        reads.policy.name(),
        Stats::get(&reads.to_replicas),
        Stats::get(&reads.to_masters),
        Stats::get(&reads.replica_failures)
    );
    let conns = sh.node_states();
    for (i, n) in topo.nodes().enumerate() {
        let c = conns.get(&n.addr).copied().unwrap_or_default();
        let (connected, inflight, errors) = (c.connections > 0, c.inflight, c.errors);
        let slots = topo.shards().iter().find(|sh| sh.master.addr == n.addr).map_or(0, |sh| sh.slot_count());
        let _ = write!(
            s,
            "node{i}:addr={},role={:?},slots={slots},connected={},inflight={inflight},errors={errors},reads={},breaker={}\r\n",
            n.addr,
            n.role,
            u8::from(connected),
            reads.reads_of(&n.addr),
            sh.breakers.state(&n.addr).name()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{credentials_ok, glob_match, same_secret, selected_sections};
    use crate::proxy::User;

    #[test]
    fn credentials() {
        let u = |n: &str, p: &str| User { name: n.into(), password: p.into() };
        assert!(credentials_ok(&[], b"default", b"anything"));
        assert!(!credentials_ok(&[], b"app", b"anything"));
        let users = [u("default", "pw"), u("app", "apppw")];
        assert!(credentials_ok(&users, b"default", b"pw"));
        assert!(credentials_ok(&users, b"app", b"apppw"));
        assert!(!credentials_ok(&users, b"app", b"pw"));
        assert!(!credentials_ok(&users, b"app", b"apppw "));
        assert!(!credentials_ok(&users, b"nobody", b"pw"));
        assert!(!credentials_ok(&users[1..], b"default", b"pw"));
        assert!(same_secret(b"", b"") && !same_secret(b"a", b"") && !same_secret(b"ab", b"ac"));
    }

    #[test]
    fn info_sections_like_redis() {
        let sel = |args: &[&str]| {
            let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
            selected_sections(&a)
        };
        let default = [true, true, true, false, false, true];
        assert_eq!(sel(&[]), default);
        assert_eq!(sel(&["DEFAULT"]), default);
        assert_eq!(sel(&["all"]), [true; 6]);
        assert_eq!(sel(&["Everything"]), [true; 6]);
        assert_eq!(sel(&["nosuch"]), [false; 6]);
        assert_eq!(sel(&["CommandStats", "server"]), [true, false, false, true, false, false]);
        assert_eq!(sel(&["default", "latencystats"]), [true, true, true, false, true, true]);
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"save"));
        assert!(glob_match(b"SAVE", b"save"));
        assert!(glob_match(b"app*", b"appendonly"));
        assert!(glob_match(b"s?ve", b"save"));
        assert!(!glob_match(b"x*", b"save"));
    }
}
