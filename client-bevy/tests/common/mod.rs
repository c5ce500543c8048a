//! What the Bevy tests share.

use bevy::prelude::*;
use std::time::{Duration, Instant};
use tickwire_tests::WAIT;

/// Frames run this often while a test waits: a 250 Hz game loop, not a synchronisation.
const FRAME_PACING: Duration = Duration::from_millis(4);

/// Runs frames until `done` holds, failing after [`WAIT`].
pub fn frames_until(app: &mut App, what: &str, done: impl FnMut(&mut World) -> bool) {
    frames_until_within(app, what, WAIT, done);
}

/// Runs frames until `done` holds, failing after `limit`.
#[allow(dead_code)] // each test binary compiles this module; not all of them wait this long
pub fn frames_until_within(
    app: &mut App,
    what: &str,
    limit: Duration,
    mut done: impl FnMut(&mut World) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        app.update();
        if done(app.world_mut()) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(FRAME_PACING);
    }
}
