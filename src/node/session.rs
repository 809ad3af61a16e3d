//! The accept loop and one task per connection: read, parse every complete request in the
//! buffer, run them in one borrow of the server, write all replies with one syscall.

use super::client::Client;
use super::server::Server;
use crate::resp::request::{Limits, Parsed, RequestParser};
use crate::resp::Reply;
use bytes::{Buf, BytesMut};
use std::cell::RefCell;
use std::rc::Rc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const READ_CHUNK: usize = 16 * 1024;

pub async fn accept_loop(listener: TcpListener, srv: Rc<RefCell<Server>>) {
    let shutdown = srv.borrow().shutdown.clone();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let srv = srv.clone();
                    tokio::task::spawn_local(async move { serve(stream, peer, srv).await });
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.notified() => {
                // Let every other acceptor see it too.
                shutdown.notify_one();
                return;
            }
        }
    }
}

async fn serve(mut stream: TcpStream, peer: std::net::SocketAddr, srv: Rc<RefCell<Server>>) {
    let laddr = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let admitted = {
        let mut s = srv.borrow_mut();
        s.stats.connections_received += 1;
        if s.clients.len() >= s.config.maxclients {
            s.stats.rejected_connections += 1;
            Err(&b"-ERR max number of clients reached\r\n"[..])
        } else if s.config.get("protected-mode") == Some("yes")
            && s.config.requirepass.is_none()
            && !peer.ip().is_loopback()
            && s.config.bind_addrs().iter().any(|b| b == "*")
        {
            Err(&b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface.\r\n"[..])
        } else {
            let id = s.next_client_id;
            s.next_client_id += 1;
            let c = Rc::new(RefCell::new(Client::new(id, peer.to_string(), laddr)));
            s.clients.insert(id, c.clone());
            Ok(c)
        }
    };
    let client = match admitted {
        Ok(c) => c,
        Err(msg) => {
            let _ = stream.write_all(msg).await;
            return;
        }
    };
    let shared = client.borrow().shared.clone();
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut parser = RequestParser::new();
    let mut out = Reply::new(false);
    let mut closing = false;
    loop {
        // Run what is buffered (unless parked on a blocking command).
        if client.borrow().blocked.is_none() && !inbuf.is_empty() {
            let mut s = srv.borrow_mut();
            let mut c = client.borrow_mut();
            out.resp3 = c.resp3;
            let limits = Limits {
                max_bulk_len: s.config.proto_max_bulk_len,
                unauthenticated: s.config.requirepass.is_some() && !c.authenticated,
            };
            let mut consumed = 0;
            // Once per read, as Redis sets `lastinteraction` in readQueryFromClient: CLIENT LIST's
            // idle= counts seconds, and a pipeline of a thousand commands needs one clock read.
            c.last_interaction = std::time::Instant::now();
            loop {
                if c.blocked.is_some() || c.close_after_reply {
                    break;
                }
                match parser.parse(&inbuf[consumed..], &limits) {
                    Ok(Parsed::Incomplete) => break,
                    Ok(Parsed::Empty(n)) => {
                        consumed += n;
                        parser.reset();
                    }
                    Ok(Parsed::Request(n)) => {
                        let frame = &inbuf[consumed..consumed + n];
                        // Arguments borrow the read buffer: no copy, no allocation for short commands.
                        let mut argv: smallvec::SmallVec<[&[u8]; 8]> = smallvec::SmallVec::new();
                        parser.args(frame, &mut argv);
                        s.stats.net_input_bytes += n as u64;
                        super::cmd::execute(&mut s, &mut c, &mut out, &argv);
                        drop(argv);
                        out.resp3 = c.resp3;
                        consumed += n;
                        parser.reset();
                        if c.blocked.is_some() {
                            super::blocking::park(&mut s, &c);
                        }
                    }
                    Err(e) => {
                        out.error(&e.0);
                        c.close_after_reply = true;
                        tracing::debug!("client {}: protocol error: {}", c.addr, e.0);
                        break;
                    }
                }
            }
            inbuf.advance(consumed);
            if c.close_after_reply {
                closing = true;
            }
            if inbuf.len() > (1 << 30) {
                closing = true;
            }
        }
        // Flush: what others queued for us first, then our replies.
        let pending = { shared.outbox.borrow_mut().split() };
        if !pending.is_empty() || !out.is_empty() {
            srv.borrow_mut().stats.net_output_bytes += (pending.len() + out.len()) as u64;
            if !pending.is_empty() && stream.write_all(&pending).await.is_err() {
                break;
            }
            if !out.is_empty() {
                if stream.write_all(&out.buf).await.is_err() {
                    break;
                }
                out.buf.clear();
                if out.buf.capacity() > 1 << 20 {
                    out.buf = BytesMut::with_capacity(READ_CHUNK);
                }
            }
        }
        if closing || shared.killed.get() {
            break;
        }
        let deadline = client.borrow().blocked.as_ref().and_then(|b| b.deadline);
        inbuf.reserve(READ_CHUNK);
        tokio::select! {
            r = stream.read_buf(&mut inbuf) => match r {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = shared.notify.notified() => {}
            _ = sleep_until(deadline), if deadline.is_some() => {
                let mut s = srv.borrow_mut();
                let mut c = client.borrow_mut();
                super::blocking::unpark(&mut s, &c);
                if let Some(b) = c.blocked.take() {
                    out.resp3 = c.resp3;
                    super::blocking::timeout_reply(b.on_timeout, &mut out);
                }
            }
        }
    }
    let mut s = srv.borrow_mut();
    let c = client.borrow();
    super::blocking::unpark(&mut s, &c);
    super::cmd::pubsub::unsubscribe_all(&mut s, &c);
    super::cmd::transactions::unwatch_all(&mut s, &c);
    s.monitors.retain(|m| m.id != c.id);
    s.clients.remove(&c.id);
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
