use std::process::ExitCode;

use bulkwatch::{Application, Config};
use clap::{Parser, Subcommand};

/// bulkwatch: track bulk tasks and the outcome of every item, over GraphQL.
#[derive(Parser)]
#[command(version, about)]
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
    Migrate(Config),
    /// Print the GraphQL schema (SDL) to standard output.
    Schema,
}

#[tokio::main]
async fn main() -> ExitCode {
    bulkwatch::http::init_tracing();
    let command = match Cli::parse().command {
        Some(command) => command,
        None => Cli::parse_from(["bulkwatch", "serve"]).command.expect("serve parses"),
    };
    let result = match command {
        Command::Serve(config) => serve(config).await,
        Command::Migrate(config) => migrate(config).await,
        Command::Schema => {
            print!("{}", bulkwatch::graphql::sdl());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let app = Application::build(config).await?;
    tracing::info!(address = %app.local_addr(), "bulkwatch listening; GraphiQL at http://{}/", app.local_addr());
    app.run_until_stopped().await?;
    Ok(())
}

async fn migrate(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    config.validate()?;
    let db = bulkwatch::store::Db::connect(&config.database_url, 1).await?;
    db.migrate().await?;
    eprintln!("migrations applied");
    Ok(())
}
