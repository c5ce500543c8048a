//! The seed corpus: real messages of each kind the targets read, written by `cargo run --bin
//! seeds` into `fuzz/corpus/<target>/` (committed). The fuzzer starts from these so it spends
//! its time past the first bytes of each format.

use crate::targets::{baseline, schemas};
use serde_json::json;
use tickwire_protocol::codec;
use tickwire_protocol::{
    ClientFrame, CreateRoom, ErrorBody, ErrorCode, Input, InputBatch, PROTOCOL_VERSION, Reply,
    Request, RoomEvent, RoomId, ServerFrame, Tick, delta, json as wire_json, packet,
};

/// Seeds as (target, file name, bytes).
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let requests = [
        Request::Hello {
            protocol: PROTOCOL_VERSION,
            name: "ada".into(),
            token: Some("0123456789abcdef".into()),
            schemas: vec!["00112233445566ff".into()],
            ticket: Some("eyJhbGciOiJIUzI1NiJ9.e30.c2ln".into()),
        },
        Request::ListRooms {
            mode: Some("arena".into()),
            open_only: true,
        },
        Request::CreateRoom(CreateRoom {
            name: "room".into(),
            mode: String::new(),
            max_players: 8,
            private: true,
            bots: 2,
            fill_bots: true,
        }),
        Request::JoinRoom { room: RoomId(3) },
        Request::QuickJoin {
            mode: "standard".into(),
        },
        Request::Ping {
            client_time_us: 1 << 40,
        },
        Request::Chat { text: "gg".into() },
        Request::JoinByCode {
            code: "ABCDEF".into(),
        },
        Request::Spectate {
            room: None,
            code: Some("ABCDEF".into()),
        },
        Request::Message {
            kind: 0,
            slots: vec![3],
        },
    ];
    for (i, request) in requests.into_iter().enumerate() {
        let frame = ClientFrame {
            id: i as u32,
            request,
        };
        out.push((
            "control_frame",
            format!("client-{i}"),
            codec::encode(&frame).unwrap(),
        ));
    }
    let server_frames = [
        ServerFrame::Reply {
            id: 1,
            result: Err(ErrorBody::new(ErrorCode::Unauthorized, "no ticket")),
        },
        ServerFrame::Reply {
            id: 2,
            result: Ok(Reply::Pong { client_time_us: 5 }),
        },
        ServerFrame::Event(RoomEvent::Chat {
            player: tickwire_protocol::PlayerId(1),
            name: "ada".into(),
            text: "hi".into(),
        }),
        ServerFrame::Event(RoomEvent::Message {
            kind: 1,
            slots: vec![1, 2, 3],
        }),
    ];
    for (i, frame) in server_frames.into_iter().enumerate() {
        out.push((
            "control_frame",
            format!("server-{i}"),
            codec::encode(&frame).unwrap(),
        ));
    }
    for (g, schema) in schemas().iter().enumerate() {
        let slots = vec![0; schema.input().iter().map(|f| f.dims as usize).sum()];
        let batch = InputBatch {
            ack_tick: Some(Tick(99)),
            inputs: (1..=4)
                .map(|seq| Input {
                    seq,
                    slots: slots.clone(),
                })
                .collect(),
        };
        out.push((
            "input_datagram",
            format!("game-{g}"),
            packet::encode_input(&batch).unwrap(),
        ));
        let base = baseline(schema);
        let mut next = base.clone();
        next.tick = Tick(1003);
        if !next.is_empty() {
            next.values_mut(0)[0] ^= 1;
        }
        let full = delta::encode(schema, None, &base);
        let delta_body = delta::encode(schema, Some(&base), &next);
        out.push((
            "snapshot",
            format!("full-{g}"),
            [&[g as u8][..], &full].concat(),
        ));
        let packet = packet::encode_snapshot(4, &delta_body);
        out.push((
            "snapshot",
            format!("delta-{g}"),
            [&[g as u8 | 0x80][..], &packet].concat(),
        ));
        let text = serde_json::to_vec(&**schema).unwrap();
        out.push(("schema_json", format!("game-{g}"), text));
        let snapshot_json = wire_json::snapshot(schema, &base, 4);
        out.push((
            "json_payload",
            format!("snapshot-{g}"),
            json_seed(0, &snapshot_json),
        ));
    }
    let payloads = [
        json!({"name": "room", "mode": "arena", "maxPlayers": 8, "private": false, "bots": 1}),
        json!({"roomId": 3}),
        json!({"code": "ABCDEF"}),
        json!({"ackTick": 10, "inputs": [{"seq": 1, "dx": 1.5, "dy": -2.0}]}),
        json!({"name": "drop", "values": {"column": 3}}),
        json!({"type": "player_joined", "playerId": 2, "name": "bo"}),
        json!({"playerId": 1, "protocol": PROTOCOL_VERSION, "tickRate": 60, "snapshotRate": 60}),
    ];
    for (i, payload) in payloads.iter().enumerate() {
        out.push((
            "json_payload",
            format!("payload-{i}"),
            json_seed(i as u8, payload),
        ));
    }
    out
}

fn json_seed(pick: u8, value: &serde_json::Value) -> Vec<u8> {
    [&[pick][..], &serde_json::to_vec(value).unwrap()].concat()
}
