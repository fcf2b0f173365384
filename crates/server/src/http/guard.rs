//! What every request passes before a handler sees it: the `Host` must name this daemon (no DNS
//! rebinding), a state-changing request must not come from another site (no CSRF), a body must
//! be JSON, and it must arrive whole within `http.body_timeout_ms` and `max_body_bytes`
//! (`docs/security.md`).

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;

use super::App;
use crate::error::ApiError;
use offload_api::ErrorCode;

/// Runs the checks in order (host, origin, media type, body) then the rest of the stack.
pub(crate) async fn guard(
    State(app): State<Arc<App>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let headers = req.headers();
    let host = check_host(headers, &app.limits.allowed_hosts)?;
    check_fetch_site(headers)?;
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes {
        check_origin(headers, &host)?;
    }
    let has_body = has_body(headers);
    if changes || has_body {
        check_media_type(headers, has_body)?;
    }
    if !has_body {
        return Ok(next.run(req).await);
    }
    let req = read_body(&app, req).await?;
    Ok(next.run(req).await)
}

/// The `Host` header, lowercased, when it names this daemon: a loopback name, any IP literal
/// (a literal cannot be rebound to another address), or an `http.allowed_hosts` name, with any
/// port.
pub(crate) fn check_host(headers: &HeaderMap, allowed: &[String]) -> Result<String, ApiError> {
    let misdirected = |what: String| {
        ApiError::of(
            ErrorCode::MisdirectedRequest,
            format!(
                "{what}: this daemon answers to localhost, IP addresses and http.allowed_hosts only"
            ),
        )
    };
    let raw = headers
        .get(header::HOST)
        .ok_or_else(|| misdirected("no Host header".into()))?;
    let host = raw
        .to_str()
        .map_err(|_| misdirected("the Host header is not text".into()))?
        .to_ascii_lowercase();
    let name =
        host_name(&host).ok_or_else(|| misdirected(format!("Host {host:?} is malformed")))?;
    let name = name.strip_suffix('.').unwrap_or(name);
    let literal = name.parse::<IpAddr>().is_ok()
        || name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .is_some_and(|n| n.parse::<Ipv6Addr>().is_ok());
    if literal || name == "localhost" || allowed.iter().any(|a| a == name) {
        Ok(host)
    } else {
        Err(misdirected(format!("Host {host:?}")))
    }
}

/// `name[:port]` or `[v6][:port]` → the name part; `None` when the port is not a number.
fn host_name(host: &str) -> Option<&str> {
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        (&host[..=end], host[end + 1..].strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    (!name.is_empty() && port_ok).then_some(name)
}

fn forbidden(why: String) -> ApiError {
    ApiError::of(
        ErrorCode::Forbidden,
        format!("{why}: requests are accepted from this daemon's own origin only (CORS is off)"),
    )
}

/// Refuses any request a browser says comes from another site (`Sec-Fetch-Site: cross-site` or
/// `same-site`): even a read may cost a slot (a long poll, an event stream).
pub(crate) fn check_fetch_site(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("?").to_ascii_lowercase();
        if site != "same-origin" && site != "none" {
            return Err(forbidden(format!("Sec-Fetch-Site is {site:?}")));
        }
    }
    Ok(())
}

/// Refuses a state-changing request whose `Origin` is not `http://<Host>` (older browsers send
/// no `Sec-Fetch-Site`, every browser sends `Origin` on a cross-origin `POST`).
pub(crate) fn check_origin(headers: &HeaderMap, host: &str) -> Result<(), ApiError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("?").to_ascii_lowercase();
        let own = origin.strip_prefix("http://").is_some_and(|a| a == host);
        if !own {
            return Err(forbidden(format!("Origin {origin:?} is not http://{host}")));
        }
    }
    Ok(())
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// A body must say it is JSON; a state-changing request without a body may omit the type.
fn check_media_type(headers: &HeaderMap, has_body: bool) -> Result<(), ApiError> {
    let given = headers.get(header::CONTENT_TYPE);
    let essence = given.map(|v| {
        v.to_str()
            .unwrap_or("?")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        None if !has_body => Ok(()),
        other => Err(ApiError::of(
            ErrorCode::UnsupportedMediaType,
            format!(
                "Content-Type {}: request bodies must be application/json",
                other.map_or_else(|| "missing".to_owned(), |t| format!("{t:?}"))
            ),
        )),
    }
}

/// Reads the whole body within `http.body_timeout_ms` and `max_body_bytes`, so a stalled or
/// endless body is cut (the answer closes the connection: its body was not read to the end).
/// A body over the limit is answered 413 at once while the rest is read and discarded for a
/// bounded time, so that the client, still sending, gets to read the answer.
async fn read_body(app: &App, req: Request) -> Result<Request, ApiError> {
    let limit = app.max_body;
    let timeout = app.limits.body_timeout;
    let too_large = |body: Body| {
        drain(body, limit.saturating_mul(4).max(1 << 20), timeout);
        ApiError::of(
            ErrorCode::PayloadTooLarge,
            format!("the request body is over the limit of {limit} bytes (http.max_body_bytes)"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (parts, mut body) = req.into_parts();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(body));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(limit).min(limit));
    let mut bytes = Vec::with_capacity(capacity);
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(ApiError::of(
                    ErrorCode::RequestTimeout,
                    format!(
                        "the request body did not arrive within {} ms (http.body_timeout_ms)",
                        timeout.as_millis()
                    ),
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ApiError::bad_request(format!(
                    "the request body could not be read: {e}"
                )))
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if bytes.len() + data.len() > limit {
                        return Err(too_large(body));
                    }
                    bytes.extend_from_slice(&data);
                }
            }
        }
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Reads and discards up to `budget` bytes of `body` for at most `within`, in the background.
fn drain(mut body: Body, budget: usize, within: Duration) {
    tokio::spawn(async move {
        let mut seen = 0usize;
        let _ = tokio::time::timeout(within, async {
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, Bytes::len);
                if seen > budget {
                    return;
                }
            }
        })
        .await;
    });
}

/// Turns any error answer that is not the JSON envelope (axum's own rejections of a path or a
/// query, a wrong method) into `{"error": {"code", "message"}}` with the same status.
pub(crate) async fn json_errors(req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.as_u16() < 400 || is_json {
        return resp;
    }
    // Keep the answer's own headers (`Allow` of a 405) but its body's.
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::InvalidRequest,
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        text
    };
    let mut out = ApiError::new(status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> Result<String, ApiError> {
        let mut m = HeaderMap::new();
        m.insert(header::HOST, h.parse().unwrap());
        check_host(&m, &["offload.internal".to_owned()])
    }

    #[test]
    fn hosts() {
        for ok in [
            "localhost",
            "localhost:7070",
            "127.0.0.1:1",
            "[::1]:7070",
            "[::1]",
            "10.1.2.3",
            "OFFLOAD.internal:80",
            "localhost.",
        ] {
            assert!(host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example:7070",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "localhost:x",
            ":7070",
            "[::1",
        ] {
            let e = host(bad).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (421, ErrorCode::MisdirectedRequest),
                "{bad}"
            );
        }
        assert!(check_host(&HeaderMap::new(), &[]).is_err());
    }
}
