//! The bus wire format: Redis 7.0's `clusterMsg` (src/cluster.h), byte for byte, so a slotway node
//! and a real redis-server understand each other. Numbers are big-endian (Redis sends them through
//! `htons`/`htonl`/`htonu64`); names are 40 raw bytes; IPs are NUL-padded 46-byte fields.
//!
//! Decoding never trusts the peer: every length is checked against the bytes that arrived before
//! anything is read, and a frame that does not add up is an error (the link is closed), never a
//! panic.

use crate::node::cluster::{NodeId, SlotBitmap};

pub const SIG: &[u8; 4] = b"RCmb";
pub const PROTO_VER: u16 = 1;
/// `NET_IP_STR_LEN`.
pub const IP_LEN: usize = 46;
pub const NAME_LEN: usize = 40;
pub const SLOT_BYTES: usize = 16384 / 8;
/// `sizeof(clusterMsg) - sizeof(union clusterMsgData)`: the fixed header (`CLUSTERMSG_MIN_LEN`).
pub const HEADER_LEN: usize = 2256;
/// `sizeof(clusterMsgDataGossip)`.
pub const GOSSIP_LEN: usize = 104;
/// `sizeof(clusterMsgDataFail)`.
pub const FAIL_LEN: usize = NAME_LEN;
/// `sizeof(clusterMsgDataUpdate)`.
pub const UPDATE_LEN: usize = 8 + NAME_LEN + SLOT_BYTES;
/// The fixed part of `clusterMsgDataPublish` (two lengths; the 8-byte placeholder is not counted).
pub const PUBLISH_FIXED: usize = 8;
/// The fixed part of `clusterMsgModule` (id, len, type; the 3-byte placeholder is not counted).
pub const MODULE_FIXED: usize = 13;
/// `clusterMsgPingExt` header: length, type, padding.
pub const EXT_HEADER_LEN: usize = 8;
/// Redis has no upper bound on `totlen` and allocates whatever a peer announces; this node does
/// not let one peer make it buffer more than this for a single message. The largest legitimate
/// PING (65535 gossip entries) is under 7 MiB; only PUBLISH of huge payloads could exceed it.
pub const MAX_MSG_LEN: usize = 32 << 20;

/// Message types (`CLUSTERMSG_TYPE_*`).
pub mod mtype {
    pub const PING: u16 = 0;
    pub const PONG: u16 = 1;
    pub const MEET: u16 = 2;
    pub const FAIL: u16 = 3;
    pub const PUBLISH: u16 = 4;
    pub const FAILOVER_AUTH_REQUEST: u16 = 5;
    pub const FAILOVER_AUTH_ACK: u16 = 6;
    pub const UPDATE: u16 = 7;
    pub const MFSTART: u16 = 8;
    pub const MODULE: u16 = 9;
    pub const PUBLISHSHARD: u16 = 10;

    pub fn name(t: u16) -> &'static str {
        match t {
            PING => "ping",
            PONG => "pong",
            MEET => "meet",
            FAIL => "fail",
            PUBLISH => "publish",
            FAILOVER_AUTH_REQUEST => "auth-req",
            FAILOVER_AUTH_ACK => "auth-ack",
            UPDATE => "update",
            MFSTART => "mfstart",
            MODULE => "module",
            PUBLISHSHARD => "publishshard",
            _ => "unknown",
        }
    }
}

/// `mflags[0]` bits.
pub const FLAG0_PAUSED: u8 = 1;
pub const FLAG0_FORCEACK: u8 = 2;
pub const FLAG0_EXT_DATA: u8 = 4;
/// `CLUSTERMSG_EXT_TYPE_HOSTNAME`, the one extension Redis 7.0 sends.
pub const EXT_HOSTNAME: u16 = 0;

