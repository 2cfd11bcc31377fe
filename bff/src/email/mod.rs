//! E-mail delivery: the worker's half of the outbox (migration V23,
//! `sql/api/email.sql`).
//!
//! `email_enqueue` renders an e-mail and stores it with its `email.send`
//! job in the caller's transaction; [`deliver`] sends the stored row over
//! SMTP with [`Mailer`] and records the outcome. It is idempotent: the row
//! is locked for the delivery and an e-mail already sent is never sent
//! again; the Message-ID derives from the e-mail's id, so a resend after a
//! crash between the server's acceptance and the commit carries the same
//! one and receivers can drop the duplicate.

mod config;
pub mod job;

pub use config::{MailArgs, MailSettings};

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use uuid::Uuid;

use crate::vars::ConfigError;

/// An SMTP client (a pool of connections) and the default sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    default_from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("default_from", &self.default_from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `settings.smtp_url` (lettre's URL form: `smtp://host:port`
    /// plain, `smtp://…?tls=required` STARTTLS, `smtps://…` implicit TLS;
    /// credentials in the URL or in `settings.username`/`password`).
    pub fn new(settings: &MailSettings) -> Result<Mailer, ConfigError> {
        let invalid =
            |why: String| ConfigError::Invalid(format!("BIZOS_SMTP_URL is invalid: {why}"));
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.expose_secret())
                .map_err(|e| invalid(e.to_string()))?
                .timeout(Some(settings.timeout));
        if let Some(user) = &settings.username {
            let password = settings
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Mailer {
            transport: builder.build(),
            default_from: settings.from.clone(),
        })
    }

    /// The sender of e-mails whose tenant has none of its own.
    pub fn default_from(&self) -> &Mailbox {
        &self.default_from
    }
}

/// Why a delivery failed, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The e-mail does not exist (its tenant was deleted, or a bad payload).
    #[error("no e-mail {email_id} of tenant {tenant_id}")]
    NotFound { tenant_id: Uuid, email_id: Uuid },
    /// The stored row cannot become a message (an address lettre refuses).
    #[error("the stored e-mail cannot be sent: {0}")]
    Invalid(String),
    /// The SMTP exchange failed: the server refused (4xx, 5xx), could not be
    /// reached, timed out, or TLS failed.
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// Reading or recording the e-mail failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl DeliveryError {
    /// Whether a later attempt may succeed: connection failures, timeouts,
    /// TLS failures, transient (4xx) replies and database errors; not a
    /// permanent (5xx) rejection, a missing e-mail or stored data no message
    /// can be built from.
    pub fn retryable(&self) -> bool {
        match self {
            DeliveryError::NotFound { .. } | DeliveryError::Invalid(_) => false,
            DeliveryError::Smtp(e) => !e.is_permanent(),
            DeliveryError::Database(_) => true,
        }
    }
}

/// The row `email_for_delivery` returns.
#[derive(Debug, sqlx::FromRow)]
struct Stored {
    from_address: Option<String>,
    from_name: String,
    reply_to: Option<String>,
    to_addresses: Vec<String>,
    cc_addresses: Vec<String>,
    subject: String,
    text_body: String,
    html_body: String,
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Sends e-mail `email_id` of `tenant_id` and records it as sent, unless it
/// was sent already. `pool` is the worker's login (bizos_worker). On a
/// failure the attempt and its error are recorded (a permanent one marks
/// the e-mail failed) and nothing is marked sent.
#[tracing::instrument(skip(pool, mailer), fields(%tenant_id, %email_id))]
pub async fn deliver(
    pool: &PgPool,
    mailer: &Mailer,
    tenant_id: Uuid,
    email_id: Uuid,
) -> Result<(), DeliveryError> {
    let mut tx = pool.begin().await?;
    // Locked until this transaction ends: a concurrent delivery of the same
    // e-mail waits here, then finds it sent.
    let stored: Stored = match sqlx::query_as("select * from email_for_delivery($1, $2)")
        .bind(tenant_id)
        .bind(email_id)
        .fetch_one(&mut *tx)
        .await
    {
        Ok(row) => row,
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("P0002") => {
            return Err(DeliveryError::NotFound {
                tenant_id,
                email_id,
            });
        }
        Err(e) => return Err(e.into()),
    };
    if stored.sent_at.is_some() {
        tracing::info!("already sent");
        tx.commit().await?;
        return Ok(());
    }
    let outcome = match build(&stored, mailer.default_from(), email_id) {
        Ok((message, message_id)) => mailer
            .transport
            .send(message)
            .await
            .map(|_| message_id)
            .map_err(DeliveryError::from),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(message_id) => {
            sqlx::query("select email_mark_sent($1, $2, $3)")
                .bind(tenant_id)
                .bind(email_id)
                .bind(&message_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(%message_id, "sent");
            Ok(())
        }
        Err(err) => {
            tx.rollback().await?;
            tracing::warn!(error = %err, retryable = err.retryable(), "not sent");
            sqlx::query("select email_mark_failed($1, $2, $3, $4)")
                .bind(tenant_id)
                .bind(email_id)
                .bind(err.to_string())
                .bind(!err.retryable())
                .execute(pool)
                .await?;
            Err(err)
        }
    }
}

/// The message of a stored e-mail (multipart/alternative: plain text, then
/// HTML) and its Message-ID, `<email_id@sender's domain>`.
fn build(
    stored: &Stored,
    default_from: &Mailbox,
    email_id: Uuid,
) -> Result<(Message, String), DeliveryError> {
    let address = |field: &str, value: &str| {
        value
            .parse::<Address>()
            .map_err(|e| DeliveryError::Invalid(format!("{field} {value:?}: {e}")))
    };
    let from_address = match &stored.from_address {
        Some(a) => address("from_address", a)?,
        None => default_from.email.clone(),
    };
    let message_id = format!("<{}@{}>", email_id.simple(), from_address.domain());
    let mut builder = Message::builder()
        .message_id(Some(message_id.clone()))
        .from(Mailbox::new(Some(stored.from_name.clone()), from_address))
        .subject(stored.subject.clone());
    if let Some(reply_to) = &stored.reply_to {
        builder = builder.reply_to(Mailbox::new(None, address("reply_to", reply_to)?));
    }
    for (i, to) in stored.to_addresses.iter().enumerate() {
        builder = builder.to(Mailbox::new(None, address(&format!("to[{i}]"), to)?));
    }
    for (i, cc) in stored.cc_addresses.iter().enumerate() {
        builder = builder.cc(Mailbox::new(None, address(&format!("cc[{i}]"), cc)?));
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(
            stored.text_body.clone(),
            stored.html_body.clone(),
        ))
        .map_err(|e| DeliveryError::Invalid(e.to_string()))?;
    Ok((message, message_id))
}
