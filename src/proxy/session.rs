//! One client connection. A reader task parses requests (zero-copy: each request's original bytes
//! are a `Bytes` slice of the read buffer, forwarded as they are), classifies them, sends them to
//! their node at once (pipelining across nodes) and queues a [`Pending`] per request in a bounded
//! channel (per-client backpressure). The writer takes them in order, waits for each reply (doing
//! any redirects), and writes everything that is ready in one write.
//!
//! Each request carries a [`Mark`] (command id, read time) to the writer, which records the
//! command's call, error and latency in the thread's shard of [`Shared::cmdstats`] when the write
//! carrying its reply is ready: no lookup by name, no shared lock, no allocation per request.

use crate::cluster::topology::Topology;
use crate::command;
use crate::errors;
use crate::metrics::{Outcome, Sample};
use crate::proxy::local::{self, ClientState, Peer};
use crate::proxy::redirect::{error_reply, Inflight, Outbox, Target};
use crate::proxy::router::{self, Access, Plan};
use crate::proxy::server::Shared;
use crate::proxy::split::{self, Part};
use crate::proxy::Stats;
use crate::resp::{Limits, Parsed, RequestParser};
use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Notify, Semaphore, TryAcquireError};

/// Replies gathered before one write to the client.
const MAX_WRITE_BATCH: usize = 256 * 1024;

enum Pending {
    Ready(Bytes),
    /// Written, then the connection closes (QUIT, protocol errors).
    Close(Bytes),
    Forward(Inflight, bool),
    Split {
        kind: router::SplitKind,
        parts: Vec<Part>,
        nkeys: usize,
        resp3: bool,
    },
}

/// What the writer records for a request once its reply is ready.
#[derive(Clone, Copy)]
struct Mark {
    /// The command table id; [`NO_CMD`] for what names no command (unknown, protocol error).
    cmd: u16,
    /// Refused before running (arity, CROSSSLOT, unsupported): counted, not timed.
    rejected: bool,
    /// When the bytes of the request were read.
    start: Instant,
}

const NO_CMD: u16 = u16::MAX;

/// Serves one client (TCP or unix socket halves) until it leaves or the proxy stops.
pub async fn handle<R, W>(rd: R, mut wr: W, peer: Peer, sh: Arc<Shared>, group: usize, stop: watch::Receiver<bool>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    Stats::inc(&sh.stats.clients);
    Stats::inc(&sh.stats.total_clients);
    // The queue is bounded by the flow's permits, counted in requests.
    let max = sh.opts.max_inflight_per_client.max(1);
    let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
    let client = ClientState::new(sh.next_client_id(), peer, sh.opts.users.is_empty());
    let flow = Arc::new(Flow::new(max));
    let handoff = Handoff { tx, queued: Vec::new(), per_message: max.min(MAX_QUEUED), flow: flow.clone() };
    let reader = tokio::spawn(read_loop(rd, client, sh.clone(), group, handoff, stop));
    let mut out = BytesMut::with_capacity(16 * 1024);
    // The requests whose replies are in `out`, recorded together when it is written.
    let mut done: Vec<(Mark, Outcome)> = Vec::new();
    'outer: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(queued) = next.take() {
            let n = queued.len();
            for (p, mark) in queued {
                // Most replies are there by now: those skip the redirect-handling future.
                let ready = match p {
                    Pending::Ready(b) => Ok((b, false)),
                    Pending::Close(b) => Ok((b, true)),
                    Pending::Forward(mut f, resp3) => match f.try_finish(&sh) {
                        Some(reply) => Ok((reply, false)),
                        None => Err(Pending::Forward(f, resp3)),
                    },
                    p => Err(p),
                };
                let (bytes, close) = match ready {
                    Ok(r) => r,
                    Err(p) => {
                        let mut fut = std::pin::pin!(resolve(p, &sh, group));
                        // Replies already gathered go out before waiting for one that is not ready:
                        // a slow node must delay only the replies after its own, not the ones before.
                        match std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
                            Poll::Ready(r) => r,
                            Poll::Pending => {
                                if !out.is_empty() && write_out(&mut wr, &mut out, &sh, &mut done).await.is_err() {
                                    break 'outer;
                                }
                                fut.await
                            }
                        }
                    }
                };
                if mark.cmd != NO_CMD {
                    done.push((mark, outcome(mark, &bytes)));
                }
                out.extend_from_slice(&bytes);
                if close {
                    let _ = write_out(&mut wr, &mut out, &sh, &mut done).await;
                    break 'outer;
                }
            }
            flow.answered(n);
            if out.len() < MAX_WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if write_out(&mut wr, &mut out, &sh, &mut done).await.is_err() {
            break;
        }
    }
    // The reader has ended unless the client stopped reading our replies (a failed write).
    let rd = if reader.is_finished() {
        reader.await.ok().flatten()
    } else {
        reader.abort();
        None
    };
    let _ = wr.shutdown().await;
    if let Some(rd) = rd {
        drain_input(rd).await;
    }
    sh.stats.clients.fetch_sub(1, Ordering::Relaxed);
}

