//! Test builders: start Debian's real redis-server and slotway nodes on free loopback ports,
//! talk raw RESP to them. Every server is killed when its handle drops.
#![allow(dead_code)]

pub mod cluster;
pub mod conn;
pub mod corpus;
pub mod proxy;
pub mod rng;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use conn::Conn;

pub struct ServerProc {
    child: Child,
    pub port: u16,
    pub name: &'static str,
    _dir: Option<tempdir::Dir>,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProc {
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// A port nobody listens on right now, and never handed out before in this process: tests run in
/// parallel threads, and the kernel may offer a just-closed port again before the first taker has
/// bound it (two servers then race for one port and a client may reach the wrong one).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Option<std::collections::HashSet<u16>>> = std::sync::Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(Default::default);
    for _ in 0..1000 {
        let p = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        if given.insert(p) {
            return p;
        }
    }
    panic!("no fresh free port");
}

/// Waits until `port` accepts connections while `child` is still running. Err if the child exited:
/// typically its port was taken between `free_port` and its bind, and the connection that
/// succeeded went to whoever holds the port (another test's cluster bus, say).
fn wait_for_port(port: u16, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("exited early: {st}"));
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // A server that failed to bind exits within milliseconds of starting.
            std::thread::sleep(Duration::from_millis(50));
            return match child.try_wait() {
                Ok(Some(st)) => Err(format!("exited early: {st}")),
                _ => Ok(()),
            };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!("did not listen on {port}"))
}

pub fn redis_available() -> bool {
    Command::new("redis-server").arg("--version").output().is_ok()
}

/// Debian's redis-server, no persistence, loopback only.
pub fn redis_server(extra: &[&str]) -> ServerProc {
    let mut why = String::new();
    // A few tries: the port `free_port` found may be taken before redis-server binds it.
    for _ in 0..5 {
        let dir = tempdir::Dir::new("redis");
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        match wait_for_port(port, &mut child) {
            Ok(()) => return ServerProc { child, port, name: "redis", _dir: Some(dir) },
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                why = format!("redis-server on {port}: {e}");
            }
        }
    }
    panic!("{why}");
}

/// A slotway node on an OS-chosen port (read from its ready line).
pub fn slotway_node(extra: &[&str]) -> ServerProc {
    let dir = tempdir::Dir::new("slotway");
    let mut child = Command::new(env!("CARGO_BIN_EXE_slotway"))
        .args(["node", "--port", "0", "--bind", "127.0.0.1", "--save", "", "--dir"])
        .arg(dir.path())
        .args(extra)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn slotway");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut port = 0;
    for line in lines.by_ref() {
        let line = line.expect("read slotway output");
        if let Some(p) = line.split("port=").nth(1) {
            port = p.trim().trim_end_matches(|c: char| !c.is_ascii_digit()).parse().expect("port number");
            break;
        }
    }
    assert!(port != 0, "slotway did not report its port");
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ServerProc { child, port, name: "slotway", _dir: Some(dir) }
}

/// A scratch directory removed on drop (no extra crate needed for this).
pub mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub struct Dir(PathBuf);
    static N: AtomicU64 = AtomicU64::new(0);

    impl Dir {
        pub fn new(prefix: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "slotway-test-{prefix}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).expect("create temp dir");
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// True once the peer closed the connection (EOF or reset) within the stream's read timeout;
/// anything it sends meanwhile is read and dropped.
pub fn closed_by_peer(s: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut b = [0u8; 65536];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}
