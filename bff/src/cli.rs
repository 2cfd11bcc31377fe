//! The `bizos` command line.

use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::auth::issue_token;
use crate::config::{ServeArgs, Settings};
use crate::jwt::MIN_HS256_SECRET_BYTES;
use crate::startup::Application;
use crate::telemetry;
use crate::tenants::{self, NewTenant};
use crate::vars::blank_env_is_unset;
use crate::worker::WorkerArgs;

#[derive(Parser, Debug)]
#[command(
    name = "bizos",
    version,
    about = "bizos: the Enterprise Business OS that lives in PostgreSQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP API (configuration from BIZOS_* variables or flags).
    Serve(Box<ServeArgs>),
    /// Apply pending migrations to a database.
    Migrate(MigrateArgs),
    /// Print a development JWT (HS256, signed with BIZOS_JWT_SECRET).
    Token(TokenArgs),
    /// Database administration.
    #[command(subcommand)]
    Db(DbCommand),
    /// Tenant administration.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// The clusters of the fleet (control catalogue).
    #[command(subcommand)]
    Cluster(crate::placement::lifecycle::ClusterCommand),
    /// Run background jobs (configuration from BIZOS_WORKER_* variables or flags).
    Worker(Box<WorkerArgs>),
    /// Background jobs: list, retry, cancel (as the database owner).
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The LLM gateway: usage, limits, tenant keys, routes, providers (as
    /// the database owner).
    #[command(subcommand)]
    Llm(crate::llm::admin::LlmCommand),
    /// Exit 0 when a health endpoint answers 2xx in time, 1 otherwise: the
    /// health checks of the container images, which carry no curl.
    Health(HealthArgs),
}

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// The endpoint, e.g. http://127.0.0.1:8080/readyz.
    pub url: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// One JSON line per job, newest first.
    List(JobsListArgs),
    /// Queue a dead or cancelled job again with fresh attempts.
    Retry(JobIdArgs),
    /// Cancel a queued or running job.
    Cancel(JobIdArgs),
}

