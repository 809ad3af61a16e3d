//! Reads to replicas through `slotway proxy --read-from <policy>`, checked where it happens: each
//! node's own `INFO commandstats` says which node ran which command.
//!
//! The replica parts run against a real Redis 7 cluster (3 masters + 3 replicas) only: slotway
//! nodes have no replication yet. Against both kinds, a cluster without replicas shows that
//! `--read-from replica` falls back to the masters and every read still works.

mod support;

use slotway::cluster::topology::parse_shards;
use slotway::cluster::{key_slot, Health};
use slotway::resp::Frame;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::cluster::both;
use support::cluster::{query, Cluster, Kind};
use support::proxy::Proxy;
use support::Conn;

both!(no_replicas_reads_from_masters, no_replicas_reads_from_masters_redis, no_replicas_reads_from_masters_slotway);

/// One shard as the test sees it: node ports and slot ranges.
#[derive(Debug, Clone)]
struct ShardPorts {
    master: u16,
    replicas: Vec<u16>,
    slots: Vec<(u16, u16)>,
}

impl ShardPorts {
    fn owns(&self, key: &str) -> bool {
        let s = key_slot(key.as_bytes());
        self.slots.iter().any(|&(a, b)| (a..=b).contains(&s))
    }
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

fn text(port: u16, args: &[&str]) -> Result<String, String> {
    match query(port, args)? {
        Frame::Bulk(b) | Frame::Simple(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        other => Err(format!("{port} {args:?}: {other:?}")),
    }
}

/// The shards as node `port` sees them, with every node's health.
fn shards_seen_by(port: u16) -> Result<(Vec<ShardPorts>, bool), String> {
    let reply = query(port, &["CLUSTER", "SHARDS"])?;
    let topo = parse_shards(&reply, "127.0.0.1").map_err(|e| format!("{port}: {e}"))?;
    let all_online = topo.nodes().all(|n| n.health == Health::Online);
    let shards = topo
        .shards()
        .iter()
        .filter(|s| !s.slots.is_empty())
        .map(|s| ShardPorts {
            master: s.master.addr.port,
            replicas: s.replicas.iter().map(|r| r.addr.port).collect(),
            slots: s.slots.clone(),
        })
        .collect();
    Ok((shards, all_online))
}

fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':'))).map(|v| v.trim().to_string())
}

/// Every replica linked to its master and at the master's replication offset.
fn synced(shards: &[ShardPorts]) -> Result<(), String> {
    for s in shards {
        let m = text(s.master, &["INFO", "replication"])?;
        let m_off = info_field(&m, "master_repl_offset").ok_or("no master_repl_offset")?;
        for &r in &s.replicas {
            let i = text(r, &["INFO", "replication"])?;
            if info_field(&i, "master_link_status").as_deref() != Some("up") {
                return Err(format!("replica {r}: link to {} not up", s.master));
            }
            let r_off = info_field(&i, "slave_repl_offset").unwrap_or_default();
            if r_off != m_off {
                return Err(format!("replica {r} at offset {r_off}, master {} at {m_off}", s.master));
            }
        }
    }
    Ok(())
}

fn wait_synced(c: &Cluster, shards: &[ShardPorts]) {
    c.wait_for(Duration::from_secs(20), "replicas in sync", |_| synced(shards));
}

/// Writes a key into every shard (Redis calls a replica `loading` until its offset moves past 0),
/// then waits until every node reports every node online, and every replica in sync.
fn wait_replicas_ready(c: &Cluster, masters: usize) -> Vec<ShardPorts> {
    let (shards, _) = c.wait_for(Duration::from_secs(10), "CLUSTER SHARDS", |c| shards_seen_by(c.node(0).port));
    assert_eq!(shards.len(), masters, "{shards:?}");
    for s in &shards {
        let key = (0..).map(|i| format!("warmup:{i}")).find(|k| s.owns(k)).expect("a key");
        assert_eq!(query(s.master, &["SET", &key, "1"]), Ok(Frame::Simple("OK".into())));
    }
    // Node 0's view once every node sees one online replica per shard (the first view, taken
    // right after `--cluster create`, may not list them all yet).
    let shards = c.wait_for(Duration::from_secs(30), "every node seeing every replica online", |c| {
        for n in &c.nodes {
            let (seen, online) = shards_seen_by(n.port)?;
            if !online || seen.len() != masters || seen.iter().any(|s| s.replicas.len() != 1) {
                return Err(format!("node {} sees {seen:?} (all online: {online})", n.port));
            }
        }
        Ok(shards_seen_by(c.node(0).port)?.0)
    });
    wait_synced(c, &shards);
    shards
}

