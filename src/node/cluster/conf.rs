//! nodes.conf: Redis 7.0's format (CLUSTER NODES lines plus a `vars` line), loaded at startup so
//! a restarted node keeps its name, epochs and slots, and saved atomically (temporary file, fsync,
//! rename) whenever the state changes, so a crash never leaves half a file.

use super::{nflags, parse_id, ClusterNode, ClusterState, NodeId};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("Unrecoverable error: corrupted cluster config file \"{line}\" ({why}).")]
    Corrupted { line: String, why: &'static str },
    #[error("Unable to read the cluster config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

/// Loads nodes.conf. `Ok(None)`: there is no file (or it is empty), start a new cluster of one.
pub fn load(path: &Path, now: i64) -> Result<Option<ClusterState>, ConfError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ConfError::Read { path: path.display().to_string(), source }),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse(&text, path.to_path_buf(), now).map(Some)
}

fn corrupted(line: &str, why: &'static str) -> ConfError {
    ConfError::Corrupted { line: line.to_string(), why }
}

/// Parses nodes.conf text (Redis's `clusterLoadConfig`).
pub fn parse(text: &str, path: PathBuf, now: i64) -> Result<ClusterState, ConfError> {
    let mut myself: Option<NodeId> = None;
    // The state is built with a placeholder name and renamed once myself is known.
    let placeholder = [b'0'; 40];
    let mut st = ClusterState::new(placeholder, path, now);
    st.nodes.clear();
    let mut vars: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let argv: Vec<&str> = line.split_whitespace().collect();
        if argv.is_empty() {
            continue;
        }
        if argv[0] == "vars" {
            if argv.len() % 2 != 1 {
                return Err(corrupted(line, "odd vars"));
            }
            for kv in argv[1..].chunks(2) {
                vars.push((kv[0].to_string(), kv[1].to_string()));
            }
            continue;
        }
        if argv.len() < 8 {
            return Err(corrupted(line, "too few fields"));
        }
        let id = parse_id(argv[0].as_bytes()).ok_or_else(|| corrupted(line, "bad node name"))?;
        let node = st.nodes.entry(id).or_insert_with(|| ClusterNode::new(id, 0, now));
        // ip:port@cport[,hostname]
        let (addr, hostname) = match argv[1].split_once(',') {
            Some((a, h)) => (a, h),
            None => (argv[1], ""),
        };
        let (ipport, cport) = match addr.rsplit_once('@') {
            Some((ip, c)) => (ip, Some(c)),
            None => (addr, None),
        };
        let (ip, port) = ipport.rsplit_once(':').ok_or_else(|| corrupted(line, "bad address"))?;
        let port: u16 = port.parse().map_err(|_| corrupted(line, "bad port"))?;
        let cport: u16 = match cport {
            Some(c) => c.parse().map_err(|_| corrupted(line, "bad bus port"))?,
            None => port.wrapping_add(10000),
        };
        node.ip = ip.to_string();
        node.port = port;
        node.cport = cport;
        node.hostname = hostname.to_string();
        let mut flags = 0u16;
        for f in argv[2].split(',') {
            flags |= match f {
                "myself" => nflags::MYSELF,
                "master" => nflags::MASTER,
                "slave" => nflags::SLAVE,
                "fail?" => nflags::PFAIL,
                "fail" => nflags::FAIL,
                "handshake" => nflags::HANDSHAKE,
                "noaddr" => nflags::NOADDR,
                "nofailover" => nflags::NOFAILOVER,
                "noflags" => 0,
                _ => return Err(corrupted(line, "unknown flag")),
            };
        }
        node.flags = flags;
        if flags & nflags::MYSELF != 0 {
            if myself.is_some() {
                return Err(corrupted(line, "two myself lines"));
            }
            myself = Some(id);
        }
        if flags & nflags::FAIL != 0 {
            node.fail_time = now;
        }
        if argv[4] != "0" {
            node.ping_sent = now;
        }
        if argv[5] != "0" {
            node.pong_received = now;
        }
        node.config_epoch = argv[6].parse().map_err(|_| corrupted(line, "bad config epoch"))?;
        if argv[3] != "-" {
            let m = parse_id(argv[3].as_bytes()).ok_or_else(|| corrupted(line, "bad master name"))?;
            st.nodes.get_mut(&id).expect("inserted above").master = Some(m);
            st.nodes.entry(m).or_insert_with(|| ClusterNode::new(m, 0, now));
        }
        for s in &argv[8..] {
            if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                let (slot, dir, other) = if let Some((a, b)) = inner.split_once("->-") {
                    (a, true, b)
                } else if let Some((a, b)) = inner.split_once("-<-") {
                    (a, false, b)
                } else {
                    return Err(corrupted(line, "bad migration entry"));
                };
                let slot = slot_num(slot).ok_or_else(|| corrupted(line, "bad slot"))?;
                let other = parse_id(other.as_bytes()).ok_or_else(|| corrupted(line, "bad node name"))?;
                st.nodes.entry(other).or_insert_with(|| ClusterNode::new(other, 0, now));
                if dir {
                    st.migrating.insert(slot, other);
                } else {
                    st.importing.insert(slot, other);
                }
                continue;
            }
            let (a, b) = match s.split_once('-') {
                Some((a, b)) => (a, b),
                None => (*s, *s),
            };
            let (a, b) = (slot_num(a), slot_num(b));
            let (Some(a), Some(b)) = (a, b) else {
                return Err(corrupted(line, "bad slot"));
            };
            for slot in a..=b {
                st.set_slot_owner(slot, id);
            }
        }
    }
    let Some(me) = myself else {
        return Err(corrupted("", "no myself line"));
    };
    st.myself = me;
    for (k, v) in vars {
        match k.as_str() {
            "currentEpoch" => st.current_epoch = v.parse().unwrap_or(0),
            "lastVoteEpoch" => st.last_vote_epoch = v.parse().unwrap_or(0),
            _ => tracing::warn!("Skipping unknown cluster config variable '{k}'"),
        }
    }
    // Nodes only named as a master or a migration peer get no flags; give them a role.
    for n in st.nodes.values_mut() {
        if n.flags == 0 && n.ip.is_empty() {
            n.flags = nflags::MASTER | nflags::NOADDR;
        }
    }
    st.current_epoch = st.current_epoch.max(st.max_epoch());
    Ok(st)
}

