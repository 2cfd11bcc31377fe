//! `bizos llm …`: the operator's side of the gateway, on the owner's
//! connection (`BIZOS_DATABASE_URL`): usage of every tenant, limits, tenant
//! keys (metadata only; `keys rewrap` after a master key rotation), routes
//! and providers. Output: one JSON object a
//! line.

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use sqlx::Connection;
use uuid::Uuid;

#[derive(Subcommand, Debug)]
pub enum LlmCommand {
    /// Usage and cost per day, month, feature or model (every tenant, or one).
    Usage(UsageArgs),
    /// Limits per tenant and feature.
    #[command(subcommand)]
    Limits(LimitsCommand),
    /// Tenants' own provider keys (metadata only; never the key).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The fallback chains of the features.
    #[command(subcommand)]
    Route(RouteCommand),
    /// The providers (wire format and base URL).
    #[command(subcommand)]
    Provider(ProviderCommand),
}

#[derive(Args, Debug)]
pub struct Owner {
    /// Connection string of the database owner (bizos_owner).
    #[arg(long, env = "BIZOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<Uuid>,
    /// First day (tenant-local) [default: the first day of this month].
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day (tenant-local) [default: today].
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// day, month, feature or model.
    #[arg(long, default_value = "day")]
    pub group_by: String,
    #[command(flatten)]
    pub owner: Owner,
}

#[derive(Subcommand, Debug)]
pub enum LimitsCommand {
    /// The limits in force and the current use (one tenant, or all).
    Show {
        #[arg(long)]
        tenant: Option<Uuid>,
        #[command(flatten)]
        owner: Owner,
    },
    /// Sets a limit; a value not given keeps the one in force.
    Set(LimitSetArgs),
}

#[derive(Args, Debug)]
pub struct LimitSetArgs {
    #[arg(long)]
    pub tenant: Uuid,
    /// The feature (chat, digest, precheck_notes, rag_answer, segment_content, …).
    #[arg(long)]
    pub feature: String,
    /// tenant (the tenant as a whole) or user (each user of the tenant).
    #[arg(long, default_value = "tenant")]
    pub scope: String,
    /// Generations a day, or `unlimited`.
    #[arg(long)]
    pub generations_per_day: Option<String>,
    /// Tokens a month, or `unlimited`.
    #[arg(long)]
    pub tokens_per_month: Option<String>,
    #[command(flatten)]
    pub owner: Owner,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// The keys' metadata (one tenant, or all).
    List {
        #[arg(long)]
        tenant: Option<Uuid>,
        #[command(flatten)]
        owner: Owner,
    },
    /// After a rotation of the master key: moves the stored keys (one
    /// tenant's, or all) to the current master key, so the previous one can
    /// be retired. One line per key moved, then a summary.
    Rewrap {
        #[arg(long)]
        tenant: Option<Uuid>,
        #[command(flatten)]
        master: super::config::MasterKeyArgs,
        #[command(flatten)]
        owner: Owner,
    },
}

