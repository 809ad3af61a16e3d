//! End to end: clusters made and changed only by the unmodified tools (`redis-cli --cluster`,
//! `redis-benchmark --cluster`, the `redis` crate's cluster client), every scenario run twice: once on
//! Debian's real redis-server 7.0 (which shows that the test itself is right) and once on slotway nodes.

mod support;

use redis::cluster::ClusterClientBuilder;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::cluster::both;
use support::cluster::{check_is_clean, cli_cluster, run_bounded, Cluster, Kind, NODE_TIMEOUT_MS};
use support::rng::Rng;

both!(create_and_check, create_and_check_redis, create_and_check_slotway);
both!(reshard_under_writes, reshard_under_writes_redis, reshard_under_writes_slotway);
both!(add_node_and_rebalance, add_node_and_rebalance_redis, add_node_and_rebalance_slotway);
both!(del_node_after_emptying, del_node_after_emptying_redis, del_node_after_emptying_slotway);
both!(client_mixed_workload, client_mixed_workload_redis, client_mixed_workload_slotway);
both!(benchmark_cluster, benchmark_cluster_redis, benchmark_cluster_slotway);
both!(restart_rejoins, restart_rejoins_redis, restart_rejoins_slotway);
both!(fix_open_slot, fix_open_slot_redis, fix_open_slot_slotway);
both!(import_from_standalone, import_from_standalone_redis, import_from_standalone_slotway);
both!(open_slot_survives_restart, open_slot_survives_restart_redis, open_slot_survives_restart_slotway);

/// Two slotway nodes and one real redis-server in one cluster: the bus, CLUSTER replies and MIGRATE
/// payloads must be Redis's own for `create`, `check` and a reshard each way to work, and the typed
/// data written before must read back the same.
#[test]
fn mixed_cluster_redis_and_slotway() {
    assert!(support::redis_available(), "redis-server is not installed: run scripts/test, which installs it");
    let c = Cluster::create_with(&[Kind::Slotway, Kind::Slotway, Kind::Redis]);
    for i in 0..3 {
        c.wait_check_clean(i, Duration::from_secs(10), "mixed cluster after create");
    }
    assert_views_agree(&c, 3);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client = ClusterClientBuilder::new(c.urls())
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let models = rt.block_on(async {
        let con = client.get_async_connection().await.expect("async cluster connection");
        let mut models = Vec::new();
        for t in 0..2 {
            models.push(workload(con.clone(), t, 2, 800).await);
        }
        models
    });
    let (slotway_id, redis_id) = (c.node(0).myid(), c.node(2).myid());
    for (from, to, what) in [(&redis_id, &slotway_id, "redis -> slotway"), (&slotway_id, &redis_id, "slotway -> redis")]
    {
        let out = cli_cluster(
            "reshard",
            &[&c.node(1).addr(), "--cluster-from", from, "--cluster-to", to, "--cluster-slots", "400", "--cluster-yes"],
            CLI_TIMEOUT,
        );
        assert!(out.ok, "mixed: reshard {what} failed: {}\n{}", out.describe(), c.logs());
        c.wait_check_clean(2, Duration::from_secs(10), what);
    }
    rt.block_on(async {
        let con = client.get_async_connection().await.expect("async cluster connection");
        for m in &models {
            compare(con.clone(), m).await;
        }
    });
}

/// A bound, not an expectation: a debug-build slotway moves a slot in ~15 ms where Redis takes ~1 ms.
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// A sync cluster client on the given nodes, with bounded timeouts so a hung node fails the test.
fn client(urls: &[String]) -> redis::cluster::ClusterConnection {
    ClusterClientBuilder::new(urls.to_vec())
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(5))
        .retries(8)
        .build()
        .expect("cluster client")
        .get_connection()
        .expect("cluster connection")
}

/// Every node's own CLUSTER NODES view: `n` masters, all 16384 slots, everyone connected.
fn assert_views_agree(c: &Cluster, n: usize) {
    for node in &c.nodes {
        let lines = node.nodes().unwrap_or_else(|e| panic!("{:?}: CLUSTER NODES on {}: {e}", c.kind, node.port));
        let masters: Vec<_> = lines.iter().filter(|l| l.flags.iter().any(|f| f == "master")).collect();
        assert_eq!(masters.len(), n, "{:?}: node {} sees {} masters: {lines:#?}", c.kind, node.port, masters.len());
        let slots: usize = masters.iter().map(|l| l.slot_count()).sum();
        assert_eq!(slots, 16384, "{:?}: node {} sees {slots} slots owned: {lines:#?}", c.kind, node.port);
        assert!(
            lines.iter().all(|l| l.link == "connected"),
            "{:?}: node {} has a disconnected link: {lines:#?}",
            c.kind,
            node.port
        );
        assert_eq!(lines.iter().filter(|l| l.is_myself()).count(), 1, "{:?}: one myself line: {lines:#?}", c.kind);
    }
}

