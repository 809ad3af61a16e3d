//! `slotway proxy -c FILE`: bad files stop the process with an error naming the key and the line;
//! a proxy configured only by its file serves clients on a TCP and a unix-socket listener; AUTH on
//! the proxy answers byte for byte as a real redis-server with requirepass and an ACL user does,
//! while the proxy itself authenticates to nodes that have `requirepass`. Run against a real
//! Redis 7 cluster and a slotway cluster.

mod support;

use slotway::resp::{frame_len, Frame};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::cluster::{both, query, run_bounded, Cluster, Kind};
use support::conn::encode;
use support::proxy::Proxy;
use support::tempdir;

both!(config_file_only, config_file_only_redis, config_file_only_slotway);
both!(auth_through_proxy, auth_through_proxy_redis, auth_through_proxy_slotway);

const NODE_PW: &str = "node-secret";
const DEFAULT_PW: &str = "proxy-secret";
const APP_PW: &str = "app-secret";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write config");
    p
}

fn seeds_yaml(c: &Cluster) -> String {
    c.nodes.iter().map(|n| format!("  - \"{}\"\n", n.addr())).collect()
}

/// `slotway proxy` with exactly these arguments; ready once its TCP `port` accepts connections.
fn spawn_proxy(args: &[&str], port: u16) -> Proxy {
    let child = Command::new(env!("CARGO_BIN_EXE_slotway"))
        .arg("proxy")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn proxy");
    let mut p = Proxy { child, port };
    p.wait_listening();
    p
}

/// Sends each request and reads its one reply, raw; `<closed>` once the server hung up.
fn exchange<S: Read + Write>(s: &mut S, requests: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for req in requests {
        if s.write_all(req).is_err() {
            out.push(b"<closed>".to_vec());
            continue;
        }
        out.push(loop {
            if let Ok(Some(n)) = frame_len(&buf) {
                break buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 65536];
            match s.read(&mut chunk) {
                Ok(0) => break b"<closed>".to_vec(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    panic!("no reply to {:?} (buffered {buf:?})", String::from_utf8_lossy(req))
                }
                Err(_) => break b"<closed>".to_vec(),
            }
        });
    }
    out
}

fn tcp(port: u16) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s
}

fn cmd(args: &[&str]) -> Vec<u8> {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    encode(&a)
}

fn one<S: Read + Write>(s: &mut S, args: &[&str]) -> Vec<u8> {
    exchange(s, &[cmd(args)]).remove(0)
}

fn show(replies: &[Vec<u8>]) -> Vec<String> {
    replies.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect()
}

/// HELLO's reply carries the connection id, which differs between any two servers.
fn mask_id(reply: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply);
    match text.split_once("$2\r\nid\r\n:") {
        Some((head, tail)) => {
            let rest = tail.split_once("\r\n").map_or("", |(_, r)| r);
            format!("{head}$2\r\nid\r\n:<id>\r\n{rest}").into_bytes()
        }
        None => reply.to_vec(),
    }
}

/// Every session runs against the proxy and the reference server; the raw replies must match.
fn same_replies(proxy_port: u16, reference_port: u16, sessions: &[Vec<Vec<u8>>]) {
    for (i, reqs) in sessions.iter().enumerate() {
        let got: Vec<Vec<u8>> = exchange(&mut tcp(proxy_port), reqs).iter().map(|r| mask_id(r)).collect();
        let want: Vec<Vec<u8>> = exchange(&mut tcp(reference_port), reqs).iter().map(|r| mask_id(r)).collect();
        let shown: Vec<String> = reqs.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect();
        assert_eq!(show(&got), show(&want), "session {i}: {shown:?}");
    }
}

