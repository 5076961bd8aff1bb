//! Who may use the runs API: `/api/v1/*` requires `Authorization: Bearer <token>`, compared in constant time
//! with the configured token. The webhook endpoint has its own HMAC check; `/health`, `/ready` and `/metrics`
//! stay open (they expose no run data).

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sre_telemetry::Emit;
use subtle::ConstantTimeEq;

use crate::events::{GatewayMetrics, RejectReason, RequestRejected};

/// The path prefix the token guards.
pub const API_PREFIX: &str = "/api/v1";

/// How the runs API is guarded.
#[derive(Clone)]
pub enum ApiAuth {
    /// Every `/api/v1/*` request must carry this bearer token.
    Token(Arc<[u8]>),
    /// No token: allowed only when the gateway listens on loopback and SRE_API_INSECURE_LOOPBACK=1.
    InsecureLoopback,
}

impl ApiAuth {
    pub fn token(token: &str) -> Self {
        Self::Token(Arc::from(token.as_bytes()))
    }
}

impl std::fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("ApiAuth::Token(***)"),
            Self::InsecureLoopback => f.write_str("ApiAuth::InsecureLoopback"),
        }
    }
}

/// Why a request carried no acceptable token.
fn check(expected: &[u8], headers: &HeaderMap) -> Result<(), RejectReason> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Err(RejectReason::TokenMissing) };
    let given = value.as_bytes();
    // The scheme is case-insensitive (RFC 9110 §11.1); exactly one space before the token.
    let token = match given.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => &given[7..],
        _ => return Err(RejectReason::TokenMalformed),
    };
    // ct_eq on slices of different lengths is false without looking at the bytes; the length of the token is
    // not the secret.
    if bool::from(token.ct_eq(expected)) { Ok(()) } else { Err(RejectReason::TokenInvalid) }
}

/// Whether a request is for the runs API: by the route it matched, or by its path when it matched none.
fn guarded(req: &Request) -> bool {
    let under = |p: &str| p == API_PREFIX || p.starts_with("/api/v1/");
    req.extensions().get::<MatchedPath>().is_some_and(|m| under(m.as_str())) || under(req.uri().path())
}

/// The layer (`axum::middleware::from_fn_with_state`): 401 with `WWW-Authenticate: Bearer` and a JSON message
/// for a runs API request without the token; everything else passes.
pub async fn require_token(
    State((auth, metrics)): State<(ApiAuth, GatewayMetrics)>,
    req: Request,
    next: Next,
) -> Response {
    let ApiAuth::Token(expected) = &auth else { return next.run(req).await };
    if !guarded(&req) {
        return next.run(req).await;
    }
    match check(expected, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(reason) => {
            let route =
                req.extensions().get::<MatchedPath>().map_or(sre_telemetry::http::UNMATCHED_ROUTE, |m| m.as_str());
            metrics.emit(RequestRejected { reason, route });
            let message = match reason {
                RejectReason::TokenMissing => "the runs API requires Authorization: Bearer <token> (SRE_API_TOKEN)",
                RejectReason::TokenMalformed => "the Authorization header must be Bearer <token>",
                _ => "invalid API token",
            };
            let mut resp =
                (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": message}))).into_response();
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn only_the_exact_token_passes() {
        let t = b"s3cret-token";
        assert_eq!(check(t, &HeaderMap::new()), Err(RejectReason::TokenMissing));
        assert_eq!(check(t, &headers("Bearer s3cret-token")), Ok(()));
        assert_eq!(check(t, &headers("bearer s3cret-token")), Ok(()));
        assert_eq!(check(t, &headers("Bearer s3cret-toke")), Err(RejectReason::TokenInvalid));
        assert_eq!(check(t, &headers("Bearer s3cret-token2")), Err(RejectReason::TokenInvalid));
        assert_eq!(check(t, &headers("Bearer ")), Err(RejectReason::TokenInvalid));
        assert_eq!(check(t, &headers("Basic czNjcmV0LXRva2Vu")), Err(RejectReason::TokenMalformed));
        assert_eq!(check(t, &headers("s3cret-token")), Err(RejectReason::TokenMalformed));
    }
}
