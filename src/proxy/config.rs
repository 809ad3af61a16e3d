//! `slotway proxy -c proxy.yaml`: the YAML file becomes [`Options`], then the command-line flags
//! override it. Every key is optional (a missing key keeps its [`Options::default`] value) and
//! every value is checked while it is read, so a bad file fails at startup with serde_norway's
//! error, which names the key (`users[1].password: ...`) and the line and column. The example with
//! every key is `config/proxy.yaml`; a unit test parses that exact file so it cannot rot.

use crate::cluster::topology::Addr;
use crate::proxy::{Options, ReadFrom, User};
use serde::de::{self, Deserializer, Unexpected};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the proxy's configuration could not be built; shown on stderr before a non-zero exit.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// serde_norway's text carries the key path and `at line L column C`.
    #[error("{path}: {}", with_line(source))]
    Parse { path: String, source: serde_norway::Error },
    #[error("{flag} {value}: {why}")]
    Flag { flag: &'static str, value: String, why: String },
    #[error("no seeds: list cluster nodes under `seeds:` in the config file or pass --seed host:port")]
    NoSeeds,
}

/// serde_norway leaves the position out of its text when it is the document's very start (a file
/// that is a list, say); the message names the line anyway.
fn with_line(e: &serde_norway::Error) -> String {
    let text = e.to_string();
    match e.location() {
        Some(l) if !text.contains(" at line ") => format!("{text} at line {} column {}", l.line(), l.column()),
        _ => text,
    }
}

/// The flags of `slotway proxy` that override the file: a flag given replaces the file's value
/// (a repeated `--listen` or `--seed` replaces the file's whole list, it does not add to it).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub listen: Vec<String>,
    pub seeds: Vec<String>,
    pub threads: Option<usize>,
    pub read_from: Option<String>,
    pub admin: Option<String>,
}

/// The file (if any) onto the defaults, then the flags; fails without seeds from either.
pub fn load(flags: &Flags) -> Result<Options, ConfigError> {
    let opts = match &flags.config {
        Some(path) => read_file(path)?,
        None => Options::default(),
    };
    merge(opts, flags)
}

/// Reads and parses one config file (seeds are not required here: a flag may still give them).
pub fn read_file(path: &Path) -> Result<Options, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
    parse(&text).map_err(|source| ConfigError::Parse { path: shown, source })
}

/// The YAML text onto [`Options::default`]. An empty file (or one of comments only) is all defaults.
pub fn parse(text: &str) -> Result<Options, serde_norway::Error> {
    serde_norway::from_str::<NoDuplicateKeys>(text)?;
    let file: Option<ConfigFile> = serde_norway::from_str(text)?;
    let mut opts = Options::default();
    if let Some(f) = file {
        f.apply(&mut opts);
    }
    Ok(opts)
}

/// The flags over `opts`, checked as the file's values are.
pub fn merge(mut opts: Options, flags: &Flags) -> Result<Options, ConfigError> {
    let flag_err = |flag, value: &str, why: String| ConfigError::Flag { flag, value: value.to_string(), why };
    if !flags.listen.is_empty() {
        opts.listen = flags
            .listen
            .iter()
            .map(|l| check_listen(l).map(|_| l.clone()).map_err(|why| flag_err("--listen", l, why)))
            .collect::<Result<_, _>>()?;
    }
    if !flags.seeds.is_empty() {
        opts.seeds = flags
            .seeds
            .iter()
            .map(|s| parse_host_port(s).map_err(|why| flag_err("--seed", s, why)))
            .collect::<Result<_, _>>()?;
    }
    if let Some(t) = flags.threads {
        if !(1..=MAX_THREADS as usize).contains(&t) {
            return Err(flag_err("--threads", &t.to_string(), format!("expected 1 to {MAX_THREADS}")));
        }
        opts.threads = t;
    }
    if let Some(r) = &flags.read_from {
        opts.read_from = ReadFrom::parse(r).ok_or_else(|| flag_err("--read-from", r, read_from_expected()))?;
    }
    if let Some(a) = &flags.admin {
        parse_host_port(a).map_err(|why| flag_err("--admin", a, why))?;
        opts.admin = Some(a.clone());
    }
    if opts.seeds.is_empty() {
        return Err(ConfigError::NoSeeds);
    }
    Ok(opts)
}

