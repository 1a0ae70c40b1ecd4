//! Trino and Athena (engine 3): Java regular expressions (`regexp_like`, `regexp_extract`,
//! NULL where nothing matches), `TRY_CAST`, `parse_datetime` with Joda's pattern for
//! `$time_local`, `from_iso8601_timestamp`, `array_agg(… ORDER BY …)` for the top lists.

use super::{Engine, Quirks};

pub struct Trino;

impl Quirks for Trino {
    fn engine(&self) -> Engine {
        Engine::Trino
    }
    fn matches(&self, x: &str, re: &str) -> String {
        format!("regexp_like({x}, {re})")
    }
    fn extract(&self, x: &str, re: &str) -> String {
        format!("NULLIF(regexp_extract({x}, {re}, 1), '')")
    }
    fn double(&self, x: &str) -> String {
        format!("TRY_CAST({x} AS double)")
    }
    fn int(&self, x: &str) -> String {
        format!("TRY_CAST({x} AS integer)")
    }
    fn double_lit(&self, v: f64) -> String {
        format!("CAST('{v:?}' AS double)")
    }
    fn text(&self, x: &str) -> String {
        format!("CAST({x} AS varchar)")
    }
    fn count_double(&self, x: &str) -> String {
        format!("CAST({x} AS double)")
    }
    fn time_local(&self, x: &str) -> String {
        format!("parse_datetime({x}, 'dd/MMM/yyyy:HH:mm:ss Z')")
    }
    fn time_iso(&self, x: &str) -> String {
        format!("from_iso8601_timestamp({x})")
    }
    fn time_epoch(&self, x: &str) -> String {
        format!("from_unixtime(TRY_CAST({x} AS double))")
    }
    fn ordered_array(&self, value: &str, order: &str) -> String {
        format!("array_agg({value} ORDER BY {order})")
    }
    fn notes(&self) -> &'static [&'static str] {
        &["Trino/Athena: the table's columns are varchar (a RegexSerDe or JSON SerDe table, see --sql-load trino); top lists are exact (row_number), not approx_most_frequent."]
    }
}
