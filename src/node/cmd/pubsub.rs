//! Pub/sub: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH PUBSUB.
//!
//! Subscription confirmations are replies on the subscriber's own connection (pushes in RESP3).
//! Messages go to other clients' outboxes, encoded for each one's protocol; a client publishing
//! to itself gets the message inline, before the PUBLISH reply, as Redis writes both to the same
//! buffer. The registry keeps subscribers in subscription order.

use super::{CmdError, CmdResult, Ctx, Handler};
use crate::node::client::{Client, ClientShared};
use crate::node::server::Server;
use std::rc::Rc;

pub const COMMANDS: &[(&str, Handler)] = &[
    ("subscribe", subscribe),
    ("unsubscribe", unsubscribe),
    ("psubscribe", psubscribe),
    ("punsubscribe", punsubscribe),
    ("publish", publish),
    ("pubsub|channels", pubsub_channels),
    ("pubsub|numsub", pubsub_numsub),
    ("pubsub|numpat", pubsub_numpat),
    ("pubsub|help", pubsub_help),
];

/// Drops every subscription of a client from the server's registry (disconnect, RESET).
pub fn unsubscribe_all(srv: &mut Server, client: &Client) {
    for ch in &client.subs {
        remove_subscriber(&mut srv.pubsub.channels, ch, client.id);
    }
    for p in &client.psubs {
        remove_subscriber(&mut srv.pubsub.patterns, p, client.id);
    }
}

/// The registry maps are a HashMap (channels) and a BTreeMap (patterns); both look like this.
trait Registry {
    fn subscribers_mut(&mut self, name: &[u8]) -> Option<&mut Vec<Rc<ClientShared>>>;
    fn drop_name(&mut self, name: &[u8]);
    fn add(&mut self, name: &[u8], who: Rc<ClientShared>);
}

impl Registry for std::collections::HashMap<Vec<u8>, Vec<Rc<ClientShared>>> {
    fn subscribers_mut(&mut self, name: &[u8]) -> Option<&mut Vec<Rc<ClientShared>>> {
        self.get_mut(name)
    }
    fn drop_name(&mut self, name: &[u8]) {
        self.remove(name);
    }
    fn add(&mut self, name: &[u8], who: Rc<ClientShared>) {
        self.entry(name.to_vec()).or_default().push(who);
    }
}

impl Registry for std::collections::BTreeMap<Vec<u8>, Vec<Rc<ClientShared>>> {
    fn subscribers_mut(&mut self, name: &[u8]) -> Option<&mut Vec<Rc<ClientShared>>> {
        self.get_mut(name)
    }
    fn drop_name(&mut self, name: &[u8]) {
        self.remove(name);
    }
    fn add(&mut self, name: &[u8], who: Rc<ClientShared>) {
        self.entry(name.to_vec()).or_default().push(who);
    }
}

/// Removes one client from a channel's (or pattern's) list; an emptied entry goes away, so
/// PUBSUB CHANNELS and NUMPAT only see live names.
fn remove_subscriber(reg: &mut impl Registry, name: &[u8], id: u64) {
    if let Some(v) = reg.subscribers_mut(name) {
        v.retain(|s| s.id != id);
        if v.is_empty() {
            reg.drop_name(name);
        }
    }
}

/// `subscribe` / `unsubscribe` / ... confirmation: `[kind, name or null, subscription count]`.
fn confirm(ctx: &mut Ctx, kind: &[u8], name: Option<&[u8]>) {
    let count = ctx.client.sub_count() as i64;
    ctx.out.push(3);
    ctx.out.bulk(kind);
    match name {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
    ctx.out.int(count);
}

fn subscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    for &ch in &args[1..] {
        if !ctx.client.subs.contains(ch) {
            ctx.client.subs.insert(ch.to_vec());
            ctx.srv.pubsub.channels.add(ch, ctx.client.shared.clone());
        }
        confirm(ctx, b"subscribe", Some(ch));
    }
    Ok(())
}

