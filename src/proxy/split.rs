//! Multi-key commands whose keys span slots: one sub-request per slot (sent in parallel, each
//! with its own redirect handling), merged back in the client's key order. Merging slices the
//! parts' replies at element boundaries, so values pass through as the node's bytes.

use crate::proxy::redirect::{error_reply, Inflight};
use crate::proxy::router::SplitKind;
use crate::resp::{frame_len, request::parse_i64};
use bytes::{BufMut, Bytes, BytesMut};

/// The request for one slot's keys: the command name, then each key (with its value for MSET).
pub fn sub_request(args: &[&[u8]], kind: SplitKind, positions: &[usize]) -> Bytes {
    let per_key = if kind == SplitKind::AllOk { 2 } else { 1 };
    let mut out = BytesMut::new();
    let n = 1 + positions.len() * per_key;
    put_header(&mut out, b'*', n);
    put_bulk(&mut out, args[0]);
    for &p in positions {
        // The router checked that every key has its value; `get` keeps a slip from panicking.
        for a in args.get(p..p + per_key).unwrap_or_default() {
            put_bulk(&mut out, a);
        }
    }
    out.freeze()
}

/// A request encoded as a multibulk (for inline requests, which are re-encoded before forwarding).
pub fn encode(args: &[&[u8]]) -> Bytes {
    let mut out = BytesMut::new();
    put_header(&mut out, b'*', args.len());
    args.iter().for_each(|a| put_bulk(&mut out, a));
    out.freeze()
}

fn put_header(out: &mut BytesMut, tag: u8, n: usize) {
    out.put_u8(tag);
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
    out.put_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, a: &[u8]) {
    put_header(out, b'$', a.len());
    out.put_slice(a);
    out.put_slice(b"\r\n");
}

/// One part of a split request: which of the client's keys (by order) it carries.
pub struct Part {
    pub inflight: Inflight,
    pub key_indices: Vec<usize>,
}

/// Waits for every part and merges. The first error reply (in part order) is the reply.
pub async fn merge(
    sh: &std::sync::Arc<crate::proxy::server::Shared>,
    group: usize,
    resp3: bool,
    kind: SplitKind,
    parts: Vec<Part>,
    nkeys: usize,
) -> Bytes {
    let mut values: Vec<Bytes> = vec![Bytes::new(); if kind == SplitKind::Values { nkeys } else { 0 }];
    let mut concat: Vec<Bytes> = Vec::new();
    let mut nil: Option<Bytes> = None;
    let mut sum: i64 = 0;
    let mut first_error: Option<Bytes> = None;
    for part in parts {
        let node = part.inflight.addr.as_ref().map(|a| a.to_string()).unwrap_or_default();
        let reply = part.inflight.finish(sh, group, resp3).await;
        if first_error.is_some() {
            continue;
        }
        if reply.first() == Some(&b'-') || reply.first() == Some(&b'!') {
            first_error = Some(reply);
            continue;
        }
        let ok = match kind {
            SplitKind::AllOk => reply.as_ref() == b"+OK\r\n",
            SplitKind::Sum => {
                match reply.strip_prefix(b":").and_then(|r| r.strip_suffix(b"\r\n")).and_then(parse_i64) {
                    Some(n) => {
                        sum += n;
                        true
                    }
                    None => false,
                }
            }
            SplitKind::Values => split_array(&reply, &part.key_indices, &mut values),
            SplitKind::Concat => array_elements(&reply, &mut concat),
            SplitKind::AnyValue => {
                if !is_nil(&reply) {
                    concat.push(reply.clone());
                }
                nil.get_or_insert(reply);
                true
            }
        };
        if !ok {
            first_error = Some(error_reply(&crate::errors::proxy_bad_part_reply(&node)));
        }
    }
    if let Some(e) = first_error {
        return e;
    }
    match kind {
        SplitKind::AllOk => Bytes::from_static(b"+OK\r\n"),
        SplitKind::Sum => {
            let mut out = BytesMut::new();
            out.put_u8(b':');
            out.put_slice(itoa::Buffer::new().format(sum).as_bytes());
            out.put_slice(b"\r\n");
            out.freeze()
        }
        SplitKind::Values => array_of(&values),
        SplitKind::Concat => array_of(&concat),
        SplitKind::AnyValue => match concat.len() {
            0 => nil.unwrap_or_else(|| Bytes::from_static(b"$-1\r\n")),
            n => concat.swap_remove(rand::Rng::gen_range(&mut rand::thread_rng(), 0..n)),
        },
    }
}

