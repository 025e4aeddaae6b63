//! Extractors that fail with the core's [`Error`], so that every refusal has the error body:
//! the caller's key, a worker's token, JSON bodies, queries, job ids in paths, server-signed
//! URLs; and the base URL a caller reached us at.

use axum::extract::rejection::QueryRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::clock::now_ms;
use crate::error::Error;
use crate::keys::{Caller, key_hash};
use crate::ops;
use crate::signing::SignatureError;
use crate::state::AppState;

/// The client's address, as the connection has it.
fn peer(parts: &Parts) -> Option<std::net::IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|it| it.0.ip())
}

/// The `Bearer` credential of a request.
fn bearer<'a>(parts: &'a Parts, missing: &'static str) -> Result<&'a str, Error> {
    let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or(Error::Unauthorized(missing))?;
    let value = header.to_str().map_err(|_| Error::Unauthorized("malformed Authorization header"))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or(Error::Unauthorized("the Authorization header must be `Bearer <key>`"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Error> {
        let address = peer(parts);
        state.limits.check_address(address)?;
        // A request with a key is judged by its key; a browser's session cookie is the
        // dashboard's way to present one (CSRF-checked for state changes).
        let hash = match super::dashboard::session_key(parts, state) {
            Ok(Some(hash)) => Ok(hash),
            Ok(None) => {
                bearer(parts, "missing Authorization header: send `Authorization: Bearer RJ-…`").and_then(|key| {
                    if key.starts_with("RJ-") {
                        Ok(key_hash(key))
                    } else {
                        Err(Error::Unauthorized("API keys start with RJ-"))
                    }
                })
            }
            Err(error) => Err(error),
        };
        let owner = match hash {
            Ok(hash) => key_owner(state, address, &hash).await?,
            Err(refusal @ Error::Unauthorized(_)) => return Err(state.limits.failed(address, refusal)),
            Err(other) => return Err(other),
        };
        Ok(Caller { workspace_id: owner.workspace_id, user_id: owner.user_id, admin: owner.admin })
    }
}

/// The owner of the key whose hash is `hash`, as every request's is found: an unknown or revoked
/// key counts against the client's address, and a known key's own rate limit applies (the API
/// and the dashboard's login alike).
pub(crate) async fn key_owner(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    hash: &str,
) -> Result<orchard_store::KeyOwner, Error> {
    let Some(owner) = state.keys.owner(state.store.as_ref(), hash).await? else {
        return Err(state.limits.failed(address, Error::Unauthorized("unknown or revoked API key")));
    };
    state.limits.check_key(owner.key_id)?;
    Ok(owner)
}

/// The worker token of the request (its id).
pub(crate) struct WorkerToken(pub(crate) Uuid);

impl FromRequestParts<AppState> for WorkerToken {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<WorkerToken, Error> {
        let token = bearer(parts, "worker calls need `Authorization: Bearer OW-…`")?;
        if !token.starts_with("OW-") {
            return Err(Error::Unauthorized(
                "worker tokens start with OW- (create one with `orchard workers token create`)",
            ));
        }
        Ok(WorkerToken(ops::workers::token_owner(state, token).await?))
    }
}

/// A JSON body; a bad one is a 400 in the API's error shape, naming the field it is wrong
/// about in `details.field`.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<ApiJson<T>, Error> {
        if !says_json(req.headers()) {
            return Err(not_json());
        }
        let bytes = read_body(req, state).await?;
        json_body(&bytes).map(ApiJson)
    }
}

/// An optional JSON body: none at all is `T::default()`; one that is there follows
/// [`ApiJson`]'s rules (declared as JSON, named field errors).
pub(crate) struct OptionalJson<T>(pub(crate) T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<OptionalJson<T>, Error> {
        let declared = says_json(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalJson(T::default()));
        }
        if !declared {
            return Err(not_json());
        }
        json_body(&bytes).map(OptionalJson)
    }
}

