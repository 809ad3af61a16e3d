//! Redis's listpack: `u32` total bytes, `u16` element count (65535 = unknown), entries, `0xFF`.
//! Each entry is an encoding byte (integer or string length), its data, and a backward length
//! (the size of encoding + data, 1-5 bytes) that lets Redis walk it from the tail.

use crate::resp::request::parse_i64;

const EOF: u8 = 0xFF;

/// Builds a listpack by appending elements, encoding int-like strings as integers like `lpAppend`.
#[derive(Debug)]
pub struct Builder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder { buf: vec![0; 6], count: 0 }
    }
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn count(&self) -> usize {
        self.count
    }
    /// Bytes the finished listpack will take.
    pub fn size(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn push(&mut self, s: &[u8]) {
        let start = self.buf.len();
        match parse_i64(s) {
            Some(v) => self.push_int(v),
            None => self.push_str(s),
        }
        let entry_len = self.buf.len() - start;
        push_backlen(&mut self.buf, entry_len);
        self.count += 1;
    }

    fn push_int(&mut self, v: i64) {
        let b = &mut self.buf;
        if (0..=127).contains(&v) {
            b.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64) & 0x1fff;
            b.push(0xC0 | (u >> 8) as u8);
            b.push(u as u8);
        } else if let Ok(x) = i16::try_from(v) {
            b.push(0xF1);
            b.extend_from_slice(&x.to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            b.push(0xF2);
            b.extend_from_slice(&v.to_le_bytes()[..3]);
        } else if let Ok(x) = i32::try_from(v) {
            b.push(0xF3);
            b.extend_from_slice(&x.to_le_bytes());
        } else {
            b.push(0xF4);
            b.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn push_str(&mut self, s: &[u8]) {
        let b = &mut self.buf;
        let n = s.len();
        if n < 64 {
            b.push(0x80 | n as u8);
        } else if n < 4096 {
            b.push(0xE0 | (n >> 8) as u8);
            b.push(n as u8);
        } else {
            b.push(0xF0);
            b.extend_from_slice(&(n as u32).to_le_bytes());
        }
        b.extend_from_slice(s);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = self.buf.len() as u32;
        let count = if self.count < 65535 { self.count as u16 } else { 65535 };
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// `lpEncodeBacklen`: most significant 7-bit group first, every byte after the first flagged.
fn push_backlen(b: &mut Vec<u8>, l: usize) {
    let n = backlen_size(l);
    for i in (0..n).rev() {
        let group = ((l >> (7 * i)) & 127) as u8;
        b.push(if i == n - 1 { group } else { group | 128 });
    }
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// The elements of a listpack (integers as their decimal text), or `None` if it is malformed.
pub fn parse(lp: &[u8]) -> Option<Vec<Box<[u8]>>> {
    if lp.len() < 7 || u32::from_le_bytes(lp[0..4].try_into().ok()?) as usize != lp.len() {
        return None;
    }
    let declared = u16::from_le_bytes([lp[4], lp[5]]);
    let mut out = Vec::new();
    let mut p = 6;
    loop {
        let enc = *lp.get(p)?;
        if enc == EOF {
            break;
        }
        let (elem, len): (Box<[u8]>, usize) = if enc & 0x80 == 0 {
            (int_text(enc as i64), 1)
        } else if enc & 0xC0 == 0x80 {
            let n = (enc & 0x3f) as usize;
            (lp.get(p + 1..p + 1 + n)?.into(), 1 + n)
        } else if enc & 0xE0 == 0xC0 {
            let u = (((enc & 0x1f) as u64) << 8) | *lp.get(p + 1)? as u64;
            (int_text(sign_extend(u, 13)), 2)
        } else if enc & 0xF0 == 0xE0 {
            let n = (((enc & 0x0f) as usize) << 8) | *lp.get(p + 1)? as usize;
            (lp.get(p + 2..p + 2 + n)?.into(), 2 + n)
        } else {
            let width = match enc {
                0xF0 => {
                    let n = u32::from_le_bytes(lp.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                    let end = (p + 5).checked_add(n)?;
                    out.push(lp.get(p + 5..end)?.into());
                    p = end.checked_add(backlen_size(5 + n))?;
                    continue;
                }
                0xF1 => 2,
                0xF2 => 3,
                0xF3 => 4,
                0xF4 => 8,
                _ => return None,
            };
            let mut raw = [0u8; 8];
            raw[..width].copy_from_slice(lp.get(p + 1..p + 1 + width)?);
            (int_text(sign_extend(u64::from_le_bytes(raw), 8 * width as u32)), 1 + width)
        };
        out.push(elem);
        p += len + backlen_size(len);
    }
    if p != lp.len() - 1 || (declared != 65535 && declared as usize != out.len()) {
        return None;
    }
    Some(out)
}

pub(super) fn int_text(v: i64) -> Box<[u8]> {
    itoa::Buffer::new().format(v).as_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let big = vec![b'x'; 5000];
        let mid = vec![b'y'; 100];
        let items: Vec<&[u8]> = vec![
            b"0",
            b"127",
            b"128",
            b"-1",
            b"-4096",
            b"4095",
            b"-4097",
            b"32767",
            b"-32768",
            b"40000",
            b"8388607",
            b"-8388609",
            b"2147483648",
            b"-9223372036854775808",
            b"9223372036854775807",
            b"",
            b"hello",
            b"007",
            &mid,
            &big,
        ];
        let mut b = Builder::new();
        for i in &items {
            b.push(i);
        }
        let lp = b.finish();
        let back = parse(&lp).unwrap();
        assert_eq!(back.iter().map(|x| &**x).collect::<Vec<_>>(), items);
    }

    #[test]
    fn matches_redis_bytes() {
        // RPUSH l a 1 on Redis 7.0: the listpack inside its DUMP payload.
        let mut b = Builder::new();
        b.push(b"a");
        b.push(b"1");
        assert_eq!(b.finish(), [12, 0, 0, 0, 2, 0, 0x81, b'a', 2, 1, 1, 0xFF]);
    }
}
