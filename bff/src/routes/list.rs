//! Keyset-paginated lists: newest first by `(created_at, <id>)`, at most
//! `limit` rows (1–200, default 50), and an opaque `next_cursor` to pass as
//! `after` for the next page. Filters are typed query parameters bound as
//! values; column names come from code only. Row-level security decides
//! which rows exist at all. Every list names the caller's tenant as a
//! parameter as well: on Citus that routes the query to the one worker
//! holding the tenant (a filter through `bizos.tenant_id()` alone sends it
//! to every shard, and a view's rows then come back without column names).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, Result};

const MAX_LIMIT: i64 = 200;
const DEFAULT_LIMIT: i64 = 50;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Rows per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
}

/// One page of rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}.{}", at.timestamp_micros(), id.simple())
}

fn decode_cursor(raw: &str) -> Result<(DateTime<Utc>, Uuid)> {
    let bad = || ApiError::BadRequest {
        message: "is not a cursor this API gave out".into(),
        field: Some("after".into()),
    };
    let (micros, id) = raw.split_once('.').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((at, id))
}

/// A list query under construction over `relation` (a table or view whose
/// key column is `id_col` and which has `tenant_id` and `created_at`), in
/// the caller's `tenant`.
pub struct List<'a> {
    qb: QueryBuilder<'a, Postgres>,
    relation: &'static str,
    id_col: &'static str,
}

impl<'a> List<'a> {
    pub fn new(relation: &'static str, id_col: &'static str, tenant: Uuid) -> Self {
        // The page's rows are chosen by their keys in a sub-select, and only
        // they are turned into JSON: when the caller's rows come from a
        // bitmap of the rows they may see (the customers policy, crm.sql),
        // PostgreSQL would otherwise build the JSON of every one of them
        // before it sorts (2,000 for a salesperson's page of 50).
        let mut qb = QueryBuilder::new("select to_jsonb(x) as row, x.created_at, x.");
        qb.push(id_col)
            .push(" as id from (select * from ")
            .push(relation)
            .push(" x where x.tenant_id = ")
            .push_bind(tenant);
        List {
            qb,
            relation,
            id_col,
        }
    }

    /// `and x.<col> <op> <value>` when a value is given.
    pub fn filter<T>(&mut self, col: &'static str, op: &'static str, value: Option<T>) -> &mut Self
    where
        T: 'a + sqlx::Encode<'a, Postgres> + sqlx::Type<Postgres> + Send,
    {
        if let Some(v) = value {
            self.qb
                .push(" and x.")
                .push(col)
                .push(" ")
                .push(op)
                .push(" ")
                .push_bind(v);
        }
        self
    }

    /// A case-insensitive substring match on any of `cols`.
    pub fn search(&mut self, cols: &[&'static str], q: Option<String>) -> &mut Self {
        if let Some(q) = q.filter(|q| !q.trim().is_empty()) {
            let pattern = format!(
                "%{}%",
                q.trim()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            self.qb.push(" and (false");
            for c in cols {
                self.qb
                    .push(" or x.")
                    .push(*c)
                    .push(" ilike ")
                    .push_bind(pattern.clone());
            }
            self.qb.push(")");
        }
        self
    }

    pub async fn fetch(mut self, conn: &mut PgConnection, page: Page) -> Result<Paged> {
        let limit = page.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest {
                message: format!("must be between 1 and {MAX_LIMIT}"),
                field: Some("limit".into()),
            });
        }
        if let Some(after) = page.after.as_deref() {
            let (at, id) = decode_cursor(after)?;
            self.qb
                .push(" and (x.created_at, x.")
                .push(self.id_col)
                .push(") < (")
                .push_bind(at)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        self.qb
            .push(" order by x.created_at desc, x.")
            .push(self.id_col)
            .push(" desc limit ")
            .push_bind(limit + 1)
            .push(") x order by x.created_at desc, x.")
            .push(self.id_col)
            .push(" desc");
        // Not a prepared statement of the connection: the row policies plan
        // for the caller (the customers policy's estimates are the caller's
        // scope, crm.sql), and a generic plan cached on a pooled connection
        // would serve the next caller with the last one's plan (a walk of
        // the whole tenant for a salesperson, a sort of it for an admin).
        let query = self.qb.build_query_as().persistent(false);
        let mut rows: Vec<(Value, DateTime<Utc>, Uuid)> =
            crate::telemetry::db_call(self.relation, query.fetch_all(conn)).await?;
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|(_, at, id)| encode_cursor(*at, *id))
        } else {
            None
        };
        Ok(Paged {
            items: rows.into_iter().map(|(row, _, _)| row).collect(),
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor(at, id)).unwrap(), (at, id));
        for junk in ["", "abc", "1.2", "x.0000", "99999999999999999999.abc"] {
            assert!(decode_cursor(junk).is_err(), "{junk}");
        }
    }
}
