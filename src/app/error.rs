//! What stops a command before or instead of its report, and the one place where such a stop
//! becomes an exit code. The target's misbehaviour is never an error: it is a finding.

use std::io;
use std::path::PathBuf;

use crate::demo::DemoError;
use crate::exit;
use crate::host::merge::MergeError;
use crate::lab::LabError;
use crate::logs::LogsError;
use crate::scenario_job::JobError;

/// Failures of the input or of lbprobe itself.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Flags that do not parse or do not go together.
    #[error("{0}")]
    Usage(String),
    /// A scenario file that does not load (`file:line:column`), or a bad `--var`.
    #[error(transparent)]
    Scenario(#[from] JobError),
    /// A replay's request that does not read (`what, line L column C: why`).
    #[error(transparent)]
    Replay(#[from] crate::replay::ParseError),
    /// A replay's request file that cannot be read.
    #[error("cannot read {path}: {source}")]
    Input { path: String, source: io::Error },
    /// Access logs that cannot be read as asked.
    #[error(transparent)]
    Logs(#[from] LogsError),
    /// `merge`'s two reports.
    #[error(transparent)]
    Merge(#[from] MergeInputError),
    /// The lab of `lbprobe lab` did not start.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The demo's lab did not start, or its embedded scenario did not load.
    #[error(transparent)]
    Demo(#[from] DemoError),
    /// Output that cannot be written (a file, stdout, the man page).
    #[error("cannot write {path}: {source}")]
    Output { path: PathBuf, source: io::Error },
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    /// `serve`'s config that does not load (`file:line:column`).
    #[error(transparent)]
    ServeConfig(#[from] crate::serve::ConfigError),
    /// `serve` cannot listen where it was told to.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
}

impl AppError {
    /// The process exit code (README, "Exit codes"): the input's fault is [`exit::BAD_INPUT`],
    /// lbprobe's own is [`exit::CANNOT_RUN`].
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Usage(_)
            | AppError::Scenario(_)
            | AppError::Logs(_)
            | AppError::Merge(_)
            | AppError::Replay(_)
            | AppError::ServeConfig(_)
            | AppError::Input { .. } => exit::BAD_INPUT,
            AppError::Demo(e) => match e {
                // The demo's scenario is embedded: when it does not load, lbprobe is at fault.
                DemoError::Lab(_) | DemoError::Scenario(_) => exit::CANNOT_RUN,
                // `lab --hostile` with a kind that does not exist.
                DemoError::Hostile(_) => exit::BAD_INPUT,
            },
            AppError::Lab(_)
            | AppError::Output { .. }
            | AppError::Runtime(_)
            | AppError::Listen { .. } => exit::CANNOT_RUN,
        }
    }
}

/// The exit code of a command line clap refused or answered itself: `--help` and `--version`
/// are answers, anything else is bad flags.
pub fn parse_exit_code(e: &clap::Error) -> i32 {
    if e.use_stderr() {
        exit::BAD_INPUT
    } else {
        exit::OK
    }
}

/// Why `lbprobe merge` cannot join the two reports it was given.
#[derive(Debug, thiserror::Error)]
pub enum MergeInputError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: not a {which} JSON report: {source}", path.display())]
    NotAReport {
        path: PathBuf,
        /// `client` or `backend`.
        which: &'static str,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Merge(#[from] MergeError),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lab that does not start is lbprobe's failure, not the person's input.
    #[test]
    fn our_failures_are_not_bad_input() {
        let lab = AppError::Lab(LabError::NginxNotFound {
            looked_for: "/usr/sbin/nginx".into(),
        });
        assert_eq!(lab.exit_code(), exit::CANNOT_RUN);
        let output = AppError::Output {
            path: "report.json".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(output.exit_code(), exit::CANNOT_RUN);
        assert_eq!(
            AppError::Usage("--port".into()).exit_code(),
            exit::BAD_INPUT
        );
        let merge = AppError::Merge(MergeInputError::Merge(MergeError::NoCapture));
        assert_eq!(merge.exit_code(), exit::BAD_INPUT);
    }
}
