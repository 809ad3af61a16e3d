//! INCRBYFLOAT arithmetic exactly as Redis does it on x86-64: `strtold` into an 80-bit long double
//! (64-bit mantissa), one rounded addition, then `%.17Lf` with trailing zeros stripped. An f64
//! cannot reproduce the digits Redis prints (`1234.1 + 0` is `1234.09999999999999998`), so this is
//! a small software float over exact big-integer arithmetic. Inputs are bounded (Redis rejects
//! strings of 5120 bytes or more), so the exact intermediates stay a few thousand words long.

use std::cmp::Ordering;

/// Redis's `MAX_LONG_DOUBLE_CHARS`: `string2ld` rejects strings this long or longer.
pub const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// Exponent of the least significant mantissa bit of the smallest subnormal (2^-16445).
const EMIN: i64 = -16445;
/// Every finite long double is below 2^16384.
const MAX_BITS: i64 = 16384;

/// A finite long double: `(-1)^neg * m * 2^e`, with `e >= EMIN` and `m < 2^64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ld {
    neg: bool,
    m: u64,
    e: i64,
}

/// What `strtold` produced for a string Redis accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    Finite(Ld),
    Infinite,
}

impl Parsed {
    /// A missing key counts as 0.
    pub const ZERO: Parsed = Parsed::Finite(Ld::ZERO);
}

/// Unsigned big integer, little-endian 32-bit limbs, no high zero limbs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }
    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }
    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }
    fn bits(&self) -> i64 {
        match self.0.last() {
            None => 0,
            Some(&top) => (self.0.len() as i64 - 1) * 32 + (32 - top.leading_zeros() as i64),
        }
    }
    fn bit(&self, i: i64) -> bool {
        let (w, b) = ((i / 32) as usize, i % 32);
        i >= 0 && w < self.0.len() && (self.0[w] >> b) & 1 == 1
    }
    /// True if any bit below position `n` is set.
    fn any_below(&self, n: i64) -> bool {
        if n <= 0 {
            return false;
        }
        let (w, b) = ((n / 32) as usize, n % 32);
        if self.0.iter().take(w).any(|&x| x != 0) {
            return true;
        }
        w < self.0.len() && b > 0 && self.0[w] & ((1u32 << b) - 1) != 0
    }
    fn mul_add_small(&mut self, m: u32, a: u32) {
        let mut carry = a as u64;
        for x in self.0.iter_mut() {
            let v = *x as u64 * m as u64 + carry;
            *x = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }
    fn mul_pow10(&mut self, mut n: i64) {
        while n >= 9 {
            self.mul_add_small(1_000_000_000, 0);
            n -= 9;
        }
        if n > 0 {
            self.mul_add_small(10u32.pow(n as u32), 0);
        }
    }
    fn pow10(n: i64) -> Big {
        let mut b = Big::from_u64(1);
        b.mul_pow10(n);
        b
    }
    fn shl(&self, n: i64) -> Big {
        if self.is_zero() || n <= 0 {
            return self.shr(-n);
        }
        let (w, b) = ((n / 32) as usize, (n % 32) as u32);
        let mut out = vec![0u32; w];
        out.reserve(self.0.len() + 1);
        let mut carry = 0u32;
        for &x in &self.0 {
            if b == 0 {
                out.push(x);
            } else {
                out.push((x << b) | carry);
                carry = x >> (32 - b);
            }
        }
        if carry != 0 {
            out.push(carry);
        }
        Big(out)
    }
    fn shr(&self, n: i64) -> Big {
        if n <= 0 {
            return self.clone();
        }
        let (w, b) = ((n / 32) as usize, (n % 32) as u32);
        if w >= self.0.len() {
            return Big(Vec::new());
        }
        let src = &self.0[w..];
        let mut out = Vec::with_capacity(src.len());
        for i in 0..src.len() {
            let lo = src[i] >> b;
            let hi = if b > 0 && i + 1 < src.len() { src[i + 1] << (32 - b) } else { 0 };
            out.push(lo | hi);
        }
        let mut r = Big(out);
        r.trim();
        r
    }
    fn cmp(&self, o: &Big) -> Ordering {
        self.0.len().cmp(&o.0.len()).then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }
    /// `self -= o`, which must not be larger.
    fn sub_assign(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let v = self.0[i] as i64 - borrow - o.0.get(i).copied().unwrap_or(0) as i64;
            if v < 0 {
                self.0[i] = (v + (1i64 << 32)) as u32;
                borrow = 1;
            } else {
                self.0[i] = v as u32;
                borrow = 0;
            }
        }
        self.trim();
    }
    fn add(&self, o: &Big) -> Big {
        let n = self.0.len().max(o.0.len());
        let mut out = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v = self.0.get(i).copied().unwrap_or(0) as u64 + o.0.get(i).copied().unwrap_or(0) as u64 + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        if carry != 0 {
            out.push(carry as u32);
        }
        Big(out)
    }
    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for x in self.0.iter_mut().rev() {
            let cur = (rem << 32) | *x as u64;
            *x = (cur / d as u64) as u32;
            rem = cur % d as u64;
        }
        self.trim();
        rem as u32
    }
    fn low_u128(&self) -> u128 {
        self.0.iter().take(4).enumerate().fold(0u128, |acc, (i, &x)| acc | (x as u128) << (32 * i))
    }
    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut s = chunks.pop().map(|c| c.to_string()).unwrap_or_default();
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

