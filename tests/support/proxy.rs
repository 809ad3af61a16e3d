//! A `slotway proxy` child process in front of a test cluster, killed on drop.

use super::cluster::Cluster;
use super::Conn;
use slotway::resp::Frame;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Proxy {
    pub child: Child,
    pub port: u16,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// A proxy seeded with every node of `c`, 2 threads, ready once a SET routes.
    pub fn start(c: &Cluster) -> Proxy {
        Proxy::start_with(c, &[])
    }

    /// Like [`Proxy::start`], with extra command-line arguments (`--read-from replica`, ...).
    pub fn start_with(c: &Cluster, extra: &[&str]) -> Proxy {
        let port = super::free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slotway"));
        cmd.args(["proxy", "--listen", &format!("127.0.0.1:{port}"), "--threads", "2"]);
        for n in &c.nodes {
            cmd.args(["--seed", &n.addr()]);
        }
        cmd.args(extra);
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn proxy");
        let mut p = Proxy { child, port };
        p.wait_listening();
        // Topology loaded: a keyed command works.
        let mut conn = p.conn();
        for _ in 0..100 {
            if conn.cmd(&["SET", "proxy:ready", "1"]) == Frame::Simple("OK".into()) {
                return p;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("proxy never routed a SET");
    }

    /// Waits until the client port accepts connections; panics if the process exited.
    pub fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("proxy exited: {st}");
            }
            assert!(Instant::now() < deadline, "proxy did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }
}