#[derive(Subcommand, Debug)]
pub enum RouteCommand {
    /// The chains (one feature, or all).
    Show {
        feature: Option<String>,
        #[command(flatten)]
        owner: Owner,
    },
    /// Replaces a feature's chain: `bizos llm route set chat
    /// gemini:gemini-2.0-flash openai:gpt-4o-mini` (first tried first).
    Set {
        feature: String,
        /// provider:model, in order.
        #[arg(required = true)]
        chain: Vec<String>,
        #[command(flatten)]
        owner: Owner,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProviderCommand {
    /// Every provider.
    List {
        #[command(flatten)]
        owner: Owner,
    },
    /// Adds or changes a provider.
    Set {
        provider: String,
        /// openai (OpenAI-compatible) or gemini.
        #[arg(long)]
        wire: String,
        #[arg(long)]
        base_url: String,
        #[arg(long)]
        label: String,
        #[command(flatten)]
        owner: Owner,
    },
}

async fn connect(owner: &Owner) -> anyhow::Result<sqlx::PgConnection> {
    Ok(sqlx::PgConnection::connect(&owner.database_url).await?)
}

/// A database error as its message (and field), not sqlx's wrapping.
fn db_error(e: sqlx::Error) -> anyhow::Error {
    match e.as_database_error() {
        Some(d) => anyhow::anyhow!("{}", d.message()),
        None => e.into(),
    }
}

fn print(rows: Vec<Value>) {
    for row in rows {
        println!("{row}");
    }
}

/// A limit argument: a number, or `unlimited` (None).
fn limit_value(flag: &str, v: &str) -> anyhow::Result<Option<i64>> {
    if v.eq_ignore_ascii_case("unlimited") || v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match v.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => anyhow::bail!("--{flag}: must be a whole number, 0 or more, or unlimited"),
    }
}

pub async fn run(command: LlmCommand) -> anyhow::Result<()> {
    match command {
        LlmCommand::Usage(a) => {
            let mut conn = connect(&a.owner).await?;
            let rows: Vec<Value> = sqlx::query_scalar(
                "select u from llm_usage(coalesce($1, date_trunc('month', current_date)::date),
                                         coalesce($2, current_date + 1), $3) u
                  where $4::uuid is null or (u ->> 'tenant_id')::uuid = $4",
            )
            .bind(a.from)
            .bind(a.to)
            .bind(&a.group_by)
            .bind(a.tenant)
            .fetch_all(&mut conn)
            .await
            .map_err(db_error)?;
            print(rows);
        }
        LlmCommand::Limits(LimitsCommand::Show { tenant, owner }) => {
            let mut conn = connect(&owner).await?;
            let rows: Vec<Value> = sqlx::query_scalar(
                "select to_jsonb(l) - 'generations_today' - 'tokens_this_month'
                   from v_llm_limits l join llm_features f on f.code = l.feature
                  where $1::uuid is null or l.tenant_id = $1
                  order by l.tenant_id, f.position, l.scope",
            )
            .bind(tenant)
            .fetch_all(&mut conn)
            .await
            .map_err(db_error)?;
            print(rows);
        }
        LlmCommand::Limits(LimitsCommand::Set(a)) => {
            let mut conn = connect(&a.owner).await?;
            let current: Option<(Option<i32>, Option<i64>)> = sqlx::query_as(
                "select generations_per_day, tokens_per_month from v_llm_limits
                  where tenant_id = $1 and feature = $2 and scope = $3",
            )
            .bind(a.tenant)
            .bind(&a.feature)
            .bind(&a.scope)
            .fetch_optional(&mut conn)
            .await
            .map_err(db_error)?;
            let (gens, tokens) = current.unwrap_or_default();
            let gens = match &a.generations_per_day {
                Some(v) => limit_value("generations-per-day", v)?
                    .map(i32::try_from)
                    .transpose()
                    .map_err(|_| anyhow::anyhow!("--generations-per-day: too large"))?,
                None => gens,
            };
            let tokens = match &a.tokens_per_month {
                Some(v) => limit_value("tokens-per-month", v)?,
                None => tokens,
            };
            let row: Value = sqlx::query_scalar("select llm_limit_set($1, $2, $3, $4, $5)")
                .bind(a.tenant)
                .bind(&a.feature)
                .bind(&a.scope)
                .bind(gens)
                .bind(tokens)
                .fetch_one(&mut conn)
                .await
                .map_err(db_error)?;
            println!("{row}");
        }
        LlmCommand::Keys(KeysCommand::List { tenant, owner }) => {
            let mut conn = connect(&owner).await?;
            let rows: Vec<Value> = sqlx::query_scalar(
                "select to_jsonb(k) from v_llm_keys k
                  where $1::uuid is null or k.tenant_id = $1
                  order by k.tenant_id, k.created_at, k.key_id",
            )
            .bind(tenant)
            .fetch_all(&mut conn)
            .await
            .map_err(db_error)?;
            print(rows);
        }
        LlmCommand::Keys(KeysCommand::Rewrap {
            tenant,
            master,
            owner,
        }) => {
            let Some(keys) = master.keys()? else {
                anyhow::bail!("BIZOS_LLM_MASTER_KEY is not set: there is no key to move to");
            };
            let mut conn = connect(&owner).await?;
            let report = super::rewrap::rewrap(&mut conn, &keys, tenant)
                .await
                .map_err(db_error)?;
            print(report.lines);
            println!(
                "{}",
                json!({"rewrapped": report.rewrapped, "failed": report.failed, "master_key_id": keys.current_id()})
            );
            if report.failed > 0 {
                anyhow::bail!(
                    "{} key(s) did not open with the configured master keys (see above)",
                    report.failed
                );
            }
        }
        LlmCommand::Route(RouteCommand::Show { feature, owner }) => {
            let mut conn = connect(&owner).await?;
            let rows: Vec<Value> = sqlx::query_scalar(
                "select jsonb_build_object('feature', f.code,
                          'chain', coalesce((select jsonb_agg(jsonb_build_object('provider', r.provider, 'model', r.model)
                                                              order by r.position)
                                               from llm_routes r where r.feature = f.code), '[]'::jsonb))
                   from llm_features f
                  where $1::text is null or f.code = $1
                  order by f.position",
            )
            .bind(feature)
            .fetch_all(&mut conn)
            .await
            .map_err(db_error)?;
            print(rows);
        }
        LlmCommand::Route(RouteCommand::Set {
            feature,
            chain,
            owner,
        }) => {
            let entries = chain
                .iter()
                .map(|item| match item.split_once(':') {
                    Some((p, m)) if !p.is_empty() && !m.is_empty() => {
                        Ok(json!({"provider": p, "model": m}))
                    }
                    _ => anyhow::bail!("chain: {item:?} is not provider:model"),
                })
                .collect::<anyhow::Result<Vec<Value>>>()?;
            let mut conn = connect(&owner).await?;
            let row: Value = sqlx::query_scalar("select llm_route_set($1, $2)")
                .bind(&feature)
                .bind(Value::Array(entries))
                .fetch_one(&mut conn)
                .await
                .map_err(db_error)?;
            println!("{row}");
        }
        LlmCommand::Provider(ProviderCommand::List { owner }) => {
            let mut conn = connect(&owner).await?;
            let rows: Vec<Value> =
                sqlx::query_scalar("select to_jsonb(p) from llm_providers p order by p.provider")
                    .fetch_all(&mut conn)
                    .await
                    .map_err(db_error)?;
            print(rows);
        }
        LlmCommand::Provider(ProviderCommand::Set {
            provider,
            wire,
            base_url,
            label,
            owner,
        }) => {
            let mut conn = connect(&owner).await?;
            let row: Value = sqlx::query_scalar("select llm_provider_set($1, $2, $3, $4)")
                .bind(&provider)
                .bind(&wire)
                .bind(&base_url)
                .bind(&label)
                .fetch_one(&mut conn)
                .await
                .map_err(db_error)?;
            println!("{row}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_values() {
        assert_eq!(limit_value("x", "10").unwrap(), Some(10));
        assert_eq!(limit_value("x", "unlimited").unwrap(), None);
        assert!(limit_value("x", "-1").is_err());
        assert!(limit_value("x", "ten").is_err());
    }
}
