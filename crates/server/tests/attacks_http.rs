//! The HTTP rows of issue 11's attack table (3, 4, 5, 6), one test per row and per limit,
//! against a daemon booted in this process on 127.0.0.1:0, plus property-based fuzzing of the
//! request decoding. Memory is read from `/proc/self/status` (the daemon lives in the test
//! process; nextest runs each test in its own process).

mod common;
#[path = "attacks_http/support.rs"]
mod support;

use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Value};
use support::{closed_while_dripping, code, exchange, read_answer, request, rss, Served};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

// ---- row 3: browsers cannot drive the daemon ----------------------------------------------

#[tokio::test]
async fn row3_cross_site_and_non_json_requests_are_refused() {
    let d = Served::start("").await;
    let body = br#"{"job": "noop"}"#;
    let json_type = ("content-type", "application/json");
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
    let cases: &[Case<'_>] = &[
        (
            &[json_type, ("origin", "http://evil.example")],
            403,
            "forbidden",
        ),
        (&[json_type, ("origin", "null")], 403, "forbidden"),
        (
            &[json_type, ("sec-fetch-site", "cross-site")],
            403,
            "forbidden",
        ),
        (
            &[json_type, ("sec-fetch-site", "same-site")],
            403,
            "forbidden",
        ),
        (
            &[("content-type", "text/plain")],
            415,
            "unsupported_media_type",
        ),
        (
            &[("content-type", "application/x-www-form-urlencoded")],
            415,
            "unsupported_media_type",
        ),
        (&[], 415, "unsupported_media_type"),
    ];
    for (headers, status, want) in cases {
        let (s, b) = d.call("POST", "/v1/jobs", headers, body).await;
        assert_eq!((s, code(&b).as_str()), (*status, *want), "{headers:?}");
    }
    // A text/plain cancel (what a form or a no-cors fetch sends) is refused too.
    let id = d.submit(json!({"job": "noop", "delay_ms": 60_000})).await;
    let (s, b) = d
        .call(
            "POST",
            &format!("/v1/jobs/{id}/cancel"),
            &[("content-type", "text/plain")],
            b"",
        )
        .await;
    assert_eq!((s, code(&b).as_str()), (415, "unsupported_media_type"));
    // The daemon's own origin (a page it would serve) and a plain client are accepted.
    let own = format!("http://{}", d.host());
    let (s, _) = d
        .call(
            "POST",
            "/v1/jobs",
            &[
                json_type,
                ("origin", &own),
                ("sec-fetch-site", "same-origin"),
            ],
            body,
        )
        .await;
    assert_eq!(s, 201);
    // A cross-site read (an <img> pointing at a long poll) is refused too: it would hold a slot.
    let (s, b) = d
        .call(
            "GET",
            &format!("/v1/jobs/{id}/result?wait=60"),
            &[("sec-fetch-site", "cross-site")],
            b"",
        )
        .await;
    assert_eq!((s, code(&b).as_str()), (403, "forbidden"));
    // Nothing refused was submitted: two jobs in all.
    let (_, page) = d.json("GET", "/v1/jobs", &Value::Null).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2, "{page}");
    d.stop().await;
}

