//! The request side of the protocol: what clients send to a server.
//!
//! Mirrors Redis's `processMultibulkBuffer` / `processInlineBuffer` rule for rule (limits, error
//! texts, the unchecked trailing CRLF after bulk data) so that a client cannot tell us apart, even
//! when it misbehaves. The parser keeps its position between calls so that a huge frame arriving in
//! small reads is scanned once, and it never allocates by a length the client announced.

use crate::errors;
use memchr::memchr;

/// Redis's `PROTO_INLINE_MAX_SIZE`: an inline line or a length header may not exceed this.
pub const INLINE_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `proto-max-bulk-len`
    pub max_bulk_len: u64,
    /// When true (requirepass set, client not yet authenticated), headers are capped as Redis does.
    pub unauthenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 * 1024 * 1024, unauthenticated: false }
    }
}

/// A protocol error: the text to reply, after which the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn of(s: &str) -> Self {
        ProtocolError(s.to_string())
    }
}

/// Where an argument lies in the buffer the parser was given.
pub type Span = (usize, usize);

#[derive(Debug, Default)]
pub struct RequestParser {
    /// Bytes of the buffer already consumed by the frame in progress.
    pos: usize,
    /// Arguments still expected (0 = not inside a multibulk frame).
    multibulk_left: usize,
    /// Length of the bulk being read, if its header was seen.
    bulk_len: Option<usize>,
    /// Spans of the frame in progress; inline frames are copied because of unquoting.
    spans: Vec<Span>,
    inline: Vec<Vec<u8>>,
    is_inline: bool,
}

/// One complete request, borrowed from the buffer it was parsed from.
pub enum Parsed {
    /// Not enough bytes yet.
    Incomplete,
    /// A frame with no arguments (`*0`, an empty inline line): consumed, nothing to run.
    Empty(usize),
    /// A request of `len` bytes; arguments via [`RequestParser::args`].
    Request(usize),
}