fn create_and_check(kind: Kind) {
    let c = Cluster::create(kind, 3);
    let out = c.check(0);
    assert!(check_is_clean(&out), "{kind:?}: check after create: {}", out.describe());
    // check names every master with its share of the slots.
    for n in &c.nodes {
        assert!(out.stdout.contains(&n.addr()), "{kind:?}: check does not list {}: {}", n.addr(), out.describe());
    }
    assert!(out.stdout.contains("3 masters"), "{kind:?}: {}", out.describe());
    assert_views_agree(&c, 3);
    // Every node knows the same ids.
    let ids: BTreeSet<String> = c.nodes.iter().map(|n| n.myid()).collect();
    assert_eq!(ids.len(), 3, "{kind:?}: ids not distinct: {ids:?}");
    for n in &c.nodes {
        let seen: BTreeSet<String> = n.nodes().expect("nodes").into_iter().map(|l| l.id).collect();
        assert_eq!(seen, ids, "{kind:?}: node {} knows other ids", n.port);
    }
    // `redis-cli -c` follows MOVED: keys written through one node are read back through another.
    let (p0, p2) = (c.node(0).port.to_string(), c.node(2).port.to_string());
    for i in 0..12 {
        let (k, v) = (format!("cli:{i}"), format!("v{i}"));
        let args = |p: &str, rest: &[&str]| -> Vec<String> {
            ["-c", "-p", p].iter().chain(rest).map(|s| s.to_string()).collect()
        };
        let set = run_bounded("redis-cli", &args(&p0, &["SET", &k, &v]), Duration::from_secs(10));
        assert!(set.ok && set.stdout.trim() == "OK", "{kind:?}: redis-cli -c SET {k}: {}", set.describe());
        let get = run_bounded("redis-cli", &args(&p2, &["GET", &k]), Duration::from_secs(10));
        assert!(get.ok && get.stdout.trim() == v, "{kind:?}: redis-cli -c GET {k}: {}", get.describe());
    }
}

/// What a writer was told: the value each key must hold, or the values it may hold where a write
/// failed (an error does not say whether the write happened); for counters, the acknowledged INCRs
/// and the failed ones that may have happened.
#[derive(Default)]
struct WriteLog {
    acked: HashMap<String, String>,
    maybe: HashMap<String, Vec<String>>,
    counters: HashMap<String, (i64, i64)>,
    oks: u64,
    errors: Vec<String>,
}

impl WriteLog {
    fn set_result(&mut self, key: String, val: String, ok: bool) {
        if ok {
            self.maybe.remove(&key);
            self.acked.insert(key, val);
        } else {
            self.maybe.entry(key).or_default().push(val);
        }
    }
    fn error(&mut self, what: String) {
        if self.errors.len() < 20 {
            self.errors.push(what);
        }
    }
}

/// Writes round after round until `stop`, through the cluster client: SET over `keys` keys, INCR
/// on counters (a lost or doubled write shows in the count), and MSET of two keys in one hash tag
/// (which a migration can split: TRYAGAIN, retried by the client).
fn writer(
    urls: Vec<String>,
    keys: usize,
    stop: Arc<AtomicBool>,
    warm: Arc<AtomicBool>,
    acks: Arc<AtomicU64>,
) -> WriteLog {
    let mut con = client(&urls);
    let mut log = WriteLog::default();
    let (mut i, mut sets): (u64, usize) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let val = format!("v{i}");
        let j = (i / 4) % 300;
        let ok = match i % 4 {
            2 => {
                let key = format!("cnt:{j}");
                let r: redis::RedisResult<i64> = redis::cmd("INCR").arg(&key).query(&mut con);
                let e = log.counters.entry(key.clone()).or_insert((0, 0));
                match r {
                    Ok(_) => {
                        e.0 += 1;
                        true
                    }
                    Err(err) => {
                        e.1 += 1;
                        let what = format!("INCR {key}: {err:?} (acked {} before)", e.0);
                        log.error(what);
                        false
                    }
                }
            }
            3 => {
                let (a, b) = (format!("{{p{j}}}a"), format!("{{p{j}}}b"));
                let r: redis::RedisResult<String> =
                    redis::cmd("MSET").arg(&a).arg(&val).arg(&b).arg(&val).query(&mut con);
                let ok = matches!(&r, Ok(s) if s == "OK");
                if !ok {
                    log.error(format!("MSET {a} {b}: {r:?}"));
                }
                log.set_result(a, val.clone(), ok);
                log.set_result(b, val, ok);
                ok
            }
            _ => {
                let key = format!("w:{}", sets % keys);
                sets += 1;
                let r: redis::RedisResult<String> = redis::cmd("SET").arg(&key).arg(&val).query(&mut con);
                let ok = matches!(&r, Ok(s) if s == "OK");
                if !ok {
                    log.error(format!("SET {key}: {r:?}"));
                }
                log.set_result(key, val, ok);
                ok
            }
        };
        if ok {
            log.oks += 1;
            acks.fetch_add(1, Ordering::Relaxed);
        }
        i += 1;
        if sets == keys {
            warm.store(true, Ordering::Relaxed);
        }
    }
    warm.store(true, Ordering::Relaxed);
    log
}