#[tokio::test]
async fn row3_a_foreign_host_is_misdirected_which_stops_dns_rebinding() {
    let d = Served::start("[http]\nallowed_hosts = [\"offload.test\"]\n").await;
    let port = d.addr.port();
    for host in [
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        String::new(),
    ] {
        let mut headers = vec![];
        if !host.is_empty() {
            headers.push(("host", host.as_str()));
        }
        let (s, b) = exchange(d.addr, &request("GET", "/v1/jobs", &headers, b"")).await;
        assert_eq!(
            (s, code(&b).as_str()),
            (421, "misdirected_request"),
            "Host {host:?}"
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "offload.test".into(),
    ] {
        let (s, _) = exchange(d.addr, &request("GET", "/v1/jobs", &[("host", &host)], b"")).await;
        assert_eq!(s, 200, "Host {host:?}");
    }
    d.stop().await;
}

// ---- row 4: connections and time are bounded ----------------------------------------------

#[tokio::test]
async fn row4_slow_headers_are_cut_by_the_server() {
    let d = Served::start("[http]\nheader_timeout_ms = 300\n").await;
    let mut drip = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: ".to_vec();
    drip.extend(std::iter::repeat_n(b'a', 2000));
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    assert!(
        closed_while_dripping(&mut s, &drip, Duration::from_secs(60)).await,
        "a client dripping header bytes kept its connection for a minute"
    );
    // An idle keep-alive connection (no byte at all) is closed too.
    let mut idle = TcpStream::connect(d.addr).await.unwrap();
    assert!(closed_while_dripping(&mut idle, b"", Duration::from_secs(60)).await);
    let (s, _) = d.call("GET", "/healthz", &[], b"").await;
    assert_eq!(s, 200);
    d.stop().await;
}

#[tokio::test]
async fn row4_a_stalled_body_is_cut_with_408() {
    let d = Served::start("[http]\nbody_timeout_ms = 300\n").await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let head = format!(
        "POST /v1/jobs HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 15000000\r\n\r\n{{\"job\": \"noop\", \"params\": \"",
        d.host()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // Never sends the rest: the server answers and closes.
    let (status, body) = read_answer(&mut s).await;
    assert_eq!((status, code(&body).as_str()), (408, "request_timeout"));
    let (_, page) = d.json("GET", "/v1/jobs", &Value::Null).await;
    assert_eq!(page["jobs"], json!([]));
    d.stop().await;
}

#[tokio::test]
async fn row4_connections_over_the_cap_are_refused_while_healthz_answers() {
    let d = Served::start("[http]\nmax_connections = 4\nheader_timeout_ms = 120000\n").await;
    // Four idle connections take every slot (accepted in order, before the next ones).
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(d.addr).await.unwrap());
    }
    let (s, b) = d.call("GET", "/v1/pools", &[], b"").await;
    assert_eq!((s, code(&b).as_str()), (503, "too_many_connections"));
    let (s, b) = d.call("GET", "/healthz", &[], b"").await;
    assert_eq!((s, b.as_slice()), (200, br#"{"status":"ok"}"#.as_slice()));
    drop(held.pop());
    // Refusals are counted (read on a freed slot: the scrape itself needs one).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = counter(
            &d,
            r#"offload_http_refused_total{reason="too_many_connections"}"#,
        )
        .await;
        if n >= 2.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refusals not counted: {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    held.push(TcpStream::connect(d.addr).await.unwrap());
    // A slot freed is a slot served again.
    drop(held.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (s, _) = d.call("GET", "/v1/pools", &[], b"").await;
        if s == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the freed slot never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(held);
    d.stop().await;
}

#[tokio::test]
async fn row4_beyond_the_spare_slots_a_connection_is_refused_at_once() {
    let d = Served::start("[http]\nmax_connections = 1\nheader_timeout_ms = 120000\n").await;
    // One connection takes the slot, then the spare ones (each answers /healthz only).
    let mut held = Vec::new();
    for _ in 0..=16 {
        held.push(TcpStream::connect(d.addr).await.unwrap());
    }
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let req = request("GET", "/v1/pools", &[("host", &d.host())], b"");
    let _ = s.write_all(&req).await;
    // The answer is a 503, or the connection is closed: either way at once, not after a wait.
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        use tokio::io::AsyncReadExt;
        s.read_to_end(&mut raw).await
    })
    .await;
    assert!(read.is_ok(), "a connection over every slot was left open");
    let (status, body) = support::parse(&raw);
    eprintln!("refused with status {status} (0: closed)");
    assert!(
        status == 0 || (status, code(&body).as_str()) == (503, "too_many_connections"),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    drop(held);
    d.stop().await;
}

#[tokio::test]
async fn row4_long_polls_and_event_streams_are_capped() {
    let d = Served::start("[http]\nmax_long_polls = 2\nmax_sse_subscribers = 1\n").await;
    let id = d.submit(json!({"job": "noop", "delay_ms": 600_000})).await;
    let poll = request(
        "GET",
        &format!("/v1/jobs/{id}/result?wait=60"),
        &[("host", &d.host())],
        b"",
    );
    let mut polls = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        s.write_all(&poll).await.unwrap();
        polls.push(s);
    }
    // Once both wait, a third is refused at once (the loop waits for them to be waiting).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (s, b) = exchange(d.addr, &poll).await;
        if s == 503 {
            assert_eq!(code(&b), "too_many_long_polls");
            break;
        }
        assert_eq!(s, 202, "{}", String::from_utf8_lossy(&b));
        assert!(
            std::time::Instant::now() < deadline,
            "the third long poll was never refused"
        );
    }
    // A plain read needs no slot.
    let (s, _) = d
        .call("GET", &format!("/v1/jobs/{id}/result"), &[], b"")
        .await;
    assert_eq!(s, 202);
    // One event stream open (its head read: it holds the slot), the second is refused.
    let mut sse = TcpStream::connect(d.addr).await.unwrap();
    sse.write_all(&request("GET", "/v1/events", &[("host", &d.host())], b""))
        .await
        .unwrap();
    read_head(&mut sse).await;
    let (s, b) = d.call("GET", "/v1/events", &[], b"").await;
    assert_eq!((s, code(&b).as_str()), (503, "too_many_subscribers"));
    assert_eq!(
        counter(
            &d,
            r#"offload_http_refused_total{reason="too_many_subscribers"}"#
        )
        .await,
        1.0
    );
    assert!(
        counter(
            &d,
            r#"offload_http_refused_total{reason="too_many_long_polls"}"#
        )
        .await
            >= 1.0
    );
    drop((polls, sse));
    d.stop().await;
}

