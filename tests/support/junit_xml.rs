//! A strict reading of a JUnit XML report for the tests: the document must be well-formed
//! (quick-xml checks nesting and end names), every reference must be one XML defines, and
//! the testcases come back with their outcome.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of the helpers: `expect` would go unfulfilled in one that uses them all"
)]

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    pub classname: String,
    pub name: String,
    /// `failure`, `error` or `skipped`; `None` for a pass.
    pub outcome: Option<String>,
    /// The outcome element's `message`.
    pub message: Option<String>,
    /// Text inside the outcome element and `<system-out>`, references resolved.
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Suite {
    /// `tests`, `failures`, `errors`, `skipped` of the `<testsuite>`.
    pub totals: [usize; 4],
    pub cases: Vec<TestCase>,
    pub properties: Vec<(String, String)>,
}

impl Suite {
    pub fn case(&self, name: &str) -> &TestCase {
        self.cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no testcase {name:?} in {:#?}", self.cases))
    }
}

fn attrs(e: &quick_xml::events::BytesStart) -> Vec<(String, String)> {
    e.attributes()
        .map(|a| {
            let a = a.unwrap_or_else(|err| panic!("bad attribute: {err}"));
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .unwrap_or_else(|err| panic!("attribute value does not unescape: {err}"));
            (
                String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                value.into_owned(),
            )
        })
        .collect()
}

fn get(attrs: &[(String, String)], key: &str) -> Option<String> {
    attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn count(attrs: &[(String, String)], key: &str) -> usize {
    get(attrs, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a numeric {key} is needed: {attrs:?}"))
}

/// Parse `xml`, panicking with the reason when it is not a well-formed JUnit report.
pub fn parse(xml: &str) -> Suite {
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "XML declaration first"
    );
    for c in xml.chars() {
        let ok =
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}');
        assert!(ok, "character {c:?} is not allowed in XML 1.0");
    }
    let mut reader = Reader::from_str(xml);
    let mut suite = Suite::default();
    let mut stack: Vec<String> = Vec::new();
    let mut current: Option<TestCase> = None;
    let mut roots = 0;
    let mut outer = [0usize; 3];
    for _ in 0..1_000_000 {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed at {}: {e}", reader.buffer_position()));
        match event {
            Event::Eof => break,
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let a = attrs(e);
                if stack.is_empty() {
                    roots += 1;
                    assert_eq!(name, "testsuites", "root element");
                    outer = [
                        count(&a, "tests"),
                        count(&a, "failures"),
                        count(&a, "errors"),
                    ];
                    // The xunit plugin's schema has no `skipped` on `<testsuites>`.
                    assert!(get(&a, "skipped").is_none(), "skipped on testsuites");
                }
                if name == "testsuite" {
                    suite.totals = [
                        count(&a, "tests"),
                        count(&a, "failures"),
                        count(&a, "errors"),
                        count(&a, "skipped"),
                    ];
                }
                match name.as_str() {
                    "testcase" => {
                        current = Some(TestCase {
                            classname: get(&a, "classname").expect("testcase classname"),
                            name: get(&a, "name").expect("testcase name"),
                            outcome: None,
                            message: None,
                            text: String::new(),
                        });
                    }
                    "failure" | "error" | "skipped" => {
                        let case = current.as_mut().expect("outcome inside a testcase");
                        assert!(case.outcome.is_none(), "one outcome per testcase");
                        case.outcome = Some(name.clone());
                        case.message = get(&a, "message");
                    }
                    "property" => suite.properties.push((
                        get(&a, "name").expect("property name"),
                        get(&a, "value").expect("property value"),
                    )),
                    _ => {}
                }
                if matches!(event, Event::Empty(_)) {
                    if name == "testcase" {
                        suite.cases.extend(current.take());
                    }
                } else {
                    stack.push(name);
                }
            }
            Event::End(ref e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "nesting");
                if name == "testcase" {
                    suite.cases.extend(current.take());
                }
            }
            Event::Text(ref t) => {
                let text = t.decode().expect("UTF-8 text");
                if let Some(case) = current.as_mut() {
                    case.text.push_str(&text);
                } else {
                    assert!(
                        text.trim().is_empty() || stack.last().is_some_and(|s| s == "system-out"),
                        "stray text {text:?}"
                    );
                }
            }
            Event::GeneralRef(ref r) => {
                let resolved = match r.resolve_char_ref().expect("a valid character reference") {
                    Some(c) => c.to_string(),
                    None => match r.decode().expect("UTF-8 reference").as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => panic!("undefined entity &{other};"),
                    },
                };
                if let Some(case) = current.as_mut() {
                    case.text.push_str(&resolved);
                }
            }
            Event::Decl(_) | Event::Comment(_) => {}
            other => panic!("unexpected XML event {other:?}"),
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    assert_eq!(roots, 1, "exactly one root element");
    let n = |o: &str| {
        suite
            .cases
            .iter()
            .filter(|c| c.outcome.as_deref() == Some(o))
            .count()
    };
    assert_eq!(
        suite.totals,
        [suite.cases.len(), n("failure"), n("error"), n("skipped")],
        "the totals count the testcases"
    );
    assert_eq!(
        outer,
        [suite.totals[0], suite.totals[1], suite.totals[2]],
        "<testsuites> totals the one suite"
    );
    suite
}
