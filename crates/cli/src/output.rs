//! Output helpers of the client subcommands: an aligned table, times and durations, JSON
//! values in one line. Stable on purpose: tests and scripts read it.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// A table: a header row, then rows, columns separated by two spaces, every column but the
/// last padded to its widest cell (numbers right-aligned).
#[derive(Debug)]
pub(crate) struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; a header starting with `>` is right-aligned (the `>` is
    /// not shown).
    pub(crate) fn new(headers: &[&'static str]) -> Self {
        Self {
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            headers: headers.iter().map(|h| h.trim_start_matches('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra ones dropped).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The text, one line per row, each ending with a newline.
    pub(crate) fn render(&self) -> String {
        let n = self.headers.len();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = width[i] - cell.chars().count();
                if self.right[i] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if i + 1 < n {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// A time (milliseconds since the epoch) as UTC, to the second: `2026-11-26T06:48:06Z`.
pub(crate) fn time(ms: i64) -> String {
    let Ok(ms) = u64::try_from(ms) else {
        return "-".into();
    };
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// How long ago a time was: `5s ago`, `in 2m 3s`.
pub(crate) fn relative(ms: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let delta = now - ms;
    let d = duration_ms(delta.unsigned_abs());
    if delta >= 0 {
        format!("{d} ago")
    } else {
        format!("in {d}")
    }
}

/// A duration in milliseconds, short: `850ms`, `1.2s`, `2m 5s`, `1h 3m`, `2d 4h`.
pub(crate) fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{}.{}s", s, (ms % 1000) / 100),
        60_000..3_600_000 => format!("{}m {}s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A JSON value on one line (strings without quotes), cut to `max` characters.
pub(crate) fn compact(v: &Value, max: usize) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() <= max {
        s
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A string field of a JSON object, or `-`.
pub(crate) fn field(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_are_aligned() {
        let mut t = Table::new(&["NAME", ">N", "NOTE"]);
        t.row(vec!["a".into(), "1".into(), "x".into()]);
        t.row(vec!["long name".into(), "100".into()]);
        assert_eq!(
            t.render(),
            "NAME         N  NOTE\na            1  x\nlong name  100\n"
        );
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(1_795_000_000_123), "2026-11-18T11:06:40Z");
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(1_250), "1.2s");
        assert_eq!(duration_ms(125_000), "2m 5s");
        assert_eq!(duration_ms(3_780_000), "1h 3m");
        assert_eq!(duration_ms(187_200_000), "2d 4h");
        assert!(relative(0).ends_with(" ago"));
    }

    #[test]
    fn values_are_compacted() {
        assert_eq!(compact(&json!("text"), 10), "text");
        assert_eq!(compact(&json!({"a": 1}), 10), "{\"a\":1}");
        assert_eq!(compact(&json!("abcdefghijkl"), 5), "abcd…");
        assert_eq!(field(&json!({"a": null, "b": 2}), "a"), "-");
        assert_eq!(field(&json!({"b": 2}), "b"), "2");
    }
}
