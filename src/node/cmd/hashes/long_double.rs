//! x87 80-bit `long double`, the type Redis 7.0 uses for HINCRBYFLOAT (and INCRBYFLOAT) on
//! x86-64 Linux. Replies must match byte for byte, and `f64` cannot: `0.1` printed with `%.17Lf`
//! is `0.10000000000000000` in 64-bit precision but `0.10000000000000001` in 53-bit.
//!
//! Values are `mantissa * 2^exp` with a 64-bit mantissa, parsed like glibc's `strtold` (correctly
//! rounded, half to even, subnormals down to 2^-16445), added with one correct rounding, and
//! printed exactly like glibc's `%.17Lf` (exact binary-to-decimal, ties to even). Arithmetic on
//! the rare long operands goes through a small big-integer type.

use std::cmp::Ordering;

/// `MAX_LONG_DOUBLE_CHARS`: Redis refuses to parse strings this long or longer.
const MAX_CHARS: usize = 5 * 1024;
/// Exponent of the least significant mantissa bit of the smallest subnormal.
const MIN_LSB: i64 = -16445;
/// Largest exponent of the least significant bit of a finite value (2^64-1 * 2^16320 < 2^16384).
const MAX_LSB: i64 = 16320;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LongDouble {
    neg: bool,
    inf: bool,
    mant: u64,
    exp: i32,
}

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble { neg: false, inf: false, mant: 0, exp: 0 };

    fn inf(neg: bool) -> Self {
        LongDouble { neg, inf: true, mant: 0, exp: 0 }
    }

    pub fn from_i64(v: i64) -> Self {
        LongDouble { neg: v < 0, inf: false, mant: v.unsigned_abs(), exp: 0 }
    }

    pub fn is_finite(&self) -> bool {
        !self.inf
    }

    /// Redis's `string2ld`: `strtold` over the whole string, no leading space, NaN refused, and
    /// overflow or underflow to zero refused. None where Redis says "not a float".
    pub fn parse(s: &[u8]) -> Option<Self> {
        if s.is_empty() || s.len() >= MAX_CHARS {
            return None;
        }
        // Redis copies into a C string: an embedded NUL ends it, and strtold sees only the prefix.
        let s = match s.iter().position(|&c| c == 0) {
            Some(n) => &s[..n],
            None => s,
        };
        if s.is_empty() {
            // strtold("") converts nothing and leaves the end pointer on the NUL: Redis takes 0.
            return Some(Self::ZERO);
        }
        if matches!(s[0], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(Self::inf(neg));
        }
        let (mag, exp, sticky) = if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
            parse_hex(&body[2..])?
        } else {
            parse_dec(body)?
        };
        if mag.is_zero() {
            return Some(LongDouble { neg, ..Self::ZERO });
        }
        match round(&mag, exp, sticky) {
            // ERANGE with HUGE_VAL, or with a zero result: refused.
            Rounded::Overflow => None,
            Rounded::Finite(0, _) => None,
            Rounded::Finite(mant, exp) => Some(LongDouble { neg, inf: false, mant, exp }),
        }
    }

    /// `a + b` with one rounding to nearest, ties to even (x87 in extended precision).
    pub fn add(self, other: Self) -> Self {
        if self.inf || other.inf {
            return match (self.inf, other.inf) {
                // inf - inf is NaN; callers only ever add a finite increment.
                (true, true) if self.neg != other.neg => Self::inf(false),
                (true, _) => self,
                _ => other,
            };
        }
        if self.mant == 0 && other.mant == 0 {
            return LongDouble { neg: self.neg && other.neg, ..Self::ZERO };
        }
        if self.mant == 0 {
            return other;
        }
        if other.mant == 0 {
            return self;
        }
        let e = self.exp.min(other.exp) as i64;
        let a = Big::from_u64(self.mant).shl((self.exp as i64 - e) as usize);
        let b = Big::from_u64(other.mant).shl((other.exp as i64 - e) as usize);
        let (neg, mag) = if self.neg == other.neg {
            (self.neg, a.add(&b))
        } else {
            match a.cmp(&b) {
                Ordering::Equal => return Self::ZERO,
                Ordering::Greater => (self.neg, a.sub(&b)),
                Ordering::Less => (other.neg, b.sub(&a)),
            }
        };
        match round(&mag, e, false) {
            Rounded::Overflow => Self::inf(neg),
            Rounded::Finite(mant, exp) => LongDouble { neg, inf: false, mant, exp },
        }
    }

    /// `ld2string(..., LD_STR_HUMAN)`: `%.17Lf`, trailing zeros (and a bare '.') removed, "-0"
    /// printed as "0".
    pub fn to_human(self) -> String {
        if self.inf {
            return if self.neg { "-inf".into() } else { "inf".into() };
        }
        let mut out = String::new();
        if self.neg {
            out.push('-');
        }
        if self.exp >= 0 {
            out.push_str(&Big::from_u64(self.mant).shl(self.exp as usize).to_decimal());
        } else {
            const SCALE: u128 = 100_000_000_000_000_000; // 10^17
            let n = self.mant as u128 * SCALE; // < 2^121
            let shift = (-(self.exp as i64)) as u32;
            let q = if shift >= 122 {
                0
            } else {
                let q = n >> shift;
                let rem = n & ((1u128 << shift) - 1);
                let half = 1u128 << (shift - 1);
                if rem > half || (rem == half && q & 1 == 1) {
                    q + 1
                } else {
                    q
                }
            };
            let frac = format!("{:017}", q % SCALE);
            let frac = frac.trim_end_matches('0');
            out.push_str(&(q / SCALE).to_string());
            if !frac.is_empty() {
                out.push('.');
                out.push_str(frac);
            }
        }
        if out == "-0" {
            out = "0".into();
        }
        out
    }
}

