//! Values stored in the keyspace. Each type lives in its own file with its Redis encodings
//! (what OBJECT ENCODING reports and what reply order follows from: a small hash keeps insertion
//! order like Redis's listpack, an all-integer set stays sorted like an intset).

pub mod hash;
pub mod list;
pub mod set;
pub mod zset;

pub use hash::Hash;
pub use list::List;
pub use set::Set;
pub use zset::ZSet;

#[derive(Debug, Clone)]
pub enum Value {
    Str(Vec<u8>),
    List(Box<List>),
    Hash(Box<Hash>),
    Set(Box<Set>),
    ZSet(Box<ZSet>),
}

impl Value {
    /// The name TYPE prints.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// The name OBJECT ENCODING prints, as Redis 7.0 would for the same history of writes.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => str_encoding(s),
            Value::List(_) => "quicklist",
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
        }
    }
}

/// Redis stores a string that is a canonical 64-bit integer as `int`, a short one (<= 44 bytes)
/// as `embstr`, the rest as `raw`.
pub fn str_encoding(s: &[u8]) -> &'static str {
    if s.len() <= 20 && crate::resp::request::parse_i64(s).is_some() {
        "int"
    } else if s.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}
