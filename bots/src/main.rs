//! `tickwire-bots`: the bots playing the built-in games (`arena`, `standard`), with the
//! games' own flags for an in-process server (`--local`).

use clap::Parser;
use tickwire_arena::{Arena, ArenaArgs};
use tickwire_bots::{BotArgs, Games};
use tickwire_standard::{Standard, StandardArgs};

#[derive(Parser, Debug)]
#[command(
    name = "tickwire-bots",
    version,
    about = "Headless bot matches and load for tickwire"
)]
struct Cli {
    #[command(flatten)]
    bots: BotArgs,
    #[command(flatten)]
    arena: ArenaArgs,
    #[command(flatten)]
    standard: StandardArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let games = Games::new()
        .game::<Arena>("arena", cli.arena.config())
        .game::<Standard>("standard", cli.standard.config());
    tickwire_bots::run(cli.bots, games).await
}
