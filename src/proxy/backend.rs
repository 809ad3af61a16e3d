//! Connections from the proxy to one node. Each connection is one task that owns the socket: it
//! takes queued requests (raw client bytes), writes everything queued in one write, and matches
//! replies to requests in FIFO order by finding each reply's boundary with [`frame_len`], so the
//! reply bytes are passed on untouched. All clients of a worker group share these connections.
//!
//! Backpressure: the queue in front of a connection is bounded (a client awaits room), and no more
//! than `max_inflight` requests are written and unanswered; beyond that the task stops taking
//! requests until replies come back. A connection that fails answers every request it holds with
//! a [`BackendError`] and reconnects on the next request, so a handle never goes stale.

use crate::cluster::topology::Addr;
use crate::proxy::server::ConnKey;
use crate::proxy::Options;
use crate::resp::frame_len;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// Largest batch written in one syscall; more queued requests go in the next write.
const MAX_BATCH_BYTES: usize = 256 * 1024;
const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The request never reached the node (connect failed): safe to retry elsewhere or later.
    #[error("{0}")]
    NotSent(String),
    /// The request was written but the connection died before its reply: it may have run, so it
    /// is not retried.
    #[error("{0}")]
    Lost(String),
}

pub type ReplyResult = Result<Bytes, BackendError>;

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
}

/// The connections of one worker group to one node.
pub struct NodeConns {
    pub addr: Addr,
    conns: Vec<mpsc::Sender<Request>>,
    pub state: Arc<NodeState>,
}

impl NodeConns {
    pub fn spawn(key: &ConnKey, opts: &Options) -> Arc<NodeConns> {
        let addr = key.addr.clone();
        let state = Arc::new(NodeState::default());
        let prelude = Prelude::new(key, opts);
        let conns = (0..opts.conns_per_node.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(opts.max_inflight_per_conn.max(1));
                let task = ConnTask {
                    addr: addr.clone(),
                    rx,
                    max_inflight: opts.max_inflight_per_conn.max(1),
                    connect_timeout: opts.connect_timeout,
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
    pub async fn send(&self, bytes: Bytes, asking: bool, lane: u64) -> oneshot::Receiver<ReplyResult> {
        let (tx, rx) = oneshot::channel();
        let i = (lane % self.conns.len() as u64) as usize;
        if let Err(e) = self.conns[i].send(Request { bytes, asking, tx }).await {
            let _ = e.0.tx.send(Err(BackendError::NotSent(format!("connection to {} closed", self.addr))));
        }
        rx
    }
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
    rx: mpsc::Receiver<Request>,
    max_inflight: usize,
    connect_timeout: Duration,
    prelude: Prelude,
    state: Arc<NodeState>,
}

impl ConnTask {
    async fn run(mut self) {
        while let Some(first) = self.rx.recv().await {
            let stream = match self.connect().await {
                Ok(s) => s,
                Err(why) => {
                    self.state.errors.fetch_add(1, Ordering::Relaxed);
                    let err = BackendError::NotSent(why);
                    let _ = first.tx.send(Err(err.clone()));
                    // Everything already queued fails fast too instead of each waiting for a timeout.
                    while let Ok(r) = self.rx.try_recv() {
                        let _ = r.tx.send(Err(err.clone()));
                    }
                    continue;
                }
            };
            self.state.connected.store(true, Ordering::Relaxed);
            let mut inflight = VecDeque::new();
            let why = self.serve(stream, first, &mut inflight).await;
            self.state.connected.store(false, Ordering::Relaxed);
            self.state.inflight.store(0, Ordering::Relaxed);
            let Some(why) = why else { return };
            self.state.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = %self.addr, "backend connection lost: {why}");
            for w in inflight.drain(..) {
                if let Waiter::Client(tx) = w {
                    let _ = tx.send(Err(BackendError::Lost(why.clone())));
                }
            }
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

    /// Serves one connection until it fails (`Some(why)`) or every handle is gone (`None`).
    async fn serve(&mut self, stream: TcpStream, first: Request, inflight: &mut VecDeque<Waiter>) -> Option<String> {
        let (mut rd, mut wr) = stream.into_split();
        let mut out = BytesMut::with_capacity(16 * 1024);
        let mut rbuf = BytesMut::with_capacity(16 * 1024);
        out.extend_from_slice(&self.prelude.bytes);
        inflight.extend(self.prelude.names.iter().map(|n| Waiter::Prelude(n)));
        let mut pending = Some(first);
        let mut closed = false;
        loop {
            if let Some(r) = pending.take() {
                self.queue(r, &mut out, inflight);
                while inflight.len() < self.max_inflight && out.len() < MAX_BATCH_BYTES {
                    match self.rx.try_recv() {
                        Ok(r) => self.queue(r, &mut out, inflight),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                self.state.inflight.store(inflight.len() as u64, Ordering::Relaxed);
                if let Err(e) = wr.write_all(&out).await {
                    return Some(format!("write to {} failed: {e}", self.addr));
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
                        Ok(0) => return Some(format!("{} closed the connection", self.addr)),
                        Err(e) => return Some(format!("read from {} failed: {e}", self.addr)),
                        Ok(_) => {}
                    }
                    loop {
                        match frame_len(&rbuf) {
                            Ok(Some(n)) => {
                                let reply = rbuf.split_to(n).freeze();
                                match inflight.pop_front() {
                                    Some(Waiter::Client(tx)) => {
                                        let _ = tx.send(Ok(reply));
                                    }
                                    Some(Waiter::Discard) => {}
                                    Some(Waiter::Prelude(cmd)) if reply.first() == Some(&b'-') => {
                                        let text = String::from_utf8_lossy(&reply[1..]);
                                        return Some(format!("{} refused {cmd}: {}", self.addr, text.trim_end()));
                                    }
                                    Some(Waiter::Prelude(_)) => {}
                                    None => return Some(format!("{} sent a reply nobody asked for", self.addr)),
                                }
                            }
                            Ok(None) => break,
                            Err(e) => return Some(format!("{} sent malformed RESP: {e}", self.addr)),
                        }
                    }
                    self.state.inflight.store(inflight.len() as u64, Ordering::Relaxed);
                    if rbuf.capacity() - rbuf.len() < 4096 {
                        rbuf.reserve(16 * 1024);
                    }
                }
            }
        }
    }

    fn queue(&self, r: Request, out: &mut BytesMut, inflight: &mut VecDeque<Waiter>) {
        if r.asking {
            out.extend_from_slice(ASKING);
            inflight.push_back(Waiter::Discard);
        }
        out.extend_from_slice(&r.bytes);
        inflight.push_back(Waiter::Client(r.tx));
    }
}