/// Every key the log knows is readable with a value it may hold; the nodes hold no extra copies.
fn verify_log(c: &Cluster, log: &WriteLog, masters: &[usize]) {
    let urls: Vec<String> = masters.iter().map(|&i| format!("redis://127.0.0.1:{}/", c.nodes[i].port)).collect();
    let mut con = client(&urls);
    let mut lost = Vec::new();
    let mut all_keys: BTreeSet<&String> = log.acked.keys().collect();
    all_keys.extend(log.maybe.keys());
    for key in &all_keys {
        let got: Option<String> = redis::cmd("GET")
            .arg(key.as_str())
            .query(&mut con)
            .unwrap_or_else(|e| panic!("{:?}: GET {key}: {e}", c.kind));
        let mut allowed: Vec<Option<String>> =
            log.maybe.get(*key).into_iter().flatten().map(|v| Some(v.clone())).collect();
        match log.acked.get(*key) {
            Some(v) => allowed.push(Some(v.clone())),
            None => allowed.push(None),
        }
        if !allowed.contains(&got) {
            lost.push(format!("{key}: got {got:?}, expected one of {allowed:?}"));
        }
    }
    for (key, &(acked, maybe)) in &log.counters {
        let got: Option<i64> = redis::cmd("GET")
            .arg(key.as_str())
            .query(&mut con)
            .unwrap_or_else(|e| panic!("{:?}: GET {key}: {e}", c.kind));
        let got = got.unwrap_or(0);
        if got < acked || got > acked + maybe {
            lost.push(format!("{key}: counter is {got}, {acked} INCRs acknowledged (+{maybe} uncertain)"));
        }
    }
    assert!(
        lost.is_empty(),
        "{:?}: {} of {} keys lost or wrong: {:?}",
        c.kind,
        lost.len(),
        all_keys.len() + log.counters.len(),
        &lost[..lost.len().min(10)]
    );
    // No key left behind on a node that no longer owns its slot.
    let total: i64 = masters.iter().map(|&i| c.nodes[i].dbsize()).sum();
    let present = (log.acked.len() + log.counters.values().filter(|c| c.0 > 0).count()) as i64;
    let at_most = (all_keys.len() + log.counters.len()) as i64;
    assert!(
        total >= present && total <= at_most,
        "{:?}: the masters hold {total} keys, the writer made between {present} and {at_most}",
        c.kind
    );
}

