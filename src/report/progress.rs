//! Progress on stderr (indicatif), hidden when stderr is not a terminal or with `--quiet`, so it
//! never mixes with JSON on stdout.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::probe::{Progress, ProgressFn};

pub struct ProgressDisplay {
    bar: ProgressBar,
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
        ProgressDisplay { bar }
    }

    pub fn callback(&self) -> ProgressFn {
        let bar = self.bar.clone();
        let families = Arc::new(std::sync::Mutex::new((0usize, 0usize)));
        Arc::new(move |event| {
            let mut f = families.lock().unwrap_or_else(|p| p.into_inner());
            match event {
                Progress::Planned { families } => f.1 = families.len(),
                Progress::FamilyDone { .. } => f.0 += 1,
                Progress::Request { sent } => bar.set_message(format!(
                    "{sent} requests · {}/{} probe families done",
                    f.0, f.1
                )),
            }
        })
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