fn slot_num(s: &str) -> Option<u16> {
    let v: u16 = s.parse().ok()?;
    (v < crate::cluster::SLOTS).then_some(v)
}

/// The whole file: every node's line and the vars line.
pub fn render(st: &ClusterState) -> String {
    let mut out = st.nodes_text(|_| true);
    out.push_str(&format!("vars currentEpoch {} lastVoteEpoch {}\n", st.current_epoch, st.last_vote_epoch));
    out
}

/// Writes nodes.conf atomically: a temporary file next to it, then a rename, so a crash leaves
/// the old file or the new one. With `durable` the data and the directory are also fsynced before
/// the call returns: Redis asks for that when an epoch changes (a vote or a configEpoch must not
/// be forgotten by a power loss), not for every slot change, which resharding makes by thousands.
pub fn save(st: &ClusterState, durable: bool) -> std::io::Result<()> {
    let text = render(st);
    let path = &st.config_path;
    let tmp = path.with_file_name(format!(
        "{}.tmp-{}",
        path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "nodes.conf".into()),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        if durable {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if !durable {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
78db59655d9e7a9c27852967dab7062c787f056d 127.0.0.1:17001@27001 myself,master - 0 0 1 connected 0-5460 [5461->-827393ab7319d36464be56de04de02bcfc4f3e88]
827393ab7319d36464be56de04de02bcfc4f3e88 127.0.0.1:17002@27002 master - 0 1795277058015 2 connected 5461-10922
88fd511dd2c1ff655cf95b16479f7b3e7a96f092 127.0.0.1:17003@27003,host3 slave 827393ab7319d36464be56de04de02bcfc4f3e88 0 1795277058216 3 connected
vars currentEpoch 3 lastVoteEpoch 0
";

    #[test]
    fn parses_redis_nodes_conf() {
        let st = parse(SAMPLE, PathBuf::from("x"), 5).expect("valid");
        assert_eq!(super::super::id_str(&st.myself), "78db59655d9e7a9c27852967dab7062c787f056d");
        assert_eq!(st.current_epoch, 3);
        assert_eq!(st.nodes.len(), 3);
        assert_eq!(st.me().numslots(), 5461);
        assert_eq!(st.migrating.len(), 1);
        let r = st.node(b"88fd511dd2c1ff655cf95b16479f7b3e7a96f092").expect("known");
        assert!(r.is_replica());
        assert_eq!(r.hostname, "host3");
        assert_eq!(r.master, Some(*b"827393ab7319d36464be56de04de02bcfc4f3e88"));
        assert_eq!(r.pong_received, 5);
    }

    #[test]
    fn render_then_parse_keeps_the_state() {
        let st = parse(SAMPLE, PathBuf::from("x"), 5).expect("valid");
        let again = parse(&render(&st), PathBuf::from("x"), 5).expect("valid");
        assert_eq!(render(&st), render(&again));
        assert_eq!(again.slots, st.slots);
    }

    #[test]
    fn rejects_corrupted_files() {
        assert!(parse("abc 1.2.3.4:5@6 master - 0 0 0 connected\n", PathBuf::from("x"), 0).is_err());
        assert!(parse(
            "78db59655d9e7a9c27852967dab7062c787f056d 127.0.0.1:1@2 master - 0 0 0 connected\n",
            PathBuf::from("x"),
            0
        )
        .is_err());
        assert!(parse(
            "78db59655d9e7a9c27852967dab7062c787f056d 127.0.0.1:1@2 myself,master - 0 0 0 connected 99999\n",
            PathBuf::from("x"),
            0
        )
        .is_err());
    }
}
