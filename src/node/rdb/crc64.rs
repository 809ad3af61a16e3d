//! Redis's CRC-64 (Jones polynomial, reflected input and output, initial value 0, no final xor):
//! the checksum at the end of every DUMP payload and RDB file.

const POLY: u64 = 0x95ac_9329_ac4b_c9b5;

const TABLE: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut k = 0;
        while k < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
            k += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

/// Continues a checksum over `data` (start with `crc = 0`).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    for &b in data {
        crc = TABLE[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_value() {
        // The test vector in Redis's crc64.c.
        assert_eq!(super::crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }
}
