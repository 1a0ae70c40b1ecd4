//! DuckDB: RE2 regular expressions (`regexp_matches`, `regexp_extract`, which gives '' where
//! nothing matches), `try_strptime` for nginx's `$time_local`, `list(… ORDER BY …)` for the
//! top lists (exact, ranked with `row_number`, not `approx_top_k`).

use super::{Engine, Quirks};

pub struct DuckDb;

impl Quirks for DuckDb {
    fn engine(&self) -> Engine {
        Engine::DuckDb
    }
    fn matches(&self, x: &str, re: &str) -> String {
        format!("regexp_matches({x}, {re})")
    }
    fn extract(&self, x: &str, re: &str) -> String {
        format!("NULLIF(regexp_extract({x}, {re}, 1), '')")
    }
    fn double(&self, x: &str) -> String {
        format!("TRY_CAST({x} AS DOUBLE)")
    }
    fn int(&self, x: &str) -> String {
        format!("TRY_CAST({x} AS INTEGER)")
    }
    fn double_lit(&self, v: f64) -> String {
        format!("CAST('{v:?}' AS DOUBLE)")
    }
    fn text(&self, x: &str) -> String {
        format!("CAST({x} AS VARCHAR)")
    }
    fn time_local(&self, x: &str) -> String {
        format!("try_strptime({x}, '%d/%b/%Y:%H:%M:%S %z')")
    }
    fn time_iso(&self, x: &str) -> String {
        format!("TRY_CAST({x} AS TIMESTAMPTZ)")
    }
    fn time_epoch(&self, x: &str) -> String {
        format!("to_timestamp(TRY_CAST({x} AS DOUBLE))")
    }
    fn materialized(&self) -> &'static str {
        // The classified lines are read by the totals and both top lists: once, not thrice.
        "MATERIALIZED "
    }
    fn ordered_array(&self, value: &str, order: &str) -> String {
        format!("list({value} ORDER BY {order})")
    }
    fn notes(&self) -> &'static [&'static str] {
        &["DuckDB: times are TIMESTAMPTZ, shown in the session's TimeZone; top lists are exact (row_number), not approx_top_k."]
    }
}
