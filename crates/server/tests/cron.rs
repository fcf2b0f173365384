//! Cron guard rails end to end over HTTP: a failing schedule pauses itself (event, counters,
//! last error), pause / resume / run-now, and bad policies refused naming their field.

mod common;

use common::http::{client as http, events_until, get, post, wait_state};
use common::{config, examples, Running};
use serde_json::{json, Value};

/// A daemon on the example jobs that allows a schedule every second.
async fn start() -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let toml = "[limits]\nmin_cron_interval_ms = 1000\n";
    let cfg = config(&examples(), &tmp.path().join("data"), toml);
    Running::start(tmp, cfg).await
}

async fn schedule(d: &Running, name: &str) -> Value {
    let (_, list) = get(d, "/v1/cron").await;
    list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
        .clone()
}

#[tokio::test]
async fn a_failing_schedule_pauses_itself_then_resumes_pauses_and_runs_on_demand() {
    let d = start().await;
    let mut events = http()
        .get(format!("{}/v1/events", d.url()))
        .send()
        .await
        .unwrap();
    let (s, v) = post(
        &d,
        "/v1/cron",
        json!({"name": "failing", "cron": "* * * * * *", "job": "fails", "pause_after_failures": 2}),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    let text = events_until(&mut events, "event: schedule").await;
    assert!(text.contains("\"change\":\"paused\""), "{text}");
    assert!(text.contains("cannot be done"), "the last error: {text}");

    let s = schedule(&d, "failing").await;
    assert_eq!(s["paused"]["reason"], "2 consecutive failures", "{s}");
    // With overlap = skip (the default) a run starts only once the previous ended, and the
    // counters are read before each tick: exactly two runs.
    assert_eq!(s["counters"]["runs"], 2, "{s}");
    assert_eq!(s["counters"]["consecutive_failures"], 2, "{s}");
    assert_eq!(s["overlap"], "skip");
    let message = s["counters"]["last_error"]["message"].as_str().unwrap();
    assert!(message.contains("cannot be done"), "{s}");
    assert!(s["counters"]["last_failure_at"].is_i64(), "{s}");
    let metrics = http()
        .get(format!("{}/metrics", d.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("offload_cron_paused_total{reason=\"failures\"} 1"),
        "{metrics}"
    );

    let call = |path: String| {
        let url = format!("{}{path}", d.url());
        async move { http().post(url).send().await.unwrap() }
    };
    assert_eq!(call("/v1/cron/failing/resume".into()).await.status(), 204);
    let s = schedule(&d, "failing").await;
    assert!(s["paused"].is_null(), "{s}");
    assert_eq!(s["counters"]["consecutive_failures"], 0, "{s}");

    assert_eq!(call("/v1/cron/failing/pause".into()).await.status(), 204);
    let s = schedule(&d, "failing").await;
    assert_eq!(s["paused"]["reason"], "manual", "{s}");

    // Run-now submits even while paused.
    let r = call("/v1/cron/failing/run".into()).await;
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    wait_state(&d, v["id"].as_str().unwrap(), "dead").await;

    for what in ["pause", "resume", "run"] {
        let r = call(format!("/v1/cron/nope/{what}")).await;
        assert_eq!(r.status().as_u16(), 404, "{what}");
    }
}

#[tokio::test]
async fn bad_policies_are_refused_naming_their_field_and_nothing_is_created() {
    let d = start().await;
    let base = json!({"name": "n", "cron": "0 3 * * *", "job": "cleanup"});
    for (extra, field) in [
        (json!({"timezone": "Mars/Olympus_Mons"}), "timezone"),
        (json!({"pause_after_failures": 0}), "pause_after_failures"),
        (
            json!({"pause_after_failures": 1_000_000}),
            "pause_after_failures",
        ),
        (json!({"pause_after_failures": -1}), "pause_after_failures"),
        (json!({"overlap": "replace"}), "overlap"),
    ] {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (s, v) = post(&d, "/v1/cron", body).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{extra}: {v}"
        );
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{extra}: {message}");
    }
    let (_, list) = get(&d, "/v1/cron").await;
    assert_eq!(list["schedules"], json!([]), "nothing half-created");

    let mut body = base.clone();
    body.as_object_mut().unwrap().extend(
        json!({"timezone": "Europe/Berlin", "overlap": "queue", "pause_after_failures": 3})
            .as_object()
            .unwrap()
            .clone(),
    );
    let (s, v) = post(&d, "/v1/cron", body).await;
    assert_eq!(s, 201, "{v}");
    let s = schedule(&d, "n").await;
    assert_eq!(
        (
            &s["timezone"],
            &s["overlap"],
            &s["pause_after_failures"],
            &s["paused"]
        ),
        (
            &json!("Europe/Berlin"),
            &json!("queue"),
            &json!(3),
            &Value::Null
        )
    );
    assert_eq!(s["counters"]["runs"], 0);
}