fn reshard_under_writes(kind: Kind) {
    let c = Cluster::create(kind, 3);
    let (from, to) = (c.node(0).myid(), c.node(1).myid());
    let before_to = slots_of(&c, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let warm = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let urls = c.urls();
    let w = {
        let (stop, warm, acks) = (stop.clone(), warm.clone(), acks.clone());
        std::thread::spawn(move || writer(urls, 3000, stop, warm, acks))
    };
    // Let every key exist before the slots move, so the migration has keys to carry.
    let t = Instant::now();
    while !warm.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (acks_before, t) = (acks.load(Ordering::Relaxed), Instant::now());
    let out = cli_cluster(
        "reshard",
        &[&c.node(0).addr(), "--cluster-from", &from, "--cluster-to", &to, "--cluster-slots", "1000", "--cluster-yes"],
        CLI_TIMEOUT,
    );
    let during = acks.load(Ordering::Relaxed) - acks_before;
    eprintln!("{kind:?}: reshard of 1000 slots took {:?}, {during} writes acknowledged meanwhile", t.elapsed());
    // A little more writing against the new layout before stopping.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let log = w.join().expect("writer thread");
    assert!(out.ok, "{kind:?}: reshard failed: {}\n{}", out.describe(), c.logs());
    assert!(log.oks > 3000, "{kind:?}: the writer only got {} OKs (errors: {:?})", log.oks, log.errors);
    assert!(log.errors.is_empty(), "{kind:?}: writer errors during reshard: {:?}", log.errors);
    assert!(during > 100, "{kind:?}: only {during} writes landed while the reshard ran: not a test under writes");
    assert_eq!(slots_of(&c, 1), before_to + 1000, "{kind:?}: target did not gain 1000 slots");
    c.wait_check_clean(0, Duration::from_secs(10), "after reshard");
    verify_log(&c, &log, &[0, 1, 2]);
}

/// Slots node `i` owns according to its own CLUSTER NODES.
fn slots_of(c: &Cluster, i: usize) -> usize {
    let lines = c.node(i).nodes().unwrap_or_else(|e| panic!("{:?}: CLUSTER NODES: {e}", c.kind));
    lines.iter().find(|l| l.is_myself()).map(|l| l.slot_count()).unwrap_or(0)
}

/// Writes `n` keys through the cluster client and returns the log.
fn load_keys(c: &Cluster, n: usize) -> WriteLog {
    let mut con = client(&c.urls());
    let mut log = WriteLog::default();
    for i in 0..n {
        let (k, v) = (format!("k:{i}"), format!("val-{i}"));
        let r: String =
            redis::cmd("SET").arg(&k).arg(&v).query(&mut con).unwrap_or_else(|e| panic!("{:?}: SET {k}: {e}", c.kind));
        assert_eq!(r, "OK");
        log.acked.insert(k, v);
        log.oks += 1;
    }
    log
}

fn add_node_and_rebalance(kind: Kind) {
    let mut c = Cluster::create(kind, 3);
    let log = load_keys(&c, 1000);
    let new = c.add_empty_node();
    let id = c.node(new).myid();
    // Weight 0.25 for the newcomer: it should get 16384 * 0.25 / 3.25 = 1260 slots. (Equal weights
    // would move 4096 slots, which takes a minute on a debug build: too slow for CI.)
    let weight = format!("{id}=0.25");
    let out = cli_cluster(
        "rebalance",
        &[&c.node(0).addr(), "--cluster-weight", &weight, "--cluster-use-empty-masters"],
        CLI_TIMEOUT,
    );
    assert!(out.ok, "{kind:?}: rebalance failed: {}\n{}", out.describe(), c.logs());
    let got = slots_of(&c, new);
    assert!((1200..=1300).contains(&got), "{kind:?}: new node owns {got} slots after rebalance: {}", out.describe());
    c.wait_check_clean(0, Duration::from_secs(10), "after rebalance");
    assert_views_agree(&c, 4);
    verify_log(&c, &log, &[0, 1, 2, 3]);
}

fn del_node_after_emptying(kind: Kind) {
    let mut c = Cluster::create(kind, 3);
    // A fourth master with a few hundred slots and keys in them, so that emptying it moves data.
    let extra = c.add_empty_node();
    let gone = c.node(extra).myid();
    let (id0, id1) = (c.node(0).myid(), c.node(1).myid());
    let reshard = |from: &str, to: &str, n: &str, what: &str| {
        let out = cli_cluster(
            "reshard",
            &[&c.node(0).addr(), "--cluster-from", from, "--cluster-to", to, "--cluster-slots", n, "--cluster-yes"],
            CLI_TIMEOUT,
        );
        assert!(out.ok, "{kind:?}: reshard {what} failed: {}\n{}", out.describe(), c.logs());
    };
    reshard(&id0, &gone, "300", "onto the extra node");
    assert_eq!(slots_of(&c, extra), 300, "{kind:?}: extra node slots after the first reshard");
    c.wait_check_clean(0, Duration::from_secs(10), "after filling the extra node");
    let log = load_keys(&c, 1000);
    let held = c.node(extra).dbsize();
    assert!(held > 0, "{kind:?}: no key landed on the extra node");
    reshard(&gone, &id1, "300", "emptying the extra node");
    assert_eq!(slots_of(&c, extra), 0, "{kind:?}: extra node still owns slots after reshard");
    let out = cli_cluster("del-node", &[&c.node(0).addr(), &gone], CLI_TIMEOUT);
    assert!(out.ok, "{kind:?}: del-node failed: {}\n{}", out.describe(), c.logs());
    let absent = |c: &Cluster| -> Result<(), String> {
        for i in 0..3 {
            let lines = c.node(i).nodes()?;
            if let Some(l) = lines.iter().find(|l| l.id == gone) {
                return Err(format!("node {} still lists the deleted node: {}", c.node(i).port, l.raw));
            }
        }
        Ok(())
    };
    absent(&c).unwrap_or_else(|e| panic!("{kind:?} right after del-node: {e}"));
    // The deleted node was reset by del-node (CLUSTER RESET SOFT): it knows only itself.
    let lines = c.node(extra).nodes().expect("CLUSTER NODES on the deleted node");
    assert_eq!(lines.len(), 1, "{kind:?}: the deleted node still knows others: {lines:#?}");
    // Gossip must not bring it back (FORGET bans it): look again after a few ping rounds.
    std::thread::sleep(Duration::from_millis(NODE_TIMEOUT_MS));
    absent(&c).unwrap_or_else(|e| panic!("{kind:?} {}ms after del-node: {e}", NODE_TIMEOUT_MS));
    c.wait_check_clean(0, Duration::from_secs(10), "after del-node");
    let out = c.check(0);
    assert!(out.stdout.contains("3 masters"), "{kind:?}: {}", out.describe());
    verify_log(&c, &log, &[0, 1, 2]);
}

/// CRC16/XMODEM of Redis's key hashing, written out here so the test does not trust slotway's.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// One hash tag per slot, so a workload can touch all 16384 of them.
fn tag_per_slot() -> Vec<String> {
    let mut tags: Vec<Option<String>> = vec![None; 16384];
    let mut left = 16384;
    let mut i: u64 = 0;
    while left > 0 {
        let t = format!("t{i}");
        let slot = (crc16(t.as_bytes()) % 16384) as usize;
        if tags[slot].is_none() {
            tags[slot] = Some(t);
            left -= 1;
        }
        i += 1;
    }
    tags.into_iter().map(|t| t.unwrap_or_default()).collect()
}

/// The expected contents of one task's keys.
#[derive(Default)]
struct Model {
    strings: BTreeMap<String, String>,
    counters: BTreeMap<String, i64>,
    hashes: BTreeMap<String, BTreeMap<String, String>>,
    lists: BTreeMap<String, VecDeque<String>>,
    sets: BTreeMap<String, BTreeSet<String>>,
    zsets: BTreeMap<String, BTreeMap<String, i64>>,
}

type Con = redis::cluster_async::ClusterConnection;

async fn q<T: redis::FromRedisValue>(con: &mut Con, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query_async(con).await {
        Ok(v) => v,
        Err(e) => panic!("{args:?}: {e}"),
    }
}

/// Random operations on the keys of task `t` (entity ids `i` with `i % tasks == t`), each reply
/// checked against the model as it comes; returns the model for the final comparison.
async fn workload(mut con: Con, t: usize, tasks: usize, ops: usize) -> Model {
    let mut m = Model::default();
    let mut rng = Rng::new(0x5107_0000 + t as u64);
    let ids: Vec<usize> = (0..400).filter(|i| i % tasks == t).collect();
    for n in 0..ops {
        let i = *rng.pick(&ids);
        let v = format!("x{n}");
        match rng.below(8) {
            0 => {
                let k = format!("s:{i}");
                let r: String = q(&mut con, &["SET", &k, &v]).await;
                assert_eq!(r, "OK");
                m.strings.insert(k.clone(), v);
                let got: Option<String> = q(&mut con, &["GET", &k]).await;
                assert_eq!(got.as_ref(), m.strings.get(&k), "GET {k}");
            }
            1 => {
                let k = format!("c:{i}");
                let got: i64 = q(&mut con, &["INCR", &k]).await;
                let e = m.counters.entry(k.clone()).or_insert(0);
                *e += 1;
                assert_eq!(got, *e, "INCR {k}");
            }
            2 => {
                let k = format!("h:{i}");
                let f = format!("f{}", rng.below(10));
                let got: i64 = q(&mut con, &["HSET", &k, &f, &v]).await;
                let h = m.hashes.entry(k.clone()).or_default();
                assert_eq!(got, i64::from(h.insert(f, v).is_none()), "HSET {k}");
            }
            3 => {
                let k = format!("l:{i}");
                let l = m.lists.entry(k.clone()).or_default();
                let got: i64 = if rng.one_in(2) {
                    l.push_back(v.clone());
                    q(&mut con, &["RPUSH", &k, &v]).await
                } else {
                    l.push_front(v.clone());
                    q(&mut con, &["LPUSH", &k, &v]).await
                };
                assert_eq!(got as usize, l.len(), "push {k}");
            }
            4 => {
                let k = format!("set:{i}");
                let mem = format!("m{}", rng.below(20));
                let got: i64 = q(&mut con, &["SADD", &k, &mem]).await;
                assert_eq!(got, i64::from(m.sets.entry(k.clone()).or_default().insert(mem)), "SADD {k}");
            }
            5 => {
                let k = format!("z:{i}");
                let mem = format!("m{}", rng.below(20));
                let score = rng.range(-1000, 1000);
                let got: i64 = q(&mut con, &["ZADD", &k, &score.to_string(), &mem]).await;
                let new = m.zsets.entry(k.clone()).or_default().insert(mem, score).is_none();
                assert_eq!(got, i64::from(new), "ZADD {k}");
            }
            6 => {
                // Multi-key within one hash tag: one slot, so the cluster accepts it.
                let (a, b, z) = (format!("{{mk{i}}}a"), format!("{{mk{i}}}b"), format!("{{mk{i}}}none"));
                let v2 = format!("y{n}");
                let r: String = q(&mut con, &["MSET", &a, &v, &b, &v2]).await;
                assert_eq!(r, "OK");
                m.strings.insert(a.clone(), v.clone());
                m.strings.insert(b.clone(), v2.clone());
                let got: Vec<Option<String>> = q(&mut con, &["MGET", &a, &b, &z]).await;
                assert_eq!(got, vec![Some(v), Some(v2), None], "MGET {a} {b} {z}");
            }
            _ => {
                let k = format!("s:{i}");
                let got: Option<String> = q(&mut con, &["GET", &k]).await;
                assert_eq!(got.as_ref(), m.strings.get(&k), "GET {k}");
            }
        }
    }
    m
}

/// Reads every key of the model back and compares whole values.
async fn compare(mut con: Con, m: &Model) {
    for (k, v) in &m.strings {
        let got: Option<String> = q(&mut con, &["GET", k]).await;
        assert_eq!(got.as_ref(), Some(v), "final GET {k}");
    }
    for (k, v) in &m.counters {
        let got: i64 = q(&mut con, &["GET", k]).await;
        assert_eq!(got, *v, "final counter {k}");
    }
    for (k, v) in &m.hashes {
        let got: BTreeMap<String, String> = q(&mut con, &["HGETALL", k]).await;
        assert_eq!(&got, v, "final HGETALL {k}");
    }
    for (k, v) in &m.lists {
        let got: Vec<String> = q(&mut con, &["LRANGE", k, "0", "-1"]).await;
        assert_eq!(got, v.iter().cloned().collect::<Vec<_>>(), "final LRANGE {k}");
    }
    for (k, v) in &m.sets {
        let got: BTreeSet<String> = q(&mut con, &["SMEMBERS", k]).await;
        assert_eq!(&got, v, "final SMEMBERS {k}");
    }
    for (k, v) in &m.zsets {
        let got: Vec<(String, i64)> = q(&mut con, &["ZRANGE", k, "0", "-1", "WITHSCORES"]).await;
        let mut want: Vec<(String, i64)> = v.iter().map(|(m, s)| (m.clone(), *s)).collect();
        want.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        assert_eq!(got, want, "final ZRANGE {k}");
    }
}

fn client_mixed_workload(kind: Kind) {
    let c = Cluster::create(kind, 3);
    let urls = c.urls();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let client = ClusterClientBuilder::new(urls)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let con = client.get_async_connection().await.expect("async cluster connection");
        // Every slot once: a key per slot written then read back, 16 requests in flight.
        let tags = Arc::new(tag_per_slot());
        let mut set = tokio::task::JoinSet::new();
        let lanes = 16;
        for lane in 0..lanes {
            let (mut con, tags) = (con.clone(), tags.clone());
            set.spawn(async move {
                for slot in (lane..16384).step_by(lanes) {
                    let k = format!("{{{}}}slot", tags[slot]);
                    let r: String = q(&mut con, &["SET", &k, &slot.to_string()]).await;
                    assert_eq!(r, "OK");
                }
                for slot in (lane..16384).step_by(lanes) {
                    let k = format!("{{{}}}slot", tags[slot]);
                    let got: String = q(&mut con, &["GET", &k]).await;
                    assert_eq!(got, slot.to_string(), "GET {k}");
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("slot lane");
        }
        // Mixed types, eight tasks on disjoint keys sharing the one multiplexed connection.
        let tasks = 8;
        let mut set = tokio::task::JoinSet::new();
        for t in 0..tasks {
            let con = con.clone();
            set.spawn(async move { workload(con, t, tasks, 600).await });
        }
        let mut models = Vec::new();
        while let Some(r) = set.join_next().await {
            models.push(r.expect("workload task"));
        }
        for m in &models {
            compare(con.clone(), m).await;
        }
    });
    // Slot keys, 16384 of them, plus the model's: the keyspace is exactly what was written.
    let total = c.dbsize_total();
    assert!(total > 16384, "{kind:?}: only {total} keys in the cluster");
    for n in &c.nodes {
        let held = n.dbsize();
        assert!(held > 4000, "{kind:?}: node {} holds {held} keys", n.port);
    }
}

fn benchmark_cluster(kind: Kind) {
    let c = Cluster::create(kind, 3);
    let port = c.node(0).port.to_string();
    let args: Vec<String> = ["--cluster", "-h", "127.0.0.1", "-p", &port, "-t", "set,get", "-n", "100000", "-q"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = run_bounded("redis-benchmark", &args, Duration::from_secs(180));
    let text = format!("{}\n{}", out.stdout, out.stderr);
    assert!(out.ok, "{kind:?}: redis-benchmark failed: {}", out.describe());
    let bad: Vec<&str> = text
        .split(['\n', '\r'])
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("moved") || l.contains("ask ") || l.contains("clusterdown")
        })
        .collect();
    assert!(bad.is_empty(), "{kind:?}: redis-benchmark printed errors: {bad:?}\n{}", out.describe());
    for t in ["SET: ", "GET: "] {
        assert!(
            text.split(['\n', '\r']).any(|l| l.starts_with(t) && l.contains("requests per second")),
            "{kind:?}: no {t} result line: {}",
            out.describe()
        );
    }
    eprintln!("{kind:?} redis-benchmark --cluster: {}", out.stdout.split('\r').next_back().unwrap_or("").trim());
}

fn restart_rejoins(kind: Kind) {
    let mut c = Cluster::create(kind, 3);
    let id = c.node(1).myid();
    let myself = |c: &Cluster| {
        let lines = c.node(1).nodes().unwrap_or_else(|e| panic!("{kind:?}: CLUSTER NODES: {e}"));
        lines.into_iter().find(|l| l.is_myself()).expect("myself line")
    };
    let before = myself(&c);
    c.nodes[1].kill();
    // The others detect the death: PFAIL after the node timeout, FAIL once both agree.
    c.wait_for(Duration::from_secs(5 * NODE_TIMEOUT_MS / 1000 + 5), "the killed node marked fail", |c| {
        for i in [0, 2] {
            let lines = c.node(i).nodes()?;
            let l = lines.iter().find(|l| l.id == id).ok_or_else(|| format!("node {i} forgot {id}"))?;
            if !l.flags.iter().any(|f| f == "fail") {
                return Err(format!("node {i}: {}", l.raw));
            }
            let state = c.node(i).cluster_state()?;
            if state != "fail" {
                return Err(format!("node {i} cluster_state {state} with a third of the slots dead"));
            }
        }
        Ok(())
    });
    c.nodes[1].restart();
    assert_eq!(c.node(1).myid(), id, "{kind:?}: restarted node has a new id");
    // nodes.conf brought back its epoch and slots, not only its name.
    let after = myself(&c);
    assert_eq!(
        (&after.config_epoch, &after.slots),
        (&before.config_epoch, &before.slots),
        "{kind:?}: restarted node's own line changed:\nbefore {}\nafter  {}",
        before.raw,
        after.raw
    );
    c.wait_ok(Duration::from_secs(30));
    c.wait_for(Duration::from_secs(10), "everyone seeing the node healthy", |c| {
        for n in &c.nodes {
            let lines = n.nodes()?;
            let l = lines.iter().find(|l| l.id == id).ok_or_else(|| format!("{} forgot {id}", n.port))?;
            if l.flags.iter().any(|f| f.contains("fail")) || l.link != "connected" {
                return Err(format!("{}: {}", n.port, l.raw));
            }
        }
        Ok(())
    });
    c.wait_check_clean(0, Duration::from_secs(10), "after restart");
    assert_views_agree(&c, 3);
    assert!(c.nodes[1].nodes_conf().exists());
    // The rejoined node serves its slots again.
    let mut con = client(&c.urls());
    for i in 0..200 {
        let k = format!("after:{i}");
        let r: String = redis::cmd("SET").arg(&k).arg(i).query(&mut con).expect("SET after restart");
        assert_eq!(r, "OK");
    }
}

/// A hash tag whose keys hash to `slot`.
fn tag_for_slot(slot: u16) -> String {
    (0u64..).map(|i| format!("t{i}")).find(|t| crc16(t.as_bytes()) % 16384 == slot).expect("every slot has a tag")
}

/// A migration left half done by hand (slot open on both sides, keys split between them) is seen by
/// `--cluster check` and closed by `--cluster fix`, with every key kept.
fn fix_open_slot(kind: Kind) {
    let c = Cluster::create(kind, 3);
    let slot: u16 = 100; // owned by node 0 after create
    let tag = tag_for_slot(slot);
    let keys: Vec<String> = (0..20).map(|i| format!("{{{tag}}}k{i}")).collect();
    let (id0, id1) = (c.node(0).myid(), c.node(1).myid());
    let ok = |r: Result<slotway::resp::Frame, String>, what: &str| match r {
        Ok(slotway::resp::Frame::Simple(s)) if &s[..] == b"OK" => {}
        other => panic!("{kind:?}: {what}: {other:?}"),
    };
    for k in &keys {
        ok(c.node(0).cmd(&["SET", k, &format!("val-{k}")]), "SET");
    }
    let s = slot.to_string();
    ok(c.node(1).cmd(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &id0]), "SETSLOT IMPORTING");
    ok(c.node(0).cmd(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &id1]), "SETSLOT MIGRATING");
    let port1 = c.node(1).port.to_string();
    for k in &keys[..10] {
        ok(c.node(0).cmd(&["MIGRATE", "127.0.0.1", &port1, k, "0", "5000"]), "MIGRATE");
    }
    let out = c.check(0);
    assert!(!check_is_clean(&out), "{kind:?}: check calls an open slot clean: {}", out.describe());
    assert!(
        out.stdout.contains(&format!("[WARNING] The following slots are open: {slot}")),
        "{kind:?}: check does not name the open slot: {}",
        out.describe()
    );
    let out = cli_cluster("fix", &[&c.node(0).addr(), "--cluster-yes"], CLI_TIMEOUT);
    assert!(out.ok, "{kind:?}: fix failed: {}\n{}", out.describe(), c.logs());
    c.wait_check_clean(0, Duration::from_secs(10), "after fix");
    let mut con = client(&c.urls());
    for k in &keys {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut con).expect("GET after fix");
        assert_eq!(got, Some(format!("val-{k}")), "{kind:?}: {k} after fix");
    }
    let owners: Vec<usize> = (0..3).filter(|&i| slots_of(&c, i) > 0 && owns(&c, i, slot)).collect();
    assert_eq!(owners.len(), 1, "{kind:?}: slot {slot} owners after fix: {owners:?}");
}

