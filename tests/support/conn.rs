//! A raw RESP connection: send commands, read exactly one reply's bytes.

use slotway::resp::{frame_len, Frame};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Conn {
    pub fn connect(port: u16) -> Conn {
        Conn::try_connect(port).unwrap_or_else(|e| panic!("connect to port {port}: {e}"))
    }

    pub fn try_connect(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true).ok();
        Ok(Conn { stream, buf: Vec::new() })
    }

    /// Writes bytes; a write to a connection the server closed is not an error here (the next
    /// read reports the close).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    pub fn send(&mut self, args: &[&[u8]]) {
        self.send_raw(&encode(args));
    }

    /// The raw bytes of the next reply; None if the server closed the connection.
    /// Panics if no reply arrives within the read timeout: a test must never mistake "both servers
    /// hung" for "both servers agreed".
    pub fn read_reply(&mut self) -> Option<Vec<u8>> {
        self.try_read_reply()
            .unwrap_or_else(|buffered| panic!("no reply within the read timeout (buffered: {buffered:?})"))
    }

    /// Like `read_reply`, but a timeout is an `Err` carrying what was buffered.
    pub fn try_read_reply(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Ok(Some(n)) = frame_len(&self.buf) {
                return Ok(Some(self.buf.drain(..n).collect()));
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Err(String::from_utf8_lossy(&self.buf).into_owned())
                }
                Err(_) => return Ok(None),
            }
        }
    }

    /// Sends one command and returns its raw reply.
    pub fn raw(&mut self, args: &[&str]) -> Vec<u8> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.send(&a);
        self.read_reply().expect("reply")
    }

    /// Sends one command and returns its parsed reply.
    pub fn cmd(&mut self, args: &[&str]) -> Frame {
        parse(&self.raw(args))
    }

    /// True once the server has closed the connection (reads EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        self.stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
        let mut b = [0u8; 1024];
        loop {
            match self.stream.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }
}

pub fn parse(raw: &[u8]) -> Frame {
    Frame::parse(&bytes::Bytes::copy_from_slice(raw)).expect("valid frame").expect("complete frame").0
}
