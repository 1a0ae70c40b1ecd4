//! ClickHouse: backquoted identifiers, string literals that read backslash escapes (so every
//! backslash of a regex is doubled), RE2 (`match`, `extract`, which gives '' where nothing
//! matches), `…OrNull` conversions, `parseDateTime64BestEffortOrNull`, `ifNull` for the
//! conditions (UInt8, not a boolean type), and `groupArray` sorted by rank for the top lists
//! (exact, ranked with `row_number`; `topK` is approximate and has no counts).

use super::{Engine, Quirks};

pub struct ClickHouse;

impl Quirks for ClickHouse {
    fn engine(&self) -> Engine {
        Engine::ClickHouse
    }
    fn ident(&self, name: &str) -> String {
        format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
    }
    fn string(&self, s: &str) -> String {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
    fn matches(&self, x: &str, re: &str) -> String {
        format!("match({x}, {re})")
    }
    fn extract(&self, x: &str, re: &str) -> String {
        format!("nullIf(extract({x}, {re}), '')")
    }
    fn double(&self, x: &str) -> String {
        format!("toFloat64OrNull({x})")
    }
    fn int(&self, x: &str) -> String {
        format!("toInt32OrNull({x})")
    }
    fn double_lit(&self, v: f64) -> String {
        format!("toFloat64('{v:?}')")
    }
    fn text(&self, x: &str) -> String {
        format!("toString({x})")
    }
    fn null_text(&self) -> String {
        "CAST(NULL, 'Nullable(String)')".into()
    }
    fn coalesce_false(&self, x: &str) -> String {
        format!("ifNull({x}, 0)")
    }
    fn concat(&self, a: &str, b: &str) -> String {
        format!("concat({a}, {b})")
    }
    fn count_double(&self, x: &str) -> String {
        format!("toFloat64({x})")
    }
    fn left(&self, x: &str, n: usize) -> String {
        format!("substring({x}, 1, {n})")
    }
    fn before_query(&self, x: &str) -> String {
        format!("extract({x}, '^([^?]*)')")
    }
    fn time_local(&self, x: &str) -> String {
        // `24/Nov/2025:19:29:01 +0000`: the colon after the year made a space for the parser.
        format!("parseDateTime64BestEffortOrNull(replaceRegexpOne({x}, '^([^:]*):', '\\\\1 '))")
    }
    fn time_iso(&self, x: &str) -> String {
        format!("parseDateTime64BestEffortOrNull({x})")
    }
    fn time_epoch(&self, x: &str) -> String {
        format!("parseDateTime64BestEffortOrNull({x})")
    }
    fn ordered_array(&self, value: &str, order: &str) -> String {
        format!("arrayMap(t -> t.2, arraySort(groupArray(({order}, {value}))))")
    }
    fn notes(&self) -> &'static [&'static str] {
        &["ClickHouse: times are DateTime64 in the server's time zone; top lists are exact (row_number), not topK."]
    }
}
