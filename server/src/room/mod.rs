//! Rooms: [`sim::RoomSim`] is the synchronous, clock-free room (world, game, seats, replication);
//! [`task`] is the thin async shell that owns its timer and channels.

pub mod hosted;
pub mod inputs;
pub mod sim;
pub mod task;

pub use sim::RoomSim;
pub use task::{
    Admitted, RoomCommand, RoomHandle, RoomLink, RoomStatus, SnapshotPacket, SnapshotSink,
};
