//! The fuzz targets' bodies: every decoder that reads bytes from the network, fed whatever the
//! fuzzer makes. A body panics only where the code under test is wrong: a decoder that panics,
//! or one whose output does not survive its own encoder. Shared by the AFL binaries
//! (`fuzz/src/bin`) and by `tests/tests/fuzz_corpus.rs`, which replays the committed corpus in
//! the ordinary test run.

use std::sync::{Arc, OnceLock};
use tickwire_protocol::codec::{self, MAX_CONTROL_BYTES, MAX_INPUT_BYTES};
use tickwire_protocol::{
    Capture, ClientFrame, Head, NetId, PlayerId, Schema, ServerFrame, Snapshot, Tick, delta, json,
    packet,
};

/// The schemas the targets read against: the three built-in games'.
pub fn schemas() -> &'static [Arc<Schema>] {
    static SCHEMAS: OnceLock<Vec<Arc<Schema>>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        vec![
            tickwire_arena::view::schema(),
            tickwire_standard::schema(),
            tickwire_board::schema(),
        ]
    })
}

/// A baseline of `schema`'s shape at tick 1,000: three entities of each kind, their slots 0
/// or 1 (in range for every field type).
pub fn baseline(schema: &Schema) -> Snapshot {
    let mut capture = Capture::new(schema.stride());
    let mut id = 1;
    for kind in 0..schema.kinds().len() {
        for n in 0..3u32 {
            let slots: Vec<u32> = (0..schema.stride() as u32).map(|s| (s + n) % 2).collect();
            let head = Head {
                id: NetId(id),
                kind: kind as u16,
                owner: (n == 0).then_some(PlayerId(1)),
            };
            capture.push(head, &slots);
            id += 1;
        }
    }
    Snapshot::capture(capture, Tick(1000))
}

fn baselines() -> &'static [Snapshot] {
    static BASES: OnceLock<Vec<Snapshot>> = OnceLock::new();
    BASES.get_or_init(|| schemas().iter().map(|s| baseline(s)).collect())
}

/// A control frame as the server reads it (`ClientFrame`) and as a client reads it
/// (`ServerFrame`); what decodes re-encodes to the same value.
pub fn control_frame(data: &[u8]) {
    if let Ok(frame) = codec::decode::<ClientFrame>(data, MAX_CONTROL_BYTES) {
        let again = codec::encode(&frame).expect("a decoded frame encodes");
        assert_eq!(
            codec::decode::<ClientFrame>(&again, MAX_CONTROL_BYTES).ok(),
            Some(frame)
        );
    }
    let _ = codec::hello_version(data);
    if let Ok(frame) = codec::decode::<ServerFrame>(data, MAX_CONTROL_BYTES) {
        let again = codec::encode(&frame).expect("a decoded frame encodes");
        assert_eq!(
            codec::decode::<ServerFrame>(&again, MAX_CONTROL_BYTES).ok(),
            Some(frame)
        );
    }
}

/// An input datagram: the packet, then its inputs checked against each game's declared input.
pub fn input_datagram(data: &[u8]) {
    let Ok(batch) = packet::decode_input(data) else {
        return;
    };
    assert!(data.len() <= MAX_INPUT_BYTES + 1);
    for schema in schemas() {
        let _ = batch.validate(schema.input());
    }
    let again = packet::encode_input(&batch).expect("a decoded batch encodes");
    assert_eq!(packet::decode_input(&again).ok(), Some(batch));
}

/// A snapshot datagram as a client reads it. The first byte picks the game and whether the
/// body is read against a baseline; a snapshot that decodes encodes back (in full) to itself.
pub fn snapshot(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let game = pick as usize % schemas().len();
    let (schema, base) = (&schemas()[game], &baselines()[game]);
    let base = (pick & 0x80 != 0).then_some(base);
    let _ = delta::read_header(rest);
    let body = match packet::decode_snapshot(rest) {
        Ok((_, body)) => body,
        Err(_) => rest,
    };
    if let Ok(snap) = delta::decode(schema, body, base) {
        let full = delta::encode(schema, None, &snap);
        let again = delta::decode(schema, &full, None).expect("a full snapshot decodes");
        assert_eq!(again, snap);
    }
}

/// JSON a Socket.IO client sends: a call's payload (the first byte picks the event), an input,
/// a game message, and what a client reads back (room events, a welcome).
pub fn json_payload(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    let event = json::CALL_EVENTS[pick as usize % json::CALL_EVENTS.len()];
    let _ = json::request(event, value.clone());
    for schema in schemas() {
        let _ = json::input(value.clone(), Some(schema));
        let _ = json::message_from_json(&schema.messages().to_room, &value);
        let _ = json::parse_room_event(value.clone(), Some(schema));
    }
    let _ = json::input(value.clone(), None);
    let _ = json::parse_welcome(value);
}

/// A schema as a join reply carries it (JSON text); one that parses writes back to itself.
pub fn schema_json(data: &[u8]) {
    let Ok(schema) = serde_json::from_slice::<Schema>(data) else {
        return;
    };
    let _ = (schema.hash(), schema.stride());
    let text = serde_json::to_string(&schema).expect("a schema writes");
    let again: Schema = serde_json::from_str(&text).expect("a written schema reads");
    assert_eq!(again, schema);
}

/// A target's body: bytes in, a panic only for a bug.
pub type Body = fn(&[u8]);

/// Every target by name, as the binaries and the corpus replay call them.
pub const TARGETS: &[(&str, Body)] = &[
    ("control_frame", control_frame),
    ("input_datagram", input_datagram),
    ("snapshot", snapshot),
    ("json_payload", json_payload),
    ("schema_json", schema_json),
];
