//! Per-connection state. [`Client`] is owned by the connection's task (and borrowed by whoever runs
//! a command for it, including the server serving a blocked client); [`ClientShared`] holds the few
//! things other clients must reach while that borrow is held: the outbox PUBLISH and MONITOR write
//! to, the kill flag, and the WATCH dirty flag.

use bytes::BytesMut;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Instant;
use tokio::sync::Notify;

pub struct ClientShared {
    pub id: u64,
    /// Bytes produced for this client by others (messages, served blocking commands), written
    /// before its own next replies.
    pub outbox: RefCell<BytesMut>,
    pub notify: Notify,
    pub killed: Cell<bool>,
    /// A WATCHed key was touched: EXEC must fail.
    pub dirty_cas: Cell<bool>,
    /// RESP3 (`HELLO 3`): messages are pushes.
    pub resp3: Cell<bool>,
}

impl ClientShared {
    /// Queues bytes for the client and wakes its task.
    pub fn send(&self, bytes: &[u8]) {
        self.outbox.borrow_mut().extend_from_slice(bytes);
        self.notify.notify_one();
    }
    pub fn kill(&self) {
        self.killed.set(true);
        self.notify.notify_one();
    }
    pub fn outbox_len(&self) -> usize {
        self.outbox.borrow().len()
    }
}

/// A command captured to run later (MULTI queue, blocked command re-run).
#[derive(Debug, Clone)]
pub struct OwnedCommand {
    pub args: Vec<Vec<u8>>,
}

impl OwnedCommand {
    pub fn new(args: &[&[u8]]) -> Self {
        OwnedCommand { args: args.iter().map(|a| a.to_vec()).collect() }
    }
    pub fn argv(&self) -> Vec<&[u8]> {
        self.args.iter().map(|a| a.as_slice()).collect()
    }
}

/// What a blocked client waits for.
#[derive(Debug)]
pub struct Blocked {
    pub db: usize,
    pub keys: Vec<Box<[u8]>>,
    pub deadline: Option<Instant>,
    /// The command to run again when one of the keys changes.
    pub command: OwnedCommand,
    /// The reply on timeout.
    pub on_timeout: TimeoutReply,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeoutReply {
    NullArray,
    NullBulk,
}

pub struct Client {
    pub id: u64,
    pub shared: Rc<ClientShared>,
    pub addr: String,
    pub laddr: String,
    pub name: Option<Vec<u8>>,
    pub lib_name: Option<Vec<u8>>,
    pub lib_ver: Option<Vec<u8>>,
    pub db: usize,
    pub resp3: bool,
    pub authenticated: bool,
    pub created: Instant,
    pub last_interaction: Instant,
    pub last_cmd: &'static str,
    /// MULTI queue; `Some` inside a transaction.
    pub multi: Option<Vec<OwnedCommand>>,
    /// A command queued in MULTI was rejected: EXEC answers EXECABORT.
    pub multi_error: bool,
    pub watched: Vec<(usize, Box<[u8]>)>,
    pub subs: BTreeSet<Vec<u8>>,
    /// Patterns in subscription order: PUNSUBSCRIBE without arguments replies in that order.
    pub psubs: indexmap::IndexSet<Vec<u8>>,
    /// Set by a blocking command that found nothing; the session parks the client.
    pub blocked: Option<Blocked>,
    pub monitor: bool,
    pub no_evict: bool,
    /// Reply then close (QUIT, protocol error).
    pub close_after_reply: bool,
    /// Cluster: ASKING was sent; the next command may touch an importing slot (one command only).
    pub asking: bool,
    /// Cluster: READONLY was sent; reads of the master's slots are served by this replica.
    pub readonly: bool,
}

impl Client {
    pub fn new(id: u64, addr: String, laddr: String) -> Self {
        let now = Instant::now();
        Client {
            id,
            shared: Rc::new(ClientShared {
                id,
                outbox: RefCell::new(BytesMut::new()),
                notify: Notify::new(),
                killed: Cell::new(false),
                dirty_cas: Cell::new(false),
                resp3: Cell::new(false),
            }),
            addr,
            laddr,
            name: None,
            lib_name: None,
            lib_ver: None,
            db: 0,
            resp3: false,
            authenticated: false,
            created: now,
            last_interaction: now,
            last_cmd: "NULL",
            multi: None,
            multi_error: false,
            watched: Vec::new(),
            subs: BTreeSet::new(),
            psubs: indexmap::IndexSet::new(),
            blocked: None,
            monitor: false,
            no_evict: false,
            close_after_reply: false,
            asking: false,
            readonly: false,
        }
    }

    pub fn set_resp3(&mut self, on: bool) {
        self.resp3 = on;
        self.shared.resp3.set(on);
    }

    pub fn sub_count(&self) -> usize {
        self.subs.len() + self.psubs.len()
    }

    /// RESP2 clients with subscriptions may only run (un)subscribe, PING, QUIT, RESET.
    pub fn in_pubsub_mode(&self) -> bool {
        !self.resp3 && self.sub_count() > 0
    }

    /// CLIENT LIST / CLIENT INFO line, in Redis 7.0's field order.
    pub fn info_line(&self) -> String {
        let now = Instant::now();
        let mut flags = String::new();
        if self.monitor {
            flags.push('O');
        }
        if self.sub_count() > 0 {
            flags.push('P');
        }
        if self.multi.is_some() {
            flags.push('x');
        }
        if self.blocked.is_some() {
            flags.push('b');
        }
        if self.shared.dirty_cas.get() {
            flags.push('d');
        }
        if self.close_after_reply {
            flags.push('c');
        }
        if self.no_evict {
            flags.push('e');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let name = self.name.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
        let multi = self.multi.as_ref().map(|q| q.len() as i64).unwrap_or(-1);
        // Replies others queued for this client (published messages, MONITOR lines) are its
        // pending output; Redis shows a client with pending output as readable and writable.
        let pending = self.shared.outbox_len();
        let events = if pending > 0 { "rw" } else { "r" };
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll={} omem={} tot-mem={} events={} cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            8 + self.id,
            name,
            now.duration_since(self.created).as_secs(),
            now.duration_since(self.last_interaction).as_secs(),
            flags,
            self.db,
            self.subs.len(),
            self.psubs.len(),
            multi,
            (pending > 0) as u8,
            pending,
            1024 + pending,
            events,
            self.last_cmd,
            if self.resp3 { 3 } else { 2 },
        )
    }
}
