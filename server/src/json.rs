//! The JSON face of the protocol, for Socket.IO clients and the HTTP API: requests parsed from
//! event payloads, replies, room events and full-view snapshots, in the shapes the contract in
//! DESIGN.md gives (camelCase, short snake_case error codes).

use glam::Vec2;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tickwire_protocol::{
    CreateRoom, ErrorBody, ErrorCode, Input, InputBatch, Joined, MatchResult, Reply, Request,
    RoomEvent, RoomId, RoomInfo, Snapshot, Tick,
};

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

pub fn error(e: &ErrorBody) -> Value {
    json!({"ok": false, "error": {"code": e.code.as_str(), "message": e.message}})
}

fn bad_request(what: impl std::fmt::Display) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, what.to_string())
}

/// A payload is either absent (null) or an object of this shape.
fn payload<T: for<'de> Deserialize<'de> + Default>(
    event: &str,
    data: Value,
) -> Result<T, ErrorBody> {
    if data.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(data).map_err(|e| bad_request(format!("{event}: {e}")))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    mode: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateArgs {
    name: String,
    mode: Option<String>,
    max_players: Option<u8>,
    private: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JoinArgs {
    room_id: Option<u32>,
    code: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct QuickArgs {
    mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadyArgs {
    ready: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatArgs {
    text: String,
}

/// The lobby and room calls a Socket.IO client can make, by event name.
pub const CALL_EVENTS: &[&str] = &[
    "rooms:list",
    "room:create",
    "room:join",
    "room:quick",
    "room:leave",
    "room:ready",
    "room:chat",
    "ping",
];

/// Parses a call event's payload into a request.
pub fn request(event: &str, data: Value) -> Result<Request, ErrorBody> {
    let default_mode = || tickwire_protocol::DEFAULT_MODE.to_owned();
    Ok(match event {
        "rooms:list" => Request::ListRooms {
            mode: payload::<ListArgs>(event, data)?.mode,
        },
        "room:create" => {
            if data.is_null() {
                return Err(bad_request(
                    "room:create needs {name, mode, maxPlayers, private}",
                ));
            }
            let a: CreateArgs = payload(event, data)?;
            Request::CreateRoom(CreateRoom {
                name: a.name,
                mode: a.mode.unwrap_or_else(default_mode),
                max_players: a.max_players.unwrap_or(0),
                private: a.private.unwrap_or(false),
            })
        }
        "room:join" => match payload::<JoinArgs>(event, data)? {
            JoinArgs {
                room_id: Some(id),
                code: None,
            } => Request::JoinRoom { room: RoomId(id) },
            JoinArgs {
                room_id: None,
                code: Some(_),
            } => {
                return Err(ErrorBody::new(
                    ErrorCode::NotFound,
                    "no private room has that code",
                ));
            }
            _ => return Err(bad_request("room:join needs {roomId} or {code}")),
        },
        "room:quick" => Request::QuickJoin {
            mode: payload::<QuickArgs>(event, data)?
                .mode
                .unwrap_or_else(default_mode),
        },
        "room:leave" => Request::LeaveRoom,
        "room:ready" => {
            let a: ReadyArgs =
                serde_json::from_value(data).map_err(|e| bad_request(format!("{event}: {e}")))?;
            Request::SetReady { ready: a.ready }
        }
        "room:chat" => {
            let a: ChatArgs =
                serde_json::from_value(data).map_err(|e| bad_request(format!("{event}: {e}")))?;
            Request::Chat { text: a.text }
        }
        "ping" => Request::Ping { client_time_us: 0 },
        other => return Err(bad_request(format!("unknown event {other}"))),
    })
}

fn joined(j: &Joined) -> Value {
    json!({
        "ok": true,
        "room": RoomJson::from(&j.room),
        "playerId": j.player.0,
        "entity": j.entity.0,
        "reconnectToken": j.reconnect_token,
    })
}

/// A reply as the `{ok: true, ...}` ack payload.
pub fn reply(r: &Reply) -> Value {
    match r {
        Reply::Welcome(w) => json!({
            "ok": true, "playerId": w.player.0, "protocol": w.protocol,
            "tickRate": w.tick_rate, "snapshotRate": w.snapshot_rate,
        }),
        Reply::Rooms(rooms) => json!({
            "ok": true,
            "rooms": rooms.iter().map(RoomJson::from).collect::<Vec<_>>(),
        }),
        Reply::Joined(j) => joined(j),
        Reply::Left | Reply::Done | Reply::Pong { .. } => json!({"ok": true}),
    }
}

fn result(r: &MatchResult) -> Value {
    json!({
        "matchNo": r.match_no,
        "winner": r.winner.map(|p| p.0),
        "players": r.players.iter().map(|p| json!({
            "playerId": p.player.0, "name": p.name, "kills": p.kills,
            "deaths": p.deaths, "score": p.score,
        })).collect::<Vec<_>>(),
    })
}

/// A room event as the payload of `room:event`: `{type, ...}`.
pub fn room_event(e: &RoomEvent) -> Value {
    match e {
        RoomEvent::PlayerJoined { player, name } => {
            json!({"type": "player_joined", "playerId": player.0, "name": name})
        }
        RoomEvent::PlayerLeft { player } => json!({"type": "player_left", "playerId": player.0}),
        RoomEvent::MatchStarted { match_no } => {
            json!({"type": "match_started", "matchNo": match_no})
        }
        RoomEvent::Kill { killer, victim } => json!({
            "type": "kill", "killer": killer.map(|k| k.0), "victim": victim.0,
        }),
        RoomEvent::MatchEnded(r) => {
            let mut v = result(r);
            v["type"] = json!("match_ended");
            v
        }
        RoomEvent::RoomClosed => json!({"type": "room_closed"}),
        RoomEvent::PlayerReady { player, ready } => {
            json!({"type": "player_ready", "playerId": player.0, "ready": ready})
        }
        RoomEvent::Chat { player, name, text } => {
            json!({"type": "chat", "playerId": player.0, "name": name, "text": text})
        }
    }
}

/// A player's full view as JSON (for `encoding: "json"` clients).
pub fn snapshot(s: &Snapshot, input_ack: u32) -> Value {
    let entities: Vec<Value> = s
        .entities
        .iter()
        .map(|e| {
            let (p, v) = (e.position(), e.velocity());
            json!({
                "id": e.id.0,
                "kind": e.kind.as_str(),
                "owner": e.owner.map(|o| o.0),
                "pos": [p.x, p.y],
                "vel": [v.x, v.y],
                "aim": e.aim_angle(),
                "health": e.health,
            })
        })
        .collect();
    json!({"tick": s.tick.0, "inputAck": input_ack, "entities": entities})
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InputJson {
    seq: u32,
    ack_tick: Option<u32>,
    #[serde(rename = "move")]
    move_dir: [f32; 2],
    aim: f32,
    #[serde(default)]
    buttons: u8,
}

/// Parses an `input` event's JSON payload (validation is the session's job).
pub fn input(data: Value) -> Result<InputBatch, ErrorBody> {
    let i: InputJson =
        serde_json::from_value(data).map_err(|e| bad_request(format!("input: {e}")))?;
    Ok(InputBatch {
        ack_tick: i.ack_tick.map(Tick),
        inputs: vec![Input {
            seq: i.seq,
            move_dir: Vec2::from_array(i.move_dir),
            aim: i.aim,
            buttons: i.buttons,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_payloads_parse_or_say_bad_request() {
        let r = request(
            "room:create",
            json!({"name": "x", "mode": "arena", "maxPlayers": 4, "private": false}),
        )
        .unwrap();
        assert!(matches!(r, Request::CreateRoom(c) if c.max_players == 4));
        assert!(matches!(
            request("room:join", json!({"roomId": 3})).unwrap(),
            Request::JoinRoom { room: RoomId(3) }
        ));
        assert!(matches!(
            request("rooms:list", Value::Null).unwrap(),
            Request::ListRooms { mode: None }
        ));
        for (event, bad) in [
            ("room:create", json!({"name": 5})),
            ("room:create", Value::Null),
            ("room:join", json!({"roomId": "three"})),
            ("room:join", json!({})),
            ("room:ready", json!({"ready": "yes"})),
            ("room:chat", json!([1, 2])),
            ("rooms:list", json!({"mode": "arena", "extra": 1})),
        ] {
            let e = request(event, bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{event}");
        }
        assert!(
            input(json!({"seq": 1, "ackTick": null, "move": [0.5, 0], "aim": 1.0, "buttons": 1}))
                .is_ok()
        );
        assert!(input(json!({"seq": -1, "move": [0, 0], "aim": 0})).is_err());
        assert!(input(json!({"seq": 1, "move": [0], "aim": 0})).is_err());
    }
}
