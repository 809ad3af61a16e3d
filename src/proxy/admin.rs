//! The admin endpoint (`--admin host:port`): a deliberately tiny HTTP/1.1 server with two pages.
//! `GET /metrics` is the Prometheus text format, `GET /healthz` is `200 ok` when the proxy can
//! serve (a listener accepting, every slot with an owner) and `503` with the reasons otherwise.
//!
//! One request per connection (`Connection: close`), GET and HEAD only, the request head bounded
//! in size and the whole exchange in time, a bounded number of connections at once: scrapers and
//! probes need nothing more, and anything else (a port scan, garbage) costs one small task that
//! answers 400 or closes. Hand-written rather than a dependency for exactly that reason.

use crate::cluster::topology::Addr;
use crate::cluster::SLOTS;
use crate::metrics::{self, names};
use crate::proxy::breaker::BreakerState;
use crate::proxy::server::Shared;
use crate::proxy::{ProxyError, Stats};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Largest request head (request line + headers) read; longer gets 431.
const MAX_HEAD: usize = 8 * 1024;
/// Reading the request and writing the response, together.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// Admin connections served at once; more are closed at accept.
const MAX_CONNS: usize = 64;
/// What Prometheus expects for the text exposition format.
const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";

pub async fn bind(spec: &str) -> Result<TcpListener, ProxyError> {
    TcpListener::bind(spec).await.map_err(|source| ProxyError::Listen { addr: spec.to_string(), source })
}

/// Serves the admin endpoint until the task is aborted (at the end of shutdown, so /metrics and
/// /healthz stay up while clients drain).
pub async fn run(listener: TcpListener, sh: Arc<Shared>) {
    if let Ok(a) = listener.local_addr() {
        tracing::info!(admin = %a, "admin endpoint ready: /metrics, /healthz");
    }
    let slots = Arc::new(Semaphore::new(MAX_CONNS));
    loop {
        let sock = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("admin accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let sh = sh.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(sock, &sh)).await;
            drop(permit);
        });
    }
}

/// One request, one response, then close.
async fn exchange(mut sock: TcpStream, sh: &Shared) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_len = loop {
        if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() >= MAX_HEAD {
            return respond(&mut sock, Response::text(431, "request head too large\n"), false).await;
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            // Closed before a whole request: nobody to answer.
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let (response, head) = match parse_head(&buf[..head_len]) {
        Err(why) => (Response::text(400, why), false),
        Ok(req) => (route(&req, sh), req.method == "HEAD"),
    };
    respond(&mut sock, response, head).await
}

#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    method: &'a str,
    /// Without the query string.
    path: &'a str,
}

/// Strict parse of a request head: `METHOD SP /target SP HTTP/1.x`, then `name: value` lines.
fn parse_head(head: &[u8]) -> Result<Request<'_>, &'static str> {
    let head = std::str::from_utf8(head).map_err(|_| "request is not UTF-8\n")?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line\n");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("malformed method\n");
    }
    if !target.starts_with('/') || target.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err("malformed request target\n");
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err("unsupported HTTP version\n");
    }
    for h in lines {
        let Some((name, _)) = h.split_once(':') else {
            return Err("malformed header line\n");
        };
        if name.is_empty() || name.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err("malformed header name\n");
        }
    }
    let path = target.split('?').next().unwrap_or(target);
    Ok(Request { method, path })
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
    allow: bool,
}

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Response {
        Response { status, content_type: TEXT_TYPE, body: body.into(), allow: false }
    }
}

fn route(req: &Request<'_>, sh: &Shared) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response { allow: true, ..Response::text(405, "only GET and HEAD\n") };
    }
    match req.path {
        "/metrics" => Response { status: 200, content_type: METRICS_TYPE, body: render(sh), allow: false },
        "/healthz" => match health(sh) {
            Ok(()) => Response::text(200, "ok\n"),
            Err(why) => Response::text(503, why),
        },
        _ => Response::text(404, "not found; try /metrics or /healthz\n"),
    }
}

async fn respond(sock: &mut TcpStream, r: Response, head_only: bool) -> std::io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    };
    let allow = if r.allow { "Allow: GET, HEAD\r\n" } else { "" };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        r.status,
        r.content_type,
        r.body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(r.body.as_bytes());
    }
    sock.write_all(&out).await?;
    sock.shutdown().await?;
    // Closing with unread input would send a reset that can destroy the response before the
    // client reads it (an oversized head, a body): read and drop a bounded amount first.
    let mut sink = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match tokio::time::timeout(Duration::from_millis(500), sock.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
    Ok(())
}

/// Healthy: at least one client listener accepting and every slot owned in the snapshot.
pub fn health(sh: &Shared) -> Result<(), String> {
    let mut why = String::new();
    if Stats::get(&sh.stats.listeners) == 0 {
        why.push_str("no client listener is accepting\n");
    }
    let covered = sh.topo.load().covered_slots();
    if covered < usize::from(SLOTS) {
        why.push_str(&format!("topology covers {covered} of {SLOTS} slots\n"));
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why)
    }
}

