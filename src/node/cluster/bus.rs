//! The cluster bus: Redis 7.0's binary node-to-node protocol on the bus port (client port +
//! 10000), so slotway nodes and redis-server nodes form one cluster.
//!
//! - this file: links (one TCP connection each way per pair of nodes, as Redis), framing, bounded
//!   send queues, the accept loop and the 100 ms cron timer
//! - [`msg`]:     the `clusterMsg` wire format
//! - [`proto`]:   building and processing PING/PONG/MEET/FAIL/UPDATE, gossip, epochs, slots
//! - [`failure`]: failure reports, PFAIL -> FAIL, clearing FAIL
//! - [`cron`]:    `clusterCron`: reconnects, handshake timeouts, pings, PFAIL detection
//!
//! Each link is two local tasks (reader, writer) sharing a queue. The cluster state stays in
//! [`Server::cluster`]; a task borrows the server only between awaits, handles a whole message,
//! then runs [`crate::node::cluster::before_sleep`] so nodes.conf is written before anything else
//! happens. A link that is no longer the one its node points to (node forgotten, renamed, given a
//! newer link) is closed by the cron, so any code may drop a link from the state safely.

pub mod cron;
pub mod failure;
pub mod msg;
pub mod proto;

use crate::node::cluster::{id_str, NodeId};
use crate::node::server::{unix_ms, Server};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// However cluster-link-sendbuf-limit is set (0 = unlimited in Redis), a link whose peer stops
/// reading is dropped once this much is queued for it, so one stuck peer cannot eat the memory.
pub const HARD_SENDQ_LIMIT: usize = 64 << 20;

thread_local! {
    static BUFFER_LIMIT_EXCEEDED: Cell<u64> = const { Cell::new(0) };
}

/// CLUSTER INFO `total_cluster_links_buffer_limit_exceeded`: links freed because their send
/// queue passed a limit.
pub fn links_buffer_limit_exceeded() -> u64 {
    BUFFER_LIMIT_EXCEEDED.with(|c| c.get())
}

pub(crate) fn note_buffer_limit_exceeded() {
    BUFFER_LIMIT_EXCEEDED.with(|c| c.set(c.get() + 1));
}

struct LinkShared {
    inbound: bool,
    /// The node this link talks to: set at creation for outbound links, once the sender is known
    /// for inbound ones.
    node: Cell<Option<NodeId>>,
    peer_ip: RefCell<String>,
    local_ip: RefCell<String>,
    queue: RefCell<VecDeque<Vec<u8>>>,
    used: Cell<usize>,
    allocated: Cell<usize>,
    closed: Cell<bool>,
    wake_writer: Notify,
    wake_reader: Notify,
    /// Interrupts a write blocked on a peer that does not read, when the link closes.
    wake_closing: Notify,
}

/// A bus connection to (outbound) or from (inbound) a node. Cloning shares the connection.
#[derive(Clone)]
pub struct Link {
    /// Unix ms the link was created.
    pub ctime: i64,
    shared: Rc<LinkShared>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("ctime", &self.ctime)
            .field("inbound", &self.shared.inbound)
            .field("node", &self.node().map(|n| id_str(&n).to_string()))
            .field("queued", &self.shared.used.get())
            .field("closed", &self.shared.closed.get())
            .finish()
    }
}

