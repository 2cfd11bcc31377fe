//! The SMTP settings of the process that sends e-mail (`bizos worker`),
//! from the environment. Per-tenant SMTP servers come later (OPS-17); a
//! tenant's sender is already its own (`tenant_mail_settings`).

use std::time::Duration;

use clap::Args;
use lettre::message::Mailbox;
use secrecy::SecretString;

use crate::vars::{positive_seconds, secret, text, var, ConfigError};

/// The variables of e-mail delivery. Each is also a flag.
#[derive(Args, Debug, Clone)]
pub struct MailArgs {
    /// The SMTP server, in lettre's URL form: `smtp://host:25` (plain: only
    /// for a relay on loopback), `smtp://host:587?tls=required` (STARTTLS),
    /// `smtps://host:465` (implicit TLS); `user:password@` may be in it.
    /// Unset: e-mails stay queued.
    #[arg(long, env = "BIZOS_SMTP_URL", hide_env_values = true, value_parser = var(secret))]
    pub smtp_url: Option<SecretString>,
    /// SMTP user name (instead of the URL's).
    #[arg(long, env = "BIZOS_SMTP_USERNAME", value_parser = var(text))]
    pub smtp_username: Option<String>,
    /// SMTP password (instead of the URL's).
    #[arg(long, env = "BIZOS_SMTP_PASSWORD", hide_env_values = true, value_parser = var(secret))]
    pub smtp_password: Option<SecretString>,
    /// Seconds each SMTP command may take (connect, TLS, each reply).
    #[arg(long, env = "BIZOS_SMTP_TIMEOUT_SECS", default_value = "30", value_parser = var(positive_seconds))]
    pub smtp_timeout_secs: Duration,
    /// The sender of tenants without their own (tenant_mail_settings):
    /// `noreply@example.com` or `Name <noreply@example.com>`; its display
    /// name is replaced by the tenant's name.
    #[arg(long, env = "BIZOS_MAIL_FROM", value_parser = var(mailbox))]
    pub mail_from: Option<Mailbox>,
}

/// What a [`super::Mailer`] is built from.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub smtp_url: SecretString,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub timeout: Duration,
    pub from: Mailbox,
}

impl MailArgs {
    /// The settings, or None when no SMTP server is configured.
    pub fn settings(self) -> Result<Option<MailSettings>, ConfigError> {
        let Some(smtp_url) = self.smtp_url else {
            return Ok(None);
        };
        let from = self.mail_from.ok_or(ConfigError::Missing {
            var: "BIZOS_MAIL_FROM",
            why: "BIZOS_SMTP_URL needs the default sender",
        })?;
        if self.smtp_password.is_some() && self.smtp_username.is_none() {
            return Err(ConfigError::Missing {
                var: "BIZOS_SMTP_USERNAME",
                why: "BIZOS_SMTP_PASSWORD is set",
            });
        }
        Ok(Some(MailSettings {
            smtp_url,
            username: self.smtp_username,
            password: self.smtp_password,
            timeout: self.smtp_timeout_secs,
            from,
        }))
    }
}

fn mailbox(v: &str) -> Result<Mailbox, String> {
    v.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("{v:?} is not an e-mail address: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Command, FromArgMatches};

    fn parse(args: &[&str]) -> Result<Option<MailSettings>, String> {
        let cmd = MailArgs::augment_args(Command::new("worker")).mut_args(|a| a.env(None));
        let matches = cmd
            .try_get_matches_from(std::iter::once("worker").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        MailArgs::from_arg_matches(&matches)
            .map_err(|e| e.to_string())?
            .settings()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn no_smtp_url_no_mail() {
        assert!(parse(&[]).unwrap().is_none());
    }

    #[test]
    fn the_default_sender_is_required_and_checked() {
        let err = parse(&["--smtp-url", "smtp://127.0.0.1:25"]).unwrap_err();
        assert!(err.contains("BIZOS_MAIL_FROM is required"), "{err}");
        let err =
            parse(&["--smtp-url", "smtp://127.0.0.1:25", "--mail-from", "nobody"]).unwrap_err();
        assert!(err.contains("BIZOS_MAIL_FROM is invalid"), "{err}");
        let ok = parse(&[
            "--smtp-url",
            "smtps://smtp.example.com",
            "--mail-from",
            "Bizos <noreply@example.com>",
            "--smtp-timeout-secs",
            "7",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(ok.from.email.to_string(), "noreply@example.com");
        assert_eq!(ok.timeout, Duration::from_secs(7));
    }

    #[test]
    fn a_password_needs_a_user_name() {
        let err = parse(&[
            "--smtp-url",
            "smtp://127.0.0.1:25",
            "--mail-from",
            "a@example.com",
            "--smtp-password",
            "secret",
        ])
        .unwrap_err();
        assert!(err.contains("BIZOS_SMTP_USERNAME is required"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[tokio::test]
    async fn a_bad_smtp_url_is_refused_naming_the_variable() {
        let settings = MailSettings {
            smtp_url: "http://smtp.example.com".into(),
            username: None,
            password: None,
            timeout: Duration::from_secs(5),
            from: "a@example.com".parse().unwrap(),
        };
        let err = super::super::Mailer::new(&settings)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("BIZOS_SMTP_URL is invalid"), "{err}");
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://u:p@smtp.example.com:587?tls=required",
            "smtps://smtp.example.com",
        ] {
            let settings = MailSettings {
                smtp_url: url.into(),
                ..settings.clone()
            };
            super::super::Mailer::new(&settings).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }
}
