//! Envelope encryption of the API keys tenants bring (AES-256-GCM, `ring`).
//!
//! Each secret gets a data key of its own (32 random bytes): the secret is
//! sealed with the data key, and the data key is sealed ("wrapped") with
//! the master key from `BIZOS_LLM_MASTER_KEY`, whose id
//! (`BIZOS_LLM_MASTER_KEY_ID`) is stored beside the wrapped key. The
//! database holds only ciphertexts; the master key never leaves the
//! process's memory. Rotation: a new master key gets a new id, the old one
//! moves to `BIZOS_LLM_MASTER_KEYS_PREVIOUS` (`id:base64,…`) so existing
//! secrets still open, and [`MasterKeys::rewrap`] moves a secret to the
//! current key by re-sealing its data key only.
//!
//! Both seals carry associated data that binds them to their place: the
//! secret to its tenant and provider, the data key to its master key id and
//! tenant. A row copied to another tenant or provider does not open.
//!
//! Secrets are `SecretString`s (never printed by `Debug`), data keys are
//! zeroed when dropped, and errors say what failed, never with what.

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::Postgres;
use uuid::Uuid;
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the master key must be 32 bytes in base64 ({0})")]
    BadMasterKey(String),
    #[error("the key was sealed under master key {0:?}, which this server does not have")]
    UnknownMasterKey(String),
    #[error("the sealed key does not open (wrong master key, or the row was altered or moved)")]
    Open,
    #[error("the system's random generator failed")]
    Random,
}

/// A secret as the database stores it (`llm_tenant_keys`); a row read
/// with `#[sqlx(flatten)]` takes it from its columns of the same names.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub wrapped_dek: Vec<u8>,
    pub dek_nonce: Vec<u8>,
    pub master_key_id: String,
}