enum Rounded {
    Finite(u64, i32),
    Overflow,
}

/// Rounds `mag * 2^exp` (plus a nonzero fraction of its last bit when `sticky`) to a 64-bit
/// mantissa, half to even, with the subnormal floor. Callers that pass `sticky` give at least
/// 66 significant bits, so the sticky part is always below the rounding bit.
fn round(mag: &Big, exp: i64, sticky: bool) -> Rounded {
    let bl = mag.bit_len() as i64;
    if bl == 0 {
        return Rounded::Finite(0, 0);
    }
    let mut lsb = (exp + bl - 64).max(MIN_LSB);
    let mant = if lsb <= exp {
        mag.low_u64() << (exp - lsb)
    } else {
        let shift = (lsb - exp) as usize;
        let mut mant = mag.shr(shift).low_u64() as u128;
        let half = mag.bit(shift - 1);
        let rest = sticky || mag.any_below(shift - 1);
        if half && (rest || mant & 1 == 1) {
            mant += 1;
            if mant == 1u128 << 64 {
                mant = 1u128 << 63;
                lsb += 1;
            }
        }
        mant as u64
    };
    if lsb > MAX_LSB {
        return Rounded::Overflow;
    }
    Rounded::Finite(mant, lsb as i32)
}

/// Parses a bounded decimal exponent (glibc accepts any length; beyond the clamp the result is
/// already zero or infinite).
fn parse_exp(s: &[u8]) -> Option<(i64, usize)> {
    let mut i = 0;
    let neg = match s.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    let mut v: i64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = (v * 10 + (s[i] - b'0') as i64).min(1_000_000_000);
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((if neg { -v } else { v }, i))
}

/// Decimal mantissa digits, optional exponent; the whole string must be consumed.
fn parse_dec(s: &[u8]) -> Option<(Big, i64, bool)> {
    let mut digits: Vec<u8> = Vec::new();
    let mut i = 0;
    let mut seen = false;
    let mut frac = 0i64;
    while i < s.len() && s[i].is_ascii_digit() {
        if !digits.is_empty() || s[i] != b'0' {
            digits.push(s[i] - b'0');
        }
        seen = true;
        i += 1;
    }
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            if !digits.is_empty() || s[i] != b'0' {
                digits.push(s[i] - b'0');
            }
            frac += 1;
            seen = true;
            i += 1;
        }
    }
    if !seen {
        return None;
    }
    let mut exp10 = 0;
    if i < s.len() && (s[i] | 0x20) == b'e' {
        let (e, used) = parse_exp(&s[i + 1..])?;
        exp10 = e;
        i += 1 + used;
    }
    if i != s.len() {
        return None;
    }
    while digits.last() == Some(&0) {
        digits.pop();
        frac -= 1;
    }
    if digits.is_empty() {
        return Some((Big::zero(), 0, false));
    }
    let k = exp10 - frac; // value = D * 10^k
    let nd = digits.len() as i64;
    // value in [10^(nd-1+k), 10^(nd+k)): decide the hopeless cases without big numbers.
    if nd - 1 + k > 4933 {
        return Some((Big::from_u64(1), MAX_LSB + 64, false)); // overflows when rounded
    }
    if nd + k < -4953 {
        return Some((Big::from_u64(1), MIN_LSB - 2, false)); // rounds to zero
    }
    let d = Big::from_digits(&digits);
    if k >= 0 {
        return Some((d.mul(&Big::pow10(k as usize)), 0, false));
    }
    let p = Big::pow10((-k) as usize);
    let s_bits = (67 + p.bit_len() as i64 - d.bit_len() as i64).max(0) as usize;
    let (q, rem_nonzero) = d.shl(s_bits).div_small_quotient(&p);
    Some((q, -(s_bits as i64), rem_nonzero))
}