/// `cmdstat_<cmd>`'s `calls` and `rejected_calls` on the node at `port`.
fn cmdstat(port: u16, cmd: &str) -> (u64, u64) {
    let info = text(port, &["INFO", "commandstats"]).unwrap_or_else(|e| panic!("{e}"));
    let Some(line) = info_field(&info, &format!("cmdstat_{cmd}")) else { return (0, 0) };
    let get = |name: &str| -> u64 {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{port}: no {name} in {line}"))
    };
    (get("calls"), get("rejected_calls"))
}

fn reset_stats(ports: impl IntoIterator<Item = u16>) {
    for p in ports {
        assert_eq!(query(p, &["CONFIG", "RESETSTAT"]), Ok(Frame::Simple("OK".into())), "RESETSTAT on {p}");
    }
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("key:{i}")).collect()
}

fn distinct_slots(keys: &[String]) -> usize {
    keys.iter().map(|k| key_slot(k.as_bytes())).collect::<BTreeSet<_>>().len()
}

fn proxy_info(k: &mut Conn) -> String {
    let info = k.cmd(&["INFO"]);
    String::from_utf8_lossy(info.as_bytes().expect("INFO text")).into_owned()
}

/// Reads every key twice with GET, then all of them with one MGET and one EXISTS (split by slot
/// into one part per slot), checking the values.
fn read_all(k: &mut Conn, keys: &[String], value: impl Fn(&str) -> String) {
    for key in keys {
        for _ in 0..2 {
            assert_eq!(k.cmd(&["GET", key]), bulk(&value(key)), "GET {key}");
        }
    }
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    assert_eq!(k.cmd(&mget), Frame::Array(keys.iter().map(|key| bulk(&value(key))).collect()));
    mget[0] = "EXISTS";
    assert_eq!(k.cmd(&mget), Frame::Integer(keys.len() as i64));
}

