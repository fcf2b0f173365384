//! The page frame (head, navigation, the live-update hooks) and how numbers are shown: times
//! relative and absolute, durations, bytes and CPU with their units, states as badges.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use offload_api::JobState;

use super::assets;

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Jobs,
    Dead,
    Schedules,
    Pools,
    None,
}

/// A page's frame.
#[derive(Debug)]
pub(crate) struct Page<'a> {
    pub(crate) title: &'a str,
    pub(crate) nav: Nav,
    /// Show the sign-out button (the daemon has a token).
    pub(crate) signed_in: bool,
}

impl<'a> Page<'a> {
    /// A page outside the navigation (login, refusals, not found).
    pub(crate) fn bare(title: &'a str) -> Self {
        Self {
            title,
            nav: Nav::None,
            signed_in: false,
        }
    }
}

/// The htmx settings: no attribute inheritance (each element says what it swaps), no inline styles (the CSP forbids them), no `eval`, and refusals (4xx)
/// swapped like answers so a refused action shows its reason. No settle delay: htmx wires up
/// swapped-in content when it settles, so with its default 20 ms a button a live refresh had
/// just replaced ignored a click for that long.
const HTMX_CONFIG: &str = r#"{"defaultSettleDelay":0,"disableInheritance":true,"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"4..","swap":true,"error":false},{"code":"...","swap":false,"error":true}]}"#;

/// A whole page around `body`.
pub(crate) fn page(p: &Page<'_>, body: Markup) -> Markup {
    let link = |nav: Nav, href: &str, label: &str| {
        html! {
            @if p.nav == nav {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="htmx-config" content=(HTMX_CONFIG);
                link rel="icon" href="data:,";
                title { (p.title) " · offload" }
                link rel="stylesheet" href=(assets::url("dash.css"));
                link rel="stylesheet" href=(assets::url("uPlot.min.css"));
                script src=(assets::url("htmx.min.js")) defer {}
                script src=(assets::url("uPlot.iife.min.js")) defer {}
                script src=(assets::url("dash.js")) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "offload" }
                    @if p.nav != Nav::None {
                        nav aria-label="Main" {
                            (link(Nav::Overview, "/", "Overview"))
                            (link(Nav::Jobs, "/ui/jobs", "Jobs"))
                            (link(Nav::Dead, "/ui/dead", "Dead"))
                            (link(Nav::Schedules, "/ui/schedules", "Schedules"))
                            (link(Nav::Pools, "/ui/pools", "Pools"))
                        }
                        span #live.live aria-live="off" title="live updates over the event stream" { "connecting…" }
                    }
                    @if p.signed_in {
                        button.link type="button" hx-post="/ui/logout" { "Sign out" }
                    }
                }
                div #flash aria-live="polite" {}
                main #main { (body) }
            }
        }
    }
}

/// The content of a live region without its wrapper, for its partial: the region element stays
/// in the page (its `hx-swap` is `innerHTML`), so a refresh asked for while one is in flight is
/// queued on it (`hx-sync="this:queue last"`) instead of lost with a replaced element. maud
/// escapes `>` in attributes, so the first `>` ends the wrapper's opening tag.
pub(crate) fn inner(region: Markup) -> Markup {
    let s = region.into_string();
    let body = s
        .split_once('>')
        .map(|(_, rest)| rest.strip_suffix("</div>").unwrap_or(rest))
        .unwrap_or("");
    PreEscaped(body.to_owned())
}

