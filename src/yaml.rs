//! The only file of the crate that speaks serde_yaml (deprecated upstream): the scenario's
//! parse (finding where a value sits in the text, turning the library's errors into
//! [`YamlProblem`]s) and the embedded data files' ([`data`]: the causes catalogue, the probe
//! templates). Replacing the YAML library means rewriting this file alone. It knows nothing of
//! what the documents mean.
//!
//! serde_yaml does not hand positions to `Deserialize` impls, only to its errors: an error
//! raised while a value is being visited carries that value's line and column. [`Marked`]
//! uses this. Every `Marked` value gets a number in the order the parser meets it; to learn
//! where value N sits, [`locate`] parses the same text again and makes value N fail, and
//! reads the position off the error. A second parse only happens for a value that needs a
//! position (an error, an `expect` line), so the common path costs one parse.

use std::cell::Cell;
use std::convert::Infallible;
use std::fmt;

use serde::de::{Deserialize, DeserializeOwned, Deserializer, Visitor};

/// What is wrong with a document, in the words a scenario error is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum YamlProblem {
    Syntax {
        message: String,
    },
    Tag {
        tag: String,
    },
    UnknownKey {
        key: String,
        expected: Vec<String>,
    },
    MissingKey {
        path: Option<String>,
        key: String,
    },
    DuplicateKey {
        key: String,
    },
    WrongType {
        path: Option<String>,
        found: String,
        expected: String,
    },
}

/// Which [`Marked`] value of a parse, numbered in the order the parser met them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkId(usize);

/// A value and the means to find where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Marked<T> {
    pub value: T,
    pub id: MarkId,
}

thread_local! {
    /// Number for the next `Marked` value met in the current parse.
    static NEXT_MARK: Cell<usize> = const { Cell::new(0) };
    /// The `Marked` value that must fail, during a [`locate`] parse.
    static STOP_AT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Text no real error message contains: it tells the deliberate failure from a real one.
const STOP_SIGNAL: &str = "\u{1}lbprobe-scenario-locate\u{1}";

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Marked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = NEXT_MARK.with(|next| {
            let id = next.get();
            next.set(id + 1);
            id
        });
        if STOP_AT.with(Cell::get) == Some(id) {
            // Failing inside a visit (not before it) is what makes serde_yaml attach the
            // position of this value rather than of its parent.
            return deserializer
                .deserialize_any(Stop)
                .map(|never| match never {});
        }
        T::deserialize(deserializer).map(|value| Marked {
            value,
            id: MarkId(id),
        })
    }
}

/// A visitor that rejects whatever it is shown: every default `visit_*` reports an invalid
/// type, and the message carries [`STOP_SIGNAL`] through `expecting`.
struct Stop;

impl Visitor<'_> for Stop {
    type Value = Infallible;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(STOP_SIGNAL)
    }
}

/// Resets the numbering for one parse, and clears the stop request however the parse ends.
struct Session;

impl Session {
    fn start(stop_at: Option<MarkId>) -> Session {
        NEXT_MARK.with(|next| next.set(0));
        STOP_AT.with(|stop| stop.set(stop_at.map(|id| id.0)));
        Session
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        NEXT_MARK.with(|next| next.set(0));
        STOP_AT.with(|stop| stop.set(None));
    }
}

/// Any YAML document without tags. serde_yaml hands a tagged value (`targets: !evil`) to a
/// struct as if the tag were not there; the format has no tags, so a tag is an error, at the
/// tagged value, instead of a silent drop.
struct Untagged;

/// Marks the error a tag raises, so [`translate`] can tell it from serde's own messages.
const TAG_SIGNAL: &str = "\u{1}lbprobe-yaml-tag\u{1}";

impl<'de> Deserialize<'de> for Untagged {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UntaggedVisitor)
    }
}

struct UntaggedVisitor;