/// The whole body (within the router's limit), or the refusal in the API's shape.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, Error> {
    axum::body::Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge("the body is larger than 1 MiB".into())
        } else {
            Error::invalid("invalid_body", "the body could not be read")
        }
    })
}

/// Whether the request says its body is JSON (`application/json`, or a `+json` type).
pub(crate) fn says_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|it| it.to_str().ok())
        .and_then(|it| it.split(';').next())
        .map(|it| it.trim().to_ascii_lowercase())
        .is_some_and(|it| it == "application/json" || (it.starts_with("application/") && it.ends_with("+json")))
}

/// The refusal of a body that does not say it is JSON.
pub(crate) fn not_json() -> Error {
    Error::invalid("unsupported_media_type", "the body is JSON and must say so: send Content-Type: application/json")
}

/// `bytes` as a `T`, or a refusal a person can act on: which field, and what was expected.
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    // Every body of the API is an object; serde would also read a list into a struct's fields.
    if bytes.iter().find(|it| !it.is_ascii_whitespace()).is_some_and(|it| *it != b'{') {
        return Err(Error::invalid("invalid_body", "the body must be a JSON object with the documented fields"));
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid("invalid_json", format!("the body is not JSON: {e}")))?;
    // One rule for numbers everywhere (render configs too): a whole number written as a
    // float (`5010.0`) is that whole number.
    whole_numbers(&mut value);
    let value: Result<T, serde_path_to_error::Error<serde_json::Error>> = serde_path_to_error::deserialize(value);
    value.map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let reason = readable(&inner);
        if path == "." {
            return Error::Invalid {
                code: "invalid_body",
                message: format!("the body must be a JSON object with the documented fields: {reason}"),
                details: None,
            };
        }
        Error::field("invalid_body", &path, reason)
    })
}

/// Turns every float with no fraction that fits an integer into that integer, in place.
fn whole_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            if let Some(float) = number.as_f64()
                && float.fract() == 0.0
                && float.abs() < 9_007_199_254_740_992.0
            {
                *number = serde_json::Number::from(float as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// serde's account of a wrong value, in words for a person rather than Rust's type names,
/// without the position (the field is named instead).
fn readable(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    let mut text = text;
    for (rust, words) in [
        ("expected u8", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a sequence", "expected a list"),
        ("expected a boolean", "expected true or false"),
    ] {
        text = text.replace(rust, words);
    }
    if let Some(at) = text.find("expected struct ") {
        text = format!("{}expected an object", &text[..at]);
    }
    text
}

/// A query string; a bad one is a 400 in the API's error shape.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiQuery<T>, Error> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> Error {
    Error::invalid("invalid_query", rejection.body_text())
}

/// Path parameters; a path whose parameters do not parse names nothing: 404, with the error
/// body (axum's own rejection is plain text).
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiPath<T>, Error> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(_) => Err(Error::NotFound("route")),
        }
    }
}

/// A job id from the path. Anything that is not a uuid names no job: 404, as for unknown ids.
pub(crate) struct JobId(pub(crate) Uuid);

impl<S: Send + Sync> FromRequestParts<S> for JobId {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<JobId, Error> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::NotFound("job"))?;
        Uuid::parse_str(&raw).map(JobId).map_err(|_| Error::NotFound("job"))
    }
}

/// The signature query of a server-signed URL, as it came: anything wrong with it (absent,
/// repeated, not a number) makes the URL not a signed one, a 403 like a wrong signature —
/// never a 400 about query syntax. The first of a repeated parameter counts.
#[derive(Debug)]
pub(crate) struct SignedQuery {
    expires: Option<String>,
    signature: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for SignedQuery {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<SignedQuery, Error> {
        let mut query = SignedQuery { expires: None, signature: None };
        for (name, value) in url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
            let slot = match name.as_ref() {
                "expires" => &mut query.expires,
                "signature" => &mut query.signature,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.into_owned());
        }
        Ok(query)
    }
}

