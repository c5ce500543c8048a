//! A tickwire server that hosts the coins game (as `coins`, the default mode) beside the
//! built-in games: `cargo run -p tickwire-example-coins`.

use clap::Parser;
use tickwire_arena::{Arena, ArenaArgs};
use tickwire_board::Board;
use tickwire_example_coins::Coins;
use tickwire_server::Server;
use tickwire_server::config::ServerConfig;
use tickwire_standard::{Standard, StandardArgs};

#[derive(Parser)]
#[command(
    name = "coins-server",
    about = "tickwire hosting the coins example game"
)]
struct Cli {
    #[command(flatten)]
    server: ServerConfig,
    #[command(flatten)]
    arena: ArenaArgs,
    #[command(flatten)]
    standard: StandardArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let server = Server::builder(cli.server)
        // The first registered is the default mode.
        .game::<Coins>("coins", ())
        .game::<Arena>("arena", cli.arena.config())
        .game::<Standard>("standard", cli.standard.config())
        .game::<Board>("board", ())
        .start()
        .await?;
    println!("{}", server.listening_line());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