const MAX_THREADS: u64 = 1024;
/// Upper bound of every `*_ms` key: an hour. Longer is a typo, not a setting.
const MAX_MS: u64 = 3_600_000;
const MAX_INFLIGHT: u64 = 1 << 20;
/// The redirect and retry loops stay short: a client waits for each step.
const MAX_LOOP: u64 = 100;

/// The file's shape. Keys are `Options`' field names; durations are `<name>_ms` integers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<NonEmpty<Listen>>,
    seeds: Option<NonEmpty<Seed>>,
    threads: Option<Bounded<1, MAX_THREADS>>,
    read_from: Option<ReadFromName>,
    users: Option<Users>,
    backend: Option<Backend>,
    admin: Option<HostPort>,
    conns_per_node: Option<Bounded<1, 64>>,
    max_inflight_per_conn: Option<Bounded<1, MAX_INFLIGHT>>,
    max_inflight_per_client: Option<Bounded<1, MAX_INFLIGHT>>,
    connect_timeout_ms: Option<Bounded<1, MAX_MS>>,
    request_timeout_ms: Option<Bounded<1, MAX_MS>>,
    breaker_failures: Option<Bounded<0, 1_000_000>>,
    breaker_open_ms: Option<Bounded<1, MAX_MS>>,
    /// At least 100 ms: a refresh asks several nodes for the whole slot map.
    refresh_interval_ms: Option<Bounded<100, MAX_MS>>,
    max_redirects: Option<Bounded<1, MAX_LOOP>>,
    max_retries: Option<Bounded<0, MAX_LOOP>>,
}

impl ConfigFile {
    fn apply(self, o: &mut Options) {
        let ms = |b: Bounded<1, MAX_MS>| Duration::from_millis(b.0);
        if let Some(v) = self.listen {
            o.listen = v.0.into_iter().map(|l| l.0).collect();
        }
        if let Some(v) = self.seeds {
            o.seeds = v.0.into_iter().map(|s| s.0).collect();
        }
        if let Some(v) = self.threads {
            o.threads = v.0 as usize;
        }
        if let Some(v) = self.read_from {
            o.read_from = v.0;
        }
        if let Some(v) = self.users {
            o.users = v.0;
        }
        if let Some(b) = self.backend {
            o.backend_user = b.user;
            o.backend_password = b.password;
        }
        if let Some(v) = self.admin {
            o.admin = Some(v.0);
        }
        if let Some(v) = self.conns_per_node {
            o.conns_per_node = v.0 as usize;
        }
        if let Some(v) = self.max_inflight_per_conn {
            o.max_inflight_per_conn = v.0 as usize;
        }
        if let Some(v) = self.max_inflight_per_client {
            o.max_inflight_per_client = v.0 as usize;
        }
        if let Some(v) = self.connect_timeout_ms {
            o.connect_timeout = ms(v);
        }
        if let Some(v) = self.request_timeout_ms {
            o.request_timeout = ms(v);
        }
        if let Some(v) = self.breaker_failures {
            o.breaker_failures = v.0 as u32;
        }
        if let Some(v) = self.breaker_open_ms {
            o.breaker_open = ms(v);
        }
        if let Some(v) = self.refresh_interval_ms {
            o.refresh_interval = Duration::from_millis(v.0);
        }
        if let Some(v) = self.max_redirects {
            o.max_redirects = v.0 as u32;
        }
        if let Some(v) = self.max_retries {
            o.max_retries = v.0 as u32;
        }
    }
}

// Every check runs inside a serde `Visitor`, while serde_norway still holds the value's position:
// an error raised there gets the key path and the line; one raised after deserialization
// returned (a `try_from`, a check in `apply`) would only get the document's start.

/// An integer in `MIN..=MAX`; anything else names the key, the line and the range.
#[derive(Debug, Clone, Copy)]
struct Bounded<const MIN: u64, const MAX: u64>(u64);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MIN: u64, const MAX: u64>;
        impl<const MIN: u64, const MAX: u64> V<MIN, MAX> {
            fn check<E: de::Error>(self, v: i128, shown: Unexpected) -> Result<Bounded<MIN, MAX>, E> {
                match u64::try_from(v) {
                    Ok(u) if (MIN..=MAX).contains(&u) => Ok(Bounded(u)),
                    _ => Err(E::invalid_value(shown, &self)),
                }
            }
        }
        impl<'de, const MIN: u64, const MAX: u64> de::Visitor<'de> for V<MIN, MAX> {
            type Value = Bounded<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an integer from {MIN} to {MAX}")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.check(v.into(), Unexpected::Signed(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.check(v.into(), Unexpected::Unsigned(v))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
                self.check(v, Unexpected::Other("a huge integer"))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
                self.check(i128::try_from(v).unwrap_or(-1), Unexpected::Other("a huge integer"))
            }
        }
        d.deserialize_i64(V::<MIN, MAX>)
    }
}

