//! Creating a tenant and its first user (`bizos tenant create`), as the
//! database owner: both rows in one transaction, so a refusal leaves
//! nothing behind. The table constraints and triggers judge the input
//! (slug, name, time zone, locale, e-mail); their refusals are reported with the
//! flag they concern.

use serde::Serialize;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::error::ApiError;

/// The app role of a tenant's first user.
pub const FIRST_USER_ROLE: &str = "super_admin";

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
    /// The tenant's IANA time zone; the column's default when `None`.
    pub time_zone: Option<String>,
    /// The language of its generated texts (`tenants.locale`); the
    /// column's default when `None`.
    pub locale: Option<String>,
    pub admin_email: String,
    pub admin_name: String,
    /// The first user's id (an OIDC provider's `sub`); a new one when `None`.
    pub admin_user_id: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CreatedTenant {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The database refused a value: `flag` is the command-line flag that
    /// gave it.
    #[error("{flag} {value:?}: {message} (see bizos tenant create --help)")]
    Refused {
        flag: &'static str,
        value: String,
        message: String,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Creates the tenant and its first user (a `super_admin` profile).
pub async fn create(database_url: &str, new: &NewTenant) -> Result<CreatedTenant, TenantError> {
    let mut conn = PgConnection::connect(database_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect with BIZOS_DATABASE_URL: {e}"))?;
    let mut tx = conn.begin().await.map_err(|e| new.refused(e))?;
    let created = create_in(&mut tx, new).await?;
    tx.commit().await.map_err(|e| new.refused(e))?;
    Ok(created)
}

/// [`create`] in a transaction of the caller's (the placed creation of
/// [`crate::placement::lifecycle`] adds the tenant's placement to it).
pub async fn create_in(
    tx: &mut PgConnection,
    new: &NewTenant,
) -> Result<CreatedTenant, TenantError> {
    let tenant_id: Uuid = sqlx::query_scalar("select tenant_create($1, $2, $3, $4)")
        .bind(&new.slug)
        .bind(&new.name)
        .bind(&new.time_zone)
        .bind(&new.locale)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| new.refused(e))?;
    let user_id: Uuid = sqlx::query_scalar(
        "insert into profiles (tenant_id, user_id, email, full_name, app_role)
         values ($1, coalesce($2, gen_random_uuid()), $3, $4, $5)
         returning user_id",
    )
    .bind(tenant_id)
    .bind(new.admin_user_id)
    .bind(&new.admin_email)
    .bind(&new.admin_name)
    .bind(FIRST_USER_ROLE)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| new.refused(e))?;
    Ok(CreatedTenant { tenant_id, user_id })
}

impl NewTenant {
    /// The flag of `bizos tenant create` that gave a column's value, and
    /// the value.
    fn flag_of(&self, field: &str) -> Option<(&'static str, String)> {
        Some(match field {
            "slug" => ("--slug", self.slug.clone()),
            "name" => ("--name", self.name.clone()),
            "time_zone" => ("--time-zone", self.time_zone.clone().unwrap_or_default()),
            "locale" => ("--locale", self.locale.clone().unwrap_or_default()),
            "email" => ("--admin-email", self.admin_email.clone()),
            "full_name" => ("--admin-name", self.admin_name.clone()),
            "user_id" => (
                "--admin-user-id",
                self.admin_user_id
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
            ),
            _ => return None,
        })
    }

    /// A database refusal of a field reported by its flag; any other error
    /// as it is.
    pub(crate) fn refused(&self, err: sqlx::Error) -> TenantError {
        if !matches!(err, sqlx::Error::Database(_)) {
            return TenantError::Other(err.into());
        }
        let text = err.to_string();
        let api = ApiError::from(err);
        match api.field().and_then(|f| self.flag_of(f)) {
            Some((flag, value)) => TenantError::Refused {
                flag,
                value,
                message: api.to_string(),
            },
            None => TenantError::Other(anyhow::anyhow!(text)),
        }
    }
}
