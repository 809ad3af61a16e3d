//! Connections from the proxy to one node. Each connection is one task that owns the socket: it
//! takes queued requests (raw client bytes), writes everything queued in one write, and matches
//! replies to requests in FIFO order by finding each reply's boundary with a [`FrameScanner`], so the
//! reply bytes are passed on untouched. All clients of a worker group share these connections.
//!
//! Backpressure: the queue in front of a connection is bounded (a client awaits room), and no more
//! than `max_inflight` requests are written and unanswered; beyond that the task stops taking
//! requests until replies come back. A connection that fails answers every request it holds with
//! a [`BackendError`] and reconnects on the next request, so a handle never goes stale.
//!
//! Timeouts: connecting is bounded by `connect_timeout`; a written request without a reply after
//! `request_timeout` fails. Replies are matched FIFO, so the oldest unanswered request is the one
//! that can time out first, and once it has the connection cannot be trusted any more (a late
//! reply would be taken for the next request's): everything written on it fails as "may have run",
//! what was only queued fails as "not sent", and the connection is closed. The check costs no timer
//! per request: each connection has one sleep, armed on the oldest request's send time and moved
//! forward lazily when it fires. Every failure counts on the node's circuit [`Breaker`], which
//! [`NodeConns::send`] asks before queueing anything.

use crate::cluster::topology::Addr;
use crate::errors;
use crate::proxy::breaker::{Breaker, BreakerState};
use crate::proxy::server::ConnKey;
use crate::proxy::Options;
use crate::resp::FrameScanner;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Largest batch written in one syscall; more queued requests go in the next write.
const MAX_BATCH_BYTES: usize = 256 * 1024;
const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The request never reached the node (connect failed): safe to retry elsewhere or later.
    #[error("{0}")]
    NotSent(String),
    /// The request was written but the connection died (or timed out) before its reply: it may
    /// have run, so it is not retried.
    #[error("{0}")]
    Lost(String),
    /// Not sent because the node is known to be unavailable right now: its circuit breaker is
    /// open, or the connection it was queued on timed out. Sending it to the same node again now
    /// would only wait for the same failure; another node (after a failover) may take it.
    #[error("{0}")]
    Unavailable(String),
}

pub type ReplyResult = Result<Bytes, BackendError>;

/// Requests of one client for one connection, handed over in one channel message: a pipelined
/// read of 16 requests costs one channel operation, not 16. At most [`MAX_BATCH`] long, so the
/// in-flight bound is overshot by at most one batch.
pub type Batch = smallvec::SmallVec<[Request; 2]>;

/// The most requests one [`Batch`] carries.
pub const MAX_BATCH: usize = 64;

pub struct Request {
    pub bytes: Bytes,
    pub asking: bool,
    pub tx: oneshot::Sender<ReplyResult>,
}

/// What INFO shows per node.
#[derive(Debug, Default)]
pub struct NodeState {
    pub connected: AtomicBool,
    pub errors: AtomicU64,
    pub inflight: AtomicU64,
    /// The node's breaker: one per node, shared with every other group's and kind's connections.
    pub breaker: Arc<Breaker>,
}

/// The connections of one worker group to one node.
pub struct NodeConns {
    pub addr: Addr,
    conns: Vec<mpsc::Sender<Batch>>,
    pub state: Arc<NodeState>,
}

