//! ANSI styling, applied only when the output is a terminal (and NO_COLOR is unset).

use crate::classify::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    /// A verdict padded to `width`, colored by what it means for the person reading.
    pub fn verdict(&self, v: Verdict, width: usize) -> String {
        let text = format!("{:<width$}", v.as_str());
        let code = match v {
            Verdict::Confirmed => "1;31",
            Verdict::Reproduced => "33",
            Verdict::RuledOut => "32",
            Verdict::Inconclusive => "2",
        };
        self.paint(code, &text)
    }
}