impl RequestParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the next request at the start of `buf`. After `Request(n)` or `Empty(n)` the caller
    /// reads the arguments, then drops `n` bytes from the front of its buffer (or parses again from
    /// offset `n` by passing `&buf[n..]`) and calls [`RequestParser::reset`].
    pub fn parse(&mut self, buf: &[u8], limits: &Limits) -> Result<Parsed, ProtocolError> {
        if buf.is_empty() {
            return Ok(Parsed::Incomplete);
        }
        if self.pos == 0 && self.multibulk_left == 0 {
            self.is_inline = buf[0] != b'*';
        }
        if self.is_inline {
            self.parse_inline(buf)
        } else {
            self.parse_multibulk(buf, limits)
        }
    }

    /// Forget the frame just returned; the next call starts a new one.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.multibulk_left = 0;
        self.bulk_len = None;
        self.spans.clear();
        self.inline.clear();
        self.is_inline = false;
    }

    /// The arguments of the last complete request, given the same buffer.
    pub fn args<'a>(&'a self, buf: &'a [u8], out: &mut impl Extend<&'a [u8]>) {
        if self.is_inline {
            out.extend(self.inline.iter().map(|a| a.as_slice()));
        } else {
            out.extend(self.spans.iter().map(|&(s, e)| &buf[s..e]));
        }
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Parsed, ProtocolError> {
        let Some(nl) = strchr(buf, b'\n') else {
            if buf.len() > INLINE_MAX {
                return Err(ProtocolError::of(errors::PROTO_TOO_BIG_INLINE));
            }
            return Ok(Parsed::Incomplete);
        };
        let line_end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
        let args = split_args(&buf[..line_end]).ok_or_else(|| ProtocolError::of(errors::PROTO_UNBALANCED_QUOTES))?;
        if args.is_empty() {
            return Ok(Parsed::Empty(nl + 1));
        }
        self.inline = args;
        Ok(Parsed::Request(nl + 1))
    }

    fn parse_multibulk(&mut self, buf: &[u8], limits: &Limits) -> Result<Parsed, ProtocolError> {
        if self.multibulk_left == 0 {
            let (n, cr) = match quick_header(buf) {
                Some(h) => h,
                None => {
                    let Some(cr) = header_end(buf, errors::PROTO_TOO_BIG_MBULK_COUNT)? else {
                        return Ok(Parsed::Incomplete);
                    };
                    (parse_i64(&buf[1..cr]).ok_or_else(|| ProtocolError::of(errors::PROTO_INVALID_MULTIBULK))?, cr)
                }
            };
            if n > i64::from(i32::MAX) {
                return Err(ProtocolError::of(errors::PROTO_INVALID_MULTIBULK));
            }
            if n > 10 && limits.unauthenticated {
                return Err(ProtocolError::of(errors::PROTO_UNAUTH_MULTIBULK));
            }
            if n <= 0 {
                return Ok(Parsed::Empty(cr + 2));
            }
            self.pos = cr + 2;
            self.multibulk_left = n as usize;
            self.spans.clear();
            // Never trust the announced count for allocation.
            self.spans.reserve((n as usize).min(1024));
        }
        while self.multibulk_left > 0 {
            let rest = &buf[self.pos..];
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let quick = if rest.first() == Some(&b'$') { quick_header(rest) } else { None };
                    let (n, cr) = match quick {
                        Some(h) => h,
                        None => {
                            let Some(cr) = header_end(rest, errors::PROTO_TOO_BIG_BULK_COUNT)? else {
                                return Ok(Parsed::Incomplete);
                            };
                            if rest[0] != b'$' {
                                return Err(ProtocolError(errors::proto_expected_dollar(rest[0])));
                            }
                            (parse_i64(&rest[1..cr]).ok_or_else(|| ProtocolError::of(errors::PROTO_INVALID_BULK))?, cr)
                        }
                    };
                    let len = match n {
                        n if n >= 0 && (n as u64) <= limits.max_bulk_len => n as usize,
                        _ => return Err(ProtocolError::of(errors::PROTO_INVALID_BULK)),
                    };
                    if len > 16384 && limits.unauthenticated {
                        return Err(ProtocolError::of(errors::PROTO_UNAUTH_BULK));
                    }
                    self.pos += cr + 2;
                    self.bulk_len = Some(len);
                    len
                }
            };
            // Like Redis, the two bytes after the data are skipped, not checked.
            if buf.len() - self.pos < len + 2 {
                return Ok(Parsed::Incomplete);
            }
            self.spans.push((self.pos, self.pos + len));
            self.pos += len + 2;
            self.bulk_len = None;
            self.multibulk_left -= 1;
        }
        Ok(Parsed::Request(self.pos))
    }
}

/// The general path for a header line: the index of its CR as Redis's `strchr` finds it, once the
/// byte after it has arrived (`None`: incomplete). Without a CR, a line longer than Redis's inline
/// limit is the protocol error `too_big`.
fn header_end(buf: &[u8], too_big: &str) -> Result<Option<usize>, ProtocolError> {
    match strchr(buf, b'\r') {
        Some(cr) if cr + 2 <= buf.len() => Ok(Some(cr)),
        Some(_) => Ok(None),
        None if buf.len() > INLINE_MAX => Err(ProtocolError::of(too_big)),
        None => Ok(None),
    }
}

/// A header line as clients send it, `*3\r\n` or `$16\r\n`: after the type byte, 1 to 18
/// digits without a leading zero, then CR and one more byte. Returns the number and the CR's
/// index, exactly what the general path (`strchr` + [`parse_i64`]) would find. Anything else
/// (a sign, a NUL, more digits, a line not complete yet) is `None`, and the general path decides,
/// with Redis's error texts.
#[inline]
fn quick_header(b: &[u8]) -> Option<(i64, usize)> {
    let (mut v, mut cr) = (0i64, 1);
    // Up to 19 digits are read (wrapping: the 19th only marks the line as too long for this path).
    while cr < b.len() && cr <= 19 {
        let d = b[cr].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(i64::from(d));
        cr += 1;
    }
    let digits = cr - 1;
    if digits == 0 || digits > 18 || (digits > 1 && b[1] == b'0') || b.len() < cr + 2 || b[cr] != b'\r' {
        return None;
    }
    Some((v, cr))
}