fn psubscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    for &pat in &args[1..] {
        if !ctx.client.psubs.contains(pat) {
            ctx.client.psubs.insert(pat.to_vec());
            ctx.srv.pubsub.patterns.add(pat, ctx.client.shared.clone());
        }
        confirm(ctx, b"psubscribe", Some(pat));
    }
    Ok(())
}

/// UNSUBSCRIBE [channel ...]: without arguments, every channel, in order; each confirmation
/// carries the count left after it, as if the channel had been named.
fn unsubscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let id = ctx.client.id;
    let names: Vec<Vec<u8>> = if args.len() == 1 {
        ctx.client.subs.iter().cloned().collect()
    } else {
        args[1..].iter().map(|a| a.to_vec()).collect()
    };
    if names.is_empty() {
        confirm(ctx, b"unsubscribe", None);
    }
    for ch in &names {
        if ctx.client.subs.remove(ch.as_slice()) {
            remove_subscriber(&mut ctx.srv.pubsub.channels, ch, id);
        }
        confirm(ctx, b"unsubscribe", Some(ch));
    }
    Ok(())
}

/// PUNSUBSCRIBE [pattern ...], like UNSUBSCRIBE; without arguments in subscription order.
fn punsubscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let id = ctx.client.id;
    let names: Vec<Vec<u8>> = if args.len() == 1 {
        ctx.client.psubs.iter().cloned().collect()
    } else {
        args[1..].iter().map(|a| a.to_vec()).collect()
    };
    if names.is_empty() {
        confirm(ctx, b"punsubscribe", None);
    }
    for pat in &names {
        // shift_remove keeps the remaining patterns in subscription order.
        if ctx.client.psubs.shift_remove(pat.as_slice()) {
            remove_subscriber(&mut ctx.srv.pubsub.patterns, pat, id);
        }
        confirm(ctx, b"punsubscribe", Some(pat));
    }
    Ok(())
}

/// One message, encoded once per protocol on first use.
struct Message<'a> {
    parts: &'a [&'a [u8]],
    resp2: Vec<u8>,
    resp3: Vec<u8>,
}

impl<'a> Message<'a> {
    fn new(parts: &'a [&'a [u8]]) -> Self {
        Message { parts, resp2: Vec::new(), resp3: Vec::new() }
    }

    fn encoded(&mut self, resp3: bool) -> &[u8] {
        let (buf, tag) = if resp3 { (&mut self.resp3, b'>') } else { (&mut self.resp2, b'*') };
        if buf.is_empty() {
            let mut r = crate::resp::Reply::new(false);
            r.array(self.parts.len());
            for p in self.parts {
                r.bulk(p);
            }
            *buf = r.buf.to_vec();
            buf[0] = tag;
        }
        buf
    }
}

/// Redis's `stringmatchlen` as pub/sub calls it: an empty channel matches only the empty
/// pattern (not even `*`), because Redis's matcher stops before looking at the pattern.
fn matches(pattern: &[u8], channel: &[u8]) -> bool {
    if channel.is_empty() {
        return pattern.is_empty();
    }
    super::util::glob_match(pattern, channel, false)
}

/// The client whose PUBLISH is being delivered: its own copy goes inline into its reply buffer,
/// before the PUBLISH reply, as Redis writes both to the same buffer.
pub struct Publisher<'a> {
    pub id: u64,
    pub out: &'a mut crate::resp::Reply,
    pub resp3: bool,
}

/// Where a message goes.
struct Sink<'a> {
    publisher: Option<Publisher<'a>>,
    limit: usize,
    /// Subscribers just killed for their output; unsubscribed once delivery is over.
    killed: Vec<u64>,
}

impl Sink<'_> {
    /// Delivers `msg` to one subscriber. A subscriber that does not read and lets its pending
    /// output pass the pubsub hard limit is disconnected, as Redis does.
    fn deliver(&mut self, to: &ClientShared, msg: &mut Message) {
        if let Some(p) = self.publisher.as_mut().filter(|p| p.id == to.id) {
            p.out.raw(msg.encoded(p.resp3));
            return;
        }
        if to.killed.get() {
            return;
        }
        to.send(msg.encoded(to.resp3.get()));
        if self.limit > 0 && to.outbox_len() > self.limit {
            to.outbox.borrow_mut().clear();
            to.kill();
            self.killed.push(to.id);
            tracing::info!("Client id={} closed for overcoming of output buffer limits.", to.id);
        }
    }
}

