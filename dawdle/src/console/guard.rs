//! Who may use the console, and which POSTs are the console's own.
//!
//! - **Token.** With a token, every request must carry it: as
//!   `Authorization: Bearer <token>`, or as the cookie a first visit to
//!   `?token=<token>` sets (the console then redirects to the same page
//!   without it, so the token leaves the address bar and the history).
//! - **CSRF.** Every page sets a random cookie (`dawdle_csrf`, `SameSite=Strict`,
//!   `HttpOnly`) and puts the same value in its forms; a POST must carry both,
//!   equal, and, when the browser sends an `Origin`, come from this host.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::Shared;

/// The cookie that holds the token after `?token=`.
const TOKEN_COOKIE: &str = "dawdle_console_token";
/// The cookie of the double-submitted CSRF token.
pub(crate) const CSRF_COOKIE: &str = "dawdle_csrf";

/// The value of cookie `name` in `headers`.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The host a request names (its `Host` header, else its URI's), without
/// the port.
fn host_of(request: &Request) -> Option<String> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()))?;
    let name = match host.strip_prefix('[') {
        // [::1]:8080
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host
            .rsplit_once(':')
            .map_or(host.as_str(), |(name, _)| name),
    };
    Some(name.to_ascii_lowercase())
}

/// Whether `host` names this machine: `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses requests without the token, when there is one. Without a token,
/// refuses requests for a host name that is neither loopback nor allowed: a
/// page of another site whose name an attacker made resolve to 127.0.0.1
/// (DNS rebinding) would otherwise be of the console's origin.
pub(crate) async fn token(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let Some(expected) = shared.token.as_deref() else {
        let allowed = host_of(&request)
            .is_some_and(|host| is_loopback(&host) || shared.allowed_hosts.contains(&host));
        if allowed {
            return next.run(request).await;
        }
        return (
            StatusCode::FORBIDDEN,
            "the dawdle console without a token answers only to localhost and loopback \
             addresses (or the hosts given to ConsoleBuilder::allow_host): set \
             DAWDLE_CONSOLE_TOKEN to serve it under another name\n",
        )
            .into_response();
    };
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = cookie(headers, TOKEN_COOKIE)
        .map(|c| percent_encoding::percent_decode_str(c).decode_utf8_lossy());
    if bearer.is_some_and(|t| same(t, expected)) || cookie.is_some_and(|t| same(&t, expected)) {
        return next.run(request).await;
    }
    // A link with ?token=: keep it in a cookie, and drop it from the address.
    let query = request.uri().query().unwrap_or_default();
    let given = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        });
    if let Some(given) = given.filter(|t| same(t, expected)) {
        let rest: Vec<&str> = query
            .split('&')
            .filter(|p| !p.starts_with("token="))
            .collect();
        // Mounted with nest(), the path here lacks the mount's prefix.
        let path = format!("{}{}", shared.base, request.uri().path());
        let to = if rest.is_empty() {
            path
        } else {
            format!("{path}?{}", rest.join("&"))
        };
        let mut response = Redirect::to(&to).into_response();
        let cookie = format!(
            "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            super::html::url(&given)
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        return response;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "the dawdle console needs its token: open it with ?token=<DAWDLE_CONSOLE_TOKEN>, \
         or send Authorization: Bearer <token>\n",
    )
        .into_response()
}

/// The request's CSRF token, and whether it must be set as a cookie (a
/// first visit).
pub(crate) fn csrf_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, CSRF_COOKIE).filter(|v| v.len() == 32) {
        Some(token) => (token.to_owned(), false),
        None => (uuid::Uuid::new_v4().simple().to_string(), true),
    }
}

/// The `Set-Cookie` of a fresh CSRF token.
pub(crate) fn csrf_cookie(token: &str) -> String {
    format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
}

/// Why a POST is refused: `None` when it is the console's own.
pub(crate) fn refuse_post(headers: &HeaderMap, form_token: Option<&str>) -> Option<&'static str> {
    let cookie = cookie(headers, CSRF_COOKIE);
    match (cookie, form_token) {
        (Some(c), Some(f)) if !c.is_empty() && same(c, f) => {}
        _ => {
            return Some("the form's CSRF token is missing or wrong: reload the page and try again")
        }
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some("null"), _) => Some("the request came from an opaque origin"),
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            (origin_host != host).then_some("the request came from another site")
        }
        (Some(_), None) => Some("the request names no host to compare its origin with"),
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn loopback_names_are_told_apart() {
        for host in ["localhost", "127.0.0.1", "127.3.4.5", "::1"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["rebind.evil", "10.0.0.1", "localhost.evil", "0.0.0.0"] {
            assert!(!is_loopback(host), "{host}");
        }
        let request = |host: &str| {
            axum::http::Request::builder()
                .uri("/")
                .header(header::HOST, host)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert_eq!(host_of(&request("[::1]:8080")).as_deref(), Some("::1"));
        assert_eq!(
            host_of(&request("LocalHost:80")).as_deref(),
            Some("localhost")
        );
        assert_eq!(
            host_of(&request("rebind.evil:8080")).as_deref(),
            Some("rebind.evil")
        );
    }

    #[test]
    fn a_post_needs_the_same_token_in_cookie_and_form_from_this_host() {
        let t = "0123456789abcdef0123456789abcdef";
        let ok = headers(&[
            ("cookie", &format!("a=b; dawdle_csrf={t}")),
            ("host", "127.0.0.1:8080"),
        ]);
        assert_eq!(refuse_post(&ok, Some(t)), None);
        assert!(refuse_post(&ok, Some("other")).is_some());
        assert!(refuse_post(&ok, None).is_some());
        assert!(refuse_post(&headers(&[]), Some(t)).is_some());
        let cross = headers(&[
            ("cookie", &format!("dawdle_csrf={t}")),
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(
            refuse_post(&cross, Some(t)),
            Some("the request came from another site")
        );
        let same_origin = headers(&[
            ("cookie", &format!("dawdle_csrf={t}")),
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert_eq!(refuse_post(&same_origin, Some(t)), None);
        let opaque = headers(&[
            ("cookie", &format!("dawdle_csrf={t}")),
            ("host", "127.0.0.1:8080"),
            ("origin", "null"),
        ]);
        assert!(refuse_post(&opaque, Some(t)).is_some());
    }
}
