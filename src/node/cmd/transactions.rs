//! Transactions: MULTI EXEC DISCARD WATCH UNWATCH.
//!
//! The dispatcher queues commands while `client.multi` is `Some` and flags `multi_error` when it
//! rejects one (unknown command, wrong arity, ...); EXEC then answers EXECABORT. WATCH follows
//! Redis 7.0: a write to a watched key (or a FLUSH/SWAPDB that drops or replaces it) sets the
//! watcher's `dirty_cas`, and EXEC also fails when a watched key is past its TTL but still stored,
//! unless it already was when WATCHed. Deleting an expired key (lazily or from the cron) is a
//! change, except for a watcher that saw the key already expired.

use super::{CmdResult, Ctx, Handler};
use crate::command;
use crate::errors;
use crate::node::client::Client;
use crate::node::db::{Db, Watcher};
use crate::node::server::Server;
use std::cell::Cell;

pub const COMMANDS: &[(&str, Handler)] =
    &[("multi", multi), ("exec", exec), ("discard", discard), ("watch", watch), ("unwatch", unwatch_cmd)];

fn multi(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        // Not a queueing error: the transaction stays valid.
        return Err(errors::MULTI_NESTED.into());
    }
    ctx.client.multi = Some(Vec::new());
    ctx.out.ok();
    Ok(())
}

fn discard(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(errors::DISCARD_WITHOUT_MULTI.into());
    }
    discard_transaction(ctx.srv, ctx.client);
    ctx.out.ok();
    Ok(())
}

fn exec(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(errors::EXEC_WITHOUT_MULTI.into());
    }
    if watched_key_expired(ctx.srv, ctx.client, ctx.now) {
        ctx.client.shared.dirty_cas.set(true);
    }
    if ctx.client.multi_error {
        discard_transaction(ctx.srv, ctx.client);
        return Err(errors::EXECABORT.into());
    }
    if ctx.client.shared.dirty_cas.get() {
        discard_transaction(ctx.srv, ctx.client);
        ctx.out.null_array();
        return Ok(());
    }
    unwatch(ctx);
    // The queue stays in place while it runs, as in Redis: CLIENT INFO inside EXEC shows the
    // transaction (`flags=x multi=N`) and `cmd=exec`.
    let n = ctx.client.multi.as_ref().map_or(0, |q| q.len());
    ctx.out.array(n);
    let now = ctx.now;
    for i in 0..n {
        let args = ctx.client.multi.as_mut().and_then(|q| q.get_mut(i)).map(|c| std::mem::take(&mut c.args));
        let args = args.unwrap_or_default();
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        // Every queued command resolved to a handler when it was queued.
        let found = (!argv.is_empty())
            .then(|| command::resolve(&argv).ok())
            .flatten()
            .and_then(|spec| Some((spec, super::handler_of(spec)?)));
        match found {
            // Like Redis, the commands see the time EXEC started: nothing expires halfway through.
            Some((spec, handler)) => super::run(ctx.srv, ctx.client, ctx.out, spec, handler, &argv, true, now),
            None => ctx.out.error(&errors::unknown_command(argv.first().copied().unwrap_or(b""), &[])),
        }
    }
    discard_transaction(ctx.srv, ctx.client);
    Ok(())
}

