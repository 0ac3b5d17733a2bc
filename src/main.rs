//! `sluice`: the Knative Eventing API (brokers, triggers, channels, subscriptions, sequences,
//! parallels) in one binary. Sources and the serving core are the next issues; their kinds are
//! validated and stored today, not served.
//!
//! The binary is thin: it parses the command line and wires the crates together. `run` starts
//! the embedded control plane; `apply`, `get`, `describe`, `delete` talk to its resource API;
//! `send` posts CloudEvents; `validate` and `crds` work offline; `bench` measures the data path.

mod cli;

/// mimalloc instead of glibc malloc: the event path allocates per event on every worker thread,
/// and glibc's arena locks showed up in profiles of `sluice bench broker`.
///
/// Through the maintained `mimalloc` crate. An earlier hand-made shim called plain `mi_malloc`
/// for layouts of 16-byte alignment or less, relying on an alignment rule of mimalloc v2's
/// internals; measured on 2026-12-02 (release profile, callgrind, `bench broker --only 2`) it
/// saved 1,700 of 116,800 instructions per event (1.5 %), and paired wall-clock runs could not
/// tell the two apart (Sluice/baseline 0.46 and 0.41 with the shim, 0.45 and 0.42 without).
/// Not worth unsafe code whose soundness depends on another project's internals.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

/// Opts the process out of transparent huge pages. mimalloc reserves a 1 GiB arena and advises
/// huge pages on it, so every 2 MiB region it touches becomes resident whole: measured on
/// 2026-12-03, `sluice run` started at 34 MiB RSS with them and 22 MiB without, and carried
/// over 100 MiB of huge pages after `sluice bench control`. A small control plane and gateway
/// is better served by resident memory that tracks what it uses.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        eprintln!(
            "warning: cannot opt out of transparent huge pages: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (libmimalloc-sys names no constant
/// for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc return freed memory to the OS at once instead of after its default 10 ms
/// delay, whose delayed purges only run on later allocations of the same thread and were left
/// pending when the control plane went idle. Measured on 2026-12-03 (release, 2 cores):
/// `sluice bench control` RSS 102 MiB with the default and 73 MiB with immediate purging, and
/// `sluice bench broker` 20,168 against 19,841 events/s at 97.8 and 97.2 µs CPU per event:
/// no cost on the event path.
fn purge_freed_memory_at_once() {
    // SAFETY: `mi_option_set` takes an option number and a value, and only stores the value.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

fn main() -> std::process::ExitCode {
    disable_transparent_huge_pages();
    purge_freed_memory_at_once();
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
        // The reader of our output went away (`sluice crds | head -1`): stop quietly, as Unix
        // tools do.
        Err(e) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Whether `e` is, or was caused by, a write to a closed pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
