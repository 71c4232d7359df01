//! Tenant credentials at rest and in memory.
//!
//! In a tenant file a credential is one of:
//! - `{"env": "VAR"}`: read from the environment at start (`"optional": true` lets it be unset);
//! - `{"encrypted": "v1:<base64>"}`: ChaCha20-Poly1305 under `sha256(ONOMANCER_MASTER_KEY)`, the
//!   base64 holding a random 12-byte nonce followed by the ciphertext and tag
//!   (`onomancer secret encrypt` makes these with [`encrypt_secret`]);
//! - a plain string, only when `allowPlaintextSecrets` is true in `defaults.json` (development).
//!
//! API keys are never stored: the config lists the SHA-256 (hex) of each, and lookups hash the
//! presented bearer and compare in constant time.

use std::fmt;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const VERSION_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// Where a credential comes from, as written in a tenant file.
#[derive(Clone)]
pub(crate) enum SecretRef {
    /// `{"env": "VAR"}` (with `"optional": true`, an unset variable means "not configured").
    Env {
        /// The variable.
        var: String,
        /// Whether an unset variable is allowed.
        optional: bool,
    },
    /// `{"encrypted": "v1:..."}`.
    Encrypted(String),
    /// A plain string (development only).
    Plain(SecretString),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env { var, optional } => write!(f, "Env({var}, optional={optional})"),
            Self::Encrypted(_) => f.write_str("Encrypted(..)"),
            Self::Plain(_) => f.write_str("Plain([REDACTED])"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "{\"env\": \"VAR\"}, {\"encrypted\": \"v1:...\"} or (development only) a plain string",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretRef, E> {
                Ok(SecretRef::Plain(SecretString::from(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let (mut env, mut encrypted, mut optional) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "env" => env = Some(map.next_value::<String>()?),
                        "encrypted" => encrypted = Some(map.next_value::<String>()?),
                        "optional" => optional = Some(map.next_value::<bool>()?),
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["env", "optional", "encrypted"],
                            ))
                        }
                    }
                }
                match (env, encrypted, optional) {
                    (Some(var), None, optional) if !var.is_empty() => Ok(SecretRef::Env {
                        var,
                        optional: optional.unwrap_or(false),
                    }),
                    (None, Some(value), None) => Ok(SecretRef::Encrypted(value)),
                    _ => Err(de::Error::custom(
                        "expected exactly one of {\"env\": \"VAR\"} (optionally with \"optional\": true) or {\"encrypted\": \"v1:...\"}",
                    )),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Why an encrypted credential could not be decrypted. Never contains the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not of the form `v1:<base64>`.
    #[error("not of the form \"v1:<base64>\"")]
    Malformed,
    /// Authentication failed: wrong master key or corrupted ciphertext.
    #[error("wrong ONOMANCER_MASTER_KEY or corrupted value")]
    WrongKeyOrCorrupted,
    /// The plaintext is not UTF-8.
    #[error("decrypted value is not UTF-8")]
    NotUtf8,
}

fn cipher(master_key: &SecretString) -> ChaCha20Poly1305 {
    let digest = Sha256::digest(master_key.expose_secret().as_bytes());
    ChaCha20Poly1305::new(Key::from_slice(&digest))
}

/// Encrypts a credential for a tenant file: returns `v1:<base64(nonce || ciphertext+tag)>`.
pub fn encrypt_secret(master_key: &SecretString, plaintext: &str) -> String {
    let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher(master_key)
        .encrypt(&nonce, plaintext.as_bytes())
        .expect("ChaCha20-Poly1305 encrypts any input shorter than 256 GiB");
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&sealed);
    format!(
        "{VERSION_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// Decrypts a value made by [`encrypt_secret`].
pub fn decrypt_secret(master_key: &SecretString, value: &str) -> Result<SecretString, SecretError> {
    let b64 = value
        .trim()
        .strip_prefix(VERSION_PREFIX)
        .ok_or(SecretError::Malformed)?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| SecretError::Malformed)?;
    if blob.len() < NONCE_LEN + 16 {
        return Err(SecretError::Malformed);
    }
    let (nonce, sealed) = blob.split_at(NONCE_LEN);
    let plain = cipher(master_key)
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map_err(|_| SecretError::WrongKeyOrCorrupted)?;
    String::from_utf8(plain)
        .map(SecretString::from)
        .map_err(|_| SecretError::NotUtf8)
}

/// SHA-256 (lower-case hex) of an API key: what a tenant file lists under `credentials.apiKeys`.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The SHA-256 of one API key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyHash([u8; 32]);

impl ApiKeyHash {
    /// Parses 64 hex characters.
    pub fn from_hex(hex_digest: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_digest.trim(), &mut out).ok()?;
        Some(Self(out))
    }

