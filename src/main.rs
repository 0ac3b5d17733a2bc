//! `sluice`: Knative Eventing (sources, brokers, channels, triggers) and the scale-from-zero
//! core of Knative Serving in one binary.
//!
//! The binary is thin: it parses the command line and wires the crates together. `run` starts
//! the embedded control plane; `apply`, `get`, `describe`, `delete` talk to its resource API;
//! `send` posts CloudEvents; `validate` and `crds` work offline; `bench` measures the data path.

mod alloc;
mod cli;

/// mimalloc instead of glibc malloc: the event path allocates per event on every worker thread,
/// and glibc's arena locks showed up in profiles of `sluice bench broker`.
#[global_allocator]
static ALLOCATOR: alloc::MiMalloc = alloc::MiMalloc;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::dispatch(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
