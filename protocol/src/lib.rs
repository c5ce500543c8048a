//! tickwire-protocol: everything a tickwire server and its clients agree on.
//!
//! No I/O and no clock live here (see docs/ARCHITECTURE.md): ids, control messages, declared
//! records (a game's input and messages) and their validation, the replicated component schema with its quantisation, snapshots, the
//! bit-packed delta format, the bincode codec for control messages and input datagrams, the
//! datagram packet framing, and the receiver's world of decoded snapshots. Nothing here knows any one
//! game: a game declares its schema in its own crate.

pub mod bits;
mod code;
pub mod codec;
pub mod delta;
#[cfg(test)]
mod fixture;
pub mod ids;
pub mod input;
pub mod json;
pub mod messages;
pub mod packet;
pub mod record;
pub mod schema;
pub mod snapshot;
pub mod world;

pub use ids::{NetId, PlayerId, RoomId, Tick};
pub use input::{Input, InputBatch, InputError};
pub use messages::*;
pub use record::{Messages, NoMessages, Record, RecordError, Values};
pub use schema::Schema;
pub use snapshot::{Capture, EntityRef, Head, Snapshot};

/// Bumped whenever the wire format changes in a way an older peer cannot read.
pub const PROTOCOL_VERSION: u16 = 8;

/// ALPN identifier of tickwire over QUIC; it carries the protocol generation too.
pub const ALPN: &[u8] = b"tickwire/1";
