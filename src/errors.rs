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

// strings/keys
pub const DECREMENT_OVERFLOW: &str = "ERR decrement would overflow";
pub const NAN_OR_INF: &str = "ERR increment would produce NaN or Infinity";
pub const OFFSET_RANGE: &str = "ERR offset is out of range";
pub const LCS_WRONGTYPE: &str = "ERR The specified keys must contain string values";
pub const LCS_IDX_AND_LEN: &str = "ERR If you want both the length and indexes, please just use IDX.";
pub const LCS_TOO_BIG: &str = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len";
pub const LCS_TOO_LONG: &str = "ERR String too long for LCS";
pub const BIT_ARG: &str = "ERR The bit argument must be 1 or 0.";
pub const BITOP_NOT_ARITY: &str = "ERR BITOP NOT must be called with a single source key.";
pub const NX_XX_GT_LT: &str = "ERR NX and XX, GT or LT options at the same time are not compatible";
pub const GT_AND_LT: &str = "ERR GT and LT options at the same time are not compatible";
pub const INT_RANGE: &str = "ERR value is out of range, value must between -2147483648 and 2147483647";
pub const INVALID_CURSOR: &str = "ERR invalid cursor";
pub const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
pub const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
pub const INVALID_FIRST_DB: &str = "ERR invalid first DB index";
pub const INVALID_SECOND_DB: &str = "ERR invalid second DB index";

// server
pub const MONITOR_DENY_BLOCKING: &str = "ERR MONITOR isn't allowed for DENY BLOCKING client";
pub const SHUTDOWN_NOT_IN_PROGRESS: &str = "ERR No shutdown in progress.";
pub const SHUTDOWN_DENY_BLOCKING: &str = "ERR SHUTDOWN without NOW or ABORT isn't allowed for DENY BLOCKING client";
pub const SHUTDOWN_SAVE_FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";
pub const SLOWLOG_COUNT: &str = "ERR count should be greater than or equal to -1";
pub const GETKEYS_INVALID_COMMAND: &str = "ERR Invalid command specified";
pub const GETKEYS_NO_KEYS: &str = "ERR The command has no key arguments";
pub const GETKEYS_ARITY: &str = "ERR Invalid number of arguments specified for command";
pub const GETKEYS_INVALID_ARGS: &str = "ERR Invalid arguments specified for command";
pub const CLIENT_NAME_CHARS: &str = "ERR Client names cannot contain spaces, newlines or special characters.";
pub const NO_SUCH_CLIENT: &str = "ERR No such client";
pub const CLIENT_ID_NOT_POSITIVE: &str = "ERR client-id should be greater than 0";
pub const INVALID_CLIENT_ID: &str = "ERR Invalid client ID";

/// `ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.`
pub fn subcommand_syntax(cmd: &[u8], sub: &[u8]) -> String {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        lossy(sub, 128),
        String::from_utf8_lossy(cmd).to_ascii_uppercase()
    )
}

pub fn config_set_unknown(name: &[u8]) -> String {
    format!("ERR Unknown option or number of arguments for CONFIG SET - '{}'", lossy(name, usize::MAX))
}

/// `name` is the option as typed (immutable, duplicate) or as registered (a bad value).
pub fn config_set_failed(name: &str, why: &str) -> String {
    format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
}

pub fn unknown_client_type(name: &[u8]) -> String {
    format!("ERR Unknown client type '{}'", lossy(name, usize::MAX))
}

pub fn no_such_user(name: &[u8]) -> String {
    format!("ERR No such user '{}'", lossy(name, usize::MAX))
}

pub fn client_setinfo_option(attr: &[u8]) -> String {
    format!("ERR Unrecognized option '{}'", lossy(attr, usize::MAX))
}

