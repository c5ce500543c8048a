//! Transports: thin adapters between a wire and a [`crate::session::Session`].

pub mod quic;
pub mod socketio;