/// Where Redis's `strchr()` on its NUL-terminated query buffer finds `c`: a NUL byte before it
/// hides it, so the frame counts as incomplete (until the buffer outgrows the header limits).
fn strchr(buf: &[u8], c: u8) -> Option<usize> {
    // Headers (`*3`, `$16`) are a few bytes: a plain loop finds their CR before the vector
    // search would have finished its setup. Longer runs go to memchr.
    const SHORT: usize = 24;
    let head = &buf[..buf.len().min(SHORT)];
    let found = match head.iter().position(|&b| b == c || b == 0) {
        Some(i) => Some(i),
        None if buf.len() > SHORT => memchr::memchr2(c, 0, &buf[SHORT..]).map(|i| i + SHORT),
        None => None,
    };
    found.filter(|&i| buf[i] == c)
}

/// Redis's `string2ll`: no sign but '-', no leading zeros, no spaces, no overflow.
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let (neg, digits) = if b[0] == b'-' { (true, &b[1..]) } else { (false, b) };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Redis's `sdssplitargs`: whitespace-separated words, "double quotes" with C escapes and
/// `\xHH`, 'single quotes' with only `\'`. A closing quote must be followed by space or the end.
/// Returns None for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // The C original sees a NUL byte as the end of the string.
    let line = &line[..memchr(0, line).unwrap_or(line.len())];
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' && is_hex(line[i + 2]) && is_hex(line[i + 3]) {
                    cur.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}
fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}
fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast header path finds what `strchr` + `parse_i64` find, or leaves the line to them.
    #[test]
    fn quick_header_agrees_with_general_path() {
        let lines: &[&[u8]] = &[
            b"$3\r\n",
            b"*1\r\n",
            b"$0\r\n",
            b"$00\r\n",
            b"$01\r\n",
            b"$-1\r\n",
            b"$+1\r\n",
            b"$1\r",
            b"$1",
            b"$\r\n",
            b"$12a\r\n",
            b"$1\0\r\n",
            b"$999999999999999999\r\n",
            b"$9999999999999999999\r\n",
            b"$1\n\r\n",
            b"$7\rX",
        ];
        for &line in lines {
            let general = strchr(line, b'\r')
                .filter(|&cr| cr + 2 <= line.len())
                .and_then(|cr| parse_i64(&line[1..cr]).map(|n| (n, cr)));
            if let Some(quick) = quick_header(line) {
                assert_eq!(Some(quick), general, "{}", String::from_utf8_lossy(line));
            }
        }
        assert_eq!(quick_header(b"$16\r\nkey"), Some((16, 3)));
        assert_eq!(quick_header(b"*2\r\n"), Some((2, 2)));
    }

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut p = RequestParser::new();
        let mut off = 0;
        let mut reqs = Vec::new();
        loop {
            match p.parse(&input[off..], &Limits::default())? {
                Parsed::Incomplete => return Ok(reqs),
                Parsed::Empty(n) => {
                    off += n;
                    p.reset();
                }
                Parsed::Request(n) => {
                    let mut v = Vec::new();
                    p.args(&input[off..], &mut v);
                    reqs.push(v.iter().map(|a| a.to_vec()).collect());
                    off += n;
                    p.reset();
                }
            }
        }
    }

    #[test]
    fn multibulk_and_inline() {
        let r = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\\x41\"\n").unwrap();
        assert_eq!(
            r,
            vec![
                vec![b"GET".to_vec(), b"k".to_vec()],
                vec![b"PING".to_vec()],
                vec![b"set".to_vec(), b"a".to_vec(), b"b cA".to_vec()],
            ]
        );
    }

    #[test]
    fn protocol_errors_have_redis_texts() {
        assert_eq!(parse_all(b"*abc\r\n").unwrap_err().0, errors::PROTO_INVALID_MULTIBULK);
        assert_eq!(parse_all(b"*1\r\n$1099511627776\r\n").unwrap_err().0, errors::PROTO_INVALID_BULK);
        assert_eq!(parse_all(b"*1\r\n:1\r\n").unwrap_err().0, "ERR Protocol error: expected '$', got ':'");
        assert_eq!(parse_all(b"set \"a\"b\r\n").unwrap_err().0, errors::PROTO_UNBALANCED_QUOTES);
        assert!(parse_all(&vec![b'a'; INLINE_MAX + 1]).is_err());
    }

    #[test]
    fn huge_multibulk_header_waits_without_allocating() {
        assert!(parse_all(b"*10000000\r\n$1\r\na\r\n").unwrap().is_empty());
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"007"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
    }
}
