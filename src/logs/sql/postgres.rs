//! PostgreSQL: POSIX regular expressions (`~`, `substring(x from re)` for the first group),
//! casts that raise on bad input (so every cast is behind a regex that admits only what it
//! reads), `to_timestamp(x, 'DD/Mon/YYYY:HH24:MI:SS TZHTZM')` for `$time_local`, `round` on
//! numeric only, `array_agg(… ORDER BY …)` for the top lists.

use super::{Engine, Quirks};

pub struct Postgres;

impl Quirks for Postgres {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }
    fn matches(&self, x: &str, re: &str) -> String {
        format!("({x} ~ {re})")
    }
    fn extract(&self, x: &str, re: &str) -> String {
        format!("NULLIF(substring({x} from {re}), '')")
    }
    fn double(&self, x: &str) -> String {
        format!("CAST({x} AS double precision)")
    }
    fn int(&self, x: &str) -> String {
        format!("CAST({x} AS integer)")
    }
    fn double_lit(&self, v: f64) -> String {
        format!("CAST('{v:?}' AS double precision)")
    }
    fn text(&self, x: &str) -> String {
        format!("CAST({x} AS text)")
    }
    fn null_text(&self) -> String {
        "CAST(NULL AS text)".into()
    }
    fn round4(&self, x: &str) -> String {
        format!("CAST(round(CAST({x} AS numeric), 4) AS double precision)")
    }
    fn count_double(&self, x: &str) -> String {
        format!("CAST({x} AS double precision)")
    }
    fn time_local(&self, x: &str) -> String {
        format!("to_timestamp({x}, 'DD/Mon/YYYY:HH24:MI:SS TZHTZM')")
    }
    fn time_iso(&self, x: &str) -> String {
        format!("CAST({x} AS timestamptz)")
    }
    fn time_epoch(&self, x: &str) -> String {
        format!("to_timestamp(CAST({x} AS double precision))")
    }
    fn materialized(&self) -> &'static str {
        // The classified lines are read by the totals and both top lists: once, not thrice.
        "MATERIALIZED "
    }
    fn ordered_array(&self, value: &str, order: &str) -> String {
        format!("array_agg({value} ORDER BY {order})")
    }
    fn notes(&self) -> &'static [&'static str] {
        &["PostgreSQL: casts raise on bad input, so each is behind a regex; arrays come out as {a,b} in CSV (use json output: `\\copy (query) to 'f.json'` with row_to_json, or psql --csv and --from-sql-result reads both)."]
    }
}
