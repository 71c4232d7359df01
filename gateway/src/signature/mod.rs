//! Webhook signature checks: HMAC-SHA256 over the raw body (GitHub's `X-Hub-Signature-256`,
//! Linear's `Linear-Signature`) compared in constant time and streamed as the body arrives, and
//! Discord's Ed25519 (`discord.rs`, batched under load). Failures carry no detail: callers
//! answer a bare 401.

mod discord;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

pub use discord::{DiscordSignature, DiscordVerifier, InvalidPublicKey};

type HmacSha256 = Hmac<Sha256>;

/// A signature did not verify (or was missing or malformed). Deliberately without detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature verification failed")]
pub struct BadSignature;

/// An HMAC-SHA256 check started from the signature header, before the body is read: the body
/// is streamed into it chunk by chunk as it arrives, then [`verify`](Self::verify) compares in
/// constant time. A missing or malformed header fails at once, so such a request is refused
/// without reading its body.
pub struct HmacCheck {
    mac: HmacSha256,
    expected: [u8; 32],
}

impl HmacCheck {
    fn from_hex(secret: &SecretString, hex_sig: &str) -> Result<Self, BadSignature> {
        let mut expected = [0u8; 32];
        hex::decode_to_slice(hex_sig.trim(), &mut expected).map_err(|_| BadSignature)?;
        let mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
            .map_err(|_| BadSignature)?;
        Ok(Self { mac, expected })
    }

    /// From GitHub's `X-Hub-Signature-256: sha256=<64 hex digits>` header value.
    pub fn github(secret: &SecretString, header: Option<&str>) -> Result<Self, BadSignature> {
        let hex_sig = header
            .and_then(|h| h.strip_prefix("sha256="))
            .ok_or(BadSignature)?;
        Self::from_hex(secret, hex_sig)
    }

    /// From Linear's `Linear-Signature: <64 hex digits>` header value.
    pub fn linear(secret: &SecretString, header: Option<&str>) -> Result<Self, BadSignature> {
        Self::from_hex(secret, header.ok_or(BadSignature)?)
    }

    /// Feeds the next chunk of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        self.mac.update(chunk);
    }

    /// Whether the body fed so far is the one signed (constant-time comparison).
    pub fn verify(self) -> Result<(), BadSignature> {
        self.mac
            .verify_slice(&self.expected)
            .map_err(|_| BadSignature)
    }
}

/// Checks GitHub's `X-Hub-Signature-256: sha256=<hex>` header value against `body`.
pub fn verify_github(
    secret: &SecretString,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), BadSignature> {
    let mut check = HmacCheck::github(secret, header)?;
    check.update(body);
    check.verify()
}

/// Checks Linear's `Linear-Signature: <hex>` header value against `body`.
pub fn verify_linear(
    secret: &SecretString,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), BadSignature> {
    let mut check = HmacCheck::linear(secret, header)?;
    check.update(body);
    check.verify()
}

/// The hex HMAC-SHA256 of `body` under `secret`, as both GitHub (after `sha256=`) and Linear
/// send it. Used by tests and the benchmark's request generator.
pub fn hmac_sha256_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
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
    fn a_body_streamed_in_chunks_verifies_like_the_whole() {
        let body = b"Hello, World!";
        for size in [1, 3, 13] {
            let mut check = HmacCheck::github(&secret(), Some(VECTOR_SIG)).unwrap();
            for chunk in body.chunks(size) {
                check.update(chunk);
            }
            assert!(check.verify().is_ok(), "chunks of {size}");
        }
        let mut check = HmacCheck::github(&secret(), Some(VECTOR_SIG)).unwrap();
        check.update(b"Hello, ");
        assert!(check.verify().is_err(), "a truncated body fails");
        // Malformed headers fail before any body.
        for bad in [
            None,
            Some("sha256="),
            Some(&VECTOR_SIG[..70]),
            Some(&VECTOR_SIG[7..]),
        ] {
            assert!(HmacCheck::github(&secret(), bad).is_err(), "{bad:?}");
        }
    }
}
