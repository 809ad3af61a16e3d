//! What happens after a request was sent: the reply is passed on unless it is a redirect or a
//! transient cluster error. MOVED updates that slot in the snapshot, wakes the refresh and
//! retries on the new owner; ASK sends ASKING + the request to the target once, without touching
//! the map; TRYAGAIN, CLUSTERDOWN and an unreachable node are retried with backoff. A node whose
//! breaker is open (or whose connection timed out) is not retried: the request goes to another
//! owner if the snapshot names one, else fails at once. Every loop is bounded; at the bound the
//! client gets an error naming the node.

use crate::cluster::topology::{Addr, Topology};
use crate::errors;
use crate::proxy::backend::{BackendError, Batch, NodeConns, ReplyResult, Request, MAX_BATCH};
use crate::proxy::readpolicy::{self, Pick};
use crate::proxy::server::{ConnKey, Shared};
use crate::proxy::Stats;
use bytes::Bytes;
use rand::Rng;
use smallvec::SmallVec;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

#[derive(Debug, PartialEq, Eq)]
pub enum Redirect {
    Moved(u16, Addr),
    Ask(u16, Addr),
    TryAgain,
    ClusterDown,
}

/// Recognises the replies that are about the cluster rather than the command.
pub fn classify(reply: &[u8]) -> Option<Redirect> {
    if reply.first() != Some(&b'-') {
        return None;
    }
    let line = reply[1..].strip_suffix(b"\r\n").unwrap_or(&reply[1..]);
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split(' ');
    match words.next()? {
        w @ ("MOVED" | "ASK") => {
            let slot: u16 = words.next()?.parse().ok().filter(|s| *s < crate::cluster::SLOTS)?;
            let (host, port) = words.next()?.rsplit_once(':')?;
            let addr = Addr::new(host, port.parse().ok()?);
            Some(if w == "MOVED" { Redirect::Moved(slot, addr) } else { Redirect::Ask(slot, addr) })
        }
        "TRYAGAIN" => Some(Redirect::TryAgain),
        "CLUSTERDOWN" => Some(Redirect::ClusterDown),
        _ => None,
    }
}

/// Where a request goes: the owner of a slot, a read of a slot (the node the read policy picks),
/// or any master for commands without keys.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Slot(u16),
    Read(u16),
    AnyMaster,
}

/// The node for a target in `topo`. Only a [`Target::Read`] can pick a replica; `replica_failed`
/// says that this read already failed on one.
pub fn route(sh: &Shared, topo: &Topology, target: Target, lane: u64, replica_failed: bool) -> Option<Pick> {
    let master = |n: &crate::cluster::topology::NodeInfo| Pick { addr: n.addr.clone(), replica: false };
    match target {
        Target::Slot(s) => topo.master_for_slot(s).map(master),
        Target::Read(s) => sh.reads.route(topo, s, lane, replica_failed),
        Target::AnyMaster => {
            let shards: Vec<_> = topo.shards().iter().filter(|s| !s.slots.is_empty()).collect();
            if shards.is_empty() {
                return None;
            }
            Some(master(&shards[rand::thread_rng().gen_range(0..shards.len())].master))
        }
    }
}

/// Requests a session routed while working through one read, grouped by connection, so each
/// connection gets them in one channel message ([`Batch`]). The session flushes it before it
/// reads again and before anything that could wait on these requests' replies.
#[derive(Default)]
pub struct Outbox {
    groups: SmallVec<[(Arc<NodeConns>, Batch); 4]>,
    full: bool,
    /// The connection sets this session used, so that routing a request compares a few
    /// addresses instead of locking and hashing into the group's map ([`Shared::conns`]) each
    /// time. Those sets live as long as the proxy, so an entry never goes stale; at most
    /// [`KNOWN_CONNS`] of them, the rest are looked up in the map.
    known: SmallVec<[(ConnKey, Arc<NodeConns>); 4]>,
}

/// How many connection sets an [`Outbox`] remembers.
const KNOWN_CONNS: usize = 32;

impl Outbox {
    fn conns(&mut self, sh: &Shared, group: usize, addr: &Addr, resp3: bool, readonly: bool) -> Arc<NodeConns> {
        let found = self.known.iter().find(|(k, _)| k.resp3 == resp3 && k.readonly == readonly && k.addr == *addr);
        if let Some((_, c)) = found {
            return c.clone();
        }
        let c = sh.conns(group, addr, resp3, readonly);
        if self.known.len() < KNOWN_CONNS {
            self.known.push((ConnKey { addr: addr.clone(), resp3, readonly }, c.clone()));
        }
        c
    }

