//! `bizos llm keys rewrap`: after a rotation of the master key, moves every
//! stored tenant key to the current master key, so the previous one can be
//! retired from `BIZOS_LLM_MASTER_KEYS_PREVIOUS`.
//!
//! Only the data key of each secret is sealed again
//! ([`MasterKeys::rewrap`]); the secret's own ciphertext is unchanged and
//! never decrypted. Each key is updated on its own, and only if it still is
//! what was read (a key revoked or re-sealed meanwhile is left alone), so a
//! rewrap may run beside serving BFFs, which open either master key. Keys
//! that no configured master key opens are reported and kept; the run then
//! fails. Running it again changes nothing.

use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::crypto::{MasterKeys, Sealed};

/// What one run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// One line per key: tenant, key, from and to master key id, or error.
    pub lines: Vec<Value>,
    pub rewrapped: usize,
    pub failed: usize,
}

#[derive(sqlx::FromRow)]
struct Row {
    tenant_id: Uuid,
    key_id: Uuid,
    #[sqlx(flatten)]
    sealed: Sealed,
}

/// Re-seals the data key of every key of `tenant` (or of every tenant) not
/// under the current master key.
pub async fn rewrap(
    conn: &mut PgConnection,
    keys: &MasterKeys,
    tenant: Option<Uuid>,
) -> sqlx::Result<Report> {
    let rows: Vec<Row> = sqlx::query_as(
        "select tenant_id, key_id, ciphertext, nonce, wrapped_dek, dek_nonce, master_key_id
           from llm_tenant_keys
          where master_key_id <> $1 and ($2::uuid is null or tenant_id = $2)
          order by tenant_id, key_id",
    )
    .bind(keys.current_id())
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await?;
    let mut report = Report::default();
    for Row {
        tenant_id,
        key_id,
        sealed,
    } in rows
    {
        let moved = match keys.rewrap(tenant_id, &sealed) {
            Ok(moved) => moved,
            Err(e) => {
                report.failed += 1;
                report.lines.push(json!({
                    "tenant_id": tenant_id, "key_id": key_id,
                    "from": sealed.master_key_id, "error": e.to_string(),
                }));
                continue;
            }
        };
        let updated = sqlx::query(
            "update llm_tenant_keys
                set wrapped_dek = $3, dek_nonce = $4, master_key_id = $5
              where tenant_id = $1 and key_id = $2
                and master_key_id = $6 and wrapped_dek = $7 and dek_nonce = $8",
        )
        .bind(tenant_id)
        .bind(key_id)
        .bind(&moved.wrapped_dek)
        .bind(&moved.dek_nonce)
        .bind(&moved.master_key_id)
        .bind(&sealed.master_key_id)
        .bind(&sealed.wrapped_dek)
        .bind(&sealed.dek_nonce)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if updated == 1 {
            report.rewrapped += 1;
            report.lines.push(json!({
                "tenant_id": tenant_id, "key_id": key_id,
                "from": sealed.master_key_id, "to": moved.master_key_id,
            }));
        }
    }
    Ok(report)
}
