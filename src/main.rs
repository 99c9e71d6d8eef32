//! The `spillway` binary. Thin: [`cli`] parses flags and runs the workloads; an error is one
//! line on stderr and exit status 1.

mod cli;

fn main() {
    if let Err(e) = cli::main() {
        eprintln!("spillway: error: {e}");
        std::process::exit(1);
    }
}
