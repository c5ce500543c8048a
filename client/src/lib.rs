//! tickwire-client: the async client core used by bots, tests and the Bevy client.
//!
//! Two transports behind one [`GameClient`] trait:
//! - [`Client`] over QUIC: pins the server's certificate by its SHA-256 (or, only when asked
//!   explicitly, trusts anything), says hello, then offers lobby calls, inputs as datagrams and
//!   decoded snapshots;
//! - [`SioClient`] over Socket.IO (websocket only).
//!
//! Both apply each snapshot delta to a client-side world and acknowledge the newest tick decoded
//! on the next input.

pub mod blend;
pub mod common;
pub mod connection;
pub mod socketio;
pub mod timing;
pub mod trust;

pub use common::{ClientError, ClientStats, Decoding, GameClient, InputLog, Received};
pub use connection::{Caller, Client, ClientConfig, InputSender};
pub use socketio::SioClient;
pub use tickwire_protocol::world::ClientWorld;
pub use trust::Trust;
