//! The OpenAPI document served at `GET /v1/openapi.json`: generated from `offload_api`'s types
//! and the handlers' `#[utoipa::path]` (see `super::api`), then completed with what holds for
//! every route and with this daemon's configuration:
//!
//! - every operation lists the answers the guard and the stack can give any request (`400` an
//!   unreadable body, `403`, `408`, `413`, `415`, `421`, `500`, `503` too many connections),
//!   and `401` when a token is configured;
//! - the security scheme is bearer auth when a token is configured (`/healthz` stays open),
//!   none otherwise;
//! - `timeout_ms` and a resize's `size` are bounded by the configured `max_timeout_ms` and
//!   `[limits] max_workers_per_pool`.

use serde_json::{json, Map, Value};
use utoipa::OpenApi;

/// What the document states of a daemon's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// A bearer token is required.
    pub(crate) token: bool,
    /// `max_timeout_ms`.
    pub(crate) max_timeout_ms: u64,
    /// `[limits] max_workers_per_pool`.
    pub(crate) max_workers_per_pool: usize,
    /// Today's latest `run_at` (`offload_api::limits::latest_run_at`).
    pub(crate) latest_run_at: i64,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "offload serve",
        version = "1",
        description = "The HTTP/JSON API of offload's daemon, generated from the offload-api \
                       crate. Human-readable reference: docs/http-api.md.",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(offload_api::ErrorBody, offload_api::ErrorCode))
)]
struct Base;

/// The document's fixed part (info, shared schemas); the routes add their paths.
pub(crate) fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

/// Answers any request may get, whatever its route: `(status, description)`.
const EVERY_ROUTE: &[(&str, &str)] = &[
    (
        "400",
        "`invalid_request` / `invalid_json`: a parameter or the body is not valid",
    ),
    (
        "403",
        "`forbidden`: a request from another site (Sec-Fetch-Site, Origin)",
    ),
    (
        "408",
        "`request_timeout`: the body did not arrive within http.body_timeout_ms",
    ),
    (
        "413",
        "`payload_too_large`: the body is over http.max_body_bytes",
    ),
    (
        "415",
        "`unsupported_media_type`: a body that is not application/json",
    ),
    (
        "421",
        "`misdirected_request`: a Host that does not name this daemon",
    ),
    ("500", "`internal`: a bug or a storage failure (logged)"),
    (
        "503",
        "`too_many_connections` (or the route's own limit): retry later",
    ),
];

/// The served document, as text: `doc` completed for `settings`.
pub(crate) fn finish(doc: utoipa::openapi::OpenApi, settings: &Settings) -> String {
    let mut doc = serde_json::to_value(&doc).unwrap_or(Value::Null);
    complete(&mut doc, settings);
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn complete(doc: &mut Value, s: &Settings) {
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for op in item.values_mut().filter_map(Value::as_object_mut) {
                add_answers(path, op, s);
            }
        }
    }
    add_links(doc);
    let submit = "/components/schemas/Submit";
    if let Some(submit) = doc.pointer_mut(submit).and_then(Value::as_object_mut) {
        // `delay_ms` and `run_at` are exclusive.
        submit.insert("not".into(), json!({"required": ["delay_ms", "run_at"]}));
    }
    set(
        doc,
        "/components/schemas/Submit/properties/timeout_ms/maximum",
        json!(s.max_timeout_ms),
    );
    set_maximum(
        doc,
        "/components/schemas/Submit/properties/run_at",
        json!(s.latest_run_at),
    );
    set(
        doc,
        "/components/schemas/Resize/properties/size/maximum",
        json!(s.max_workers_per_pool),
    );
    // A backoff's kinds take no other field (`deny_unknown_fields`), and each entry of a list
    // is bounded like a delay: say so, so that "valid by the document" means "accepted".
    if let Some(kinds) = doc
        .pointer_mut("/components/schemas/Backoff/oneOf")
        .and_then(Value::as_array_mut)
    {
        for kind in kinds.iter_mut().filter_map(Value::as_object_mut) {
            kind.insert("additionalProperties".into(), Value::Bool(false));
            if let Some(items) = kind
                .get_mut("properties")
                .and_then(|p| p.pointer_mut("/delays_ms/items"))
                .and_then(Value::as_object_mut)
            {
                items.insert("maximum".into(), json!(offload_api::limits::MAX_BACKOFF_MS));
            }
        }
    }
    // A time zone is one of the names the daemon parses (chrono-tz's IANA database), so that
    // "valid by the document" means "accepted" (a free string let the fuzzer send nonsense).
    if let Some(tz) = doc
        .pointer_mut("/components/schemas/AddSchedule/properties/timezone")
        .and_then(Value::as_object_mut)
    {
        let mut names: Vec<Value> = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|z| Value::from(z.name()))
            .collect();
        names.push(Value::Null);
        tz.insert("enum".into(), Value::Array(names));
    }
    if s.token {
        if let Some(c) = doc.get_mut("components").and_then(Value::as_object_mut) {
            c.insert(
                "securitySchemes".into(),
                json!({"bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The daemon's token (--token-file, token_file, OFFLOAD_TOKEN)"
                }}),
            );
        }
        if let Some(d) = doc.as_object_mut() {
            d.insert("security".into(), json!([{"bearer": []}]));
        }
    }
}

