//! The authorization server's signing keys, and the check of an access token against
//! them: what makes this server an OAuth 2.1 resource server (see [`super::oauth`]).
//!
//! At start, [`Verifier::discover`] reads the issuer's metadata (RFC 8414, else OpenID
//! Connect discovery), then its JWKS; a failure of either is a [`ConfigError`] naming
//! the issuer. While serving, the keys are cached: a token signed with a key the cache
//! lacks (a rotation) makes one refetch, at most one per [`REFETCH_INTERVAL`]; keys
//! older than [`KEYS_MAX_AGE`] are fetched again before use. A fetch that fails makes
//! the token's check [`TokenError::Unavailable`] (503), never a pass.
//!
//! A token passes when it is a JWT signed by one of those keys with an asymmetric
//! algorithm (`alg: none` and HMAC are refused: the keys are public), its `iss` is the
//! issuer, its `aud` names this server, and `exp`/`nbf` hold within [`LEEWAY_SECS`].

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, Jwk},
};
use reqwest::Url;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};

use crate::{config::ConfigError, web::is_loopback_host};

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub(crate) const LEEWAY_SECS: u64 = 30;
/// The least time between two refetches of the keys for an unknown key id.
pub(crate) const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Keys older than this are fetched again before a token is checked with them.
pub(crate) const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// How long a metadata or JWKS request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest metadata document or JWKS read, in bytes.
const MAX_DOCUMENT: usize = 1024 * 1024;
/// The signature algorithms accepted: asymmetric ones only.
const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a presented token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token is not valid for this server (401 `invalid_token`); the text says why.
    #[error("{0}")]
    Invalid(String),
    /// The token could not be checked because the issuer's keys could not be fetched
    /// (503, with `Retry-After`).
    #[error("{0}")]
    Unavailable(String),
}

/// Why the issuer's metadata or keys could not be read.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("HTTP status {0}")]
    Status(reqwest::StatusCode),
    #[error("the document is larger than {MAX_DOCUMENT} bytes")]
    TooLarge,
    #[error("not a JSON object ({0})")]
    NotJson(String),
    #[error("{0}")]
    Content(String),
}

/// One signing key of the JWKS.
struct Key {
    kid: Option<String>,
    /// The key's `alg`, when it names one.
    alg: Option<Algorithm>,
    decoding: DecodingKey,
    /// Whether an algorithm may be used with this key's type.
    kind: KeyKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    Ec,
    Okp,
}

impl KeyKind {
    fn of(alg: Algorithm) -> Option<Self> {
        match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Some(Self::Rsa),
            Algorithm::ES256 | Algorithm::ES384 => Some(Self::Ec),
            Algorithm::EdDSA => Some(Self::Okp),
            _ => None,
        }
    }
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        KeyKind::of(alg) == Some(self.kind) && self.alg.is_none_or(|own| own == alg)
    }
}

/// The cached keys and when they were fetched.
struct Keys {
    keys: Vec<Key>,
    fetched: Instant,
}

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// The agent id: the value of the agent claim.
    pub agent: String,
    /// The token's scopes (`scope`, `scp` and `roles`).
    pub scopes: Vec<String>,
}

