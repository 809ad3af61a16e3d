//! Every error text a client can see, in one place, so node and proxy say exactly what Redis says.
//!
//! Texts carry their prefix (`ERR`, `WRONGTYPE`, ...) but not the leading `-`; the reply writer adds it.

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
pub const DB_INDEX_OUT_OF_RANGE: &str = "ERR DB index is out of range";
pub const INVALID_EXPIRE: &str = "ERR invalid expire time in '{}' command";
pub const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
pub const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
pub const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";
pub const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
pub const BIT_OFFSET: &str = "ERR bit offset is not an integer or out of range";
pub const BIT_VALUE: &str = "ERR bit is not an integer or out of range";
pub const NOAUTH: &str = "NOAUTH Authentication required.";
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
pub const AUTH_NOT_CONFIGURED: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
pub const MULTI_NESTED: &str = "ERR MULTI calls can not be nested";
pub const EXEC_WITHOUT_MULTI: &str = "ERR EXEC without MULTI";
pub const DISCARD_WITHOUT_MULTI: &str = "ERR DISCARD without MULTI";
pub const WATCH_IN_MULTI: &str = "ERR WATCH inside MULTI is not allowed";
pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
pub const NOPROTO: &str = "NOPROTO unsupported protocol version";
pub const SAME_OBJECT: &str = "ERR source and destination objects are the same";

pub const PROTO_TOO_BIG_INLINE: &str = "ERR Protocol error: too big inline request";
pub const PROTO_UNBALANCED_QUOTES: &str = "ERR Protocol error: unbalanced quotes in request";
pub const PROTO_INVALID_MULTIBULK: &str = "ERR Protocol error: invalid multibulk length";
pub const PROTO_TOO_BIG_MBULK_COUNT: &str = "ERR Protocol error: too big mbulk count string";
pub const PROTO_TOO_BIG_BULK_COUNT: &str = "ERR Protocol error: too big bulk count string";
pub const PROTO_INVALID_BULK: &str = "ERR Protocol error: invalid bulk length";
pub const PROTO_UNAUTH_MULTIBULK: &str = "ERR Protocol error: unauthenticated multibulk length";
pub const PROTO_UNAUTH_BULK: &str = "ERR Protocol error: unauthenticated bulk length";

/// `ERR wrong number of arguments for 'get' command`; `name` is the command as the table spells it
/// (`client|setname` for subcommands).
pub fn wrong_arity(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

/// Redis quotes the first arguments of an unknown command until 128 bytes of them are quoted.
pub fn unknown_command(name: &[u8], args: &[&[u8]]) -> String {
    let mut quoted = String::new();
    // Counted in the client's bytes, as Redis counts them, not in the UTF-8 we carry them in.
    let mut used = 0;
    for a in args {
        if used >= 128 {
            break;
        }
        let room = 128 - used;
        let shown = &a[..a.len().min(room)];
        used += 3 + memchr::memchr(0, shown).unwrap_or(shown.len());
        quoted.push('\'');
        quoted.push_str(&lossy(a, room));
        quoted.push_str("' ");
    }
    format!("ERR unknown command '{}', with args beginning with: {quoted}", lossy(name, 128))
}

pub fn unknown_subcommand(sub: &[u8], cmd: &str) -> String {
    format!("ERR unknown subcommand '{}'. Try {} HELP.", lossy(sub, 128), cmd.to_ascii_uppercase())
}

/// Redis prints the byte itself (`%c`); a byte that is not ASCII cannot travel in a `String`, so
/// it becomes U+FFFD like the other echoed bytes (see [`lossy`]).
pub fn proto_expected_dollar(got: u8) -> String {
    format!("ERR Protocol error: expected '$', got '{}'", String::from_utf8_lossy(&[got]))
}

/// Redis prints arguments with `%.*s`, so bytes go out unchanged up to the first NUL (where C's
/// `%s` stops); we only need text that is valid UTF-8 for the `String` that carries it, and the
/// writer sanitises CR/LF.
pub fn lossy(b: &[u8], max: usize) -> String {
    let b = &b[..b.len().min(max)];
    let b = &b[..memchr::memchr(0, b).unwrap_or(b.len())];
    String::from_utf8_lossy(b).into_owned()
}
