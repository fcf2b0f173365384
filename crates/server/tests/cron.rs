//! Cron guard rails end to end over HTTP: a failing schedule pauses itself (event, counters,
//! last error), pause / resume / run-now, `overlap = "replace"` cancels the unfinished run, a
//! schedule's runs listed as its history, and bad policies refused naming their field.

mod common;

use common::cron_daemon as start;
use common::http::schedule;
use common::http::{client as http, events_until, get, post, wait_state};
use serde_json::{json, Value};

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
        (json!({"overlap": "sometimes"}), "overlap"),
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

#[tokio::test]
async fn replace_cancels_the_unfinished_run_and_the_runs_are_the_schedules_history() {
    let d = start().await;
    let mut events = http()
        .get(format!("{}/v1/events", d.url()))
        .send()
        .await
        .unwrap();
    // A run lasts 60 s; a tick comes every second.
    let (s, v) = post(
        &d,
        "/v1/cron",
        json!({"name": "latest", "cron": "* * * * * *", "job": "timer",
               "params": {"ticks": 60}, "overlap": "replace"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    events_until(&mut events, "\"state\":\"cancelled\"").await;
    let (s, v) = post(&d, "/v1/cron/latest/pause", json!({})).await;
    assert_eq!(s, 204, "{v}");

    // A tick that cancelled a run just before the pause may still be submitting its new run:
    // the newest run is the one not cancelled.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let page = loop {
        let (s, page) = get(&d, "/v1/jobs?schedule=latest&limit=1000").await;
        assert_eq!(s, 200, "{page}");
        if page["jobs"][0]["state"] != "cancelled" {
            break page;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let runs = page["jobs"].as_array().unwrap();
    assert!(runs.len() >= 2, "{page}");
    assert!(runs.iter().all(|j| j["schedule"] == "latest"), "{page}");
    let (_, list) = get(&d, "/v1/cron").await;
    assert_eq!(list["schedules"][0]["overlap"], "replace", "{list}");
    // Every run but the newest was replaced: cancelled while it waited, or asked to stop while
    // it ran (its worker gets the cancel, then the kill after the grace).
    for old in &runs[1..] {
        assert!(
            old["state"] == "cancelled" || old["cancel_requested"] == true,
            "{old:#}"
        );
    }
    let metrics = http()
        .get(format!("{}/metrics", d.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("offload_cron_replaced_ticks_total"),
        "{metrics}"
    );
    // The newest run is unfinished until cancelled here (the schedule is paused); then every
    // run ends cancelled.
    let newest = runs[0]["id"].as_str().unwrap();
    let (s, v) = post(&d, &format!("/v1/jobs/{newest}/cancel"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    for run in runs {
        wait_state(&d, run["id"].as_str().unwrap(), "cancelled").await;
    }

    // A job submitted otherwise is no run of it, and the time bounds narrow the list.
    let (s, plain) = post(&d, "/v1/jobs", json!({"job": "hello", "params": {}})).await;
    assert_eq!(s, 201, "{plain}");
    let (_, page) = get(&d, "/v1/jobs?schedule=latest&limit=1000").await;
    assert!(page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["id"] != plain["id"]));
    let (_, job) = get(&d, &format!("/v1/jobs/{}", plain["id"].as_str().unwrap())).await;
    assert!(job["schedule"].is_null(), "{job}");
    let future = job["created_at"].as_i64().unwrap() + 3_600_000;
    let (_, page) = get(&d, &format!("/v1/jobs?since={future}")).await;
    assert_eq!(page["jobs"], json!([]));
    let (_, page) = get(&d, &format!("/v1/jobs?until={future}&job=hello")).await;
    assert_eq!(page["jobs"][0]["id"], plain["id"]);
    for (query, field) in [
        ("since=-1", "since"),
        ("until=281474976710656", "until"),
        ("since=soon", "since"),
    ] {
        let (s, v) = get(&d, &format!("/v1/jobs?{query}")).await;
        assert_eq!(s, 400, "{query}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{query}: {message}");
    }
}