/// After the last replies of a proxy shutdown: closing a socket with unread input makes the
/// kernel send RST, which can destroy replies still in the send queue. Reading (and dropping)
/// what the client still sends, bounded in time and size, lets them arrive first.
async fn drain_input<R: AsyncRead + Unpin>(mut rd: R) {
    const DRAIN_FOR: std::time::Duration = std::time::Duration::from_millis(500);
    const DRAIN_MAX: usize = 4 << 20;
    let mut scratch = [0u8; 16 * 1024];
    let mut total = 0;
    let _ = tokio::time::timeout(DRAIN_FOR, async {
        while total < DRAIN_MAX {
            match rd.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// Writes the gathered replies in one write, recording their requests first (their replies are
/// ready now).
async fn write_out<W: AsyncWrite + Unpin>(
    wr: &mut W,
    out: &mut BytesMut,
    sh: &Shared,
    done: &mut Vec<(Mark, Outcome)>,
) -> std::io::Result<()> {
    record(sh, done);
    wr.write_all(out).await?;
    out.clear();
    Ok(())
}

fn outcome(m: Mark, reply: &[u8]) -> Outcome {
    if m.rejected {
        Outcome::Rejected
    } else if matches!(reply.first(), Some(b'-' | b'!')) {
        Outcome::Failed
    } else {
        Outcome::Ok
    }
}

/// Records the requests of one write: their replies are ready now. One clock read and one
/// (thread-local, uncontended) lock per write, however many requests it carries; a run of
/// requests of one read with the same command and outcome (a pipeline of GETs) is one sample.
fn record(sh: &Shared, done: &mut Vec<(Mark, Outcome)>) {
    if done.is_empty() {
        return;
    }
    let now = Instant::now();
    let nanos = |start: Instant| u64::try_from(now.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX);
    // Each run with the read time its requests share.
    let mut runs: SmallVec<[(Instant, Sample); 8]> = SmallVec::new();
    for (m, outcome) in done.drain(..) {
        match runs.last_mut() {
            Some((start, run)) if *start == m.start && run.cmd == usize::from(m.cmd) && run.outcome == outcome => {
                run.count += 1
            }
            _ => runs.push((m.start, Sample { cmd: m.cmd.into(), nanos: nanos(m.start), outcome, count: 1 })),
        }
    }
    sh.cmdstats.record_all(runs.into_iter().map(|(_, s)| s));
}

async fn resolve(p: Pending, sh: &Arc<Shared>, group: usize) -> (Bytes, bool) {
    match p {
        Pending::Ready(b) => (b, false),
        Pending::Close(b) => (b, true),
        Pending::Forward(f, resp3) => (f.finish(sh, group, resp3).await, false),
        Pending::Split { kind, parts, nkeys, resp3 } => {
            (split::merge(sh, group, resp3, kind, parts, nkeys).await, false)
        }
    }
}

/// What to do with one parsed request, decided while its arguments are borrowed from the buffer.
enum Action {
    Reply(Bytes, bool),
    Forward { target: Target, reencoded: Option<Bytes> },
    Split { kind: router::SplitKind, access: Access, reqs: Vec<(u16, Bytes, Vec<usize>)>, nkeys: usize },
}

/// The requests of one read, in order, on their way to the writer: one channel message per read
/// (or per [`MAX_QUEUED`] requests), not one per request.
type Queued = Vec<(Pending, Mark)>;

/// The most requests in one [`Queued`] message.
const MAX_QUEUED: usize = 64;

/// The reader's end of the writer's queue, which holds messages of at most `per_message` requests.
struct Handoff {
    tx: mpsc::UnboundedSender<Queued>,
    queued: Queued,
    per_message: usize,
    flow: Arc<Flow>,
}

/// A client's requests handed to the writer and not answered yet: at most
/// `max_inflight_per_client` (per-client backpressure: the reader waits for room), and when the
/// owner of a slot changes the reader waits for them all before it routes more
/// ([`crate::proxy::server::Routing`]).
struct Flow {
    /// One permit per request that may still be handed over.
    room: Semaphore,
    max: usize,
    drained: Notify,
}

impl Flow {
    fn new(max: usize) -> Flow {
        Flow { room: Semaphore::new(max), max, drained: Notify::new() }
    }

    fn answered(&self, n: usize) {
        self.room.add_permits(n);
        if self.room.available_permits() >= self.max {
            self.drained.notify_one();
        }
    }

    /// Until every request handed to the writer has its reply.
    async fn drained(&self) {
        loop {
            let notified = self.drained.notified();
            if self.room.available_permits() >= self.max {
                return;
            }
            notified.await;
        }
    }
}

impl Handoff {
    /// Hands what is queued to the writer (at most `max_inflight_per_client` requests, so
    /// `per_message` never asks for more); false once the writer is gone. The writer waits on
    /// these requests' replies, so they must be on their way (the outbox flushed) before this
    /// task waits for room.
    async fn send(&mut self, outbox: &mut Outbox, lane: u64) -> bool {
        let n = u32::try_from(self.queued.len()).unwrap_or(u32::MAX);
        if n == 0 {
            return true;
        }
        match self.flow.room.try_acquire_many(n) {
            Ok(p) => p.forget(),
            Err(TryAcquireError::NoPermits) => {
                outbox.flush(lane).await;
                match self.flow.room.acquire_many(n).await {
                    Ok(p) => p.forget(),
                    Err(_) => return false,
                }
            }
            Err(TryAcquireError::Closed) => return false,
        }
        let cap = self.per_message.min(16);
        let msg = std::mem::replace(&mut self.queued, Vec::with_capacity(cap));
        self.tx.send(msg).is_ok()
    }

    /// Hands over the session's last item (a `Pending::Close`) after everything queued before it.
    async fn close(&mut self, last: (Pending, Mark), outbox: &mut Outbox, lane: u64) {
        self.queued.push(last);
        outbox.flush(lane).await;
        self.send(outbox, lane).await;
    }
}

/// How many requests of one read are routed between two looks at the topology snapshot.
const VIEW_CHECK_EVERY: usize = 32;

/// Whether the snapshot's slot owners changed since `view` (then the session must wait for its
/// requests in flight before it routes on the newer one). A newer snapshot with the same owners
/// (node health, replica sets) replaces `view` at once.
fn newer_view(sh: &Shared, view: &mut Arc<crate::proxy::server::Routing>) -> bool {
    let latest = sh.topo.load();
    if Arc::ptr_eq(&latest, view) {
        false
    } else if latest.gen == view.gen {
        *view = arc_swap::Guard::into_inner(latest);
        false
    } else {
        true
    }
}

/// Reads may go where the read policy says; everything else goes to the slot's master.
fn slot_target(slot: u16, access: Access) -> Target {
    match access {
        Access::Read => Target::Read(slot),
        Access::Write => Target::Slot(slot),
    }
}

/// Reads and dispatches requests until the client leaves (`None`) or the proxy stops: then the
/// read half comes back, so the session can drain the client's input after its last replies.
async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    mut client: ClientState,
    sh: Arc<Shared>,
    group: usize,
    mut handoff: Handoff,
    mut stop: watch::Receiver<bool>,
) -> Option<R> {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut outbox = Outbox::default();
    // The view this session routes on; see `Routing`.
    let mut view = sh.topo.load_full();
    // The protocol of the backend connections this session's requests in flight went on: after
    // a HELLO that switches it, later requests go on other connections, so they wait too.
    let mut routed_resp3 = client.resp3;
    loop {
        if *stop.borrow() {
            return Some(rd);
        }
        tokio::select! {
            n = rd.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            },
            _ = stop.changed() => return Some(rd),
        }
        // One clock read per read, not per request: the requests of a pipeline arrived together.
        let read_at = Instant::now();
        client.last_interaction = read_at;
        // Whether the map changed is looked at at the start of a read and every
        // `VIEW_CHECK_EVERY` requests, not per request (an atomic load each). Routing on a slightly
        // older view is safe: a request sent to a slot's old owner comes back MOVED and is retried
        // in order; only a newer view before the older requests are answered is not. The bound
        // keeps a long pipelined read from sending many requests each to a MOVED and a retry.
        let mut newer = newer_view(&sh, &mut view);
        let mut since_check = 0usize;
        loop {
            // Until AUTH, Redis's small header caps apply (a stranger cannot make us buffer much).
            let limits = Limits { unauthenticated: !client.authenticated, ..Limits::default() };
            let n = match parser.parse(&buf, &limits) {
                Ok(Parsed::Incomplete) => break,
                Ok(Parsed::Empty(n)) => {
                    buf.advance(n);
                    parser.reset();
                    continue;
                }
                Ok(Parsed::Request(n)) => {
                    // A newer view with the same owners is taken at once. One where owners
                    // changed waits until what was routed on the old one is answered (retried
                    // after MOVED if need be); then routing goes on with the newest.
                    since_check += 1;
                    if since_check >= VIEW_CHECK_EVERY {
                        since_check = 0;
                        newer = newer || newer_view(&sh, &mut view);
                    }
                    if newer || client.resp3 != routed_resp3 {
                        outbox.flush(client.id).await;
                        if !handoff.send(&mut outbox, client.id).await {
                            return None;
                        }
                        tokio::select! {
                            () = handoff.flow.drained() => {}
                            () = handoff.tx.closed() => return None,
                            _ = stop.changed() => return Some(rd),
                        }
                        view = sh.topo.load_full();
                        routed_resp3 = client.resp3;
                        newer = false;
                    }
                    n
                }
                Err(e) => {
                    // What was read before the bad frame still runs, as in Redis.
                    let mark = Mark { cmd: NO_CMD, rejected: false, start: read_at };
                    handoff.close((Pending::Close(error_reply(&e.0)), mark), &mut outbox, client.id).await;
                    return None;
                }
            };
            let (action, cmd, rejected) = {
                let mut args: SmallVec<[&[u8]; 8]> = SmallVec::new();
                parser.args(&buf, &mut args);
                decide(&args, &mut client, &sh, &view, buf[0] != b'*')
            };
            let mark = Mark { cmd, rejected, start: read_at };
            parser.reset();
            let raw = buf.split_to(n).freeze();
            Stats::inc(&sh.stats.ops);
            let resp3 = client.resp3;
            let pending = match action {
                Action::Reply(b, close) => {
                    if close {
                        handoff.close((Pending::Close(b), mark), &mut outbox, client.id).await;
                        return None;
                    }
                    Pending::Ready(b)
                }
                Action::Forward { target, reencoded } => {
                    let req = reencoded.unwrap_or(raw);
                    let inflight = Inflight::prepare(&sh, &view, group, resp3, client.id, req, target, &mut outbox);
                    Pending::Forward(inflight, resp3)
                }
                Action::Split { kind, access, reqs, nkeys } => {
                    let mut parts = Vec::with_capacity(reqs.len());
                    for (slot, req, key_indices) in reqs {
                        let target = slot_target(slot, access);
                        let inflight = Inflight::prepare(&sh, &view, group, resp3, client.id, req, target, &mut outbox);
                        parts.push(Part { inflight, key_indices });
                        if outbox.is_full() {
                            outbox.flush(client.id).await;
                        }
                    }
                    Pending::Split { kind, parts, nkeys, resp3 }
                }
            };
            if outbox.is_full() {
                outbox.flush(client.id).await;
            }
            handoff.queued.push((pending, mark));
            if handoff.queued.len() >= handoff.per_message && !handoff.send(&mut outbox, client.id).await {
                return None;
            }
        }
        outbox.flush(client.id).await;
        if !handoff.send(&mut outbox, client.id).await {
            return None;
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
    }
}

/// The action for one request, with its command id for the statistics and whether it was
/// refused before running.
fn decide(args: &[&[u8]], client: &mut ClientState, sh: &Shared, view: &Topology, inline: bool) -> (Action, u16, bool) {
    let spec = match command::resolve(args) {
        Ok(s) => s,
        Err(e) => return (Action::Reply(error_reply(&e), false), NO_CMD, false),
    };
    let id = u16::try_from(spec.id).unwrap_or(NO_CMD);
    // Unknown commands and wrong arity are answered first, as Redis does, then NOAUTH.
    if !client.authenticated && router::refused_before_auth(spec, args.len()) {
        return (Action::Reply(error_reply(errors::NOAUTH), false), id, true);
    }
    let plan = router::plan(spec, args);
    let rejected = matches!(plan, Plan::Error(_));
    (act(plan, args, client, sh, view, inline), id, rejected)
}

fn act(plan: Plan, args: &[&[u8]], client: &mut ClientState, sh: &Shared, view: &Topology, inline: bool) -> Action {
    let reencode = |args: &[&[u8]]| inline.then(|| split::encode(args));
    match plan {
        Plan::Error(e) => Action::Reply(error_reply(&e), false),
        Plan::Local(spec) => {
            let (b, close) = local::run(spec, args, client, sh);
            Action::Reply(b, close)
        }
        Plan::Slot(s, access) => Action::Forward { target: slot_target(s, access), reencoded: reencode(args) },
        Plan::AnyMaster => Action::Forward { target: Target::AnyMaster, reencoded: reencode(args) },
        Plan::FanOut(kind) => {
            // One part per master, each aimed at a slot it owns, so a part follows MOVED and
            // retries like any keyed request. No masters known: one part that waits for a
            // topology like any other request, then fails with CLUSTERDOWN.
            let mut slots: Vec<u16> =
                view.shards().iter().filter_map(|s| s.slots.first().map(|&(first, _)| first)).collect();
            if slots.is_empty() {
                slots.push(0);
            }
            let req = split::encode(args);
            let reqs = slots.into_iter().map(|s| (s, req.clone(), Vec::new())).collect();
            // The parts go to the masters: FLUSHALL writes, and DBSIZE/KEYS count each shard once.
            Action::Split { kind, access: Access::Write, reqs, nkeys: 0 }
        }
        Plan::Split(kind, access, groups) => {
            // Keys in client order: index of each key position among all key positions.
            let mut all: Vec<usize> = groups.iter().flat_map(|(_, p)| p.iter().copied()).collect();
            all.sort_unstable();
            let nkeys = all.len();
            let reqs = groups
                .into_iter()
                .map(|(slot, positions)| {
                    let req = split::sub_request(args, kind, &positions);
                    let idx = positions.iter().map(|p| all.binary_search(p).unwrap_or(0)).collect();
                    (slot, req, idx)
                })
                .collect();
            Action::Split { kind, access, reqs, nkeys }
        }
    }
}
