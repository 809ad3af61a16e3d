//! Property checks of the server and CLIENT families that a byte-for-byte comparison with
//! redis-server cannot make (values that depend on time, addresses, ids or the process).

mod support;

use slotway::resp::Frame;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{redis_server, slotway_node, Conn};

fn text(f: &Frame) -> String {
    String::from_utf8_lossy(f.as_bytes().unwrap_or_else(|| panic!("not a string reply: {f:?}"))).into_owned()
}

fn int(f: &Frame) -> i64 {
    match f {
        Frame::Integer(n) => *n,
        other => panic!("not an integer: {other:?}"),
    }
}

/// INFO parsed into sections of key -> value; panics on a line that is neither a header, a
/// blank separator nor `key:value`, or on a line not ending in CRLF.
fn info(c: &mut Conn, args: &[&str]) -> HashMap<String, HashMap<String, String>> {
    let mut cmd = vec!["INFO"];
    cmd.extend_from_slice(args);
    let raw = text(&c.cmd(&cmd));
    assert!(raw.is_empty() || raw.ends_with("\r\n"), "INFO must end with CRLF: {raw:?}");
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current = String::new();
    for line in raw.split("\r\n") {
        assert!(!line.contains('\n'), "bare LF in INFO line {line:?}");
        if line.is_empty() {
            continue;
        }
        if let Some(h) = line.strip_prefix("# ") {
            current = h.to_string();
            assert!(sections.insert(current.clone(), HashMap::new()).is_none(), "section {h} twice");
            continue;
        }
        let (k, v) = line.split_once(':').unwrap_or_else(|| panic!("INFO line without ':' {line:?}"));
        assert!(!current.is_empty(), "field before any section: {line}");
        sections.get_mut(&current).expect("section").insert(k.to_string(), v.to_string());
    }
    sections
}

const REQUIRED: &[(&str, &[&str])] = &[
    (
        "Server",
        &[
            "redis_version",
            "redis_mode",
            "os",
            "arch_bits",
            "process_id",
            "run_id",
            "tcp_port",
            "uptime_in_seconds",
            "uptime_in_days",
            "hz",
            "executable",
            "config_file",
        ],
    ),
    ("Clients", &["connected_clients", "blocked_clients", "maxclients"]),
    (
        "Memory",
        &[
            "used_memory",
            "used_memory_human",
            "used_memory_rss",
            "used_memory_rss_human",
            "used_memory_peak",
            "used_memory_peak_human",
            "maxmemory",
            "maxmemory_human",
            "maxmemory_policy",
            "mem_fragmentation_ratio",
        ],
    ),
    (
        "Stats",
        &[
            "total_connections_received",
            "total_commands_processed",
            "instantaneous_ops_per_sec",
            "total_net_input_bytes",
            "total_net_output_bytes",
            "rejected_connections",
            "expired_keys",
            "evicted_keys",
            "keyspace_hits",
            "keyspace_misses",
            "pubsub_channels",
            "pubsub_patterns",
            "total_error_replies",
        ],
    ),
    (
        "Replication",
        &[
            "role",
            "connected_slaves",
            "master_replid",
            "master_replid2",
            "master_repl_offset",
            "second_repl_offset",
            "repl_backlog_active",
            "repl_backlog_size",
            "repl_backlog_first_byte_offset",
            "repl_backlog_histlen",
        ],
    ),
    ("CPU", &["used_cpu_sys", "used_cpu_user"]),
];

#[test]
fn info_has_every_field() {
    let node = slotway_node(&[]);
    let mut c = node.conn();
    let all = info(&mut c, &["everything"]);
    for (section, fields) in REQUIRED {
        let s = all.get(*section).unwrap_or_else(|| panic!("no # {section} section"));
        for f in *fields {
            assert!(s.contains_key(*f), "{section} lacks {f}");
        }
    }
    for s in ["Persistence", "Modules", "Commandstats", "Errorstats", "Latencystats", "Cluster", "Keyspace"] {
        assert!(all.contains_key(s), "no # {s} section in INFO everything");
    }
    let server = &all["Server"];
    assert_eq!(server["redis_version"], "7.0.15");
    assert_eq!(server["redis_mode"], "standalone");
    assert_eq!(server["tcp_port"], node.port.to_string());
    assert_eq!(server["process_id"], node.pid().to_string());
    assert_eq!(server["run_id"].len(), 40);
    assert_eq!(all["Replication"]["role"], "master");
    assert_eq!(all["Replication"]["master_replid"].len(), 40);
    assert_eq!(all["Clients"]["connected_clients"], "1");
    assert!(all["Memory"]["used_memory"].parse::<u64>().unwrap() > 0);
    assert!(all["Memory"]["used_memory_rss"].parse::<u64>().unwrap() > 0);
    assert!(all["CPU"]["used_cpu_user"].contains('.'));

    // The default set has no commandstats; sections come in Redis's order.
    let default = text(&c.cmd(&["INFO"]));
    let headers: Vec<&str> = default.lines().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(
        headers,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace"
        ]
    );
    let two = info(&mut c, &["CPU", "server"]);
    assert_eq!(two.len(), 2);
    assert!(two.contains_key("CPU") && two.contains_key("Server"));
    assert!(text(&c.cmd(&["INFO", "nosuch"])).is_empty());
}

