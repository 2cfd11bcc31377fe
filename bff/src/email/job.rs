//! `email.send`: the worker delivers one e-mail of the outbox.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{deliver, MailSettings, Mailer};
use crate::job::{Handler, Job, JobArgs, JobError};
use crate::vars::ConfigError;

/// The payload `email_queue` writes with the e-mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSendArgs {
    pub email_id: Uuid,
}

impl JobArgs for EmailSendArgs {
    const KIND: &'static str = "email.send";
}

/// Delivers one e-mail ([`deliver`]: idempotent, records the outcome on
/// the e-mail). Connection failures, timeouts and 4xx replies are retried;
/// a 5xx rejection or unusable stored data is dead at once; after the
/// last retryable failure the e-mail is marked failed with its job.
pub struct EmailSend {
    pub mailer: Mailer,
}

impl EmailSend {
    /// None without an SMTP server: this worker sends no e-mail.
    pub fn from_settings(mail: Option<&MailSettings>) -> Result<Option<Self>, ConfigError> {
        mail.map(|m| {
            Ok(EmailSend {
                mailer: Mailer::new(m)?,
            })
        })
        .transpose()
    }
}

impl Handler for EmailSend {
    type Args = EmailSendArgs;

    async fn run(&self, job: &Job, args: EmailSendArgs) -> Result<(), JobError> {
        let email_id = args.email_id;
        // bizos_emails_total: sent, or failed once given up on.
        match deliver(job.pool(), &self.mailer, job.tenant_id, email_id).await {
            Ok(()) => {
                crate::metrics::email_sent(true);
                Ok(())
            }
            Err(e) if e.retryable() => {
                if job.attempt >= job.max_attempts {
                    crate::metrics::email_sent(false);
                    sqlx::query("select email_mark_dead($1, $2)")
                        .bind(job.tenant_id)
                        .bind(email_id)
                        .execute(job.pool())
                        .await?;
                }
                Err(JobError::Retryable(e.to_string()))
            }
            Err(e) => {
                crate::metrics::email_sent(false);
                Err(JobError::Permanent(e.to_string()))
            }
        }
    }
}
