//! Transactions: MULTI EXEC DISCARD WATCH UNWATCH.

use super::{Ctx, Handler};
use crate::node::client::Client;
use crate::node::server::Server;

pub const COMMANDS: &[(&str, Handler)] = &[];

/// Forgets a client's watched keys in the server's registry (disconnect).
pub fn unwatch_all(srv: &mut Server, client: &Client) {
    for (db, key) in &client.watched {
        if let Some(v) = srv.dbs[*db].watched.get_mut(key) {
            v.retain(|s| s.id != client.id);
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
