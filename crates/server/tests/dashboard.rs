//! The dashboard's security and refusals over plain HTTP (the pages in a real browser are
//! `tests/browser/`): without a session a page sends to the login form and an action is
//! refused; a wrong token opens nothing; the session cookie's flags; a cross-site or plain-form
//! POST is refused and changes nothing; unknown ids answer a not-found page; the HTML routes
//! stay out of the OpenAPI document.

mod common;

use common::http::{get, submit, wait_state};
use common::{config, examples, Running};
use serde_json::json;

async fn start(token: Option<&str>) -> Running {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&examples(), &tmp.path().join("data"), "");
    cfg.token = token.map(str::to_owned);
    Running::start(tmp, cfg).await
}

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(common::DEADLINE)
        .build()
        .unwrap()
}

/// A job left `dead` (one attempt of a job that raises).
async fn dead_job(d: &Running, token: Option<&str>) -> String {
    let mut req = browser()
        .post(format!("{}/v1/jobs", d.url()))
        .json(&json!({"job": "fails", "max_attempts": 1}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let v: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    if token.is_none() {
        wait_state(d, &id, "dead").await;
    }
    id
}

#[tokio::test]
async fn without_a_session_pages_ask_to_sign_in_and_actions_are_refused() {
    let d = start(Some("s3cret")).await;
    let c = browser();
    let r = c
        .get(format!("{}/ui/jobs?state=dead", d.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"],
        "/ui/login?next=%2Fui%2Fjobs%3Fstate%3Ddead"
    );
    let r = c.get(format!("{}/ui/login", d.url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("type=\"password\""));
    let id = dead_job(&d, Some("s3cret")).await;
    for (method, path) in [
        ("POST", format!("/ui/jobs/{id}/retry")),
        ("POST", format!("/ui/jobs/{id}/cancel")),
        ("POST", "/ui/pools/node/resize".to_owned()),
        ("GET", "/ui/jobs/rows".to_owned()),
        ("GET", "/ui/events".to_owned()),
    ] {
        let r = c
            .request(method.parse().unwrap(), format!("{}{path}", d.url()))
            .header("hx-request", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{method} {path}");
    }
    // The API's bearer token does not stand in for a dashboard session, and vice versa.
    let r = c
        .get(format!("{}/ui/jobs", d.url()))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_the_right_one_opens_a_session_cookie() {
    let d = start(Some("s3cret")).await;
    let c = browser();
    let login = |token: &'static str| {
        c.post(format!("{}/ui/login", d.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&next=%2Fui%2Fpools"))
            .send()
    };
    let r = login("wrong").await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("not this daemon"));

    let r = login("s3cret").await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/ui/pools");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let (pair, flags) = cookie.split_once(';').unwrap();
    let (name, value) = pair.split_once('=').unwrap();
    assert_eq!(name, "offload_session");
    assert_eq!(value.len(), 64, "a random id, not the token: {value}");
    assert!(!value.contains("s3cret"));
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(flags.contains(flag), "{flag} in {cookie}");
    }
    let page = c
        .get(format!("{}/ui/pools", d.url()))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("<h1>Pools</h1>"));

    // A forged or ended session opens nothing.
    let forged = c
        .get(format!("{}/ui/pools", d.url()))
        .header("cookie", format!("offload_session={}", "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 303);
    let out = c
        .post(format!("{}/ui/logout", d.url()))
        .header("cookie", pair)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    let after = c
        .get(format!("{}/ui/pools", d.url()))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 303);
}

#[tokio::test]
async fn a_cross_site_or_plain_form_post_is_refused_and_changes_nothing() {
    let d = start(None).await;
    let id = dead_job(&d, None).await;
    let c = browser();
    let url = format!("{}/ui/jobs/{id}/retry", d.url());
    let refused: [(&str, &str); 4] = [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.example"),
        ("host", "evil.example"),
    ];
    for (name, value) in refused {
        let r = c
            .post(&url)
            .header("hx-request", "true")
            .header(name, value)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(status == 403 || status == 421, "{name}: {value} → {status}");
        assert!(r.text().await.unwrap().contains("<h1>"), "an HTML refusal");
    }
    // A link followed from another site opens the page (a read, not framed, no session)...
    let link = c
        .get(format!("{}/ui/jobs/{id}", d.url()))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .send()
        .await
        .unwrap();
    assert_eq!(link.status().as_u16(), 200);
    // ...but another site's script or frame reading it does not.
    for (mode, dest) in [("cors", "empty"), ("navigate", "iframe")] {
        let r = c
            .get(format!("{}/ui/jobs/{id}", d.url()))
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", mode)
            .header("sec-fetch-dest", dest)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{mode} {dest}");
    }
    // A plain HTML form (no HX-Request) from anywhere cannot act either.
    let r = c
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("x=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (_, job) = get(&d, &format!("/v1/jobs/{id}")).await;
    assert_eq!(job["state"], "dead", "no refused request touched the job");
    let rounds = job["max_attempts"].as_u64().unwrap();

    // The page's own request does.
    let r = c
        .post(&url)
        .header("hx-request", "true")
        .header("origin", d.url())
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["hx-trigger"], "dash-refresh");
    // Retried: a fresh round of attempts (the job fails again, so it may already be dead again:
    // the round, not the state, shows the retry).
    let (_, job) = get(&d, &format!("/v1/jobs/{id}")).await;
    assert!(job["max_attempts"].as_u64().unwrap() > rounds, "{job}");
}

#[tokio::test]
async fn pages_carry_a_strict_policy_and_refusals_say_why() {
    let d = start(None).await;
    let c = browser();
    let r = c.get(format!("{}/", d.url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let body = r.text().await.unwrap();
    assert!(!body.contains("<script>"), "no inline script");
    assert!(!body.contains("style=\""), "no inline style");

    // Unknown ids and names: a not-found page.
    for path in [
        "/ui/jobs/01a23f4e-0000-7000-8000-000000000000".to_owned(),
        "/ui/jobs/not-an-id".to_owned(),
        "/ui/nowhere".to_owned(),
    ] {
        let r = c.get(format!("{}{path}", d.url())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
        assert!(r.text().await.unwrap().contains("<h1>Not found</h1>"));
    }
    let post = |path: String| {
        c.post(format!("{}{path}", d.url()))
            .header("hx-request", "true")
            .send()
    };
    let r = post("/ui/schedules/nope/pause".into()).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // An action on a job in the wrong state says why it was refused.
    let id = submit(&d, json!({"job": "hello"})).await;
    wait_state(&d, &id, "succeeded").await;
    let r = post(format!("/ui/jobs/{id}/retry")).await.unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("only a dead or cancelled job can be retried"),
        "{text}"
    );
    let r = post("/ui/pools/node/resize".into()).await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "a resize without a size");

    // The jobs page filters by schedule: the job above is no run of one.
    let page = |q: &'static str| {
        let url = format!("{}/ui/jobs?{q}", d.url());
        let c = c.clone();
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert!(page("job=hello").await.contains(&id[id.len() - 8..]));
    let filtered = page("job=hello&schedule=nightly").await;
    assert!(
        filtered.contains("No job matches these filters."),
        "{filtered}"
    );
    assert!(
        filtered.contains("value=\"nightly\""),
        "the filter is kept in the form"
    );

    // The HTML routes are not the JSON API.
    let (_, doc) = get(&d, "/v1/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths
        .keys()
        .all(|p| p.starts_with("/v1/") || p == "/healthz" || p == "/metrics"));
}

/// The operations the store offers, from the dashboard: pause and resume a pool (the pools
/// table then offers the other button), delete one finished job, and retry or delete every dead
/// job that matches the dead page's filters.
#[tokio::test]
async fn pools_pause_and_resume_and_dead_jobs_are_retried_or_deleted_in_bulk() {
    let d = start(None).await;
    let c = browser();
    let post = |path: String| {
        c.post(format!("{}{path}", d.url()))
            .header("hx-request", "true")
            .send()
    };
    // The node pool exists once a job ran in it.
    let id = submit(&d, json!({"job": "hello"})).await;
    wait_state(&d, &id, "succeeded").await;

    let r = post("/ui/pools/node/pause".into()).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("Pool node is paused"));
    let table = c
        .get(format!("{}/ui/pools/table", d.url()))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(table.contains("/ui/pools/node/resume"), "{table}");
    let (_, q) = get(&d, "/v1/queues").await;
    assert_eq!(q["queues"][0]["name"], "node", "{q}");
    let r = post("/ui/pools/node/resume".into()).await.unwrap();
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Pool node is running again"));
    let (_, q) = get(&d, "/v1/queues").await;
    assert_eq!(q["queues"].as_array().map(Vec::len), Some(0), "{q}");

    // Delete one finished job; a second delete finds nothing.
    let r = post(format!("/ui/jobs/{id}/delete")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("is deleted"));
    let (s, _) = get(&d, &format!("/v1/jobs/{id}")).await;
    assert_eq!(s, 404);
    let r = post(format!("/ui/jobs/{id}/delete")).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Two dead jobs: "retry all matching" with a filter on another name touches none; without
    // it, both go back to the queue (and die again); then "delete all matching" removes them.
    let dead = [dead_job(&d, None).await, dead_job(&d, None).await];
    let r = post("/ui/dead/retry?job=hello".into()).await.unwrap();
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("0 dead job(s) queued again"));
    let r = post("/ui/dead/retry?job=fails".into()).await.unwrap();
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("2 dead job(s) queued again"));
    for id in &dead {
        // Queued again by the retry, then dead again after its second attempt.
        wait_state(&d, id, "dead").await;
        let (_, j) = get(&d, &format!("/v1/jobs/{id}")).await;
        assert_eq!(j["attempts"].as_array().map(Vec::len), Some(2), "{j}");
    }
    let r = post("/ui/dead/retry?since=yesterday".into()).await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        400,
        "a bad time is refused, naming the field"
    );
    assert!(r.text().await.unwrap().contains("since"));
    // The bulk calls cannot filter by schedule: with one set, nothing is done.
    let r = post("/ui/dead/delete?job=fails&schedule=nightly".into())
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("schedule"));
    for id in &dead {
        assert_eq!(get(&d, &format!("/v1/jobs/{id}")).await.0, 200);
    }
    let r = post("/ui/dead/delete?job=fails".into()).await.unwrap();
    assert!(r.text().await.unwrap().contains("2 dead job(s) deleted"));
    for id in &dead {
        assert_eq!(get(&d, &format!("/v1/jobs/{id}")).await.0, 404);
    }
}

/// A job name is paused and resumed from the dashboard (its jobs wait, then run), and a pool's
/// workers are recycled (new pids, through the API's handler).
#[tokio::test]
async fn a_job_name_is_paused_and_resumed_and_a_pools_workers_are_recycled() {
    let d = start(None).await;
    let c = browser();
    let post = |path: &str| {
        c.post(format!("{}{path}", d.url()))
            .header("hx-request", "true")
            .header("content-type", "application/x-www-form-urlencoded")
    };
    let r = post("/ui/queues/pause").body("job=").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "an empty name is refused");
    let r = post("/ui/queues/pause")
        .body("job=hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("Job name hello is paused"));
    let id = submit(&d, json!({"job": "hello"})).await;
    let page = |path: String| {
        let c = c.clone();
        async move { c.get(path).send().await.unwrap().text().await.unwrap() }
    };
    let pools = page(format!("{}/ui/pools", d.url())).await;
    assert!(pools.contains("/ui/queues/hello/resume"), "{pools}");
    let jobs = page(format!("{}/ui/jobs?job=hello", d.url())).await;
    assert!(jobs.contains("is paused"), "{jobs}");
    // Held: still queued (the claim skips it) until resumed.
    let (_, j) = get(&d, &format!("/v1/jobs/{id}")).await;
    assert_eq!(j["state"], "queued", "{j}");
    let r = post("/ui/queues/hello/resume").send().await.unwrap();
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Job name hello is running again"));
    wait_state(&d, &id, "succeeded").await;
    let jobs = page(format!("{}/ui/jobs?job=hello", d.url())).await;
    assert!(jobs.contains("Pause hello"), "{jobs}");

    // Recycle: every worker of the pool is replaced.
    let (_, before) = get(&d, "/v1/workers").await;
    let old: Vec<i64> = before["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["pool"] == "node")
        .map(|w| w["pid"].as_i64().unwrap())
        .collect();
    assert!(!old.is_empty(), "{before}");
    let r = post("/ui/pools/node/recycle").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("being replaced"));
    let deadline = std::time::Instant::now() + common::DEADLINE;
    loop {
        let (_, now) = get(&d, "/v1/workers").await;
        let pids: Vec<i64> = now["workers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["pool"] == "node")
            .map(|w| w["pid"].as_i64().unwrap())
            .collect();
        // The old workers stop (an idle pool of `min = 0` starts new ones on demand).
        if pids.iter().all(|p| !old.contains(p)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{now}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (s, v) = common::http::post(&d, "/v1/pools/nope/recycle", json!({})).await;
    assert_eq!(s, 404, "{v}");
    let id = submit(&d, json!({"job": "hello"})).await;
    let job = wait_state(&d, &id, "succeeded").await;
    let pid = job["attempts"][0]["pid"].as_i64().unwrap();
    assert!(!old.contains(&pid), "a new worker ran it: {job}");
}

/// The overview lists the store's nodes (on SQLite, this one), and its partial refreshes them.
#[tokio::test]
async fn the_overview_lists_the_nodes() {
    let d = start(None).await;
    let c = browser();
    for path in ["/", "/ui/overview/nodes"] {
        let r = c.get(format!("{}{path}", d.url())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let body = r.text().await.unwrap();
        // The page holds the region; the partial is its content.
        assert_eq!(body.contains("id=\"nodes\""), path == "/", "{path}: {body}");
        assert!(body.contains("data-node=\"local\""), "{path}: {body}");
        assert!(
            body.contains("(this node)") && body.contains("active"),
            "{path}: {body}"
        );
    }
}
