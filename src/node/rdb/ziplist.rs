//! Redis's ziplist (read only: Redis 7.0 no longer writes it, but older payloads carry it):
//! `u32` bytes, `u32` tail offset, `u16` count, entries of (previous length, encoding, data), `0xFF`.

use super::listpack::int_text;

/// The elements of a ziplist (integers as their decimal text), or `None` if it is malformed.
pub fn parse(zl: &[u8]) -> Option<Vec<Box<[u8]>>> {
    if zl.len() < 11 || u32::from_le_bytes(zl[0..4].try_into().ok()?) as usize != zl.len() {
        return None;
    }
    let declared = u16::from_le_bytes([zl[8], zl[9]]);
    let mut out = Vec::new();
    let mut p = 10;
    loop {
        let first = *zl.get(p)?;
        if first == 0xFF {
            break;
        }
        p += if first < 254 { 1 } else { 5 };
        let enc = *zl.get(p)?;
        let (elem, len): (Box<[u8]>, usize) = match enc >> 6 {
            0 => {
                let n = (enc & 0x3f) as usize;
                (zl.get(p + 1..p + 1 + n)?.into(), 1 + n)
            }
            1 => {
                let n = (((enc & 0x3f) as usize) << 8) | *zl.get(p + 1)? as usize;
                (zl.get(p + 2..p + 2 + n)?.into(), 2 + n)
            }
            2 => {
                if enc != 0x80 {
                    return None;
                }
                let n = u32::from_be_bytes(zl.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                let end = (p + 5).checked_add(n)?;
                (zl.get(p + 5..end)?.into(), 5 + n)
            }
            _ => {
                let width = match enc {
                    0xC0 => 2,
                    0xD0 => 4,
                    0xE0 => 8,
                    0xF0 => 3,
                    0xFE => 1,
                    0xF1..=0xFD => 0,
                    _ => return None,
                };
                if width == 0 {
                    (int_text((enc & 0x0f) as i64 - 1), 1)
                } else {
                    let mut raw = [0u8; 8];
                    raw[..width].copy_from_slice(zl.get(p + 1..p + 1 + width)?);
                    let shift = 64 - 8 * width as u32;
                    let v = ((u64::from_le_bytes(raw) << shift) as i64) >> shift;
                    (int_text(v), 1 + width)
                }
            }
        };
        out.push(elem);
        p = p.checked_add(len)?;
    }
    if p != zl.len() - 1 || (declared != 65535 && declared as usize != out.len()) {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_redis_ziplist() {
        // A Redis 6 ziplist of "a", 1, 300.
        let zl = [20, 0, 0, 0, 15, 0, 0, 0, 3, 0, 0, 0x01, b'a', 3, 0xF2, 2, 0xC0, 0x2c, 0x01, 0xFF];
        let v = super::parse(&zl).unwrap();
        assert_eq!(v, vec![b"a"[..].into(), b"1"[..].into(), b"300"[..].into()]);
        assert!(super::parse(&zl[..19]).is_none());
    }
}
