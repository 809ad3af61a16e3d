//! Cluster primitives shared by nodes and the proxy: slot math (CRC16, hash tags) and the
//! topology a router works from, parsed from the CLUSTER SHARDS / SLOTS / NODES replies that the
//! nodes write.

pub mod slot;
pub mod topology;

pub use slot::{key_slot, SLOTS};
pub use topology::{Addr, Health, NodeInfo, Role, Shard, Topology, TopologyDiff, TopologyError};