/// Checks a signed URL; a missing, wrong or expired signature is a 403.
pub(crate) fn check_signature(state: &AppState, method: &str, path: &str, query: &SignedQuery) -> Result<(), Error> {
    let (Some(expires), Some(signature)) = (query.expires.as_deref(), query.signature.as_deref()) else {
        return Err(Error::Forbidden {
            code: "missing_signature",
            message: "this URL is signed: use it whole, with its expires and signature".into(),
        });
    };
    let Ok(expires) = expires.parse::<i64>() else {
        return Err(Error::Forbidden { code: "invalid_signature", message: "the URL's expiry is not a time".into() });
    };
    state.signer.verify(method, path, expires, signature, now_ms() / 1000).map_err(|e| match e {
        SignatureError::Invalid => Error::Forbidden { code: "invalid_signature", message: e.to_string() },
        SignatureError::Expired => Error::Forbidden { code: "url_expired", message: e.to_string() },
    })
}

/// The base URL a client reached us at, for the URLs an answer hands out: `--public-url`
/// if set, else the request's `Host` (checked: a host and a port, nothing else). Forwarded
/// headers (`X-Forwarded-Proto`, `X-Forwarded-Host`) count only from a `--trusted-proxy`:
/// from anyone else they would let a client choose where signed URLs point.
pub(crate) struct BaseUrl(pub(crate) String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<BaseUrl, Error> {
        if let Some(url) = &state.config.public_url {
            return Ok(BaseUrl(url.trim_end_matches('/').to_string()));
        }
        let header = |name: &str| parts.headers.get(name).and_then(|it| it.to_str().ok());
        let trusted = peer(parts).is_some_and(|it| state.config.trusted_proxies.contains(&it));
        let forwarded_host = if trusted { header("x-forwarded-host") } else { None };
        let host = match forwarded_host.or_else(|| header("host")) {
            Some(host) => checked_host(host)?,
            None => state.local_addr.to_string(),
        };
        let scheme = match trusted.then(|| header("x-forwarded-proto")).flatten() {
            Some("https") => "https",
            _ => "http",
        };
        Ok(BaseUrl(format!("{scheme}://{host}")))
    }
}

/// `host` if it is a host (a name, an IPv4 address or a bracketed IPv6 one) and an optional
/// port, and nothing else. Checked by hand: it runs for every request that hands out URLs.
fn checked_host(host: &str) -> Result<String, Error> {
    if !is_host(host) {
        return Err(Error::invalid("invalid_host", "the Host header must be a host name and an optional port"));
    }
    Ok(host.to_ascii_lowercase())
}

/// `name[:port]` or `[ipv6][:port]`.
fn is_host(host: &str) -> bool {
    let (name_ok, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let Some((address, after)) = rest.split_once(']') else { return false };
            let ipv6 =
                !address.is_empty() && address.bytes().all(|it| it.is_ascii_hexdigit() || it == b':' || it == b'.');
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None => return false,
                },
            };
            (ipv6, port)
        }
        None => {
            let (name, port) = match host.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            };
            let ok = !name.is_empty()
                && name.len() <= 253
                && name.bytes().all(|it| it.is_ascii_alphanumeric() || matches!(it, b'.' | b'-' | b'_'));
            (ok, port)
        }
    };
    let port_ok = port.is_none_or(|port| {
        !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|it| it.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|it| it <= 65_535)
    });
    name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::is_host;

    #[test]
    fn a_host_is_a_name_or_an_address_and_an_optional_port() {
        for good in
            ["farm.studio", "Farm.Studio:7800", "127.0.0.1:80", "[::1]", "[::1]:7800", "render-01", "a_b.example"]
        {
            assert!(is_host(good), "{good}");
        }
        for bad in [
            "",
            "evil.example/abc?",
            "evil.example?x=",
            "user@evil.example",
            "evil.example#",
            "a b",
            "x:",
            "x:99999",
            "x:8o",
            "[::1",
            "[::1]x",
            "[zz]",
            "[]:80",
            ":80",
        ] {
            assert!(!is_host(bad), "{bad}");
        }
    }
}
