//! Topology discovery: ask a few nodes (seeds first when nothing is known) for CLUSTER INFO and
//! CLUSTER SHARDS (CLUSTER SLOTS when SHARDS is unknown), keep the freshest view (highest epoch,
//! then most slots covered) and swap it in as the routing snapshot when it routes differently.

use crate::cluster::topology::{self, parse_info_epoch, parse_shards, parse_slots, Addr, Topology};
use crate::proxy::server::Shared;
use crate::proxy::{Options, Stats};
use crate::resp::Frame;
use bytes::{Bytes, BytesMut};
use rand::seq::SliceRandom;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Nodes asked per refresh: enough to outvote one stale node.
const ASK_NODES: usize = 3;
/// Triggered refreshes (MOVED, connection errors) come at most this often.
const MIN_GAP: Duration = Duration::from_millis(100);
const MAX_REPLY: usize = 64 * 1024 * 1024;

/// `AUTH [user] password` with the backend credentials, or nothing when none are configured.
pub fn auth_command(opts: &Options) -> Vec<String> {
    let Some(pass) = &opts.backend_password else { return Vec::new() };
    let mut cmd = vec!["AUTH".to_string()];
    cmd.extend(opts.backend_user.iter().cloned());
    cmd.push(pass.clone());
    cmd
}

/// One node's view, with the epoch from its CLUSTER INFO. `auth` ([`auth_command`]) is sent first
/// when not empty: nodes with requirepass answer nothing else before it.
pub async fn fetch_view(addr: &Addr, timeout: Duration, auth: &[String]) -> Result<Topology, String> {
    let work = async {
        let mut s = TcpStream::connect((&*addr.host, addr.port)).await.map_err(|e| e.to_string())?;
        let mut buf = BytesMut::new();
        if !auth.is_empty() {
            let args: Vec<&str> = auth.iter().map(String::as_str).collect();
            if let Frame::Error(e) = command(&mut s, &mut buf, &args).await? {
                return Err(format!("AUTH refused: {}", String::from_utf8_lossy(&e)));
            }
        }
        let info = command(&mut s, &mut buf, &["CLUSTER", "INFO"]).await?;
        let epoch = parse_info_epoch(&info).map_err(|e| e.to_string())?;
        let shards = command(&mut s, &mut buf, &["CLUSTER", "SHARDS"]).await?;
        let view = match shards {
            Frame::Error(_) => {
                let slots = command(&mut s, &mut buf, &["CLUSTER", "SLOTS"]).await?;
                parse_slots(&slots, &addr.host)
            }
            reply => parse_shards(&reply, &addr.host),
        };
        view.map(|t| t.with_config_epoch(epoch)).map_err(|e| e.to_string())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map_err(|e| format!("{addr}: {e}")),
        Err(_) => Err(format!("{addr}: timed out")),
    }
}

async fn command(s: &mut TcpStream, buf: &mut BytesMut, args: &[&str]) -> Result<Frame, String> {
    let mut out = BytesMut::new();
    Frame::command(args).encode(&mut out);
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    loop {
        let bytes: Bytes = buf.clone().freeze();
        if let Some((f, n)) = Frame::parse(&bytes).map_err(|e| e.to_string())? {
            let _ = buf.split_to(n);
            return Ok(f);
        }
        if buf.len() > MAX_REPLY {
            return Err("reply too large".into());
        }
        if s.read_buf(buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("connection closed".into());
        }
    }
}

/// Asks a few nodes and installs the freshest view. Returns whether the routing changed.
pub async fn refresh(sh: &Arc<Shared>) -> Result<bool, String> {
    Stats::inc(&sh.stats.refreshes);
    let current = sh.topo.load_full();
    let mut candidates: Vec<Addr> = current.shards().iter().map(|s| s.master.addr.clone()).collect();
    candidates.shuffle(&mut rand::thread_rng());
    for seed in &sh.opts.seeds {
        if !candidates.contains(seed) {
            candidates.push(seed.clone());
        }
    }
    let mut views = Vec::new();
    let mut errors = Vec::new();
    // Ask in rounds until ASK_NODES views arrived or every candidate was tried.
    let auth = auth_command(&sh.opts);
    let mut rest = candidates.as_slice();
    while views.len() < ASK_NODES && !rest.is_empty() {
        let n = (ASK_NODES - views.len()).min(rest.len());
        let (round, tail) = rest.split_at(n);
        rest = tail;
        let handles: Vec<_> = round
            .iter()
            .map(|a| {
                let a = a.clone();
                let t = sh.opts.connect_timeout;
                let auth = auth.clone();
                tokio::spawn(async move { fetch_view(&a, t, &auth).await })
            })
            .collect();
        for h in handles {
            match h.await {
                Ok(Ok(v)) if v.covered_slots() > 0 => views.push(v),
                Ok(Ok(_)) => errors.push("a node with no slots assigned".to_string()),
                Ok(Err(e)) => errors.push(e),
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    let Some(best) = topology::freshest(&views) else {
        return Err(if errors.is_empty() { "no node to ask".into() } else { errors.join("; ") });
    };
    if current.same_routing(best) && current.config_epoch == best.config_epoch {
        return Ok(false);
    }
    let diff = current.diff(best);
    tracing::info!(
        epoch = best.config_epoch,
        moved_slots = diff.moved_slots(),
        added = diff.added.len(),
        removed = diff.removed.len(),
        "topology updated"
    );
    sh.set_topology(best.clone());
    Ok(true)
}

/// Periodic refresh, plus one soon after each trigger (MOVED, connection error).
pub async fn run(sh: Arc<Shared>) {
    loop {
        let interval =
            if sh.topo.load().covered_slots() == 0 { Duration::from_secs(1) } else { sh.opts.refresh_interval };
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = sh.refresh.notified() => {}
        }
        if let Err(e) = refresh(&sh).await {
            tracing::warn!("topology refresh failed: {e}");
        }
        tokio::time::sleep(MIN_GAP).await;
    }
}
