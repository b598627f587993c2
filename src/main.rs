//! The `ngayle` binary: parse the command line and run it. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    ngayle::cli::run(ngayle::cli::Cli::parse())
}