/// Whether node `i` says (in its own CLUSTER NODES line) that it owns `slot`.
fn owns(c: &Cluster, i: usize, slot: u16) -> bool {
    let lines = c.node(i).nodes().unwrap_or_else(|e| panic!("{:?}: CLUSTER NODES: {e}", c.kind));
    let me = lines.into_iter().find(|l| l.is_myself()).expect("myself line");
    me.slots.iter().filter(|s| !s.starts_with('[')).any(|s| match s.split_once('-') {
        Some((a, b)) => (a.parse().unwrap_or(u16::MAX)..=b.parse().unwrap_or(0)).contains(&slot),
        None => s.parse() == Ok(slot),
    })
}

/// nodes.conf keeps an open slot (`[slot->-id]` / `[slot-<-id]`): both sides restarted still show
/// it, `--cluster check` still sees it, and `--cluster fix` closes it.
fn open_slot_survives_restart(kind: Kind) {
    let mut c = Cluster::create(kind, 3);
    let slot = "200"; // owned by node 0 after create, no keys in it
    let (id0, id1) = (c.node(0).myid(), c.node(1).myid());
    for (i, args) in
        [(1, ["CLUSTER", "SETSLOT", slot, "IMPORTING", &id0]), (0, ["CLUSTER", "SETSLOT", slot, "MIGRATING", &id1])]
    {
        let r = c.node(i).cmd(&args);
        assert!(matches!(&r, Ok(slotway::resp::Frame::Simple(s)) if &s[..] == b"OK"), "{kind:?}: {args:?}: {r:?}");
    }
    let open = |c: &Cluster, i: usize| -> Vec<String> {
        let lines = c.node(i).nodes().unwrap_or_else(|e| panic!("{kind:?}: CLUSTER NODES: {e}"));
        let me = lines.into_iter().find(|l| l.is_myself()).expect("myself line");
        me.slots.into_iter().filter(|s| s.starts_with('[')).collect()
    };
    let want0 = vec![format!("[{slot}->-{id1}]")];
    let want1 = vec![format!("[{slot}-<-{id0}]")];
    assert_eq!((open(&c, 0), open(&c, 1)), (want0.clone(), want1.clone()), "{kind:?}: open slots before restart");
    c.nodes[0].restart();
    c.nodes[1].restart();
    assert_eq!((open(&c, 0), open(&c, 1)), (want0, want1), "{kind:?}: open slots after restart");
    c.wait_ok(Duration::from_secs(30));
    let out = c.check(2);
    assert!(
        out.stdout.contains(&format!("[WARNING] The following slots are open: {slot}")),
        "{kind:?}: check after restart does not name the open slot: {}",
        out.describe()
    );
    let out = cli_cluster("fix", &[&c.node(2).addr(), "--cluster-yes"], CLI_TIMEOUT);
    assert!(out.ok, "{kind:?}: fix failed: {}\n{}", out.describe(), c.logs());
    c.wait_check_clean(2, Duration::from_secs(10), "after fix");
    assert!(open(&c, 0).is_empty() && open(&c, 1).is_empty(), "{kind:?}: slot still open after fix");
}