/// Checks access tokens against one issuer's keys.
pub(crate) struct Verifier {
    issuer: String,
    audience: String,
    agent_claim: String,
    jwks_uri: Url,
    http: reqwest::Client,
    keys: RwLock<Keys>,
    /// When the keys were last refetched for an unknown key id, and whether that
    /// worked; held while fetching.
    refetched: Mutex<Option<(Instant, bool)>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks_uri", &self.jwks_uri.as_str())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Finds `issuer`'s JWKS through its metadata and fetches it; an error names the
    /// issuer and what failed. Tokens must name `audience` and carry `agent_claim`.
    pub(crate) async fn discover(
        issuer: &str,
        audience: &str,
        agent_claim: &str,
    ) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|error| ConfigError(format!("cannot build an HTTP client: {error}")))?;
        let issuer_url = checked_url(issuer, "--oauth-issuer")?;
        let mut tried = Vec::new();
        let mut jwks_uri = None;
        for url in metadata_urls(&issuer_url) {
            match fetch_json(&http, &url)
                .await
                .and_then(|metadata| jwks_uri_of(&metadata, issuer).map_err(FetchError::Content))
            {
                Ok(uri) => {
                    jwks_uri = Some(uri);
                    break;
                }
                Err(error) => tried.push(format!("{url}: {error}")),
            }
        }
        let Some(jwks_uri) = jwks_uri else {
            return Err(ConfigError(format!(
                "cannot discover the OAuth authorization server --oauth-issuer {issuer}: {}. Check the issuer URL \
                 (exactly as its tokens' `iss` claim has it) and that this server can reach it",
                tried.join("; ")
            )));
        };
        let jwks_uri = checked_url(&jwks_uri, "the issuer's jwks_uri")?;
        let keys = fetch_keys(&http, &jwks_uri).await.map_err(|error| {
            ConfigError(format!(
                "cannot read the signing keys of --oauth-issuer {issuer} from {jwks_uri}: {error}"
            ))
        })?;
        if keys.is_empty() {
            return Err(ConfigError(format!(
                "the JWKS of --oauth-issuer {issuer} ({jwks_uri}) holds no signing key this server can use \
                 (RSA, EC P-256/P-384 or Ed25519)"
            )));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            agent_claim: agent_claim.to_owned(),
            jwks_uri,
            http,
            keys: RwLock::new(Keys {
                keys,
                fetched: Instant::now(),
            }),
            refetched: Mutex::new(None),
        })
    }

    /// The issuer, as configured.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience tokens must name.
    pub(crate) fn audience(&self) -> &str {
        &self.audience
    }

    /// Checks `token`; what it says when it passes.
    pub(crate) async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|_| {
            TokenError::Invalid(
                "the token is not a JWT signed with an algorithm this server accepts \
                 (RS256, ES256, EdDSA and other asymmetric ones; never `none`)"
                    .into(),
            )
        })?;
        let alg = header.alg;
        if !ACCEPTED.contains(&alg) {
            return Err(TokenError::Invalid(format!(
                "tokens signed with {alg:?} are refused: only the issuer's public-key signatures \
                 (RS256, ES256, EdDSA, ...) are accepted"
            )));
        }
        let key = self.key_for(header.kid.as_deref(), alg).await?;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        let data = decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|error| TokenError::Invalid(self.explain(error.kind())))?;
        let claims = data.claims;
        let agent = match claims.get(&self.agent_claim) {
            Some(Value::String(agent))
                if !agent.trim().is_empty()
                    && agent.chars().count() <= 256
                    && !agent.chars().any(char::is_control) =>
            {
                agent.trim().to_owned()
            }
            _ => {
                return Err(TokenError::Invalid(format!(
                    "the token has no usable `{}` claim (a non-empty string of at most 256 characters), \
                     which names the agent on this server (--oauth-agent-claim)",
                    self.agent_claim
                )));
            }
        };
        Ok(Claims {
            agent,
            scopes: scopes_of(&claims),
        })
    }

    /// Why a signed token failed its checks, for the client.
    fn explain(&self, kind: &ErrorKind) -> String {
        match kind {
            ErrorKind::ExpiredSignature => "the token has expired: get a new one".into(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".into(),
            ErrorKind::InvalidIssuer => format!(
                "the token was not issued by {} (its `iss` differs)",
                self.issuer
            ),
            ErrorKind::InvalidAudience => format!(
                "the token is not meant for this server: its `aud` does not name {}; \
                 request it with resource={}",
                self.audience, self.audience
            ),
            ErrorKind::MissingRequiredClaim(claim) => {
                format!("the token has no `{claim}` claim")
            }
            ErrorKind::InvalidSignature => {
                "the token's signature does not verify with the issuer's key".into()
            }
            _ => "the token is not a valid JWT signed by the issuer".into(),
        }
    }

    /// The key to check a token signed with `alg` (by key `kid`, if named), refetching
    /// the keys when they are old or `kid` is new to them.
    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, TokenError> {
        {
            let keys = self.keys.read().await;
            if keys.fetched.elapsed() < KEYS_MAX_AGE {
                match pick(&keys.keys, kid, alg) {
                    Picked::Key(key) => return Ok(key),
                    Picked::Ambiguous => return Err(ambiguous()),
                    Picked::None if kid.is_none() => return Err(no_key(kid, alg)),
                    Picked::None => {}
                }
            }
        }
        let mut refetched = self.refetched.lock().await;
        {
            // Another request may have refetched while this one waited.
            let keys = self.keys.read().await;
            let stale = keys.fetched.elapsed() >= KEYS_MAX_AGE;
            if !stale {
                match pick(&keys.keys, kid, alg) {
                    Picked::Key(key) => return Ok(key),
                    Picked::Ambiguous => return Err(ambiguous()),
                    Picked::None => {}
                }
            }
            // At most one fetch per interval, for new keys or old ones alike; after a
            // failed one, the keys stay unavailable until the next may be tried.
            match *refetched {
                Some((at, false)) if at.elapsed() < REFETCH_INTERVAL => {
                    return Err(self.unavailable());
                }
                Some((at, true)) if at.elapsed() < REFETCH_INTERVAL && !stale => {
                    return Err(no_key(kid, alg));
                }
                _ => {}
            }
        }
        let fetched = fetch_keys(&self.http, &self.jwks_uri).await;
        *refetched = Some((Instant::now(), fetched.is_ok()));
        let fresh = fetched.map_err(|error| {
            tracing::warn!(issuer = %self.issuer, jwks_uri = %self.jwks_uri, %error, "cannot fetch the OAuth issuer's signing keys");
            self.unavailable()
        })?;
        tracing::info!(issuer = %self.issuer, keys = fresh.len(), "fetched the OAuth issuer's signing keys");
        let mut keys = self.keys.write().await;
        *keys = Keys {
            keys: fresh,
            fetched: Instant::now(),
        };
        match pick(&keys.keys, kid, alg) {
            Picked::Key(key) => Ok(key),
            Picked::Ambiguous => Err(ambiguous()),
            Picked::None => Err(no_key(kid, alg)),
        }
    }
}