/// Links from what creates a job or a schedule to what reads or changes it: the stateful
/// phase of a fuzzer (and a reader) follows them.
fn add_links(doc: &mut Value) {
    let by_id = |op: &str, param: &str| json!({"operationId": op, "parameters": {param: format!("$response.body#/{param}")}});
    let job_links = json!({
        "GetJob": by_id("get_job", "id"),
        "GetResult": by_id("get_result", "id"),
        "CancelJob": by_id("cancel_job", "id"),
        "RetryJob": by_id("retry_job", "id"),
    });
    for status in ["200", "201"] {
        let at = format!("/paths/~1v1~1jobs/post/responses/{status}");
        if let Some(r) = doc.pointer_mut(&at).and_then(Value::as_object_mut) {
            r.insert("links".into(), job_links.clone());
        }
    }
    let at = "/paths/~1v1~1cron/post/responses/201";
    if let Some(r) = doc.pointer_mut(at).and_then(Value::as_object_mut) {
        r.insert(
            "links".into(),
            json!({"RemoveSchedule": by_id("remove_schedule", "name")}),
        );
    }
}

/// Adds the answers of [`EVERY_ROUTE`] (and `401` with a token) that the handler does not
/// document itself; `/healthz` is open (`security: []`).
fn add_answers(path: &str, op: &mut Map<String, Value>, s: &Settings) {
    let open = path == "/healthz";
    if s.token && open {
        op.insert("security".into(), json!([]));
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, description) in EVERY_ROUTE {
        if !responses.contains_key(*status) {
            responses.insert((*status).to_owned(), error_response(description));
        }
    }
    if s.token && !open {
        responses.insert(
            "401".into(),
            error_response("`unauthorized`: the bearer token is missing or wrong"),
        );
    }
    sort_keys(responses);
}

fn sort_keys(m: &mut Map<String, Value>) {
    let mut all: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    m.extend(all);
}

fn set_maximum(doc: &mut Value, pointer: &str, value: Value) {
    if let Some(v) = doc.pointer_mut(pointer).and_then(Value::as_object_mut) {
        v.insert("maximum".into(), value);
    }
}

