//! The binary: parse the command line, call the library, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match lbprobe::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout and usage errors to stderr.
            let _ = e.print();
            return code(lbprobe::app::parse_exit_code(&e));
        }
    };
    match lbprobe::app::run(cli) {
        Ok(status) => code(status),
        Err(e) => {
            // The message only: each already ends with its cause ("cannot write x: Permission
            // denied"), so printing the source chain too (anyhow's `{:#}`) said it twice.
            eprintln!("lbprobe: {e}");
            code(e.exit_code())
        }
    }
}

fn code(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status).unwrap_or(u8::MAX))
}
