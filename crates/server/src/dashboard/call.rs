//! The dashboard reads and acts through the JSON API's own handlers: their answer is decoded
//! into its `offload_api` type, their refusal is the [`ApiError`] the API would send. One
//! contract, one set of checks; the cost is one JSON round trip in memory per call.

use std::future::Future;

use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest answer decoded (a page of jobs with their attempts stays far below it).
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Runs a handler and decodes its answer (`T = ()` for an empty one).
pub(crate) async fn call<T: DeserializeOwned>(
    handler: impl Future<Output = Result<Response, ApiError>>,
) -> Result<T, ApiError> {
    let resp = handler.await?;
    decode(resp).await
}

/// Decodes an answer the API sent (a refusal becomes the error it carries).
pub(crate) async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T, ApiError> {
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), MAX_ANSWER_BYTES)
        .await
        .map_err(|e| ApiError::internal(format!("the API's answer could not be read: {e}")))?;
    if !status.is_success() {
        let body: offload_api::ErrorBody = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::internal(format!("the API refused with an unreadable body: {e}"))
        })?;
        return Err(ApiError::new(status, body.error.code, body.error.message));
    }
    let bytes = if bytes.is_empty() {
        &b"null"[..]
    } else {
        &bytes[..]
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("the API's answer does not decode: {e}")))
}
