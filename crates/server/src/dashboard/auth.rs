//! What every dashboard request passes: the guard (the API's own `Host`, `Sec-Fetch-Site` and
//! `Origin` checks, except that a link followed from another site still opens a page; and
//! `HX-Request` on every action, so a plain cross-site form cannot post), the token login with
//! its in-memory sessions, and the security headers (a strict CSP: no inline script or style,
//! no framing).

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{self, Page};
use super::Dash;
use crate::error::ApiError;
use crate::http::guard;

/// The cookie that carries a session id (never the token).
pub(crate) const COOKIE: &str = "offload_session";
/// Sessions kept at once; the oldest is dropped to make room.
pub(crate) const MAX_SESSIONS: usize = 64;
/// How long a session lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The largest form body (a login token, a pool size).
pub(crate) const MAX_FORM_BYTES: usize = 4096;
/// Wrong tokens accepted per minute (all clients together); past it the form answers 429.
pub(crate) const MAX_FAILED_LOGINS_PER_MINUTE: u32 = 20;

/// The content security policy of every dashboard answer.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Live login sessions: random ids, each with its expiry; at most [`MAX_SESSIONS`].
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Instant>>,
    /// Wrong tokens in the current minute: (its start, count).
    failed: Mutex<Option<(Instant, u32)>>,
}

impl Sessions {
    /// Counts a wrong token (per minute, see [`MAX_FAILED_LOGINS_PER_MINUTE`]).
    fn failed_login(&self) {
        let mut f = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (start, n) = match *f {
            Some((start, n)) if now.duration_since(start) < Duration::from_secs(60) => (start, n),
            _ => (now, 0),
        };
        *f = Some((start, n.saturating_add(1)));
    }

    /// Whether wrong tokens are being refused without a check this minute.
    fn throttled(&self) -> bool {
        let f = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        f.is_some_and(|(start, n)| {
            start.elapsed() < Duration::from_secs(60) && n >= MAX_FAILED_LOGINS_PER_MINUTE
        })
    }

    /// A new session's id (32 random bytes from the kernel, in hex), or `None` when there is
    /// no randomness to be had.
    fn open(&self) -> Option<String> {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .ok()?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, until| *until > now);
        while live.len() >= MAX_SESSIONS {
            let oldest = live
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => live.remove(&k),
                None => break,
            };
        }
        live.insert(id.clone(), now + SESSION_TTL);
        Some(id)
    }

    fn valid(&self, id: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.iter()
            .any(|(k, until)| *until > Instant::now() && crate_eq(k.as_bytes(), id.as_bytes()))
    }

    fn close(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

fn crate_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session id a request's cookie carries.
fn session_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// An HTML refusal (the dashboard never answers with the API's JSON envelope).
pub(crate) fn refusal(status: StatusCode, title: &str, why: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p.notice.error role="alert" { (why) }
        p { a href="/" { "Back to the overview" } }
    };
    (status, layout::page(&Page::bare(title), body)).into_response()
}

/// The API's `Host`/site/origin checks, and `HX-Request: true` on every `POST` but the login
/// (a cross-site HTML form cannot set a header; a cross-site script cannot without CORS).
pub(crate) async fn guard(State(dash): State<Arc<Dash>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = match guard::check_host(headers, &dash.app.limits.allowed_hosts) {
        Ok(h) => h,
        Err(e) => return refusal(e.status, "Misdirected request", &e.message),
    };
    if !is_navigation(&req) {
        if let Err(e) = guard::check_fetch_site(headers) {
            return refusal(e.status, "Refused", &e.message);
        }
    }
    if *req.method() != Method::GET && *req.method() != Method::HEAD {
        if let Err(e) = guard::check_origin(headers, &host) {
            return refusal(e.status, "Refused", &e.message);
        }
        let htmx = headers.get("hx-request").is_some_and(|v| v == "true");
        if req.uri().path() != "/ui/login" && !htmx {
            return refusal(
                StatusCode::FORBIDDEN,
                "Refused",
                "dashboard actions are sent by its own page (HX-Request: true); use the JSON API from scripts",
            );
        }
    }
    next.run(req).await
}

/// A person following a link from elsewhere (chat, a ticket, another tool) to a page: a
/// top-level `GET` of a document. It may come from another site: it changes nothing, the page
/// cannot be read by that site (no CORS) nor framed (`frame-ancestors 'none'`), and with
/// `SameSite=Strict` it carries no session (a token daemon answers with its login form).
fn is_navigation(req: &Request) -> bool {
    let h = req.headers();
    *req.method() == Method::GET
        && h.get("sec-fetch-mode").is_some_and(|v| v == "navigate")
        && h.get("sec-fetch-dest").is_some_and(|v| v == "document")
        && !h.contains_key("hx-request")
}