impl Link {
    fn new(inbound: bool, node: Option<NodeId>) -> Link {
        Link {
            ctime: unix_ms(),
            shared: Rc::new(LinkShared {
                inbound,
                node: Cell::new(node),
                peer_ip: RefCell::new(String::new()),
                local_ip: RefCell::new(String::new()),
                queue: RefCell::new(VecDeque::new()),
                used: Cell::new(0),
                allocated: Cell::new(0),
                closed: Cell::new(false),
                wake_writer: Notify::new(),
                wake_reader: Notify::new(),
                wake_closing: Notify::new(),
            }),
        }
    }
    /// CLUSTER LINKS `events`: "r", or "rw" while something waits to be written.
    pub fn events(&self) -> &'static str {
        if self.shared.used.get() > 0 {
            "rw"
        } else {
            "r"
        }
    }
    /// CLUSTER LINKS `send-buffer-allocated`.
    pub fn send_buffer_allocated(&self) -> usize {
        self.shared.allocated.get()
    }
    /// CLUSTER LINKS `send-buffer-used`.
    pub fn send_buffer_used(&self) -> usize {
        self.shared.used.get()
    }
    pub fn inbound(&self) -> bool {
        self.shared.inbound
    }
    pub fn node(&self) -> Option<NodeId> {
        self.shared.node.get()
    }
    pub(crate) fn set_node(&self, id: Option<NodeId>) {
        self.shared.node.set(id);
    }
    pub fn same(&self, other: &Link) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }
    pub fn is_closed(&self) -> bool {
        self.shared.closed.get()
    }
    pub fn peer_ip(&self) -> String {
        self.shared.peer_ip.borrow().clone()
    }
    pub fn local_ip(&self) -> String {
        self.shared.local_ip.borrow().clone()
    }
    /// Queues bytes for the writer; false (nothing queued) when the hard bound would be passed.
    pub(crate) fn enqueue(&self, bytes: Vec<u8>) -> bool {
        if self.is_closed() {
            return true;
        }
        let used = self.shared.used.get() + bytes.len();
        if used > HARD_SENDQ_LIMIT {
            return false;
        }
        self.shared.used.set(used);
        self.shared.allocated.set(self.shared.allocated.get() + bytes.capacity());
        self.shared.queue.borrow_mut().push_back(bytes);
        self.shared.wake_writer.notify_one();
        true
    }
    /// Ends the connection: both tasks stop and the socket closes.
    pub fn close(&self) {
        if !self.shared.closed.replace(true) {
            self.shared.queue.borrow_mut().clear();
            self.shared.used.set(0);
            self.shared.allocated.set(0);
        }
        self.shared.wake_writer.notify_one();
        self.shared.wake_reader.notify_one();
        self.shared.wake_closing.notify_one();
    }
}

/// What the link tasks and the cron share.
pub(crate) struct Bus {
    srv: Rc<RefCell<Server>>,
    links: RefCell<Vec<Weak<LinkShared>>>,
}

impl Bus {
    fn register(&self, link: &Link) {
        let mut links = self.links.borrow_mut();
        links.retain(|w| w.upgrade().is_some_and(|l| !l.closed.get()));
        links.push(Rc::downgrade(&link.shared));
    }
    /// Live links, for the cron's sweep of detached ones.
    fn live_links(&self) -> Vec<Link> {
        self.links
            .borrow()
            .iter()
            .filter_map(|w| w.upgrade())
            .filter(|l| !l.closed.get())
            .map(|shared| Link { ctime: 0, shared })
            .collect()
    }
}

/// PUBLISH in cluster mode: queues the message on the link of every connected node (counted in
/// the sent stats), each bounded like every other bus message.
pub fn propagate_publish(srv: &mut Server, channel: &[u8], message: &[u8]) {
    let env = proto::Env::new(&srv.config);
    if let Some(st) = srv.cluster.as_deref_mut() {
        proto::send_publish(st, &env, channel, message);
    }
}

