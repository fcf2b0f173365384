//! Rate and concurrency limits in `offload.toml`: `rate` and `max_running` of a `[[pool]]` and
//! of a `[job."<name>"]`, turned into the store's limits ([`offload_store::throttle`]), which
//! the claim enforces (on every node of a shared store).
//!
//! ```toml
//! [[pool]]
//! name = "mail"
//! rate = "100/1m"            # at most 100 starts a minute (a bucket of 100)
//! max_running = 8            # at most 8 of its jobs running at once, on every node
//!
//! [job."reports/daily"]
//! rate = { limit = 10, period_ms = 1000 }
//! max_running = 1            # `concurrency` is accepted too
//! ```
//!
//! A rate is `"N/PERIOD"` (`PERIOD`: a number and `ms`, `s`, `m`, `h` or `d`; the number may
//! be left out: `"10/s"`) or `{ limit = N, period_ms = P }`. `[[pool]] concurrency` is another
//! thing: the jobs one worker runs at once.

use offload_store::throttle::{check_all, Rate, Throttle};
use offload_store::Queue;
use serde::Deserialize;

use super::ConfigError;
use crate::config::ServeConfig;

/// A rate as written: `"10/1s"` or `{ limit = 10, period_ms = 1000 }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RateSpec {
    /// `"N/PERIOD"`.
    Text(String),
    /// `{ limit, period_ms }` (signed, so a negative number is refused naming its field).
    Table {
        /// Starts per period.
        limit: i64,
        /// The period, in ms.
        period_ms: i64,
    },
}

fn unit_ms(unit: &str) -> Option<i64> {
    Some(match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    })
}

impl RateSpec {
    /// The rate, or why not (naming `rate`, `rate.limit` or `rate.period_ms`).
    pub fn to_rate(&self) -> Result<Rate, String> {
        let (limit, period_ms) = match self {
            Self::Table { limit, period_ms } => (*limit, *period_ms),
            Self::Text(t) => {
                let bad = || format!("rate {t:?} is not \"N/PERIOD\" (e.g. \"10/1s\", \"100/1m\")");
                let (n, period) = t.split_once('/').ok_or_else(bad)?;
                let limit: i64 = n.trim().parse().map_err(|_| bad())?;
                let period = period.trim();
                let split = period.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
                let (count, unit) = period.split_at(split);
                let count: i64 = if count.is_empty() {
                    1
                } else {
                    count.parse().map_err(|_| bad())?
                };
                let unit = unit_ms(unit).ok_or_else(bad)?;
                (limit, count.checked_mul(unit).ok_or_else(bad)?)
            }
        };
        let limit = u64::try_from(limit)
            .map_err(|_| format!("rate.limit {limit} is out of range: at least 1"))?;
        let period_ms = u64::try_from(period_ms)
            .map_err(|_| format!("rate.period_ms {period_ms} is out of range: at least 1"))?;
        Ok(Rate { limit, period_ms })
    }
}

/// One queue's limit from its section's `rate` and `max_running`; `None` when it sets neither.
fn throttle(
    queue: Queue,
    rate: Option<&RateSpec>,
    max_running: Option<i64>,
) -> Result<Option<Throttle>, String> {
    if rate.is_none() && max_running.is_none() {
        return Ok(None);
    }
    let rate = rate.map(RateSpec::to_rate).transpose()?;
    let max_running = max_running
        .map(|k| {
            u64::try_from(k).map_err(|_| format!("max_running {k} is out of range: at least 1"))
        })
        .transpose()?;
    let t = Throttle {
        queue,
        rate,
        max_running,
    };
    t.check().map_err(|e| e.to_string())?;
    Ok(Some(t))
}

/// Every limit the configuration sets, pools first.
///
/// # Errors
///
/// [`ConfigError::Invalid`] naming the section and the field.
pub(crate) fn throttles(cfg: &ServeConfig) -> Result<Vec<Throttle>, ConfigError> {
    let mut out = Vec::new();
    for p in &cfg.pools {
        let t = throttle(Queue::pool(&p.name), p.rate.as_ref(), p.max_running)
            .map_err(|e| ConfigError::Invalid(format!("[[pool]] {:?}: {e}", p.name)))?;
        out.extend(t);
    }
    for (name, s) in &cfg.job_sections {
        let t = throttle(Queue::job(name), s.rate.as_ref(), s.max_running)
            .map_err(|e| ConfigError::Invalid(format!("[job.{name:?}] {e}")))?;
        out.extend(t);
    }
    check_all(&out).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileConfig;

    fn config(toml: &str) -> Result<Vec<Throttle>, String> {
        let file: FileConfig = toml::from_str(toml).map_err(|e| e.to_string())?;
        let mut cfg = ServeConfig::new("jobs", "data");
        cfg.apply_file(file).map_err(|e| e.to_string())?;
        throttles(&cfg).map_err(|e| e.to_string())
    }

    #[test]
    fn rates_read_as_text_or_table() {
        let t = config(
            r#"
            [[pool]]
            name = "mail"
            rate = "100/1m"
            max_running = 8
            [job."a"]
            rate = { limit = 10, period_ms = 250 }
            [job."b"]
            concurrency = 2
            [job."c"]
            rate = "5/s"
            [job."d"]
            keep_result_ms = 1
            "#,
        )
        .unwrap();
        let rate = |limit, period_ms| Some(Rate { limit, period_ms });
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].queue, Queue::pool("mail"));
        assert_eq!((t[0].rate, t[0].max_running), (rate(100, 60_000), Some(8)));
        assert_eq!((t[1].rate, t[1].max_running), (rate(10, 250), None));
        assert_eq!((t[2].rate, t[2].max_running), (None, Some(2)));
        assert_eq!(t[3].rate, rate(5, 1000));
    }

    #[test]
    fn bad_limits_name_the_section_and_field() {
        let e = |toml: &str| config(toml).unwrap_err();
        assert!(e("[job.a]\nrate = \"0/1s\"").contains("[job.\"a\"] rate.limit 0 is out of range"));
        assert!(e("[job.a]\nrate = \"-3/1s\"").contains("rate.limit -3 is out of range"));
        assert!(e("[job.a]\nrate = { limit = -1, period_ms = 10 }")
            .contains("rate.limit -1 is out of range"));
        assert!(e("[job.a]\nrate = { limit = 1, period_ms = 0 }")
            .contains("rate.period_ms 0 is out of range"));
        assert!(e("[job.a]\nrate = \"1/2d\"").contains("rate.period_ms 172800000 is out of range"));
        assert!(e("[job.a]\nrate = \"ten/s\"").contains("is not \"N/PERIOD\""));
        assert!(e("[job.a]\nrate = \"1/1w\"").contains("is not \"N/PERIOD\""));
        assert!(e("[job.a]\nmax_running = 0").contains("[job.\"a\"] max_running 0 is out of range"));
        assert!(e("[job.a]\nmax_running = -2").contains("max_running -2 is out of range"));
        let pool = "[[pool]]\nname = \"p\"\nmax_running = 2000000";
        assert!(e(pool).contains("[[pool]] \"p\": max_running 2000000 is out of range"));
    }
}