/// Field offsets in the header, from cluster.h (checked by a unit test against the C layout).
pub mod off {
    pub const SIG: usize = 0;
    pub const TOTLEN: usize = 4;
    pub const VER: usize = 8;
    pub const PORT: usize = 10;
    pub const TYPE: usize = 12;
    pub const COUNT: usize = 14;
    pub const CURRENT_EPOCH: usize = 16;
    pub const CONFIG_EPOCH: usize = 24;
    pub const OFFSET: usize = 32;
    pub const SENDER: usize = 40;
    pub const MYSLOTS: usize = 80;
    pub const SLAVEOF: usize = 2128;
    pub const MYIP: usize = 2168;
    pub const EXTENSIONS: usize = 2214;
    pub const PPORT: usize = 2246;
    pub const CPORT: usize = 2248;
    pub const FLAGS: usize = 2250;
    pub const STATE: usize = 2252;
    pub const MFLAGS: usize = 2253;
    pub const DATA: usize = 2256;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("bad signature")]
    BadSignature,
    #[error("message length {0} below the minimum {HEADER_LEN}")]
    TooShort(usize),
    #[error("message length {0} above the limit {MAX_MSG_LEN}")]
    TooLong(usize),
    #[error("received invalid {kind} packet of length {got} but expected length {expected}")]
    BadLength { kind: &'static str, got: usize, expected: usize },
    #[error("{0}")]
    BadExtension(&'static str),
}

/// The fixed header every message carries: who sends, its epochs, slots and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub ver: u16,
    pub port: u16,
    pub mtype: u16,
    pub count: u16,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub offset: u64,
    pub sender: NodeId,
    pub myslots: SlotBitmap,
    /// The master a replica follows; `None` when the field is all zero bytes (a master).
    pub slaveof: Option<NodeId>,
    /// The announced IP; empty means "use the address you see" (auto discovery).
    pub myip: String,
    pub extensions: u16,
    pub pport: u16,
    pub cport: u16,
    pub flags: u16,
    pub state: u8,
    pub mflags: [u8; 3],
}

impl Header {
    pub fn new(mtype: u16, sender: NodeId) -> Header {
        Header {
            ver: PROTO_VER,
            port: 0,
            mtype,
            count: 0,
            current_epoch: 0,
            config_epoch: 0,
            offset: 0,
            sender,
            myslots: SlotBitmap::default(),
            slaveof: None,
            myip: String::new(),
            extensions: 0,
            pport: 0,
            cport: 0,
            flags: 0,
            state: 0,
            mflags: [0; 3],
        }
    }
}

/// One `clusterMsgDataGossip` entry: what the sender knows about a third node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gossip {
    pub name: NodeId,
    /// Seconds (Redis divides its ms times by 1000 on the wire).
    pub ping_sent: u32,
    pub pong_received: u32,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub pport: u16,
}

