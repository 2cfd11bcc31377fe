//! Signing secrets: made here, shown once, stored sealed.
//!
//! A secret is `whsec_` + base64 of 32 random bytes (Standard Webhooks:
//! 24 to 64). It is sealed with the webhook master key under a data key of
//! its own, bound to its tenant, endpoint and id, so a row copied to
//! another endpoint or tenant does not open ([`MasterKeys::seal_bound`]).

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::llm::crypto::{CryptoError, MasterKeys, Sealed};

pub const PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 32;

/// What a secret is bound to (the associated data of its seal).
pub fn place(tenant: Uuid, endpoint: Uuid, secret_id: Uuid) -> Vec<u8> {
    format!("bizos.webhook.secret/v1/{tenant}/{endpoint}/{secret_id}").into_bytes()
}

/// A new secret, `whsec_<base64>`.
pub fn generate() -> Result<SecretString, CryptoError> {
    let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    SystemRandom::new()
        .fill(&mut bytes[..])
        .map_err(|_| CryptoError::Random)?;
    Ok(SecretString::from(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(&bytes[..])
    )))
}

/// The HMAC key of a `whsec_` secret: the bytes its base64 stands for.
pub fn key_of(secret: &str) -> Option<Zeroizing<Vec<u8>>> {
    let b64 = secret.strip_prefix(PREFIX)?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
        .ok()
        .filter(|k| !k.is_empty())
        .map(Zeroizing::new)
}

/// `secret` sealed for its place.
pub fn seal(
    keys: &MasterKeys,
    tenant: Uuid,
    endpoint: Uuid,
    secret_id: Uuid,
    secret: &SecretString,
) -> Result<Sealed, CryptoError> {
    keys.seal_bound(
        tenant,
        &place(tenant, endpoint, secret_id),
        secret.expose_secret().as_bytes(),
    )
}

/// The HMAC key of a sealed secret.
pub fn open(
    keys: &MasterKeys,
    tenant: Uuid,
    endpoint: Uuid,
    secret_id: Uuid,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let plain = keys.open_bound(tenant, &place(tenant, endpoint, secret_id), sealed)?;
    let text = std::str::from_utf8(&plain).map_err(|_| CryptoError::Open)?;
    key_of(text).ok_or(CryptoError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn a_secret_is_random_whsec_and_opens_only_in_its_place() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(a.expose_secret().starts_with("whsec_"));
        assert_eq!(key_of(a.expose_secret()).unwrap().len(), 32);
        let keys = MasterKeys::new("k1", &SecretString::from(K1), None).unwrap();
        let (t, e, s) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let sealed = seal(&keys, t, e, s, &a).unwrap();
        assert!(!sealed
            .ciphertext
            .windows(6)
            .any(|w| w == &a.expose_secret().as_bytes()[6..12]));
        assert_eq!(
            open(&keys, t, e, s, &sealed).unwrap(),
            key_of(a.expose_secret()).unwrap()
        );
        for (t2, e2, s2) in [
            (Uuid::new_v4(), e, s),
            (t, Uuid::new_v4(), s),
            (t, e, Uuid::new_v4()),
        ] {
            assert_eq!(
                open(&keys, t2, e2, s2, &sealed).unwrap_err(),
                CryptoError::Open
            );
        }
        assert!(
            key_of("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none(),
            "no prefix"
        );
        assert!(key_of("whsec_").is_none());
    }
}
