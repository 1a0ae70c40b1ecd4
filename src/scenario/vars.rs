//! `${NAME}` substitution before parsing, and the map from offsets in the substituted text
//! back to the file as written (errors point at what the person wrote).

use super::error::Problem;

/// One replaced span: `old` in the file became `new` in the substituted text.
#[derive(Debug, Clone, Copy)]
struct Edit {
    old_start: usize,
    old_end: usize,
    new_start: usize,
    new_end: usize,
}

/// Maps byte offsets in the substituted text back to the original text.
#[derive(Debug, Default)]
pub(crate) struct OffsetMap {
    /// In increasing order, non-overlapping.
    edits: Vec<Edit>,
    /// The values that went in, in order: an error must never show one. Taken from the
    /// substitution itself, not from a second scan of the text, so `$${${NAME}` and the
    /// like cannot make the two disagree.
    values: Vec<String>,
}

impl OffsetMap {
    /// An offset inside a substituted value maps to the `$` that introduced it.
    pub fn to_original(&self, offset: usize) -> usize {
        let mut shifted = offset;
        for e in &self.edits {
            if offset < e.new_start {
                break;
            }
            if offset < e.new_end {
                return e.old_start;
            }
            shifted = e.old_end + (offset - e.new_end);
        }
        shifted
    }

    /// The values substituted into the text.
    pub fn values(&self) -> &[String] {
        &self.values
    }
}

/// Replaces every `${NAME}` with `vars(NAME)` and every `$${` with `${`. On error, the byte
/// offset of the offending `$` in `text`.
pub(crate) fn substitute(
    text: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, OffsetMap), (usize, Problem)> {
    let mut out = String::with_capacity(text.len());
    let mut map = OffsetMap::default();
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find('$') {
        let dollar = search + found;
        let rest = &text[dollar..];
        let (old_len, replacement) = if rest.starts_with("$${") {
            (3, "${".to_string())
        } else if let Some(body) = rest.strip_prefix("${") {
            let name = body
                .split_once('}')
                .map(|(name, _)| name)
                .filter(|name| is_name(name))
                .ok_or((dollar, Problem::BadVariable))?;
            let value = vars(name).ok_or_else(|| {
                (
                    dollar,
                    Problem::UndefinedVariable {
                        name: name.to_string(),
                    },
                )
            })?;
            // A line break would let a value add keys to the document, and would shift
            // every line number after it.
            if value.contains(['\n', '\r']) {
                return Err((
                    dollar,
                    Problem::MultilineVariable {
                        name: name.to_string(),
                    },
                ));
            }
            map.values.push(value.clone());
            (name.len() + 3, value)
        } else {
            search = dollar + 1;
            continue;
        };
        out.push_str(&text[copied..dollar]);
        let new_start = out.len();
        out.push_str(&replacement);
        map.edits.push(Edit {
            old_start: dollar,
            old_end: dollar + old_len,
            new_start,
            new_end: out.len(),
        });
        copied = dollar + old_len;
        search = copied;
    }
    out.push_str(&text[copied..]);
    Ok((out, map))
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("127.0.0.1:8080".into()),
            "EMPTY" => Some(String::new()),
            "TWO_LINES" => Some("a\nb".into()),
            _ => None,
        }
    }

    #[test]
    fn replaces_and_maps_offsets_back() {
        let text = "url: http://${HOST}/x # $${KEEP} $5";
        let (out, map) = substitute(text, &vars).unwrap();
        assert_eq!(out, "url: http://127.0.0.1:8080/x # ${KEEP} $5");
        // Before the first edit: unchanged.
        assert_eq!(map.to_original(5), 5);
        // Inside the value: the `$`.
        assert_eq!(map.to_original(15), text.find("${HOST}").unwrap());
        // After it: "/x" in both.
        assert_eq!(
            map.to_original(out.find("/x").unwrap()),
            text.find("/x").unwrap()
        );
        assert_eq!(
            map.to_original(out.find("$5").unwrap()),
            text.find("$5").unwrap()
        );
    }

    #[test]
    fn empty_value_and_no_variables() {
        let (out, _) = substitute("a${EMPTY}b", &vars).unwrap();
        assert_eq!(out, "ab");
        let (out, map) = substitute("plain $ text", &vars).unwrap();
        assert_eq!(out, "plain $ text");
        assert_eq!(map.to_original(7), 7);
    }

    #[test]
    fn errors_point_at_the_dollar() {
        let table: [(&str, usize, Problem); 5] = [
            (
                "a: ${NOPE}",
                3,
                Problem::UndefinedVariable {
                    name: "NOPE".into(),
                },
            ),
            ("a: ${NOT CLOSED", 3, Problem::BadVariable),
            ("a: x${}", 4, Problem::BadVariable),
            ("a: ${1X}", 3, Problem::BadVariable),
            (
                "a: ${TWO_LINES}",
                3,
                Problem::MultilineVariable {
                    name: "TWO_LINES".into(),
                },
            ),
        ];
        for (text, at, problem) in table {
            assert_eq!(
                substitute(text, &vars).unwrap_err(),
                (at, problem),
                "{text}"
            );
        }
    }
}
