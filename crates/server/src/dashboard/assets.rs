//! The dashboard's files, compiled into the binary: its own CSS and script, and htmx and uPlot
//! as vendored from the npm registry (`crates/server/assets/vendor/`, with their licences).
//! Their URLs carry the daemon's version, so they can be cached for good.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "dash.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/dash.css"),
    ),
    (
        "dash.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dash.js"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/htmx-2.0.11.min.js"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/uPlot-1.6.32.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/uPlot-1.6.32.min.css"),
    ),
];

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The URL of an asset (its name with the version, so a new daemon's files are fetched anew).
pub(crate) fn url(name: &str) -> String {
    format!("/ui/assets/{VERSION}-{name}")
}

/// `GET /ui/assets/{version}-{name}`.
pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let name = file
        .strip_prefix(VERSION)
        .and_then(|n| n.strip_prefix('-'))
        .unwrap_or(&file);
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, bytes)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