/// With `--token`, every page but the login and the assets needs a live session: a page
/// redirects to the login form, anything else is answered 401.
pub(crate) async fn require_session(
    State(dash): State<Arc<Dash>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let open = path == "/ui/login" || path.starts_with("/ui/assets/");
    if dash.app.token.is_none() || open {
        return next.run(req).await;
    }
    if session_of(req.headers()).is_some_and(|s| dash.sessions.valid(s)) {
        return next.run(req).await;
    }
    let partial = req.headers().contains_key("hx-request") || path == "/ui/events";
    if *req.method() == Method::GET && !partial {
        let next_path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let to = format!("/ui/login?next={}", layout::encode(next_path));
        return Redirect::to(&to).into_response();
    }
    refusal(
        StatusCode::UNAUTHORIZED,
        "Sign in first",
        "this daemon needs its token: sign in at /ui/login",
    )
}

/// Security headers on every answer; pages are not cached.
pub(crate) async fn headers(req: Request, next: Next) -> Response {
    let asset = req.uri().path().starts_with("/ui/assets/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// Only a path of this site (never `//host` or a scheme) is followed after the login.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

/// The login form.
pub(crate) async fn login_page(
    State(dash): State<Arc<Dash>>,
    Query(q): Query<NextQuery>,
) -> Response {
    if dash.app.token.is_none() {
        return Redirect::to("/").into_response();
    }
    login_form(StatusCode::OK, safe_next(q.next.as_deref()), None)
}

fn login_form(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let body = html! {
        h1 { "Sign in" }
        p { "This daemon was started with " code { "--token" } ". Enter that token once; \
             the browser keeps a session cookie (12 hours), never the token." }
        @if let Some(e) = error { p.notice.error role="alert" { (e) } }
        form.login method="post" action="/ui/login" {
            input type="hidden" name="next" value=(next);
            label for="token" { "Token" }
            input #token type="password" name="token" autocomplete="current-password" required autofocus;
            button type="submit" { "Sign in" }
        }
    };
    (status, layout::page(&Page::bare("Sign in"), body)).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    next: Option<String>,
}

/// Checks the token; opens a session and sets its cookie.
pub(crate) async fn login(
    State(dash): State<Arc<Dash>>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Some(token) = dash.app.token.as_deref() else {
        return Redirect::to("/").into_response();
    };
    let Ok(Form(form)) = form else {
        return login_form(
            StatusCode::BAD_REQUEST,
            "/",
            Some("the form was not sent whole"),
        );
    };
    let next = safe_next(form.next.as_deref());
    if dash.sessions.throttled() {
        return login_form(
            StatusCode::TOO_MANY_REQUESTS,
            next,
            Some("too many wrong tokens this minute: wait a minute and try again"),
        );
    }
    if !crate_eq(form.token.as_bytes(), token.as_bytes()) {
        dash.sessions.failed_login();
        return login_form(
            StatusCode::UNAUTHORIZED,
            next,
            Some("that is not this daemon's token"),
        );
    }
    let Some(id) = dash.sessions.open() else {
        return refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No session",
            "/dev/urandom could not be read",
        );
    };
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut resp = Redirect::to(next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Ends the session and clears its cookie.
pub(crate) async fn logout(State(dash): State<Arc<Dash>>, headers: HeaderMap) -> Response {
    if let Some(id) = session_of(&headers) {
        dash.sessions.close(id);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("offload_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    resp.headers_mut()
        .insert("hx-redirect", HeaderValue::from_static("/ui/login"));
    resp
}

/// A refusal of the API as a page: not found is its own clear page.
pub(crate) fn failed(e: &ApiError) -> Response {
    if e.status == StatusCode::NOT_FOUND {
        refusal(StatusCode::NOT_FOUND, "Not found", &e.message)
    } else {
        refusal(e.status, "Could not load this page", &e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bounded_and_random() {
        let s = Sessions::default();
        let first = s.open().unwrap();
        assert_eq!(first.len(), 64);
        for _ in 0..MAX_SESSIONS {
            s.open().unwrap();
        }
        assert_eq!(s.live.lock().unwrap().len(), MAX_SESSIONS);
        assert!(!s.valid(&first), "the oldest was dropped");
        assert!(!s.valid("nope"));
    }

    #[test]
    fn wrong_tokens_are_throttled() {
        let s = Sessions::default();
        for _ in 0..MAX_FAILED_LOGINS_PER_MINUTE {
            assert!(!s.throttled());
            s.failed_login();
        }
        assert!(s.throttled());
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next(Some("/ui/jobs?state=dead")),
            "/ui/jobs?state=dead"
        );
        for bad in ["//evil.example/", "https://evil.example", "/\\evil", "x"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
    }
}
