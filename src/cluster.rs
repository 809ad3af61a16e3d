//! Cluster primitives shared by nodes and the proxy: slot math now; topology types and the
//! CLUSTER reply formats (SLOTS/SHARDS/NODES) arrive with cluster mode.

pub mod slot;

pub use slot::{key_slot, SLOTS};
