//! Webhook signature checks: HMAC-SHA256 over the raw body (GitHub's `X-Hub-Signature-256`,
//! Linear's `Linear-Signature`) compared in constant time, and Discord's Ed25519 through
//! serenity's `Verifier`. Failures carry no detail: callers answer a bare 401.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A signature did not verify (or was missing or malformed). Deliberately without detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature verification failed")]
pub struct BadSignature;

fn verify_hex_hmac(secret: &SecretString, body: &[u8], hex_sig: &str) -> Result<(), BadSignature> {
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_sig.trim(), &mut expected).map_err(|_| BadSignature)?;
    let mut mac =
        HmacSha256::new_from_slice(secret.expose_secret().as_bytes()).map_err(|_| BadSignature)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).map_err(|_| BadSignature)
}

/// Checks GitHub's `X-Hub-Signature-256: sha256=<hex>` header value against `body`.
pub fn verify_github(
    secret: &SecretString,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), BadSignature> {
    let hex_sig = header
        .and_then(|h| h.strip_prefix("sha256="))
        .ok_or(BadSignature)?;
    verify_hex_hmac(secret, body, hex_sig)
}

/// Checks Linear's `Linear-Signature: <hex>` header value against `body`.
pub fn verify_linear(
    secret: &SecretString,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), BadSignature> {
    verify_hex_hmac(secret, body, header.ok_or(BadSignature)?)
}

/// The hex HMAC-SHA256 of `body` under `secret`, as both GitHub (after `sha256=`) and Linear
/// send it. Used by tests and the benchmark's request generator.
pub fn hmac_sha256_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Discord's Ed25519 check of `timestamp || body` (the application's public key).
#[derive(Clone)]
pub struct DiscordVerifier(serenity::interactions_endpoint::Verifier);

impl std::fmt::Debug for DiscordVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiscordVerifier")
    }
}

/// `DISCORD_PUBLIC_KEY` is not a 64-hex-digit Ed25519 public key.
#[derive(Debug, thiserror::Error)]
#[error("DISCORD_PUBLIC_KEY is not a valid Ed25519 public key (64 hex digits)")]
pub struct InvalidPublicKey;

impl DiscordVerifier {
    /// Parses the application's hex public key.
    pub fn from_hex(public_key: &str) -> Result<Self, InvalidPublicKey> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(public_key.trim(), &mut bytes).map_err(|_| InvalidPublicKey)?;
        serenity::interactions_endpoint::Verifier::try_new(bytes)
            .map(Self)
            .map_err(|_| InvalidPublicKey)
    }

    /// Checks `X-Signature-Ed25519` and `X-Signature-Timestamp` against `body`.
    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<(), BadSignature> {
        let (Some(sig), Some(ts)) = (signature, timestamp) else {
            return Err(BadSignature);
        };
        self.0.verify(sig, ts, body).map_err(|()| BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_SIG: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn secret() -> SecretString {
        SecretString::from("It's a Secret to Everybody")
    }

    #[test]
    fn githubs_published_test_vector_verifies() {
        assert!(verify_github(&secret(), b"Hello, World!", Some(VECTOR_SIG)).is_ok());
        assert_eq!(
            format!(
                "sha256={}",
                hmac_sha256_hex("It's a Secret to Everybody", b"Hello, World!")
            ),
            VECTOR_SIG
        );
    }

    #[test]
    fn tampered_missing_or_malformed_signatures_fail() {
        assert!(verify_github(&secret(), b"Hello, World?", Some(VECTOR_SIG)).is_err());
        assert!(verify_github(&secret(), b"Hello, World!", None).is_err());
        assert!(verify_github(&secret(), b"Hello, World!", Some(&VECTOR_SIG[7..])).is_err());
        assert!(verify_github(&secret(), b"Hello, World!", Some("sha256=zz")).is_err());
        assert!(verify_github(
            &SecretString::from("other"),
            b"Hello, World!",
            Some(VECTOR_SIG)
        )
        .is_err());
    }

    #[test]
    fn linear_signatures_are_bare_hex() {
        let sig = hmac_sha256_hex("lin", b"{}");
        assert!(verify_linear(&SecretString::from("lin"), b"{}", Some(&sig)).is_ok());
        assert!(verify_linear(&SecretString::from("lin"), b"{ }", Some(&sig)).is_err());
        assert!(verify_linear(&SecretString::from("lin"), b"{}", None).is_err());
    }

    #[test]
    fn discord_signatures_verify_with_the_public_key() {
        use ed25519_dalek::{Signer, SigningKey};
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let verifier =
            DiscordVerifier::from_hex(&hex::encode(key.verifying_key().to_bytes())).unwrap();
        let sig = hex::encode(key.sign(b"1700000000{\"type\":1}").to_bytes());
        assert!(verifier
            .verify(Some(&sig), Some("1700000000"), b"{\"type\":1}")
            .is_ok());
        assert!(verifier
            .verify(Some(&sig), Some("1700000001"), b"{\"type\":1}")
            .is_err());
        assert!(verifier
            .verify(None, Some("1700000000"), b"{\"type\":1}")
            .is_err());
        assert!(DiscordVerifier::from_hex("nothex").is_err());
    }
}