#[test]
fn info_is_verbatim_in_resp3() {
    let node = slotway_node(&[]);
    let mut c = node.conn();
    c.cmd(&["HELLO", "3"]);
    match c.cmd(&["INFO", "server"]) {
        Frame::Verbatim(fmt, body) => {
            assert_eq!(&fmt[..], b"txt");
            assert!(body.starts_with(b"# Server\r\n"));
        }
        other => panic!("INFO in RESP3 must be a verbatim string, got {other:?}"),
    }
}

#[test]
fn info_keyspace_and_hits_follow_writes() {
    let node = slotway_node(&[]);
    let mut c = node.conn();
    assert!(info(&mut c, &["keyspace"])["Keyspace"].is_empty());
    for k in ["a", "b", "c"] {
        c.cmd(&["SET", k, "v"]);
    }
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["SET", "x", "v"]);
    let ks = &info(&mut c, &["keyspace"])["Keyspace"];
    assert_eq!(ks["db0"], "keys=3,expires=0,avg_ttl=0");
    assert_eq!(ks["db3"], "keys=1,expires=0,avg_ttl=0");
    assert_eq!(ks.len(), 2);

    c.cmd(&["CONFIG", "RESETSTAT"]);
    c.cmd(&["GET", "x"]);
    c.cmd(&["GET", "x"]);
    c.cmd(&["GET", "nosuch"]);
    let stats = &info(&mut c, &["stats"])["Stats"];
    assert_eq!(stats["keyspace_hits"], "2");
    assert_eq!(stats["keyspace_misses"], "1");
}

#[test]
fn commandstats_and_errorstats_count() {
    let node = slotway_node(&[]);
    let mut c = node.conn();
    c.cmd(&["CONFIG", "RESETSTAT"]);
    for _ in 0..3 {
        c.cmd(&["PING"]);
    }
    c.cmd(&["CONFIG", "GET", "maxmemory"]);
    c.cmd(&["GET"]); // wrong arity: rejected before running
    c.cmd(&["NOSUCHCOMMAND"]);
    c.cmd(&["SELECT", "99"]); // runs and fails
    let all = info(&mut c, &["commandstats", "errorstats"]);
    let cs = &all["Commandstats"];
    assert!(cs["cmdstat_ping"].starts_with("calls=3,usec="), "{}", cs["cmdstat_ping"]);
    assert!(cs["cmdstat_ping"].ends_with(",rejected_calls=0,failed_calls=0"), "{}", cs["cmdstat_ping"]);
    assert_eq!(cs["cmdstat_get"], "calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0");
    assert!(cs["cmdstat_config|get"].starts_with("calls=1,"));
    assert!(cs["cmdstat_select"].starts_with("calls=1,"));
    assert!(cs["cmdstat_select"].ends_with(",rejected_calls=0,failed_calls=1"));
    assert!(cs["cmdstat_config|resetstat"].starts_with("calls=1,"));
    assert_eq!(all["Errorstats"]["errorstat_ERR"], "count=3");
    let stats = &info(&mut c, &["stats"])["Stats"];
    assert_eq!(stats["total_error_replies"], "3");
    // Latency percentiles exist for the commands that ran.
    let lat = &info(&mut c, &["latencystats"])["Latencystats"];
    let p = &lat["latency_percentiles_usec_ping"];
    assert!(p.starts_with("p50=") && p.contains(",p99=") && p.contains(",p99.9="), "{p}");
}

