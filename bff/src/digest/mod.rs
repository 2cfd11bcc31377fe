//! The CEO digest (AI-1): the `digest.build` job of the daily schedule.
//!
//! The database computes every number (`digest_aggregates`, for the
//! business day the job stands for); the LLM gateway words three insights
//! from them ([`insights`]: each checked, number by number, against the
//! figures it cites); deterministic insights replace any that fail, or all
//! three when no model answers; `digest_store` keeps the card and queues
//! its e-mail to the directors and super admins in one transaction, only
//! the first time. A job run twice (a retry, a second worker, a re-run of
//! the day) finds the digest stored and stops before calling a model.

pub mod insights;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::job::{Handler, Job, JobArgs, JobError};
use crate::llm::{features, CallContext, Gateway, GatewayError, GatewayRequest, Source};
use crate::telemetry::db_call;
use crate::vars::ConfigError;
use insights::{Insight, Locale, COUNT};

/// Steps of a run, for the job's progress.
const STEPS: i64 = 4;

/// The payload of `digest.build`: the schedule 'daily digest' writes
/// `{}`. `day` is read by `digest_day_of_job` (the job's business day when
/// absent). Keys it does not know are ignored: a schedule's job payload is
/// its user's, free-form.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DigestBuildArgs {
    /// The business day to summarise (YYYY-MM-DD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<chrono::NaiveDate>,
}

impl JobArgs for DigestBuildArgs {
    const KIND: &'static str = "digest.build";
}

/// `digest.build`: the digest of a tenant's business day.
pub struct DigestBuild {
    pub llm: Gateway,
}

impl DigestBuild {
    /// The digest's LLM gateway, as the worker's login.
    pub fn from_settings(
        settings: &crate::llm::LlmSettings,
        pool: &sqlx::PgPool,
    ) -> Result<Self, ConfigError> {
        let llm = Gateway::new(pool.clone(), crate::llm::Login::Worker, settings)
            .map_err(|e| ConfigError::Invalid(format!("{e:#}")))?;
        Ok(DigestBuild { llm })
    }
}

/// Where the three insights came from (`digests.source`).
pub fn source_of(insights: &[Insight]) -> &'static str {
    match insights.iter().filter(|i| i.from_model).count() {
        0 => "fallback",
        n if n == insights.len() => "model",
        _ => "mixed",
    }
}

/// The variables of the `digest.daily.<locale>` e-mail.
pub fn email_vars(day: chrono::NaiveDate, aggregates: &Value, insights: &[Insight]) -> Value {
    let locale = Locale::parse(aggregates["locale"].as_str().unwrap_or("id"));
    let figure = |k: &str| aggregates["figures"][k].as_f64().unwrap_or(0.0);
    let note = match (locale, source_of(insights)) {
        (Locale::Id, "model") => "Wawasan ditulis oleh AI dari angka-angka ini; setiap angka diperiksa.",
        (Locale::Id, "mixed") => {
            "Sebagian wawasan ditulis oleh AI (setiap angka diperiksa), sisanya dari pergerakan terbesar."
        }
        (Locale::Id, _) => "Wawasan disusun otomatis dari pergerakan terbesar, tanpa AI.",
        (Locale::En, "model") => "The insights were written by AI from these figures; every number was checked.",
        (Locale::En, "mixed") => {
            "Some insights were written by AI (every number checked), the rest from the largest movements."
        }
        (Locale::En, _) => "The insights were drawn from the largest movements, without AI.",
    };
    let mut vars = json!({
        "digest_date": day.format("%Y-%m-%d").to_string(),
        "revenue_mtd": insights::money(figure("revenue_invoiced_mtd"), locale),
        "collected_mtd": insights::money(figure("revenue_collected_mtd"), locale),
        "overdue_ar": insights::money(figure("ar_overdue"), locale),
        "source_note": note,
    });
    for (i, insight) in insights.iter().enumerate() {
        vars[format!("insight_{}", i + 1)] = Value::String(insight.text.clone());
    }
    vars
}

impl DigestBuild {
    async fn build(&self, job: &Job) -> Result<(), JobError> {
        let pool = job.pool();
        let day: chrono::NaiveDate = db_call(
            "digest_day_of_job",
            sqlx::query_scalar("select digest_day_of_job($1, $2)")
                .bind(job.tenant_id)
                .bind(job.job_id)
                .fetch_one(pool),
        )
        .await?;
        let exists: bool = sqlx::query_scalar("select digest_exists($1, $2)")
            .bind(job.tenant_id)
            .bind(day)
            .fetch_one(pool)
            .await?;
        if exists {
            tracing::info!(%day, "the digest of the day is stored already");
            return job.progress(STEPS, STEPS).await;
        }
        // In a transaction block: digest_aggregates sets the tenant's claims
        // for the report functions it calls with SET LOCAL, which on Citus
        // reaches the workers only there (as a statement of its own the
        // receivables read no claims on the workers and came to 0).
        let mut tx = job.begin_system().await?;
        let aggregates: Value = db_call(
            "digest_aggregates",
            sqlx::query_scalar("select digest_aggregates($1, $2)")
                .bind(job.tenant_id)
                .bind(day)
                .fetch_one(&mut *tx),
        )
        .await?;
        tx.commit().await?;
        job.progress(1, STEPS).await?;

        let locale = Locale::parse(aggregates["locale"].as_str().unwrap_or("id"));
        let request = GatewayRequest {
            messages: insights::prompt(&aggregates, locale),
            json_schema: Some(insights::schema()),
            temperature: Some(0.2),
            max_output_tokens: Some(800),
        };
        let ctx = CallContext::for_job(job);
        let (kept, call_ids) = match self.llm.chat(&ctx, features::DIGEST, request).await {
            Ok(answer) => {
                let kept = match (&answer.source, &answer.json) {
                    (Source::Model { .. } | Source::Cache, Some(json)) => {
                        insights::checked(json, &aggregates).0
                    }
                    _ => Vec::new(),
                };
                (kept, answer.call_ids)
            }
            // The tenant's AI limit is used up: the digest goes out without.
            Err(GatewayError::Limited { message, .. }) => {
                tracing::info!(%message, "digest without a model: limit reached");
                (Vec::new(), Vec::new())
            }
            Err(GatewayError::Api(e)) => return Err(JobError::Retryable(e.to_string())),
        };
        job.progress(2, STEPS).await?;

        let insights = insights::complete(kept, &aggregates, locale);
        debug_assert_eq!(insights.len(), COUNT);
        let source = source_of(&insights);
        let vars = email_vars(day, &aggregates, &insights);
        let stored: Value = db_call(
            "digest_store",
            sqlx::query_scalar("select digest_store($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(job.tenant_id)
                .bind(day)
                .bind(&aggregates)
                .bind(Value::Array(
                    insights.iter().map(Insight::to_json).collect(),
                ))
                .bind(source)
                .bind(&call_ids as &[Uuid])
                .bind(job.job_id)
                .bind(&vars)
                .fetch_one(pool),
        )
        .await?;
        tracing::info!(%day, source, created = %stored["created"], "digest stored");
        job.progress(STEPS, STEPS).await
    }
}

impl Handler for DigestBuild {
    type Args = DigestBuildArgs;

    /// The day is the database's to read (`digest_day_of_job`): the
    /// payload was checked at the claim.
    async fn run(&self, job: &Job, _: DigestBuildArgs) -> Result<(), JobError> {
        self.build(job).await
    }
}
