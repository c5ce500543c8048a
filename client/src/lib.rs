//! tickwire-client: the async client core used by bots, tests and the Bevy client.
//!
//! [`Client::connect`] opens a QUIC connection to a tickwire server, pinning the server's
//! certificate by its SHA-256 (or, only when asked explicitly, trusting anything), says hello and
//! then offers lobby calls, an input sender and a stream of decoded snapshots. The snapshot task
//! applies each delta to the client-side [`world::ClientWorld`] and the input sender acknowledges
//! the newest tick decoded.

pub mod connection;
pub mod trust;

pub use connection::{Client, ClientConfig, ClientError, ClientStats, Received};
pub use tickwire_protocol::world::ClientWorld;
pub use trust::Trust;
