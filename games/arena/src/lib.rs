//! The arena, tickwire's built-in game: top-down players who move, aim and fire; wandering
//! drones; kills, score and timed matches. It is written against the public game API
//! (`tickwire-game`) only, as a game developer's own crate would be.
//!
//! - [`game`]: the simulation ([`Arena`]) and its config and command-line flags;
//! - [`input`]: what a player sends ([`ArenaInput`]);
//! - [`view`]: its replicated schema and the typed view of a snapshot's entities, for clients;
//! - [`movement`]: the movement rules a client needs to predict its own player;
//! - [`brain`]: its AI ([`Brain`]), used by server bots and the `tickwire-bots` swarm.

pub mod brain;
pub mod game;
pub mod input;
pub mod movement;
pub mod news;
pub mod view;

pub use brain::Brain;
pub use game::{Arena, ArenaArgs, ArenaConfig};
pub use input::ArenaInput;
pub use news::ArenaNews;
pub use view::{EntityKind, EntityState};
