//! Whole RESP2/RESP3 values: what servers send back, parsed by the proxy and by tests, and
//! encoded by anything that needs to build a request. Bulk payloads are `Bytes` slices of the
//! input buffer (zero copy).

use bytes::{BufMut, Bytes, BytesMut};

/// Nesting deeper than this is refused instead of recursing without bound.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Simple(Bytes),
    Error(Bytes),
    Integer(i64),
    Bulk(Bytes),
    /// `$-1` in RESP2, `_` in RESP3.
    Null,
    /// `*-1`
    NullArray,
    Array(Vec<Frame>),
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Push(Vec<Frame>),
    Double(Bytes),
    Boolean(bool),
    BigNumber(Bytes),
    /// `=len\r\nfmt:text`: the three-byte format and the text.
    Verbatim(Bytes, Bytes),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("invalid RESP type byte {0:#04x}")]
    BadType(u8),
    #[error("invalid length or integer")]
    BadNumber,
    #[error("frame nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("frame element larger than the limit")]
    TooLarge,
    #[error("missing CRLF")]
    MissingCrlf,
}

/// Limit on a single bulk/aggregate length accepted from a peer.
pub const MAX_LEN: i64 = 512 * 1024 * 1024;

impl Frame {
    pub fn bulk(b: impl Into<Bytes>) -> Frame {
        Frame::Bulk(b.into())
    }
    /// A request frame: an array of bulk strings.
    pub fn command<I, T>(args: I) -> Frame
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        Frame::Array(args.into_iter().map(|a| Frame::Bulk(Bytes::copy_from_slice(a.as_ref()))).collect())
    }

    /// Parses one frame from the front of `buf`; `Ok(None)` when more bytes are needed.
    /// Returns the frame and how many bytes it used. Bulk data is sliced from `buf`.
    pub fn parse(buf: &Bytes) -> Result<Option<(Frame, usize)>, FrameError> {
        let mut pos = 0;
        match parse_at(buf, &mut pos, 0)? {
            Some(f) => Ok(Some((f, pos))),
            None => Ok(None),
        }
    }

    pub fn encode(&self, out: &mut BytesMut) {
        fn head(out: &mut BytesMut, tag: u8, n: usize) {
            out.put_u8(tag);
            out.put_slice(itoa::Buffer::new().format(n).as_bytes());
            out.put_slice(b"\r\n");
        }
        fn line(out: &mut BytesMut, tag: u8, b: &[u8]) {
            out.put_u8(tag);
            out.put_slice(b);
            out.put_slice(b"\r\n");
        }
        match self {
            Frame::Simple(s) => line(out, b'+', s),
            Frame::Error(s) => line(out, b'-', s),
            Frame::Integer(n) => line(out, b':', itoa::Buffer::new().format(*n).as_bytes()),
            Frame::Bulk(b) => {
                head(out, b'$', b.len());
                out.put_slice(b);
                out.put_slice(b"\r\n");
            }
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
            Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => {
                let tag = match self {
                    Frame::Array(_) => b'*',
                    Frame::Set(_) => b'~',
                    _ => b'>',
                };
                head(out, tag, v.len());
                v.iter().for_each(|f| f.encode(out));
            }
            Frame::Map(kv) => {
                head(out, b'%', kv.len());
                for (k, v) in kv {
                    k.encode(out);
                    v.encode(out);
                }
            }
            Frame::Double(d) => line(out, b',', d),
            Frame::Boolean(b) => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::BigNumber(n) => line(out, b'(', n),
            Frame::Verbatim(fmt, text) => {
                head(out, b'=', fmt.len() + 1 + text.len());
                out.put_slice(fmt);
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b.freeze()
    }

    /// The payload of a string-like frame.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Frame::Simple(b) | Frame::Bulk(b) | Frame::Error(b) | Frame::Double(b) | Frame::BigNumber(b) => Some(b),
            Frame::Verbatim(_, b) => Some(b),
            _ => None,
        }
    }
}

/// The length of the complete frame at the front of `buf`, without building it: how a forwarder
/// finds reply boundaries while passing the bytes on untouched. `Ok(None)`: need more bytes.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    FrameScanner::default().scan(buf)
}

