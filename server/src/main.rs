use anyhow::Context;
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::time::Duration;
use tickwire_arena::{Arena, ArenaArgs};
use tickwire_board::Board;
use tickwire_server::Server;
use tickwire_server::config::ServerConfig;
use tickwire_standard::{Standard, StandardArgs};
use tokio::sync::oneshot;

/// After SIGINT/SIGTERM the server has this long to stop cleanly; then the process exits anyway.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// The server's own flags, then those of each built-in game.
#[derive(Parser)]
#[command(
    name = "tickwire-server",
    version,
    about = "Authoritative multiplayer game state server"
)]
struct Cli {
    #[command(flatten)]
    server: ServerConfig,
    #[command(flatten)]
    arena: ArenaArgs,
    #[command(flatten)]
    standard: StandardArgs,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut cli = Cli::parse();
    // The ticket key from the environment: kept off the command line, which other users of
    // the machine can read.
    if let Some(key) = std::env::var_os("TICKWIRE_AUTH_KEY") {
        use std::os::unix::ffi::OsStringExt;
        cli.server.auth_key = Some(key.into_vec());
    }
    let stop = watch_signals()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let server = Server::builder(cli.server)
            .game::<Arena>("arena", cli.arena.config())
            .game::<Standard>("standard", cli.standard.config())
            .game::<Board>("board", ())
            .start()
            .await
            .context("starting the server")?;
        // stdout carries exactly this one line, for scripts to wait on; logs go to stderr.
        println!("{}", server.listening_line());
        let _ = stop.await;
        tracing::info!("shutting down");
        server.shutdown().await;
        anyhow::Ok(())
    })?;
    // A task stuck in a worker must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Signals are taken on a thread of their own, not by the async runtime: a server whose workers
/// are stuck must still die when told. The first signal asks for a clean shutdown and starts
/// [`SHUTDOWN_DEADLINE`]; when it passes, or on a second signal, the process exits at once.
fn watch_signals() -> anyhow::Result<oneshot::Receiver<()>> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    let (stop_tx, stop) = oneshot::channel();
    std::thread::Builder::new()
        .name("tickwire-signals".into())
        .spawn(move || {
            let mut received = signals.forever();
            if received.next().is_none() {
                return;
            }
            let _ = stop_tx.send(());
            std::thread::spawn(|| {
                std::thread::sleep(SHUTDOWN_DEADLINE);
                tracing::error!("not stopped within {SHUTDOWN_DEADLINE:?}; exiting anyway");
                std::process::exit(1);
            });
            if received.next().is_some() {
                tracing::warn!("second signal; exiting now");
                std::process::exit(130);
            }
        })
        .context("starting the signal thread")?;
    Ok(stop)
}
