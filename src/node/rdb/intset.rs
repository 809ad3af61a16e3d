//! Redis's intset blob: `u32` element width (2, 4 or 8), `u32` count, sorted little-endian
//! integers of that width.

/// The integers of an intset blob, or `None` if its header and size disagree.
pub fn parse(blob: &[u8]) -> Option<Vec<i64>> {
    let width = u32::from_le_bytes(blob.get(0..4)?.try_into().ok()?) as usize;
    let count = u32::from_le_bytes(blob.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || blob.len() - 8 != count.checked_mul(width)? {
        return None;
    }
    Some(
        blob[8..]
            .chunks_exact(width)
            .map(|c| match width {
                2 => i16::from_le_bytes([c[0], c[1]]) as i64,
                4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
                _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

/// The blob for sorted, distinct integers, in the narrowest width that holds them all.
pub fn build(values: &[i64]) -> Vec<u8> {
    let width = values.iter().fold(2usize, |w, &v| {
        if i16::try_from(v).is_ok() {
            w
        } else if i32::try_from(v).is_ok() {
            w.max(4)
        } else {
            8
        }
    });
    let mut out = Vec::with_capacity(8 + values.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for &v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        for vals in [vec![1, 2, 3], vec![-40000, 5], vec![i64::MIN, 0, i64::MAX], vec![]] {
            assert_eq!(super::parse(&super::build(&vals)).unwrap(), vals);
        }
        assert_eq!(super::build(&[1, 2]), [2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 2, 0]);
        assert!(super::parse(&[2, 0, 0, 0, 2, 0, 0, 0, 1, 0]).is_none());
    }
}