/// `pubsubPublishMessage`: delivers a message to this node's channel and pattern subscribers
/// (RESP2 arrays or RESP3 pushes, each in its own protocol) and returns how many received it.
/// PUBLISH calls it with its client; the cluster bus calls it without one for a message
/// published on another node.
pub fn publish_local(srv: &mut Server, channel: &[u8], payload: &[u8], publisher: Option<Publisher>) -> i64 {
    let mut receivers = 0i64;
    let mut sink = Sink { publisher, limit: srv.config.pubsub_hard_limit, killed: Vec::new() };
    let pubsub = &srv.pubsub;
    if let Some(subs) = pubsub.channels.get(channel) {
        let parts: [&[u8]; 3] = [b"message", channel, payload];
        let mut msg = Message::new(&parts);
        for s in subs {
            sink.deliver(s, &mut msg);
            receivers += 1;
        }
    }
    for (pat, subs) in &pubsub.patterns {
        if matches(pat, channel) {
            let parts: [&[u8]; 4] = [b"pmessage", pat, channel, payload];
            let mut msg = Message::new(&parts);
            for s in subs {
                sink.deliver(s, &mut msg);
                receivers += 1;
            }
        }
    }
    for id in std::mem::take(&mut sink.killed) {
        drop_killed_subscriber(srv, id);
    }
    receivers
}

/// In a cluster the message also goes to every other node over the bus (Redis 7.0's
/// `clusterPropagatePublish`); the reply still counts this node's receivers only, as in Redis.
fn publish(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (channel, payload) = (args[1], args[2]);
    let me = Publisher { id: ctx.client.id, out: &mut *ctx.out, resp3: ctx.client.resp3 };
    let receivers = publish_local(ctx.srv, channel, payload, Some(me));
    if ctx.srv.cluster.is_some() {
        crate::node::cluster::bus::propagate_publish(ctx.srv, channel, payload);
    }
    ctx.out.int(receivers);
    Ok(())
}

/// A killed subscriber leaves every channel at once, as Redis frees it before the next command:
/// its connection may stay open a while (its task can be stuck writing to a client that does not
/// read), but it must not count as a receiver any more.
fn drop_killed_subscriber(srv: &mut Server, id: u64) {
    let client = srv.clients.get(&id).cloned();
    if let Some(Ok(mut c)) = client.as_ref().map(|c| c.try_borrow_mut()) {
        unsubscribe_all(srv, &c);
        c.subs.clear();
        c.psubs.clear();
        return;
    }
    // Not reachable through its client: search the registry.
    srv.pubsub.channels.retain(|_, v| {
        v.retain(|s| s.id != id);
        !v.is_empty()
    });
    srv.pubsub.patterns.retain(|_, v| {
        v.retain(|s| s.id != id);
        !v.is_empty()
    });
}

/// Redis's `addReplySubcommandSyntaxError`.
fn subcommand_syntax(args: &[&[u8]]) -> CmdError {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        crate::errors::lossy(args[1], 128),
        String::from_utf8_lossy(args[0]).to_ascii_uppercase()
    )
    .into()
}

fn pubsub_channels(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax(args));
    }
    let pat = args.get(2).copied();
    let names: Vec<&Vec<u8>> = ctx.srv.pubsub.channels.keys().filter(|ch| pat.is_none_or(|p| matches(p, ch))).collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n);
    }
    Ok(())
}

fn pubsub_numsub(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ctx.out.array((args.len() - 2) * 2);
    for &ch in &args[2..] {
        let n = ctx.srv.pubsub.channels.get(ch).map_or(0, |v| v.len());
        ctx.out.bulk(ch);
        ctx.out.int(n as i64);
    }
    Ok(())
}

