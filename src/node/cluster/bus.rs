//! The cluster bus. PLACEHOLDER during the session that builds it: replaced by the real bus
//! (Redis's binary protocol, links, gossip, failure detection) before this lands.

use crate::node::server::Server;
use std::cell::RefCell;
use std::rc::Rc;
use tokio::net::TcpListener;

/// A bus connection to or from a node.
#[derive(Debug, Clone)]
pub struct Link {
    /// Unix ms the link was created.
    pub ctime: i64,
}

impl Link {
    /// CLUSTER LINKS `events`: "r", "w" or "rw".
    pub fn events(&self) -> &'static str {
        "r"
    }
    /// CLUSTER LINKS `send-buffer-allocated`.
    pub fn send_buffer_allocated(&self) -> usize {
        0
    }
    /// CLUSTER LINKS `send-buffer-used`.
    pub fn send_buffer_used(&self) -> usize {
        0
    }
}

/// Serves the bus port and runs the cluster cron until the node shuts down.
pub async fn run(listeners: Vec<TcpListener>, srv: Rc<RefCell<Server>>) {
    let _ = (listeners, srv);
    std::future::pending::<()>().await
}
