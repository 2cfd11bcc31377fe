//! The operator's credential and what the operator HTTP API acts with
//! (its routes: [`crate::routes::operator`]). The credential is its own:
//! `Authorization: Bearer <BIZOS_OPERATOR_TOKEN>`, compared by SHA-256
//! digest; a tenant's token or API key is never accepted. It acts as the
//! control database's owner (BIZOS_OPERATOR_DATABASE_URL) with the secrets
//! of BIZOS_OPERATOR_SECRETS_FILE (the owners' URLs of the clusters, and
//! `<NAME>_ADMIN` superusers' for isolated databases).

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::lifecycle::{LifecycleError, Operator};
use crate::error::ApiError;
use crate::tenants::TenantError;

/// BIZOS_OPERATOR_TOKEN: at least 32 bytes.
pub fn token(v: &str) -> std::result::Result<SecretString, String> {
    if v.len() < 32 {
        return Err("must be at least 32 bytes".into());
    }
    Ok(SecretString::from(v))
}

/// The operator API of a server: the token's digest and the operator.
pub struct OperatorApi {
    digest: [u8; 32],
    pub operator: Operator,
}

impl OperatorApi {
    pub fn new(token: &SecretString, operator: Operator) -> OperatorApi {
        OperatorApi {
            digest: Sha256::digest(token.expose_secret().as_bytes()).into(),
            operator,
        }
    }

    /// Whether `presented` is the operator's token. Digests of equal
    /// length compared whole: the time taken tells nothing of the token.
    pub fn accepts(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            // The lifecycle names a field by its CLI flag (url-secret);
            // the API by its JSON key (url_secret).
            LifecycleError::Invalid { field, message } => {
                ApiError::invalid(field.replace('-', "_"), message)
            }
            LifecycleError::NotFound(m) => ApiError::NotFound(m),
            LifecycleError::Tenant(TenantError::Refused { flag, message, .. }) => {
                ApiError::invalid(flag.trim_start_matches("--").replace('-', "_"), message)
            }
            LifecycleError::Tenant(TenantError::Other(e)) | LifecycleError::Other(e) => {
                ApiError::Internal(e)
            }
        }
    }
}
