//! Signed webhooks (B2B-8): the settings ([`config`]), the signing secrets,
//! the SSRF guard and the worker's delivery (`webhook.deliver`).
//!
//! The database writes the outbox (sql/api/webhooks.sql: triggers on
//! leads, tickets, invoices and payments, in the transaction of the change)
//! and decides what is due; this module only signs and moves bytes:
//!
//! - **Secrets** ([`secrets`]): `whsec_<base64 of 32 random bytes>`, made
//!   by the BFF when an endpoint is registered or its secret rotated, shown
//!   once, and stored envelope-encrypted exactly as the tenants' LLM keys
//!   ([`crate::llm::crypto`]: AES-256-GCM under a data key of its own, the
//!   data key under the master key `BIZOS_WEBHOOKS_MASTER_KEY`, bound to
//!   tenant, endpoint and secret id). A hash would not do: the worker must
//!   sign with the secret.
//! - **Signing** ([`signing`]): Standard Webhooks: `webhook-id`
//!   (`msg_<event id>`, the same for every retry and replay: receivers
//!   deduplicate with it), `webhook-timestamp` (Unix seconds) and
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//!   keyed with the secret's bytes, one `v1,` signature per secret that
//!   signs now (two during a rotation's overlap), space-separated.
//! - **SSRF guard** ([`ssrf`]): only http(s) URLs whose addresses are
//!   public, checked when an endpoint is registered or changed and again at
//!   every delivery, where the connection goes only to the addresses that
//!   passed the check (the resolver hands reqwest nothing else, so a name
//!   that resolves differently the second time cannot slip through).
//!   `BIZOS_WEBHOOKS_ALLOW_LOOPBACK=1` (development and tests only) lets
//!   127.0.0.0/8 and ::1 through; nothing else private ever is.
//! - **Delivery** ([`deliver`]): a job claims a batch of due deliveries of
//!   its tenant, sends them concurrently and records the outcomes in one
//!   call, until nothing is due. Ordering per endpoint is not promised.

mod config;
pub mod deliver;
pub mod secrets;
pub mod signing;
pub mod ssrf;

use std::sync::Arc;

use crate::llm::crypto::MasterKeys;
use crate::vars::ConfigError;

pub use config::{RetrySchedule, WebhookArgs, WebhookSettings};
pub use deliver::WebhookDeliver;

/// What the BFF's webhook routes need: the master keys that seal new
/// secrets (None: registration answers 503) and the SSRF guard's setting.
#[derive(Clone)]
pub struct Webhooks {
    pub master: Option<Arc<MasterKeys>>,
    pub allow_loopback: bool,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("master", &self.master.as_ref().map(|m| m.current_id()))
            .field("allow_loopback", &self.allow_loopback)
            .finish()
    }
}

impl Webhooks {
    pub fn new(settings: &WebhookSettings) -> Result<Self, ConfigError> {
        Ok(Webhooks {
            master: settings.master_keys()?.map(Arc::new),
            allow_loopback: settings.allow_loopback,
        })
    }
}