/// A string value checked by `check`; `what` is the "expected ..." of a wrong type.
fn checked_str<'de, D: Deserializer<'de>, T>(
    d: D,
    what: &'static str,
    check: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct V<T>(&'static str, fn(&str) -> Result<T, String>);
    impl<T> de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.1)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V(what, check))
}

/// A list with at least one element: an empty `listen:` or `seeds:` is a mistake, not a default.
#[derive(Debug)]
struct NonEmpty<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NonEmpty<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for V<T> {
            type Value = NonEmpty<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence of at least one entry")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                if v.is_empty() {
                    return Err(de::Error::invalid_length(0, &self));
                }
                Ok(NonEmpty(v))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

#[derive(Debug)]
struct Listen(String);

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "host:port or unix:/path", |s| check_listen(s).map(|_| Listen(s.to_string())))
    }
}

#[derive(Debug)]
struct Seed(Addr);

impl<'de> Deserialize<'de> for Seed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "host:port", |s| parse_host_port(s).map(Seed))
    }
}

#[derive(Debug)]
struct HostPort(String);

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "host:port", |s| parse_host_port(s).map(|_| HostPort(s.to_string())))
    }
}

#[derive(Debug)]
struct ReadFromName(ReadFrom);

impl<'de> Deserialize<'de> for ReadFromName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a read policy", |s| {
            ReadFrom::parse(s).map(ReadFromName).ok_or_else(|| format!("`{s}`: {}", read_from_expected()))
        })
    }
}

fn read_from_expected() -> String {
    format!("expected one of {}", ReadFrom::NAMES.join(", "))
}

/// `users:` entries; names are unique (a second entry with one name could never be used).
#[derive(Debug)]
struct Users(Vec<User>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: UserName,
    password: Password,
}

impl<'de> Deserialize<'de> for Users {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Users;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence of {name, password}")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Users, A::Error> {
                let mut out: Vec<User> = Vec::new();
                while let Some(UserEntry { name, password }) = seq.next_element()? {
                    if out.iter().any(|u| u.name == name.0) {
                        return Err(de::Error::custom(format!("user `{}` is listed twice", name.0)));
                    }
                    out.push(User { name: name.0, password: password.0 });
                }
                Ok(Users(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// Like an ACL user name: not empty, no spaces (AUTH takes it as one argument).
#[derive(Debug)]
struct UserName(String);

impl<'de> Deserialize<'de> for UserName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a user name", |s| {
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("`{s}`: a user name is not empty and has no spaces or control characters"));
            }
            Ok(UserName(s.to_string()))
        })
    }
}

/// Not empty: an empty password in a file is a mistake, not a wish for no password.
#[derive(Debug)]
struct Password(String);

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a password", |s| {
            if s.is_empty() {
                return Err("a password is not empty".into());
            }
            Ok(Password(s.to_string()))
        })
    }
}

/// `backend: {user, password}`: what the proxy sends to every node as `AUTH [user] password`.
#[derive(Debug)]
struct Backend {
    user: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendEntry {
    #[serde(default)]
    user: Option<UserName>,
    #[serde(default)]
    password: Option<Password>,
}

impl<'de> Deserialize<'de> for Backend {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Backend;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping with user and password")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Backend, A::Error> {
                let b = BackendEntry::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if b.user.is_some() && b.password.is_none() {
                    return Err(de::Error::custom("backend.user needs backend.password (AUTH user password)"));
                }
                Ok(Backend { user: b.user.map(|u| u.0), password: b.password.map(|p| p.0) })
            }
        }
        d.deserialize_map(V)
    }
}