impl Verifier {
    /// The answer while the keys cannot be fetched.
    fn unavailable(&self) -> TokenError {
        TokenError::Unavailable(format!(
            "cannot check the token now: the signing keys of the authorization server {} could not be fetched; \
             try again shortly",
            self.issuer
        ))
    }
}

enum Picked {
    Key(DecodingKey),
    None,
    Ambiguous,
}

/// The key named `kid` (or, for a token naming none, the only key fitting `alg`).
fn pick(keys: &[Key], kid: Option<&str>, alg: Algorithm) -> Picked {
    let mut fitting = keys
        .iter()
        .filter(|key| key.fits(alg))
        .filter(|key| kid.is_none_or(|kid| key.kid.as_deref() == Some(kid)));
    match (fitting.next(), fitting.next()) {
        (Some(key), None) => Picked::Key(key.decoding.clone()),
        (Some(_), Some(_)) => Picked::Ambiguous,
        (None, _) => Picked::None,
    }
}

fn ambiguous() -> TokenError {
    TokenError::Invalid(
        "the token names no key id (`kid`) and the issuer has several keys for its algorithm"
            .into(),
    )
}

fn no_key(kid: Option<&str>, alg: Algorithm) -> TokenError {
    TokenError::Invalid(match kid {
        Some(kid) => format!(
            "the token is signed with key `{}` ({alg:?}), which the authorization server does not publish",
            kid.chars().take(100).collect::<String>()
        ),
        None => format!("the authorization server publishes no {alg:?} key"),
    })
}