pub fn client_setinfo_chars(attr: &[u8]) -> String {
    format!("ERR {} cannot contain spaces, newlines or special characters.", lossy(attr, usize::MAX))
}
// hashes/sets
pub const HASH_NOT_INTEGER: &str = "ERR hash value is not an integer";
pub const HASH_NOT_FLOAT: &str = "ERR hash value is not a float";
pub const NAN_OR_INFINITY: &str = "ERR value is NaN or Infinity";
/// HRANDFIELD / SRANDMEMBER / ZRANDMEMBER count of i64::MIN (Redis's `getRangeLongFromObjectOrReply` text).
pub const RANDOM_COUNT_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
pub const VALUE_OUT_OF_RANGE: &str = "ERR value is out of range";
pub const NUMKEYS_NOT_POSITIVE: &str = "ERR numkeys should be greater than 0";
pub const NUMKEYS_TOO_MANY: &str = "ERR Number of keys can't be greater than number of args";
pub const LIMIT_NEGATIVE: &str = "ERR LIMIT can't be negative";
// zsets
pub const ZSET_XX_NX: &str = "ERR XX and NX options at the same time are not compatible";
pub const ZSET_GT_LT_NX: &str = "ERR GT, LT, and/or NX options at the same time are not compatible";
pub const ZSET_INCR_PAIR: &str = "ERR INCR option supports a single increment-element pair";
pub const ZSET_NAN: &str = "ERR resulting score is not a number (NaN)";
pub const ZSET_MINMAX_FLOAT: &str = "ERR min or max is not a float";
pub const ZSET_MINMAX_LEX: &str = "ERR min or max not valid string range item";
pub const ZSET_LIMIT_NEEDS_BY: &str =
    "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
pub const ZSET_WITHSCORES_BYLEX: &str = "ERR syntax error, WITHSCORES not supported in combination with BYLEX";
pub const ZSET_WEIGHT_FLOAT: &str = "ERR weight value is not a float";

/// ZUNION/ZINTER/ZDIFF(STORE)/ZINTERCARD with numkeys < 1; `name` is the command's table name.
pub fn zset_no_keys(name: &str) -> String {
    format!("ERR at least 1 input key is needed for '{name}' command")
}
// lists
pub const LPOS_RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
pub const LPOS_COUNT_NEGATIVE: &str = "ERR COUNT can't be negative";
pub const LPOS_MAXLEN_NEGATIVE: &str = "ERR MAXLEN can't be negative";
pub const COUNT_NOT_POSITIVE: &str = "ERR count should be greater than 0";
// dump
pub const BUSYKEY: &str = "BUSYKEY Target key name already exists.";
pub const DUMP_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
pub const BAD_DATA_FORMAT: &str = "ERR Bad data format";
pub const INVALID_TTL: &str = "ERR Invalid TTL value, must be >= 0";
pub const INVALID_IDLETIME: &str = "ERR Invalid IDLETIME value, must be >= 0";
pub const INVALID_FREQ: &str = "ERR Invalid FREQ value, must be >= 0 and <= 255";

// --- cluster: cmds ---
pub const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";
pub const INVALID_SLOT: &str = "ERR Invalid or out of range slot";
pub const INVALID_SLOT_SHORT: &str = "ERR Invalid slot";
pub const INVALID_SLOT_OR_KEYS: &str = "ERR Invalid slot or number of keys";
pub const FLUSHSLOTS_DB_NOT_EMPTY: &str = "ERR DB must be empty to perform CLUSTER FLUSHSLOTS.";
pub const SETSLOT_ONLY_MASTERS: &str = "ERR Please use SETSLOT only with masters.";
pub const SETSLOT_INVALID: &str = "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP";
pub const TARGET_NOT_MASTER: &str = "ERR Target node is not a master";
pub const FORGET_MYSELF: &str = "ERR I tried hard but I can't forget myself...";
pub const FORGET_MY_MASTER: &str = "ERR Can't forget my master!";
pub const REPLICATE_MYSELF: &str = "ERR Can't replicate myself";
pub const REPLICATE_REPLICA: &str = "ERR I can only replicate a master, not a replica.";
pub const REPLICATE_NOT_EMPTY: &str = "ERR To set a master the node must be empty and without assigned slots.";
pub const NOT_A_MASTER: &str = "ERR The specified node is not a master";
pub const RESET_MASTER_WITH_KEYS: &str = "ERR CLUSTER RESET can't be called with master nodes containing keys";
pub const SET_EPOCH_NOT_ALONE: &str =
    "ERR The user can assign a config epoch only when the node does not know any other node.";