    fn push(&mut self, conns: Arc<NodeConns>, r: Request) {
        let batch = match self.groups.iter_mut().find(|(c, _)| Arc::ptr_eq(c, &conns)) {
            Some((_, b)) => b,
            None => {
                self.groups.push((conns, Batch::new()));
                &mut self.groups.last_mut().expect("just pushed").1
            }
        };
        if batch.len() == batch.inline_size() {
            // A pipelined read sends several requests to a node: leave the inline space once, for
            // room for a pipeline's worth, instead of doubling from 2.
            batch.reserve(16usize.saturating_sub(batch.len()));
        }
        batch.push(r);
        self.full |= batch.len() >= MAX_BATCH;
    }

    /// Whether a batch reached [`MAX_BATCH`]: time to flush.
    pub fn is_full(&self) -> bool {
        self.full
    }

    pub async fn flush(&mut self, lane: u64) {
        self.full = false;
        for (conns, batch) in self.groups.drain(..) {
            conns.send_batch(batch, lane).await;
        }
    }
}

/// A request on its way: the bytes (kept for retries), where it went, and its reply.
pub struct Inflight {
    /// The client's id: keeps its requests to one node on one connection, in order.
    pub lane: u64,
    pub req: Bytes,
    pub target: Target,
    pub addr: Option<Addr>,
    /// `addr` is a replica, reached over a READONLY connection (only ever for a read).
    pub replica: bool,
    pub rx: Option<oneshot::Receiver<ReplyResult>>,
    /// The result, once [`Inflight::try_finish`] took it from `rx` and it needs more than passing on.
    got: Option<ReplyResult>,
}

pub fn error_reply(text: &str) -> Bytes {
    let mut r = crate::resp::Reply::new(false);
    r.error(text);
    r.buf.freeze()
}

impl Inflight {
    /// Routes `req` to the target's node in `topo` (the session's view) and puts it in `outbox`;
    /// it leaves when the outbox is flushed.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        sh: &Arc<Shared>,
        topo: &Topology,
        group: usize,
        resp3: bool,
        lane: u64,
        req: Bytes,
        target: Target,
        outbox: &mut Outbox,
    ) -> Inflight {
        let pick = route(sh, topo, target, lane, false);
        let replica = pick.as_ref().is_some_and(|p| p.replica);
        let addr = pick.map(|p| p.addr);
        let rx = addr.as_ref().map(|a| {
            let (tx, rx) = oneshot::channel();
            let conns = outbox.conns(sh, group, a, resp3, replica);
            outbox.push(conns, Request { bytes: req.clone(), asking: false, tx });
            rx
        });
        Inflight { lane, req, target, addr, replica, rx, got: None }
    }

    /// The reply, when it has already come and is the client's as it is (not a redirect, not a
    /// transient cluster error, not a replica refusing reads): no future, no waiting. Otherwise
    /// `None`, and [`Inflight::finish`] waits for the result or acts on it.
    pub fn try_finish(&mut self, sh: &Shared) -> Option<Bytes> {
        let res = match self.rx.as_mut()?.try_recv() {
            Ok(res) => res,
            Err(oneshot::error::TryRecvError::Empty) => return None,
            // The receiver is spent (awaiting it would panic): its answer is that nobody will send.
            Err(oneshot::error::TryRecvError::Closed) => Err(dropped()),
        };
        self.rx = None;
        match res {
            Ok(reply) if classify(&reply).is_none() && !(self.replica && readpolicy::refuses_reads(&reply)) => {
                replica_answered(sh, self.replica, self.addr.as_ref());
                Some(reply)
            }
            res => {
                self.got = Some(res);
                None
            }
        }
    }

    /// The reply the client gets, after redirects and retries.
    pub async fn finish(self, sh: &Arc<Shared>, group: usize, resp3: bool) -> Bytes {
        let Inflight { lane, req, target, mut addr, mut replica, rx, got } = self;
        let mut res: Option<ReplyResult> = match (got, rx) {
            (Some(res), _) => Some(res),
            (None, Some(rx)) => Some(rx.await.unwrap_or_else(|_| Err(dropped()))),
            (None, None) => None,
        };
        let (mut redirects, mut retries) = (0u32, 0u32);
        let mut replica_failed = false;
        loop {
            let reroute = |replica_failed: bool| route(sh, &sh.topo.load(), target, lane, replica_failed);
            let res_now = match res.take() {
                // A replica that cannot serve reads right now fails this read like a lost
                // connection: it is retried elsewhere, the client never sees the error.
                Some(Ok(reply)) if replica && readpolicy::refuses_reads(&reply) => {
                    Some(Err(BackendError::NotSent(String::from_utf8_lossy(reply.trim_ascii_end()).into_owned())))
                }
                other => other,
            };
            let (next, asking) = match res_now {
                None => {
                    // No owner known for the slot: wait for a refresh, then give up as Redis would.
                    retries += 1;
                    if retries > sh.opts.max_retries {
                        return error_reply(errors::CLUSTERDOWN_UNBOUND);
                    }
                    sh.refresh.notify_one();
                    backoff(retries).await;
                    (reroute(replica_failed), false)
                }
                Some(Ok(reply)) => match classify(&reply) {
                    None => {
                        replica_answered(sh, replica, addr.as_ref());
                        return reply;
                    }
                    // A MOVED names a master: it goes there over an ordinary connection.
                    Some(Redirect::Moved(slot, to)) => {
                        Stats::inc(&sh.stats.moved);
                        redirects += 1;
                        if redirects > sh.opts.max_redirects {
                            return error_reply(&errors::proxy_too_many_redirects(slot, &to.to_string()));
                        }
                        sh.apply_moved(slot, &to);
                        (Some(Pick { addr: to, replica: false }), false)
                    }
                    Some(Redirect::Ask(slot, to)) => {
                        Stats::inc(&sh.stats.ask);
                        redirects += 1;
                        if redirects > sh.opts.max_redirects {
                            return error_reply(&errors::proxy_too_many_redirects(slot, &to.to_string()));
                        }
                        (Some(Pick { addr: to, replica: false }), true)
                    }
                    Some(r) => {
                        Stats::inc(if r == Redirect::TryAgain { &sh.stats.tryagain } else { &sh.stats.clusterdown });
                        retries += 1;
                        if retries > sh.opts.max_retries {
                            return reply;
                        }
                        sh.refresh.notify_one();
                        backoff(retries).await;
                        (reroute(replica_failed), false)
                    }
                },
                Some(Err(e)) => {
                    Stats::inc(&sh.stats.conn_errors);
                    sh.refresh.notify_one();
                    let node = addr.as_ref().map(|a| a.to_string()).unwrap_or_default();
                    let (why, lost, unavailable) = match e {
                        BackendError::NotSent(why) => (why, false, false),
                        BackendError::Lost(why) => (why, true, false),
                        BackendError::Unavailable(why) => (why, false, true),
                    };
                    retries += 1;
                    if replica {
                        // A read is safe to run again wherever it got to: the replica gets no
                        // reads for a while, and this one goes to another node now.
                        if let Some(a) = &addr {
                            sh.reads.mark_down(a);
                        }
                        replica_failed = true;
                        if retries > sh.opts.max_retries {
                            return error_reply(&errors::proxy_node_error(&node, &why));
                        }
                        (reroute(true), false)
                    } else if lost || retries > sh.opts.max_retries {
                        // Lost: it may have run, and retrying a write could apply it twice.
                        return error_reply(&errors::proxy_node_error(&node, &why));
                    } else if unavailable {
                        // The node is down right now (breaker open, or its connection timed
                        // out): the same node would fail the same way, so only another owner (a
                        // failover the refresh has seen) is worth a try; else the client hears
                        // it at once.
                        let next = reroute(replica_failed);
                        if next.as_ref().is_none_or(|p| Some(&p.addr) == addr.as_ref()) {
                            return error_reply(&errors::proxy_node_error(&node, &why));
                        }
                        (next, false)
                    } else {
                        backoff(retries).await;
                        (reroute(replica_failed), false)
                    }
                }
            };
            replica = next.as_ref().is_some_and(|p| p.replica);
            addr = next.map(|p| p.addr);
            res = match &addr {
                Some(a) => {
                    let rx = sh.conns(group, a, resp3, replica).send(req.clone(), asking, lane).await;
                    Some(rx.await.unwrap_or_else(|_| Err(dropped())))
                }
                None => None,
            };
        }
    }
}