/// The value of a counter line of `/metrics` (`name{labels} value`), 0 when it is absent.
async fn counter(d: &Served, line_start: &str) -> f64 {
    let (s, body) = d.call("GET", "/metrics", &[], b"").await;
    assert_eq!(s, 200);
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Reads up to the end of a response head.
async fn read_head(s: &mut TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(60), s.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n,
            1,
            "closed before the head ended: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    head
}

// ---- row 5: bytes are budgeted (event streams, progress) ----------------------------------

#[tokio::test]
async fn row5_a_subscriber_that_never_reads_keeps_memory_bounded() {
    // Events of 256 KiB pass the event cap here, so the subscriber's own buffer is what bounds.
    let d = Served::start("[http]\nmax_event_bytes = 524288\nsse_buffer_bytes = 1048576\n").await;
    let warm = d
        .submit(json!({"job": "spam", "params": {"count": 4, "size": 262_144}}))
        .await;
    assert_eq!(d.wait(&warm).await["state"], "succeeded");
    // A subscriber with a small receive window that reads its head, then nothing.
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    let mut sse = sock.connect(d.addr).await.unwrap();
    sse.write_all(&request("GET", "/v1/events", &[("host", &d.host())], b""))
        .await
        .unwrap();
    read_head(&mut sse).await;
    let before = rss();
    let (count, size) = (300u64, 262_144u64);
    let id = d
        .submit(json!({"job": "spam", "params": {"count": count, "size": size}}))
        .await;
    let r = d.wait(&id).await;
    assert_eq!(r["state"], "succeeded", "{r}");
    let grown = rss().saturating_sub(before);
    let emitted = count * size;
    eprintln!(
        "emitted {} MiB of progress; RSS grew {} MiB",
        emitted >> 20,
        grown >> 20
    );
    assert!(
        grown < emitted / 3,
        "RSS grew {grown} bytes while a non-reading subscriber was sent {emitted}"
    );
    // When it reads again it is told what it lost, then catches up.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut buf = vec![0u8; 1 << 16];
    while !String::from_utf8_lossy(&seen).contains("event: lagged") {
        use tokio::io::AsyncReadExt;
        assert!(std::time::Instant::now() < deadline, "no lagged event");
        let n = tokio::time::timeout(Duration::from_secs(60), sse.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the stream closed");
        seen.extend_from_slice(&buf[..n]);
        // Keep only a tail: the marker is short.
        if seen.len() > 1 << 20 {
            seen.drain(..seen.len() - 4096);
        }
    }
    assert!(counter(&d, "offload_sse_lost_events_total").await >= 1.0);
    let (s, _) = d.call("GET", "/healthz", &[], b"").await;
    assert_eq!(s, 200);
    d.stop().await;
}

#[tokio::test]
async fn row5_progress_over_the_event_cap_becomes_a_marker() {
    let d = Served::start("").await;
    let id = d
        .submit(json!({"job": "spam", "params": {"count": 2, "size": 100_000}}))
        .await;
    assert_eq!(d.wait(&id).await["state"], "succeeded");
    let (_, job) = d.json("GET", &format!("/v1/jobs/{id}"), &Value::Null).await;
    assert_eq!(
        job["progress"]["offload_dropped"]["limit_bytes"], 65536,
        "{job}"
    );
    assert_eq!(counter(&d, "offload_events_capped_total").await, 2.0);
    d.stop().await;
}

// ---- row 6: lists, params ------------------------------------------------------------------

#[tokio::test]
async fn row6_lists_leave_params_and_results_out_unless_asked() {
    let d = Served::start("").await;
    let id = d
        .submit(json!({"job": "noop", "params": {"big": "x".repeat(100_000)}}))
        .await;
    assert_eq!(d.wait(&id).await["state"], "succeeded");
    let (s, page) = d.json("GET", "/v1/jobs", &Value::Null).await;
    assert_eq!(s, 200);
    let job = &page["jobs"][0];
    assert_eq!(job["id"], id.as_str());
    assert!(
        job.get("params").is_none() && job.get("result").is_none(),
        "{job}"
    );
    let (_, page) = d
        .json("GET", "/v1/jobs?include=params,result", &Value::Null)
        .await;
    let job = &page["jobs"][0];
    assert_eq!(job["params"]["big"].as_str().map(str::len), Some(100_000));
    assert_eq!(job["result"]["ok"], true);
    let (_, page) = d.json("GET", "/v1/jobs?include=params", &Value::Null).await;
    assert!(page["jobs"][0].get("result").is_none());
    let (s, v) = d
        .json("GET", "/v1/jobs?include=secrets", &Value::Null)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    d.stop().await;
}

#[tokio::test]
async fn row6_params_over_the_limit_are_413_naming_it() {
    let d = Served::start("[http]\nmax_params_bytes = 65536\n").await;
    let big = json!({"big": "x".repeat(70_000)});
    for (path, body) in [
        ("/v1/jobs", json!({"job": "noop", "params": big})),
        (
            "/v1/jobs/batch",
            json!({"jobs": [{"job": "noop", "params": big}]}),
        ),
        (
            "/v1/cron",
            json!({"name": "c", "cron": "0 3 * * *", "job": "noop", "params": big}),
        ),
    ] {
        let (s, v) = d.json("POST", path, &body).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (413, Some("payload_too_large")),
            "{path}"
        );
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("65536") && msg.contains("http.max_params_bytes"),
            "{msg}"
        );
    }
    let id = d
        .submit(json!({"job": "noop", "params": {"small": 1}}))
        .await;
    assert_eq!(d.wait(&id).await["state"], "succeeded");
    d.stop().await;
}

