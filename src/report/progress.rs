//! Progress on stderr (indicatif), hidden when stderr is not a terminal or with `--quiet`, so it
//! never mixes with JSON on stdout. Causes confirmed while the run goes on are printed above the
//! bar as soon as they are known; the report on stdout is the same with or without them.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::classify::{Finding, Verdict};
use crate::early::Announce;
use crate::probe::{Progress, ProgressFn};

use super::style::{self, look, Style};

pub struct ProgressDisplay {
    bar: ProgressBar,
    visible: bool,
}

impl ProgressDisplay {
    pub fn new(quiet: bool) -> ProgressDisplay {
        let visible = !quiet && std::io::stderr().is_terminal();
        let bar = if visible {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        if visible {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        ProgressDisplay { bar, visible }
    }

    pub fn callback(&self) -> ProgressFn {
        let bar = self.bar.clone();
        let families = Arc::new(std::sync::Mutex::new((0usize, 0usize)));
        Arc::new(move |event| {
            let mut f = families.lock().unwrap_or_else(|p| p.into_inner());
            match event {
                Progress::Planned { families } => f.1 = families.len(),
                Progress::FamilyDone { .. } => f.0 += 1,
                Progress::Observed { .. } => {}
                Progress::Request { sent } => bar.set_message(format!(
                    "{} · {}/{} probe families done",
                    crate::plural::count(sent, "request"),
                    f.0,
                    f.1
                )),
            }
        })
    }

    /// Who prints causes above the bar as they are confirmed: only when the bar is shown (a
    /// terminal, no `--quiet`), so pipes, files and CI logs get the report alone.
    pub fn announcer(&self, color: bool) -> Option<Arc<dyn Announce>> {
        self.visible.then(|| {
            Arc::new(AboveTheBar {
                bar: self.bar.clone(),
                style: Style {
                    color,
                    width: style::width_of(&std::io::stderr()),
                    verbose: false,
                },
            }) as Arc<dyn Announce>
        })
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Lines printed above the progress bar, which stay on the terminal when it is cleared.
struct AboveTheBar {
    bar: ProgressBar,
    style: Style,
}

impl AboveTheBar {
    fn print(&self, text: &str) {
        let s = self.style;
        let at = format!("{:>6.1} s  ", self.bar.elapsed().as_secs_f64());
        self.bar
            .println(style::wrap(text, s.width, &at, "           "));
    }
}

impl Announce for AboveTheBar {
    fn confirmed(&self, f: &Finding) {
        let s = self.style;
        self.print(&format!(
            "{} {}: {}",
            s.paint(look::ALARM, "confirmed"),
            s.bold(&f.cause),
            f.reason
        ));
    }

    fn withdrawn(&self, cause: &str, verdict: Option<Verdict>) {
        let s = self.style;
        let now = verdict.map_or("no finding".to_string(), |v| v.to_string());
        self.print(&format!(
            "{} {}: with every probe in, the run says {now}; the report below is what counts",
            s.paint(look::WARN, "withdrawn"),
            s.bold(cause)
        ));
    }
}
