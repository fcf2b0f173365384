//! The contract of `offload-api` against a daemon booted in this process: the served OpenAPI
//! document is the generated one, and the requests a schema-driven fuzzer found the document
//! and the daemon disagreeing on (issue 12) now agree. `scripts/api-fuzz` runs the fuzzer
//! itself.

mod common;
#[path = "attacks_http/support.rs"]
mod support;

use serde_json::{json, Value};
use support::{code, Served};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Regressions of the fuzzer's findings: each request, what the document says of it, and the
/// daemon's answer, which must be the JSON envelope with the documented status.
#[tokio::test]
async fn regression_what_the_fuzzer_found_agrees_with_the_document() {
    let d = Served::start("").await;
    let (_, doc) = d.call("GET", "/v1/openapi.json", &[], b"").await;
    let doc: Value = serde_json::from_slice(&doc).unwrap();
    let submit = &doc["components"]["schemas"]["Submit"]["properties"];
    // An empty job name: the document forbids it, the daemon refuses it.
    assert_eq!(submit["job"]["minLength"], 1);
    let (s, v) = d.json("POST", "/v1/jobs", &json!({"job": ""})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    // An empty schedule name: the same.
    let add = &doc["components"]["schemas"]["AddSchedule"]["properties"];
    assert_eq!(add["name"]["minLength"], 1);
    let (s, v) = d
        .json(
            "POST",
            "/v1/cron",
            &json!({"name": "", "cron": "0 3 * * *", "job": "noop"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    // `size: 5.0` is the JSON Schema integer 5: accepted (no such pool here: 404).
    let (s, v) = d
        .json("POST", "/v1/pools/nope/resize", &json!({"size": 5.0}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    let (s, v) = d
        .json("POST", "/v1/pools/nope/resize", &json!({"size": 5.5}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{v}"
    );
    // A cursor of arbitrary text, `limit=0`, `limit=1001`, a bad `include`: the document's
    // `format: uuid`, `minimum: 1`, `maximum: 1000` and pattern, refused as JSON.
    for path in [
        "/v1/jobs?cursor=not-a-cursor",
        "/v1/jobs?limit=0",
        "/v1/jobs?limit=1001",
        "/v1/jobs?limit=x",
        "/v1/jobs?include=params,",
        "/v1/jobs?state=nope",
        "/v1/jobs/0193a0c4-0000-7000-8000-000000000000/result?wait=61",
    ] {
        let (s, b) = d.call("GET", path, &[], b"").await;
        assert_eq!((s, code(&b).as_str()), (400, "invalid_request"), "{path}");
    }
    let (s, b) = d
        .call("GET", "/v1/jobs?limit=1000&include=params,result", &[], b"")
        .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    // Unknown routes and wrong methods: the envelope, and a 405 keeps its `Allow`.
    let (s, b) = d.call("GET", "/v2/nothing", &[], b"").await;
    assert_eq!((s, code(&b).as_str()), (404, "not_found"));
    let mut c = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let req = support::request("PATCH", "/v1/jobs", &[("host", &d.host())], b"");
    c.write_all(&req).await.unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 405"), "{text}");
    assert!(text.contains("\r\nallow: "), "{text}");
    assert!(text.contains("\"method_not_allowed\""), "{text}");
    d.stop().await;
}

/// Without a token the document declares no security; every operation lists the guard's
/// answers.
#[tokio::test]
async fn the_served_document_states_the_configuration() {
    let d = Served::start("").await;
    let (s, doc) = d.call("GET", "/v1/openapi.json", &[], b"").await;
    assert_eq!(s, 200);
    let doc: Value = serde_json::from_slice(&doc).unwrap();
    assert!(doc.get("security").is_none(), "no token, no bearer auth");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for status in ["403", "408", "413", "415", "421", "500", "503"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{method} {path} {status}"
                );
            }
            assert!(op["responses"].get("401").is_none(), "{method} {path}");
        }
    }
    d.stop().await;
}