impl<'de> Visitor<'de> for UntaggedVisitor {
    type Value = Untagged;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Untagged, E> {
        Ok(Untagged)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Untagged, E> {
        Ok(Untagged)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Untagged, E> {
        Ok(Untagged)
    }
    fn visit_i128<E>(self, _: i128) -> Result<Untagged, E> {
        Ok(Untagged)
    }
    fn visit_u128<E>(self, _: u128) -> Result<Untagged, E> {
        Ok(Untagged)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Untagged, E> {
        Ok(Untagged)
    }
    fn visit_str<E>(self, _: &str) -> Result<Untagged, E> {
        Ok(Untagged)
    }
    fn visit_unit<E>(self) -> Result<Untagged, E> {
        Ok(Untagged)
    }
    fn visit_none<E>(self) -> Result<Untagged, E> {
        Ok(Untagged)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Untagged, D::Error> {
        Untagged::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Untagged, A::Error> {
        while seq.next_element::<Untagged>()?.is_some() {}
        Ok(Untagged)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Untagged, A::Error> {
        while map.next_entry::<Untagged, Untagged>()?.is_some() {}
        Ok(Untagged)
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Untagged, A::Error> {
        let (tag, _) = data.variant::<String>()?;
        Err(serde::de::Error::custom(format!(
            "{TAG_SIGNAL}{tag}{TAG_SIGNAL}"
        )))
    }
}

/// A YAML or shape error, with byte offsets into the parsed text.
#[derive(Debug)]
pub(crate) struct YamlError {
    /// Where the problem is; `None` when the library did not say.
    pub offset: Option<usize>,
    pub problem: YamlProblem,
    /// For syntax errors, the construct being parsed and where it began.
    pub context: Option<(String, Option<usize>)>,
}

/// Parses `text` into `T`.
pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Box<YamlError>> {
    // serde_yaml keeps the events before a syntax error and reports the error only when
    // deserialization reaches it, so a shape error in the part before would hide it: an
    // unclosed `[` would read as "found sequence". A first pass that accepts any shape
    // surfaces syntax errors first.
    serde_yaml::from_str::<Untagged>(text).map_err(|e| translate(text, &e))?;
    let _session = Session::start(None);
    serde_yaml::from_str(text).map_err(|e| translate(text, &e))
}

/// The byte offset in `text` of the value marked `id` by a previous successful [`parse`] of
/// the same text into the same `T`.
pub(crate) fn locate<T: DeserializeOwned>(text: &str, id: MarkId) -> Option<usize> {
    let _session = Session::start(Some(id));
    match serde_yaml::from_str::<T>(text) {
        Err(e) if e.to_string().contains(STOP_SIGNAL) => e.location().map(|l| l.index()),
        _ => None,
    }
}

/// An embedded data file (the causes catalogue, the probe templates) into `T`, with the
/// library's own message on failure: these are checked by tests, not written by the person.
pub(crate) fn data<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_yaml::from_str(text).map_err(|e| e.to_string())
}

fn translate(text: &str, error: &serde_yaml::Error) -> Box<YamlError> {
    let location = error.location();
    let offset = location.as_ref().map(|l| l.index());
    let mut message = error.to_string();
    if let Some(l) = &location {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(at) = message.find(&suffix) {
            message.replace_range(at..at + suffix.len(), "");
        }
    }
    if let Some(tag) = message.split(TAG_SIGNAL).nth(1) {
        return Box::new(YamlError {
            offset,
            problem: YamlProblem::Tag {
                tag: tag.to_string(),
            },
            context: None,
        });
    }
    if let Some(problem) = shape_problem(&message) {
        return Box::new(YamlError {
            offset,
            problem,
            context: None,
        });
    }
    // libyaml's own messages: "problem, while parsing X at line L column C".
    let (problem, context) = match message.split_once(", ") {
        Some((problem, context)) => (problem.to_string(), Some(split_context(text, context))),
        None => (message, None),
    };
    Box::new(YamlError {
        offset,
        problem: YamlProblem::Syntax { message: problem },
        context,
    })
}

/// "while parsing a block mapping at line 2 column 1" → the words and the byte offset.
fn split_context(text: &str, context: &str) -> (String, Option<usize>) {
    let Some((words, mark)) = context.rsplit_once(" at line ") else {
        return (context.to_string(), None);
    };
    let position = mark.split_once(" column ").and_then(|(line, column)| {
        let line: usize = line.trim().parse().ok()?;
        let column: usize = column.trim().parse().ok()?;
        offset_of(text, line, column)
    });
    (words.to_string(), position)
}

/// Byte offset of a 1-based line and character column.
fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum();
    let rest = text.get(start..)?;
    let within = rest
        .char_indices()
        .nth(column.checked_sub(1)?)
        .map_or(rest.len(), |(i, _)| i);
    Some(start + within)
}

/// serde's own messages about the shape of the document (unknown or missing keys, wrong
/// types), rewritten in our words. `None` for anything else.
fn shape_problem(message: &str) -> Option<YamlProblem> {
    const SHAPES: [&str; 5] = [
        "unknown field `",
        "missing field `",
        "duplicate field `",
        "invalid type: ",
        "invalid value: ",
    ];
    let (at, shape) = SHAPES
        .iter()
        .filter_map(|s| message.find(s).map(|at| (at, *s)))
        .min()?;
    // serde_yaml puts the path of the value first: "targets.listener: missing field `url`".
    let path = message[..at]
        .strip_suffix(": ")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let rest = &message[at + shape.len()..];
    Some(match shape {
        "unknown field `" => {
            let (key, expected) = rest.split_once('`')?;
            YamlProblem::UnknownKey {
                key: key.to_string(),
                expected: backticked(expected),
            }
        }
        "missing field `" => YamlProblem::MissingKey {
            path,
            key: rest.split_once('`')?.0.to_string(),
        },
        "duplicate field `" => YamlProblem::DuplicateKey {
            key: rest.split_once('`')?.0.to_string(),
        },
        _ => {
            let (found, expected) = rest.rsplit_once(", expected ")?;
            YamlProblem::WrongType {
                path,
                found: found.to_string(),
                expected: expected.to_string(),
            }
        }
    })
}

/// The names between backticks: "expected one of `a`, `b`" → [a, b].
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_characters_within_a_line() {
        let text = "a: 1\nbé: 2\n";
        assert_eq!(offset_of(text, 1, 1), Some(0));
        assert_eq!(offset_of(text, 2, 3), Some(8));
        assert_eq!(offset_of(text, 3, 1), Some(text.len()));
    }

    #[test]
    fn backticked_names() {
        assert_eq!(
            backticked(", expected one of `a`, `b-c`, `d`"),
            vec!["a", "b-c", "d"]
        );
        assert!(backticked(", there are no fields").is_empty());
    }
}
