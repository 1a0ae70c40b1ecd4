//! Durations (`500ms`, `60s`, `2m`, bare seconds) and sizes (`8190`, `32k`, `32KiB`, `1m`) as
//! written in scenario files.

use std::time::Duration;

/// Parses a duration: a non-negative number of seconds, or a number followed by `ms`, `s`,
/// `m` or `h` (`500ms`, `1.5s`, `2m`). `None` when the text is not one.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    // Rust's float parser also takes "inf", "1e3" and "."; only plain decimals are wanted.
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// Parses a size in bytes: a whole number, or one followed by `k`/`KiB` (×1024) or `m`/`MiB`
/// (×1024²), case-insensitive. `None` when the text is not one or overflows.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return None;
    }
    let number: u64 = number.parse().ok()?;
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kib" => 1024,
        "m" | "mib" => 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let table: [(&str, Option<Duration>); 14] = [
            ("60s", Some(Duration::from_secs(60))),
            ("500ms", Some(Duration::from_millis(500))),
            ("2m", Some(Duration::from_secs(120))),
            ("1h", Some(Duration::from_secs(3600))),
            ("10", Some(Duration::from_secs(10))),
            ("1.5s", Some(Duration::from_millis(1500))),
            (" 5s ", Some(Duration::from_secs(5))),
            ("0", Some(Duration::ZERO)),
            ("", None),
            ("s", None),
            ("5 s", None),
            ("-5s", None),
            ("5d", None),
            ("1.2.3s", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_duration(text), want, "{text:?}");
        }
        assert_eq!(parse_duration("inf"), None);
        assert_eq!(parse_duration("1e3"), None);
    }

    #[test]
    fn sizes() {
        let table: [(&str, Option<u64>); 12] = [
            ("8190", Some(8190)),
            ("32k", Some(32768)),
            ("32K", Some(32768)),
            ("32KiB", Some(32768)),
            ("1m", Some(1_048_576)),
            ("2MiB", Some(2_097_152)),
            ("0", Some(0)),
            ("32KB", None),
            ("1.5k", None),
            ("-1", None),
            ("k", None),
            ("99999999999999999999k", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_size(text), want, "{text:?}");
        }
        assert_eq!(parse_size("18014398509481984m"), None, "overflow");
    }
}
