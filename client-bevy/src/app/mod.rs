//! The app around the plugins: command line, lobby plan, report, and (with the `render`
//! feature) the window, drawing, HUD and controls.

mod cli;
mod lobby;
mod report;
#[cfg(feature = "render")]
mod view;

use bevy::app::ScheduleRunnerPlugin;
use bevy::log::LogPlugin;
use bevy::prelude::*;
use clap::Parser;
use std::time::Duration;
use tickwire_client_bevy::bot::BotPlugin;
use tickwire_client_bevy::{TickwirePlugins, TickwireSettings};

pub fn run() -> anyhow::Result<()> {
    let args = cli::Args::parse();
    let mut settings = TickwireSettings::new(args.server, args.trust()?, args.name.clone());
    settings.ticket = args.ticket.clone();
    // A screenshot run exits once the picture is saved; the report's timer is only a backstop.
    let report_after = match &args.screenshot {
        Some(_) => args.duration().map(|d| d + 20.0),
        None => args.duration(),
    };
    let mut app = App::new();
    if args.headless {
        // 60 frames a second without a window: the same schedules a windowed game runs.
        app.add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_secs_f64(
                1.0 / 60.0,
            ))),
            LogPlugin::default(),
        ));
    } else {
        #[cfg(feature = "render")]
        app.add_plugins(view::ViewPlugin {
            screenshot: args.screenshot.clone().zip(args.duration()),
            keyboard: !args.bot,
        });
        #[cfg(not(feature = "render"))]
        anyhow::bail!(
            "this build has no renderer (built without the `render` feature): use --headless"
        );
    }
    app.insert_resource(settings)
        .add_plugins(TickwirePlugins)
        .insert_resource(lobby::LobbyPlan::new(args.plan(), args.ready || args.bot))
        .add_plugins(lobby::LobbyPlanPlugin)
        .insert_resource(report::Report::new(report_after, args.json))
        .add_plugins(report::ReportPlugin);
    if args.bot {
        app.add_plugins(BotPlugin { seed: args.seed });
    }
    match app.run() {
        AppExit::Success => Ok(()),
        AppExit::Error(code) => std::process::exit(code.get() as i32),
    }
}
