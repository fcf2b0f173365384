//! The HTTP API through `reqwest`, as any client sends it (the attack suites write raw bytes
//! instead: [`super::Running::http`]).
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Running;

/// An HTTP client for the API (long polls need the generous timeout).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap()
}

/// `POST path` with a JSON body: (status, JSON body or null).
pub async fn post(d: &Running, path: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}{path}", d.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET path`: (status, JSON body or null).
pub async fn get(d: &Running, path: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{}{path}", d.url()))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Submits a job: its id (201 expected).
pub async fn submit(d: &Running, body: Value) -> String {
    let (status, v) = post(d, "/v1/jobs", body).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// Long-polls a job's result until it is over (a hang guard of two minutes).
pub async fn wait_result(d: &Running, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, v) = get(d, &format!("/v1/jobs/{id}/result?wait=20")).await;
        if status == 200 {
            return v;
        }
        assert_eq!(status, 202, "{v}");
        assert!(Instant::now() < deadline, "job {id} never ended: {v}");
    }
}

/// Polls `GET /v1/jobs/{id}` until the job is in `state` (a hang guard of a minute): the job.
pub async fn wait_state(d: &Running, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, job) = get(d, &format!("/v1/jobs/{id}")).await;
        if job["state"] == state {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never got {state}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads an event stream (`GET /v1/events`) until its text holds `needle`; returns all read.
/// Panics after 60 s or if the stream ends first.
pub async fn events_until(events: &mut reqwest::Response, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut text = String::new();
    while !text.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline.into(), events.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} on the event stream: {text}"))
            .unwrap()
            .expect("stream ended");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

/// Schedule `name` as `GET /v1/cron` lists it.
pub async fn schedule(d: &Running, name: &str) -> Value {
    let (_, list) = get(d, "/v1/cron").await;
    list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
        .clone()
}
