//! How human output is drawn: colour (anstyle, only where anstream's rules allow it), the width
//! it is wrapped to, and how much of it is shown.

use crate::classify::Verdict;

/// The width human output is wrapped to when it does not go to a terminal (a file, a pipe, a
/// test): fixed, so that what is written there does not depend on who ran it.
pub const DEFAULT_WIDTH: usize = 100;

/// Below this the table's WHY column would be a few words a line; narrower terminals get this
/// width and wrap on their own.
pub const MIN_WIDTH: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
    /// Columns to wrap to.
    pub width: usize,
    /// Every row and every piece of evidence (`-v`), instead of folding the rest.
    pub verbose: bool,
}

/// Looks text can take; what each means is fixed here, not at the call sites.
pub mod look {
    use anstyle::{AnsiColor, Color, Effects, Style};

    const fn fg(c: AnsiColor) -> Style {
        Style::new().fg_color(Some(Color::Ansi(c)))
    }

    pub const BOLD: Style = Style::new().effects(Effects::BOLD);
    pub const DIM: Style = Style::new().effects(Effects::DIMMED);
    /// Something is wrong: a confirmed fault, an unmet expectation, an unreachable target.
    pub const ALARM: Style = fg(AnsiColor::Red).effects(Effects::BOLD);
    /// Worth a look: a reproduced trigger, a listener that answered itself.
    pub const WARN: Style = fg(AnsiColor::Yellow);
    /// As it should be.
    pub const GOOD: Style = fg(AnsiColor::Green);
    pub const CYAN: Style = fg(AnsiColor::Cyan);
    pub const MAGENTA: Style = fg(AnsiColor::Magenta);
}

impl Style {
    /// No colour, the fixed width, folded: what files, pipes and tests get.
    pub fn plain() -> Style {
        Style {
            color: false,
            width: DEFAULT_WIDTH,
            verbose: false,
        }
    }

    pub fn paint(&self, look: anstyle::Style, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("{}{text}{}", look.render(), look.render_reset())
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(look::BOLD, text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint(look::DIM, text)
    }

    /// A verdict padded to `width`, colored by what it means for the person reading.
    pub fn verdict(&self, v: Verdict, width: usize) -> String {
        let text = format!("{:<width$}", v.as_str());
        self.paint(verdict_look(v), &text)
    }
}

pub fn verdict_look(v: Verdict) -> anstyle::Style {
    match v {
        Verdict::Confirmed => look::ALARM,
        Verdict::Reproduced => look::WARN,
        Verdict::RuledOut => look::GOOD,
        Verdict::Inconclusive => look::DIM,
    }
}

/// Wrapping that keeps ids, URLs and hyphenated words whole (textwrap; escapes do not count
/// towards the width, so colour never moves a line break).
pub fn options<'a>(width: usize, first: &'a str, rest: &'a str) -> textwrap::Options<'a> {
    textwrap::Options::new(width)
        .initial_indent(first)
        .subsequent_indent(rest)
        .break_words(false)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
}

/// `text` wrapped to `width` with these indents, as one string without a final newline.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    textwrap::fill(text, options(width, first, rest))
}

/// Colour for a stream under `--color auto`: anstream's rules (NO_COLOR, CLICOLOR,
/// CLICOLOR_FORCE, TERM=dumb, a terminal or not).
pub fn auto_color<S: anstream::stream::RawStream>(stream: &S) -> bool {
    anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never
}

/// The width of the terminal behind `stream`, or [`DEFAULT_WIDTH`] when it is not one.
#[cfg(unix)]
pub fn width_of(stream: &impl std::os::fd::AsFd) -> usize {
    match terminal_size::terminal_size_of(stream) {
        Some((terminal_size::Width(w), _)) => usize::from(w).max(MIN_WIDTH),
        None => DEFAULT_WIDTH,
    }
}

#[cfg(not(unix))]
pub fn width_of<S>(_stream: &S) -> usize {
    DEFAULT_WIDTH
}
