//! Facts both HTTP servers (the MCP HTTP transports and the emulator) read off a
//! request the same way: which host it addressed, whether that is a loopback name,
//! and its bearer token.
//!
//! The host is read from the request target's authority (HTTP/2's `:authority`, or an
//! absolute-form HTTP/1.1 target) as well as from the `Host` header: a check of the
//! header alone is bypassed over HTTP/2, where clients send no `Host`.

use std::net::IpAddr;

use axum::http::{HeaderMap, Uri, header, uri::Authority};

/// Whether `host` (a `Host` header value or an authority) names this machine's
/// loopback interface: `localhost`, `*.localhost`, `127.0.0.0/8` or `[::1]`, any port.
pub fn is_loopback_host(host: &str) -> bool {
    let Ok(authority) = host.parse::<Authority>() else {
        return false;
    };
    let name = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The hosts a request addressed: its target's authority and its `Host` header, each
/// when present. A `Host` header that is not text is returned as an empty name, which
/// no check accepts.
pub fn addressed_hosts<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Vec<&'a str> {
    let mut hosts = Vec::with_capacity(2);
    if let Some(authority) = uri.authority() {
        hosts.push(authority.as_str());
    }
    for value in headers.get_all(header::HOST) {
        hosts.push(value.to_str().unwrap_or(""));
    }
    hosts
}

/// Whether every host the request addressed is a loopback name. A request that
/// names no host at all (HTTP/1.0 without `Host`) addressed the socket it came in on,
/// and passes.
pub fn addresses_loopback(uri: &Uri, headers: &HeaderMap) -> bool {
    addressed_hosts(uri, headers)
        .into_iter()
        .all(is_loopback_host)
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive,
/// RFC 7235), if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:8765",
            "127.0.0.1:1",
            "127.1.2.3",
            "[::1]:8765",
            "app.localhost",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8765",
            "10.0.0.1",
            "localhost.evil.example",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn the_target_authority_counts_as_well_as_the_host_header() {
        let mut headers = HeaderMap::new();
        let h2: Uri = "http://evil.example:8765/mcp".parse().unwrap();
        assert!(!addresses_loopback(&h2, &headers), "HTTP/2 :authority");
        let origin_form: Uri = "/mcp".parse().unwrap();
        assert!(addresses_loopback(&origin_form, &headers), "no host named");
        headers.insert(header::HOST, HeaderValue::from_static("localhost:8765"));
        assert!(addresses_loopback(&origin_form, &headers));
        assert!(
            !addresses_loopback(&h2, &headers),
            "authority and Host disagree"
        );
        headers.insert(header::HOST, HeaderValue::from_bytes(b"\xff").unwrap());
        assert!(!addresses_loopback(&origin_form, &headers), "Host not text");
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }
}