/// Per node, summed over its connection sets.
#[derive(Default)]
struct NodeRow {
    connections: u64,
    inflight: u64,
    errors: u64,
    slots: usize,
}

/// The whole /metrics page: the proxy's counters copied into the recorder and rendered, then
/// the per-command latency summaries.
pub fn render(sh: &Shared) -> String {
    let snap = sh.cmdstats.snapshot();
    let mut out = match metrics::exporter() {
        Ok(handle) => {
            sync(sh, &snap);
            handle.render()
        }
        Err(e) => format!("# the Prometheus recorder is not available: {e}\n"),
    };
    metrics::write_latency_summary(&mut out, &snap);
    out
}

/// Copies the current values into the recorder (values are only read here, at scrape time).
fn sync(sh: &Shared, snap: &[metrics::CommandSnapshot]) {
    use ::metrics::{counter, gauge};
    let st = &sh.stats;
    gauge!(names::CONNECTED_CLIENTS).set(Stats::get(&st.clients) as f64);
    counter!(names::CONNECTIONS_RECEIVED).absolute(Stats::get(&st.total_clients));
    counter!(names::COMMANDS_PROCESSED).absolute(Stats::get(&st.ops));
    gauge!(names::LISTENERS).set(Stats::get(&st.listeners) as f64);
    counter!(names::REDIRECTS, "type" => "moved").absolute(Stats::get(&st.moved));
    counter!(names::REDIRECTS, "type" => "ask").absolute(Stats::get(&st.ask));
    counter!(names::CLUSTER_ERRORS, "type" => "tryagain").absolute(Stats::get(&st.tryagain));
    counter!(names::CLUSTER_ERRORS, "type" => "clusterdown").absolute(Stats::get(&st.clusterdown));
    counter!(names::BACKEND_ERRORS).absolute(Stats::get(&st.conn_errors));
    counter!(names::TOPOLOGY_REFRESHES).absolute(Stats::get(&st.refreshes));
    let topo = sh.topo.load();
    gauge!(names::TOPOLOGY_EPOCH).set(topo.config_epoch as f64);
    gauge!(names::TOPOLOGY_SLOTS_COVERED).set(topo.covered_slots() as f64);
    gauge!(names::TOPOLOGY_SHARDS).set(topo.shards().len() as f64);

    let mut nodes: BTreeMap<Addr, NodeRow> = BTreeMap::new();
    for shard in topo.shards() {
        nodes.entry(shard.master.addr.clone()).or_default().slots = shard.slot_count();
        for r in &shard.replicas {
            nodes.entry(r.addr.clone()).or_default();
        }
    }
    for (addr, c) in sh.node_states() {
        let row = nodes.entry(addr).or_default();
        (row.connections, row.inflight, row.errors) = (c.connections, c.inflight, c.errors);
    }
    for (addr, row) in nodes {
        let node = addr.to_string();
        gauge!(names::NODE_CONNECTIONS, "node" => node.clone()).set(row.connections as f64);
        gauge!(names::NODE_INFLIGHT, "node" => node.clone()).set(row.inflight as f64);
        counter!(names::NODE_ERRORS, "node" => node.clone()).absolute(row.errors);
        // 0 closed, 1 half-open (one probe let through), 2 open (failing at once).
        let breaker = match sh.breakers.state(&addr) {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        gauge!(names::NODE_BREAKER, "node" => node.clone()).set(breaker);
        gauge!(names::NODE_SLOTS, "node" => node).set(row.slots as f64);
    }

    for s in snap {
        let c = &s.counts;
        counter!(names::COMMANDS, "cmd" => s.name).absolute(c.calls + c.rejected);
        counter!(names::COMMAND_ERRORS, "cmd" => s.name).absolute(c.failed + c.rejected);
        counter!(names::COMMANDS_REJECTED, "cmd" => s.name).absolute(c.rejected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strictly() {
        assert_eq!(
            parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*"),
            Ok(Request { method: "GET", path: "/metrics" })
        );
        assert_eq!(parse_head(b"HEAD /healthz HTTP/1.0"), Ok(Request { method: "HEAD", path: "/healthz" }));
        for bad in [
            &b""[..],
            b"GET",
            b"GET /metrics",
            b"GET  /metrics HTTP/1.1",
            b"GET /metrics HTTP/2",
            b"get /metrics HTTP/1.1",
            b"GET metrics HTTP/1.1",
            b"GET /metrics HTTP/1.1 x",
            b"GET /metrics HTTP/1.1\r\nno colon",
            b"GET /metrics HTTP/1.1\r\n: empty name",
            b"GET /\xff HTTP/1.1",
            b"\x00\x01\x02",
        ] {
            assert!(parse_head(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