/// Percent-encodes a query value or a path segment (everything but the unreserved bytes).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `ms` since the epoch as `2026-12-04 04:20:01 UTC`.
pub(crate) fn absolute(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "?".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `ms` relative to `now`: `in 5 s`, `3 min ago`.
pub(crate) fn relative(ms: i64, now: i64) -> String {
    let d = now - ms;
    let span = duration(d.unsigned_abs());
    if d.abs() < 1000 {
        "now".to_owned()
    } else if d > 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// A moment shown both ways; `data-ts` lets the page keep the relative part fresh.
pub(crate) fn when(ms: i64, now: i64) -> Markup {
    let iso = chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    html! {
        time datetime=(iso) title=(absolute(ms)) data-ts=(ms) {
            span.rel { (relative(ms, now)) }
            " "
            span.abs { (absolute(ms)) }
        }
    }
}

/// A duration in ms as `850 ms`, `12.3 s`, `4 min 5 s`, `2 h 3 min`, `3 d 4 h`.
pub(crate) fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Bytes as `12.3 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A count with thousands separators: `100,000`.
pub(crate) fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A job state as a badge (colour and word: never colour alone).
pub(crate) fn badge(s: JobState) -> Markup {
    html! { span class={ "badge st-" (s.as_str()) } { (s.as_str()) } }
}

/// A job's progress as a fraction 0..=1: `{"done", "total"}`, `{"percent"}`, or a number (a
/// fraction up to 1, else a percentage).
pub(crate) fn progress_fraction(p: &serde_json::Value) -> Option<f64> {
    let f = if let (Some(done), Some(total)) = (
        p.get("done").and_then(serde_json::Value::as_f64),
        p.get("total").and_then(serde_json::Value::as_f64),
    ) {
        (total > 0.0).then(|| done / total)?
    } else if let Some(pc) = p.get("percent").and_then(serde_json::Value::as_f64) {
        pc / 100.0
    } else {
        let n = p.as_f64()?;
        if n <= 1.0 {
            n
        } else {
            n / 100.0
        }
    };
    f.is_finite().then(|| f.clamp(0.0, 1.0))
}

/// A progress bar the page moves on `progress` events (`data-progress` names the job).
pub(crate) fn progress_bar(id: &str, p: Option<&serde_json::Value>, running: bool) -> Markup {
    let frac = p.and_then(progress_fraction);
    let pct = frac.map_or(0.0, |f| (f * 100.0).round());
    html! {
        @if running || frac.is_some() {
            span.progress {
                progress data-progress=(id) max="100" value=(pct) aria-label="progress" { (pct) "%" }
                span.pct data-progress-text=(id) { @if frac.is_some() { (pct) " %" } @else { "—" } }
            }
        }
    }
}

/// Pretty JSON in a `<pre>` (escaped by maud).
pub(crate) fn json_block(v: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre.json { (text) } }
}

/// Nothing to show yet, and what to do about it.
pub(crate) fn empty(what: &str, next: Markup) -> Markup {
    html! { div.empty { p { strong { (what) } } (next) } }
}

/// How to submit a first job, for the empty states.
pub(crate) fn first_job_hint() -> Markup {
    html! {
        p { "Submit one with the CLI or the API:" }
        pre { "offload submit hello '{\"name\": \"world\"}'\n"
              "curl -X POST http://HOST/v1/jobs -H 'content-type: application/json' \\\n     -d '{\"job\": \"hello\", \"params\": {\"name\": \"world\"}}'" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn units() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_300), "12.3 s");
        assert_eq!(duration(245_000), "4 min 5 s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(count(100_000), "100,000");
        assert_eq!(count(12), "12");
        assert_eq!(relative(0, 5000), "5.0 s ago");
        assert_eq!(encode("/ui/jobs?state=dead"), "%2Fui%2Fjobs%3Fstate%3Ddead");
    }

    #[test]
    fn a_partial_is_its_region_without_the_wrapper() {
        let r = html! { div #x title="a>b" { p { "in" } div { "nested" } } };
        assert_eq!(inner(r).into_string(), "<p>in</p><div>nested</div>");
    }

    #[test]
    fn progress_shapes() {
        assert_eq!(
            progress_fraction(&json!({"done": 1, "total": 4})),
            Some(0.25)
        );
        assert_eq!(progress_fraction(&json!({"percent": 50})), Some(0.5));
        assert_eq!(progress_fraction(&json!(0.3)), Some(0.3));
        assert_eq!(progress_fraction(&json!(30)), Some(0.3));
        assert_eq!(progress_fraction(&json!({"done": 1, "total": 0})), None);
        assert_eq!(progress_fraction(&json!("x")), None);
    }
}