fn set(doc: &mut Value, pointer: &str, value: Value) {
    if let Some(v) = doc.pointer_mut(pointer) {
        *v = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(token: bool) -> String {
        let (_, doc) = super::super::api().split_for_parts();
        finish(
            doc,
            &Settings {
                token,
                max_timeout_ms: offload_store::limits::DEFAULT_MAX_TIMEOUT_MS,
                max_workers_per_pool: 64,
                // 2026-12-03 + 365 days: a fixed day, so the snapshot does not move.
                latest_run_at: offload_api::limits::latest_run_at(1_796_342_400_000),
            },
        )
    }

    /// The document as a daemon with a token and the default limits serves it: every change
    /// to the contract shows in this snapshot's diff.
    #[test]
    fn the_document_with_a_token() {
        insta::assert_snapshot!(doc(true));
    }

    #[test]
    fn operation_ids_are_unique_and_links_name_them() {
        let d: Value = serde_json::from_str(&doc(true)).unwrap();
        let mut ids: Vec<String> = Vec::new();
        for item in d["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                ids.push(op["operationId"].as_str().unwrap().to_owned());
            }
        }
        let all = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all, "{ids:?}");
        let links = &d["paths"]["/v1/jobs"]["post"]["responses"]["201"]["links"];
        for link in links.as_object().unwrap().values() {
            assert!(ids.contains(&link["operationId"].as_str().unwrap().to_owned()));
        }
    }

    #[test]
    fn without_a_token_no_security_is_declared() {
        let d: Value = serde_json::from_str(&doc(false)).unwrap();
        assert!(d.get("security").is_none());
        assert!(d.pointer("/components/securitySchemes").is_none());
        let with: Value = serde_json::from_str(&doc(true)).unwrap();
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(op["responses"].get("401").is_none(), "{method} {path}");
                let secured = &with["paths"][path][method];
                assert_eq!(
                    secured["responses"].get("401").is_some(),
                    path != "/healthz",
                    "{method} {path}"
                );
            }
        }
        assert_eq!(with["paths"]["/healthz"]["get"]["security"], json!([]));
    }

    #[test]
    fn the_documented_bounds_are_the_stores() {
        use offload_api::limits as api;
        use offload_store::limits as store;
        assert_eq!(api::MIN_PRIORITY, store::MIN_PRIORITY);
        assert_eq!(api::MAX_PRIORITY, store::MAX_PRIORITY);
        assert_eq!(api::MAX_DELAY_MS, store::MAX_DELAY_MS);
        assert_eq!(api::MAX_ATTEMPTS, store::MAX_ATTEMPTS);
        assert_eq!(api::MAX_IDEMPOTENCY_KEY, store::MAX_IDEMPOTENCY_KEY);
        assert_eq!(api::DEFAULT_MAX_TIMEOUT_MS, store::DEFAULT_MAX_TIMEOUT_MS);
        let d: Value = serde_json::from_str(&doc(true)).unwrap();
        let p = |f: &str| d["components"]["schemas"]["Submit"]["properties"][f].clone();
        assert_eq!(p("priority")["minimum"], json!(api::MIN_PRIORITY));
        assert_eq!(p("priority")["maximum"], json!(api::MAX_PRIORITY));
        assert_eq!(p("delay_ms")["maximum"], json!(api::MAX_DELAY_MS));
        assert_eq!(p("max_attempts")["maximum"], json!(api::MAX_ATTEMPTS));
        assert_eq!(
            p("idempotency_key")["maxLength"],
            json!(api::MAX_IDEMPOTENCY_KEY)
        );
        assert_eq!(
            p("timeout_ms")["maximum"],
            json!(api::DEFAULT_MAX_TIMEOUT_MS)
        );
        let batch = &d["components"]["schemas"]["Batch"]["properties"]["jobs"];
        assert_eq!(batch["maxItems"], json!(api::MAX_BATCH));
        assert_eq!(api::MAX_BACKOFF_MS, store::MAX_BACKOFF_MS);
        assert_eq!(api::MAX_KEEP_RESULT_MS, store::MAX_KEEP_RESULT_MS);
        assert_eq!(api::MAX_KEY_TTL_MS, store::MAX_KEY_TTL_MS);
        assert_eq!(p("key_ttl_ms")["maximum"], json!(api::MAX_KEY_TTL_MS));
        assert_eq!(api::MAX_AFTER, store::MAX_AFTER);
        assert_eq!(p("after")["maxItems"], json!(api::MAX_AFTER));
        assert_eq!(
            p("keep_result_ms")["maximum"],
            json!(api::MAX_KEEP_RESULT_MS)
        );
        assert_eq!(
            api::MAX_BACKOFF_LIST,
            offload_store::rules::retry::MAX_BACKOFF_LIST
        );
        let kinds = d["components"]["schemas"]["Backoff"]["oneOf"]
            .as_array()
            .unwrap();
        assert_eq!(kinds.len(), 4);
        for k in kinds {
            assert_eq!(k["additionalProperties"], json!(false), "{k}");
            let props = k["properties"].as_object().unwrap();
            for (name, p) in props {
                if name.ends_with("delay_ms") {
                    assert_eq!(p["maximum"], json!(api::MAX_BACKOFF_MS), "{name}");
                }
            }
            if let Some(list) = props.get("delays_ms") {
                assert_eq!(list["maxItems"], json!(api::MAX_BACKOFF_LIST));
                assert_eq!(list["items"]["maximum"], json!(api::MAX_BACKOFF_MS));
            }
        }
    }
}
