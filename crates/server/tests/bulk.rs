//! Deleting one job and bulk retry/delete by a filter, end to end over HTTP on real workers.

mod common;

use common::http::{client as http, get, post, submit, wait_result};
use common::{config, Running};
use serde_json::json;

/// A daemon on a jobs folder with `flaky.js`: fails while `params.fail`, else returns `n`;
/// `slow.js` waits until cancelled.
async fn start() -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("flaky.js"),
        "module.exports = async (p) => { if (p.fail) throw new Error('no'); return p.n; };",
    )
    .unwrap();
    std::fs::write(
        jobs.join("slow.js"),
        "module.exports = (p, ctx) => new Promise((_, no) => \
         ctx.signal.addEventListener('abort', () => no(ctx.signal.reason)));",
    )
    .unwrap();
    let cfg = config(&jobs, &tmp.path().join("data"), "");
    Running::start(tmp, cfg).await
}

async fn delete(d: &Running, path: &str) -> (u16, serde_json::Value) {
    let r = http()
        .delete(format!("{}{path}", d.url()))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn delete_one_job_refuses_a_running_one() {
    let d = start().await;
    let done = submit(&d, json!({"job": "flaky", "params": {"n": 1}})).await;
    assert_eq!(wait_result(&d, &done).await["state"], "succeeded");
    let (s, v) = delete(&d, &format!("/v1/jobs/{done}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"id": done, "state": "succeeded"}));
    let (s, _) = get(&d, &format!("/v1/jobs/{done}")).await;
    assert_eq!(s, 404);
    let (s, v) = delete(&d, &format!("/v1/jobs/{done}")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));

    let slow = submit(&d, json!({"job": "slow"})).await;
    // Polled, not read from the event stream: a stream opened after the submit can miss the
    // `running` event of a job that starts at once.
    common::http::wait_state(&d, &slow, "running").await;
    let (s, v) = delete(&d, &format!("/v1/jobs/{slow}")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("cancel"),
        "{v}"
    );
    let (s, _) = post(&d, &format!("/v1/jobs/{slow}/cancel"), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(wait_result(&d, &slow).await["state"], "cancelled");
    let (s, v) = delete(&d, &format!("/v1/jobs/{slow}")).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("cancelled")), "{v}");
}

#[tokio::test]
async fn bulk_retry_and_delete_by_filter() {
    let d = start().await;
    let mut dead = Vec::new();
    for n in 0..3 {
        let id = submit(
            &d,
            json!({"job": "flaky", "params": {"fail": true, "n": n}, "max_attempts": 1}),
        )
        .await;
        assert_eq!(wait_result(&d, &id).await["state"], "dead");
        dead.push(id);
    }
    let ok = submit(&d, json!({"job": "flaky", "params": {"n": 9}})).await;
    assert_eq!(wait_result(&d, &ok).await["state"], "succeeded");

    // Refused: a state the action does not take, a limit over the maximum.
    let (s, v) = post(&d, "/v1/jobs/retry", json!({"states": ["succeeded"]})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{v}"
    );
    let (s, v) = post(
        &d,
        "/v1/jobs/delete",
        json!({"states": ["dead"], "limit": 10_001}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("10000"),
        "{v}"
    );

    let (s, v) = post(
        &d,
        "/v1/jobs/retry",
        json!({"states": ["dead"], "until": -1}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("until"),
        "{v}"
    );

    // Two of the three dead jobs run again (and fail again: dead), then the rest.
    let (s, v) = post(
        &d,
        "/v1/jobs/retry",
        json!({"states": ["dead"], "job": "flaky", "limit": 2}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"affected": 2, "more": true}));
    // The retried ones ran again (a second attempt, recorded beside the first) and died again.
    for (i, id) in dead.iter().enumerate() {
        assert_eq!(wait_result(&d, id).await["state"], "dead");
        let (_, j) = get(&d, &format!("/v1/jobs/{id}")).await;
        let runs = if i < 2 { 2 } else { 1 };
        assert_eq!(j["attempts"].as_array().unwrap().len(), runs, "{j}");
    }
    // A time range that holds none of them.
    let (_, v) = post(
        &d,
        "/v1/jobs/delete",
        json!({"states": ["dead"], "until": 0}),
    )
    .await;
    assert_eq!(v, json!({"affected": 0, "more": false}));
    let (s, v) = post(
        &d,
        "/v1/jobs/delete",
        json!({"states": ["dead", "succeeded"], "pool": "node"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"affected": 4, "more": false}));
    let (_, page) = get(&d, "/v1/jobs").await;
    assert_eq!(page["jobs"], json!([]), "{page}");
}