fn pubsub_numpat(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    // Distinct patterns, not subscriptions (Redis 7.0 counts its pattern dict).
    ctx.out.int(ctx.srv.pubsub.patterns.len() as i64);
    Ok(())
}

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

fn pubsub_help(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.out.array(HELP.len());
    for line in HELP {
        ctx.out.simple(line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::node::client::Client;
    use crate::node::config::Config;
    use crate::node::server::Server;
    use crate::resp::Reply;

    fn cmd(srv: &mut Server, c: &mut Client, line: &str) -> Vec<u8> {
        let args: Vec<&[u8]> = line.split(' ').map(|a| a.as_bytes()).collect();
        let mut out = Reply::new(c.resp3);
        crate::node::cmd::execute(srv, c, &mut out, &args);
        out.buf.to_vec()
    }

    #[test]
    fn empty_channel_matches_only_empty_pattern() {
        assert!(!super::matches(b"*", b""));
        assert!(super::matches(b"", b""));
        assert!(super::matches(b"a*", b"a"));
    }

    #[test]
    fn slow_subscriber_is_killed_at_the_hard_limit() {
        let mut srv = Server::new(Config::default());
        srv.config.pubsub_hard_limit = 1000;
        let mut p = Client::new(1, "p".into(), "l".into());
        let s = std::rc::Rc::new(std::cell::RefCell::new(Client::new(2, "s".into(), "l".into())));
        srv.clients.insert(2, s.clone());
        cmd(&mut srv, &mut s.borrow_mut(), "SUBSCRIBE ch other");
        cmd(&mut srv, &mut s.borrow_mut(), "PSUBSCRIBE c*");
        let shared = s.borrow().shared.clone();
        shared.outbox.borrow_mut().clear();
        // A round is a message and a pmessage, about 270 bytes: 3 rounds fit under the limit.
        let msg = "x".repeat(100);
        for _ in 0..3 {
            assert_eq!(cmd(&mut srv, &mut p, &format!("PUBLISH ch {msg}")), b":2\r\n");
        }
        assert!(!shared.killed.get());
        // Counted for the message that killed it, gone for the next.
        assert_eq!(cmd(&mut srv, &mut p, &format!("PUBLISH ch {msg}")), b":2\r\n");
        assert!(shared.killed.get());
        assert_eq!(shared.outbox_len(), 0);
        assert_eq!(cmd(&mut srv, &mut p, "PUBLISH ch y"), b":0\r\n");
        assert!(srv.pubsub.channels.is_empty() && srv.pubsub.patterns.is_empty());
        assert_eq!(s.borrow().sub_count(), 0);
    }

    #[test]
    fn killed_subscriber_out_of_reach_is_dropped_from_the_registry() {
        let mut srv = Server::new(Config::default());
        srv.config.pubsub_hard_limit = 10;
        let (mut p, mut s) = (Client::new(1, "p".into(), "l".into()), Client::new(2, "s".into(), "l".into()));
        cmd(&mut srv, &mut s, "SUBSCRIBE ch");
        assert_eq!(cmd(&mut srv, &mut p, "PUBLISH ch long-enough"), b":1\r\n");
        assert!(s.shared.killed.get());
        assert_eq!(cmd(&mut srv, &mut p, "PUBSUB NUMSUB ch"), b"*2\r\n$2\r\nch\r\n:0\r\n");
    }

    #[test]
    fn messages_follow_each_subscribers_protocol() {
        let mut srv = Server::new(Config::default());
        let mut p = Client::new(1, "p".into(), "l".into());
        let (mut r2, mut r3) = (Client::new(2, "a".into(), "l".into()), Client::new(3, "b".into(), "l".into()));
        r3.set_resp3(true);
        cmd(&mut srv, &mut r2, "PSUBSCRIBE c*");
        cmd(&mut srv, &mut r3, "SUBSCRIBE ch");
        assert_eq!(cmd(&mut srv, &mut p, "PUBLISH ch hi"), b":2\r\n");
        assert_eq!(&r2.shared.outbox.borrow()[..], b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        assert_eq!(&r3.shared.outbox.borrow()[..], b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    }
}