/// The scopes of a token: `scope` (space-separated, RFC 9068), `scp` (a list or a
/// space-separated string, as Microsoft Entra and Okta send) and `roles` (Entra's app
/// roles, the permissions of its client-credential tokens).
fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for claim in ["scope", "scp", "roles"] {
        match claims.get(claim) {
            Some(Value::String(text)) => scopes.extend(text.split_whitespace().map(str::to_owned)),
            Some(Value::Array(items)) => {
                scopes.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
            }
            _ => {}
        }
    }
    let mut seen = HashSet::new();
    scopes.retain(|scope| seen.insert(scope.clone()));
    scopes
}

/// `text` as an http(s) URL: https, or http to a loopback host.
pub(crate) fn checked_url(text: &str, what: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|error| {
        ConfigError(format!(
            "{what} `{text}` is not a URL ({error}): write it like https://auth.example.com/realms/main"
        ))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError(format!(
            "{what} must not carry a user name or password (`user:password@`)"
        )));
    }
    let loopback = url.host_str().is_some_and(is_loopback_host);
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(ConfigError(format!(
            "{what} `{text}` must be an https URL (http only for a loopback host)"
        ))),
    }
}

/// Where the issuer's metadata may be, in the order the MCP authorization
/// specification tries them: RFC 8414 with the issuer's path inserted, OpenID
/// Connect discovery with it inserted, then appended.
fn metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut origin = issuer.clone();
    origin.set_query(None);
    origin.set_fragment(None);
    let with_path = |well_known: &str| {
        let mut url = origin.clone();
        url.set_path(&format!("/.well-known/{well_known}{path}"));
        url
    };
    let mut urls = vec![with_path("oauth-authorization-server")];
    if path.is_empty() {
        urls.push(with_path("openid-configuration"));
    } else {
        urls.push(with_path("openid-configuration"));
        let mut appended = origin.clone();
        appended.set_path(&format!("{path}/.well-known/openid-configuration"));
        urls.push(appended);
    }
    urls
}

/// The `jwks_uri` of a metadata document, which must be `issuer`'s.
fn jwks_uri_of(metadata: &Map<String, Value>, issuer: &str) -> Result<String, String> {
    match metadata.get("issuer").and_then(Value::as_str) {
        Some(named) if named == issuer => {}
        Some(named) => {
            return Err(format!(
                "the metadata names issuer `{named}`, not `{issuer}`: pass --oauth-issuer exactly as the server names itself"
            ));
        }
        None => return Err("the metadata has no `issuer`".into()),
    }
    metadata
        .get("jwks_uri")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "the metadata has no `jwks_uri`".into())
}

/// GETs `url` and reads its body as a JSON object of at most [`MAX_DOCUMENT`] bytes.
async fn fetch_json(http: &reqwest::Client, url: &Url) -> Result<Map<String, Value>, FetchError> {
    let mut response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    match serde_json::from_slice(&body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(FetchError::NotJson("not an object".into())),
        Err(error) => Err(FetchError::NotJson(error.to_string())),
    }
}

/// The usable signing keys of the JWKS at `url`. Keys for encryption, of other types,
/// or that do not parse are skipped.
async fn fetch_keys(http: &reqwest::Client, url: &Url) -> Result<Vec<Key>, FetchError> {
    let document = fetch_json(http, url).await?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err(FetchError::Content("the JWKS has no `keys` list".into()));
    };
    Ok(entries.iter().filter_map(key_of).collect())
}