/// A nil bulk reply, RESP2 or RESP3.
fn is_nil(reply: &[u8]) -> bool {
    reply == b"$-1\r\n" || reply == b"_\r\n"
}

fn array_of(values: &[Bytes]) -> Bytes {
    let mut out = BytesMut::with_capacity(values.iter().map(|v| v.len()).sum::<usize>() + 16);
    put_header(&mut out, b'*', values.len());
    values.iter().for_each(|v| out.put_slice(v));
    out.freeze()
}

/// Appends every element of an array reply (RESP2 `*` or RESP3 `*`/`~`) as its own bytes.
fn array_elements(reply: &Bytes, out: &mut Vec<Bytes>) -> bool {
    let Some(nl) = memchr::memchr(b'\n', reply) else { return false };
    if !matches!(reply.first(), Some(b'*' | b'~')) || nl < 2 {
        return false;
    }
    let Some(n) = parse_i64(&reply[1..nl - 1]) else { return false };
    if n < 0 {
        return false;
    }
    let mut pos = nl + 1;
    for _ in 0..n {
        match frame_len(&reply[pos..]) {
            Ok(Some(len)) => {
                out.push(reply.slice(pos..pos + len));
                pos += len;
            }
            _ => return false,
        }
    }
    pos == reply.len()
}

/// Slices an array reply into its elements, placing element i at `values[indices[i]]`.
fn split_array(reply: &Bytes, indices: &[usize], values: &mut [Bytes]) -> bool {
    let Some(nl) = memchr::memchr(b'\n', reply) else { return false };
    if reply.first() != Some(&b'*') || nl < 2 {
        return false;
    }
    let Some(n) = parse_i64(&reply[1..nl - 1]) else { return false };
    if n < 0 || n as usize != indices.len() {
        return false;
    }
    let mut pos = nl + 1;
    for &i in indices {
        match frame_len(&reply[pos..]) {
            Ok(Some(len)) => {
                let Some(slot) = values.get_mut(i) else { return false };
                *slot = reply.slice(pos..pos + len);
                pos += len;
            }
            _ => return false,
        }
    }
    pos == reply.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_requests_and_array_slicing() {
        let args: Vec<&[u8]> = vec![b"MSET", b"a", b"1", b"b", b"2", b"c", b"3"];
        assert_eq!(
            &sub_request(&args, SplitKind::AllOk, &[1, 5])[..],
            b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nc\r\n$1\r\n3\r\n"
        );
        let mut values = vec![Bytes::new(); 3];
        let reply = Bytes::from_static(b"*2\r\n$1\r\nx\r\n$-1\r\n");
        assert!(split_array(&reply, &[2, 0], &mut values));
        assert_eq!(&values[2][..], b"$1\r\nx\r\n");
        assert_eq!(&values[0][..], b"$-1\r\n");
        assert!(!split_array(&reply, &[0], &mut values));
        assert!(!split_array(&Bytes::from_static(b"*2\r\n$1\r\nx\r\n"), &[0, 1], &mut values));
        let mut all = Vec::new();
        assert!(array_elements(&Bytes::from_static(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"), &mut all));
        assert!(array_elements(&Bytes::from_static(b"*0\r\n"), &mut all));
        assert_eq!(&array_of(&all)[..], b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
        assert!(!array_elements(&Bytes::from_static(b"*2\r\n$1\r\na\r\n"), &mut all));
    }
}