#[derive(Args, Debug)]
pub struct JobsListArgs {
    /// Only jobs in this status (queued, running, succeeded, dead, cancelled).
    #[arg(long)]
    pub status: Option<String>,
    /// Only jobs of this tenant.
    #[arg(long)]
    pub tenant: Option<Uuid>,
    /// Only jobs of this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// At most this many jobs.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Connection string of the database owner (bizos_owner).
    #[arg(long, env = "BIZOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Args, Debug)]
pub struct JobIdArgs {
    /// The job's id.
    pub job_id: Uuid,
    /// Connection string of the database owner (bizos_owner).
    #[arg(long, env = "BIZOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

impl Cli {
    /// Parses the process's arguments and environment; a variable set to
    /// blanks counts as unset. Exits with clap's message on an error.
    pub fn from_env() -> Cli {
        let matches = blank_env_is_unset(Cli::command()).get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Connection string of the database owner (bizos_owner).
    #[arg(long, env = "BIZOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Apply the migrations inside this schema (schema tier); created if missing.
    #[arg(long)]
    pub schema: Option<String>,
    #[command(flatten)]
    pub fleet: crate::fleet::FleetArgs,
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// Tenant id; without it, the tenant --tenant-slug (the demo tenant).
    #[arg(long)]
    pub tenant: Option<Uuid>,
    /// User id; without --tenant it must have a profile in the tenant
    /// --tenant-slug (never another user is chosen). Without --user, the
    /// first active user of --role in the tenant.
    #[arg(long)]
    pub user: Option<Uuid>,
    /// App role of the user to look up (also put in the token as an
    /// informational claim; the database uses the profile's role). Checked
    /// against the database's app_roles whenever BIZOS_DATABASE_URL is set;
    /// with --user and no --tenant, it must be that user's role.
    #[arg(long, required_unless_present = "user")]
    pub role: Option<String>,
    /// Slug of the tenant to look users up in when --tenant is missing.
    #[arg(long, default_value = "demo")]
    pub tenant_slug: String,
    /// Lifetime of the token in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl_secs: u64,
    #[arg(long, env = "BIZOS_JWT_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Owner connection string, used to look the user up unless both
    /// --tenant and --user are given.
    #[arg(long, env = "BIZOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant and its first user, a super_admin, in one
    /// transaction; prints {"tenant_id": …, "user_id": …}. `bizos token
    /// --tenant … --user …` then gives that user a development token.
    Create(TenantCreateArgs),
    /// Move a tenant to another tier (shared, schema, isolated) while it
    /// keeps working; --wait shows the progress until it ends.
    Move(crate::tenant_moves::cli::MoveArgs),
    /// Every tenant's placement, as JSON.
    List(crate::placement::lifecycle::OperatorArgs),
    /// A tenant's placement and row, as JSON.
    Show(crate::placement::lifecycle::TenantIdArgs),
    /// Suspend a tenant: every request is refused (403 tenant_suspended).
    Suspend(crate::placement::lifecycle::TenantIdArgs),
    /// Resume a suspended tenant.
    Resume(crate::placement::lifecycle::TenantIdArgs),
}

#[derive(Args, Debug)]
pub struct TenantCreateArgs {
    /// Short name: 2-63 lowercase letters, digits and hyphens, starting
    /// with a letter.
    #[arg(long)]
    pub slug: String,
    /// Display name (1-200 characters).
    #[arg(long)]
    pub name: String,
    /// IANA time zone in which the tenant's days are cut [default:
    /// Asia/Jakarta, the column's default].
    #[arg(long)]
    pub time_zone: Option<String>,
    /// Language of the texts bizos generates for the tenant (the daily
    /// digest and its e-mail): id or en [default: id, the column's default].
    #[arg(long)]
    pub locale: Option<String>,
    /// E-mail of the first user (lowercase).
    #[arg(long)]
    pub admin_email: String,
    /// Full name of the first user.
    #[arg(long)]
    pub admin_name: String,
    /// Id of the first user, e.g. the `sub` an OIDC provider gives them
    /// [default: a new UUID].
    #[arg(long)]
    pub admin_user_id: Option<Uuid>,
    /// Connection string of the database owner (bizos_owner).
    #[arg(long, env = "BIZOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    #[command(flatten)]
    pub place: crate::placement::lifecycle::PlaceArgs,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create the roles, the database and the extensions (needs a superuser).
    /// Passwords come from BIZOS_OWNER_PASSWORD, BIZOS_APP_PASSWORD, BIZOS_WORKER_PASSWORD,
    /// BIZOS_ANALYST_PASSWORD and BIZOS_BI_PASSWORD when set.
    Bootstrap {
        /// Superuser connection string (any database of the cluster).
        #[arg(long, env = "BIZOS_ADMIN_URL", hide_env_values = true)]
        admin_url: String,
        /// Database to create and prepare.
        #[arg(long, default_value = "bizos")]
        database: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::try_from(*args)?;
            telemetry::init(settings.log_format, "info,sqlx=warn,tower_http=info");
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Worker(args) => {
            let log_format = args.log_format;
            let settings = crate::worker::WorkerSettings::try_from(*args)?;
            telemetry::init(log_format, "info,sqlx=warn");
            crate::worker::Worker::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Jobs(command) => jobs(command).await,
        Command::Llm(command) => crate::llm::admin::run(command).await,
        Command::Health(args) => health(&args).await,
        Command::Migrate(args) if args.fleet.fleet => {
            crate::fleet::run(&args.database_url, &args.fleet).await
        }
        Command::Migrate(args) => {
            let report =
                bizos_sql::migrate_report(&args.database_url, args.schema.as_deref()).await?;
            if report.is_empty() {
                println!(
                    "schema is current (version {})",
                    bizos_sql::latest_version()
                );
            }
            for m in report.migrations {
                println!("applied V{}__{}", m.version, m.name);
            }
            for f in report.api {
                println!("applied sql/api/{}", f.file);
            }
            Ok(())
        }
        Command::Token(args) => {
            println!("{}", token(args).await?);
            Ok(())
        }
        Command::Tenant(TenantCommand::Create(args)) => {
            let new = NewTenant {
                slug: args.slug,
                name: args.name,
                time_zone: args.time_zone,
                locale: args.locale,
                admin_email: args.admin_email,
                admin_name: args.admin_name,
                admin_user_id: args.admin_user_id,
            };
            if args.place.region.is_some() || args.place.tier.is_some() {
                let created =
                    crate::placement::lifecycle::create_cli(&args.database_url, &args.place, &new)
                        .await?;
                println!("{created}");
                return Ok(());
            }
            let created = tenants::create(&args.database_url, &new).await?;
            println!("{}", serde_json::to_string(&created)?);
            Ok(())
        }
        Command::Tenant(TenantCommand::Move(args)) => crate::tenant_moves::cli::run(args).await,
        Command::Tenant(TenantCommand::List(a)) => {
            print(crate::placement::lifecycle::list_cli(&a)).await
        }
        Command::Tenant(TenantCommand::Show(a)) => {
            print(crate::placement::lifecycle::show_cli(&a)).await
        }
        Command::Tenant(TenantCommand::Suspend(a)) => {
            print(crate::placement::lifecycle::status_cli(
                &a,
                crate::placement::lifecycle::Status::Suspended,
            ))
            .await
        }
        Command::Tenant(TenantCommand::Resume(a)) => {
            print(crate::placement::lifecycle::status_cli(
                &a,
                crate::placement::lifecycle::Status::Active,
            ))
            .await
        }
        Command::Cluster(c) => print(crate::placement::lifecycle::cluster_cli(c)).await,
        Command::Db(DbCommand::Bootstrap {
            admin_url,
            database,
        }) => {
            let passwords = bizos_sql::LOGIN_ROLES
                .iter()
                .filter_map(|role| {
                    let var = format!(
                        "{}_PASSWORD",
                        role.replace("bizos_", "BIZOS_").to_uppercase()
                    );
                    std::env::var(&var)
                        .ok()
                        .filter(|v| !v.is_empty())
                        .map(|v| (role.to_string(), SecretString::from(v)))
                })
                .collect();
            let opts = bizos_sql::BootstrapOptions {
                database,
                passwords,
            };
            bizos_sql::bootstrap(&admin_url, &opts).await?;
            println!("bootstrapped database {}", opts.database);
            Ok(())
        }
    }
}

/// Prints what an operator command answers, as one JSON document.
async fn print(
    answer: impl std::future::Future<Output = anyhow::Result<serde_json::Value>>,
) -> anyhow::Result<()> {
    println!("{}", answer.await?);
    Ok(())
}

async fn health(args: &HealthArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs))
        .build()?;
    let status = client.get(&args.url).send().await?.status();
    anyhow::ensure!(status.is_success(), "{} answered {status}", args.url);
    Ok(())
}

pub async fn token(args: TokenArgs) -> anyhow::Result<String> {
    if args.secret.len() < MIN_HS256_SECRET_BYTES {
        anyhow::bail!("BIZOS_JWT_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes");
    }
    if let (Some(url), Some(role)) = (args.database_url.as_deref(), args.role.as_deref()) {
        check_app_role(url, role).await?;
    }
    let (tenant, user) = match (args.tenant, args.user) {
        (Some(t), Some(u)) => (t, u),
        (tenant, user) => {
            let url = args.database_url.as_deref().ok_or_else(|| {
                anyhow::anyhow!(
                    "give --tenant and --user, or BIZOS_DATABASE_URL to look the user up"
                )
            })?;
            match user {
                // The user given, in the tenant of the slug: that user or
                // an error, never someone else.
                Some(user) => {
                    let tenant =
                        user_in_tenant(url, &args.tenant_slug, user, args.role.as_deref()).await?;
                    (tenant, user)
                }
                None => {
                    let role = args.role.as_deref().ok_or_else(|| {
                        anyhow::anyhow!("give --role to look a user up, or --tenant and --user")
                    })?;
                    lookup_user(url, tenant, &args.tenant_slug, role).await?
                }
            }
        }
    };
    let secret = SecretString::from(args.secret);
    issue_token(
        secret.expose_secret().as_bytes(),
        tenant,
        user,
        args.role.as_deref(),
        Duration::from_secs(args.ttl_secs),
    )
}

/// Refuses a role that is not a term of the database's app_roles.
async fn check_app_role(url: &str, role: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let roles: Vec<String> = sqlx::query_scalar(
        "select term from vocabulary where vocabulary = 'app_roles' order by position",
    )
    .fetch_all(&mut conn)
    .await?;
    if !roles.iter().any(|r| r == role) {
        anyhow::bail!("--role: must be one of {}", roles.join(", "));
    }
    Ok(())
}

/// The tenant of slug `slug`, where `user` must have a profile (of
/// `role`, when given).
async fn user_in_tenant(
    url: &str,
    slug: &str,
    user: Uuid,
    role: Option<&str>,
) -> anyhow::Result<Uuid> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let row: Option<(Uuid, String)> = sqlx::query_as(
        "select p.tenant_id, p.app_role
           from profiles p join tenants t using (tenant_id)
          where t.slug = $1 and p.user_id = $2",
    )
    .bind(slug)
    .bind(user)
    .fetch_optional(&mut conn)
    .await?;
    let Some((tenant, has)) = row else {
        anyhow::bail!(
            "--user: {user} has no profile in tenant {slug} (give --tenant for another tenant)"
        );
    };
    if let Some(role) = role.filter(|r| *r != has) {
        anyhow::bail!("--role: user {user} has role {has} in tenant {slug}, not {role}");
    }
    Ok(tenant)
}

/// The first active user (by e-mail) of `role` in the tenant.
async fn lookup_user(
    url: &str,
    tenant: Option<Uuid>,
    slug: &str,
    role: &str,
) -> anyhow::Result<(Uuid, Uuid)> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let row: Option<(Uuid, Uuid)> = sqlx::query_as(
        "select p.tenant_id, p.user_id
           from profiles p join tenants t using (tenant_id)
          where (t.tenant_id = $1 or ($1 is null and t.slug = $2))
            and p.app_role = $3 and p.active
          order by p.email
          limit 1",
    )
    .bind(tenant)
    .bind(slug)
    .bind(role)
    .fetch_optional(&mut conn)
    .await?;
    row.ok_or_else(|| {
        anyhow::anyhow!(
            "no active user with role {role} in tenant {}",
            tenant.map_or(slug.to_owned(), |t| t.to_string())
        )
    })
}

