//! The `ruleiq` command. It only wires: parse the command line, load settings, start
//! the runtime, run the chosen command, turn its outcome into an exit code.

use std::process::ExitCode;

/// jemalloc: a request allocates and frees many small buffers across threads, which
/// the system allocator serves markedly slower (measured in docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    ruleiq_server::cli::main()
}
