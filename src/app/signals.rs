//! Ctrl-C and SIGTERM while a command runs: the first stops new requests and still writes the
//! report of what ran, the second quits at once.

use crate::probe::Interrupt;
use crate::report;

/// SIGINT and SIGTERM, listened to from the moment this is made: a Ctrl-C that comes before the
/// first request is not lost to the default action (killing the process without a report), and
/// a supervisor's SIGTERM (CI job timeouts, systemd, `timeout(1)`) gets the same partial report.
pub(super) struct CtrlC {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl CtrlC {
    /// Must run inside the runtime.
    pub(super) fn install() -> CtrlC {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            CtrlC {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            CtrlC {}
        }
    }

    /// The next Ctrl-C or SIGTERM; `false` when neither can be listened to.
    pub(super) async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) -> bool {
                match s.as_mut() {
                    Some(s) => s.recv().await.is_some(),
                    None => std::future::pending().await,
                }
            }
            if self.interrupt.is_none() && self.terminate.is_none() {
                return false;
            }
            tokio::select! {
                got = recv(&mut self.interrupt) => got,
                got = recv(&mut self.terminate) => got,
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}

/// The first Ctrl-C stops new requests and lets the run write the report of what ran; the
/// second quits at once. Once a handler is installed SIGINT no longer kills the process, so
/// the second one must be handled here too.
pub(super) async fn watch_ctrl_c(mut ctrl_c: CtrlC, interrupt: Interrupt) {
    if !ctrl_c.next().await {
        return; // No handler could be installed: Ctrl-C keeps its default, killing the process.
    }
    interrupt.trigger();
    report::warn(
        "interrupted: no new requests; finishing those in flight and writing the report of what ran (Ctrl-C again quits at once, without a report)",
    );
    if ctrl_c.next().await {
        report::warn("interrupted twice: quitting without a report");
        std::process::exit(crate::exit::INTERRUPTED);
    }
}