#[tokio::test]
async fn row6_a_body_over_the_limit_is_413_and_the_sender_reads_it() {
    let d = Served::start("[http]\nmax_body_bytes = 65536\n").await;
    let body = format!(
        "{{\"job\": \"noop\", \"params\": \"{}\"}}",
        "x".repeat(1 << 20)
    );
    let (s, b) = d
        .call(
            "POST",
            "/v1/jobs",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await;
    assert_eq!((s, code(&b).as_str()), (413, "payload_too_large"));
    assert!(String::from_utf8_lossy(&b).contains("65536"));
    d.stop().await;
}

// ---- fuzzing the request decoding ----------------------------------------------------------

/// A JSON value of bounded size and depth.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::hash_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A submit-like body: known fields with values of any type (numbers kept within what the
/// engine's own validation, issue 11 row 1–2, owns), plus stray fields.
fn submit_like() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("job"),
        Just("params"),
        Just("priority"),
        Just("delay_ms"),
        Just("run_at"),
        Just("timeout_ms"),
        Just("max_attempts"),
        Just("idempotency_key"),
        Just("jobs"),
        Just("name"),
        Just("cron"),
        Just("size"),
        Just("missed"),
        Just("stray"),
    ];
    let value = prop_oneof![
        any_json(),
        (0u32..u32::MAX).prop_map(Value::from),
        prop_oneof![
            Just("nope"),
            Just("../etc/passwd"),
            Just(""),
            Just("a/b"),
            Just("* * * * *")
        ]
        .prop_map(Value::from),
    ];
    prop::collection::hash_map(field, value, 0..8)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn route() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        Just(("POST", "/v1/jobs".to_owned())),
        Just(("POST", "/v1/jobs/batch".to_owned())),
        Just(("POST", "/v1/cron".to_owned())),
        Just(("POST", "/v1/pools/node/resize".to_owned())),
        "[a-zA-Z0-9%._~-]{0,16}".prop_map(|s| ("POST", format!("/v1/jobs/{s}/cancel"))),
        "[a-zA-Z0-9%=&._~,-]{0,40}".prop_map(|q| ("GET", format!("/v1/jobs?{q}"))),
        "[a-zA-Z0-9%=&._~-]{0,40}".prop_map(|q| ("GET", format!("/v1/jobs/x/result?{q}"))),
        "[a-zA-Z0-9%._~-]{0,16}".prop_map(|s| ("DELETE", format!("/v1/cron/{s}"))),
    ]
}