/// `--cluster import` copies a standalone server's keys into the cluster (the source runs MIGRATE
/// to each key's owner): from a real redis-server and from a standalone slotway node.
fn import_from_standalone(kind: Kind) {
    let c = Cluster::create(kind, 3);
    let sources = [support::redis_server(&[]), support::slotway_node(&[])];
    for src in &sources {
        let mut conn = src.conn();
        for i in 0..150 {
            let p = src.name;
            for cmd in [
                vec!["SET".to_string(), format!("{p}:s:{i}"), format!("v{i}")],
                vec!["HSET".to_string(), format!("{p}:h:{i}"), "f".to_string(), format!("{i}")],
                vec!["RPUSH".to_string(), format!("{p}:l:{i}"), "a".to_string(), format!("{i}")],
            ] {
                let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
                let r = conn.cmd(&args);
                assert!(!matches!(r, slotway::resp::Frame::Error(_)), "{kind:?}: {args:?} on {}: {r:?}", src.name);
            }
        }
        let from = format!("127.0.0.1:{}", src.port);
        let out = cli_cluster("import", &[&c.node(0).addr(), "--cluster-from", &from, "--cluster-copy"], CLI_TIMEOUT);
        assert!(out.ok, "{kind:?}: import from {} failed: {}\n{}", src.name, out.describe(), c.logs());
        assert!(!out.stdout.contains("ERR"), "{kind:?}: import from {}: {}", src.name, out.describe());
    }
    let mut con = client(&c.urls());
    for src in &sources {
        let p = src.name;
        for i in 0..150 {
            let s: Option<String> = redis::cmd("GET").arg(format!("{p}:s:{i}")).query(&mut con).expect("GET");
            let h: Option<String> =
                redis::cmd("HGET").arg(format!("{p}:h:{i}")).arg("f").query(&mut con).expect("HGET");
            let l: Vec<String> =
                redis::cmd("LRANGE").arg(format!("{p}:l:{i}")).arg(0).arg(-1).query(&mut con).expect("LRANGE");
            assert_eq!(
                (s, h, l),
                (Some(format!("v{i}")), Some(format!("{i}")), vec!["a".to_string(), format!("{i}")]),
                "{kind:?}: key {i} imported from {p}"
            );
        }
    }
    let total = c.dbsize_total();
    assert_eq!(total, 900, "{kind:?}: keys in the cluster after two imports of 450");
}
