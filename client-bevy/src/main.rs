//! The tickwire arena client: a 2D top-down shooter on a tickwire server, or the same app
//! without a window (`--headless`) driven by a bot, printing a report.

mod app;

fn main() -> anyhow::Result<()> {
    app::run()
}