/// Serves the bus port and runs the cluster cron until the node shuts down.
pub async fn run(listeners: Vec<TcpListener>, srv: Rc<RefCell<Server>>) {
    let bus = Rc::new(Bus { srv, links: RefCell::new(Vec::new()) });
    for l in listeners {
        tokio::task::spawn_local(accept_loop(l, bus.clone()));
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut iteration: u64 = 0;
    loop {
        tick.tick().await;
        iteration += 1;
        let mut s = bus.srv.borrow_mut();
        if s.cluster.is_none() {
            continue;
        }
        cron::tick(&bus, &mut s, iteration);
        crate::node::cluster::before_sleep(&mut s);
    }
}

async fn accept_loop(listener: TcpListener, bus: Rc<Bus>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("Error accepting cluster node connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        tracing::debug!("Accepting cluster node connection from {}:{}", peer.ip(), peer.port());
        // Tied to no node yet: the first message naming a known sender ties it.
        let link = Link::new(true, None);
        bus.register(&link);
        start_io(&bus, &link, stream);
    }
}

/// Records the socket's addresses and starts the reader and writer of a connected link.
fn start_io(bus: &Rc<Bus>, link: &Link, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    if let Ok(a) = stream.peer_addr() {
        *link.shared.peer_ip.borrow_mut() = a.ip().to_canonical().to_string();
    }
    if let Ok(a) = stream.local_addr() {
        *link.shared.local_ip.borrow_mut() = a.ip().to_canonical().to_string();
    }
    let (rd, wr) = stream.into_split();
    tokio::task::spawn_local(writer(link.clone(), wr));
    tokio::task::spawn_local(reader(bus.clone(), link.clone(), rd));
}

/// Starts an outbound link to a node (the cron calls this for nodes without one): the node gets
/// the link at once (it shows as connected, like Redis), the connection completes in the
/// background.
pub(crate) fn connect(bus: &Rc<Bus>, st: &mut crate::node::cluster::ClusterState, id: &NodeId, timeout_ms: i64) {
    let Some(n) = st.nodes.get_mut(id) else { return };
    let link = Link::new(false, Some(*id));
    n.link = Some(link.clone());
    let (ip, cport) = (n.ip.clone(), n.cport);
    bus.register(&link);
    let bus = bus.clone();
    tokio::task::spawn_local(async move {
        let dur = Duration::from_millis(timeout_ms.max(100) as u64);
        let res = tokio::select! {
            r = tokio::time::timeout(dur, TcpStream::connect((ip.as_str(), cport))) => r,
            _ = link.shared.wake_reader.notified() => return finish(&bus, &link, "closed while connecting"),
        };
        match res {
            Ok(Ok(stream)) => {
                if link.is_closed() {
                    return;
                }
                start_io(&bus, &link, stream);
                let mut s = bus.srv.borrow_mut();
                if !proto::on_connected(&mut s, &link) {
                    drop(s);
                    finish(&bus, &link, "node gone while connecting");
                    return;
                }
                crate::node::cluster::before_sleep(&mut s);
            }
            Ok(Err(e)) => {
                tracing::debug!(
                    "Connection with Node {} at {}:{} failed: {e}",
                    id_str(&link.node().unwrap_or([b'?'; 40])),
                    ip,
                    cport
                );
                finish(&bus, &link, "connect failed");
            }
            Err(_) => {
                tracing::debug!("Connection with Node at {}:{} timed out", ip, cport);
                finish(&bus, &link, "connect timeout");
            }
        }
    });
}

/// Closes a link and takes it off its node, so the cron reconnects (`handleLinkIOError`).
fn finish(bus: &Rc<Bus>, link: &Link, why: &str) {
    link.close();
    if let Ok(mut s) = bus.srv.try_borrow_mut() {
        if let Some(st) = s.cluster.as_deref_mut() {
            proto::free_link(st, link);
        }
    }
    tracing::trace!("cluster link closed: {why}");
}

async fn writer(link: Link, mut wr: OwnedWriteHalf) {
    loop {
        if link.is_closed() {
            break;
        }
        let next = link.shared.queue.borrow_mut().pop_front();
        match next {
            Some(buf) => {
                // A peer that stops reading blocks this write; closing the link must still end
                // it (the socket is only released once both halves are gone).
                let res = tokio::select! {
                    r = wr.write_all(&buf) => r,
                    _ = link.shared.wake_closing.notified() => break,
                };
                if let Err(e) = res {
                    tracing::debug!("I/O error writing to node link: {e}");
                    break;
                }
                if !link.is_closed() {
                    link.shared.used.set(link.shared.used.get().saturating_sub(buf.len()));
                    link.shared.allocated.set(link.shared.allocated.get().saturating_sub(buf.capacity()));
                }
            }
            None => link.shared.wake_writer.notified().await,
        }
    }
    link.close();
}

async fn reader(bus: Rc<Bus>, link: Link, mut rd: OwnedReadHalf) {
    let why = read_loop(&bus, &link, &mut rd).await;
    finish(&bus, &link, why);
}

async fn read_loop(bus: &Rc<Bus>, link: &Link, rd: &mut OwnedReadHalf) -> &'static str {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Every whole message in the buffer, in order.
        loop {
            if buf.len() < 8 {
                break;
            }
            let totlen = match msg::frame_len(&buf[..8]) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("Bad message length or signature received from Cluster bus. ({e})");
                    return "bad frame";
                }
            };
            if buf.len() < totlen {
                break;
            }
            let frame: Vec<u8> = buf.drain(..totlen).collect();
            let m = match msg::decode(&frame) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!("Closing cluster bus link: {e}");
                    return "bad message";
                }
            };
            let mut s = bus.srv.borrow_mut();
            let keep = proto::process(&mut s, link, m);
            crate::node::cluster::before_sleep(&mut s);
            if !keep {
                return "closed by the protocol";
            }
        }
        if link.is_closed() {
            return "closed";
        }
        // Read at most what the current message still needs (or a chunk), never unbounded.
        let want = if buf.len() >= 8 { msg::frame_len(&buf[..8]).unwrap_or(8) - buf.len() } else { 8 - buf.len() };
        buf.reserve(want.clamp(8, 1 << 16));
        tokio::select! {
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => return "connection closed",
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("I/O error reading from node link: {e}");
                    return "read error";
                }
            },
            _ = link.shared.wake_reader.notified() => {}
        }
    }
}
