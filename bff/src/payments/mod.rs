//! Payments of the operator's invoices to tenants (docs/payments.md):
//! provider webhooks (Stripe, Midtrans) verified here and handed to the
//! database as one normalised event ([`events`]), manual transfer proofs,
//! and the dunning job ([`dunning`]). What a payment does (the invoice
//! paid, the subscription active and unlocked, reminders, the soft lock)
//! is decided in sql/api/payments.sql.

pub mod dunning;
pub mod events;
pub mod lock;
pub mod signature;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::vars::{positive, secret, var, ConfigError};

/// The variables of the provider webhooks (`bizos serve`).
#[derive(Args, Debug, Clone)]
pub struct PaymentArgs {
    /// Stripe webhook endpoint secrets (`whsec_…`), comma-separated: while
    /// a secret is rolled both the old and the new one are listed, and a
    /// delivery signed with either is accepted. Unset: /api/payments/stripe
    /// refuses every delivery (401, stored).
    #[arg(long, env = "BIZOS_STRIPE_WEBHOOK_SECRETS", hide_env_values = true, value_parser = var(secret))]
    pub stripe_webhook_secrets: Option<SecretString>,
    /// Seconds a Stripe-Signature timestamp may lie from now (either way).
    #[arg(long, env = "BIZOS_STRIPE_WEBHOOK_TOLERANCE_SECS", default_value = "300", value_parser = var(positive::<u32>))]
    pub stripe_webhook_tolerance_secs: u32,
    /// Midtrans server keys, comma-separated (several while a key is
    /// replaced). Unset: /api/payments/midtrans refuses every notification
    /// (401, stored).
    #[arg(long, env = "BIZOS_MIDTRANS_SERVER_KEYS", hide_env_values = true, value_parser = var(secret))]
    pub midtrans_server_keys: Option<SecretString>,
}

/// What the webhook routes verify with.
#[derive(Clone, Default)]
pub struct PaymentSettings {
    pub stripe_secrets: Vec<String>,
    pub stripe_tolerance_secs: i64,
    pub midtrans_server_keys: Vec<String>,
}

impl std::fmt::Debug for PaymentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSettings")
            .field("stripe_secrets", &self.stripe_secrets.len())
            .field("stripe_tolerance_secs", &self.stripe_tolerance_secs)
            .field("midtrans_server_keys", &self.midtrans_server_keys.len())
            .finish()
    }
}

fn list(v: &Option<SecretString>) -> Vec<String> {
    v.as_ref()
        .map(|s| {
            s.expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl PaymentArgs {
    pub fn settings(self) -> Result<PaymentSettings, ConfigError> {
        let stripe_secrets = list(&self.stripe_webhook_secrets);
        if stripe_secrets.iter().any(|s| s.len() < 16) {
            return Err(ConfigError::Invalid(
                "BIZOS_STRIPE_WEBHOOK_SECRETS is invalid: every secret must be at least 16 characters".into(),
            ));
        }
        let midtrans_server_keys = list(&self.midtrans_server_keys);
        if midtrans_server_keys.iter().any(|s| s.len() < 16) {
            return Err(ConfigError::Invalid(
                "BIZOS_MIDTRANS_SERVER_KEYS is invalid: every key must be at least 16 characters"
                    .into(),
            ));
        }
        Ok(PaymentSettings {
            stripe_secrets,
            stripe_tolerance_secs: i64::from(self.stripe_webhook_tolerance_secs),
            midtrans_server_keys,
        })
    }
}