/// Under each policy: GET/MGET/EXISTS counted on the nodes the policy names, and SETs on the
/// masters only (a replica counts the SETs it replicated, no more, and refused none).
#[test]
fn reads_follow_the_policy_redis() {
    assert!(support::redis_available(), "redis-server is not installed: run scripts/test, which installs it");
    let c = Cluster::create_replicated(Kind::Redis, 3, 1);
    let shards = wait_replicas_ready(&c, 3);
    let all_ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();
    let keys = keys(30);
    for s in &shards {
        assert!(keys.iter().any(|k| s.owns(k)), "no test key in {s:?}");
    }
    let nslots = distinct_slots(&keys) as u64;
    for policy in ["master", "replica", "prefer-replica", "round-robin"] {
        let p = Proxy::start_with(&c, &["--read-from", policy]);
        let mut k = p.conn();
        let value = |key: &str| format!("{policy}:{key}");
        for key in &keys {
            assert_eq!(k.cmd(&["SET", key, &value(key)]), Frame::Simple("OK".into()));
        }
        wait_synced(&c, &shards);
        reset_stats(all_ports.iter().copied());
        read_all(&mut k, &keys, value);
        for key in &keys {
            assert_eq!(k.cmd(&["SET", key, "after"]), Frame::Simple("OK".into()));
        }
        wait_synced(&c, &shards);

        let mut on_masters = [0u64; 3];
        let mut on_replicas = [0u64; 3];
        for s in &shards {
            let in_shard = keys.iter().filter(|k| s.owns(k)).count() as u64;
            let slots_in_shard = distinct_slots(&keys.iter().filter(|k| s.owns(k)).cloned().collect::<Vec<_>>());
            let r = s.replicas[0];
            let (m_get, r_get) = (cmdstat(s.master, "get"), cmdstat(r, "get"));
            let (m_mget, r_mget) = (cmdstat(s.master, "mget"), cmdstat(r, "mget"));
            let (m_exists, r_exists) = (cmdstat(s.master, "exists"), cmdstat(r, "exists"));
            let (m_set, r_set) = (cmdstat(s.master, "set"), cmdstat(r, "set"));
            let what = format!(
                "{policy}: shard {s:?}: get {m_get:?}/{r_get:?} mget {m_mget:?}/{r_mget:?} exists {m_exists:?}/{r_exists:?} set {m_set:?}/{r_set:?}"
            );
            // Nothing was redirected or refused anywhere.
            for (_, rejected) in [m_get, r_get, m_mget, r_mget, m_exists, r_exists, m_set, r_set] {
                assert_eq!(rejected, 0, "{what}");
            }
            // Writes: the master ran this shard's SETs; the replica only replicated them.
            assert_eq!(m_set.0, in_shard, "{what}");
            assert_eq!(r_set.0, m_set.0, "{what}");
            assert_eq!(m_get.0 + r_get.0, 2 * in_shard, "{what}");
            assert_eq!(m_mget.0 + r_mget.0, slots_in_shard as u64, "{what}");
            assert_eq!(m_exists.0 + r_exists.0, slots_in_shard as u64, "{what}");
            match policy {
                "master" => assert_eq!((r_get.0, r_mget.0, r_exists.0), (0, 0, 0), "{what}"),
                "replica" | "prefer-replica" => assert_eq!((m_get.0, m_mget.0, m_exists.0), (0, 0, 0), "{what}"),
                // Every key was read twice in a row: once from each of the shard's two nodes.
                _ => assert!(m_get.0 > 0 && r_get.0 > 0, "{what}"),
            }
            on_masters[0] += m_get.0;
            on_masters[1] += m_mget.0;
            on_masters[2] += m_exists.0;
            on_replicas[0] += r_get.0;
            on_replicas[1] += r_mget.0;
            on_replicas[2] += r_exists.0;
        }
        let n_get = 2 * keys.len() as u64;
        assert_eq!(on_masters[0] + on_replicas[0], n_get);
        assert_eq!(on_masters[1] + on_replicas[1], nslots);
        let info = proxy_info(&mut k);
        assert_eq!(info_field(&info, "proxy_read_from").as_deref(), Some(policy), "{info}");
        if policy != "master" {
            let to_replicas: u64 =
                info_field(&info, "proxy_reads_to_replicas").and_then(|v| v.parse().ok()).unwrap_or(0);
            assert_eq!(to_replicas, on_replicas.iter().sum::<u64>(), "{info}");
        }
    }
}