impl Sealed {
    /// Binds its five columns to `query`, in the order every SQL function
    /// that stores a sealed secret takes them (`llm_key_add`,
    /// `webhook_endpoint_create`, `webhook_secret_rotate`): ciphertext,
    /// nonce, wrapped data key, its nonce, master key id.
    pub fn bind<'q, O>(
        &'q self,
        query: QueryScalar<'q, Postgres, O, PgArguments>,
    ) -> QueryScalar<'q, Postgres, O, PgArguments> {
        query
            .bind(&self.ciphertext)
            .bind(&self.nonce)
            .bind(&self.wrapped_dek)
            .bind(&self.dek_nonce)
            .bind(&self.master_key_id)
    }
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("master_key_id", &self.master_key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

struct MasterKey {
    id: String,
    key: LessSafeKey,
}

/// The current master key and the previous ones (still opened, never used
/// to seal).
pub struct MasterKeys {
    current: MasterKey,
    previous: Vec<MasterKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeys")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// 32 bytes from standard base64 (with or without padding).
pub fn decode_key(b64: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let text = b64.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .map_err(|_| CryptoError::BadMasterKey("not base64".into()))?;
    let bytes = Zeroizing::new(bytes);
    if bytes.len() != KEY_LEN {
        return Err(CryptoError::BadMasterKey(format!(
            "{} bytes decoded",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn aes_key(bytes: &[u8]) -> Result<LessSafeKey, CryptoError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| CryptoError::BadMasterKey("rejected by AES-256".into()))
}

fn master(id: &str, b64: &str) -> Result<MasterKey, CryptoError> {
    let id = id.trim();
    let id_ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !id_ok {
        return Err(CryptoError::BadMasterKey(
            "its id must be 1-64 letters, digits, '.', '_' or '-'".into(),
        ));
    }
    Ok(MasterKey {
        id: id.to_owned(),
        key: aes_key(&decode_key(b64)?)?,
    })
}

fn secret_aad(tenant: Uuid, provider: &str) -> Vec<u8> {
    format!("bizos.llm.key/v1/{tenant}/{provider}").into_bytes()
}

fn dek_aad(master_key_id: &str, tenant: Uuid) -> Vec<u8> {
    format!("bizos.llm.dek/v1/{master_key_id}/{tenant}").into_bytes()
}

impl MasterKeys {
    /// The current key (`id`, base64) and the previous ones as
    /// `id:base64,id:base64`.
    pub fn new(
        id: &str,
        key: &SecretString,
        previous: Option<&SecretString>,
    ) -> Result<MasterKeys, CryptoError> {
        let current = master(id, key.expose_secret())?;
        let mut older = Vec::new();
        if let Some(list) = previous {
            for item in list
                .expose_secret()
                .split(',')
                .filter(|s| !s.trim().is_empty())
            {
                let (id, b64) = item.split_once(':').ok_or_else(|| {
                    CryptoError::BadMasterKey("previous keys are written id:base64,…".into())
                })?;
                older.push(master(id, b64)?);
            }
        }
        Ok(MasterKeys {
            current,
            previous: older,
            rng: SystemRandom::new(),
        })
    }

    /// The id new secrets are sealed under.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    fn by_id(&self, id: &str) -> Result<&MasterKey, CryptoError> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownMasterKey(id.to_owned()))
    }

    fn random<const N: usize>(&self) -> Result<Zeroizing<[u8; N]>, CryptoError> {
        let mut buf = Zeroizing::new([0u8; N]);
        self.rng
            .fill(&mut buf[..])
            .map_err(|_| CryptoError::Random)?;
        Ok(buf)
    }

    fn seal_with(
        &self,
        key: &LessSafeKey,
        aad: &[u8],
        plain: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        let nonce = self.random::<NONCE_LEN>()?;
        let mut data = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            &mut data,
        )
        .map_err(|_| CryptoError::Open)?;
        Ok((data, nonce.to_vec()))
    }

    fn open_with(
        key: &LessSafeKey,
        aad: &[u8],
        nonce: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut data = Zeroizing::new(sealed.to_vec());
        let plain_len = key
            .open_in_place(nonce, Aad::from(aad), data.as_mut_slice())
            .map_err(|_| CryptoError::Open)?
            .len();
        data.truncate(plain_len);
        Ok(data)
    }

    fn wrap_dek(&self, tenant: Uuid, dek: &[u8]) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        self.seal_with(&self.current.key, &dek_aad(&self.current.id, tenant), dek)
    }

    fn unwrap_dek(&self, tenant: Uuid, s: &Sealed) -> Result<LessSafeKey, CryptoError> {
        let master = self.by_id(&s.master_key_id)?;
        let dek = Self::open_with(
            &master.key,
            &dek_aad(&s.master_key_id, tenant),
            &s.dek_nonce,
            &s.wrapped_dek,
        )?;
        aes_key(&dek).map_err(|_| CryptoError::Open)
    }

    /// Seals `secret` for `tenant` and `provider` under a new data key.
    pub fn seal(
        &self,
        tenant: Uuid,
        provider: &str,
        secret: &SecretString,
    ) -> Result<Sealed, CryptoError> {
        self.seal_bound(
            tenant,
            &secret_aad(tenant, provider),
            secret.expose_secret().as_bytes(),
        )
    }

    /// Seals `secret` for `tenant` under a new data key, bound to `place`
    /// (associated data: the sealed secret opens only with the same
    /// bytes, e.g. `bizos.webhook.secret/v1/<tenant>/<endpoint>/<id>`).
    pub fn seal_bound(
        &self,
        tenant: Uuid,
        place: &[u8],
        secret: &[u8],
    ) -> Result<Sealed, CryptoError> {
        let dek = self.random::<KEY_LEN>()?;
        let (ciphertext, nonce) = self.seal_with(&aes_key(&dek[..])?, place, secret)?;
        let (wrapped_dek, dek_nonce) = self.wrap_dek(tenant, &dek[..])?;
        Ok(Sealed {
            ciphertext,
            nonce,
            wrapped_dek,
            dek_nonce,
            master_key_id: self.current.id.clone(),
        })
    }

    /// The secret sealed for `tenant` and `provider`.
    pub fn open(
        &self,
        tenant: Uuid,
        provider: &str,
        sealed: &Sealed,
    ) -> Result<SecretString, CryptoError> {
        let plain = self.open_bound(tenant, &secret_aad(tenant, provider), sealed)?;
        let text = std::str::from_utf8(&plain).map_err(|_| CryptoError::Open)?;
        Ok(SecretString::from(text))
    }

    /// The secret [`MasterKeys::seal_bound`] sealed for `tenant` and `place`.
    pub fn open_bound(
        &self,
        tenant: Uuid,
        place: &[u8],
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let dek = self.unwrap_dek(tenant, sealed)?;
        Self::open_with(&dek, place, &sealed.nonce, &sealed.ciphertext)
    }

    /// The same secret with its data key sealed under the current master
    /// key (the secret's own ciphertext is unchanged).
    pub fn rewrap(&self, tenant: Uuid, sealed: &Sealed) -> Result<Sealed, CryptoError> {
        let master = self.by_id(&sealed.master_key_id)?;
        let dek = Self::open_with(
            &master.key,
            &dek_aad(&sealed.master_key_id, tenant),
            &sealed.dek_nonce,
            &sealed.wrapped_dek,
        )?;
        let (wrapped_dek, dek_nonce) = self.wrap_dek(tenant, &dek)?;
        Ok(Sealed {
            wrapped_dek,
            dek_nonce,
            master_key_id: self.current.id.clone(),
            ..sealed.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

    fn keys(id: &str, key: &str, previous: Option<&str>) -> MasterKeys {
        MasterKeys::new(
            id,
            &SecretString::from(key),
            previous.map(SecretString::from).as_ref(),
        )
        .unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_in_its_place() {
        let m = keys("k1", K1, None);
        let (t, other) = (Uuid::new_v4(), Uuid::new_v4());
        let secret = SecretString::from("sk-live-0123456789");
        let sealed = m.seal(t, "openai", &secret).unwrap();
        assert_eq!(sealed.master_key_id, "k1");
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert!(!sealed.ciphertext.windows(10).any(|w| w == b"0123456789"));
        assert_eq!(
            m.open(t, "openai", &sealed).unwrap().expose_secret(),
            "sk-live-0123456789"
        );
        assert_eq!(
            m.open(other, "openai", &sealed).unwrap_err(),
            CryptoError::Open
        );
        assert_eq!(m.open(t, "gemini", &sealed).unwrap_err(), CryptoError::Open);
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert_eq!(
            m.open(t, "openai", &altered).unwrap_err(),
            CryptoError::Open
        );
        // Every secret has a data key and nonces of its own.
        let again = m.seal(t, "openai", &secret).unwrap();
        assert_ne!(again.ciphertext, sealed.ciphertext);
        assert_ne!(again.wrapped_dek, sealed.wrapped_dek);
    }

    #[test]
    fn rotation_keeps_old_secrets_readable_and_rewraps_them() {
        let t = Uuid::new_v4();
        let old = keys("k1", K1, None);
        let sealed = old
            .seal(t, "gemini", &SecretString::from("AIza-secret"))
            .unwrap();

        let rotated = keys("k2", K2, Some(&format!("k1:{K1}")));
        assert_eq!(rotated.current_id(), "k2");
        assert_eq!(
            rotated.open(t, "gemini", &sealed).unwrap().expose_secret(),
            "AIza-secret"
        );
        let moved = rotated.rewrap(t, &sealed).unwrap();
        assert_eq!(moved.master_key_id, "k2");
        assert_eq!(moved.ciphertext, sealed.ciphertext);
        let only_new = keys("k2", K2, None);
        assert_eq!(
            only_new.open(t, "gemini", &moved).unwrap().expose_secret(),
            "AIza-secret"
        );
        assert_eq!(
            only_new.open(t, "gemini", &sealed).unwrap_err(),
            CryptoError::UnknownMasterKey("k1".into())
        );
        // A wrapped key relabelled with another id does not open.
        let relabelled = Sealed {
            master_key_id: "k2".into(),
            ..sealed
        };
        assert_eq!(
            only_new.open(t, "gemini", &relabelled).unwrap_err(),
            CryptoError::Open
        );
    }

    #[test]
    fn bad_master_keys_are_refused_without_showing_them() {
        for (id, key) in [
            ("k1", "c2hvcnQ="),
            ("k1", "not base64 at all!"),
            ("", K1),
            ("a,b", K1),
        ] {
            let err = MasterKeys::new(id, &SecretString::from(key), None).unwrap_err();
            assert!(matches!(err, CryptoError::BadMasterKey(_)), "{err:?}");
            assert!(!err.to_string().contains(key), "{err}");
        }
        let err = MasterKeys::new("k2", &SecretString::from(K2), Some(&SecretString::from(K1)))
            .unwrap_err();
        assert!(!err.to_string().contains(K1), "{err}");
        let debug = format!("{:?}", keys("k2", K2, Some(&format!("k1:{K1}"))));
        assert!(
            debug.contains("k1") && !debug.contains(K1) && !debug.contains(K2),
            "{debug}"
        );
    }
}