/// A ping extension other than the hostname, kept opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawExt {
    pub etype: u16,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// PING, PONG and MEET.
    Ping {
        gossip: Vec<Gossip>,
        hostname: Option<String>,
        other: Vec<RawExt>,
    },
    Fail {
        about: NodeId,
    },
    Update {
        config_epoch: u64,
        node: NodeId,
        slots: SlotBitmap,
    },
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    /// FAILOVER_AUTH_REQUEST/ACK, MFSTART (header only), MODULE and unknown types: the bytes after
    /// the header, unparsed.
    Raw(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub hdr: Header,
    pub body: Body,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(w)
}
fn name_at(b: &[u8], at: usize) -> NodeId {
    let mut n = [0u8; NAME_LEN];
    n.copy_from_slice(&b[at..at + NAME_LEN]);
    n
}
/// A NUL-terminated string in a fixed field.
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}
fn put_cstr(out: &mut [u8], s: &str) {
    // Always leave a terminating NUL, like Redis's strncpy to len-1.
    let n = s.len().min(out.len().saturating_sub(1));
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// Checks the first 8 bytes of a frame (signature and total length) and returns the length, as
/// Redis's read handler does before buffering the rest.
pub fn frame_len(prefix: &[u8]) -> Result<usize, DecodeError> {
    if prefix.len() < 8 || &prefix[..4] != SIG {
        return Err(DecodeError::BadSignature);
    }
    let totlen = be32(prefix, off::TOTLEN) as usize;
    if totlen < HEADER_LEN {
        return Err(DecodeError::TooShort(totlen));
    }
    if totlen > MAX_MSG_LEN {
        return Err(DecodeError::TooLong(totlen));
    }
    Ok(totlen)
}

/// Decodes one whole frame (`buf.len()` is its `totlen`), validating its length for its type
/// as `clusterProcessPacket` does.
pub fn decode(buf: &[u8]) -> Result<Msg, DecodeError> {
    let totlen = frame_len(buf)?;
    if buf.len() != totlen {
        return Err(DecodeError::BadLength { kind: "framed", got: buf.len(), expected: totlen });
    }
    let slaveof = name_at(buf, off::SLAVEOF);
    let hdr = Header {
        ver: be16(buf, off::VER),
        port: be16(buf, off::PORT),
        mtype: be16(buf, off::TYPE),
        count: be16(buf, off::COUNT),
        current_epoch: be64(buf, off::CURRENT_EPOCH),
        config_epoch: be64(buf, off::CONFIG_EPOCH),
        offset: be64(buf, off::OFFSET),
        sender: name_at(buf, off::SENDER),
        myslots: SlotBitmap::from_bytes(&buf[off::MYSLOTS..off::MYSLOTS + SLOT_BYTES]),
        slaveof: if slaveof.iter().all(|&b| b == 0) { None } else { Some(slaveof) },
        myip: cstr(&buf[off::MYIP..off::MYIP + IP_LEN]),
        extensions: be16(buf, off::EXTENSIONS),
        pport: be16(buf, off::PPORT),
        cport: be16(buf, off::CPORT),
        flags: be16(buf, off::FLAGS),
        state: buf[off::STATE],
        mflags: [buf[off::MFLAGS], buf[off::MFLAGS + 1], buf[off::MFLAGS + 2]],
    };
    let data = &buf[off::DATA..];
    let kind = mtype::name(hdr.mtype);
    let check = |expected: usize| {
        if totlen == expected {
            Ok(())
        } else {
            Err(DecodeError::BadLength { kind, got: totlen, expected })
        }
    };
    let body = match hdr.mtype {
        mtype::PING | mtype::PONG | mtype::MEET => {
            let count = hdr.count as usize;
            let gossip_end = count * GOSSIP_LEN;
            if data.len() < gossip_end {
                return Err(DecodeError::BadLength { kind, got: totlen, expected: HEADER_LEN + gossip_end });
            }
            let gossip = (0..count).map(|i| decode_gossip(&data[i * GOSSIP_LEN..(i + 1) * GOSSIP_LEN])).collect();
            let mut explen = HEADER_LEN + gossip_end;
            let mut hostname = None;
            let mut other = Vec::new();
            if hdr.mflags[0] & FLAG0_EXT_DATA != 0 {
                let mut at = gossip_end;
                for _ in 0..hdr.extensions {
                    if data.len() < at + EXT_HEADER_LEN {
                        return Err(DecodeError::BadExtension("extension header past the end of the message"));
                    }
                    let elen = be32(data, at) as usize;
                    let etype = be16(data, at + 4);
                    if !elen.is_multiple_of(8) {
                        return Err(DecodeError::BadExtension("extension length is not 8-byte aligned"));
                    }
                    if elen < EXT_HEADER_LEN || data.len() - at < elen {
                        return Err(DecodeError::BadExtension("extension length past the end of the message"));
                    }
                    let payload = &data[at + EXT_HEADER_LEN..at + elen];
                    if etype == EXT_HOSTNAME {
                        hostname = Some(cstr(payload));
                    } else {
                        other.push(RawExt { etype, data: payload.to_vec() });
                    }
                    at += elen;
                    explen += elen;
                }
            }
            check(explen)?;
            Body::Ping { gossip, hostname, other }
        }
        mtype::FAIL => {
            check(HEADER_LEN + FAIL_LEN)?;
            Body::Fail { about: name_at(data, 0) }
        }
        mtype::UPDATE => {
            check(HEADER_LEN + UPDATE_LEN)?;
            Body::Update {
                config_epoch: be64(data, 0),
                node: name_at(data, 8),
                slots: SlotBitmap::from_bytes(&data[8 + NAME_LEN..8 + NAME_LEN + SLOT_BYTES]),
            }
        }
        mtype::PUBLISH | mtype::PUBLISHSHARD => {
            if data.len() < PUBLISH_FIXED {
                return Err(DecodeError::BadLength { kind, got: totlen, expected: HEADER_LEN + PUBLISH_FIXED });
            }
            let clen = be32(data, 0) as usize;
            let mlen = be32(data, 4) as usize;
            check(HEADER_LEN + PUBLISH_FIXED + clen + mlen)?;
            let channel = data[PUBLISH_FIXED..PUBLISH_FIXED + clen].to_vec();
            let message = data[PUBLISH_FIXED + clen..].to_vec();
            Body::Publish { channel, message }
        }
        mtype::FAILOVER_AUTH_REQUEST | mtype::FAILOVER_AUTH_ACK | mtype::MFSTART => {
            check(HEADER_LEN)?;
            Body::Raw(Vec::new())
        }
        mtype::MODULE => {
            if data.len() < MODULE_FIXED {
                return Err(DecodeError::BadLength { kind, got: totlen, expected: HEADER_LEN + MODULE_FIXED });
            }
            check(HEADER_LEN + MODULE_FIXED + be32(data, 8) as usize)?;
            Body::Raw(data.to_vec())
        }
        _ => Body::Raw(data.to_vec()),
    };
    Ok(Msg { hdr, body })
}

fn decode_gossip(g: &[u8]) -> Gossip {
    Gossip {
        name: name_at(g, 0),
        ping_sent: be32(g, 40),
        pong_received: be32(g, 44),
        ip: cstr(&g[48..48 + IP_LEN]),
        port: be16(g, 94),
        cport: be16(g, 96),
        flags: be16(g, 98),
        pport: be16(g, 100),
    }
}

fn encode_gossip(g: &Gossip, out: &mut [u8]) {
    out[..NAME_LEN].copy_from_slice(&g.name);
    out[40..44].copy_from_slice(&g.ping_sent.to_be_bytes());
    out[44..48].copy_from_slice(&g.pong_received.to_be_bytes());
    put_cstr(&mut out[48..48 + IP_LEN], &g.ip);
    out[94..96].copy_from_slice(&g.port.to_be_bytes());
    out[96..98].copy_from_slice(&g.cport.to_be_bytes());
    out[98..100].copy_from_slice(&g.flags.to_be_bytes());
    out[100..102].copy_from_slice(&g.pport.to_be_bytes());
}

/// Pads an extension to 8 bytes as Redis's `EIGHT_BYTE_ALIGN`.
fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Encodes a message. `totlen`, `count` and `extensions` (and the EXT_DATA flag) are computed
/// from the body, whatever the header says.
pub fn encode(msg: &Msg) -> Vec<u8> {
    let h = &msg.hdr;
    let mut out = vec![0u8; HEADER_LEN];
    let mut count = h.count;
    let mut extensions = 0u16;
    let mut mflags = h.mflags;
    match &msg.body {
        Body::Ping { gossip, hostname, other } => {
            count = gossip.len().min(u16::MAX as usize) as u16;
            for g in gossip.iter().take(count as usize) {
                let at = out.len();
                out.resize(at + GOSSIP_LEN, 0);
                encode_gossip(g, &mut out[at..]);
            }
            let mut push_ext = |out: &mut Vec<u8>, etype: u16, payload: &[u8]| {
                let len = align8(EXT_HEADER_LEN + payload.len());
                let at = out.len();
                out.resize(at + len, 0);
                out[at..at + 4].copy_from_slice(&(len as u32).to_be_bytes());
                out[at + 4..at + 6].copy_from_slice(&etype.to_be_bytes());
                out[at + EXT_HEADER_LEN..at + EXT_HEADER_LEN + payload.len()].copy_from_slice(payload);
                extensions += 1;
            };
            if let Some(name) = hostname {
                let mut p = name.as_bytes().to_vec();
                p.push(0);
                push_ext(&mut out, EXT_HOSTNAME, &p);
            }
            for e in other {
                push_ext(&mut out, e.etype, &e.data);
            }
            if extensions > 0 {
                mflags[0] |= FLAG0_EXT_DATA;
            }
        }
        Body::Fail { about } => out.extend_from_slice(about),
        Body::Update { config_epoch, node, slots } => {
            out.extend_from_slice(&config_epoch.to_be_bytes());
            out.extend_from_slice(node);
            out.extend_from_slice(&slots.to_bytes());
        }
        Body::Publish { channel, message } => {
            out.extend_from_slice(&(channel.len() as u32).to_be_bytes());
            out.extend_from_slice(&(message.len() as u32).to_be_bytes());
            out.extend_from_slice(channel);
            out.extend_from_slice(message);
        }
        Body::Raw(data) => out.extend_from_slice(data),
    }
    let totlen = out.len() as u32;
    out[off::SIG..off::SIG + 4].copy_from_slice(SIG);
    out[off::TOTLEN..off::TOTLEN + 4].copy_from_slice(&totlen.to_be_bytes());
    out[off::VER..off::VER + 2].copy_from_slice(&h.ver.to_be_bytes());
    out[off::PORT..off::PORT + 2].copy_from_slice(&h.port.to_be_bytes());
    out[off::TYPE..off::TYPE + 2].copy_from_slice(&h.mtype.to_be_bytes());
    out[off::COUNT..off::COUNT + 2].copy_from_slice(&count.to_be_bytes());
    out[off::CURRENT_EPOCH..off::CURRENT_EPOCH + 8].copy_from_slice(&h.current_epoch.to_be_bytes());
    out[off::CONFIG_EPOCH..off::CONFIG_EPOCH + 8].copy_from_slice(&h.config_epoch.to_be_bytes());
    out[off::OFFSET..off::OFFSET + 8].copy_from_slice(&h.offset.to_be_bytes());
    out[off::SENDER..off::SENDER + NAME_LEN].copy_from_slice(&h.sender);
    out[off::MYSLOTS..off::MYSLOTS + SLOT_BYTES].copy_from_slice(&h.myslots.to_bytes());
    if let Some(m) = &h.slaveof {
        out[off::SLAVEOF..off::SLAVEOF + NAME_LEN].copy_from_slice(m);
    }
    put_cstr(&mut out[off::MYIP..off::MYIP + IP_LEN], &h.myip);
    out[off::EXTENSIONS..off::EXTENSIONS + 2].copy_from_slice(&extensions.to_be_bytes());
    out[off::PPORT..off::PPORT + 2].copy_from_slice(&h.pport.to_be_bytes());
    out[off::CPORT..off::CPORT + 2].copy_from_slice(&h.cport.to_be_bytes());
    out[off::FLAGS..off::FLAGS + 2].copy_from_slice(&h.flags.to_be_bytes());
    out[off::STATE] = h.state;
    out[off::MFLAGS..off::MFLAGS + 3].copy_from_slice(&mflags);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(c: u8) -> NodeId {
        [c; NAME_LEN]
    }

    fn sample_header(t: u16) -> Header {
        let mut h = Header::new(t, name(b'a'));
        h.port = 7000;
        h.cport = 17000;
        h.pport = 0;
        h.current_epoch = 0x0102030405060708;
        h.config_epoch = 5;
        h.offset = 99;
        h.myslots.set(0, true);
        h.myslots.set(16383, true);
        h.slaveof = Some(name(b'b'));
        h.myip = "10.0.0.1".into();
        h.flags = 2;
        h.state = 1;
        h
    }

    #[test]
    fn header_offsets_match_cluster_h() {
        // clusterMsg: sig[4] totlen(4) ver(2) port(2) type(2) count(2) currentEpoch(8)
        // configEpoch(8) offset(8) sender[40] myslots[2048] slaveof[40] myip[46] extensions(2)
        // notused1[30] pport(2) cport(2) flags(2) state(1) mflags[3] data.
        let mut at = 0;
        let mut next = |size: usize| {
            let here = at;
            at += size;
            here
        };
        assert_eq!(next(4), off::SIG);
        assert_eq!(next(4), off::TOTLEN);
        assert_eq!(next(2), off::VER);
        assert_eq!(next(2), off::PORT);
        assert_eq!(next(2), off::TYPE);
        assert_eq!(next(2), off::COUNT);
        assert_eq!(next(8), off::CURRENT_EPOCH);
        assert_eq!(next(8), off::CONFIG_EPOCH);
        assert_eq!(next(8), off::OFFSET);
        assert_eq!(next(40), off::SENDER);
        assert_eq!(next(2048), off::MYSLOTS);
        assert_eq!(next(40), off::SLAVEOF);
        assert_eq!(next(46), off::MYIP);
        assert_eq!(next(2), off::EXTENSIONS);
        next(30);
        assert_eq!(next(2), off::PPORT);
        assert_eq!(next(2), off::CPORT);
        assert_eq!(next(2), off::FLAGS);
        assert_eq!(next(1), off::STATE);
        assert_eq!(next(3), off::MFLAGS);
        assert_eq!(next(0), off::DATA);
        // Redis 7.0 static-asserts these offsets (cluster.c): data at 2256.
        assert_eq!(off::DATA, HEADER_LEN);
        assert_eq!(HEADER_LEN, 2256);
    }

    #[test]
    fn ping_bytes_at_known_offsets() {
        let mut h = sample_header(mtype::PING);
        h.myip.clear();
        let g = Gossip {
            name: name(b'c'),
            ping_sent: 1,
            pong_received: 0x01020304,
            ip: "127.0.0.1".into(),
            port: 7001,
            cport: 17001,
            flags: 1,
            pport: 0,
        };
        let b = encode(&Msg { hdr: h, body: Body::Ping { gossip: vec![g], hostname: None, other: vec![] } });
        assert_eq!(b.len(), HEADER_LEN + GOSSIP_LEN);
        assert_eq!(&b[0..4], b"RCmb");
        assert_eq!(&b[4..8], &((HEADER_LEN + GOSSIP_LEN) as u32).to_be_bytes());
        assert_eq!(&b[8..10], &[0, 1]);
        assert_eq!(&b[10..12], &7000u16.to_be_bytes());
        assert_eq!(&b[12..14], &[0, 0]);
        assert_eq!(&b[14..16], &[0, 1]);
        assert_eq!(&b[16..24], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(b[40], b'a');
        assert_eq!(b[80], 1); // slot 0
        assert_eq!(b[80 + 2047], 0x80); // slot 16383
        assert_eq!(b[2128], b'b');
        assert_eq!(b[2168], 0); // no announced ip
        assert_eq!(&b[2248..2250], &17000u16.to_be_bytes());
        assert_eq!(&b[2250..2252], &[0, 2]);
        assert_eq!(b[2252], 1);
        let g0 = HEADER_LEN;
        assert_eq!(b[g0], b'c');
        assert_eq!(&b[g0 + 44..g0 + 48], &[1, 2, 3, 4]);
        assert_eq!(&b[g0 + 48..g0 + 57], b"127.0.0.1");
        assert_eq!(&b[g0 + 94..g0 + 96], &7001u16.to_be_bytes());
        assert_eq!(&b[g0 + 96..g0 + 98], &17001u16.to_be_bytes());
        assert_eq!(&b[g0 + 98..g0 + 100], &[0, 1]);
    }

    #[test]
    fn round_trips() {
        let g = Gossip {
            name: name(b'd'),
            ping_sent: 7,
            pong_received: 8,
            ip: "::1".into(),
            port: 1,
            cport: 2,
            flags: 4,
            pport: 3,
        };
        let bodies = vec![
            (mtype::PING, Body::Ping { gossip: vec![g.clone(), g.clone()], hostname: None, other: vec![] }),
            (mtype::PONG, Body::Ping { gossip: vec![], hostname: Some("host-1.example".into()), other: vec![] }),
            (
                mtype::MEET,
                Body::Ping {
                    gossip: vec![g],
                    hostname: Some("h".into()),
                    other: vec![RawExt { etype: 9, data: vec![1; 8] }],
                },
            ),
            (mtype::FAIL, Body::Fail { about: name(b'e') }),
            (mtype::UPDATE, Body::Update { config_epoch: 42, node: name(b'f'), slots: SlotBitmap::default() }),
            (mtype::PUBLISH, Body::Publish { channel: b"ch".to_vec(), message: b"hello".to_vec() }),
            (mtype::FAILOVER_AUTH_REQUEST, Body::Raw(vec![])),
            (mtype::MFSTART, Body::Raw(vec![])),
        ];
        for (t, body) in bodies {
            let mut hdr = sample_header(t);
            let msg = Msg { hdr: hdr.clone(), body: body.clone() };
            let bytes = encode(&msg);
            let back = decode(&bytes).expect("decodes");
            if let Body::Ping { gossip, hostname, other } = &body {
                hdr.count = gossip.len() as u16;
                hdr.extensions = hostname.iter().count() as u16 + other.len() as u16;
                if hdr.extensions > 0 {
                    hdr.mflags[0] |= FLAG0_EXT_DATA;
                }
            }
            assert_eq!(back, Msg { hdr, body }, "type {t}");
        }
    }

    #[test]
    fn hostname_extension_is_padded_to_eight() {
        let hdr = sample_header(mtype::PING);
        let b = encode(&Msg { hdr, body: Body::Ping { gossip: vec![], hostname: Some("abc".into()), other: vec![] } });
        // 8-byte ext header + "abc\0" = 12, aligned to 16.
        assert_eq!(b.len(), HEADER_LEN + 16);
        assert_eq!(&b[HEADER_LEN..HEADER_LEN + 4], &16u32.to_be_bytes());
        assert_eq!(&b[HEADER_LEN + 4..HEADER_LEN + 6], &[0, 0]);
        assert_eq!(&b[HEADER_LEN + 8..HEADER_LEN + 12], b"abc\0");
        assert_eq!(&b[off::EXTENSIONS..off::EXTENSIONS + 2], &[0, 1]);
        assert_eq!(b[off::MFLAGS] & FLAG0_EXT_DATA, FLAG0_EXT_DATA);
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        assert_eq!(frame_len(b"RCmX\0\0\x10\0"), Err(DecodeError::BadSignature));
        assert_eq!(frame_len(b"RCmb\0\0\0\x10"), Err(DecodeError::TooShort(16)));
        assert_eq!(frame_len(b"RCmb\xff\xff\xff\xff"), Err(DecodeError::TooLong(u32::MAX as usize)));
        assert_eq!(frame_len(b"RCm"), Err(DecodeError::BadSignature));
        // A PING claiming gossip that is not there.
        let mut b = encode(&Msg {
            hdr: sample_header(mtype::PING),
            body: Body::Ping { gossip: vec![], hostname: None, other: vec![] },
        });
        b[off::COUNT + 1] = 3;
        assert!(matches!(decode(&b), Err(DecodeError::BadLength { .. })));
        // A FAIL with extra bytes.
        let mut b = encode(&Msg { hdr: sample_header(mtype::FAIL), body: Body::Fail { about: name(b'x') } });
        b.push(0);
        let n = b.len() as u32;
        b[4..8].copy_from_slice(&n.to_be_bytes());
        assert!(matches!(decode(&b), Err(DecodeError::BadLength { .. })));
        // Extensions: misaligned, and past the end.
        let mut b = encode(&Msg {
            hdr: sample_header(mtype::PING),
            body: Body::Ping { gossip: vec![], hostname: Some("abc".into()), other: vec![] },
        });
        b[HEADER_LEN + 3] = 12;
        assert!(matches!(decode(&b), Err(DecodeError::BadExtension(_))));
        b[HEADER_LEN + 3] = 64;
        assert!(matches!(decode(&b), Err(DecodeError::BadExtension(_))));
        b[off::EXTENSIONS + 1] = 200;
        assert!(decode(&b).is_err());
        // A PUBLISH whose lengths overflow what arrived.
        let mut b = encode(&Msg {
            hdr: sample_header(mtype::PUBLISH),
            body: Body::Publish { channel: b"c".to_vec(), message: b"m".to_vec() },
        });
        b[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&b).is_err());
    }

    #[test]
    fn publish_bytes_at_known_offsets() {
        // clusterMsgDataPublish: channel_len(4) message_len(4) then channel and message bytes,
        // with no padding (the 8-byte bulk_data placeholder is not counted in totlen).
        let body = Body::Publish { channel: b"news".to_vec(), message: b"hello!".to_vec() };
        let b = encode(&Msg { hdr: sample_header(mtype::PUBLISH), body });
        assert_eq!(b.len(), HEADER_LEN + 8 + 4 + 6);
        assert_eq!(&b[4..8], &((HEADER_LEN + 18) as u32).to_be_bytes());
        assert_eq!(&b[12..14], &[0, 4]);
        assert_eq!(&b[HEADER_LEN..HEADER_LEN + 8], &[0, 0, 0, 4, 0, 0, 0, 6]);
        assert_eq!(&b[HEADER_LEN + 8..], b"newshello!");
        // Empty channel and message.
        let empty = Body::Publish { channel: vec![], message: vec![] };
        let b = encode(&Msg { hdr: sample_header(mtype::PUBLISH), body: empty.clone() });
        assert_eq!(b.len(), HEADER_LEN + 8);
        assert_eq!(decode(&b).expect("decodes").body, empty);
    }

    #[test]
    fn publish_lengths_must_add_up_exactly() {
        let frame = |clen: u32, mlen: u32, bytes: &[u8]| {
            let mut d = clen.to_be_bytes().to_vec();
            d.extend_from_slice(&mlen.to_be_bytes());
            d.extend_from_slice(bytes);
            encode(&Msg { hdr: sample_header(mtype::PUBLISH), body: Body::Raw(d) })
        };
        assert!(decode(&frame(2, 3, b"chmsg")).is_ok());
        for (clen, mlen, what) in [
            (3, 3, "channel past the end"),
            (2, 4, "message past the end"),
            (1, 3, "bytes left over"),
            // 0xffffffff + 6 wraps to 5 in 32 bits: Redis's uint32 sum would accept it.
            (u32::MAX, 6, "lengths wrapping around"),
            (u32::MAX, u32::MAX, "both huge"),
        ] {
            assert!(
                matches!(decode(&frame(clen, mlen, b"chmsg")), Err(DecodeError::BadLength { kind: "publish", .. })),
                "{what}"
            );
        }
        // Too short to hold the two lengths.
        let short = encode(&Msg { hdr: sample_header(mtype::PUBLISH), body: Body::Raw(vec![0, 0, 0, 0]) });
        assert!(matches!(decode(&short), Err(DecodeError::BadLength { .. })));
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut r = rand::rngs::StdRng::seed_from_u64(7);
        let base = encode(&Msg {
            hdr: sample_header(mtype::PING),
            body: Body::Ping { gossip: vec![], hostname: Some("x".into()), other: vec![] },
        });
        for _ in 0..2000 {
            let mut b = base.clone();
            for _ in 0..r.gen_range(1..8) {
                let i = r.gen_range(0..b.len());
                b[i] = r.gen();
            }
            let cut = r.gen_range(0..=b.len());
            let _ = decode(&b[..cut]);
            let _ = decode(&b);
        }
    }
}
