//! Issue 11, rows 1, 2, 10, 11 and 12, and the file modes of deliverable 8: what an attacker sent
//! to `offload serve`, against a daemon booted in-process (`Daemon::start` on 127.0.0.1:0 in a
//! tempdir, the embedded SQLite store, real Node workers). Each test asserts the typed refusal,
//! and that the daemon still runs jobs afterwards.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use offload_server::config::PoolSection;
use offload_server::ServeConfig;
use serde_json::{json, Value};

mod common;

use common::{sqlite, Running};

const TOKEN: &str = "h4-attack-token-0123456789";
const STORE_URL: &str = "postgres://offload:db-password-42@127.0.0.1:5432/offload";

/// A daemon in a tempdir with a jobs folder (`common::Running`, with a bearer token when set).
struct Booted {
    running: Running,
    url: String,
    token: Option<String>,
    tmp: tempfile::TempDir,
}

impl Booted {
    fn jobs(&self) -> PathBuf {
        self.tmp.path().join("jobs")
    }

    fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let mut r = client().post(format!("{}{path}", self.url)).json(&body);
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let mut r = client().get(format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Long-polls a job until it ends (a hang guard of two minutes).
    async fn result(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, v) = self.get(&format!("/v1/jobs/{id}/result?wait=20")).await;
            if status == 200 {
                return v;
            }
            assert_eq!(status, 202, "{v}");
            assert!(Instant::now() < deadline, "job {id} never ended: {v}");
        }
    }

    /// A job that must still run after the attack.
    async fn still_runs_jobs(&self) {
        let (s, v) = self
            .post(
                "/v1/jobs",
                json!({"job": "echo", "params": {"after": true}}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let r = self.result(v["id"].as_str().unwrap()).await;
        assert_eq!(r["state"], "succeeded", "{r}");
        assert_eq!(r["result"], json!({"after": true}));
    }

    async fn stop(self) {
        self.running.stop_within(Duration::from_secs(5)).await;
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap()
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Boots a daemon whose jobs folder holds `echo.js` and `env.js`; `tune` adjusts the config.
async fn boot(tune: impl FnOnce(&mut ServeConfig)) -> Booted {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    write(
        &jobs.join("echo.js"),
        "module.exports = async (params) => params;\n",
        0o644,
    );
    write(
        &jobs.join("env.js"),
        "module.exports = async () => ({ ...process.env });\n",
        0o644,
    );
    write(
        &jobs.join("envproc.js"),
        "module.exports = async () => ({ ...process.env });\n",
        0o644,
    );
    let data = tmp.path().join("data");
    let mut cfg = ServeConfig::new(&jobs, &data);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    tune(&mut cfg);
    let token = cfg.token.clone();
    let store = sqlite(&cfg);
    let running = Running::start_with(cfg, store).await;
    let url = running.url();
    Booted {
        running,
        url,
        token,
        tmp,
    }
}

fn assert_invalid(status: u16, v: &Value, needles: &[&str]) {
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    let msg = v["error"]["message"].as_str().unwrap();
    for n in needles {
        assert!(msg.contains(n), "{n:?} is not in {msg:?}");
    }
}

/// Row 1: a huge timeout panicked the pool actor; now it is refused, naming the limit, on a
/// single submit and in a batch, and a pool timeout over the maximum is a configuration error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row1_a_huge_timeout_is_refused_naming_the_limit() {
    let d = boot(|_| {}).await;
    let (s, v) = d
        .post(
            "/v1/jobs",
            json!({"job": "echo", "timeout_ms": 100_000_000_000u64}),
        )
        .await;
    assert_invalid(
        s,
        &v,
        &["timeout_ms", "100000000000", "604800000", "7 days"],
    );
    let (s, v) = d
        .post("/v1/jobs", json!({"job": "echo", "timeout_ms": u64::MAX}))
        .await;
    assert_invalid(s, &v, &["timeout_ms"]);
    let (s, v) = d
        .post(
            "/v1/jobs/batch",
            json!({"jobs": [{"job": "echo"}, {"job": "echo", "timeout_ms": 604_800_001u64}]}),
        )
        .await;
    assert_invalid(s, &v, &["jobs[1]", "timeout_ms"]);
    for (field, value, needle) in [
        ("max_attempts", json!(101), "1..=100"),
        ("max_attempts", json!(0), "1..=100"),
        ("priority", json!(1001), "-1000..=1000"),
        ("priority", json!(i32::MIN), "-1000..=1000"),
    ] {
        let mut body = json!({"job": "echo"});
        body[field] = value;
        let (s, v) = d.post("/v1/jobs", body).await;
        assert_invalid(s, &v, &[field, needle]);
    }
    // The largest allowed timeout is accepted.
    let (s, v) = d
        .post(
            "/v1/jobs",
            json!({"job": "echo", "params": 1, "timeout_ms": 604_800_000u64}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let r = d.result(v["id"].as_str().unwrap()).await;
    assert_eq!(r["state"], "succeeded", "{r}");
    d.still_runs_jobs().await;
    d.stop().await;

    // `[[pool]] timeout_ms` reaches the same rule, as a configuration error.
    let mut cfg = ServeConfig::new("jobs", "data");
    let mut pool: PoolSection = toml::from_str("name = \"slow\"").unwrap();
    pool.timeout_ms = Some(100_000_000_000);
    cfg.pools.push(pool);
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("timeout_ms") && e.contains("604800000"), "{e}");
}

/// Row 2: `delay_ms` = i64::MAX wrapped `run_at` negative and the job ran at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row2_a_delay_past_one_year_is_refused() {
    let d = boot(|_| {}).await;
    for delay in [i64::MAX as u64, u64::MAX, 31_536_000_001] {
        let (s, v) = d
            .post("/v1/jobs", json!({"job": "echo", "delay_ms": delay}))
            .await;
        assert_invalid(s, &v, &["delay_ms", "31536000000", "365 days"]);
    }
    for at in [i64::MAX, i64::MIN, -1] {
        let (s, v) = d
            .post("/v1/jobs", json!({"job": "echo", "run_at": at}))
            .await;
        assert_invalid(s, &v, &["run_at"]);
    }
    // Nothing was stored by the refusals.
    let (_, page) = d.get("/v1/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 0, "{page}");
    // A delay within the year is scheduled, not run.
    let (s, v) = d
        .post(
            "/v1/jobs",
            json!({"job": "echo", "delay_ms": 31_536_000_000u64}),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (201, Some("scheduled")), "{v}");
    d.still_runs_jobs().await;
    d.stop().await;
}

fn assert_clean_env(env: &Value) {
    let env = env.as_object().expect("the job returns its environment");
    assert!(env.contains_key("PATH"), "{env:?}");
    for (k, v) in env {
        let v = v.as_str().unwrap_or("");
        assert!(
            !matches!(k.as_str(), "OFFLOAD_TOKEN" | "OFFLOAD_STORE" | "H4_SECRET"),
            "{k} reached the job"
        );
        assert!(!v.contains(TOKEN), "{k} holds the token");
        assert!(!v.contains("db-password-42"), "{k} holds the store URL");
    }
}

/// Row 10: a job saw `OFFLOAD_TOKEN` and `OFFLOAD_STORE`. Now jobs get an allow-listed
/// environment, in resident pools and in fresh processes alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row10_a_job_sees_neither_the_token_nor_the_store_url() {
    // The daemon's own environment holds its secrets, as `offload serve` would have them.
    // (Edition 2021; nextest runs each test in its own process.)
    std::env::set_var("OFFLOAD_TOKEN", TOKEN);
    std::env::set_var("OFFLOAD_STORE", STORE_URL);
    std::env::set_var("H4_COPY_OF_TOKEN", format!("Bearer {TOKEN}"));
    std::env::set_var("H4_SECRET", "configured-as-secret");
    std::env::set_var("H4_ALLOWED", "visible");
    let d = boot(|cfg| {
        cfg.token = Some(TOKEN.into());
        cfg.store = Some(STORE_URL.into());
        cfg.job_env.allow = vec!["H4_*".into()];
        cfg.job_env.secret = vec!["H4_SECRET".into()];
        let mut proc: PoolSection = toml::from_str(
            "name = \"fresh\"\njobs = [\"envproc\"]\nkind = \"node\"\nisolation = \"process\"",
        )
        .unwrap();
        proc.max = Some(1);
        cfg.pools.push(proc);
    })
    .await;
    for job in ["env", "envproc"] {
        let (s, v) = d.post("/v1/jobs", json!({"job": job})).await;
        assert_eq!(s, 201, "{v}");
        let r = d.result(v["id"].as_str().unwrap()).await;
        assert_eq!(r["state"], "succeeded", "{job}: {r}");
        assert_clean_env(&r["result"]);
        assert_eq!(r["result"]["H4_ALLOWED"], "visible", "{job}: allow-listed");
        assert!(r["result"].get("H4_COPY_OF_TOKEN").is_none(), "{job}");
    }
    d.still_runs_jobs().await;
    d.stop().await;
}

/// Row 11: executables under hidden folders or `node_modules` ran as jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row11_hidden_and_node_modules_files_are_not_jobs() {
    let d = boot(|_| {}).await;
    for f in [
        ".hidden/tool",
        "node_modules/.bin/x",
        ".git/hooks/y",
        ".tool",
    ] {
        write(&d.jobs().join(f), "#!/bin/sh\necho pwned\n", 0o755);
        let (s, v) = d.post("/v1/jobs", json!({"job": f})).await;
        assert_invalid(s, &v, &["invalid job name"]);
    }
    d.still_runs_jobs().await;
    d.stop().await;
}

/// Row 11: error texts sent to clients name no absolute path and no symlink target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row11_error_texts_hold_no_absolute_path() {
    let d = boot(|_| {}).await;
    let outside = d.tmp.path().join("outside-secret.js");
    write(&outside, "module.exports = () => 1;\n", 0o644);
    std::os::unix::fs::symlink(&outside, d.jobs().join("escape.js")).unwrap();
    write(
        &d.jobs().join("twin.js"),
        "module.exports = () => 1;\n",
        0o644,
    );
    write(
        &d.jobs().join("twin.py"),
        "def handle(p, c):\n    return 1\n",
        0o644,
    );
    let root = d.tmp.path().canonicalize().unwrap().display().to_string();
    let given = d.tmp.path().display().to_string();
    for job in ["escape", "missing", "twin", "../etc/passwd", "/etc/passwd"] {
        let (s, v) = d.post("/v1/jobs", json!({"job": job})).await;
        assert!(s == 400 || s == 404, "{job}: {s} {v}");
        let text = v.to_string();
        assert!(!text.contains(&root), "{job}: {text}");
        assert!(!text.contains(&given), "{job}: {text}");
        assert!(!text.contains("outside-secret"), "{job}: {text}");
    }
    let (_, v) = d.post("/v1/jobs", json!({"job": "twin"})).await;
    let text = v["error"]["message"].as_str().unwrap();
    assert!(
        text.contains("twin.js") && text.contains("twin.py"),
        "{text}"
    );
    d.still_runs_jobs().await;
    d.stop().await;
}

