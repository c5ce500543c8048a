//! Prometheus metrics on `GET /metrics`.
//!
//! The `metrics` facade needs one global recorder per process, so the first server started in a
//! process installs it and later ones (tests run several) share it: figures are per process.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const PLAYERS_CONNECTED: &str = "tickwire_players_connected";
pub const TICK_SECONDS: &str = "tickwire_tick_duration_seconds";
pub const MISSED_TICKS: &str = "tickwire_missed_ticks_total";
pub const BYTES_SENT: &str = "tickwire_bytes_sent_total";
pub const SNAPSHOTS_SENT: &str = "tickwire_snapshots_sent_total";
pub const SNAPSHOTS_DROPPED: &str = "tickwire_snapshots_dropped_total";
pub const ROOMS: &str = "tickwire_rooms";
pub const DISCONNECTED_SLOW: &str = "tickwire_slow_disconnects_total";
/// Connections cut off for flooding (each counted once), by transport.
pub const FLOOD_DISCONNECTS: &str = "tickwire_flood_disconnects_total";
/// Socket.IO events no handler knows, by transport.
pub const UNKNOWN_EVENTS: &str = "tickwire_unknown_events_total";
/// Connections and calls refused for their address's allowance (`reason`: connections,
/// handshakes, addresses, calls, codes), by transport.
pub const ADDRESS_REFUSALS: &str = "tickwire_address_refusals_total";
/// HTTP requests from a web page whose origin may not use this server (`--cors-origin`).
pub const ORIGIN_REFUSALS: &str = "tickwire_origin_refusals_total";
/// Reads held back because a connection or its address sent more than its byte allowance.
pub const READS_THROTTLED: &str = "tickwire_reads_throttled_total";
/// Rooms (by mode) and the lobby (`kind="lobby"`) that stopped making progress, per episode.
pub const STALLS: &str = "tickwire_stalls_total";
/// How many of them are stalled now.
pub const STALLED: &str = "tickwire_stalled";

/// Inputs refused (`reason`: malformed, too_many, wrong_size, out_of_range), by transport.
pub const INPUTS_REFUSED: &str = "tickwire_inputs_refused_total";
/// Game messages refused (`code`: the error code the sender got), by transport.
pub const MESSAGES_REFUSED: &str = "tickwire_messages_refused_total";

/// Transport label values.
/// Rounds of the shared directory (`--redis`) that could not reach Redis.
pub const DIRECTORY_ERRORS: &str = "tickwire_directory_errors_total";
pub const QUIC: &str = "quic";
pub const SOCKETIO: &str = "socketio";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process) and returns the handle that renders the text.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            // Tick durations: 25 µs to 50 ms, finer where a healthy tick lives.
            let buckets = [
                0.000_025, 0.000_05, 0.000_1, 0.000_175, 0.000_25, 0.000_375, 0.000_5, 0.000_75,
                0.001, 0.001_5, 0.002, 0.003, 0.004, 0.006, 0.008, 0.012, 0.016, 0.025, 0.05,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(TICK_SECONDS.into()), &buckets)
                .ok()?
                .install_recorder();
            match recorder {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!("metrics are off: {e}");
                    None
                }
            }
        })
        .clone()
}

/// Counts a connected player for as long as it lives.
pub struct ConnectedPlayer(metrics::Gauge);

impl ConnectedPlayer {
    pub fn new(transport: &'static str) -> ConnectedPlayer {
        let g = metrics::gauge!(PLAYERS_CONNECTED, "transport" => transport);
        g.increment(1.0);
        ConnectedPlayer(g)
    }
}

impl Drop for ConnectedPlayer {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Per-transport send counters, registered once per connection.
#[derive(Clone)]
pub struct SendCounters {
    pub bytes: metrics::Counter,
    pub snapshots: metrics::Counter,
    pub dropped: metrics::Counter,
}

impl SendCounters {
    pub fn new(transport: &'static str) -> SendCounters {
        SendCounters {
            bytes: metrics::counter!(BYTES_SENT, "transport" => transport),
            snapshots: metrics::counter!(SNAPSHOTS_SENT, "transport" => transport),
            dropped: metrics::counter!(SNAPSHOTS_DROPPED, "transport" => transport),
        }
    }
}

pub fn input_refused(transport: &'static str, reason: &'static str) {
    metrics::counter!(INPUTS_REFUSED, "transport" => transport, "reason" => reason).increment(1);
}

/// A connection cut off for flooding; called once per connection.
pub fn flood_disconnect(transport: &'static str) {
    metrics::counter!(FLOOD_DISCONNECTS, "transport" => transport).increment(1);
}

pub fn unknown_event(transport: &'static str) {
    metrics::counter!(UNKNOWN_EVENTS, "transport" => transport).increment(1);
}

pub fn message_refused(transport: &'static str, code: tickwire_protocol::ErrorCode) {
    metrics::counter!(MESSAGES_REFUSED, "transport" => transport, "code" => code.as_str())
        .increment(1);
}

pub fn address_refused(transport: &'static str, reason: &'static str) {
    metrics::counter!(ADDRESS_REFUSALS, "transport" => transport, "reason" => reason).increment(1);
}

pub fn origin_refused() {
    metrics::counter!(ORIGIN_REFUSALS).increment(1);
}

pub fn read_throttled(transport: &'static str) {
    metrics::counter!(READS_THROTTLED, "transport" => transport).increment(1);
}

pub fn directory_error() {
    metrics::counter!(DIRECTORY_ERRORS).increment(1);
}
