//! The JSON face of the protocol, used over Socket.IO and by the HTTP API, in the shapes the
//! contract in DESIGN.md gives (camelCase fields, short snake_case error codes). Both ways: the
//! server parses requests and writes replies, events and full-view snapshots; a Rust Socket.IO
//! client writes requests and parses the rest.

use crate::ids::{PlayerId, RoomId, Tick};
use crate::schema::{Field, FieldType, Kind};
use crate::{
    CreateRoom, ErrorBody, ErrorCode, Input, InputBatch, Joined, MatchResult, Moved, NetId,
    NodeAddress, PlayerScore, Reply, Request, RoomEvent, RoomInfo, RoomState, Schema, Snapshot,
    Welcome,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A room as JSON clients see it (the contract's RoomInfo).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomJson {
    pub id: u32,
    pub name: String,
    pub mode: String,
    pub players: u8,
    pub max_players: u8,
    pub state: String,
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
            state: r.state.as_str().to_owned(),
            private: r.private,
        }
    }
}

pub fn error(e: &ErrorBody) -> Value {
    json!({"ok": false, "error": error_body(e)})
}

/// `{code, message}`.
fn error_body(e: &ErrorBody) -> Value {
    json!({"code": e.code.as_str(), "message": e.message})
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListArgs {
    mode: Option<String>,
    has_space: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateArgs {
    name: String,
    mode: Option<String>,
    max_players: Option<u8>,
    private: Option<bool>,
    bots: Option<u8>,
    fill_bots: Option<bool>,
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

/// `{roomId}` or `{code}`, exactly one of them.
fn room_or_code(event: &str, data: Value) -> Result<(Option<RoomId>, Option<String>), ErrorBody> {
    match payload::<JoinArgs>(event, data)? {
        JoinArgs {
            room_id: Some(id),
            code: None,
        } => Ok((Some(RoomId(id)), None)),
        JoinArgs {
            room_id: None,
            code: Some(code),
        } => Ok((None, Some(code))),
        _ => Err(bad_request(format!("{event} needs {{roomId}} or {{code}}"))),
    }
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
    "room:start",
    "room:spectate",
    MESSAGE_EVENT,
    "ping",
];

/// The event that carries a game message to the room: `{name, values}` (read by the room's
/// schema with [`message_from_json`], so not by [`request`]).
pub const MESSAGE_EVENT: &str = "room:message";

/// Parses a call event's payload into a request.
pub fn request(event: &str, data: Value) -> Result<Request, ErrorBody> {
    Ok(match event {
        "rooms:list" => {
            let a: ListArgs = payload(event, data)?;
            Request::ListRooms {
                mode: a.mode,
                open_only: a.has_space.unwrap_or(false),
            }
        }
        "room:create" => {
            if data.is_null() {
                return Err(bad_request(
                    "room:create needs {name, mode, maxPlayers, private}",
                ));
            }
            let a: CreateArgs = payload(event, data)?;
            Request::CreateRoom(CreateRoom {
                name: a.name,
                mode: a.mode.unwrap_or_default(),
                max_players: a.max_players.unwrap_or(0),
                private: a.private.unwrap_or(false),
                bots: a.bots.unwrap_or(0),
                fill_bots: a.fill_bots.unwrap_or(false),
            })
        }
        "room:join" => match room_or_code(event, data)? {
            (Some(room), None) => Request::JoinRoom { room },
            (_, code) => Request::JoinByCode {
                code: code.unwrap_or_default(),
            },
        },
        "room:quick" => Request::QuickJoin {
            mode: payload::<QuickArgs>(event, data)?.mode.unwrap_or_default(),
        },
        "room:spectate" => {
            let (room, code) = room_or_code(event, data)?;
            Request::Spectate { room, code }
        }
        "room:leave" => Request::LeaveRoom,
        "room:start" => Request::StartMatch,
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

/// The event name and payload a client sends for a request (not `Hello`: over Socket.IO the
/// handshake's `auth` says hello).
pub fn request_event(request: &Request) -> Option<(&'static str, Value)> {
    Some(match request {
        Request::Hello { .. } => return None,
        Request::ListRooms { mode, open_only } => {
            ("rooms:list", json!({"mode": mode, "hasSpace": open_only}))
        }
        Request::JoinByCode { code } => ("room:join", json!({"code": code})),
        Request::StartMatch => ("room:start", Value::Null),
        Request::Spectate { room, code } => (
            "room:spectate",
            match (room, code) {
                (Some(r), _) => json!({"roomId": r.0}),
                (None, c) => json!({"code": c}),
            },
        ),
        Request::CreateRoom(c) => (
            "room:create",
            json!({
                "name": c.name, "mode": c.mode, "maxPlayers": c.max_players,
                "private": c.private, "bots": c.bots, "fillBots": c.fill_bots,
            }),
        ),
        Request::JoinRoom { room } => ("room:join", json!({"roomId": room.0})),
        Request::QuickJoin { mode } => ("room:quick", json!({"mode": mode})),
        Request::LeaveRoom => ("room:leave", Value::Null),
        Request::Ping { .. } => ("ping", Value::Null),
        Request::SetReady { ready } => ("room:ready", json!({"ready": ready})),
        Request::Chat { text } => ("room:chat", json!({"text": text})),
        // Named by the schema's kinds: see [`message_payload`].
        Request::Message { .. } => return None,
    })
}

fn malformed(what: &str, e: impl std::fmt::Display) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, format!("malformed {what}: {e}"))
}

impl TryFrom<RoomJson> for RoomInfo {
    type Error = ErrorBody;

    fn try_from(r: RoomJson) -> Result<RoomInfo, ErrorBody> {
        Ok(RoomInfo {
            id: RoomId(r.id),
            name: r.name,
            mode: r.mode,
            players: r.players,
            max_players: r.max_players,
            state: RoomState::parse(&r.state)
                .ok_or_else(|| malformed("room", format!("state {:?}", r.state)))?,
            private: r.private,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorJson {
    code: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinedJson {
    room: RoomJson,
    player_id: u32,
    entity: u32,
    reconnect_token: String,
    code: Option<String>,
    #[serde(default)]
    schema: Option<Schema>,
    #[serde(default)]
    schema_hash: String,
}

impl TryFrom<JoinedJson> for Joined {
    type Error = ErrorBody;

    fn try_from(j: JoinedJson) -> Result<Joined, ErrorBody> {
        Ok(Joined {
            room: j.room.try_into()?,
            player: PlayerId(j.player_id),
            entity: NetId(j.entity),
            reconnect_token: j.reconnect_token,
            code: j.code,
            schema: j.schema.map(std::sync::Arc::new),
            schema_hash: j.schema_hash,
        })
    }
}

#[derive(Deserialize)]
struct RoomsJson {
    rooms: Vec<RoomJson>,
}

/// Reads an ack: `{ok: false, error}` becomes the error; `{ok: true, ...}` the reply `request`
/// expects.
pub fn parse_reply(request: &Request, ack: Value) -> Result<Reply, ErrorBody> {
    if ack.get("ok") != Some(&Value::Bool(true)) {
        return Err(parse_error(ack.get("error").cloned())?);
    }
    if let Some(moved) = ack.get("moved") {
        let m: MovedJson =
            serde_json::from_value(moved.clone()).map_err(|e| malformed("moved", e))?;
        return Ok(Reply::Moved(m.into()));
    }
    Ok(match request {
        Request::Hello { .. } => return Err(malformed("ack", "hello has no ack")),
        Request::ListRooms { .. } => {
            let r: RoomsJson = serde_json::from_value(ack).map_err(|e| malformed("rooms", e))?;
            Reply::Rooms(
                r.rooms
                    .into_iter()
                    .map(RoomInfo::try_from)
                    .collect::<Result<_, _>>()?,
            )
        }
        Request::CreateRoom(_)
        | Request::JoinRoom { .. }
        | Request::JoinByCode { .. }
        | Request::Spectate { .. }
        | Request::QuickJoin { .. } => {
            let j: JoinedJson = serde_json::from_value(ack).map_err(|e| malformed("joined", e))?;
            Reply::Joined(j.try_into()?)
        }
        Request::LeaveRoom => Reply::Left,
        Request::Ping { client_time_us } => Reply::Pong {
            client_time_us: *client_time_us,
        },
        Request::SetReady { .. }
        | Request::Chat { .. }
        | Request::StartMatch
        | Request::Message { .. } => Reply::Done,
    })
}

/// `{code, message}` as an error; an unknown code reads as `internal`.
fn parse_error(v: Option<Value>) -> Result<ErrorBody, ErrorBody> {
    let e: ErrorJson = v
        .ok_or_else(|| malformed("ack", "neither ok nor error"))
        .and_then(|e| serde_json::from_value(e).map_err(|e| malformed("error", e)))?;
    let code = ErrorCode::parse(&e.code).unwrap_or(ErrorCode::Internal);
    Ok(ErrorBody::new(code, e.message))
}

/// [`Moved`] as JSON clients see it: `{host, quicPort, httpPort, certSha256, token,
/// expiresMs}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MovedJson {
    host: Option<String>,
    quic_port: u16,
    http_port: u16,
    cert_sha256: String,
    token: String,
    expires_ms: u32,
}

impl From<&Moved> for MovedJson {
    fn from(m: &Moved) -> Self {
        MovedJson {
            host: m.node.host.clone(),
            quic_port: m.node.quic_port,
            http_port: m.node.http_port,
            cert_sha256: m.node.cert_sha256.clone(),
            token: m.token.clone(),
            expires_ms: m.expires_ms,
        }
    }
}

impl From<MovedJson> for Moved {
    fn from(m: MovedJson) -> Self {
        Moved {
            node: NodeAddress {
                host: m.host,
                quic_port: m.quic_port,
                http_port: m.http_port,
                cert_sha256: m.cert_sha256,
            },
            token: m.token,
            expires_ms: m.expires_ms,
        }
    }
}

/// The `welcome` event's payload.
pub fn welcome(w: &Welcome) -> Value {
    let mut v = json!({
        "playerId": w.player.0, "protocol": w.protocol,
        "tickRate": w.tick_rate, "snapshotRate": w.snapshot_rate,
    });
    if let Some(j) = &w.resumed {
        let mut resumed = joined(j);
        if let Some(o) = resumed.as_object_mut() {
            o.remove("ok");
        }
        v["resumed"] = resumed;
    }
    if let Some(lost) = &w.lost {
        v["lost"] = error_body(lost);
    }
    v
}

pub fn parse_welcome(v: Value) -> Result<Welcome, ErrorBody> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct W {
        player_id: u32,
        protocol: u16,
        tick_rate: u16,
        snapshot_rate: u16,
        resumed: Option<JoinedJson>,
        lost: Option<Value>,
    }
    let w: W = serde_json::from_value(v).map_err(|e| malformed("welcome", e))?;
    let lost = w.lost.map(|e| parse_error(Some(e))).transpose()?;
    Ok(Welcome {
        player: PlayerId(w.player_id),
        protocol: w.protocol,
        tick_rate: w.tick_rate,
        snapshot_rate: w.snapshot_rate,
        resumed: w.resumed.map(Joined::try_from).transpose()?,
        lost,
    })
}

/// Reads a `room:event` payload; a game message is read by the room's schema (without one it
/// is malformed).
pub fn parse_room_event(v: Value, schema: Option<&Schema>) -> Result<RoomEvent, ErrorBody> {
    if v.get("type").and_then(Value::as_str) == Some("message") {
        let schema = schema.ok_or_else(|| malformed("room event", "a message needs the schema"))?;
        let (kind, slots) = message_from_json(&schema.messages().to_player, &v)?;
        return Ok(RoomEvent::Message { kind, slots });
    }
    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum E {
        #[serde(rename_all = "camelCase")]
        PlayerJoined {
            player_id: u32,
            name: String,
        },
        #[serde(rename_all = "camelCase")]
        PlayerLeft {
            player_id: u32,
        },
        #[serde(rename_all = "camelCase")]
        MatchStarted {
            match_no: u32,
        },
        #[serde(rename_all = "camelCase")]
        MatchEnded {
            match_no: u32,
            winner: Option<u32>,
            players: Vec<S>,
        },
        RoomClosed,
        SeatTaken,
        #[serde(rename_all = "camelCase")]
        PlayerDisconnected {
            player_id: u32,
            grace_secs: u32,
        },
        #[serde(rename_all = "camelCase")]
        PlayerReady {
            player_id: u32,
            ready: bool,
        },
        #[serde(rename_all = "camelCase")]
        Chat {
            player_id: u32,
            name: String,
            text: String,
        },
        State {
            state: String,
            seconds: u32,
        },
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct S {
        player_id: u32,
        name: String,
        score: i32,
        #[serde(default)]
        stats: BTreeMap<String, i64>,
    }
    let e: E = serde_json::from_value(v).map_err(|e| malformed("room event", e))?;
    Ok(match e {
        E::PlayerJoined { player_id, name } => RoomEvent::PlayerJoined {
            player: PlayerId(player_id),
            name,
        },
        E::PlayerLeft { player_id } => RoomEvent::PlayerLeft {
            player: PlayerId(player_id),
        },
        E::MatchStarted { match_no } => RoomEvent::MatchStarted { match_no },
        E::MatchEnded {
            match_no,
            winner,
            players,
        } => RoomEvent::MatchEnded(MatchResult {
            match_no,
            winner: winner.map(PlayerId),
            players: players
                .into_iter()
                .map(|p| PlayerScore {
                    player: PlayerId(p.player_id),
                    name: p.name,
                    score: p.score,
                    stats: p.stats,
                })
                .collect(),
        }),
        E::RoomClosed => RoomEvent::RoomClosed,
        E::SeatTaken => RoomEvent::SeatTaken,
        E::PlayerDisconnected {
            player_id,
            grace_secs,
        } => RoomEvent::PlayerDisconnected {
            player: PlayerId(player_id),
            grace_secs,
        },
        E::PlayerReady { player_id, ready } => RoomEvent::PlayerReady {
            player: PlayerId(player_id),
            ready,
        },
        E::Chat {
            player_id,
            name,
            text,
        } => RoomEvent::Chat {
            player: PlayerId(player_id),
            name,
            text,
        },
        E::State { state, seconds } => RoomEvent::StateChanged {
            state: RoomState::parse(&state)
                .ok_or_else(|| malformed("room event", format!("state {state:?}")))?,
            seconds,
        },
    })
}

fn joined(j: &Joined) -> Value {
    json!({
        "ok": true,
        "room": RoomJson::from(&j.room),
        "playerId": j.player.0,
        "entity": j.entity.0,
        "reconnectToken": j.reconnect_token,
        "code": j.code,
        "schema": j.schema,
        "schemaHash": j.schema_hash,
    })
}

/// A reply as the `{ok: true, ...}` ack payload.
pub fn reply(r: &Reply) -> Value {
    match r {
        Reply::Welcome(w) => {
            let mut v = welcome(w);
            v["ok"] = json!(true);
            v
        }
        Reply::Rooms(rooms) => json!({
            "ok": true,
            "rooms": rooms.iter().map(RoomJson::from).collect::<Vec<_>>(),
        }),
        Reply::Joined(j) => joined(j),
        Reply::Left | Reply::Done | Reply::Pong { .. } => json!({"ok": true}),
        Reply::Moved(m) => json!({"ok": true, "moved": MovedJson::from(m)}),
    }
}

fn result(r: &MatchResult) -> Value {
    json!({
        "matchNo": r.match_no,
        "winner": r.winner.map(|p| p.0),
        "players": r.players.iter().map(|p| json!({
            "playerId": p.player.0, "name": p.name, "score": p.score, "stats": p.stats,
        })).collect::<Vec<_>>(),
    })
}

/// A room event as the payload of `room:event`: `{type, ...}`. A game message is
/// `{type: "message", name, values}`, named by the room's `schema`.
pub fn room_event(e: &RoomEvent, schema: &Schema) -> Value {
    match e {
        RoomEvent::Message { kind, slots } => {
            let mut v = message_json(&schema.messages().to_player, *kind, slots);
            v["type"] = json!("message");
            v
        }
        RoomEvent::PlayerJoined { player, name } => {
            json!({"type": "player_joined", "playerId": player.0, "name": name})
        }
        RoomEvent::PlayerLeft { player } => json!({"type": "player_left", "playerId": player.0}),
        RoomEvent::MatchStarted { match_no } => {
            json!({"type": "match_started", "matchNo": match_no})
        }
        RoomEvent::MatchEnded(r) => {
            let mut v = result(r);
            v["type"] = json!("match_ended");
            v
        }
        RoomEvent::RoomClosed => json!({"type": "room_closed"}),
        RoomEvent::SeatTaken => json!({"type": "seat_taken"}),
        RoomEvent::PlayerDisconnected { player, grace_secs } => json!({
            "type": "player_disconnected", "playerId": player.0, "graceSecs": grace_secs,
        }),
        RoomEvent::PlayerReady { player, ready } => {
            json!({"type": "player_ready", "playerId": player.0, "ready": ready})
        }
        RoomEvent::Chat { player, name, text } => {
            json!({"type": "chat", "playerId": player.0, "name": name, "text": text})
        }
        RoomEvent::StateChanged { state, seconds } => {
            json!({"type": "state", "state": state.as_str(), "seconds": seconds})
        }
    }
}

/// A player's full view as JSON (for `encoding: "json"` clients): each entity's id, kind name,
/// owner and every field of its kind by name, dequantised (a field of several dims is an
/// array; an enum is its variant's name, an entity reference its id or null).
pub fn snapshot(schema: &Schema, s: &Snapshot, input_ack: u32) -> Value {
    let entities: Vec<Value> = s
        .iter()
        .filter_map(|e| {
            let kind = schema.kind(e.kind)?;
            let mut out = serde_json::Map::new();
            out.insert("id".into(), json!(e.id.0));
            out.insert("kind".into(), json!(kind.name));
            out.insert("owner".into(), json!(e.owner.map(|o| o.0)));
            record_into(&mut out, &kind.fields, e.values);
            Some(Value::Object(out))
        })
        .collect();
    json!({"tick": s.tick.0, "inputAck": input_ack, "entities": entities})
}

fn field_json(ty: &FieldType, q: u32) -> Value {
    match ty {
        FieldType::Int { min, .. } => json!(min + q as i64),
        FieldType::Enum { variants } => json!(variants.get(q as usize)),
        FieldType::Bool => json!(q != 0),
        FieldType::Entity => json!((q != 0).then_some(q)),
        FieldType::Fixed { .. } | FieldType::Angle { .. } => json!(ty.dequantise(q)),
    }
}

/// Writes each field of a record or entity by name into `out`, dequantised (a field of several
/// dims is an array; an enum is its variant's name, an entity reference its id or null).
fn record_into(out: &mut serde_json::Map<String, Value>, fields: &[Field], slots: &[u32]) {
    let mut at = slots.iter();
    for field in fields {
        let values: Vec<Value> = at
            .by_ref()
            .take(field.dims as usize)
            .map(|&q| field_json(&field.ty, q))
            .collect();
        let value = if field.dims == 1 {
            values.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(values)
        };
        out.insert(field.name.clone(), value);
    }
}

/// One component from JSON, quantised strictly: numbers for real and whole fields (a whole
/// field refuses a fraction), `true`/`false` (or 1/0) for a bool, a variant's name (or index)
/// for an enum, an id or null for an entity.
fn slot_from_json(ty: &FieldType, v: &Value) -> Option<u32> {
    match (ty, v) {
        (FieldType::Bool, Value::Bool(b)) => Some(*b as u32),
        (FieldType::Enum { variants }, Value::String(name)) => {
            variants.iter().position(|n| n == name).map(|i| i as u32)
        }
        (FieldType::Entity, Value::Null) => Some(0),
        (FieldType::Entity, v) => v.as_u64().and_then(|id| u32::try_from(id).ok()),
        (_, Value::Number(n)) => {
            let x = n.as_f64()?;
            let whole = !matches!(ty, FieldType::Fixed { .. } | FieldType::Angle { .. });
            if whole && x.fract() != 0.0 {
                return None;
            }
            ty.try_quantise(x as f32).ok()
        }
        _ => None,
    }
}

/// A record's slots from a JSON object holding exactly its fields by name.
fn record_from_json(
    what: &str,
    fields: &[Field],
    object: &serde_json::Map<String, Value>,
) -> Result<Vec<u32>, ErrorBody> {
    if let Some(k) = object
        .keys()
        .find(|k| !fields.iter().any(|f| &f.name == *k))
    {
        return Err(bad_request(format!("{what}: unknown field {k:?}")));
    }
    let mut slots = Vec::with_capacity(crate::record::slot_count(fields));
    for f in fields {
        let v = object
            .get(&f.name)
            .ok_or_else(|| bad_request(format!("{what}: missing field {:?}", f.name)))?;
        let bad = || bad_request(format!("{what}.{}: not a value it declares", f.name));
        match (f.dims, v) {
            (1, v) => slots.push(slot_from_json(&f.ty, v).ok_or_else(bad)?),
            (dims, Value::Array(items)) if items.len() == dims as usize => {
                for item in items {
                    slots.push(slot_from_json(&f.ty, item).ok_or_else(bad)?);
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok(slots)
}

/// Parses an `input` event's JSON payload, `{seq, ackTick, ...}` with every field of the room's
/// declared input by name, each quantised strictly (out of range or not a number: refused).
/// Without a schema (the sender is in no room) only `seq` and `ackTick` are read.
pub fn input(data: Value, schema: Option<&Schema>) -> Result<InputBatch, ErrorBody> {
    let Value::Object(mut object) = data else {
        return Err(bad_request("input: expected an object"));
    };
    let seq = object
        .remove("seq")
        .and_then(|v| v.as_u64())
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| bad_request("input: seq must be a whole number"))?;
    let ack_tick = match object.remove("ackTick") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Tick(
            v.as_u64()
                .and_then(|t| u32::try_from(t).ok())
                .ok_or_else(|| bad_request("input: ackTick must be a tick or null"))?,
        )),
    };
    let slots = match schema {
        Some(schema) => record_from_json("input", schema.input(), &object)?,
        None => Vec::new(),
    };
    Ok(InputBatch {
        ack_tick,
        inputs: vec![Input { seq, slots }],
    })
}

/// A game message as JSON: `{name, values: {...}}`.
pub fn message_json(kinds: &[Kind], kind: u16, slots: &[u32]) -> Value {
    let Some(k) = kinds.get(kind as usize) else {
        return json!({"name": null, "values": {}});
    };
    let mut values = serde_json::Map::new();
    record_into(&mut values, &k.fields, slots);
    json!({"name": k.name, "values": values})
}

/// Reads `{name, values}` as a message of one of `kinds` (values may be left out for a kind
/// with no fields).
pub fn message_from_json(kinds: &[Kind], v: &Value) -> Result<(u16, Vec<u32>), ErrorBody> {
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("message: name must be a string"))?;
    let kind = kinds
        .iter()
        .position(|k| k.name == name)
        .ok_or_else(|| bad_request(format!("message: no message {name:?} in this game")))?;
    let empty = serde_json::Map::new();
    let values = match v.get("values") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => return Err(bad_request("message: values must be an object")),
    };
    let slots = record_from_json(&format!("message {name}"), &kinds[kind].fields, values)?;
    Ok((kind as u16, slots))
}

/// The `room:message` payload for a message to the room.
pub fn message_payload(schema: &Schema, kind: u16, slots: &[u32]) -> Value {
    message_json(&schema.messages().to_room, kind, slots)
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
            Request::ListRooms {
                mode: None,
                open_only: false
            }
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
    }

    #[test]
    fn inputs_and_messages_are_read_by_the_schema_and_refused_outside_it() {
        let schema = crate::fixture::schema();
        let ok = input(
            json!({"seq": 1, "ackTick": null, "move": [0.5, 0], "aim": 1.0, "fire": true}),
            Some(&schema),
        )
        .unwrap();
        assert_eq!(ok.inputs[0].slots.len(), 4);
        for bad in [
            json!({"seq": -1, "move": [0, 0], "aim": 0, "fire": false}),
            json!({"seq": 1, "move": [0], "aim": 0, "fire": false}),
            json!({"seq": 1, "move": [2, 0], "aim": 0, "fire": false}),
            json!({"seq": 1, "move": [0, 0], "aim": "x", "fire": false}),
            json!({"seq": 1, "move": [0, 0], "aim": 0}),
            json!({"seq": 1, "move": [0, 0], "aim": 0, "fire": false, "jump": 1}),
            json!([1, 2]),
        ] {
            assert_eq!(
                input(bad.clone(), Some(&schema)).unwrap_err().code,
                ErrorCode::BadRequest,
                "{bad}"
            );
        }
        let to_room = &schema.messages().to_room;
        let (kind, slots) = message_from_json(
            to_room,
            &json!({"name": "buy", "values": {"item": "shield", "count": 2}}),
        )
        .unwrap();
        assert_eq!(
            message_json(to_room, kind, &slots)["values"]["item"],
            "shield"
        );
        for bad in [
            json!({"name": "sell", "values": {}}),
            json!({"name": "buy", "values": {"item": "tank", "count": 1}}),
            json!({"name": "buy", "values": {"item": "shield", "count": 1.5}}),
            json!({"name": "buy"}),
        ] {
            assert!(message_from_json(to_room, &bad).is_err(), "{bad}");
        }
        let told = RoomEvent::Message {
            kind: 0,
            slots: vec![1],
        };
        assert_eq!(
            parse_room_event(room_event(&told, &schema), Some(&schema)).unwrap(),
            told
        );
        assert!(parse_room_event(room_event(&told, &schema), None).is_err());
    }

    #[test]
    fn what_the_server_writes_a_client_reads_back() {
        let info = RoomInfo {
            id: RoomId(4),
            name: "r".into(),
            mode: "arena".into(),
            players: 2,
            max_players: 8,
            state: RoomState::Playing,
            private: false,
        };
        let j = Joined {
            room: info.clone(),
            player: PlayerId(9),
            entity: NetId(3),
            reconnect_token: "t".into(),
            code: Some("ABCDEF".into()),
            schema: Some(crate::fixture::schema()),
            schema_hash: crate::fixture::schema().hash(),
        };
        let create = Request::CreateRoom(CreateRoom {
            name: "r".into(),
            mode: "arena".into(),
            max_players: 8,
            private: false,
            bots: 2,
            fill_bots: true,
        });
        let (event, payload) = request_event(&create).unwrap();
        assert_eq!(request(event, payload).unwrap(), create);
        assert_eq!(
            parse_reply(&create, reply(&Reply::Joined(j.clone()))).unwrap(),
            Reply::Joined(j)
        );
        let list = Request::ListRooms {
            mode: None,
            open_only: true,
        };
        assert_eq!(
            parse_reply(&list, reply(&Reply::Rooms(vec![info.clone()]))).unwrap(),
            Reply::Rooms(vec![info])
        );
        let err = ErrorBody::new(ErrorCode::RoomFull, "full");
        assert_eq!(parse_reply(&list, error(&err)), Err(err));
        let events = [
            RoomEvent::PlayerJoined {
                player: PlayerId(1),
                name: "a".into(),
            },
            RoomEvent::MatchEnded(MatchResult {
                match_no: 3,
                winner: Some(PlayerId(1)),
                players: vec![
                    PlayerScore::new(PlayerId(1), "a", 10)
                        .with("kills", 1)
                        .with("deaths", 0),
                    PlayerScore::new(PlayerId(2), "b", -1),
                ],
            }),
            RoomEvent::RoomClosed,
            RoomEvent::SeatTaken,
            RoomEvent::PlayerDisconnected {
                player: PlayerId(4),
                grace_secs: 30,
            },
            RoomEvent::StateChanged {
                state: RoomState::Countdown,
                seconds: 3,
            },
            RoomEvent::Chat {
                player: PlayerId(1),
                name: "a".into(),
                text: "hi".into(),
            },
        ];
        let schema = crate::fixture::schema();
        for e in events {
            assert_eq!(parse_room_event(room_event(&e, &schema), None).unwrap(), e);
        }
    }

    #[test]
    fn a_move_and_a_lost_seat_read_back_as_they_were_sent() {
        let moved = Reply::Moved(Moved {
            node: NodeAddress {
                host: Some("game-2.example".into()),
                quic_port: 4434,
                http_port: 8080,
                cert_sha256: "ab".repeat(32),
            },
            token: "0a1b2c3d.secret".into(),
            expires_ms: 10_000,
        });
        let join = Request::JoinRoom { room: RoomId(3) };
        assert_eq!(parse_reply(&join, reply(&moved)).unwrap(), moved);
        let welcome = Welcome {
            player: PlayerId(4),
            protocol: crate::PROTOCOL_VERSION,
            tick_rate: 60,
            snapshot_rate: 30,
            resumed: None,
            lost: Some(ErrorBody::new(ErrorCode::RoomLost, "gone")),
        };
        let back = parse_welcome(self::welcome(&welcome)).unwrap();
        assert_eq!(back, welcome);
        assert_eq!(self::welcome(&welcome)["lost"]["code"], "room_lost");
    }
}
