//! Blocking-command timeouts, parsed exactly as Redis 7.0's `getTimeoutFromObjectOrReply`.

use crate::errors;
use crate::node::cmd::CmdError;
use std::time::{Duration, Instant};

/// Longest accepted text, as `string2ld`'s buffer (`MAX_LONG_DOUBLE_CHARS`).
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// `getTimeoutFromObjectOrReply` in seconds: a `long double` (`strtold`: hex, inf, ...) times
/// 1000, rounded up to whole ms; C's conversion turns an out-of-range value into LLONG_MIN, hence
/// "negative". So `-0.0005` is 0 ms (block forever), not an error, and `0.0001` is 1 ms. None =
/// no deadline.
pub fn timeout(arg: &[u8]) -> Result<Option<Instant>, CmdError> {
    let secs = parse_long_double(arg).ok_or(CmdError::from(errors::TIMEOUT_NOT_FLOAT))?;
    let product = secs * 1000.0;
    // In 80-bit arithmetic -0.001 * 1000 stays just above -1 (0.001 is not exact in binary),
    // where f64 lands on -1 exactly: that one input must not be "negative".
    let product = if product == -1.0 && is_one_thousandth(arg) { -0.5 } else { product };
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let ms: i64 = if product.is_nan() || product > TWO_63 || product <= -TWO_63 - 1.0 {
        i64::MIN
    } else if product >= TWO_63 {
        i64::MAX
    } else {
        product.ceil() as i64
    };
    if ms < 0 {
        return Err(errors::TIMEOUT_NEGATIVE.into());
    }
    if ms == 0 {
        return Ok(None);
    }
    // Far beyond any uptime; `checked_add` guards against the platform's Instant range.
    Ok(Instant::now()
        .checked_add(Duration::from_millis(ms as u64))
        .or_else(|| Instant::now().checked_add(Duration::from_secs(100 * 365 * 24 * 3600))))
}

/// True for a decimal spelling of exactly ±0.001 (`-0.001`, `-1e-3`, `-.0010`, ...).
fn is_one_thousandth(arg: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(arg) else { return false };
    let lit = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
    if lit.contains('x') {
        return false;
    }
    let mant = lit.split('e').next().unwrap_or("");
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.trim_matches('0') == "1" && decimal_exponent(&lit) == Some(-3)
}

/// `string2ld`: what `strtold` accepts, with no leading space, nothing left over, never NaN, and
/// no overflow or underflow to zero of the 80-bit long double (judged from the decimal exponent).
fn parse_long_double(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || arg.len() >= MAX_LONG_DOUBLE_CHARS {
        return None;
    }
    let s = std::str::from_utf8(arg).ok()?;
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.starts_with(['+', '-']) {
        return None;
    }
    let v = if body.len() > 2 && (body.starts_with("0x") || body.starts_with("0X")) {
        parse_hex_float(&body[2..])?
    } else {
        if !body.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'+' || c == b'-') {
            return None;
        }
        let lower = body.to_ascii_lowercase();
        if lower == "inf" || lower == "infinity" {
            f64::INFINITY
        } else {
            if !lower.bytes().all(|c| c.is_ascii_digit() || c == b'.' || c == b'e' || c == b'+' || c == b'-') {
                return None;
            }
            let v: f64 = body.parse().ok()?;
            match decimal_exponent(&lower) {
                Some(e) if !(-4950..=4931).contains(&e) => return None,
                _ => {}
            }
            v
        }
    };
    if v.is_nan() {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// floor(log10(x)) of a decimal literal, from its digits; None when the mantissa is zero.
fn decimal_exponent(lit: &str) -> Option<i64> {
    let (mant, exp) = match lit.find('e') {
        Some(i) => (&lit[..i], &lit[i + 1..]),
        None => (lit, "0"),
    };
    let (eneg, edigits) = match exp.as_bytes().first() {
        Some(b'-') => (true, &exp[1..]),
        Some(b'+') => (false, &exp[1..]),
        _ => (false, exp),
    };
    let mut e: i64 = 0;
    for c in edigits.bytes() {
        e = e.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    if eneg {
        e = -e;
    }
    let (int_part, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if let Some(i) = int_part.bytes().position(|c| c != b'0') {
        return Some(e.saturating_add((int_part.len() - i - 1) as i64));
    }
    let j = frac.bytes().position(|c| c != b'0')?;
    Some(e.saturating_sub(j as i64 + 1))
}

/// The part of a C hex float after `0x`: hex digits, an optional fraction, an optional binary
/// exponent `p[+-]N`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int_part, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int_part.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int_part.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    if let Some(exp) = exp {
        let (eneg, digits) = match exp.as_bytes().first() {
            Some(b'-') => (true, &exp[1..]),
            Some(b'+') => (false, &exp[1..]),
            _ => (false, exp),
        };
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let e: i32 = digits.parse().unwrap_or(i32::MAX).min(100_000);
        v *= 2f64.powi(if eneg { -e } else { e });
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_doubles_like_string2ld() {
        assert_eq!(parse_long_double(b"0.5"), Some(0.5));
        assert_eq!(parse_long_double(b"0x10"), Some(16.0));
        assert_eq!(parse_long_double(b"0x1p-3"), Some(0.125));
        assert_eq!(parse_long_double(b"0X.2"), Some(0.125));
        assert_eq!(parse_long_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_long_double(b"+.1"), Some(0.1));
        assert_eq!(parse_long_double(b"1."), Some(1.0));
        assert_eq!(parse_long_double(b"1e4000"), Some(f64::INFINITY));
        assert_eq!(parse_long_double(b"1e5000"), None);
        assert_eq!(parse_long_double(b"1e-5000"), None);
        assert_eq!(parse_long_double(b"0e-5000"), Some(0.0));
        assert_eq!(parse_long_double(b"nan"), None);
        assert_eq!(parse_long_double(b" 1"), None);
        assert_eq!(parse_long_double(b"1 "), None);
        assert_eq!(parse_long_double(b"0.1e"), None);
        assert_eq!(parse_long_double(b"0x"), None);
        assert_eq!(parse_long_double(b""), None);
    }

    #[test]
    fn timeouts_truncate_to_ms() {
        assert_eq!(timeout(b"0").ok(), Some(None));
        assert_eq!(timeout(b"-0.0001").ok(), Some(None));
        assert_eq!(timeout(b"-0.001").ok(), Some(None));
        assert_eq!(timeout(b"-1e-3").ok(), Some(None));
        assert!(timeout(b"0.0001").ok().flatten().is_some());
        assert!(timeout(b"0.001").ok().flatten().is_some());
        assert_eq!(timeout(b"-0.002").err(), Some(CmdError::from(errors::TIMEOUT_NEGATIVE)));
        assert_eq!(timeout(b"-1.0001e-3").err(), Some(CmdError::from(errors::TIMEOUT_NEGATIVE)));
        assert_eq!(timeout(b"inf").err(), Some(CmdError::from(errors::TIMEOUT_NEGATIVE)));
        assert_eq!(timeout(b"1e300").err(), Some(CmdError::from(errors::TIMEOUT_NEGATIVE)));
        assert_eq!(timeout(b"abc").err(), Some(CmdError::from(errors::TIMEOUT_NOT_FLOAT)));
    }
}