fn watch(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(errors::WATCH_IN_MULTI.into());
    }
    let dbi = ctx.client.db;
    let now = ctx.now;
    let id = ctx.client.id;
    for &key in &args[1..] {
        let db = &mut ctx.srv.dbs[dbi];
        if db.watched.get(key).is_some_and(|ws| ws.iter().any(|w| w.client.id == id)) {
            continue;
        }
        let expired = is_logically_expired(db, key, now);
        db.watched
            .entry(key.into())
            .or_default()
            .push(Watcher { client: ctx.client.shared.clone(), expired: Cell::new(expired) });
        ctx.client.watched.push((dbi, key.into()));
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch_cmd(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    unwatch(ctx);
    ctx.out.ok();
    Ok(())
}

/// Stored but past its TTL (Redis's `keyIsExpired`), without deleting it.
fn is_logically_expired(db: &Db, key: &[u8], now: i64) -> bool {
    db.ttl_of(key).is_some_and(|at| at < now)
}

/// Redis's `isWatchedKeyExpired`: a watched key that expired since WATCH but was not deleted yet.
fn watched_key_expired(srv: &Server, client: &Client, now: i64) -> bool {
    client.watched.iter().any(|(dbi, key)| {
        let db = &srv.dbs[*dbi];
        let flagged = db
            .watched
            .get(key)
            .and_then(|ws| ws.iter().find(|w| w.client.id == client.id))
            .is_some_and(|w| w.expired.get());
        !flagged && is_logically_expired(db, key, now)
    })
}

/// Ends a transaction (EXEC, DISCARD, a rejected EXEC): drops the queue, the error flag and every
/// WATCH.
pub fn discard_transaction(srv: &mut Server, client: &mut Client) {
    client.multi = None;
    client.multi_error = false;
    unwatch_all(srv, client);
    client.watched.clear();
    client.shared.dirty_cas.set(false);
}

/// Forgets a client's watched keys in the server's registry (disconnect).
pub fn unwatch_all(srv: &mut Server, client: &Client) {
    for (db, key) in &client.watched {
        if let Some(v) = srv.dbs[*db].watched.get_mut(key) {
            v.retain(|w| w.client.id != client.id);
            if v.is_empty() {
                srv.dbs[*db].watched.remove(key);
            }
        }
    }
}

/// UNWATCH for the current client (also EXEC, DISCARD, RESET).
pub fn unwatch(ctx: &mut Ctx) {
    unwatch_all(ctx.srv, ctx.client);
    ctx.client.watched.clear();
    ctx.client.shared.dirty_cas.set(false);
}

/// Redis 7.0's `touchWatchedKey`: `key` was written or deleted (expiry included), so its
/// watchers' EXEC must fail.
///
/// A watcher whose key was already expired when WATCHed is special: if the key is now gone, the
/// change is its (logical) deletion, which changes nothing for it; it forgets the flag and stays
/// clean. Redis leaves the loop (a `break` in multi.c) when such a key is still stored, which it
/// can only be when a write skipped the lazy expiry that Redis's lookups always do first; we mark
/// that watcher dirty instead, which is what Redis shows after its expiry-then-write sequence. A
/// client already dirty counts as unwatched, as Redis unwatches it at once.
pub fn touch_watched_key(db: &Db, key: &[u8]) {
    if db.watched.is_empty() {
        return;
    }
    let Some(watchers) = db.watched.get(key) else { return };
    let stored = db.holds(key);
    for w in watchers {
        if w.client.dirty_cas.get() {
            continue;
        }
        if w.expired.get() {
            w.expired.set(false);
            if !stored {
                continue;
            }
        }
        w.client.dirty_cas.set(true);
    }
}

/// Redis 7.0's `touchAllWatchedKeysInDb`: db `emptied` is flushed, or swapped with
/// `replaced_with`. Watchers of a key that exists in either (before the change) fail their EXEC;
/// the expired-at-WATCH flag is kept in step so that an expired key replaced by nothing, or by
/// another expired key, is no change.
pub fn touch_all_watched_in_db(dbs: &[Db], emptied: usize, replaced_with: Option<usize>, now: i64) {
    let e = &dbs[emptied];
    if e.watched.is_empty() {
        return;
    }
    let other = replaced_with.map(|r| &dbs[r]);
    for (key, watchers) in &e.watched {
        let in_emptied = e.holds(key);
        let in_other = other.is_some_and(|o| o.holds(key));
        if !in_emptied && !in_other {
            continue;
        }
        let other_expired = other.is_some_and(|o| is_logically_expired(o, key, now));
        for w in watchers {
            if w.expired.get() {
                if !in_other {
                    w.expired.set(false);
                    continue;
                } else if other_expired {
                    continue;
                }
            } else if !in_emptied && other_expired {
                w.expired.set(true);
                continue;
            }
            w.client.dirty_cas.set(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::node::client::Client;
    use crate::node::config::Config;
    use crate::node::server::{unix_ms, Server};
    use crate::node::types::Value;
    use crate::resp::Reply;

    fn setup() -> (Server, Client, Client) {
        let srv = Server::new(Config::default());
        (srv, Client::new(1, "a".into(), "l".into()), Client::new(2, "b".into(), "l".into()))
    }

    fn cmd(srv: &mut Server, c: &mut Client, line: &str) -> String {
        let args: Vec<&[u8]> = line.split(' ').map(|a| a.as_bytes()).collect();
        let mut out = Reply::new(c.resp3);
        crate::node::cmd::execute(srv, c, &mut out, &args);
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    /// A key stored with a TTL `ms` from now (negative: already past, not yet deleted).
    fn set_with_ttl(srv: &mut Server, key: &str, ms: i64) {
        let now = unix_ms();
        srv.dbs[0].set(key.as_bytes(), Value::Str(b"v".to_vec()), now);
        srv.dbs[0].set_expire(key.as_bytes(), now + ms);
    }

    #[test]
    fn expired_but_stored_watched_key_fails_exec() {
        let (mut srv, mut a, _) = setup();
        set_with_ttl(&mut srv, "k", 60_000);
        assert_eq!(cmd(&mut srv, &mut a, "WATCH k"), "+OK\r\n");
        // The key's time passes; nobody deleted it yet.
        srv.dbs[0].set_expire(b"k", unix_ms() - 10);
        cmd(&mut srv, &mut a, "MULTI");
        assert_eq!(cmd(&mut srv, &mut a, "EXEC"), "*-1\r\n");
    }

    #[test]
    fn key_already_expired_when_watched_does_not_fail_exec() {
        let (mut srv, mut a, _) = setup();
        set_with_ttl(&mut srv, "k", -10);
        cmd(&mut srv, &mut a, "WATCH k");
        cmd(&mut srv, &mut a, "MULTI");
        assert_eq!(cmd(&mut srv, &mut a, "EXEC"), "*0\r\n");
    }

    #[test]
    fn deleting_a_key_expired_at_watch_time_is_no_change() {
        let (mut srv, mut a, _) = setup();
        set_with_ttl(&mut srv, "k", -10);
        cmd(&mut srv, &mut a, "WATCH k");
        // Lazy expiry removes it and signals the deletion.
        assert_eq!(cmd(&mut srv, &mut a, "GET k"), "$-1\r\n");
        assert!(!a.shared.dirty_cas.get());
        cmd(&mut srv, &mut a, "MULTI");
        assert_eq!(cmd(&mut srv, &mut a, "EXEC"), "*0\r\n");
    }

    #[test]
    fn lazy_expiry_of_a_watched_key_fails_exec() {
        let (mut srv, mut a, _) = setup();
        set_with_ttl(&mut srv, "k", 60_000);
        cmd(&mut srv, &mut a, "WATCH k");
        srv.dbs[0].set_expire(b"k", unix_ms() - 10);
        assert_eq!(cmd(&mut srv, &mut a, "GET k"), "$-1\r\n");
        assert!(a.shared.dirty_cas.get());
    }

    #[test]
    fn writing_a_key_expired_at_watch_time_is_a_change() {
        let (mut srv, mut a, mut b) = setup();
        set_with_ttl(&mut srv, "k", -10);
        cmd(&mut srv, &mut a, "WATCH k");
        cmd(&mut srv, &mut b, "SET k new");
        cmd(&mut srv, &mut a, "MULTI");
        assert_eq!(cmd(&mut srv, &mut a, "EXEC"), "*-1\r\n");
    }

    #[test]
    fn flush_touches_only_existing_keys() {
        let (mut srv, mut a, mut b) = setup();
        set_with_ttl(&mut srv, "here", 60_000);
        cmd(&mut srv, &mut a, "WATCH here");
        cmd(&mut srv, &mut b, "WATCH missing");
        srv.signal_db(0);
        assert!(a.shared.dirty_cas.get());
        assert!(!b.shared.dirty_cas.get());
    }

    #[test]
    fn swapdb_touches_keys_existing_in_either_db() {
        let (mut srv, mut a, mut b) = setup();
        let now = unix_ms();
        srv.dbs[1].set(b"other", Value::Str(b"v".to_vec()), now);
        cmd(&mut srv, &mut a, "WATCH other");
        cmd(&mut srv, &mut b, "WATCH neither");
        super::touch_all_watched_in_db(&srv.dbs, 0, Some(1), unix_ms());
        super::touch_all_watched_in_db(&srv.dbs, 1, Some(0), unix_ms());
        assert!(a.shared.dirty_cas.get());
        assert!(!b.shared.dirty_cas.get());
    }

    #[test]
    fn unwatch_and_disconnect_leave_no_registry_entries() {
        let (mut srv, mut a, mut b) = setup();
        cmd(&mut srv, &mut a, "WATCH x y");
        cmd(&mut srv, &mut b, "WATCH y");
        cmd(&mut srv, &mut a, "UNWATCH");
        assert!(!srv.dbs[0].watched.contains_key(&b"x"[..]));
        assert_eq!(srv.dbs[0].watched.get(&b"y"[..]).map(|v| v.len()), Some(1));
        super::unwatch_all(&mut srv, &b);
        assert!(srv.dbs[0].watched.is_empty());
    }

    #[test]
    fn exec_runs_the_queue_and_ends_the_transaction() {
        let (mut srv, mut a, _) = setup();
        cmd(&mut srv, &mut a, "WATCH w");
        cmd(&mut srv, &mut a, "MULTI");
        cmd(&mut srv, &mut a, "SET k 1");
        cmd(&mut srv, &mut a, "GET k");
        assert_eq!(cmd(&mut srv, &mut a, "EXEC"), "*2\r\n+OK\r\n$1\r\n1\r\n");
        assert!(a.multi.is_none() && a.watched.is_empty() && srv.dbs[0].watched.is_empty());
        assert_eq!(a.last_cmd, "exec");
    }

    #[test]
    fn inside_exec_the_client_is_still_in_its_transaction() {
        let (mut srv, mut a, _) = setup();
        cmd(&mut srv, &mut a, "MULTI");
        cmd(&mut srv, &mut a, "SET k 1");
        cmd(&mut srv, &mut a, "CLIENT INFO");
        let reply = cmd(&mut srv, &mut a, "EXEC");
        assert!(reply.contains(" flags=x ") && reply.contains(" multi=2 ") && reply.contains(" cmd=exec "), "{reply}");
    }

    #[test]
    fn monitors_see_queued_commands_before_exec() {
        let (mut srv, mut a, m) = setup();
        srv.monitors.push(m.shared.clone());
        cmd(&mut srv, &mut a, "MULTI");
        cmd(&mut srv, &mut a, "SET k 1");
        cmd(&mut srv, &mut a, "EXEC");
        cmd(&mut srv, &mut a, "EXEC x");
        let fed = String::from_utf8_lossy(&m.shared.outbox.borrow()).into_owned();
        let cmds: Vec<&str> = fed.lines().filter_map(|l| l.split("] ").nth(1)).collect();
        assert_eq!(cmds, ["\"MULTI\"", "\"SET\" \"k\" \"1\"", "\"EXEC\"", "\"EXEC\" \"x\""]);
    }

    #[test]
    fn aborted_transaction_stops_queueing() {
        let (mut srv, mut a, _) = setup();
        cmd(&mut srv, &mut a, "MULTI");
        cmd(&mut srv, &mut a, "SET k 1");
        cmd(&mut srv, &mut a, "NOSUCH");
        assert_eq!(cmd(&mut srv, &mut a, "SET k 2"), "+QUEUED\r\n");
        assert_eq!(a.multi.as_ref().map(|q| q.len()), Some(1));
        assert!(cmd(&mut srv, &mut a, "EXEC").starts_with("-EXECABORT"));
        assert!(a.multi.is_none() && !a.multi_error);
    }
}
