//! Transports: thin adapters between a wire and a [`crate::session::Session`].

pub mod quic;
pub mod socketio;

/// What both transports tell their players when the server stops.
pub const SHUTDOWN_REASON: &str = "server shutting down";
