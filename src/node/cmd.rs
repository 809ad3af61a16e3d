//! Command dispatch: from parsed arguments to a reply, through the shared command table.
//! One file per command family under `cmd/`, each exporting `COMMANDS: &[(name, handler)]`.

pub mod client;
pub mod cluster;
pub mod connection;
pub mod dump;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod migrate;
pub mod pubsub;
pub mod server;
pub mod sets;
pub mod strings;
pub mod transactions;
pub mod util;
pub mod zsets;

use super::client::{Client, OwnedCommand};
use super::db::Db;
use super::server::{unix_ms, Server};
use crate::command::{self, flags, CommandSpec};
use crate::errors;
use crate::resp::Reply;
use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Instant;

/// An error reply: Redis's text, prefix included (`ERR ...`, `WRONGTYPE ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CmdError(pub Cow<'static, str>);

impl From<&'static str> for CmdError {
    fn from(s: &'static str) -> Self {
        CmdError(Cow::Borrowed(s))
    }
}
impl From<String> for CmdError {
    fn from(s: String) -> Self {
        CmdError(Cow::Owned(s))
    }
}

pub type CmdResult = Result<(), CmdError>;

/// A command implementation. It validates everything before writing any reply, so an `Err` never
/// follows a partial reply.
pub type Handler = fn(&mut Ctx, &[&[u8]]) -> CmdResult;

/// What a command sees: the server, its client, where its reply goes.
pub struct Ctx<'a> {
    pub srv: &'a mut Server,
    pub client: &'a mut Client,
    pub out: &'a mut Reply,
    /// Unix ms, fixed for the whole command (expiry is judged against one instant).
    pub now: i64,
    pub cmd: &'static CommandSpec,
    /// Inside EXEC (or a re-run): blocking commands must not block.
    pub in_exec: bool,
}

impl Ctx<'_> {
    pub fn db(&mut self) -> &mut Db {
        &mut self.srv.dbs[self.client.db]
    }
    pub fn db_index(&self) -> usize {
        self.client.db
    }
    /// Call after every write to `key`: WATCH, blocked clients, dirty counter.
    pub fn modified(&mut self, key: &[u8]) {
        self.srv.dirty += 1;
        let db = self.client.db;
        self.srv.signal_modified(db, key);
    }
    pub fn can_block(&self) -> bool {
        !self.in_exec
    }
}

fn handlers() -> &'static [Option<Handler>] {
    static TABLE: OnceLock<Vec<Option<Handler>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut v: Vec<Option<Handler>> = vec![None; command::table::COUNT];
        let families: &[&[(&str, Handler)]] = &[
            connection::COMMANDS,
            client::COMMANDS,
            keys::COMMANDS,
            dump::COMMANDS,
            migrate::COMMANDS,
            strings::COMMANDS,
            hashes::COMMANDS,
            lists::COMMANDS,
            sets::COMMANDS,
            zsets::COMMANDS,
            transactions::COMMANDS,
            pubsub::COMMANDS,
            server::COMMANDS,
            cluster::COMMANDS,
        ];
        let by_name: std::collections::HashMap<&str, usize> = command::all().map(|c| (c.name, c.id)).collect();
        for fam in families {
            for (name, h) in fam.iter() {
                let id = by_name.get(name).unwrap_or_else(|| panic!("handler for '{name}' has no table entry"));
                v[*id] = Some(*h);
            }
        }
        v
    })
}