/// Any YAML document, refused if a mapping repeats a key. serde's own duplicate check (and
/// serde_norway's) runs after the key was read and so reports where the mapping starts, which for
/// the top level is no line at all; here the check runs while the repeated key is read.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = NoDuplicateKeys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut seen = Vec::new();
                while map.next_key_seed(Key(&mut seen))?.is_some() {
                    map.next_value::<NoDuplicateKeys>()?;
                }
                Ok(NoDuplicateKeys)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
                Ok(NoDuplicateKeys)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                NoDuplicateKeys::deserialize(d)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_i128<E>(self, _: i128) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_u128<E>(self, _: u128) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            /// A tagged value (`!tag [..]`): its content is checked like any other.
            fn visit_enum<A: de::EnumAccess<'de>>(self, e: A) -> Result<Self::Value, A::Error> {
                let (_, v) = e.variant::<de::IgnoredAny>()?;
                de::VariantAccess::newtype_variant::<NoDuplicateKeys>(v)
            }
        }
        /// One mapping's keys so far; keys that are not strings are left to the File parse.
        struct Key<'a>(&'a mut Vec<String>);
        impl<'de> de::DeserializeSeed<'de> for Key<'_> {
            type Value = ();
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_any(self)
            }
        }
        impl<'de> de::Visitor<'de> for Key<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E: de::Error>(self, k: &str) -> Result<(), E> {
                if self.0.iter().any(|s| s == k) {
                    return Err(E::custom(format!("the key `{k}` appears twice")));
                }
                self.0.push(k.to_string());
                Ok(())
            }
            fn visit_bool<E>(self, _: bool) -> Result<(), E> {
                Ok(())
            }
            fn visit_i64<E>(self, _: i64) -> Result<(), E> {
                Ok(())
            }
            fn visit_u64<E>(self, _: u64) -> Result<(), E> {
                Ok(())
            }
            fn visit_f64<E>(self, _: f64) -> Result<(), E> {
                Ok(())
            }
            fn visit_unit<E>(self) -> Result<(), E> {
                Ok(())
            }
            fn visit_none<E>(self) -> Result<(), E> {
                Ok(())
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(())
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(())
            }
        }
        d.deserialize_any(V)
    }
}

/// `host:port` (TCP) or `unix:/path` (a unix socket).
fn check_listen(s: &str) -> Result<(), String> {
    match s.strip_prefix("unix:") {
        Some("") => Err("`unix:` needs a socket path (unix:/path/to/proxy.sock)".into()),
        Some(_) => Ok(()),
        None => parse_host_port(s).map(|_| ()).map_err(|e| format!("{e} or unix:/path")),
    }
}

