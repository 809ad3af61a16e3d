//! Server commands: INFO CONFIG TIME SLOWLOG MONITOR SHUTDOWN LATENCY COMMAND LASTSAVE.

use super::{CmdResult, Handler};
use crate::node::client::Client;
use crate::node::server::Server;

pub const COMMANDS: &[(&str, Handler)] = &[];

/// Sends a command line to every MONITOR client, in Redis's format:
/// `+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"`.
pub fn feed_monitors(srv: &mut Server, client: &Client, args: &[&[u8]]) {
    let now = crate::node::server::unix_us();
    let mut line = format!("+{}.{:06} [{} {}]", now / 1_000_000, now % 1_000_000, client.db, client.addr);
    for a in args {
        line.push_str(" \"");
        for &c in a.iter() {
            match c {
                b'\\' => line.push_str("\\\\"),
                b'"' => line.push_str("\\\""),
                b'\n' => line.push_str("\\n"),
                b'\r' => line.push_str("\\r"),
                b'\t' => line.push_str("\\t"),
                7 => line.push_str("\\a"),
                8 => line.push_str("\\b"),
                c if c.is_ascii_graphic() || c == b' ' => line.push(c as char),
                c => line.push_str(&format!("\\x{c:02x}")),
            }
        }
        line.push('"');
    }
    line.push_str("\r\n");
    for m in &srv.monitors {
        m.send(line.as_bytes());
    }
}

/// CLIENT SETNAME / HELLO SETNAME: no spaces or newlines.
pub fn validate_client_name(name: &[u8]) -> CmdResult {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err("ERR Client names cannot contain spaces, newlines or special characters.".into());
    }
    Ok(())
}