#[test]
fn monitor_receives_commands_in_redis_format() {
    let node = slotway_node(&[]);
    let mut mon = node.conn();
    assert_eq!(mon.raw(&["MONITOR"]), b"+OK\r\n");
    let mut c = node.conn();
    c.cmd(&["SET", "k", "a \"quoted\"\nvalue"]);
    c.cmd(&["SELECT", "2"]);
    c.cmd(&["CONFIG", "GET", "maxmemory"]); // admin commands are not shown
    c.cmd(&["PING"]);
    let addr = text(&c.cmd(&["CLIENT", "INFO"]))
        .split(' ')
        .find_map(|f| f.strip_prefix("addr=").map(str::to_string))
        .expect("addr field");
    let mut lines = Vec::new();
    for _ in 0..3 {
        match Frame::parse(&bytes::Bytes::from(mon.read_reply().expect("monitor line"))) {
            Ok(Some((Frame::Simple(s), _))) => lines.push(String::from_utf8_lossy(&s).into_owned()),
            other => panic!("monitor output must be status lines, got {other:?}"),
        }
    }
    for l in &lines {
        let (ts, rest) = l.split_once(' ').expect("timestamp");
        let (secs, micros) = ts.split_once('.').expect("seconds.micros");
        assert!(secs.parse::<u64>().is_ok() && micros.len() == 6 && micros.parse::<u32>().is_ok(), "{l}");
        assert!(rest.starts_with('['), "{l}");
    }
    assert!(lines[0].ends_with(&format!(" [0 {addr}] \"SET\" \"k\" \"a \\\"quoted\\\"\\nvalue\"")), "{}", lines[0]);
    assert!(lines[1].contains("\"SELECT\" \"2\""), "{}", lines[1]);
    assert!(lines[2].ends_with("] \"PING\""), "{}", lines[2]);
    // A second MONITOR gets no reply; the flag shows in CLIENT LIST.
    let list = text(&c.cmd(&["CLIENT", "LIST"]));
    assert!(list.lines().any(|l| l.contains(" flags=O ")), "{list}");
}

#[test]
fn client_kill_closes_the_target() {
    let node = slotway_node(&[]);
    let mut a = node.conn();
    let mut b = node.conn();
    let b_id = int(&b.cmd(&["CLIENT", "ID"]));
    let a_id = int(&a.cmd(&["CLIENT", "ID"]));
    assert_ne!(a_id, b_id);
    assert_eq!(int(&a.cmd(&["CLIENT", "KILL", "ID", &b_id.to_string()])), 1);
    assert!(b.is_closed(), "killed client must be disconnected");
    assert_eq!(text(&a.cmd(&["PING"])), "PONG");
    assert_eq!(int(&a.cmd(&["CLIENT", "KILL", "ID", &b_id.to_string()])), 0);

    // Old form by address, then by ADDR filter; the caller may kill itself with the old form.
    let mut c = node.conn();
    let c_addr =
        text(&c.cmd(&["CLIENT", "INFO"])).split(' ').find_map(|f| f.strip_prefix("addr=").map(str::to_string)).unwrap();
    assert_eq!(a.raw(&["CLIENT", "KILL", &c_addr]), b"+OK\r\n");
    assert!(c.is_closed());
    assert_eq!(a.raw(&["CLIENT", "KILL", &c_addr]), b"-ERR No such client\r\n");

    let mut d = node.conn();
    d.cmd(&["PING"]);
    let d_laddr = format!("127.0.0.1:{}", node.port);
    // Everyone on this local address but the caller.
    assert_eq!(int(&a.cmd(&["CLIENT", "KILL", "LADDR", &d_laddr])), 1);
    assert!(d.is_closed());
    // SKIPME no: the caller gets its reply, then is closed.
    assert_eq!(int(&a.cmd(&["CLIENT", "KILL", "ID", &a_id.to_string(), "SKIPME", "no"])), 1);
    assert!(a.is_closed());
}

