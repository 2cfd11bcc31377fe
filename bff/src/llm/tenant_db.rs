//! Where a tenant's LLM ledger, limits, cache and keys are: its
//! placement's database (and schema).

use std::sync::Arc;

use sqlx::{PgPool, Postgres, Transaction};

/// The database (and, in the schema tier, the schema) a tenant's ledger,
/// limits, cache, keys and AI settings are in: its placement's, as the
/// process's own login.
#[derive(Debug, Clone)]
pub struct TenantDb {
    /// `control`, `<cluster>/<database>` or `<cluster>/<database>/<schema>`:
    /// what the gateway's caches are kept apart by.
    pub name: Arc<str>,
    pub pool: PgPool,
    /// Set as the search path of each transaction, when the pool's
    /// connections do not have it already (the BFF's placement pools are
    /// per database; the worker's per schema).
    pub schema: Option<String>,
}

impl TenantDb {
    /// A transaction as the pool's login, in the schema when there is one.
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if let Some(s) = &self.schema {
            // The name was checked by the catalogue's constraint.
            sqlx::query(&format!(
                "set local search_path to {s}, {}",
                bizos_sql::EXTENSIONS_SCHEMA
            ))
            .execute(&mut *tx)
            .await?;
        }
        Ok(tx)
    }
}