/// A signing key of a JWKS entry, if it is one this server can use.
fn key_of(entry: &Value) -> Option<Key> {
    if entry
        .get("use")
        .and_then(Value::as_str)
        .is_some_and(|usage| usage != "sig")
    {
        return None;
    }
    let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(_) => KeyKind::Ec,
        AlgorithmParameters::OctetKeyPair(_) => KeyKind::Okp,
        AlgorithmParameters::OctetKey(_) => return None,
    };
    let alg = match entry.get("alg").and_then(Value::as_str) {
        None => None,
        Some(name) => Some(
            name.parse::<Algorithm>()
                .ok()
                .filter(|alg| ACCEPTED.contains(alg))?,
        ),
    };
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        decoding: DecodingKey::from_jwk(&jwk).ok()?,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn metadata_is_looked_for_where_the_mcp_specification_says() {
        let shown = |issuer: &str| {
            metadata_urls(&Url::parse(issuer).unwrap())
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shown("https://auth.example.com"),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            shown("https://auth.example.com/realms/main/"),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/realms/main",
                "https://auth.example.com/.well-known/openid-configuration/realms/main",
                "https://auth.example.com/realms/main/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn metadata_must_name_the_configured_issuer() {
        let metadata = |issuer: &str| {
            json!({"issuer": issuer, "jwks_uri": "https://a.example/keys"})
                .as_object()
                .unwrap()
                .clone()
        };
        assert_eq!(
            jwks_uri_of(&metadata("https://a.example"), "https://a.example").unwrap(),
            "https://a.example/keys"
        );
        let wrong = jwks_uri_of(&metadata("https://b.example"), "https://a.example").unwrap_err();
        assert!(
            wrong.contains("names issuer `https://b.example`"),
            "{wrong}"
        );
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims = |value: Value| value.as_object().unwrap().clone();
        assert_eq!(scopes_of(&claims(json!({"scope": "a  b a"}))), ["a", "b"]);
        assert_eq!(
            scopes_of(&claims(json!({"scp": ["a", 1, "c"]}))),
            ["a", "c"]
        );
        assert_eq!(scopes_of(&claims(json!({"scp": "x y"}))), ["x", "y"]);
        assert_eq!(
            scopes_of(&claims(json!({"scp": "x", "roles": ["Tools.Read", "x"]}))),
            ["x", "Tools.Read"]
        );
        assert!(scopes_of(&claims(json!({"scope": 5}))).is_empty());
    }

    #[test]
    fn issuers_must_be_https_unless_on_loopback() {
        assert!(checked_url("https://auth.example.com", "--oauth-issuer").is_ok());
        assert!(checked_url("http://127.0.0.1:8080", "--oauth-issuer").is_ok());
        assert!(checked_url("http://localhost:8080/realms/x", "--oauth-issuer").is_ok());
        let error = checked_url("http://auth.example.com", "--oauth-issuer")
            .unwrap_err()
            .0;
        assert!(error.contains("must be an https URL"), "{error}");
        let error = checked_url("https://user:secret@auth.example.com", "--oauth-issuer")
            .unwrap_err()
            .0;
        assert!(
            error.contains("must not carry") && !error.contains("secret"),
            "{error}"
        );
        let error = checked_url("auth.example.com", "--oauth-issuer")
            .unwrap_err()
            .0;
        assert!(error.contains("is not a URL"), "{error}");
    }

    #[test]
    fn encryption_and_symmetric_keys_are_never_used_for_signatures() {
        let rsa = json!({"kty": "RSA", "kid": "r", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"});
        assert!(key_of(&rsa).is_some());
        let mut encryption = rsa.clone();
        encryption["use"] = json!("enc");
        assert!(key_of(&encryption).is_none());
        let mut hmac = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(key_of(&hmac).is_none());
        hmac["alg"] = json!("HS256");
        assert!(key_of(&hmac).is_none());
        let mut named_hmac = rsa.clone();
        named_hmac["alg"] = json!("HS256");
        assert!(
            key_of(&named_hmac).is_none(),
            "an RSA key labelled HS256 is not used"
        );

        let mut rs256 = rsa;
        rs256["alg"] = json!("RS256");
        let keys: Vec<Key> = key_of(&rs256).into_iter().collect();
        let picks = |kid: Option<&str>, alg| matches!(pick(&keys, kid, alg), Picked::Key(_));
        assert!(picks(Some("r"), Algorithm::RS256));
        assert!(
            picks(None, Algorithm::RS256),
            "the only fitting key, for a token naming none"
        );
        assert!(
            !picks(Some("r"), Algorithm::PS256),
            "not under another algorithm than its own"
        );
        assert!(
            !picks(Some("r"), Algorithm::ES256),
            "not under another key type's algorithm"
        );
        assert!(!picks(Some("other"), Algorithm::RS256));
    }
}