/// `floor(a / b)` for a quotient known to fit in 128 bits, and the remainder.
fn div_small_quotient(a: &Big, b: &Big) -> (u128, Big) {
    let k = a.bits() - b.bits();
    if k < 0 {
        return (0, a.clone());
    }
    let mut rem = a.clone();
    let mut q = 0u128;
    let mut d = b.shl(k);
    for i in (0..=k).rev() {
        if rem.cmp(&d) != Ordering::Less {
            rem.sub_assign(&d);
            q |= 1u128 << i;
        }
        d = d.shr(1);
    }
    (q, rem)
}

impl Ld {
    const ZERO: Ld = Ld { neg: false, m: 0, e: 0 };

    /// Rounds `num / den` (both non-zero-able, den > 0) to a long double, as strtold does.
    /// None on overflow, or on underflow to zero (both ERANGE cases Redis rejects).
    fn from_ratio(neg: bool, num: &Big, den: &Big) -> Option<Ld> {
        if num.is_zero() {
            return Some(Ld { neg, ..Ld::ZERO });
        }
        // num*2^s/den lands in [2^63, 2^65); step down once if it reached 2^64.
        let mut s = 64 - (num.bits() - den.bits());
        let divide = |s: i64| {
            if s >= 0 {
                div_small_quotient(&num.shl(s), den)
            } else {
                div_small_quotient(num, &den.shl(-s))
            }
        };
        let (mut q, mut rem) = divide(s);
        if q >= 1u128 << 64 {
            s -= 1;
            (q, rem) = divide(s);
        }
        if -s < EMIN {
            s = -EMIN;
            (q, rem) = divide(s);
        }
        let den_s = if s >= 0 { den.clone() } else { den.shl(-s) };
        match rem.shl(1).cmp(&den_s) {
            Ordering::Greater => q += 1,
            Ordering::Equal if q & 1 == 1 => q += 1,
            _ => {}
        }
        if q == 1u128 << 64 {
            q = 1u128 << 63;
            s -= 1;
        }
        if q == 0 {
            return None;
        }
        let ld = Ld { neg, m: q as u64, e: -s };
        if ld.top_bits() > MAX_BITS {
            return None;
        }
        Some(ld)
    }

    /// Bit length of the integer part's magnitude bound: value < 2^top_bits.
    fn top_bits(&self) -> i64 {
        (64 - self.m.leading_zeros() as i64) + self.e
    }