/// Waits until the proxy routes a write (its first topology is in), authenticating first if asked.
fn wait_routing(port: u16, auth: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut s = tcp(port);
        let mut reqs = Vec::new();
        if !auth.is_empty() {
            reqs.push(cmd(auth));
        }
        reqs.push(cmd(&["SET", "proxy:ready", "1"]));
        let replies = exchange(&mut s, &reqs);
        if replies.last().map(Vec::as_slice) == Some(b"+OK\r\n") {
            return;
        }
        assert!(Instant::now() < deadline, "the proxy never routed a SET: {:?}", show(&replies));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_config_files_stop_the_proxy_naming_key_and_line() {
    let dir = tempdir::Dir::new("proxy-config-bad");
    // (file text, what stderr must contain)
    let cases: &[(&str, &[&str])] = &[
        ("seeds: [\"127.0.0.1:7000\"]\nthread: 2\n", &["unknown field `thread`", "line 2"]),
        ("seeds: [\"127.0.0.1:7000\"]\nthreads: 0\n", &["threads: ", "from 1 to 1024", "line 2"]),
        ("seeds: [\"127.0.0.1:7000\"]\n\nthreads: two\n", &["threads: invalid type: string \"two\"", "line 3"]),
        (
            "seeds:\n  - \"127.0.0.1:7000\"\n  - \"nowhere\"\n",
            &["seeds[1]: ", "`nowhere`: expected host:port", "line 3"],
        ),
        ("seeds: [\"127.0.0.1:7000\"]\nread_from: replicas\n", &["read_from: ", "`replicas`", "line 2"]),
        ("seeds: [\"127.0.0.1:7000\"]\nusers:\n  - name: app\n", &["users[0]: missing field `password`", "line 3"]),
        ("seeds: [\"127.0.0.1:7000\"]\nlisten: [\"unix:\"]\n", &["listen[0]: ", "socket path", "line 2"]),
        ("seeds: [\"127.0.0.1:7000\"]\nrequest_timeout_ms: 0\n", &["request_timeout_ms: ", "line 2"]),
        ("seeds: [\"127.0.0.1:7000\"]\nthreads: 2\nthreads: 3\n", &["the key `threads` appears twice", "line 3"]),
        ("seeds: [\"127.0.0.1:7000\"\n", &["line 2"]),
        ("threads: 2\n", &["no seeds"]),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("bad{i}.yaml"), text);
        let args = vec!["proxy".to_string(), "-c".to_string(), path.display().to_string()];
        let out = run_bounded(env!("CARGO_BIN_EXE_slotway"), &args, Duration::from_secs(20));
        assert!(!out.timed_out && out.code == Some(1), "{text:?} must fail at startup: {}", out.describe());
        let line = out.stderr.lines().find(|l| l.starts_with("slotway proxy: ")).unwrap_or("");
        for n in *needles {
            assert!(line.contains(n), "{text:?}: stderr does not say {n:?}: {}", out.describe());
        }
        if !text.starts_with("threads: 2\n") {
            assert!(line.contains(&path.display().to_string()), "names the file: {}", out.describe());
        }
    }
    // Flags are checked too; seeds must come from the file or a flag.
    let flag_cases: &[(&[&str], &str)] = &[
        (&["proxy"], "no seeds"),
        (&["proxy", "--seed", "nohost"], "--seed nohost: `nohost`: expected host:port"),
        (&["proxy", "--seed", "127.0.0.1:7000", "--listen", "6380"], "--listen 6380: "),
        (&["proxy", "-c", "/nonexistent/proxy.yaml"], "cannot read /nonexistent/proxy.yaml"),
    ];
    for (args, needle) in flag_cases {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = run_bounded(env!("CARGO_BIN_EXE_slotway"), &args, Duration::from_secs(20));
        assert!(out.code == Some(1) && out.stderr.contains(needle), "{args:?}: {}", out.describe());
    }
}