/// A reply the client gets came from `addr`: a replica that answered is usable for reads again.
fn replica_answered(sh: &Shared, replica: bool, addr: Option<&Addr>) {
    if let (true, Some(a)) = (replica, addr) {
        sh.reads.mark_up(a);
    }
}

/// The result for a request whose sender went away without a reply (its connection task ended).
fn dropped() -> BackendError {
    BackendError::NotSent("request dropped".into())
}

/// 10, 20, 40 ... ms, at most 500 ms, with jitter so retrying clients do not move in lockstep.
async fn backoff(attempt: u32) {
    let base = 10u64 << attempt.min(6);
    let ms = base.min(500);
    let jitter = rand::thread_rng().gen_range(0..=ms / 2);
    tokio::time::sleep(Duration::from_millis(ms / 2 + jitter)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(
            classify(b"-MOVED 3999 127.0.0.1:6381\r\n"),
            Some(Redirect::Moved(3999, Addr::new("127.0.0.1", 6381)))
        );
        assert_eq!(classify(b"-ASK 1 ::1:7000\r\n"), Some(Redirect::Ask(1, Addr::new("::1", 7000))));
        assert_eq!(classify(b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"), Some(Redirect::TryAgain));
        assert_eq!(classify(b"-CLUSTERDOWN The cluster is down\r\n"), Some(Redirect::ClusterDown));
        assert_eq!(classify(b"-MOVED 99999 h:1\r\n"), None);
        assert_eq!(classify(b"-ERR x\r\n"), None);
        assert_eq!(classify(b"+OK\r\n"), None);
    }
}
