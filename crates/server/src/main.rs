//! The `ruleiq` command. It only wires: parse the command line, load settings, start
//! the runtime, run the chosen command, turn its outcome into an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    ruleiq_server::cli::main()
}