/// Hex mantissa after "0x", optional binary exponent `p`.
fn parse_hex(s: &[u8]) -> Option<(Big, i64, bool)> {
    let mut mag = Big::zero();
    let mut i = 0;
    let mut seen = false;
    let mut exp = 0i64;
    let hexval = |c: u8| (c as char).to_digit(16);
    while i < s.len() {
        match hexval(s[i]) {
            Some(v) => {
                mag = mag.shl(4).add(&Big::from_u64(v as u64));
                seen = true;
                i += 1;
            }
            None => break,
        }
    }
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while i < s.len() {
            match hexval(s[i]) {
                Some(v) => {
                    mag = mag.shl(4).add(&Big::from_u64(v as u64));
                    exp -= 4;
                    seen = true;
                    i += 1;
                }
                None => break,
            }
        }
    }
    if !seen {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'p' {
        let (e, used) = parse_exp(&s[i + 1..])?;
        exp += e;
        i += 1 + used;
    }
    if i != s.len() {
        return None;
    }
    Some((mag, exp.clamp(-100_000, 100_000), false))
}

/// Unsigned big integer, little-endian 32-bit limbs, no leading zero limbs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn zero() -> Self {
        Big(Vec::new())
    }
    fn from_u64(v: u64) -> Self {
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
    fn bit_len(&self) -> usize {
        match self.0.last() {
            None => 0,
            Some(&top) => self.0.len() * 32 - top.leading_zeros() as usize,
        }
    }
    fn bit(&self, i: usize) -> bool {
        self.0.get(i / 32).is_some_and(|l| l >> (i % 32) & 1 == 1)
    }
    /// Whether any bit below position `i` is set.
    fn any_below(&self, i: usize) -> bool {
        let full = i / 32;
        if self.0.iter().take(full).any(|&l| l != 0) {
            return true;
        }
        let rem = i % 32;
        rem > 0 && self.0.get(full).is_some_and(|&l| l & ((1u32 << rem) - 1) != 0)
    }
    fn low_u64(&self) -> u64 {
        let lo = self.0.first().copied().unwrap_or(0) as u64;
        let hi = self.0.get(1).copied().unwrap_or(0) as u64;
        lo | hi << 32
    }
    fn mul_small_add(&mut self, m: u32, a: u32) {
        let mut carry = a as u64;
        for l in self.0.iter_mut() {
            let v = *l as u64 * m as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }
    fn from_digits(d: &[u8]) -> Self {
        let mut b = Big::zero();
        for chunk in d.chunks(9) {
            let mut v = 0u32;
            for &c in chunk {
                v = v * 10 + c as u32;
            }
            b.mul_small_add(10u32.pow(chunk.len() as u32), v);
        }
        b.trim();
        b
    }
    fn pow10(n: usize) -> Self {
        let mut b = Big::from_u64(1);
        let mut left = n;
        while left > 0 {
            let k = left.min(9);
            b.mul_small_add(10u32.pow(k as u32), 0);
            left -= k;
        }
        b
    }
    fn mul(&self, o: &Big) -> Big {
        if self.is_zero() || o.is_zero() {
            return Big::zero();
        }
        let mut r = vec![0u32; self.0.len() + o.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &b) in o.0.iter().enumerate() {
                let v = r[i + j] as u64 + a as u64 * b as u64 + carry;
                r[i + j] = v as u32;
                carry = v >> 32;
            }
            r[i + o.0.len()] = carry as u32;
        }
        let mut b = Big(r);
        b.trim();
        b
    }
    fn shl(&self, bits: usize) -> Big {
        if self.is_zero() {
            return Big::zero();
        }
        let (limbs, rem) = (bits / 32, bits % 32);
        let mut r = vec![0u32; limbs];
        if rem == 0 {
            r.extend_from_slice(&self.0);
        } else {
            let mut carry = 0u32;
            for &l in &self.0 {
                r.push(l << rem | carry);
                carry = l >> (32 - rem);
            }
            r.push(carry);
        }
        let mut b = Big(r);
        b.trim();
        b
    }
    fn shr(&self, bits: usize) -> Big {
        let (limbs, rem) = (bits / 32, bits % 32);
        if limbs >= self.0.len() {
            return Big::zero();
        }
        let src = &self.0[limbs..];
        let mut r = Vec::with_capacity(src.len());
        for i in 0..src.len() {
            let lo = src[i] >> rem;
            let hi = if rem == 0 { 0 } else { src.get(i + 1).map_or(0, |&h| h << (32 - rem)) };
            r.push(lo | hi);
        }
        let mut b = Big(r);
        b.trim();
        b
    }
    fn add(&self, o: &Big) -> Big {
        let n = self.0.len().max(o.0.len());
        let mut r = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v = self.0.get(i).copied().unwrap_or(0) as u64 + o.0.get(i).copied().unwrap_or(0) as u64 + carry;
            r.push(v as u32);
            carry = v >> 32;
        }
        if carry > 0 {
            r.push(carry as u32);
        }
        let mut b = Big(r);
        b.trim();
        b
    }
    /// `self - o`; requires `self >= o`.
    fn sub(&self, o: &Big) -> Big {
        let mut r = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut v = self.0[i] as i64 - o.0.get(i).copied().unwrap_or(0) as i64 - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            r.push(v as u32);
        }
        let mut b = Big(r);
        b.trim();
        b
    }
    fn cmp(&self, o: &Big) -> Ordering {
        self.0.len().cmp(&o.0.len()).then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }
    /// Quotient and whether the remainder is nonzero, for a quotient of a few hundred bits at
    /// most (restoring division, one quotient bit at a time).
    fn div_small_quotient(&self, d: &Big) -> (Big, bool) {
        if self.cmp(d) == Ordering::Less {
            return (Big::zero(), !self.is_zero());
        }
        let top = self.bit_len() - d.bit_len();
        let mut rem = self.clone();
        let mut q = Big(vec![0u32; top / 32 + 1]);
        for i in (0..=top).rev() {
            let shifted = d.shl(i);
            if rem.cmp(&shifted) != Ordering::Less {
                rem = rem.sub(&shifted);
                q.0[i / 32] |= 1 << (i % 32);
            }
        }
        q.trim();
        (q, !rem.is_zero())
    }
    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut chunks = Vec::new();
        let mut cur = self.0.clone();
        while !cur.is_empty() {
            let mut rem = 0u64;
            for l in cur.iter_mut().rev() {
                let v = rem << 32 | *l as u64;
                *l = (v / 1_000_000_000) as u32;
                rem = v % 1_000_000_000;
            }
            while cur.last() == Some(&0) {
                cur.pop();
            }
            chunks.push(rem as u32);
        }
        let mut s = chunks.pop().map(|c| c.to_string()).unwrap_or_default();
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> String {
        LongDouble::parse(a.as_bytes()).unwrap().add(LongDouble::parse(b.as_bytes()).unwrap()).to_human()
    }

    #[test]
    fn matches_glibc_long_double() {
        // Expected strings are what redis-server 7.0.15 on x86-64 replies.
        assert_eq!(incr("0", "0.1"), "0.1");
        assert_eq!(incr("10.5", "0.1"), "10.6");
        assert_eq!(incr("0", "0.000003814697265625"), "0.00000381469726562");
        assert_eq!(incr("0", "1e-4940"), "0");
        assert_eq!(incr("0", "-0.0000000000000000001"), "0");
        assert_eq!(incr("1.5", "-1.5"), "0");
        assert_eq!(incr("0", "3.0e3"), "3000");
        assert_eq!(incr("0", "0x1p-3"), "0.125");
        assert_eq!(incr("0.125", ".5"), "0.625");
        assert_eq!(incr("5", "5."), "10");
        assert_eq!(
            incr("0", "1e400"),
            "10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"
        );
        assert_eq!(
            incr("0", "1.7976931348623157e308"),
            "179769313486231569995921046774104434048386446944329178485314420765176628523124396354701868608387085564428793419425520689308708363451136055357897278026477617073498977686288394835618163294045594434929537447290627480669417384648879122776218333598953852832103282504751611691208117720159985926376802466863339536384"
        );
        assert!(incr("0", "1e4932").starts_with("1000000000000000000006018949387963891323837774254533114773785041352533019486608722407533327779433142773666525563666277682061860906440460336623416164931097542108653623739947237824273607755646282077337746770628281083461244709457643633409272844851420914666765408339856497738306756454137037618440476182982865954054046320908299555942321302503320602080070208203623921079151881460203745014774931620490030394998719312614654064081373493248877120892455186383753439197870978041502797716880193955403107721911638646256939484197293128160329482360996995779489224859264034146949087194820794222433687849284561987230134006305414553626323614864479565079390052761980633463640128979696615362545507608303960553830866145592644372289102918602696741767741297153998359263135897985849697638678310586803720024647593066044070323761747439375151949994191528876172274034561238465689530914002496208547488452249219821049217690359246594326188537200846025476936856707726986425804304053688317572380292690880454677852210458790733177421098965346383845533016192965653377533421097553773202105452559589360227732550843545717469715211293029277100649951579279463212875228768700827274629951331584994203243708412190948315614798641721054158397351395747758548328754270534225721361640356227816080094892433366902417454242382629232277544026609640255325557814321580325340352330660617642326696140257239552549121071985189443846777623334881929189773707008403466595204838733621633273383631944856989484138444978386656058755310848833689791896484998847550364264104800800578245511762594691161545730891319744107953897993101008217601269310629890308357893793344340072837782716410520818640099771094401772024731084835860689936533035726854175396195351768096519310944631445923638053214575993378468775292865871435742249777979822775014324475845899615096380079899099538453121043851821349178371736640702645304284254885437611441690360616466368202194307769462209963387690446576691969551571041941288302648912827345194286271122230347823246073498285153708579500062656222714954113329293953346495615947784091175883554988117167387650681525781361864450364992605079129770604793291076559668041153558254765774288831330658676910296506538343982699076824147706077401185501337053676875440863113630172067902223837838525802181406003942606507609826320015193807633035586661539150425605940691768637845815434184585255915074081317250319572700370579877977177644345205933505850374212779064837146242765034714569464306865784829936445754893825213995710137567750342556762329137973387913047300554841737506800154984198686923965286147079273203561004647365286049876790788288301130050437207489067798842078443360167772245834103629301041345252122743437501935254370757049878526838283810705343010153283985958550741661374001212323172562230037290597675029278865489570268803618001520280748588481858632332145422181524500970533738858652881625738158955840469334830106366243262210429210258173978186522208306814207038831590332622155464159216193005478809313772661406449321989529908990407599717265354887081027622412165764793106246309910984757869627982700885055259900973567128498437782671492610351088858271463387495833021819318548705558606395846070390500323204636339383655528123657438115225035433947543876805317781492691295772410403746456774175666884503175504415270824258750305653788473882671038340481278188648013647450190431469737277008003041204693859153544058059108384516541261521127088116402349679151317227395183628490922161336429757386698401928682323657056924758648793848799822907606679071280964393541325129231682456669123450140879120137931548652537601508656209183486928384515842973760163601756230697826779237275078471824258664382133759876151537532598429521999758431018087001817485300919479583171049967781322202936864648780744025361452947117776701129210049872555316467204668470989130203733391349501708713181244068921199587314823974568234174792429139799088587794666528769986602820375968045445209219875596678877912103336949894142378173648692130854177898020194629670311101994938157038765957014792056173739623614871557317714453597336202068774935086409386414223375141765601758268418764114651053088281009248246110195084364468926837572992870110411414878770616397817334529367403238061699632089293543118185299881280463481800696201966723511922556078483839325067415562633057448408746541808590342228476964416681055875561781810005936328191844815915658719683522845979901018335050006246392027657149580332319739660376707180429166280658258434773362764563277134220525779869893832824866422909928484939374964071386248088592408142723646533801882861736205992781965360090000802821408763787641023437653119263757280212773694655213507075717622521160227187157631635583682130089364682543007292042009976150135189415923413244100006421082817394988300265734422677548100741829682842668334472314928702968616204691717366798642916146473018363370523427203416579250811577900985980957404830019403600361860520985937973506956557739754741783354728589350876379371163141086538418113791886622720"));
    }

    #[test]
    fn parse_rules() {
        for bad in ["", " 1", "1 ", ".", "1e", "abc", "nan", "-nan", "1e5000", "1e-5000", "0x", "1_0", "+-1", "infx"] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad:?} should fail");
        }
        assert!(!LongDouble::parse(b"inf").unwrap().is_finite());
        assert!(!LongDouble::parse(b"-Infinity").unwrap().is_finite());
        assert_eq!(LongDouble::parse(b"0e-99999").unwrap().to_human(), "0");
        assert_eq!(LongDouble::parse(b"1\0junk").unwrap().to_human(), "1");
        assert_eq!(LongDouble::parse(b"-1e-4940").unwrap().to_human(), "0");
        assert_eq!(LongDouble::from_i64(i64::MIN).to_human(), "-9223372036854775808");
    }

    #[test]
    fn overflow_is_infinite() {
        let big = LongDouble::parse(b"1e4932").unwrap();
        assert!(!big.add(big).is_finite());
        assert!(big.add(LongDouble::parse(b"-1e4932").unwrap()).is_finite());
    }
}
