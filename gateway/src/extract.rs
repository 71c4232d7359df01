//! Extractors whose rejections are the gateway's JSON errors rather than axum's plain text:
//! [`JsonPath`] (a path segment that is not valid percent-encoded UTF-8) and [`JsonQuery`] (a
//! query string that does not parse). With the router's JSON fallbacks for unknown routes (404)
//! and wrong methods (405), every error answer has the `{"error", "message"}` shape.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// [`Path`], refusing a bad path with a JSON 400.
pub struct JsonPath<T>(pub T);

impl<S, T> FromRequestParts<S> for JsonPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| JsonPath(v))
            .map_err(|e| ApiError::BadRequest(format!("invalid path: {}", e.body_text())))
    }
}

/// [`Query`], refusing a bad query string with a JSON 400.
pub struct JsonQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for JsonQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| JsonQuery(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// The router's fallback: no route has this path.
pub async fn no_route() -> ApiError {
    ApiError::NoRoute
}

/// The router's fallback for a known path with a method it does not take.
pub async fn wrong_method() -> ApiError {
    ApiError::MethodNotAllowed
}
