//! Writes replies straight into an output buffer in the client's protocol (RESP2 or RESP3), so a
//! command never builds an intermediate value tree. Each method knows how Redis downgrades a RESP3
//! type for RESP2 clients (maps become flat arrays, nulls become `$-1` or `*-1`, doubles become bulk
//! strings, booleans become integers).

use bytes::{BufMut, BytesMut};

#[derive(Debug)]
pub struct Reply {
    pub buf: BytesMut,
    pub resp3: bool,
}

impl Reply {
    pub fn new(resp3: bool) -> Self {
        Reply { buf: BytesMut::with_capacity(16 * 1024), resp3 }
    }

    #[inline]
    fn header(&mut self, tag: u8, n: i64) {
        self.buf.put_u8(tag);
        let mut b = itoa::Buffer::new();
        self.buf.put_slice(b.format(n).as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.put_slice(b"+OK\r\n");
    }
    pub fn queued(&mut self) {
        self.buf.put_slice(b"+QUEUED\r\n");
    }
    pub fn simple(&mut self, s: &str) {
        self.buf.put_u8(b'+');
        self.buf.put_slice(s.as_bytes());
        self.buf.put_slice(b"\r\n");
    }
    /// An error line; `text` carries its prefix (`ERR ...`). CR and LF would end the line early, so
    /// like Redis's `addReplyErrorLength` callers they become spaces.
    pub fn error(&mut self, text: &str) {
        self.buf.put_u8(b'-');
        for &c in text.as_bytes() {
            self.buf.put_u8(if c == b'\r' || c == b'\n' { b' ' } else { c });
        }
        self.buf.put_slice(b"\r\n");
    }
    #[inline]
    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }
    #[inline]
    pub fn bulk(&mut self, data: &[u8]) {
        self.header(b'$', data.len() as i64);
        self.buf.put_slice(data);
        self.buf.put_slice(b"\r\n");
    }
    pub fn bulk_str(&mut self, s: &str) {
        self.bulk(s.as_bytes());
    }
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }
    /// The null of a missing string: `$-1` / `_`.
    pub fn null(&mut self) {
        self.buf.put_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }
    /// The null of a missing aggregate (timed-out BLPOP, aborted EXEC): `*-1` / `_`.
    pub fn null_array(&mut self) {
        self.buf.put_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }
    #[inline]
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }
    /// A map of `n` pairs: `%n` in RESP3, an array of 2n in RESP2.
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'%', n as i64)
        } else {
            self.header(b'*', 2 * n as i64)
        }
    }
    pub fn set(&mut self, n: usize) {
        self.header(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }
    /// Out-of-band data (pub/sub messages, invalidations): `>n` in RESP3.
    pub fn push(&mut self, n: usize) {
        self.header(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }
    pub fn bool(&mut self, b: bool) {
        if self.resp3 {
            self.buf.put_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }
    /// A double the way Redis 7.0's `addReplyDouble` prints it (`%.17g`).
    pub fn double(&mut self, d: f64) {
        let s = fmt_double(d);
        if self.resp3 {
            self.buf.put_u8(b',');
            self.buf.put_slice(s.as_bytes());
            self.buf.put_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }
    /// Verbatim text (INFO, CLIENT INFO/LIST): `=len\r\ntxt:...` in RESP3, bulk in RESP2.
    pub fn verbatim(&mut self, text: &[u8]) {
        if self.resp3 {
            self.header(b'=', text.len() as i64 + 4);
            self.buf.put_slice(b"txt:");
            self.buf.put_slice(text);
            self.buf.put_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }
    /// Already-encoded protocol bytes.
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.put_slice(b);
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// Drops everything written after `mark` (a command that fails after it started replying).
    pub fn truncate(&mut self, mark: usize) {
        self.buf.truncate(mark);
    }
}

/// C's `%.17g`, which Redis 7.0 uses for doubles in replies.
pub fn fmt_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    fmt_g(d, 17)
}

/// C's `%.<prec>g`.
pub fn fmt_g(d: f64, prec: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let e = format!("{:.*e}", prec - 1, d);
    let (mant, exp) = e.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_c() {
        assert_eq!(fmt_double(1.0), "1");
        assert_eq!(fmt_double(1.5), "1.5");
        assert_eq!(fmt_double(0.1), "0.10000000000000001");
        assert_eq!(fmt_double(1e17), "1e+17");
        assert_eq!(fmt_double(123456789.0), "123456789");
        assert_eq!(fmt_double(1e-5), "1.0000000000000001e-05");
        assert_eq!(fmt_double(-2.5e-300), "-2.5e-300");
        assert_eq!(fmt_double(1e16), "10000000000000000");
        assert_eq!(fmt_double(f64::INFINITY), "inf");
    }

    #[test]
    fn resp2_downgrades() {
        let mut r = Reply::new(false);
        r.map(2);
        r.null();
        r.null_array();
        r.bool(true);
        assert_eq!(&r.buf[..], b"*4\r\n$-1\r\n*-1\r\n:1\r\n");
        let mut r = Reply::new(true);
        r.map(2);
        r.null();
        r.double(2.5);
        assert_eq!(&r.buf[..], b"%2\r\n_\r\n,2.5\r\n");
    }
}