/// A replica killed under `--read-from replica`: the reads of its shard go to the master with no
/// error reaching the client, and back to the replica once it has returned and resynced.
#[test]
fn killed_replica_falls_back_to_master_redis() {
    assert!(support::redis_available(), "redis-server is not installed: run scripts/test, which installs it");
    let mut c = Cluster::create_replicated(Kind::Redis, 3, 1);
    let shards = wait_replicas_ready(&c, 3);
    let p = Proxy::start_with(&c, &["--read-from", "replica"]);
    let keys = keys(30);
    let mut k = p.conn();
    for key in &keys {
        assert_eq!(k.cmd(&["SET", key, key]), Frame::Simple("OK".into()));
    }
    wait_synced(&c, &shards);
    let victim = shards[0].clone();
    let replica = victim.replicas[0];
    let idx = c.nodes.iter().position(|n| n.port == replica).expect("replica node");
    let shard_keys: Vec<String> = keys.iter().filter(|k| victim.owns(k)).cloned().collect();

    // A reader keeps going through the kill; every reply must be the right value.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, keys, port) = (stop.clone(), keys.clone(), p.port);
        std::thread::spawn(move || {
            let mut k = Conn::connect(port);
            let (mut reads, mut worst, mut bad) = (0u64, Duration::ZERO, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                for key in &keys {
                    let t = Instant::now();
                    let got = k.cmd(&["GET", key]);
                    worst = worst.max(t.elapsed());
                    reads += 1;
                    if got != bulk(key) {
                        bad.push(format!("GET {key} -> {got:?}"));
                    }
                }
            }
            (reads, worst, bad)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    c.nodes[idx].kill();
    let killed = Instant::now();
    // Until the cluster agrees the replica failed (and past it, so the proxy's refresh sees it).
    c.wait_for(Duration::from_secs(20), "the killed replica flagged fail", |c| {
        let lines = c.node(0).nodes()?;
        match lines.iter().find(|l| l.addr.starts_with(&format!("127.0.0.1:{replica}@"))) {
            Some(l) if l.flags.iter().any(|f| f == "fail") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let failed_after = killed.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (reads, worst, bad) = reader.join().expect("reader");
    eprintln!(
        "replica {replica} killed: {reads} reads, worst read {worst:?}, flagged fail after {failed_after:?}, errors {}",
        bad.len()
    );
    assert!(bad.is_empty(), "client-visible errors after the kill: {bad:?}");

    // The shard's reads now go to its master; the other shards still read from their replicas.
    let live: Vec<u16> = c.nodes.iter().filter(|n| n.port != replica).map(|n| n.port).collect();
    reset_stats(live.iter().copied());
    read_all(&mut k, &keys, |key| key.to_string());
    for s in &shards {
        let in_shard = keys.iter().filter(|k| s.owns(k)).count() as u64;
        let m_get = cmdstat(s.master, "get");
        if s.master == victim.master {
            assert_eq!(m_get, (2 * in_shard, 0), "shard of the killed replica: {s:?}");
        } else {
            assert_eq!(m_get, (0, 0), "{s:?}");
            assert_eq!(cmdstat(s.replicas[0], "get"), (2 * in_shard, 0), "{s:?}");
        }
    }
    let info = proxy_info(&mut k);
    let failures: u64 = info_field(&info, "proxy_replica_read_failures").and_then(|v| v.parse().ok()).unwrap_or(0);
    eprintln!("proxy_replica_read_failures after the kill: {failures}");

    // Back: once it has resynced and the cluster calls it online again, it serves the reads.
    c.nodes[idx].restart();
    let back = Instant::now();
    c.wait_for(Duration::from_secs(30), "the replica online again everywhere", |c| {
        for n in &c.nodes {
            let (_, online) = shards_seen_by(n.port)?;
            if !online {
                return Err(format!("node {} does not see every node online", n.port));
            }
        }
        synced(&shards)
    });
    c.wait_for(Duration::from_secs(20), "reads of the shard served by the returned replica", |_| {
        reset_stats([replica, victim.master]);
        for key in &shard_keys {
            if k.cmd(&["GET", key]) != bulk(key) {
                return Err(format!("GET {key} wrong"));
            }
        }
        match cmdstat(replica, "get") {
            (n, 0) if n == shard_keys.len() as u64 => Ok(()),
            other => Err(format!("replica get stats {other:?}, master {:?}", cmdstat(victim.master, "get"))),
        }
    });
    eprintln!("replica {replica} serving reads again {:?} after its restart", back.elapsed());
}

/// No replicas (a slotway cluster has none yet): `--read-from replica` reads from the masters.
fn no_replicas_reads_from_masters(kind: Kind) {
    let c = Cluster::create(kind, 3);
    let p = Proxy::start_with(&c, &["--read-from", "replica"]);
    let mut k = p.conn();
    let keys = keys(30);
    for key in &keys {
        assert_eq!(k.cmd(&["SET", key, key]), Frame::Simple("OK".into()));
    }
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();
    reset_stats(ports.iter().copied());
    read_all(&mut k, &keys, |key| key.to_string());
    let gets: u64 = ports.iter().map(|&p| cmdstat(p, "get").0).sum();
    let mgets: u64 = ports.iter().map(|&p| cmdstat(p, "mget").0).sum();
    assert_eq!(gets, 2 * keys.len() as u64);
    assert_eq!(mgets, distinct_slots(&keys) as u64);
    let info = proxy_info(&mut k);
    assert_eq!(info_field(&info, "proxy_read_from").as_deref(), Some("replica"), "{info}");
    assert_eq!(info_field(&info, "proxy_reads_to_replicas").as_deref(), Some("0"), "{info}");
}
