//! Bots that play coins (its `Greedy` AI) against a coins server, or an in-process one with
//! `--local`: `cargo run -p tickwire-example-coins --bin coins-bots -- --local --bots 8`.

use clap::Parser;
use tickwire_bots::{BotArgs, Games};
use tickwire_example_coins::Coins;

#[derive(Parser)]
#[command(
    name = "coins-bots",
    about = "tickwire's bots playing the coins example"
)]
struct Cli {
    #[command(flatten)]
    bots: BotArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tickwire_bots::run(cli.bots, Games::new().game::<Coins>("coins", ())).await
}