fn parse_host_port(s: &str) -> Result<Addr, String> {
    match Addr::parse(s) {
        Some(a) if !a.host.is_empty() && a.port != 0 => Ok(a),
        _ => Err(format!("`{s}`: expected host:port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../config/proxy.yaml");

    fn err(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    fn line_of(e: &serde_norway::Error) -> usize {
        e.location().map_or(0, |l| l.line())
    }

    /// The field names of a `Deserialize` struct, as serde sees them (what `deny_unknown_fields`
    /// accepts), caught by a deserializer that only records `deserialize_struct`'s arguments.
    fn struct_fields<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
        #[derive(Debug)]
        struct Caught(Vec<&'static str>);
        impl fmt::Display for Caught {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl std::error::Error for Caught {}
        impl de::Error for Caught {
            fn custom<M: fmt::Display>(_: M) -> Self {
                Caught(Vec::new())
            }
        }
        struct Catcher;
        impl<'de> Deserializer<'de> for Catcher {
            type Error = Caught;
            fn deserialize_any<V: de::Visitor<'de>>(self, _: V) -> Result<V::Value, Caught> {
                Err(Caught(Vec::new()))
            }
            fn deserialize_struct<V: de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Caught> {
                Err(Caught(fields.to_vec()))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
                unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
            }
        }
        match T::deserialize(Catcher) {
            Err(c) => c.0,
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn example_file_parses_and_lists_every_key() {
        let o = parse(EXAMPLE).unwrap_or_else(|e| panic!("config/proxy.yaml: {e}"));
        let file_keys = struct_fields::<ConfigFile>();
        assert_eq!(file_keys.len(), 17, "{file_keys:?}");
        let map: serde_norway::Mapping = serde_norway::from_str(EXAMPLE).expect("mapping");
        let present: Vec<&str> = map.keys().filter_map(|k| k.as_str()).collect();
        for k in &file_keys {
            assert!(present.contains(k), "config/proxy.yaml lacks the key `{k}`");
        }
        let backend = map.get("backend").and_then(|b| b.as_mapping()).expect("backend is a mapping");
        for k in struct_fields::<BackendEntry>() {
            assert!(backend.contains_key(k), "config/proxy.yaml lacks the key `backend.{k}`");
        }
        // Each key has a comment (on the line or just above).
        let lines: Vec<&str> = EXAMPLE.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let key = l.trim_start().split(':').next().unwrap_or("");
            let is_key = !l.trim_start().starts_with('#')
                && (file_keys.contains(&key) || ["user", "password"].contains(&key))
                && l.contains(':');
            if is_key {
                let commented = l.contains('#') || i > 0 && lines[i - 1].trim_start().starts_with('#');
                assert!(commented, "config/proxy.yaml line {}: `{key}` has no comment", i + 1);
            }
        }
        // The example documents the defaults: apart from its seeds it equals them.
        let d = Options::default();
        assert_eq!(o.seeds.len(), 3);
        assert_eq!(o.listen, d.listen);
        assert_eq!(o.read_from, d.read_from);
        assert_eq!(o.users, d.users);
        assert_eq!((o.backend_user.clone(), o.backend_password.clone()), (None, None));
        assert_eq!(o.admin, d.admin);
        assert_eq!(o.conns_per_node, d.conns_per_node);
        assert_eq!(o.max_inflight_per_conn, d.max_inflight_per_conn);
        assert_eq!(o.max_inflight_per_client, d.max_inflight_per_client);
        assert_eq!(o.connect_timeout, d.connect_timeout);
        assert_eq!(o.request_timeout, d.request_timeout);
        assert_eq!(o.breaker_failures, d.breaker_failures);
        assert_eq!(o.breaker_open, d.breaker_open);
        assert_eq!(o.refresh_interval, d.refresh_interval);
        assert_eq!(o.max_redirects, d.max_redirects);
        assert_eq!(o.max_retries, d.max_retries);
    }

    /// Everything `Options` holds, as one comparable string (Options has no PartialEq).
    fn shape(o: &Options) -> String {
        format!("{o:?}")
    }

    #[test]
    fn minimal_file_keeps_every_default() {
        let o = parse("seeds: [\"10.0.0.1:7000\"]\n").expect("parse");
        let want = Options { seeds: vec![Addr::new("10.0.0.1", 7000)], ..Options::default() };
        assert_eq!(shape(&o), shape(&want));
        assert_eq!(shape(&parse("").expect("empty")), shape(&Options::default()));
        assert_eq!(shape(&parse("# only a comment\n").expect("comments")), shape(&Options::default()));
    }

    #[test]
    fn every_key_is_carried() {
        let text = "\
listen: [\"127.0.0.1:7777\", \"unix:/tmp/p.sock\"]
seeds: [a:1, \"b:2\"]
threads: 3
read_from: round-robin
users:
  - {name: default, password: pw}
  - name: app
    password: 12345
backend: {user: proxy, password: secret}
admin: 127.0.0.1:9100
conns_per_node: 4
max_inflight_per_conn: 10
max_inflight_per_client: 20
connect_timeout_ms: 1500
request_timeout_ms: 2500
breaker_failures: 7
breaker_open_ms: 3500
refresh_interval_ms: 4500
max_redirects: 8
max_retries: 0
";
        let o = parse(text).expect("parse");
        assert_eq!(o.listen, vec!["127.0.0.1:7777", "unix:/tmp/p.sock"]);
        assert_eq!(o.seeds, vec![Addr::new("a", 1), Addr::new("b", 2)]);
        assert_eq!(o.threads, 3);
        assert_eq!(o.read_from, ReadFrom::RoundRobin);
        let u = |n: &str, p: &str| User { name: n.into(), password: p.into() };
        assert_eq!(o.users, vec![u("default", "pw"), u("app", "12345")]);
        assert_eq!(o.backend_user.as_deref(), Some("proxy"));
        assert_eq!(o.backend_password.as_deref(), Some("secret"));
        assert_eq!(o.admin.as_deref(), Some("127.0.0.1:9100"));
        assert_eq!((o.conns_per_node, o.max_inflight_per_conn, o.max_inflight_per_client), (4, 10, 20));
        assert_eq!(o.connect_timeout, Duration::from_millis(1500));
        assert_eq!(o.request_timeout, Duration::from_millis(2500));
        assert_eq!(o.breaker_failures, 7);
        assert_eq!(o.breaker_open, Duration::from_millis(3500));
        assert_eq!(o.refresh_interval, Duration::from_millis(4500));
        assert_eq!((o.max_redirects, o.max_retries), (8, 0));
        // A backend password alone is AUTH password (the default user).
        let o = parse("backend:\n  password: x\n").expect("parse");
        assert_eq!((o.backend_user, o.backend_password.as_deref()), (None, Some("x")));
    }

    #[test]
    fn bad_values_name_the_key_and_the_line() {
        // (file, the key path the message must start with, a fragment of the reason, the line)
        let cases: &[(&str, &str, &str, usize)] = &[
            ("seeds: [a:1]\nthread: 2\n", "", "unknown field `thread`", 2),
            ("seeds: [a:1]\nthreads: 0\n", "threads: ", "expected an integer from 1 to 1024", 2),
            ("seeds: [a:1]\nthreads: -3\n", "threads: ", "invalid value: integer `-3`, expected an integer from 1", 2),
            ("threads: 99999999999999999999\n", "threads: ", "expected an integer from 1", 1),
            ("seeds: [a:1]\n\nthreads: many\n", "threads: ", "invalid type: string \"many\"", 3),
            ("read_from: replicas\n", "read_from: ", "expected one of master, prefer-replica, replica", 1),
            ("seeds:\n  - a:1\n  - nohostport\n", "seeds[1]: ", "`nohostport`: expected host:port", 3),
            ("seeds:\n  - \"a:99999\"\n", "seeds[0]: ", "expected host:port", 2),
            ("seeds: []\n", "seeds: ", "at least one entry", 1),
            ("seeds: a:1\n", "seeds: ", "invalid type: string \"a:1\", expected a sequence", 1),
            ("listen: [\"unix:\"]\n", "listen[0]: ", "needs a socket path", 1),
            ("listen: [\"6380\"]\n", "listen[0]: ", "expected host:port or unix:/path", 1),
            ("users:\n  - name: a\n    pasword: x\n", "users[0]: ", "unknown field `pasword`", 3),
            ("users:\n  - name: a\n", "users[0]: ", "missing field `password`", 2),
            ("users:\n  - {name: a, password: \"\"}\n", "users[0].password: ", "not empty", 2),
            ("users:\n  - {name: a b, password: x}\n", "users[0].name: ", "no spaces", 2),
            ("users:\n  - {name: a, password: x}\n  - {name: a, password: y}\n", "users: ", "listed twice", 2),
            ("backend:\n  user: u\n", "backend: ", "needs backend.password", 2),
            ("backend:\n  pass: u\n", "backend: ", "unknown field `pass`", 2),
            ("refresh_interval_ms: 10\n", "refresh_interval_ms: ", "from 100 to 3600000", 1),
            ("request_timeout_ms: 0\n", "request_timeout_ms: ", "from 1 to 3600000", 1),
            ("max_redirects: 1000\n", "max_redirects: ", "from 1 to 100", 1),
            ("admin: nowhere\n", "admin: ", "expected host:port", 1),
            ("threads: 2\nthreads: 3\n", "", "the key `threads` appears twice", 2),
            ("users:\n  - name: a\n    password: x\n    name: b\n", "users[0]: ", "the key `name` appears twice", 4),
            ("backend:\n  user: a\n  user: b\n", "backend: ", "the key `user` appears twice", 3),
            ("seeds: [a:1\n", "", "", 2),
            ("- a\n", "", "invalid type: sequence, expected struct ConfigFile", 1),
        ];
        for (text, key, why, line) in cases {
            let e = parse(text).expect_err(text);
            let msg = e.to_string();
            assert!(msg.starts_with(key), "{text:?}: {msg:?} does not start with {key:?}");
            assert!(msg.contains(why), "{text:?}: {msg:?} does not say {why:?}");
            assert_eq!(line_of(&e), *line, "{text:?}: {msg:?}");
            let shown = ConfigError::Parse { path: "p.yaml".into(), source: e }.to_string();
            assert!(shown.starts_with("p.yaml: "), "{shown}");
            assert!(shown.contains(&format!(" at line {line} column ")), "{text:?}: {shown:?}");
        }
        assert!(err("seeds: [a:1]\nthread: 2\n").contains("expected one of `listen`, `seeds`"));
    }

    #[test]
    fn odd_yaml_is_read_or_refused_with_a_position() {
        // Tags are ignored, anchors and hex integers are YAML.
        assert_eq!(parse("threads: !!int 3\n").expect("tag").threads, 3);
        assert_eq!(parse("seeds: !x [a:1]\n").expect("tag").seeds.len(), 1);
        assert_eq!(parse("threads: 0x10\n").expect("hex").threads, 16);
        assert_eq!(parse("---\nthreads: 2\n...\n").expect("markers").threads, 2);
        for t in ["a: &x 3\nthreads: *x\n", "? [a]\n: 1\n", "{1: 2}\n", "threads: [1]\n", "users: {a: b}\n"] {
            let e = parse(t).expect_err(t);
            assert!(e.location().is_some_and(|l| l.line() >= 1), "{t:?}: {e}");
        }
        let e = parse("threads: 1\n---\nthreads: 2\n").expect_err("two documents");
        assert!(e.to_string().contains("more than one document"), "{e}");
    }

    fn flags() -> Flags {
        Flags::default()
    }

    #[test]
    fn flags_override_the_file() {
        let file = parse(
            "listen: [\"127.0.0.1:1\", \"unix:/a\"]\nseeds: [a:1, b:2]\nthreads: 3\nread_from: replica\nadmin: h:9\n",
        )
        .expect("parse");
        let same = merge(file.clone(), &flags()).expect("merge");
        assert_eq!(shape(&same), shape(&file));
        let f = Flags {
            listen: vec!["unix:/b".into()],
            seeds: vec!["c:3".into()],
            threads: Some(5),
            read_from: Some("prefer-replica".into()),
            admin: Some("h:10".into()),
            ..flags()
        };
        let o = merge(file.clone(), &f).expect("merge");
        assert_eq!(o.listen, vec!["unix:/b"]);
        assert_eq!(o.seeds, vec![Addr::new("c", 3)]);
        assert_eq!(o.threads, 5);
        assert_eq!(o.read_from, ReadFrom::PreferReplica);
        assert_eq!(o.admin.as_deref(), Some("h:10"));
        // What the flags do not name stays the file's.
        let o = merge(file, &Flags { threads: Some(1), ..flags() }).expect("merge");
        assert_eq!((o.listen.len(), o.seeds.len(), o.read_from), (2, 2, ReadFrom::Replica));
    }

    #[test]
    fn seeds_must_come_from_somewhere_and_flags_are_checked() {
        assert!(matches!(merge(Options::default(), &flags()), Err(ConfigError::NoSeeds)));
        assert!(matches!(merge(parse("threads: 2\n").expect("parse"), &flags()), Err(ConfigError::NoSeeds)));
        let o = merge(Options::default(), &Flags { seeds: vec!["h:1".into()], ..flags() }).expect("merge");
        assert_eq!(o.seeds, vec![Addr::new("h", 1)]);
        let bad = |f: Flags| merge(Options::default(), &f).expect_err("bad flag").to_string();
        let seeds = || vec!["h:1".to_string()];
        assert_eq!(bad(Flags { seeds: vec!["h".into()], ..flags() }), "--seed h: `h`: expected host:port");
        assert!(bad(Flags { seeds: seeds(), listen: vec!["x".into()], ..flags() }).starts_with("--listen x: "));
        assert!(bad(Flags { seeds: seeds(), threads: Some(0), ..flags() }).starts_with("--threads 0: "));
        assert!(bad(Flags { seeds: seeds(), read_from: Some("x".into()), ..flags() }).starts_with("--read-from x: "));
        assert!(bad(Flags { seeds: seeds(), admin: Some(":1".into()), ..flags() }).starts_with("--admin :1: "));
    }

    #[test]
    fn file_errors_name_the_file() {
        let missing = read_file(Path::new("/nonexistent/proxy.yaml")).expect_err("missing");
        assert!(missing.to_string().starts_with("cannot read /nonexistent/proxy.yaml: "), "{missing}");
    }
}
