//! The HTTP surface (axum): `GET /healthz`, `GET /metrics` (Prometheus text), `GET /api/rooms`
//! (JSON), and the Socket.IO layer on `/socket.io`. The API routes spend their caller's
//! per-address allowance ([`Peers::api_request`]); `/healthz` is free, for health checks.

use crate::lobby::LobbyHandle;
use crate::peers::Peers;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use socketioxide::layer::SocketIoLayer;
use std::net::SocketAddr;
use std::sync::Arc;
use tickwire_protocol::json::RoomJson;

#[derive(Clone)]
struct AppState {
    lobby: LobbyHandle,
    peers: Arc<Peers>,
    metrics: Option<PrometheusHandle>,
}

pub fn router(lobby: LobbyHandle, peers: Arc<Peers>, socketio: SocketIoLayer) -> Router {
    let state = AppState {
        lobby,
        peers,
        metrics: crate::metrics::install(),
    };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api/rooms", get(rooms))
        .with_state(state)
        .layer(socketio)
}

/// `429` when the caller's address has spent its API allowance.
fn over_allowance(state: &AppState, peer: SocketAddr) -> Option<Response> {
    if state.peers.api_request(peer.ip()) {
        return None;
    }
    crate::metrics::address_refused("http", "api");
    let refusal = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, "1")],
        "too many requests from this address; slow down",
    );
    Some(refusal.into_response())
}

async fn rooms(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if let Some(refused) = over_allowance(&state, peer) {
        return refused;
    }
    match state.lobby.list(None, false).await {
        Ok(rooms) => Json(rooms.iter().map(RoomJson::from).collect::<Vec<_>>()).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.message).into_response(),
    }
}

async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if let Some(refused) = over_allowance(&state, peer) {
        return refused;
    }
    match state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics are off").into_response(),
    }
}
