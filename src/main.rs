//! The `spillway` binary. Thin: it installs a `tracing` subscriber (stderr, `RUST_LOG`,
//! default `warn`), [`cli`] parses flags and runs the workloads; an error is one line on
//! stderr and exit status 1.

mod cli;

fn main() {
    // The library's warnings and errors (write failures, retries, an extent dir in RAM) go
    // to stderr; `RUST_LOG` picks the level (default `warn`).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    if let Err(e) = cli::main() {
        eprintln!("spillway: error: {e}");
        std::process::exit(1);
    }
}