/// `bizos jobs …`: the owner's view of the queue and its two controls.
async fn jobs(command: JobsCommand) -> anyhow::Result<()> {
    use sqlx::Connection;
    match command {
        JobsCommand::List(args) => {
            if let Some(status) = &args.status {
                let known: Vec<String> = sqlx::query_scalar(
                    "select term from vocabulary where vocabulary = 'job_statuses' order by position",
                )
                .fetch_all(&mut sqlx::PgConnection::connect(&args.database_url).await?)
                .await?;
                if !known.contains(status) {
                    anyhow::bail!("--status: must be one of {}", known.join(", "));
                }
            }
            let mut conn = sqlx::PgConnection::connect(&args.database_url).await?;
            let rows: Vec<serde_json::Value> = sqlx::query_scalar(
                "select to_jsonb(v) from v_jobs v
                  where ($1::text is null or v.status = $1)
                    and ($2::uuid is null or v.tenant_id = $2)
                    and ($3::text is null or v.kind = $3)
                  order by v.created_at desc, v.job_id
                  limit $4",
            )
            .bind(&args.status)
            .bind(args.tenant)
            .bind(&args.kind)
            .bind(args.limit.max(1))
            .fetch_all(&mut conn)
            .await?;
            for row in rows {
                println!("{row}");
            }
            Ok(())
        }
        JobsCommand::Retry(args) => job_control(&args, "job_retry").await,
        JobsCommand::Cancel(args) => job_control(&args, "job_cancel").await,
    }
}

async fn job_control(args: &JobIdArgs, function: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&args.database_url).await?;
    let job: serde_json::Value = sqlx::query_scalar(&format!("select {function}($1)"))
        .bind(args.job_id)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| match e.as_database_error() {
            Some(d) => anyhow::anyhow!("{}", d.message()),
            None => e.into(),
        })?;
    println!("{job}");
    Ok(())
}