pub const SET_EPOCH_NOT_ZERO: &str = "ERR Node config epoch is already non-zero";

// --- cluster: route ---
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
pub const TRYAGAIN: &str = "TRYAGAIN Multiple keys request during rehashing of slot";
pub const CLUSTERDOWN: &str = "CLUSTERDOWN The cluster is down";
pub const CLUSTERDOWN_READ_ONLY: &str = "CLUSTERDOWN The cluster is down and only accepts read commands";
pub const CLUSTERDOWN_UNBOUND: &str = "CLUSTERDOWN Hash slot not served";
pub const SELECT_IN_CLUSTER: &str = "ERR SELECT is not allowed in cluster mode";
pub const MOVE_IN_CLUSTER: &str = "ERR MOVE is not allowed in cluster mode";
pub const SWAPDB_IN_CLUSTER: &str = "ERR SWAPDB is not allowed in cluster mode";
pub const COPY_DB_IN_CLUSTER: &str = "ERR Copying to another database is not allowed in cluster mode";

// --- cluster: migrate ---
pub const MIGRATE_KEYS_NEEDS_EMPTY_KEY: &str =
    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string";
/// Redis 7.0 says "client" here (its text, kept as is).
pub const MIGRATE_IOERR_CONNECT: &str = "IOERR error or timeout connecting to the client";
pub const MIGRATE_IOERR_WRITE: &str = "IOERR error or timeout writing to target instance";
pub const MIGRATE_IOERR_READ: &str = "IOERR error or timeout reading to target instance";

/// An error reply of the MIGRATE target, passed on (`msg` without its leading `-`).
pub fn migrate_target_error(msg: &str) -> String {
    format!("ERR Target instance replied with error: {msg}")
}

// --- proxy ---
/// A command that needs a connection of its own (transactions, blocking, pub/sub) or changes
/// connection state: not yet served through the proxy's shared connections.
pub fn proxy_unsupported(name: &str) -> String {
    format!("ERR '{name}' is not supported through the slotway proxy yet")
}
/// The redirect bound was hit: names the last node that redirected.
pub fn proxy_too_many_redirects(slot: u16, last: &str) -> String {
    format!("ERR slotway proxy: too many redirects for slot {slot} (last to {last})")
}
/// A node could not be reached (after the retries) or dropped the connection mid-request.
pub fn proxy_node_error(node: &str, why: &str) -> String {
    format!("ERR slotway proxy: node {node}: {why}")
}
/// A split command's part came back in a shape the merge cannot use.
pub fn proxy_bad_part_reply(node: &str) -> String {
    format!("ERR slotway proxy: unexpected reply from {node} to a split command")
}
pub const PROXY_PROTOCOL_VERSION: &str = "ERR Protocol version is not an integer or out of range";

// --- proxy config ---
/// HELLO from a client that has not authenticated and gave no AUTH option (Redis 7.0.15's text).
pub const NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";
/// An option HELLO does not know, or one missing its arguments (Redis 7.0.15's text).
pub fn hello_syntax(opt: &[u8]) -> String {
    format!("ERR Syntax error in HELLO option '{}'", lossy(opt, 128))
}

// --- proxy failures ---
// The `why` part of `proxy_node_error` ("ERR slotway proxy: node host:port: <why>").
/// A request's reply did not come within the request timeout; it may have run.
pub fn proxy_request_timeout(ms: u128) -> String {
    format!("request timed out after {ms} ms")
}
/// A request queued on a connection whose oldest request timed out: never written, failed at once.
pub fn proxy_not_sent_after_timeout(ms: u128) -> String {
    format!("not sent: the connection timed out (no reply within {ms} ms)")
}
/// The node's circuit breaker is open: its requests fail at once until a probe gets a reply.
pub fn proxy_circuit_open(failures: u32) -> String {
    format!("circuit breaker open after {failures} consecutive failures")
}