    /// The rounded sum; None when it overflows to infinity.
    pub fn sum(self, o: Ld) -> Option<Ld> {
        if o.m == 0 {
            return Some(if self.m == 0 { Ld { neg: self.neg && o.neg, ..Ld::ZERO } } else { self });
        }
        if self.m == 0 {
            return Some(o);
        }
        let e = self.e.min(o.e);
        let a = Big::from_u64(self.m).shl(self.e - e);
        let b = Big::from_u64(o.m).shl(o.e - e);
        let (neg, sum) = if self.neg == o.neg {
            (self.neg, a.add(&b))
        } else {
            match a.cmp(&b) {
                Ordering::Equal => return Some(Ld::ZERO),
                Ordering::Greater => {
                    let mut a = a;
                    a.sub_assign(&b);
                    (self.neg, a)
                }
                Ordering::Less => {
                    let mut b = b;
                    b.sub_assign(&a);
                    (o.neg, b)
                }
            }
        };
        let extra = sum.bits() - 64;
        let (m, e) = if extra > 0 {
            let mut q = sum.shr(extra).low_u128();
            let half = sum.bit(extra - 1);
            let sticky = sum.any_below(extra - 1);
            if half && (sticky || q & 1 == 1) {
                q += 1;
            }
            if q == 1u128 << 64 {
                (1u64 << 63, e + extra + 1)
            } else {
                (q as u64, e + extra)
            }
        } else {
            (sum.low_u128() as u64, e)
        };
        let r = Ld { neg, m, e };
        if r.top_bits() > MAX_BITS {
            return None;
        }
        Some(r)
    }

    /// `%.17Lf` with trailing zeros (and a bare point) removed, `-0` printed as `0`: Redis's
    /// `ld2string(..., LD_STR_HUMAN)`.
    pub fn to_human(self) -> String {
        const FRAC: usize = 17;
        let digits = if self.e >= 0 {
            let mut v = Big::from_u64(self.m).shl(self.e);
            v.mul_pow10(FRAC as i64);
            v
        } else {
            let mut n = Big::from_u64(self.m);
            n.mul_pow10(FRAC as i64);
            let sh = -self.e;
            let mut q = n.shr(sh);
            let half = n.bit(sh - 1);
            let sticky = n.any_below(sh - 1);
            if half && (sticky || q.bit(0)) {
                q = q.add(&Big::from_u64(1));
            }
            q
        };
        let mut d = digits.to_decimal();
        if d.len() <= FRAC {
            d = format!("{}{d}", "0".repeat(FRAC + 1 - d.len()));
        }
        let (int, frac) = d.split_at(d.len() - FRAC);
        let frac = frac.trim_end_matches('0');
        let mut s = String::with_capacity(d.len() + 2);
        if self.neg {
            s.push('-');
        }
        s.push_str(int);
        if !frac.is_empty() {
            s.push('.');
            s.push_str(frac);
        }
        if s == "-0" {
            s = "0".into();
        }
        s
    }
}

/// Redis's `string2ld`: `strtold` over the whole string, no leading space, no NaN, no overflow,
/// no underflow to zero.
pub fn parse(s: &[u8]) -> Option<Parsed> {
    if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS || s[0].is_ascii_whitespace() || s[0] == 0x0b {
        return None;
    }
    let (neg, body) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == b"inf" || lower == b"infinity" {
        return Some(Parsed::Infinite);
    }
    if lower.len() > 2 && lower.starts_with(b"0x") {
        if let Some(v) = parse_hex(neg, &lower[2..]) {
            return v.map(Parsed::Finite);
        }
        // "0x" without hex digits: strtold stops after the "0", leaving junk.
        return None;
    }
    parse_dec(neg, body).map(Parsed::Finite)
}

fn exponent(b: &[u8], i: &mut usize) -> Option<i64> {
    let mut j = *i + 1;
    let eneg = match b.get(j) {
        Some(b'-') => {
            j += 1;
            true
        }
        Some(b'+') => {
            j += 1;
            false
        }
        _ => false,
    };
    let start = j;
    let mut v: i64 = 0;
    while j < b.len() && b[j].is_ascii_digit() {
        v = v.saturating_mul(10).saturating_add((b[j] - b'0') as i64).min(1 << 40);
        j += 1;
    }
    if j == start {
        return None;
    }
    *i = j;
    Some(if eneg { -v } else { v })
}

