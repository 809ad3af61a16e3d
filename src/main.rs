//! The `slotway` binary: argument parsing only.

use clap::{Parser, Subcommand};

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