#[test]
fn client_list_has_one_line_per_client() {
    let node = slotway_node(&[]);
    let mut conns: Vec<Conn> = (0..3).map(|_| node.conn()).collect();
    conns[1].cmd(&["CLIENT", "SETNAME", "second"]);
    conns[2].cmd(&["SELECT", "5"]);
    let raw = text(&conns[0].cmd(&["CLIENT", "LIST"]));
    assert!(raw.ends_with('\n'));
    let lines: Vec<&str> = raw.lines().collect();
    assert_eq!(lines.len(), 3, "{raw}");
    let order = [
        "id",
        "addr",
        "laddr",
        "fd",
        "name",
        "age",
        "idle",
        "flags",
        "db",
        "sub",
        "psub",
        "ssub",
        "multi",
        "qbuf",
        "qbuf-free",
        "argv-mem",
        "multi-mem",
        "rbs",
        "rbp",
        "obl",
        "oll",
        "omem",
        "tot-mem",
        "events",
        "cmd",
        "user",
        "redir",
        "resp",
    ];
    let mut ids = Vec::new();
    for l in &lines {
        let fields: Vec<(&str, &str)> = l.split(' ').map(|f| f.split_once('=').expect("key=value")).collect();
        let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, order, "{l}");
        let get = |k: &str| fields.iter().find(|(f, _)| *f == k).map(|(_, v)| *v).unwrap();
        ids.push(get("id").parse::<u64>().unwrap());
        assert_eq!(get("laddr"), format!("127.0.0.1:{}", node.port));
        assert_eq!(get("user"), "default");
        assert_eq!(get("flags"), "N");
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "connection order: {ids:?}");
    assert!(lines[0].contains(" cmd=client|list "));
    assert!(lines[1].contains(" name=second ") && lines[1].contains(" cmd=client|setname "));
    assert!(lines[2].contains(" db=5 ") && lines[2].contains(" cmd=select "));

    conns[0].cmd(&["CLIENT", "NO-EVICT", "on"]);
    assert!(text(&conns[0].cmd(&["CLIENT", "INFO"])).contains(" flags=e "));
    conns[0].cmd(&["CLIENT", "NO-EVICT", "off"]);
    let me = text(&conns[0].cmd(&["CLIENT", "INFO"]));
    assert!(me.contains(" flags=N "));
    assert!(me.starts_with(&format!("id={} ", ids[0])) && me.ends_with("resp=2\n"));
    let by_id = text(&conns[0].cmd(&["CLIENT", "LIST", "ID", &ids[2].to_string(), &ids[1].to_string()]));
    let got: Vec<&str> = by_id.lines().collect();
    assert_eq!(got.len(), 2);
    assert!(got[0].starts_with(&format!("id={} ", ids[2])) && got[1].contains(" name=second "));
    assert_eq!(text(&conns[0].cmd(&["CLIENT", "LIST", "TYPE", "normal"])).lines().count(), 3);
    assert_eq!(text(&conns[0].cmd(&["CLIENT", "LIST", "TYPE", "pubsub"])), "");

    conns.pop();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(text(&conns[0].cmd(&["CLIENT", "LIST"])).lines().count(), 2);
}

#[test]
fn client_setinfo_takes_lib_name_and_version() {
    let node = slotway_node(&[]);
    let mut c = node.conn();
    assert_eq!(c.raw(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]), b"+OK\r\n");
    assert_eq!(c.raw(&["CLIENT", "SETINFO", "lib-ver", "5.0.1"]), b"+OK\r\n");
    assert_eq!(c.raw(&["CLIENT", "SETINFO", "lib-ver", ""]), b"+OK\r\n");
    assert_eq!(c.raw(&["CLIENT", "SETINFO", "nosuch", "x"]), b"-ERR Unrecognized option 'nosuch'\r\n");
    assert_eq!(
        c.raw(&["CLIENT", "SETINFO", "lib-name", "a b"]),
        b"-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"
    );
}

#[test]
fn slowlog_records_arguments_and_client() {
    let node = slotway_node(&[]);
    let mut c = node.conn();
    c.cmd(&["CLIENT", "SETNAME", "slowpoke"]);
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    c.cmd(&["SLOWLOG", "RESET"]);
    let long = "x".repeat(200);
    c.cmd(&["ECHO", &long]);
    let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    let mut cmd = vec!["CONFIG", "GET"];
    cmd.extend(many.iter().map(|s| s.as_str()));
    c.cmd(&cmd);
    c.cmd(&["GET"]); // rejected before running: not logged
    let Frame::Array(entries) = c.cmd(&["SLOWLOG", "GET", "-1"]) else { panic!("array") };
    // Newest first: CONFIG GET, ECHO, SLOWLOG RESET.
    assert_eq!(entries.len(), 3);
    let Frame::Array(e) = &entries[0] else { panic!("entry") };
    let Frame::Array(args) = &e[3] else { panic!("args") };
    assert_eq!(args.len(), 32);
    assert_eq!(text(&args[30]), "28");
    assert_eq!(text(&args[31]), "... (11 more arguments)");
    let Frame::Array(e) = &entries[1] else { panic!("entry") };
    assert_eq!(e.len(), 6);
    let Frame::Array(args) = &e[3] else { panic!("args") };
    assert_eq!(text(&args[0]), "ECHO");
    assert_eq!(text(&args[1]), format!("{}... (72 more bytes)", "x".repeat(128)));
    assert!(text(&e[4]).starts_with("127.0.0.1:"));
    assert_eq!(text(&e[5]), "slowpoke");
    assert!(int(&e[1]) > 1_600_000_000);
    let ids: Vec<i64> = entries
        .iter()
        .map(|e| match e {
            Frame::Array(v) => int(&v[0]),
            _ => panic!(),
        })
        .collect();
    assert!(ids[0] > ids[1] && ids[1] > ids[2]);
}