fn parse_dec(neg: bool, b: &[u8]) -> Option<Ld> {
    let mut d = Big(Vec::new());
    let (mut i, mut ndigits, mut sig, mut frac) = (0usize, 0usize, 0i64, 0i64);
    let mut seen_point = false;
    let mut chunk = 0u32;
    let mut chunk_len = 0u32;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            ndigits += 1;
            if seen_point {
                frac += 1;
            }
            if sig > 0 || c != b'0' {
                sig += 1;
                chunk = chunk * 10 + (c - b'0') as u32;
                chunk_len += 1;
                if chunk_len == 9 {
                    d.mul_add_small(1_000_000_000, chunk);
                    chunk = 0;
                    chunk_len = 0;
                }
            }
        } else if c == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        i += 1;
    }
    if chunk_len > 0 {
        d.mul_add_small(10u32.pow(chunk_len), chunk);
    }
    if ndigits == 0 {
        return None;
    }
    let mut exp = 0i64;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        exp = exponent(b, &mut i)?;
    }
    if i != b.len() {
        return None;
    }
    if d.is_zero() {
        return Some(Ld { neg, ..Ld::ZERO });
    }
    let x = exp - frac;
    // value lies in [10^(sig-1+x), 10^(sig+x)).
    if sig - 1 + x > 4932 {
        return None;
    }
    if sig + x < -4952 {
        return None;
    }
    if x >= 0 {
        d.mul_pow10(x);
        Ld::from_ratio(neg, &d, &Big::from_u64(1))
    } else {
        Ld::from_ratio(neg, &d, &Big::pow10(-x))
    }
}

/// After "0x": hex digits with an optional point, then an optional binary exponent. Outer None
/// means no hex digit at all.
fn parse_hex(neg: bool, b: &[u8]) -> Option<Option<Ld>> {
    let mut h = Big(Vec::new());
    let (mut i, mut ndigits, mut frac) = (0usize, 0usize, 0i64);
    let mut seen_point = false;
    while i < b.len() {
        let c = b[i];
        if let Some(v) = (c as char).to_digit(16) {
            ndigits += 1;
            if seen_point {
                frac += 1;
            }
            h.mul_add_small(16, v);
        } else if c == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        i += 1;
    }
    if ndigits == 0 {
        return None;
    }
    let mut exp = 0i64;
    if i < b.len() && b[i] == b'p' {
        match exponent(b, &mut i) {
            Some(e) => exp = e,
            None => return Some(None),
        }
    }
    if i != b.len() {
        return Some(None);
    }
    if h.is_zero() {
        return Some(Some(Ld { neg, ..Ld::ZERO }));
    }
    let p = exp - 4 * frac;
    let top = h.bits() + p;
    if top > MAX_BITS + 1 {
        return Some(None);
    }
    if top < EMIN - 2 {
        return Some(None);
    }
    let one = Big::from_u64(1);
    Some(if p >= 0 { Ld::from_ratio(neg, &h.shl(p), &one) } else { Ld::from_ratio(neg, &h, &one.shl(-p)) })
}

/// INCRBYFLOAT's sum: None when it is NaN or infinite.
pub fn incr(value: Parsed, by: Parsed) -> Option<String> {
    match (value, by) {
        (Parsed::Finite(a), Parsed::Finite(b)) => a.sum(b).map(Ld::to_human),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> Option<String> {
        incr(parse(a.as_bytes())?, parse(b.as_bytes())?)
    }

    #[test]
    fn matches_redis_digits() {
        assert_eq!(sum("10.5", "0.1").as_deref(), Some("10.6"));
        assert_eq!(sum("1234.1", "0").as_deref(), Some("1234.09999999999999998"));
        assert_eq!(sum("5.0e3", "2.0e2").as_deref(), Some("5200"));
        assert_eq!(sum("0", "1.1").as_deref(), Some("1.1"));
        assert_eq!(sum("1", "-1").as_deref(), Some("0"));
        assert_eq!(sum("-0.5", "0").as_deref(), Some("-0.5"));
        assert_eq!(sum("3", "0x10").as_deref(), Some("19"));
        assert_eq!(sum("inf", "1"), None);
        assert!(parse(b"nan").is_none());
        assert!(parse(b" 1").is_none());
        assert!(parse(b"1e").is_none());
        assert!(parse(b"1e5000").is_none());
        assert!(parse(b"1e-5000").is_none());
        assert!(parse(b"0e-5000").is_some());
        assert!(parse(b"1e4932").is_some());
    }

    #[test]
    fn huge_stays_exact_integer() {
        let s = sum("0", "1e300").expect("finite");
        assert!(s.starts_with("10000000000000000000089973240795591938705239442732907479382600823212656465961809"));
    }
}