/// Listeners, seeds and the rest from the file alone; the flags override it; without users the
/// proxy's AUTH answers as a redis-server without requirepass does.
fn config_file_only(kind: Kind) {
    let c = Cluster::create(kind, 3);
    let dir = tempdir::Dir::new("proxy-config");
    let sock = dir.path().join("proxy.sock");
    let port = support::free_port();
    let text = format!(
        "listen:\n  - \"127.0.0.1:{port}\"\n  - \"unix:{}\"\nseeds:\n{}threads: 2\nread_from: master\nconns_per_node: 1\nmax_inflight_per_client: 64\nrefresh_interval_ms: 1000\n",
        sock.display(),
        seeds_yaml(&c)
    );
    let path = write(dir.path(), "proxy.yaml", &text);
    let path_s = path.display().to_string();
    let _p = spawn_proxy(&["-c", &path_s], port);
    wait_routing(port, &[]);

    // Keys over every master, written over TCP and read back over the unix socket.
    let mut t = tcp(port);
    let mut u = std::os::unix::net::UnixStream::connect(&sock).expect("connect to the unix socket");
    u.set_read_timeout(Some(Duration::from_secs(10))).ok();
    for i in 0..30 {
        let key = format!("cfg:{i}");
        assert_eq!(one(&mut t, &["SET", &key, &i.to_string()]), b"+OK\r\n");
    }
    for i in 0..30 {
        let v = i.to_string();
        assert_eq!(one(&mut u, &["GET", &format!("cfg:{i}")]), format!("${}\r\n{v}\r\n", v.len()).into_bytes());
    }
    assert_eq!(one(&mut u, &["MSET", "a", "1", "b", "2", "c", "3"]), b"+OK\r\n");
    assert_eq!(one(&mut t, &["MGET", "a", "b", "c"]), b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    assert_eq!(c.dbsize_total(), 30 + 3 + 1, "the keys are on the cluster's nodes");
    let info = String::from_utf8_lossy(&one(&mut u, &["INFO"])).into_owned();
    assert!(info.contains("proxy_threads:2\r\n"), "threads from the file: {info}");

    // No users configured: AUTH replies are a requirepass-less redis-server's.
    let reference = support::redis_server(&[]);
    same_replies(
        port,
        reference.port,
        &[vec![
            cmd(&["AUTH", "x"]),
            cmd(&["AUTH", "a", "b"]),
            cmd(&["AUTH", "default", "anything"]),
            cmd(&["AUTH", "a", "b", "c"]),
            cmd(&["HELLO", "3", "AUTH", "a", "b"]),
            cmd(&["HELLO", "2", "AUTH", "default", "zz", "SETNAME", "n"]),
            cmd(&["CLIENT", "GETNAME"]),
            cmd(&["GET", "cfg:none"]),
        ]],
    );

    // Flags override the file: --listen replaces its listeners, --threads its thread count.
    let port2 = support::free_port();
    let listen2 = format!("127.0.0.1:{port2}");
    let _p2 = spawn_proxy(&["-c", &path_s, "--listen", &listen2, "--threads", "1"], port2);
    wait_routing(port2, &[]);
    let info = String::from_utf8_lossy(&one(&mut tcp(port2), &["INFO"])).into_owned();
    assert!(info.contains("proxy_threads:1\r\n"), "--threads overrides the file: {info}");
    assert_eq!(one(&mut tcp(port2), &["GET", "cfg:7"]), b"$1\r\n7\r\n");
}

/// Nodes with requirepass, a proxy with a backend password and two users of its own.
fn auth_through_proxy(kind: Kind) {
    let c = Cluster::create_with_args(kind, 3, &["--requirepass", NODE_PW]);
    match query(c.nodes[0].port, &["GET", "x"]) {
        Ok(Frame::Error(e)) => assert!(e.starts_with(b"NOAUTH"), "{e:?}"),
        other => panic!("{kind:?} node without AUTH: {other:?}"),
    }
    let dir = tempdir::Dir::new("proxy-auth");
    let port = support::free_port();
    let text = format!(
        "listen: [\"127.0.0.1:{port}\"]\nseeds:\n{}threads: 2\nusers:\n  - name: default\n    password: {DEFAULT_PW}\n  - name: app\n    password: {APP_PW}\nbackend:\n  password: {NODE_PW}\n",
        seeds_yaml(&c)
    );
    let path = write(dir.path(), "proxy.yaml", &text);
    let _p = spawn_proxy(&["-c", &path.display().to_string()], port);
    wait_routing(port, &["AUTH", DEFAULT_PW]);

    // The reference: one redis-server whose default user and `app` have the proxy's passwords.
    let acl_pw = format!(">{APP_PW}");
    let reference =
        support::redis_server(&["--requirepass", DEFAULT_PW, "--user", "app", "on", &acl_pw, "~*", "+@all"]);
    let set = cmd(&["SET", "auth:k", "v"]);
    let get = cmd(&["GET", "auth:k"]);
    same_replies(
        port,
        reference.port,
        &[
            // Nothing runs before AUTH but AUTH, HELLO, QUIT; unknown commands and wrong arity
            // keep their own errors; wrong credentials of every shape are WRONGPASS.
            vec![
                get.clone(),
                cmd(&["PING"]),
                cmd(&["ECHO", "x"]),
                cmd(&["SELECT", "0"]),
                cmd(&["CLIENT", "ID"]),
                cmd(&["COMMAND", "COUNT"]),
                cmd(&["INFO"]),
                cmd(&["MGET", "a", "b"]),
                cmd(&["NOSUCH", "x"]),
                cmd(&["GET"]),
                b"GET a\r\n".to_vec(),
                cmd(&["HELLO", "3"]),
                cmd(&["HELLO"]),
                cmd(&["AUTH", "wrong"]),
                cmd(&["AUTH", "app", DEFAULT_PW]),
                cmd(&["AUTH", "default", APP_PW]),
                cmd(&["AUTH", "nobody", "x"]),
                cmd(&["AUTH", "a", "b", "c"]),
                cmd(&["AUTH"]),
                cmd(&["HELLO", "3", "AUTH", "app", "wrong"]),
                cmd(&["HELLO", "3", "AUTH", "default", "wrong", "FOO"]),
                cmd(&["HELLO", "3", "FOO", "AUTH", "default", DEFAULT_PW]),
                cmd(&["HELLO", "3", "AUTH", "default"]),
                cmd(&["HELLO", "4", "AUTH", "default", DEFAULT_PW]),
                get.clone(),
                // The right password; a wrong one afterwards does not log the client out.
                cmd(&["AUTH", DEFAULT_PW]),
                set.clone(),
                get.clone(),
                cmd(&["AUTH", "wrong"]),
                get.clone(),
            ],
            vec![cmd(&["AUTH", "app", APP_PW]), get.clone(), cmd(&["HELLO", "2", "AUTH", "app", "bad"]), get.clone()],
            vec![
                cmd(&["HELLO", "3", "AUTH", "app", APP_PW, "SETNAME", "n1"]),
                cmd(&["CLIENT", "GETNAME"]),
                get.clone(),
            ],
            // HELLO's options take effect as read: SETNAME before the NOAUTH, AUTH before the
            // syntax error.
            vec![cmd(&["HELLO", "3", "SETNAME", "n2"]), cmd(&["AUTH", DEFAULT_PW]), cmd(&["CLIENT", "GETNAME"])],
            vec![cmd(&["HELLO", "3", "AUTH", "default", DEFAULT_PW, "FOO"]), get.clone(), cmd(&["CLIENT", "GETNAME"])],
            // Unauthenticated clients get Redis's small protocol caps.
            vec![b"*11\r\n".to_vec()],
            vec![b"*2\r\n$16385\r\n".to_vec()],
            vec![cmd(&["QUIT"]), get.clone()],
        ],
    );

    // Authenticated clients (both users, pipelined AUTH) reach every slot, through nodes that
    // required the proxy's own password.
    let mut a = tcp(port);
    let mut reqs = vec![cmd(&["AUTH", "app", APP_PW])];
    for i in 0..40 {
        reqs.push(cmd(&["SET", &format!("auth:{i}"), &i.to_string()]));
    }
    let replies = exchange(&mut a, &reqs);
    assert!(replies.iter().all(|r| r == b"+OK\r\n"), "{:?}", show(&replies));
    let mut d = tcp(port);
    assert_eq!(one(&mut d, &["AUTH", DEFAULT_PW]), b"+OK\r\n");
    for i in 0..40 {
        let v = i.to_string();
        assert_eq!(one(&mut d, &["GET", &format!("auth:{i}")]), format!("${}\r\n{v}\r\n", v.len()).into_bytes());
    }
    let per_node: Vec<i64> = c.nodes.iter().map(|n| n.dbsize()).collect();
    assert!(per_node.iter().all(|&n| n >= 1), "every master holds keys: {per_node:?}");
    let keys: Vec<String> = (0..40).map(|i| format!("auth:{i}")).collect();
    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    assert_eq!(one(&mut d, &del), b":40\r\n", "a cross-slot DEL, split over the masters");

    // A wrong backend password is a clear error in the proxy's log, naming the node.
    let bad = write(dir.path(), "bad-backend.yaml", &text.replace(NODE_PW, "not-the-node-password"));
    let log_path = dir.path().join("bad-backend.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port2 = support::free_port();
    let listen2 = format!("127.0.0.1:{port2}");
    let child = Command::new(env!("CARGO_BIN_EXE_slotway"))
        .args(["proxy", "-c", &bad.display().to_string(), "--listen", &listen2])
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(log))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn proxy");
    let _p2 = Proxy { child, port: port2 };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("AUTH refused: WRONGPASS") && c.nodes.iter().any(|n| text.contains(&n.addr())) {
            break;
        }
        assert!(Instant::now() < deadline, "no AUTH error naming a node in the proxy's log: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