/// Commands a RESP2 client may send while subscribed.
fn allowed_in_pubsub(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// Commands that run immediately inside MULTI instead of being queued.
fn runs_in_multi(name: &str) -> bool {
    matches!(name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// Runs one request for `client`, writing its reply to `out`.
pub fn execute(srv: &mut Server, client: &mut Client, out: &mut Reply, args: &[&[u8]]) {
    dispatch(srv, client, out, args);
    // ASKING holds for the next command only (Redis's `resetClient`), or for a whole transaction.
    if client.asking && client.multi.is_none() && !args[0].eq_ignore_ascii_case(b"asking") {
        client.asking = false;
    }
}

fn dispatch(srv: &mut Server, client: &mut Client, out: &mut Reply, args: &[&[u8]]) {
    let spec = match command::resolve(args) {
        Ok(c) => c,
        Err(e) => return reject(srv, client, out, None, &e, args),
    };
    // Arity first: a bare container command (`CLIENT`) has no handler of its own but must still
    // get Redis's "wrong number of arguments".
    if !spec.arity_ok(args.len()) {
        return reject(srv, client, out, Some(spec), &errors::wrong_arity(spec.name), args);
    }
    let Some(handler) = handlers()[spec.id] else {
        let e = errors::unknown_command(args[0], &args[1..]);
        return reject(srv, client, out, None, &e, args);
    };
    if srv.config.requirepass.is_some() && !client.authenticated && !spec.has(flags::NO_AUTH) {
        return reject(srv, client, out, Some(spec), errors::NOAUTH, args);
    }
    // Only transactions and pub/sub mode ask for the container name: not worth a search per command.
    let top = || spec.name.split('|').next().unwrap_or(spec.name);
    if client.multi.is_some() && !runs_in_multi(top()) && spec.has(flags::NO_MULTI) {
        return reject(srv, client, out, Some(spec), "ERR Command not allowed inside a transaction", args);
    }
    // Cluster mode: the slot check comes before everything else that may refuse a command
    // (Redis's `processCommand` order), queueing in MULTI included.
    if srv.cluster.is_some() {
        if let Err(r) = super::cluster::route::check(srv, client, spec, args) {
            return redirect(srv, client, out, spec, r);
        }
    }
    if client.in_pubsub_mode() && !allowed_in_pubsub(top()) {
        let e = format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        );
        return reject(srv, client, out, Some(spec), &e, args);
    }
    if let Some(queue) = client.multi.as_mut().filter(|_| !runs_in_multi(top())) {
        // Like Redis 7.0, a transaction already doomed (a queueing error, a touched WATCH) keeps
        // answering QUEUED but stores nothing.
        if !client.multi_error && !client.shared.dirty_cas.get() {
            queue.push(OwnedCommand::new(args));
        }
        out.queued();
        return;
    }
    run(srv, client, out, spec, handler, args, false, unix_ms());
    if !srv.blocking.ready.is_empty() {
        super::blocking::serve_ready(srv);
    }
    if srv.cluster.is_some() {
        super::cluster::before_sleep(srv);
    }
}

/// Calls a handler with accounting (stats, slowlog, monitors). Used by `execute`, EXEC and the
/// re-run of blocked commands. `now` is the command's clock: commands inside EXEC all see the time
/// EXEC started, as in Redis, so no key expires halfway through a transaction.
#[allow(clippy::too_many_arguments)]
pub fn run(
    srv: &mut Server,
    client: &mut Client,
    out: &mut Reply,
    spec: &'static CommandSpec,
    handler: Handler,
    args: &[&[u8]],
    in_exec: bool,
    now: i64,
) {
    let started = Instant::now();
    // Inside EXEC the client's last command stays EXEC (CLIENT LIST `cmd=exec`).
    if !in_exec {
        client.last_cmd = spec.name;
    }
    let mark = out.len();
    let result = {
        let mut ctx = Ctx { srv, client, out, now, cmd: spec, in_exec };
        handler(&mut ctx, args)
    };
    let elapsed = started.elapsed();
    let micros = elapsed.as_micros() as u64;
    if srv.config.latency_tracking && client.blocked.is_none() {
        srv.stats.record_histogram(spec.id, elapsed.as_nanos() as u64);
    }
    let stat = &mut srv.stats.commands[spec.id];
    stat.calls += 1;
    stat.usec += micros;
    srv.stats.commands_processed += 1;
    if let Err(e) = result {
        out.truncate(mark);
        srv.stats.commands[spec.id].failed += 1;
        count_error(srv, &e.0);
        out.error(&e.0);
    }
    // MIGRATE's passwords never reach MONITOR or SLOWLOG (Redis's `redactClientCommandArgument`).
    let redacted: Vec<&[u8]>;
    let args = if spec.name == "migrate" {
        let secret = migrate::secret_positions(args);
        redacted =
            args.iter().enumerate().map(|(i, a)| if secret.contains(&i) { &b"(redacted)"[..] } else { a }).collect();
        &redacted[..]
    } else {
        args
    };
    // Monitors see a command once it ran (Redis 7.0's `call`): the commands of a transaction
    // come before its EXEC.
    if !srv.monitors.is_empty() && !spec.has(flags::ADMIN) && !spec.has(flags::SKIP_MONITOR) {
        super::cmd::server::feed_monitors(srv, client, args);
    }
    if !spec.has(flags::SKIP_SLOWLOG) && client.blocked.is_none() {
        srv.record_slowlog(micros, args, client);
    }
    srv.record_latency(if spec.has(flags::FAST) { "fast-command" } else { "command" }, micros / 1000);
}

fn reject(
    srv: &mut Server,
    client: &mut Client,
    out: &mut Reply,
    spec: Option<&CommandSpec>,
    err: &str,
    args: &[&[u8]],
) {
    if let Some(s) = spec {
        srv.stats.commands[s.id].rejected += 1;
        if s.name == "exec" {
            // Redis's `execCommandAbort`: a rejected EXEC ends the transaction (or just the
            // WATCHes) and says why.
            transactions::discard_transaction(srv, client);
            let why = err.strip_prefix("ERR ").unwrap_or(err);
            let e = format!("EXECABORT Transaction discarded because of: {why}");
            count_error(srv, &e);
            out.error(&e);
            if !srv.monitors.is_empty() {
                server::feed_monitors(srv, client, args);
            }
            return;
        }
    }
    if client.multi.is_some() {
        client.multi_error = true;
    }
    count_error(srv, err);
    out.error(err);
}

/// A command the cluster check refused (`clusterRedirectClient` in `processCommand`): a refused
/// EXEC ends the transaction and gives the bare redirection (no EXECABORT); a command refused
/// while queueing dooms its transaction.
fn redirect(
    srv: &mut Server,
    client: &mut Client,
    out: &mut Reply,
    spec: &CommandSpec,
    r: super::cluster::route::Redirect,
) {
    let text = match srv.cluster.as_deref() {
        Some(st) => r.message(st, &srv.config),
        None => return,
    };
    srv.stats.commands[spec.id].rejected += 1;
    if spec.name == "exec" {
        transactions::discard_transaction(srv, client);
    } else if client.multi.is_some() {
        client.multi_error = true;
    }
    count_error(srv, &text);
    out.error(&text);
}

pub(crate) fn count_error(srv: &mut Server, err: &str) {
    srv.stats.total_error_replies += 1;
    let prefix = err.split(' ').next().unwrap_or("ERR");
    if srv.stats.errors.len() < 128 || srv.stats.errors.contains_key(prefix) {
        *srv.stats.errors.entry(prefix.to_string()).or_default() += 1;
    }
}

/// The handler for a table entry, if implemented.
pub fn handler_of(spec: &CommandSpec) -> Option<Handler> {
    handlers()[spec.id]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_handler_has_a_table_entry() {
        // Building the table panics on a handler whose name is not in the command table.
        let n = super::handlers().iter().filter(|h| h.is_some()).count();
        assert!(n > 0);
    }

    #[test]
    fn every_table_entry_has_a_handler() {
        // Containers (CLIENT, CONFIG, ...) dispatch to their subcommands' handlers.
        let missing: Vec<&str> = crate::command::all()
            .filter(|c| c.subcommands.is_empty() && super::handler_of(c).is_none())
            .map(|c| c.name)
            .collect();
        assert!(missing.is_empty(), "commands in the table without a handler: {missing:?}");
    }
}
