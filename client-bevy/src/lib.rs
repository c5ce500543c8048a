//! tickwire-client-bevy: play on a tickwire server from a Bevy game.
//!
//! Add [`TickwirePlugins`] after inserting [`TickwireSettings`]; the plugins connect over QUIC
//! (the server's certificate pinned by its SHA-256), and then:
//! - [`connection`]: [`NetStatus`], lobby calls as [`LobbyRequest`] / [`LobbyResponse`]
//!   messages, room events as [`RoomEventMessage`], the room the player sits in
//!   ([`CurrentRoom`]);
//! - [`replication`]: one Bevy entity per replicated entity ([`NetEntity`], [`NetState`],
//!   `Transform`), spawned and despawned with the snapshots;
//! - [`interpolation`]: remote entities shown between two snapshots behind an adaptive delay;
//! - [`prediction`]: the local player's [`PlayerIntent`] sent every fixed tick, its movement
//!   predicted and reconciled;
//! - [`bot`] (not in the group): an autopilot that writes the intent;
//! - [`replicate`]: `app.replicate::<C>()` mirrors a game's declared component onto its
//!   entities, interpolated by the declared field types, for any game
//!   ([`TickwireSettings::with_schema`] names the game's schema).
//!
//! [`NetState`], its interpolation and prediction are the arena's (its movement rules); in a
//! room of another game the entities are spawned and their declared components mirrored, acks
//! are sent, and nothing is predicted.
//!
//! None of it needs a window or a renderer: the same plugins run headless.

pub mod bot;
pub mod bridge;
pub mod connection;
pub mod interpolation;
pub mod prediction;
pub mod replicate;
pub mod replication;

pub use connection::{
    CurrentRoom, LobbyRequest, LobbyResponse, NetStats, NetStatus, RoomEventMessage,
    TickwireSettings,
};
pub use prediction::{PlayerIntent, Prediction, PredictionStats};
pub use replicate::{ReplicateApp, Replicated};
pub use replication::{LocalPlayer, NetEntity, NetIndex, NetState, ReplicationStats};

use bevy::app::plugin_group;

plugin_group! {
    /// Everything a game needs to play on a tickwire server.
    pub struct TickwirePlugins {
        connection:::ConnectionPlugin,
        replication:::ReplicationPlugin,
        interpolation:::InterpolationPlugin,
        prediction:::PredictionPlugin,
    }
}
