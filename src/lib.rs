//! slotway: a Redis Cluster in one crate.
//!
//! Layout (dependencies point one way: `resp` <- `command` <- `cluster` <- {`node`, `proxy`} <- `up`/`main`):
//! - [`errors`]  every error text a client can see, as constants
//! - [`resp`]    RESP2/RESP3: request parser, reply writer, frame parser/encoder, codec
//! - [`command`] the one command table (from Redis's COMMAND INFO): arity, flags, key positions
//! - [`cluster`] slot math (CRC16, hash tags); topology (shards, slot map) parsed from CLUSTER replies
//! - [`node`]    the storage node: server, sessions, keyspace, one file per command family
//! - [`proxy`]   the cluster proxy: sessions, routing, multiplexed backends, redirects, splits
//! - [`up`]      `slotway up`: a local cluster of nodes on loopback, in one process
//! - [`metrics`] Prometheus recorder, metric names, per-command calls/errors/latency (hdrhistogram)
#![forbid(unsafe_code)]

pub mod cluster;
pub mod command;
pub mod errors;
pub mod metrics;
pub mod node;
pub mod proxy;
pub mod resp;
pub mod up;
