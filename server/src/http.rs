//! The HTTP surface (axum): `GET /healthz`, `GET /metrics` (Prometheus text), `GET /api/rooms`
//! (JSON), and the Socket.IO layer on `/socket.io`.

use crate::lobby::LobbyHandle;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use socketioxide::layer::SocketIoLayer;
use tickwire_protocol::json::RoomJson;

#[derive(Clone)]
struct AppState {
    lobby: LobbyHandle,
    metrics: Option<PrometheusHandle>,
}

pub fn router(lobby: LobbyHandle, socketio: SocketIoLayer) -> Router {
    let state = AppState {
        lobby,
        metrics: crate::metrics::install(),
    };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api/rooms", get(rooms))
        .with_state(state)
        .layer(socketio)
}

async fn rooms(State(state): State<AppState>) -> impl IntoResponse {
    match state.lobby.list(None, false).await {
        Ok(rooms) => Json(rooms.iter().map(RoomJson::from).collect::<Vec<_>>()).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.message).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics are off").into_response(),
    }
}
