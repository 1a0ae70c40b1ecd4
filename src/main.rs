//! The binary: parse the command line, call the library, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match lbprobe::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                lbprobe::exit::BAD_INPUT as u8
            } else {
                0
            });
        }
    };
    match lbprobe::app::run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("lbprobe: {e:#}");
            ExitCode::from(lbprobe::exit::BAD_INPUT as u8)
        }
    }
}