/// Row 12: the same idempotency key with another job or params returned the other job's id
/// (since schema v6 keys are scoped by job name: another job name makes its own job).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row12_a_reused_key_with_another_job_or_params_is_a_conflict() {
    let d = boot(|_| {}).await;
    let first = json!({"job": "echo", "params": {"card": "4111-first-secret"},
                       "idempotency_key": "order-42"});
    let (s, v) = d.post("/v1/jobs", first.clone()).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let r = d.result(&id).await;
    assert_eq!(r["state"], "succeeded", "{r}");
    // The same job and params: the first job, as before.
    let (s, v) = d.post("/v1/jobs", first).await;
    assert_eq!(
        (s, v["id"].as_str(), v["duplicate"].as_bool()),
        (200, Some(id.as_str()), Some(true)),
        "{v}"
    );
    // Keys are scoped by job name (schema v6): another job with the key is a job of its own,
    // and its answer holds nothing of the first.
    let (s, v) = d
        .post(
            "/v1/jobs",
            json!({"job": "env", "params": {"card": "4111-first-secret"}, "idempotency_key": "order-42"}),
        )
        .await;
    assert_eq!((s, v["duplicate"].as_bool()), (201, Some(false)), "{v}");
    assert_ne!(v["id"].as_str(), Some(id.as_str()), "{v}");
    let other_job = v["id"].as_str().unwrap().to_owned();
    assert_eq!(d.result(&other_job).await["state"], "succeeded");
    // Other params: 409, and nothing of the first job in the answer.
    for other in [json!({"job": "echo", "idempotency_key": "order-42"})] {
        let (s, v) = d.post("/v1/jobs", other.clone()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (409, Some("conflict")),
            "{v}"
        );
        let text = v.to_string();
        assert!(text.contains("order-42"), "the key is named: {text}");
        assert!(!text.contains(&id), "the first job's id leaked: {text}");
        if other["params"]["card"] != "4111-first-secret" {
            assert!(
                !text.contains("4111-first-secret"),
                "the first job's params leaked: {text}"
            );
        }
        // In a batch too.
        let (s, v) = d
            .post("/v1/jobs/batch", json!({"jobs": [{"job": "echo"}, other]}))
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (409, Some("conflict")),
            "{v}"
        );
    }
    // Nothing of the refused batches was stored.
    let (_, page) = d.get("/v1/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2, "{page}");
    d.still_runs_jobs().await;
    d.stop().await;
}

/// Deliverable 8: the data folder is private, the database and its side files too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_folder_is_0700_and_the_database_0600() {
    let d = boot(|_| {}).await;
    d.still_runs_jobs().await;
    let mode = |p: &Path| p.metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.data()), 0o700);
    for f in ["offload.db", "offload.db-wal", "offload.db-shm"] {
        let p = d.data().join(f);
        assert!(p.exists(), "{f} is missing");
        assert_eq!(mode(&p), 0o600, "{f}");
    }
    d.stop().await;
}