/// [`frame_len`] that resumes where the last call stopped: a reply of a million elements arriving
/// in a thousand reads is scanned once, not a thousand times from its start. The buffer must only
/// grow at its end between calls; after `Ok(Some(_))` the scanner starts over at the next frame.
#[derive(Debug, Default, Clone)]
pub struct FrameScanner {
    /// Where the first element not yet fully seen starts.
    pos: usize,
    /// Elements still to skip (0: nothing scanned yet, the frame itself is pending).
    pending: u64,
}

impl FrameScanner {
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let mut pos = self.pos;
        let mut pending = self.pending.max(1);
        while pending > 0 {
            // The state at each element's start: where to resume when it is not complete yet.
            self.pos = pos;
            self.pending = pending;
            if pos >= buf.len() {
                return Ok(None);
            }
            let tag = buf[pos];
            let Some(i) = find_cr(&buf[pos + 1..]) else { return Ok(None) };
            let (s, e) = (pos + 1, pos + 1 + i);
            if e + 1 >= buf.len() {
                return Ok(None);
            }
            if buf[e + 1] != b'\n' {
                return Err(FrameError::MissingCrlf);
            }
            let mut next = e + 2;
            let mut more = pending - 1;
            match tag {
                b'+' | b'-' | b',' | b'(' | b'#' | b'_' => {}
                b':' => {
                    int(&buf[s..e])?;
                }
                b'$' | b'=' | b'!' => {
                    if let Some(n) = len(&buf[s..e])? {
                        if buf.len() < next + n + 2 {
                            return Ok(None);
                        }
                        next += n + 2;
                    }
                }
                b'*' | b'~' | b'>' | b'%' => {
                    if let Some(n) = len(&buf[s..e])? {
                        more += if tag == b'%' { 2 * n as u64 } else { n as u64 };
                    }
                }
                other => return Err(FrameError::BadType(other)),
            }
            pos = next;
            pending = more;
        }
        *self = FrameScanner::default();
        Ok(Some(pos))
    }
}

fn read_line(buf: &Bytes, pos: &mut usize) -> Result<Option<(usize, usize)>, FrameError> {
    let start = *pos;
    let Some(i) = find_cr(&buf[start..]) else {
        return Ok(None);
    };
    let end = start + i;
    if end + 1 >= buf.len() {
        return Ok(None);
    }
    if buf[end + 1] != b'\n' {
        return Err(FrameError::MissingCrlf);
    }
    *pos = end + 2;
    Ok(Some((start, end)))
}

/// The first CR. Reply headers are a few bytes, so a plain loop over the start finds it before
/// a vector search would have finished its setup; long lines go to memchr.
fn find_cr(buf: &[u8]) -> Option<usize> {
    const SHORT: usize = 24;
    match buf[..buf.len().min(SHORT)].iter().position(|&b| b == b'\r') {
        Some(i) => Some(i),
        None if buf.len() > SHORT => memchr::memchr(b'\r', &buf[SHORT..]).map(|i| i + SHORT),
        None => None,
    }
}

/// What `str::parse::<i64>` accepts (an optional sign, then digits, no overflow), without the
/// UTF-8 check and the string detour: every reply header goes through here.
fn int(b: &[u8]) -> Result<i64, FrameError> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return Err(FrameError::BadNumber);
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(FrameError::BadNumber);
        }
        let d = i64::from(c - b'0');
        let next = v.checked_mul(10).and_then(|v| if neg { v.checked_sub(d) } else { v.checked_add(d) });
        v = next.ok_or(FrameError::BadNumber)?;
    }
    Ok(v)
}

fn len(b: &[u8]) -> Result<Option<usize>, FrameError> {
    let n = int(b)?;
    if n == -1 {
        return Ok(None);
    }
    if !(0..=MAX_LEN).contains(&n) {
        return Err(FrameError::TooLarge);
    }
    Ok(Some(n as usize))
}

