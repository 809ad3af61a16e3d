//! The `slotway` binary: argument parsing only.

use clap::{Parser, Subcommand};

/// mimalloc (its v2 line) instead of glibc malloc: under pipelined load the proxy keeps thousands
/// of small per-request allocations alive at once, more than glibc's per-thread cache holds, and
/// glibc's slow path was 12% of the proxy's instructions (callgrind, 16-deep pipelines of GET);
/// with mimalloc it is under 3%. A node loaded with 1M 100-byte values also holds 5% less memory
/// (217.8 MB with glibc, 207.2 MB with mimalloc; redis-server with its jemalloc: 217.6 MB).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "slotway", version, about = "A Redis Cluster in Rust: storage nodes and a cluster-aware proxy")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one storage node. Takes redis-server's arguments: an optional redis.conf path, then
    /// `--option value` pairs (`--port 7000 --save "" --appendonly yes --requirepass secret`).
    /// Every option of the node is listed by `CONFIG GET *`.
    Node {
        /// [redis.conf] [--option value ...]
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Run a local cluster on 127.0.0.1 in this one process: `--masters` masters on ports
    /// `--port`, `--port`+1, ... (cluster bus ports +10000), slots split like `redis-cli --cluster
    /// create`. Prints where to connect (`redis-cli -c -p 7000`); Ctrl-C or SIGTERM stops every node.
    /// Each node keeps its files in `<dir>/node-<port>/`; a second run on the same directory comes
    /// back as the same cluster (node ids, epochs, slots from each node's nodes.conf). Keys are
    /// kept in memory only for now: until persistence lands, a restart keeps the cluster
    /// configuration but not the keys. Node log lines are shown from level warn (RUST_LOG overrides).
    Up {
        /// Data directory; created if missing, reused if present.
        #[arg(long, default_value = slotway::up::DEFAULT_DIR)]
        dir: std::path::PathBuf,
        /// Client port of the first node; the others take the next ports.
        #[arg(long, default_value_t = slotway::up::DEFAULT_PORT)]
        port: u16,
        /// Number of master nodes.
        #[arg(long, default_value_t = slotway::up::DEFAULT_MASTERS, value_parser = clap::value_parser!(u16).range(1..=1000))]
        masters: u16,
        /// cluster-node-timeout of every node, in milliseconds.
        #[arg(long, default_value_t = slotway::up::DEFAULT_NODE_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(100..))]
        node_timeout: u64,
        /// Client port of the proxy in front of the cluster.
        #[arg(long, default_value_t = slotway::up::DEFAULT_PROXY_PORT)]
        proxy_port: u16,
        /// Run the cluster without the proxy.
        #[arg(long)]
        no_proxy: bool,
    },
    /// Run the cluster proxy: clients that know nothing about clusters connect to `--listen` and
    /// see one Redis; requests are routed by slot to the cluster found from the seed nodes.
    /// Works in front of a Redis 7 cluster or a slotway cluster. Settings come from `-c FILE`
    /// (every key is documented in config/proxy.yaml); the flags below override the file.
    Proxy {
        /// YAML configuration file (see config/proxy.yaml); flags given here win over it.
        #[arg(short = 'c', long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// Address to accept clients on: host:port, or unix:/path for a unix socket; repeat for
        /// more. Replaces the file's `listen` list. Default: 127.0.0.1:6380.
        #[arg(long, value_name = "ADDR")]
        listen: Vec<String>,
        /// A cluster node to discover the topology from (host:port); repeat for more. Replaces the
        /// file's `seeds` list. Seeds are required, from the file or from here.
        #[arg(long = "seed", value_name = "HOST:PORT")]
        seeds: Vec<String>,
        /// Worker threads (each with its own backend connections); default: the CPU count.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: Option<u16>,
        /// Where reads go: master, prefer-replica, replica or round-robin (default: master).
        #[arg(long, value_name = "POLICY", value_parser = clap::builder::PossibleValuesParser::new(slotway::proxy::ReadFrom::NAMES))]
        read_from: Option<String>,
        /// HTTP address serving /metrics (Prometheus) and /healthz.
        #[arg(long, value_name = "HOST:PORT")]
        admin: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Node { args } => {
            let config = match slotway::node::config::Config::from_args(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("*** FATAL CONFIG ERROR *** {e}");
                    std::process::exit(1);
                }
            };
            init_logging(config.get("loglevel").unwrap_or("notice"), config.get("logfile").unwrap_or(""))?;
            slotway::node::run(config, |_| {})?;
        }
        Cmd::Up { dir, port, masters, node_timeout, proxy_port, no_proxy } => {
            init_up_logging();
            let proxy_port = (!no_proxy).then_some(proxy_port);
            let opts = slotway::up::Options { dir, port, masters, node_timeout_ms: node_timeout, proxy_port };
            if let Err(e) = slotway::up::run(&opts, &mut std::io::stdout()) {
                eprintln!("slotway up: {e}");
                std::process::exit(1);
            }
        }
        Cmd::Proxy { config, listen, seeds, threads, read_from, admin } => {
            let flags = slotway::proxy::config::Flags {
                config,
                listen,
                seeds,
                threads: threads.map(usize::from),
                read_from,
                admin,
            };
            let opts = match slotway::proxy::config::load(&flags) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("slotway proxy: {e}");
                    std::process::exit(1);
                }
            };
            init_logging("notice", "")?;
            if let Err(e) = slotway::proxy::run(opts) {
                eprintln!("slotway proxy: {e}");
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

fn init_logging(level: &str, file: &str) -> anyhow::Result<()> {
    let filter = match level {
        "debug" | "verbose" => "debug",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()))
        .with_target(false);
    if file.is_empty() {
        builder.with_writer(std::io::stdout).init();
    } else {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
        builder.with_ansi(false).with_writer(std::sync::Mutex::new(f)).init();
    }
    Ok(())
}

/// The nodes of `up` share one terminal with the banner: warnings only by default, on stderr,
/// each line naming its node's thread (`node-7000`).
fn init_up_logging() {
    // `up` reports its nodes' failures itself; its proxy's lost-connection warnings would only
    // repeat them (every Ctrl-C stops the nodes under the proxy's connections).
    let default = "warn,slotway::proxy::backend=error";
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into()))
        .with_target(false)
        .with_thread_names(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
