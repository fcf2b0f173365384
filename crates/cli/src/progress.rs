//! A job's live progress on stderr, as `offload run` shows it: a bar when the progress value
//! has a fraction (`{done, total}`, `{current, total}`, `{percent}`, a number in 0..=1), a
//! spinner otherwise, nothing when stderr is not a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// The display: lines printed through it go above the bar.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A spinner named `label` when stderr is a terminal and `show` is set; else nothing.
    pub(crate) fn new(label: &str, show: bool) -> Self {
        let bar = (show && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { bar }
    }

    /// Shows a progress value.
    pub(crate) fn update(&self, data: &Value) {
        let Some(bar) = &self.bar else { return };
        match fraction(data) {
            Some(f) => {
                if bar.length().is_none() {
                    bar.set_length(1000);
                    bar.set_style(
                        ProgressStyle::with_template("{msg} [{bar:30}] {percent:>3}% {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                }
                bar.set_position((f.clamp(0.0, 1.0) * 1000.0) as u64);
            }
            None => bar.tick(),
        }
    }

    /// Changes the label (e.g. the job's state).
    pub(crate) fn label(&self, label: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(label);
        }
    }

    /// A line on stderr, above the bar when there is one.
    pub(crate) fn println(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The fraction done, when a progress value says: a number in 0..=1, `{percent}`, or
/// `{done, total}` / `{current, total}`.
pub(crate) fn fraction(data: &Value) -> Option<f64> {
    match data {
        Value::Number(n) => n.as_f64().filter(|f| (0.0..=1.0).contains(f)),
        Value::Object(m) => {
            if let Some(p) = m.get("percent").and_then(Value::as_f64) {
                return Some(p / 100.0);
            }
            let total = m.get("total").and_then(Value::as_f64)?;
            let done = m
                .get("done")
                .or_else(|| m.get("current"))
                .and_then(Value::as_f64)?;
            (total > 0.0).then(|| done / total)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fractions_are_read_from_common_shapes() {
        assert_eq!(fraction(&json!(0.5)), Some(0.5));
        assert_eq!(fraction(&json!({"done": 1, "total": 4})), Some(0.25));
        assert_eq!(fraction(&json!({"current": 3, "total": 4})), Some(0.75));
        assert_eq!(fraction(&json!({"percent": 50})), Some(0.5));
        assert_eq!(fraction(&json!({"total": 0, "done": 0})), None);
        assert_eq!(fraction(&json!("step 3")), None);
        assert_eq!(fraction(&json!(7)), None);
    }
}
