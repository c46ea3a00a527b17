use std::process::ExitCode;

use bulkwatch::domain::keys::{self, Scopes};
use bulkwatch::store::Db;
use bulkwatch::{Application, Config};
use clap::{Args, Parser, Subcommand};

/// bulkwatch: track bulk tasks and the outcome of every item, over GraphQL.
#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "With no command, bulkwatch runs `serve`: on ./bulkwatch.db (SQLite, created and \
migrated on start) at http://127.0.0.1:8080/.\n\nEvery setting is a flag or an environment variable: \
DATABASE_URL, BULKWATCH_BIND, BULKWATCH_DASHBOARD, BULKWATCH_GRAPHIQL, ... \
`bulkwatch serve --help` lists them all with their defaults.\n\nFrom a checkout, run it as \
`cargo run --release -- <command>`, or install the command with `cargo install --path .`."
)]
struct Cli {
    /// What to do; `serve` when left out.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve GraphQL (and GraphiQL at `/`).
    Serve(Config),
    /// Apply pending database migrations and exit.
    Migrate(Database),
    /// Print the GraphQL schema (SDL) to standard output.
    Schema,
    /// Manage organisations.
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run a demo worker that claims, renews and reports through the GraphQL API.
    WorkerDemo(bulkwatch::worker_demo::Args),
}

#[derive(Args)]
struct Database {
    /// Database to use: `sqlite://FILE` or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://bulkwatch.db")]
    database_url: String,
    /// PostgreSQL is reached through a pooler in transaction mode.
    #[arg(long, env = "BULKWATCH_DB_TRANSACTION_POOLER", default_value_t = false, action = clap::ArgAction::Set)]
    db_transaction_pooler: bool,
}

#[derive(Subcommand)]
enum OrgsCommand {
    /// Create an organisation.
    Create {
        name: String,
        #[command(flatten)]
        db: Database,
    },
    /// List organisations.
    List {
        #[command(flatten)]
        db: Database,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it; it is shown this once only.
    Create {
        /// The organisation's name (`default` is built in).
        #[arg(long)]
        org: String,
        /// Comma-separated: tasks:read, tasks:write, items:report, webhooks:manage.
        #[arg(long, default_value = "tasks:read,tasks:write,items:report")]
        scopes: String,
        #[command(flatten)]
        db: Database,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        db: Database,
    },
    /// Revoke a key by its id or by the prefix `keys list` shows.
    Revoke {
        /// The key's id, or its prefix (e.g. `bw_2bef087f`).
        key: String,
        #[command(flatten)]
        db: Database,
    },
}

// Requests allocate many small values (GraphQL inputs, JSON); mimalloc
// serves them faster than the system allocator. Built without asking for
// transparent huge pages: each 2 MiB page is resident whole however little
// of it is in use, and with them the mixed load's plateau was 1.6 x higher.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Outcome = Result<(), Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> ExitCode {
    bulkwatch::logging::init();
    let command = match Cli::parse().command {
        Some(command) => command,
        None => Cli::parse_from(["bulkwatch", "serve"])
            .command
            .expect("serve parses"),
    };
    let result = match command {
        Command::Serve(config) => serve(config).await,
        Command::Migrate(db) => open(&db).await.map(|_| eprintln!("migrations applied")),
        Command::Schema => {
            print!("{}", bulkwatch::graphql::sdl());
            Ok(())
        }
        Command::Orgs(OrgsCommand::Create { name, db }) => create_org(&db, &name).await,
        Command::Orgs(OrgsCommand::List { db }) => list_orgs(&db).await,
        Command::Keys(command) => manage_keys(command).await,
        Command::WorkerDemo(args) => bulkwatch::worker_demo::run(args).await.map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Outcome {
    let app = Application::build(config).await?;
    if let Some(key) = app.first_start_key() {
        println!(
            "First start: an admin API key of the default organisation (shown once, keep it):\n\n    {key}\n"
        );
        println!("In GraphiQL, open Headers and paste: {{\"Authorization\": \"Bearer {key}\"}}\n");
    }
    if app.first_start_key().is_none() {
        tracing::info!(
            "this database has API keys already; a lost admin key is replaced with `bulkwatch keys create --org default --scopes tasks:read,tasks:write,items:report,webhooks:manage` (same DATABASE_URL)"
        );
    }
    let address = app.local_addr();
    tracing::info!(%address, "bulkwatch listening: dashboard at http://{address}/, GraphiQL at http://{address}/graphiql");
    app.run_until_stopped().await?;
    Ok(())
}

async fn open(db: &Database) -> Result<Db, Box<dyn std::error::Error>> {
    let opened = Db::open(&db.database_url, 1).await?;
    Ok(if db.db_transaction_pooler {
        opened.behind_transaction_pooler()
    } else {
        opened
    })
}

/// The error for a person at a terminal: with its cause where one is kept.
fn fail(e: bulkwatch::error::AppError) -> Box<dyn std::error::Error> {
    match &e {
        bulkwatch::error::AppError::DatabaseUnavailable(cause) => format!("{e} ({cause})").into(),
        bulkwatch::error::AppError::Internal(cause) => format!("{e}: {cause}").into(),
        _ => e.to_string().into(),
    }
}

async fn create_org(db: &Database, name: &str) -> Outcome {
    let org = keys::create_organisation(&open(db).await?, name)
        .await
        .map_err(fail)?;
    println!("{}", org.id);
    Ok(())
}

async fn list_orgs(db: &Database) -> Outcome {
    println!("{:<36}  {:<24}  created", "id", "name");
    for org in keys::organisations(&open(db).await?).await.map_err(fail)? {
        println!(
            "{:<36}  {:<24}  {}",
            org.id,
            org.name,
            format_ms(org.created_at)
        );
    }
    Ok(())
}

async fn manage_keys(command: KeysCommand) -> Outcome {
    match command {
        KeysCommand::Create { org, scopes, db } => {
            let db = open(&db).await?;
            let scopes = Scopes::parse_list(&scopes).map_err(fail)?;
            let org = keys::organisation_named(&db, &org).await.map_err(fail)?;
            let new = keys::create_key(&db, org.id, scopes).await.map_err(fail)?;
            eprintln!(
                "key {} for {} with {}; shown once:",
                new.key.id, org.name, new.key.scopes
            );
            println!("{}", new.token);
        }
        KeysCommand::List { db } => {
            let db = open(&db).await?;
            println!(
                "{:<36}  {:<16}  {:<11}  {:<36}  {:<10}  status",
                "id", "organisation", "prefix", "scopes", "last used"
            );
            for (key, org) in keys::list(&db).await.map_err(fail)? {
                let last_used = key
                    .last_used_at
                    .map(format_ms)
                    .unwrap_or_else(|| "never".into());
                let status = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<36}  {:<16}  {:<11}  {:<36}  {:<10}  {status}",
                    key.id, org, key.prefix, key.scopes, last_used
                );
            }
        }
        KeysCommand::Revoke { key, db } => {
            let revoked = keys::revoke(&open(&db).await?, &key).await.map_err(fail)?;
            eprintln!("key {} ({}) revoked", revoked.id, revoked.prefix);
        }
    }
    Ok(())
}

fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}