impl NodeConns {
    /// `breaker` is the node's, from [`crate::proxy::breaker::Breakers`].
    pub fn spawn(key: &ConnKey, opts: &Options, breaker: Arc<Breaker>) -> Arc<NodeConns> {
        let addr = key.addr.clone();
        let state = Arc::new(NodeState { breaker, ..NodeState::default() });
        let prelude = Prelude::new(key, opts);
        let conns = (0..opts.conns_per_node.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(opts.max_inflight_per_conn.max(1));
                let task = ConnTask {
                    addr: addr.clone(),
                    rx,
                    max_inflight: opts.max_inflight_per_conn.max(1),
                    connect_timeout: opts.connect_timeout,
                    request_timeout: opts.request_timeout,
                    prelude: prelude.clone(),
                    state: state.clone(),
                };
                tokio::spawn(task.run());
                tx
            })
            .collect();
        Arc::new(NodeConns { addr, conns, state })
    }

    /// Queues a request; the receiver yields its reply. Waits while the chosen connection's queue
    /// is full (backpressure towards the client). One client always uses the same connection to a
    /// node (`lane`, its id): two connections could reorder a client's SET and the GET after it.
    /// With the node's breaker open the request fails at once ([`BackendError::Unavailable`]).
    pub async fn send(&self, bytes: Bytes, asking: bool, lane: u64) -> oneshot::Receiver<ReplyResult> {
        let (tx, rx) = oneshot::channel();
        self.send_batch(smallvec::smallvec![Request { bytes, asking, tx }], lane).await;
        rx
    }

    /// Queues a batch (see [`NodeConns::send`]); each request's reply goes to its own sender.
    pub async fn send_batch(&self, batch: Batch, lane: u64) {
        if let Err(why) = self.state.breaker.admit() {
            return fail_batch(batch, &BackendError::Unavailable(why));
        }
        let i = (lane % self.conns.len() as u64) as usize;
        if let Err(e) = self.conns[i].send(batch).await {
            fail_batch(e.0, &BackendError::NotSent(format!("connection to {} closed", self.addr)));
        }
    }
}

/// Answers every request of `batch` with `err`.
fn fail_batch(batch: Batch, err: &BackendError) {
    batch.into_iter().for_each(|r| drop(r.tx.send(Err(err.clone()))));
}

enum Waiter {
    Client(oneshot::Sender<ReplyResult>),
    /// The reply of an ASKING the proxy added.
    Discard,
    /// The reply of a prelude command: an error reply breaks the connection (wrong backend
    /// password, say), naming the command.
    Prelude(&'static str),
}

/// Commands written first on every new connection, setting the state its [`ConnKey`] promises:
/// AUTH with the backend credentials, HELLO 3, READONLY.
#[derive(Clone, Default)]
struct Prelude {
    bytes: Bytes,
    names: Vec<&'static str>,
}

impl Prelude {
    fn new(key: &ConnKey, opts: &Options) -> Prelude {
        let mut p = Prelude::default();
        let mut out = BytesMut::new();
        if let Some(pass) = &opts.backend_password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &opts.backend_user {
                args.push(user.as_bytes());
            }
            args.push(pass.as_bytes());
            out.extend_from_slice(&crate::proxy::split::encode(&args));
            p.names.push("AUTH");
        }
        if key.resp3 {
            out.extend_from_slice(&crate::proxy::split::encode(&[b"HELLO", b"3"]));
            p.names.push("HELLO 3");
        }
        if key.readonly {
            out.extend_from_slice(&crate::proxy::split::encode(&[b"READONLY"]));
            p.names.push("READONLY");
        }
        p.bytes = out.freeze();
        p
    }
}

struct ConnTask {
    addr: Addr,
    rx: mpsc::Receiver<Batch>,
    max_inflight: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    prelude: Prelude,
    state: Arc<NodeState>,
}

/// Why a connection ended.
enum Broken {
    Failed(String),
    /// The oldest request got no reply in time.
    TimedOut(String),
}

/// A request written to the connection and not yet answered, with when it was written.
type Sent = (Instant, Waiter);