fn parse_at(buf: &Bytes, pos: &mut usize, depth: usize) -> Result<Option<Frame>, FrameError> {
    if depth > MAX_DEPTH {
        return Err(FrameError::TooDeep);
    }
    if *pos >= buf.len() {
        return Ok(None);
    }
    let tag = buf[*pos];
    *pos += 1;
    let Some((s, e)) = read_line(buf, pos)? else {
        return Ok(None);
    };
    let text = buf.slice(s..e);
    Ok(Some(match tag {
        b'+' => Frame::Simple(text),
        b'-' => Frame::Error(text),
        b':' => Frame::Integer(int(&text)?),
        b',' => Frame::Double(text),
        b'(' => Frame::BigNumber(text),
        b'#' => match &text[..] {
            b"t" => Frame::Boolean(true),
            b"f" => Frame::Boolean(false),
            _ => return Err(FrameError::BadNumber),
        },
        b'_' => Frame::Null,
        b'$' | b'=' | b'!' => {
            let Some(n) = len(&text)? else { return Ok(Some(Frame::Null)) };
            if buf.len() < *pos + n + 2 {
                return Ok(None);
            }
            let data = buf.slice(*pos..*pos + n);
            if &buf[*pos + n..*pos + n + 2] != b"\r\n" {
                return Err(FrameError::MissingCrlf);
            }
            *pos += n + 2;
            match tag {
                b'$' => Frame::Bulk(data),
                b'!' => Frame::Error(data),
                _ if data.len() >= 4 && data[3] == b':' => Frame::Verbatim(data.slice(..3), data.slice(4..)),
                _ => return Err(FrameError::BadNumber),
            }
        }
        b'*' | b'~' | b'>' | b'%' => {
            let Some(n) = len(&text)? else { return Ok(Some(Frame::NullArray)) };
            // Each element takes at least 3 bytes; refuse to reserve more than the buffer could hold.
            let cap = n.min((buf.len() - *pos) / 3 + 1);
            if tag == b'%' {
                let mut kv = Vec::with_capacity(cap / 2);
                for _ in 0..n {
                    let Some(k) = parse_at(buf, pos, depth + 1)? else { return Ok(None) };
                    let Some(v) = parse_at(buf, pos, depth + 1)? else { return Ok(None) };
                    kv.push((k, v));
                }
                Frame::Map(kv)
            } else {
                let mut v = Vec::with_capacity(cap);
                for _ in 0..n {
                    let Some(f) = parse_at(buf, pos, depth + 1)? else { return Ok(None) };
                    v.push(f);
                }
                match tag {
                    b'*' => Frame::Array(v),
                    b'~' => Frame::Set(v),
                    _ => Frame::Push(v),
                }
            }
        }
        other => return Err(FrameError::BadType(other)),
    }))
}

#[cfg(test)]
mod scanner_tests {
    use super::{frame_len, int, FrameScanner};

    /// The byte parser accepts exactly what `str::parse::<i64>` accepts, with the same value.
    #[test]
    fn int_matches_std_parse() {
        let cases = [
            "0",
            "-0",
            "+0",
            "7",
            "+7",
            "-7",
            "007",
            "",
            "-",
            "+",
            "--1",
            "+-1",
            " 1",
            "1 ",
            "1a",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "\u{e9}",
        ];
        for c in cases {
            assert_eq!(int(c.as_bytes()).ok(), c.parse::<i64>().ok(), "{c:?}");
        }
    }

    /// Fed byte by byte, then in uneven chunks, the scanner finds the same boundaries as a
    /// whole-buffer `frame_len`, for flat and nested replies, two frames back to back.
    #[test]
    fn resumes_across_reads() {
        let mut big = format!("*{}\r\n", 300).into_bytes();
        for i in 0..300 {
            big.extend_from_slice(format!("${}\r\nkey:{i}\r\n", format!("key:{i}").len()).as_bytes());
        }
        let frames: Vec<Vec<u8>> = vec![
            big,
            b"*2\r\n*2\r\n:1\r\n$-1\r\n%1\r\n+a\r\n~1\r\n_\r\n".to_vec(),
            b"$5\r\nhello\r\n".to_vec(),
            b"-ERR x\r\n".to_vec(),
        ];
        let all: Vec<u8> = frames.concat();
        for chunk in [1usize, 3, 7, 64, 1000] {
            let mut sc = FrameScanner::default();
            let mut buf: Vec<u8> = Vec::new();
            let mut fed = 0;
            let mut got = Vec::new();
            while got.len() < frames.len() {
                match sc.scan(&buf).expect("valid") {
                    Some(n) => {
                        assert_eq!(frame_len(&buf).unwrap(), Some(n));
                        got.push(buf.drain(..n).collect::<Vec<u8>>());
                    }
                    None => {
                        assert!(fed < all.len(), "stuck at chunk {chunk}");
                        let end = (fed + chunk).min(all.len());
                        buf.extend_from_slice(&all[fed..end]);
                        fed = end;
                    }
                }
            }
            assert_eq!(got, frames, "chunk {chunk}");
        }
    }
}
