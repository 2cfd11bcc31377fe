//! The `bizos` command line.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::auth::issue_token;
use crate::config::{Settings, MIN_HS256_SECRET_BYTES};
use crate::startup::Application;
use crate::telemetry;

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
    /// Run the HTTP API (configuration from BIZOS_* variables, see README).
    Serve,
    /// Apply pending migrations to a database.
    Migrate(MigrateArgs),
    /// Print a development JWT (HS256, signed with BIZOS_JWT_SECRET).
    Token(TokenArgs),
    /// Database administration.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Connection string of the database owner (bizos_owner).
    #[arg(long, env = "BIZOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Apply the migrations inside this schema (schema tier); created if missing.
    #[arg(long)]
    pub schema: Option<String>,
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// Tenant id; with only --role, the demo tenant.
    #[arg(long)]
    pub tenant: Option<Uuid>,
    /// User id; with only --role, the first user of that role in the tenant.
    #[arg(long)]
    pub user: Option<Uuid>,
    /// App role of the user to look up (also put in the token as an
    /// informational claim; the database uses the profile's role). Checked
    /// against the database's app_roles whenever BIZOS_DATABASE_URL is set.
    #[arg(long)]
    pub role: String,
    /// Slug of the tenant to look users up in when --tenant/--user are missing.
    #[arg(long, default_value = "demo")]
    pub tenant_slug: String,
    /// Lifetime of the token in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl_secs: u64,
    #[arg(long, env = "BIZOS_JWT_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Owner connection string, used to look up the user when --user is missing.
    #[arg(long, env = "BIZOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create the roles, the database and the extensions (needs a superuser).
    /// Passwords come from BIZOS_OWNER_PASSWORD, BIZOS_APP_PASSWORD,
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
        Command::Serve => {
            let settings = Settings::from_env()?;
            telemetry::init(settings.log_format, "info,sqlx=warn,tower_http=info");
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
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

pub async fn token(args: TokenArgs) -> anyhow::Result<String> {
    if args.secret.len() < MIN_HS256_SECRET_BYTES {
        anyhow::bail!("BIZOS_JWT_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes");
    }
    if let Some(url) = args.database_url.as_deref() {
        check_app_role(url, &args.role).await?;
    }
    let (tenant, user) = match (args.tenant, args.user) {
        (Some(t), Some(u)) => (t, u),
        (tenant, _) => {
            let url = args.database_url.as_deref().ok_or_else(|| {
                anyhow::anyhow!(
                    "give --tenant and --user, or BIZOS_DATABASE_URL to look the user up"
                )
            })?;
            lookup_user(url, tenant, &args.tenant_slug, &args.role).await?
        }
    };
    let secret = SecretString::from(args.secret);
    issue_token(
        secret.expose_secret().as_bytes(),
        tenant,
        user,
        Some(&args.role),
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