#[test]
fn config_set_takes_effect() {
    let node = slotway_node(&[]);
    let mut c = node.conn();
    assert_eq!(c.raw(&["CONFIG", "SET", "maxmemory", "100mb", "maxmemory-policy", "allkeys-lru"]), b"+OK\r\n");
    let mem = &info(&mut c, &["memory"])["Memory"];
    assert_eq!(mem["maxmemory"], "104857600");
    assert_eq!(mem["maxmemory_human"], "100.00M");
    assert_eq!(mem["maxmemory_policy"], "allkeys-lru");
    // A password set at run time binds new connections, not this one.
    assert_eq!(c.raw(&["CONFIG", "SET", "requirepass", "secret"]), b"+OK\r\n");
    assert_eq!(c.raw(&["PING"]), b"+PONG\r\n");
    let mut other = node.conn();
    assert!(other.raw(&["PING"]).starts_with(b"-NOAUTH"));
    assert_eq!(other.raw(&["AUTH", "secret"]), b"+OK\r\n");
    assert_eq!(c.raw(&["CONFIG", "SET", "requirepass", ""]), b"+OK\r\n");
    // Changes this server cannot make at run time are refused.
    assert!(c
        .raw(&["CONFIG", "SET", "port", "1"])
        .starts_with(b"-ERR CONFIG SET failed (possibly related to argument 'port')"));
    let same_port = node.port.to_string();
    assert_eq!(c.raw(&["CONFIG", "SET", "port", &same_port]), b"+OK\r\n");
    assert!(c.raw(&["CONFIG", "SET", "appendonly", "yes"]).starts_with(b"-ERR CONFIG SET failed"));
    assert_eq!(c.raw(&["CONFIG", "GET", "appendonly"]), b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
}

/// Before AUTH, with `requirepass` set, replies match redis-server's byte for byte (the corpus
/// runs without a password, so it cannot cover these).
#[test]
fn unauthenticated_replies_match_redis() {
    let redis = redis_server(&["--requirepass", "secret"]);
    let node = slotway_node(&["--requirepass", "secret"]);
    let script: &[&[&str]] = &[
        &["PING"],
        &["HELLO", "3"],
        &["HELLO", "2", "SETNAME", "x"],
        &["HELLO", "3", "AUTH", "default", "wrong"],
        &["AUTH", "wrong"],
        &["AUTH", "nobody", "secret"],
        &["GET", "k"],
        &["NOSUCHCOMMAND"],
        // (A successful HELLO's reply holds the connection id, which differs.)
        &["AUTH", "default", "secret"],
        &["PING"],
    ];
    let (mut a, mut b) = (redis.conn(), node.conn());
    for cmd in script {
        let (want, got) = (a.raw(cmd), b.raw(cmd));
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "{cmd:?}");
    }
}

#[test]
fn shutdown_exits_the_process() {
    let mut node = slotway_node(&[]);
    let mut c = node.conn();
    let mut other = node.conn();
    assert_eq!(c.raw(&["SHUTDOWN", "SAVE"]), b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    assert_eq!(c.raw(&["SHUTDOWN", "ABORT"]), b"-ERR No shutdown in progress.\r\n");
    assert!(node.is_alive());
    c.send(&[b"SHUTDOWN"]);
    assert!(c.read_reply().is_none(), "SHUTDOWN must not reply");
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.is_alive() {
        assert!(Instant::now() < deadline, "process still running after SHUTDOWN");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(other.is_closed());
}

#[test]
fn time_and_lastsave_are_current() {
    let node = slotway_node(&[]);
    let mut c = node.conn();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let Frame::Array(t) = c.cmd(&["TIME"]) else { panic!("array") };
    let secs: i64 = text(&t[0]).parse().unwrap();
    let micros: i64 = text(&t[1]).parse().unwrap();
    assert!((secs - now).abs() <= 2 && (0..1_000_000).contains(&micros));
    assert!((int(&c.cmd(&["LASTSAVE"])) - now).abs() <= 60);
}
