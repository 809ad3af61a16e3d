//! The storage node: a Redis-compatible server. Single-threaded like Redis: one tokio
//! current-thread runtime owns the keyspace, so commands never take a lock.

pub mod blocking;
pub mod client;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod db;
pub mod dict;
pub mod rdb;
pub mod server;
pub mod session;
pub mod types;

use config::Config;
use server::Server;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("could not listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("{0}")]
    ClusterConfig(#[from] cluster::conf::ConfError),
}

/// Runs a node until SHUTDOWN or a signal. `on_ready` receives the bound port (useful with
/// `--port 0`).
pub fn run(config: Config, on_ready: impl FnOnce(u16)) -> Result<(), NodeError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let port = config.port;
        let addrs = config.bind_addrs();
        let srv = Rc::new(RefCell::new(Server::new(config)));
        let mut listeners = Vec::new();
        let mut bound_port = port;
        for a in addrs {
            let (addr, optional) = listen_addr(&a, bound_port);
            match tokio::net::TcpListener::bind(&addr).await {
                Ok(l) => {
                    bound_port = l.local_addr().map(|a| a.port()).unwrap_or(bound_port);
                    listeners.push(l);
                }
                Err(_) if optional => {}
                Err(source) => return Err(NodeError::Bind { addr, source }),
            }
        }
        if listeners.is_empty() {
            return Err(NodeError::Bind {
                addr: format!("port {port}"),
                source: std::io::Error::other("no address could be bound"),
            });
        }
        srv.borrow_mut().tcp_port = bound_port;
        if srv.borrow().config.get("cluster-enabled") == Some("yes") {
            let bus = start_cluster(&srv, bound_port).await?;
            tokio::task::spawn_local(cluster::bus::run(bus, srv.clone()));
        }
        for l in listeners {
            tokio::task::spawn_local(session::accept_loop(l, srv.clone()));
        }
        let cron_srv = srv.clone();
        tokio::task::spawn_local(async move {
            loop {
                let hz = cron_srv.borrow().config.hz;
                tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
                let mut s = cron_srv.borrow_mut();
                s.cron();
                cluster::route::redirect_blocked(&mut s);
                if !s.blocking.ready.is_empty() {
                    blocking::serve_ready(&mut s);
                }
            }
        });
        tracing::info!("Ready to accept connections tcp port={bound_port}");
        on_ready(bound_port);
        let shutdown = srv.borrow().shutdown.clone();
        tokio::select! {
            _ = shutdown.notified() => { shutdown.notify_one(); }
            _ = tokio::signal::ctrl_c() => {}
            _ = sigterm() => {}
        }
        tracing::info!("Redis is now ready to exit, bye bye...");
        Ok(())
    })
}

/// A `bind` entry as a socket address, and whether failing to bind it is tolerated: the wildcard
/// forms (`*`, `::*`) may be unavailable (no IPv6), as in Redis.
fn listen_addr(a: &str, port: u16) -> (String, bool) {
    let host = match a {
        "*" => "0.0.0.0",
        "::*" => "::",
        h => h,
    };
    let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    (addr, a != host || host == "::")
}

/// Loads or creates the cluster state and binds the bus port on the same addresses as the client
/// port.
async fn start_cluster(srv: &Rc<RefCell<Server>>, port: u16) -> Result<Vec<tokio::net::TcpListener>, NodeError> {
    let (addrs, cport) = {
        let s = srv.borrow();
        (s.config.bind_addrs(), cluster::bus_port(&s.config, port))
    };
    let mut listeners = Vec::new();
    for a in addrs {
        let (addr, optional) = listen_addr(&a, cport);
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => listeners.push(l),
            Err(_) if optional => {}
            Err(source) => return Err(NodeError::Bind { addr, source }),
        }
    }
    let mut s = srv.borrow_mut();
    let st = cluster::init(&s.config, port, cport, server::unix_ms())?;
    s.cluster = Some(Box::new(st));
    s.dbs[0].enable_slot_index();
    cluster::before_sleep(&mut s);
    Ok(listeners)
}

#[cfg(unix)]
async fn sigterm() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
