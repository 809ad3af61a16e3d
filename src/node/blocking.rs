//! Blocked clients (BLPOP, BLMOVE, BZPOPMIN, ...). A blocking command that finds nothing records
//! a [`Blocked`](super::client::Blocked) on its client; the session parks it here. When a command
//! changes a key someone waits on, [`serve_ready`] runs right after that command (as Redis's
//! `handleClientsBlockedOnKeys` does) and re-runs each waiter's command in FIFO order; a waiter
//! whose command finds data gets its reply, one that finds nothing keeps waiting.

use super::client::{Client, TimeoutReply};
use super::db::Key;
use super::server::{ClientRef, Server};
use crate::command;
use crate::resp::Reply;
use std::cell::RefCell;

thread_local! {
    /// The key whose change is being served while a waiter's command re-runs.
    static SERVING: RefCell<Option<Key>> = const { RefCell::new(None) };
}

/// While the server re-runs a blocked client's command: the key whose change woke it (None on
/// an ordinary call). Redis 7.0 serves a waiter from that key only, and leaves it blocked when
/// the key now holds another type, so a re-run must not pick another key or fail on a type.
pub fn serving_key() -> Option<Key> {
    SERVING.with(|s| s.borrow().clone())
}

/// Parks `client` (already carrying `blocked`) on its keys.
pub fn park(srv: &mut Server, client: &Client) {
    let Some(b) = &client.blocked else { return };
    for k in &b.keys {
        let q = srv.blocking.waiters.entry((b.db, k.clone())).or_default();
        if !q.contains(&client.id) {
            q.push_back(client.id);
        }
    }
}

/// Removes a client from every key it waits on.
pub fn unpark(srv: &mut Server, client: &Client) {
    let Some(b) = &client.blocked else { return };
    for k in &b.keys {
        let key = (b.db, k.clone());
        if let Some(q) = srv.blocking.waiters.get_mut(&key) {
            q.retain(|id| *id != client.id);
            if q.is_empty() {
                srv.blocking.waiters.remove(&key);
            }
        }
    }
}

/// The reply a timed-out client gets.
pub fn timeout_reply(kind: TimeoutReply, out: &mut Reply) {
    match kind {
        TimeoutReply::NullArray => out.null_array(),
        TimeoutReply::NullBulk => out.null(),
    }
}

/// Serves clients blocked on keys that changed. Bounded: each round serves only waiters queued
/// when it started, and a round only follows one that served somebody.
pub fn serve_ready(srv: &mut Server) {
    for _round in 0..1024 {
        let ready = std::mem::take(&mut srv.blocking.ready);
        if ready.is_empty() {
            return;
        }
        for key in ready {
            let Some(queue) = srv.blocking.waiters.get(&key) else { continue };
            let ids: Vec<u64> = queue.iter().copied().collect();
            for id in ids {
                let Some(cref) = srv.clients.get(&id).cloned() else { continue };
                serve_one(srv, &cref, &key.1);
            }
        }
    }
}

fn serve_one(srv: &mut Server, cref: &ClientRef, key: &Key) {
    // The waiter's task is parked, so its client is not borrowed; if it somehow is, skip it.
    let Ok(mut client) = cref.try_borrow_mut() else { return };
    let Some(blocked) = client.blocked.take() else { return };
    let args = blocked.command.argv();
    let Ok(spec) = command::resolve(&args) else {
        client.blocked = Some(blocked);
        return;
    };
    let Some(handler) = super::cmd::handler_of(spec) else {
        client.blocked = Some(blocked);
        return;
    };
    // The client stays parked during the re-run: if it blocks again (same command, same keys) it
    // keeps its place in every queue, as a Redis client that was not served does.
    let mut out = Reply::new(client.resp3);
    let saved_db = client.db;
    client.db = blocked.db;
    SERVING.with(|s| *s.borrow_mut() = Some(key.clone()));
    super::cmd::run(srv, &mut client, &mut out, spec, handler, &args, false, super::server::unix_ms());
    SERVING.with(|s| *s.borrow_mut() = None);
    client.db = saved_db;
    if let Some(again) = client.blocked.as_mut() {
        // Still nothing for it: keep the original deadline and wait on.
        again.deadline = blocked.deadline;
    } else {
        client.blocked = Some(blocked);
        unpark(srv, &client);
        client.blocked = None;
        client.shared.send(&out.buf);
    }
}
