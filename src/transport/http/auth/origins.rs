//! The `Origin` browsers send: which are allowed (`--allowed-origin`; default: loopback
//! origins), against cross-site requests from web pages.

use axum::http::Uri;

use crate::config::ConfigError;

/// An allowed browser origin: scheme, host and port (`None`: any port).
#[derive(Clone, Debug, PartialEq, Eq)]
enum OriginRule {
    /// The literal `null` origin (sandboxed frames, `file:` pages).
    Null,
    /// A scheme, host and port.
    Site {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
}

/// The `Origin`s browsers may send (`--allowed-origin`; default: loopback origins).
#[derive(Clone, Debug)]
pub struct Origins(Vec<OriginRule>);

impl Origins {
    /// Loopback origins over http and https, any port.
    pub fn loopback() -> Self {
        let mut rules = Vec::new();
        for scheme in ["http", "https"] {
            for host in ["localhost", "127.0.0.1", "[::1]"] {
                rules.push(OriginRule::Site {
                    scheme: scheme.into(),
                    host: host.into(),
                    port: None,
                });
            }
        }
        Self(rules)
    }

    /// Parses `--allowed-origin` values: `https://app.example.com`, `http://localhost:6274`,
    /// `http://localhost:*` (any port) or `null`.
    pub fn parse(values: &[String]) -> Result<Self, ConfigError> {
        values
            .iter()
            .map(|value| {
                parse_origin_rule(value).ok_or_else(|| {
                    ConfigError(format!(
                        "--allowed-origin `{value}` is not an origin: write scheme://host[:port], e.g. https://app.example.com or http://localhost:* for any port"
                    ))
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether a request's `Origin` header value is allowed.
    pub(super) fn allows(&self, origin: &str) -> bool {
        let Some(origin) = parse_origin(origin) else {
            return false;
        };
        self.0.iter().any(|rule| match (rule, &origin) {
            (OriginRule::Null, OriginRule::Null) => true,
            (
                OriginRule::Site { scheme, host, port },
                OriginRule::Site {
                    scheme: s,
                    host: h,
                    port: p,
                },
            ) => scheme == s && host == h && (port.is_none() || port == p),
            _ => false,
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// A browser's `Origin` value: `null`, or scheme://host[:port] (port filled in from the scheme).
fn parse_origin(value: &str) -> Option<OriginRule> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("null") {
        return Some(OriginRule::Null);
    }
    let uri: Uri = value.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    if uri.path() != "/" && !uri.path().is_empty()
        || uri.query().is_some()
        || authority.as_str().contains('@')
    {
        return None;
    }
    let port = authority.port_u16().or_else(|| default_port(&scheme))?;
    Some(OriginRule::Site {
        host: authority.host().to_ascii_lowercase(),
        scheme,
        port: Some(port),
    })
}

/// An `--allowed-origin` value: like [`parse_origin`], and `:*` for any port.
fn parse_origin_rule(value: &str) -> Option<OriginRule> {
    let value = value.trim().trim_end_matches('/');
    match value.strip_suffix(":*") {
        Some(base) => match parse_origin(base)? {
            OriginRule::Site { scheme, host, .. } => Some(OriginRule::Site {
                scheme,
                host,
                port: None,
            }),
            OriginRule::Null => None,
        },
        None => parse_origin(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let loopback = Origins::loopback();
        assert!(loopback.allows("http://localhost:6274"));
        assert!(loopback.allows("https://127.0.0.1"));
        assert!(loopback.allows("http://[::1]:3000"));
        assert!(!loopback.allows("https://evil.example"));
        assert!(!loopback.allows("http://localhost.evil.example"));
        assert!(!loopback.allows("null"));
        assert!(!loopback.allows("not an origin"));

        let configured = Origins::parse(&[
            "https://App.Example.com/".into(),
            "http://localhost:*".into(),
            "null".into(),
        ])
        .unwrap();
        assert!(configured.allows("https://app.example.com"));
        assert!(configured.allows("https://app.example.com:443"));
        assert!(!configured.allows("https://app.example.com:8443"));
        assert!(!configured.allows("http://app.example.com"));
        assert!(configured.allows("http://localhost:1234"));
        assert!(configured.allows("null"));
        assert!(!configured.allows("http://127.0.0.1:1234"));
        for bad in [
            "app.example.com",
            "https://",
            "https://a.example/path",
            "null:*",
        ] {
            assert!(Origins::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