    /// The hash of a presented key.
    pub fn of_key(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &ApiKeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyHash({}..)", hex::encode(&self.0[..4]))
    }
}

/// A tenant's credentials, resolved at start. `Debug` never shows them.
#[derive(Clone, Default)]
pub struct TenantCredentials {
    /// Verifies `X-Hub-Signature-256` on GitHub webhooks (`None`: GitHub webhooks are refused).
    pub github_webhook_secret: Option<SecretString>,
    /// Verifies `Linear-Signature` on Linear webhooks (`None`: Linear webhooks are refused).
    pub linear_webhook_secret: Option<SecretString>,
    /// Hashes of the bearer keys accepted by `/v1/*`.
    pub api_keys: Vec<ApiKeyHash>,
    /// The Google service-account JSON key (`None`: Google Docs output is off).
    pub google_service_account: Option<SecretString>,
}

impl TenantCredentials {
    /// Whether `presented` hashes to one of this tenant's keys. Compares every key in constant
    /// time (no early exit).
    pub fn accepts_api_key(&self, presented: &ApiKeyHash) -> bool {
        self.api_keys
            .iter()
            .fold(false, |found, k| found | k.ct_eq(presented))
    }
}

impl fmt::Debug for TenantCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |s: &Option<SecretString>| if s.is_some() { "[REDACTED]" } else { "None" };
        f.debug_struct("TenantCredentials")
            .field("github_webhook_secret", &set(&self.github_webhook_secret))
            .field("linear_webhook_secret", &set(&self.linear_webhook_secret))
            .field("api_keys", &self.api_keys.len())
            .field("google_service_account", &set(&self.google_service_account))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SecretString {
        SecretString::from(s)
    }

    #[test]
    fn encrypt_decrypt_round_trip() {
        let k = key("master key for tests");
        let a = encrypt_secret(&k, "s3cr3t");
        let b = encrypt_secret(&k, "s3cr3t");
        assert!(a.starts_with("v1:"));
        assert_ne!(a, b, "a fresh nonce every time");
        assert!(!a.contains("s3cr3t"));
        assert_eq!(decrypt_secret(&k, &a).unwrap().expose_secret(), "s3cr3t");
        assert_eq!(
            decrypt_secret(&key("other"), &a).unwrap_err(),
            SecretError::WrongKeyOrCorrupted
        );
        assert_eq!(
            decrypt_secret(&k, "v1:!!").unwrap_err(),
            SecretError::Malformed
        );
        assert_eq!(
            decrypt_secret(&k, "s3cr3t").unwrap_err(),
            SecretError::Malformed
        );
        let mut tampered = a.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(decrypt_secret(&k, &tampered).is_err());
    }

    #[test]
    fn secret_refs_parse_and_never_debug_print() {
        let r: SecretRef = serde_json::from_str(r#"{"env":"X"}"#).unwrap();
        assert!(matches!(r, SecretRef::Env { ref var, optional: false } if var == "X"));
        let r: SecretRef = serde_json::from_str(r#"{"env":"X","optional":true}"#).unwrap();
        assert!(matches!(r, SecretRef::Env { optional: true, .. }));
        let r: SecretRef = serde_json::from_str(r#""hunter2""#).unwrap();
        assert!(!format!("{r:?}").contains("hunter2"));
        let e = serde_json::from_str::<SecretRef>(r#"{"env":"X","encrypted":"v1:"}"#).unwrap_err();
        assert!(e.to_string().contains("exactly one"), "{e}");
        let e = serde_json::from_str::<SecretRef>(r#"{"enc":"v1:"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `enc`"), "{e}");
    }

    #[test]
    fn api_keys_compare_by_hash() {
        let hex = hash_api_key("ono_live_abc");
        assert_eq!(hex.len(), 64);
        let creds = TenantCredentials {
            api_keys: vec![ApiKeyHash::from_hex(&hex).unwrap()],
            github_webhook_secret: Some(key("gh")),
            ..Default::default()
        };
        assert!(creds.accepts_api_key(&ApiKeyHash::of_key("ono_live_abc")));
        assert!(!creds.accepts_api_key(&ApiKeyHash::of_key("ono_live_abd")));
        let dbg = format!("{creds:?}");
        assert!(!dbg.contains("gh\"") && dbg.contains("[REDACTED]"), "{dbg}");
        assert!(ApiKeyHash::from_hex("zz").is_none());
    }
}
