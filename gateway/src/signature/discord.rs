//! Discord's Ed25519 check of `timestamp || body` with the application's public key: the
//! headers are parsed before the body is read, the checks run on a verifier thread that batches
//! them under load.

use ed25519_dalek::{Signature, VerifyingKey};

use super::BadSignature;

/// Most signature checks verified together by the Discord verifier's thread. Batches form only
/// under load (whatever queued while the previous batch was being checked); a lone request is
/// checked on its own at once.
const MAX_BATCH: usize = 64;

/// Discord's Ed25519 check of `timestamp || body` with the application's public key.
///
/// Checks run on a thread of their own and are verified in batches when requests queue up: one
/// batched check of 16 or more signatures costs about half as much CPU per signature as checking
/// them one by one, and Ed25519 is most of the CPU an interaction costs. A batch that fails is
/// re-checked signature by signature, so a bad signature fails only its own request. The batch
/// equation (ed25519-dalek's `verify_batch`, random 128-bit weights from a transcript of the
/// inputs) accepts exactly what single verification accepts for any signature not made by the key
/// holder with crafted points, so batching never changes which requests get in.
#[derive(Clone)]
pub struct DiscordVerifier {
    key: VerifyingKey,
    batcher: Option<std::sync::mpsc::Sender<PendingCheck>>,
}

struct PendingCheck {
    message: Vec<u8>,
    signature: Signature,
    reply: tokio::sync::oneshot::Sender<bool>,
}

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
    /// Parses the application's hex public key. Checks run inline until [`Self::batched`].
    pub fn from_hex(public_key: &str) -> Result<Self, InvalidPublicKey> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(public_key.trim(), &mut bytes).map_err(|_| InvalidPublicKey)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| InvalidPublicKey)?;
        Ok(Self { key, batcher: None })
    }

    /// Moves checks to a verifier thread that batches them. The thread ends when the last clone
    /// of this verifier is dropped.
    pub fn batched(mut self) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let key = self.key;
        std::thread::Builder::new()
            .name("discord-verify".into())
            .spawn(move || run_batches(&key, &rx))?;
        self.batcher = Some(tx);
        Ok(self)
    }

    /// Checks `X-Signature-Ed25519` and `X-Signature-Timestamp` against `body`.
    pub async fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<(), BadSignature> {
        let headers = DiscordSignature::parse(signature, timestamp)?;
        self.verify_signed(&headers, body).await
    }

    /// Checks headers parsed before the body was read against `body`.
    pub async fn verify_signed(
        &self,
        headers: &DiscordSignature<'_>,
        body: &[u8],
    ) -> Result<(), BadSignature> {
        let (signature, message) = (headers.signature, headers.message(body));
        let Some(batcher) = &self.batcher else {
            return check_one(&self.key, &message, &signature)
                .then_some(())
                .ok_or(BadSignature);
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        batcher
            .send(PendingCheck {
                message,
                signature,
                reply,
            })
            .map_err(|_| BadSignature)?;
        match answer.await {
            Ok(true) => Ok(()),
            _ => Err(BadSignature),
        }
    }
}

/// Discord's signature headers, parsed (and refused when absent or malformed) before the body
/// is read: 128 hex digits of signature, a timestamp of decimal digits.
#[derive(Debug, Clone, Copy)]
pub struct DiscordSignature<'a> {
    signature: Signature,
    timestamp: &'a str,
}

impl<'a> DiscordSignature<'a> {
    /// From `X-Signature-Ed25519` and `X-Signature-Timestamp`.
    pub fn parse(
        signature: Option<&str>,
        timestamp: Option<&'a str>,
    ) -> Result<Self, BadSignature> {
        let (Some(sig), Some(ts)) = (signature, timestamp) else {
            return Err(BadSignature);
        };
        let ts = ts.trim();
        if ts.is_empty() || ts.len() > 20 || !ts.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadSignature);
        }
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(sig.trim(), &mut bytes).map_err(|_| BadSignature)?;
        Ok(Self {
            signature: Signature::from_bytes(&bytes),
            timestamp: ts,
        })
    }

    /// The signed message: `timestamp || body`.
    fn message(&self, body: &[u8]) -> Vec<u8> {
        let mut message = Vec::with_capacity(self.timestamp.len() + body.len());
        message.extend_from_slice(self.timestamp.as_bytes());
        message.extend_from_slice(body);
        message
    }
}

fn check_one(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    use ed25519_dalek::Verifier as _;
    key.verify(message, signature).is_ok()
}

/// The verifier thread: takes what has queued (up to [`MAX_BATCH`]), checks it, answers.
fn run_batches(key: &VerifyingKey, rx: &std::sync::mpsc::Receiver<PendingCheck>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let verdicts = check_batch(key, &batch);
        for (pending, ok) in batch.drain(..).zip(verdicts) {
            // The request may have gone (client hung up); nothing to answer then.
            let _ = pending.reply.send(ok);
        }
    }
}

