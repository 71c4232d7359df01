//! Service-account authentication: the key file, the RS256 JWT grant
//! (`urn:ietf:params:oauth:grant-type:jwt-bearer`), and a cached access token refreshed shortly
//! before it expires.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::GoogleError;

/// Google's token endpoint, the `aud` of every grant.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The scopes the project asks for.
pub const DEFAULT_SCOPES: &str =
    "https://www.googleapis.com/auth/documents https://www.googleapis.com/auth/drive.file";
/// A token is refreshed when less than this is left of its life.
const REFRESH_MARGIN: Duration = Duration::from_secs(120);
/// Lifetime asked for in the grant (Google's maximum is one hour).
const GRANT_LIFETIME: Duration = Duration::from_secs(3600);

/// A service account's JSON key (the file Google Cloud console downloads).
pub struct ServiceAccountKey {
    /// `client_email`: the `iss` of the grant and the account users share drives with.
    pub client_email: String,
    /// `private_key`: PEM (PKCS#8) RSA key.
    pub private_key: SecretString,
    /// `private_key_id`: sent as the JWT's `kid`.
    pub private_key_id: Option<String>,
    /// `token_uri` (default Google's).
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

impl ServiceAccountKey {
    /// Parses the JSON key file; the error never quotes the key.
    pub fn from_json(json: &SecretString) -> Result<Self, GoogleError> {
        let file: KeyFile = serde_json::from_str(json.expose_secret()).map_err(|e| {
            GoogleError::Credentials(format!(
                "the service account key is not a Google JSON key file (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if file.kind.as_deref().is_some_and(|k| k != "service_account") {
            return Err(GoogleError::Credentials(
                "the key file is not of type \"service_account\"".into(),
            ));
        }
        Ok(Self {
            client_email: file.client_email,
            private_key: SecretString::from(file.private_key),
            private_key_id: file.private_key_id,
            token_uri: file
                .token_uri
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned()),
        })
    }
}

/// The claims of a service-account grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantClaims {
    /// Service account email.
    pub iss: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The token endpoint.
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expiry, at most one hour after `iat`.
    pub exp: u64,
    /// The user to act for (domain-wide delegation), if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sub: Option<String>,
}

/// Signs the grant JWT.
pub(super) fn sign_grant(
    key: &ServiceAccountKey,
    encoding: &EncodingKey,
    scopes: &str,
    subject: Option<&str>,
    now_secs: u64,
) -> Result<String, GoogleError> {
    let claims = GrantClaims {
        iss: key.client_email.clone(),
        scope: scopes.to_owned(),
        aud: key.token_uri.clone(),
        iat: now_secs,
        exp: now_secs + GRANT_LIFETIME.as_secs(),
        sub: subject.map(str::to_owned),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = key.private_key_id.clone();
    jsonwebtoken::encode(&header, &claims, encoding)
        .map_err(|e| GoogleError::Credentials(format!("cannot sign the grant: {e}")))
}

/// Loads the PEM key once.
pub(super) fn encoding_key(key: &ServiceAccountKey) -> Result<EncodingKey, GoogleError> {
    EncodingKey::from_rsa_pem(key.private_key.expose_secret().as_bytes()).map_err(|_| {
        GoogleError::Credentials("the service account private_key is not an RSA PEM key".into())
    })
}

/// A token and when to stop using it.
pub(super) struct CachedToken {
    pub(super) token: SecretString,
    pub(super) refresh_at: Instant,
}

#[derive(Deserialize)]
pub(super) struct TokenResponse {
    pub(super) access_token: String,
    #[serde(default = "default_expires_in")]
    pub(super) expires_in: u64,
}

fn default_expires_in() -> u64 {
    3600
}

#[derive(Deserialize)]
pub(super) struct TokenError {
    pub(super) error: String,
    #[serde(default)]
    pub(super) error_description: String,
}

impl CachedToken {
    pub(super) fn new(response: TokenResponse, now: Instant) -> Self {
        let life = Duration::from_secs(response.expires_in);
        Self {
            token: SecretString::from(response.access_token),
            refresh_at: now + life.saturating_sub(REFRESH_MARGIN),
        }
    }

    pub(super) fn fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const PRIVATE: &str = include_str!("../../../../testkit/fixtures/google-sa-test-key.pem");
    const PUBLIC: &str = include_str!("../../../../testkit/fixtures/google-sa-test-key.pub.pem");

    fn key() -> ServiceAccountKey {
        let json = serde_json::json!({"type": "service_account", "client_email": "bot@p.iam.gserviceaccount.com",
            "private_key": PRIVATE, "private_key_id": "kid-1"});
        ServiceAccountKey::from_json(&SecretString::from(json.to_string())).unwrap()
    }

    #[test]
    fn the_grant_is_rs256_with_googles_claims() {
        let key = key();
        assert_eq!(key.token_uri, DEFAULT_TOKEN_URI);
        let jwt = sign_grant(
            &key,
            &encoding_key(&key).unwrap(),
            DEFAULT_SCOPES,
            Some("ops@thj.example"),
            1_700_000_000,
        )
        .unwrap();

        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(
            (header.alg, header.kid.as_deref()),
            (Algorithm::RS256, Some("kid-1"))
        );
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[DEFAULT_TOKEN_URI]);
        validation.validate_exp = false; // the fixed iat is in the past
        let claims = jsonwebtoken::decode::<GrantClaims>(
            &jwt,
            &DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(
            claims,
            GrantClaims {
                iss: "bot@p.iam.gserviceaccount.com".into(),
                scope: "https://www.googleapis.com/auth/documents https://www.googleapis.com/auth/drive.file".into(),
                aud: "https://oauth2.googleapis.com/token".into(),
                iat: 1_700_000_000,
                exp: 1_700_003_600,
                sub: Some("ops@thj.example".into()),
            }
        );
    }

    #[test]
    fn key_errors_never_quote_the_key() {
        let err =
            ServiceAccountKey::from_json(&SecretString::from("{\"private_key\": \"-----BEGIN"))
                .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "Google service account key: the service account key is not a Google JSON key file"
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("BEGIN"));
        assert!(
            !format!("{:?}", key()).contains("PRIVATE"),
            "Debug hides the key"
        );
    }

    #[test]
    fn cached_tokens_refresh_before_expiry() {
        let now = Instant::now();
        let t = CachedToken::new(
            TokenResponse {
                access_token: "a".into(),
                expires_in: 3599,
            },
            now,
        );
        assert!(t.fresh(now + Duration::from_secs(3000)));
        assert!(!t.fresh(now + Duration::from_secs(3500)));
    }
}
