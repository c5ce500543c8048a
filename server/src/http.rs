//! The HTTP surface (axum): `GET /healthz` and `GET /api/rooms`.

use crate::lobby::LobbyHandle;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde::Serialize;
use tickwire_protocol::RoomInfo;

/// A room as JSON clients see it (the contract's RoomInfo).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomJson {
    pub id: u32,
    pub name: String,
    pub mode: String,
    pub players: u8,
    pub max_players: u8,
    pub state: &'static str,
    pub private: bool,
}

impl From<&RoomInfo> for RoomJson {
    fn from(r: &RoomInfo) -> Self {
        RoomJson {
            id: r.id.0,
            name: r.name.clone(),
            mode: r.mode.clone(),
            players: r.players,
            max_players: r.max_players,
            state: r.state.as_str(),
            private: r.private,
        }
    }
}

pub fn router(lobby: LobbyHandle) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/rooms", get(rooms))
        .with_state(lobby)
}

async fn rooms(State(lobby): State<LobbyHandle>) -> impl IntoResponse {
    match lobby.list(None).await {
        Ok(rooms) => Json(rooms.iter().map(RoomJson::from).collect::<Vec<_>>()).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.message).into_response(),
    }
}
