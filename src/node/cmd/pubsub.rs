//! Pub/sub: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH PUBSUB.

use super::Handler;
use crate::node::client::Client;
use crate::node::server::Server;

pub const COMMANDS: &[(&str, Handler)] = &[];

/// Drops every subscription of a client from the server's registry (disconnect, RESET).
pub fn unsubscribe_all(srv: &mut Server, client: &Client) {
    for ch in &client.subs {
        if let Some(v) = srv.pubsub.channels.get_mut(ch) {
            v.retain(|s| s.id != client.id);
            if v.is_empty() {
                srv.pubsub.channels.remove(ch);
            }
        }
    }
    for p in &client.psubs {
        if let Some(v) = srv.pubsub.patterns.get_mut(p) {
            v.retain(|s| s.id != client.id);
            if v.is_empty() {
                srv.pubsub.patterns.remove(p);
            }
        }
    }
}