/// One verdict per check: a batched check first, one by one when the batch fails.
fn check_batch(key: &VerifyingKey, batch: &[PendingCheck]) -> Vec<bool> {
    if let [one] = batch {
        return vec![check_one(key, &one.message, &one.signature)];
    }
    let messages: Vec<&[u8]> = batch.iter().map(|p| p.message.as_slice()).collect();
    let signatures: Vec<Signature> = batch.iter().map(|p| p.signature).collect();
    let keys = vec![*key; batch.len()];
    if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
        return vec![true; batch.len()];
    }
    batch
        .iter()
        .map(|p| check_one(key, &p.message, &p.signature))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discord_request(key: &ed25519_dalek::SigningKey, ts: &str, body: &str) -> String {
        use ed25519_dalek::Signer;
        hex::encode(key.sign(format!("{ts}{body}").as_bytes()).to_bytes())
    }

    fn discord_key() -> (ed25519_dalek::SigningKey, DiscordVerifier) {
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let verifier =
            DiscordVerifier::from_hex(&hex::encode(key.verifying_key().to_bytes())).unwrap();
        (key, verifier)
    }

    #[tokio::test]
    async fn discord_signatures_verify_with_the_public_key() {
        let (key, inline) = discord_key();
        let batched = inline.clone().batched().unwrap();
        let body = r#"{"type":1}"#;
        let sig = discord_request(&key, "1700000000", body);
        for verifier in [&inline, &batched] {
            assert!(verifier
                .verify(Some(&sig), Some("1700000000"), body.as_bytes())
                .await
                .is_ok());
            assert!(verifier
                .verify(Some(&sig), Some("1700000001"), body.as_bytes())
                .await
                .is_err());
            assert!(verifier
                .verify(None, Some("1700000000"), body.as_bytes())
                .await
                .is_err());
            assert!(verifier
                .verify(Some("abcd"), Some("1700000000"), body.as_bytes())
                .await
                .is_err());
        }
        assert!(DiscordVerifier::from_hex("nothex").is_err());
        for (sig_header, ts) in [
            (Some(sig.as_str()), Some("soon")),
            (Some(sig.as_str()), Some("")),
            (Some(&sig[2..]), Some("1700000000")),
            (None, Some("1700000000")),
            (Some(sig.as_str()), None),
        ] {
            assert!(DiscordSignature::parse(sig_header, ts).is_err(), "{ts:?}");
        }
    }

    /// A batch with bad signatures in it rejects exactly those and accepts the rest.
    #[test]
    fn a_failed_batch_is_rechecked_one_by_one() {
        let (key, verifier) = discord_key();
        let (other, _) = discord_key();
        let batch: Vec<PendingCheck> = (0..20)
            .map(|i| {
                let ts = format!("17000000{i:02}");
                let body = format!(r#"{{"type":2,"id":"{i}"}}"#);
                let sig = match i {
                    3 => discord_request(&other, &ts, &body), // another key
                    7 => discord_request(&key, &ts, "{}"),    // another body
                    _ => discord_request(&key, &ts, &body),
                };
                let parsed = DiscordSignature::parse(Some(&sig), Some(&ts)).unwrap();
                let (signature, message) = (parsed.signature, parsed.message(body.as_bytes()));
                PendingCheck {
                    message,
                    signature,
                    reply: tokio::sync::oneshot::channel().0,
                }
            })
            .collect();
        let verdicts = check_batch(&verifier.key, &batch);
        let rejected: Vec<usize> = (0..20).filter(|&i| !verdicts[i]).collect();
        assert_eq!(rejected, vec![3, 7]);
        assert!(check_batch(&verifier.key, &batch[8..]).iter().all(|&ok| ok));
    }

    /// Many requests at once through the verifier thread: each gets its own verdict.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_checks_through_the_thread_get_their_own_verdicts() {
        let (key, verifier) = discord_key();
        let verifier = verifier.batched().unwrap();
        let checks = (0..200).map(|i| {
            let verifier = verifier.clone();
            let ts = format!("{}", 1_700_000_000 + i);
            let body = format!(r#"{{"type":2,"id":"{i}"}}"#);
            let mut sig = discord_request(&key, &ts, &body);
            if i % 17 == 0 {
                sig = discord_request(&key, &ts, "tampered");
            }
            tokio::spawn(async move {
                (
                    i,
                    verifier
                        .verify(Some(&sig), Some(&ts), body.as_bytes())
                        .await
                        .is_ok(),
                )
            })
        });
        for r in futures::future::join_all(checks).await {
            let (i, ok) = r.unwrap();
            assert_eq!(ok, i % 17 != 0, "request {i}");
        }
    }
}
