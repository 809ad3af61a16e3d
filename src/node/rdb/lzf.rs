//! LZF decompression (liblzf's format, as Redis compresses long strings in RDB payloads).

/// Decompresses `input` into exactly `len` bytes; `None` on any malformed input or a length
/// mismatch (Redis rejects both).
pub fn decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(len.min(1 << 20));
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input.get(ip..ip + run)?;
            if out.len() + run > len {
                return None;
            }
            out.extend_from_slice(lit);
            ip += run;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += *input.get(ip)? as usize;
                ip += 1;
            }
            run += 2;
            let back = ((ctrl & 0x1f) << 8) + *input.get(ip)? as usize + 1;
            ip += 1;
            if back > out.len() || out.len() + run > len {
                return None;
            }
            let start = out.len() - back;
            // Byte by byte: the reference may overlap what it produces.
            for i in 0..run {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::decompress;

    #[test]
    fn literal_and_backref() {
        // "abcabcabc": literal "abc" then a back reference of 6 bytes at distance 3.
        let c = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(decompress(&c, 9).unwrap(), b"abcabcabc");
        assert!(decompress(&c, 8).is_none());
        assert!(decompress(&c, 10).is_none());
        assert!(decompress(&[(1 << 5), 9], 3).is_none());
    }
}