impl ConnTask {
    async fn run(mut self) {
        while let Some(first) = self.rx.recv().await {
            if self.state.breaker.state() == BreakerState::Open {
                // Queued before the breaker opened (a probe would have made it half-open): the
                // node is known to be down, so no connection attempt and no timeout to wait for.
                let err = BackendError::Unavailable(self.state.breaker.refusal());
                self.fail_queued(first, &err);
                continue;
            }
            let stream = match self.connect().await {
                Ok(s) => s,
                Err(why) => {
                    self.state.errors.fetch_add(1, Ordering::Relaxed);
                    self.breaker_failure(&why);
                    // Everything already queued fails fast too instead of each waiting for a timeout.
                    self.fail_queued(first, &BackendError::NotSent(why));
                    continue;
                }
            };
            self.state.connected.store(true, Ordering::Relaxed);
            let mut inflight = VecDeque::new();
            let end = self.serve(stream, first, &mut inflight).await;
            self.state.connected.store(false, Ordering::Relaxed);
            self.state.inflight.store(0, Ordering::Relaxed);
            let (why, timed_out) = match end {
                None => return,
                Some(Broken::Failed(why)) => (why, false),
                Some(Broken::TimedOut(why)) => (why, true),
            };
            // A connection the node closed while nothing of a client was on it (its `timeout`,
            // CLIENT KILL) is not a sign of a sick node: reconnect on the next request, do not
            // count it towards the breaker.
            let idle = !inflight.iter().any(|(_, w)| matches!(w, Waiter::Client(_)));
            if idle && !timed_out {
                tracing::debug!(node = %self.addr, "idle backend connection closed: {why}");
                continue;
            }
            self.state.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = %self.addr, "backend connection lost: {why}");
            self.breaker_failure(&why);
            for (_, w) in inflight.drain(..) {
                if let Waiter::Client(tx) = w {
                    let _ = tx.send(Err(BackendError::Lost(why.clone())));
                }
            }
            if timed_out {
                // Queued behind a request that got no reply: the node is not answering, so these
                // fail now (never written: they may be re-routed) instead of each waiting a full
                // timeout on the next connection.
                let ms = self.request_timeout.as_millis();
                self.fail_rest(&BackendError::Unavailable(errors::proxy_not_sent_after_timeout(ms)));
            }
        }
    }

    /// Fails `first` and every batch queued behind it with `err`.
    fn fail_queued(&mut self, first: Batch, err: &BackendError) {
        fail_batch(first, err);
        self.fail_rest(err);
    }

    /// Fails every batch queued now with `err`.
    fn fail_rest(&mut self, err: &BackendError) {
        while let Ok(b) = self.rx.try_recv() {
            fail_batch(b, err);
        }
    }

    fn breaker_failure(&self, why: &str) {
        if self.state.breaker.failure() {
            tracing::warn!(node = %self.addr, "circuit breaker open: {why}");
        }
    }

    async fn connect(&self) -> Result<TcpStream, String> {
        let target = (&*self.addr.host, self.addr.port);
        match tokio::time::timeout(self.connect_timeout, TcpStream::connect(target)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(s)
            }
            Ok(Err(e)) => Err(format!("cannot connect to {}: {e}", self.addr)),
            Err(_) => Err(format!("cannot connect to {}: timed out", self.addr)),
        }
    }

    /// Serves one connection until it fails (`Some`) or every handle is gone (`None`).
    async fn serve(&mut self, stream: TcpStream, first: Batch, inflight: &mut VecDeque<Sent>) -> Option<Broken> {
        let (mut rd, mut wr) = stream.into_split();
        let mut out = BytesMut::with_capacity(16 * 1024);
        let mut rbuf = BytesMut::with_capacity(16 * 1024);
        // Resumes inside a reply that spans many reads instead of rescanning it each time.
        let mut scanner = FrameScanner::default();
        let now = Instant::now();
        out.extend_from_slice(&self.prelude.bytes);
        inflight.extend(self.prelude.names.iter().map(|n| (now, Waiter::Prelude(n))));
        let mut pending = Some(first);
        let mut closed = false;
        // The one timer of this connection; `armed` while it is due at or before the oldest
        // request's deadline.
        let timer = tokio::time::sleep_until(now + self.request_timeout);
        tokio::pin!(timer);
        let mut armed = true;
        loop {
            if let Some(r) = pending.take() {
                let now = Instant::now();
                self.queue(r, now, &mut out, inflight);
                while inflight.len() < self.max_inflight && out.len() < MAX_BATCH_BYTES {
                    match self.rx.try_recv() {
                        Ok(r) => self.queue(r, now, &mut out, inflight),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                self.state.inflight.store(inflight.len() as u64, Ordering::Relaxed);
                if !armed {
                    timer.as_mut().reset(now + self.request_timeout);
                    armed = true;
                }
                // A node that stopped reading fills the socket buffer and blocks the write: that
                // is bounded by the oldest request's deadline too, on the same timer.
                {
                    let mut write = std::pin::pin!(wr.write_all(&out));
                    loop {
                        tokio::select! {
                            biased;
                            r = &mut write => match r {
                                Ok(()) => break,
                                Err(e) => return Some(Broken::Failed(format!("write to {} failed: {e}", self.addr))),
                            },
                            () = &mut timer, if armed => {
                                if let Some(b) = self.check_deadline(inflight, timer.as_mut(), &mut armed) {
                                    return Some(b);
                                }
                            }
                        }
                    }
                }
                out.clear();
            }
            if closed && inflight.is_empty() {
                return None;
            }
            tokio::select! {
                r = self.rx.recv(), if !closed && inflight.len() < self.max_inflight => match r {
                    Some(r) => pending = Some(r),
                    None => closed = true,
                },
                n = rd.read_buf(&mut rbuf) => {
                    match n {
                        Ok(0) => return Some(Broken::Failed(format!("{} closed the connection", self.addr))),
                        Err(e) => return Some(Broken::Failed(format!("read from {} failed: {e}", self.addr))),
                        Ok(_) => {}
                    }
                    let before = inflight.len();
                    loop {
                        match scanner.scan(&rbuf) {
                            Ok(Some(n)) => {
                                let reply = rbuf.split_to(n).freeze();
                                match inflight.pop_front() {
                                    Some((_, Waiter::Client(tx))) => {
                                        let _ = tx.send(Ok(reply));
                                    }
                                    Some((_, Waiter::Discard)) => {}
                                    Some((_, Waiter::Prelude(cmd))) if reply.first() == Some(&b'-') => {
                                        let text = String::from_utf8_lossy(&reply[1..]);
                                        let why = format!("{} refused {cmd}: {}", self.addr, text.trim_end());
                                        return Some(Broken::Failed(why));
                                    }
                                    Some((_, Waiter::Prelude(_))) => {}
                                    None => {
                                        let why = format!("{} sent a reply nobody asked for", self.addr);
                                        return Some(Broken::Failed(why));
                                    }
                                }
                            }
                            Ok(None) => break,
                            Err(e) => return Some(Broken::Failed(format!("{} sent malformed RESP: {e}", self.addr))),
                        }
                    }
                    if inflight.len() != before {
                        self.state.breaker.success();
                    }
                    self.state.inflight.store(inflight.len() as u64, Ordering::Relaxed);
                    if rbuf.capacity() - rbuf.len() < 4096 {
                        rbuf.reserve(16 * 1024);
                    }
                }
                () = &mut timer, if armed => {
                    if let Some(b) = self.check_deadline(inflight, timer.as_mut(), &mut armed) {
                        return Some(b);
                    }
                }
            }
        }
    }

    /// The timer fired: the oldest request has timed out (`Some`), or the timer moves on to its
    /// deadline (it was armed for an older, since answered request), or nothing is in flight and
    /// it rests until the next write.
    fn check_deadline(
        &self,
        inflight: &VecDeque<Sent>,
        timer: std::pin::Pin<&mut tokio::time::Sleep>,
        armed: &mut bool,
    ) -> Option<Broken> {
        let Some((sent, _)) = inflight.front() else {
            *armed = false;
            return None;
        };
        let due = *sent + self.request_timeout;
        if due <= Instant::now() {
            return Some(Broken::TimedOut(errors::proxy_request_timeout(self.request_timeout.as_millis())));
        }
        timer.reset(due);
        None
    }

    fn queue(&self, batch: Batch, now: Instant, out: &mut BytesMut, inflight: &mut VecDeque<Sent>) {
        for r in batch {
            if r.asking {
                out.extend_from_slice(ASKING);
                inflight.push_back((now, Waiter::Discard));
            }
            out.extend_from_slice(&r.bytes);
            inflight.push_back((now, Waiter::Client(r.tx)));
        }
    }
}