/// Every answer: no 5xx; an error has the JSON envelope.
fn check(status: u16, body: &[u8], what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        status != 0 && status < 500,
        "{what}: status {status}: {}",
        String::from_utf8_lossy(body)
    );
    if status >= 400 {
        prop_assert!(
            code(body) != "<not a JSON error>",
            "{what}: {status} {}",
            String::from_utf8_lossy(body)
        );
    }
    Ok(())
}

/// Found by the fuzzing below: axum's own rejection of a path segment that is not UTF-8 was
/// `text/plain`; every error is the JSON envelope now.
#[tokio::test]
async fn regression_a_path_or_query_axum_rejects_still_answers_json() {
    let d = Served::start("").await;
    for (method, path) in [
        ("POST", "/v1/jobs/%80/cancel"),
        ("DELETE", "/v1/cron/%A0"),
        ("GET", "/v1/jobs?limit=-1"),
        ("GET", "/v1/jobs/x/result?wait=abc"),
        ("PUT", "/v1/jobs"),
    ] {
        let (s, b) = d.call(method, path, &[], b"").await;
        assert!((400..500).contains(&s), "{method} {path}: {s}");
        assert_ne!(code(&b), "<not a JSON error>", "{method} {path}: {s}");
    }
    d.stop().await;
}

#[test]
fn fuzz_request_bodies_and_paths_never_5xx_and_errors_are_json() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d = rt.block_on(Served::start(""));
    let host = d.host();
    // 1,024 cases, or `PROPTEST_CASES` (a long campaign: `bench/fuzz/run`). A failure is
    // saved beside this file (`attacks_http.proptest-regressions`) and replayed from then on.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    });
    let input = (
        route(),
        prop_oneof![
            submit_like().prop_map(|v| v.to_string().into_bytes()),
            any_json().prop_map(|v| v.to_string().into_bytes()),
            prop::collection::vec(any::<u8>(), 0..256),
        ],
        prop_oneof![
            Just("application/json"),
            Just("application/json; charset=utf-8"),
            Just("text/plain")
        ],
    );
    runner
        .run(&input, |((method, path), body, ctype)| {
            let req = request(
                method,
                &path,
                &[("host", &host), ("content-type", ctype)],
                &body,
            );
            let (status, answer) = rt.block_on(exchange(d.addr, &req));
            check(status, &answer, &format!("{method} {path}"))
        })
        .unwrap();
    // Still serving.
    let (s, _) = rt.block_on(d.call("GET", "/healthz", &[], b""));
    assert_eq!(s, 200);
    rt.block_on(d.stop());
}
