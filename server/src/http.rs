//! The HTTP surface (axum): the web client (`/`, [`crate::web`]), `GET /healthz`, `GET /metrics`
//! (Prometheus text), `GET /api/rooms` and `GET /api/modes` (JSON), and the Socket.IO layer on
//! `/socket.io`, all behind the origin check ([`crate::origin`]). The API routes spend their
//! caller's per-address allowance ([`Peers::api_request`]); `/healthz` and the page's files are
//! free.

use crate::cluster::Cluster;
use crate::modes::ModeInfo;
use crate::origin::Origins;
use crate::peers::Peers;
use crate::web;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use socketioxide::layer::SocketIoLayer;
use std::net::SocketAddr;
use std::sync::Arc;
use tickwire_protocol::json::RoomJson;

#[derive(Clone)]
struct AppState {
    cluster: Arc<Cluster>,
    peers: Arc<Peers>,
    metrics: Option<PrometheusHandle>,
    modes: Arc<Vec<ModeInfo>>,
}

pub fn router(
    cluster: Arc<Cluster>,
    peers: Arc<Peers>,
    socketio: SocketIoLayer,
    modes: Vec<ModeInfo>,
    origins: Origins,
) -> Router {
    let state = AppState {
        cluster,
        peers,
        metrics: crate::metrics::install(),
        modes: Arc::new(modes),
    };
    // The routes that spend the caller's per-address allowance.
    let limited = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/rooms", get(rooms))
        .route("/api/modes", get(modes_list))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            within_allowance,
        ));
    Router::new()
        // Named routes, not a catch-all: a catch-all GET route also takes Socket.IO's polling
        // POSTs out of the layer's hands ("Session ID unknown").
        .route("/", get(web::index))
        .route("/app.js", get(web::page_file))
        .route("/style.css", get(web::page_file))
        .route("/views/{file}", get(web::page_file))
        .route("/vendor/{file}", get(web::page_file))
        .route("/client/{file}", get(web::library_file))
        .route("/healthz", get(|| async { "ok" }))
        .merge(limited)
        .with_state(state)
        .layer(socketio)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(origins),
            crate::origin::check,
        ))
}

/// `429` when the caller's address has spent its API allowance, else the route.
async fn within_allowance(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if state.peers.api_request(peer.ip()) {
        return next.run(request).await;
    }
    crate::metrics::address_refused("http", "api");
    let refusal = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, "1")],
        "too many requests from this address; slow down",
    );
    refusal.into_response()
}

async fn rooms(State(state): State<AppState>) -> Response {
    let rooms = state.cluster.list(None, false);
    Json(rooms.iter().map(RoomJson::from).collect::<Vec<_>>()).into_response()
}

async fn modes_list(State(state): State<AppState>) -> Response {
    Json(state.modes.as_slice()).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics are off").into_response(),
    }
}
