//! Rate and concurrency limits end to end: configured in `offload.toml`, enforced by the claim,
//! shown in `GET /v1/limits`, in a held job's view and in `/metrics`. No timing: "the
//! dispatcher had its chance" is shown by a later job of the same pool that was claimed and
//! ran past the held one (the claim passes over a held job and takes the ones behind it). The
//! rate's period is an hour, so no token comes back during a test.

mod common;

use common::http::{get, post, submit, wait_result, wait_state};
use common::{config, examples, Running};
use offload_server::ServeConfig;
use serde_json::json;

const TOML: &str = r#"
[job."primes"]
rate = "2/1h"

[job."timer"]
max_running = 1
"#;

#[tokio::test]
async fn a_rate_limit_starts_n_jobs_then_holds_the_rest_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&examples(), &tmp.path().join("data"), TOML);
    let d = Running::start(tmp, cfg).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(submit(&d, json!({"job": "primes", "params": {"limit": 100 + n}})).await);
    }
    assert_eq!(wait_result(&d, &ids[0]).await["state"], "succeeded");
    assert_eq!(wait_result(&d, &ids[1]).await["state"], "succeeded");
    // A job behind the held one in the same pool runs: the claim passed over the third.
    let other = submit(&d, json!({"job": "hello", "params": {}})).await;
    assert_eq!(wait_result(&d, &other).await["state"], "succeeded");
    let (_, job) = get(&d, &format!("/v1/jobs/{}", ids[2])).await;
    assert_eq!(job["state"], "queued", "{job}");
    assert_eq!(
        job["held"],
        json!({"reason": "rate_limit", "kind": "job", "name": "primes"}),
        "{job}"
    );
    let (_, page) = get(&d, "/v1/jobs?job=primes&state=queued").await;
    assert_eq!(page["jobs"][0]["held"]["reason"], "rate_limit", "{page}");
    let (_, done) = get(&d, &format!("/v1/jobs/{}", ids[0])).await;
    assert!(done.get("held").is_none(), "{done}");

    let (s, limits) = get(&d, "/v1/limits").await;
    assert_eq!(s, 200, "{limits}");
    let primes = &limits["limits"][0];
    assert_eq!(
        *primes,
        json!({
            "kind": "job", "name": "primes",
            "rate": {"limit": 2, "period_ms": 3_600_000}, "max_running": null,
            "tokens": 0, "running": 0, "queued": 1, "held_jobs": 1, "held": "rate_limit"
        }),
        "{limits}"
    );
    assert_eq!(
        d.metric("offload_limit_tokens{kind=\"job\",name=\"primes\"}")
            .await,
        0.0
    );
    assert_eq!(
        d.metric("offload_limit_held{kind=\"job\",name=\"primes\"}")
            .await,
        1.0
    );
    assert!(d
        .metrics()
        .await
        .contains("offload_limit_running{kind=\"job\",name=\"timer\"} 0"));
}

#[tokio::test]
async fn a_concurrency_limit_runs_one_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&examples(), &tmp.path().join("data"), TOML);
    let d = Running::start(tmp, cfg).await;
    let long = json!({"job": "timer", "params": {"ticks": 1_000_000}});
    let first = submit(&d, long.clone()).await;
    wait_state(&d, &first, "running").await;
    let second = submit(&d, long).await;
    // The pool has a free worker: a later job of it runs while the second timer waits.
    let other = submit(&d, json!({"job": "hello", "params": {}})).await;
    assert_eq!(wait_result(&d, &other).await["state"], "succeeded");
    let (_, job) = get(&d, &format!("/v1/jobs/{second}")).await;
    assert_eq!(job["state"], "queued", "{job}");
    assert_eq!(
        job["held"],
        json!({"reason": "concurrency_limit", "kind": "job", "name": "timer"}),
        "{job}"
    );
    let (_, limits) = get(&d, "/v1/limits").await;
    let timer = &limits["limits"][1];
    assert_eq!(timer["name"], "timer", "{limits}");
    assert_eq!(timer["running"], 1, "{limits}");
    assert_eq!(timer["held"], "concurrency_limit", "{limits}");
    assert_eq!(
        d.metric("offload_limit_running{kind=\"job\",name=\"timer\"}")
            .await,
        1.0
    );

    // The first ends: the second starts.
    let (s, v) = post(&d, &format!("/v1/jobs/{first}/cancel"), json!({})).await;
    assert!(s < 300, "{v}");
    assert_eq!(wait_result(&d, &first).await["state"], "cancelled");
    let job = wait_state(&d, &second, "running").await;
    assert!(job.get("held").is_none(), "{job}");
    let (s, v) = post(&d, &format!("/v1/jobs/{second}/cancel"), json!({})).await;
    assert!(s < 300, "{v}");
    assert_eq!(wait_result(&d, &second).await["state"], "cancelled");
}

#[test]
fn a_bad_limit_is_a_configuration_error_naming_the_field() {
    let bad = |toml: &str| {
        let mut cfg = ServeConfig::new(examples(), "data");
        cfg.apply_file(toml::from_str(toml).unwrap()).unwrap();
        cfg.validate().unwrap_err().to_string()
    };
    let e = bad("[job.\"primes\"]\nrate = { limit = 0, period_ms = 1000 }");
    assert!(
        e.contains("[job.\"primes\"] rate.limit 0 is out of range"),
        "{e}"
    );
    let e = bad("[[pool]]\nname = \"p\"\nmax_running = -1");
    assert!(
        e.contains("[[pool]] \"p\": max_running -1 is out of range"),
        "{e}"
    );
}
