//! Bad input over real loopback QUIC gets a clear error or is dropped: no panic, and the other
//! players in the room keep playing undisturbed.

use bytes::Bytes;
use glam::Vec2;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tickwire_client::{Client, ClientError};
use tickwire_protocol::Record;
use tickwire_protocol::codec::{self, MAX_CONTROL_BYTES};
use tickwire_protocol::{
    ClientFrame, CreateRoom, ErrorCode, Input, InputBatch, MAX_CHAT_CHARS, PROTOCOL_VERSION, Reply,
    Request, RoomId, ServerFrame,
};
use tickwire_server::Server;
use tickwire_tests::*;

fn hello(protocol: u16) -> ClientFrame {
    ClientFrame {
        id: 1,
        request: Request::Hello {
            protocol,
            name: "raw".into(),
            token: None,
            schemas: Vec::new(),
            ticket: None,
        },
    }
}

fn error_code(frame: ServerFrame) -> ErrorCode {
    match frame {
        ServerFrame::Error(e) | ServerFrame::Reply { result: Err(e), .. } => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn refused(result: Result<impl std::fmt::Debug, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Server(e)) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A player who keeps playing in a room while the test misbehaves elsewhere.
struct Bystander {
    client: Client,
    room: RoomId,
}

impl Bystander {
    async fn start(server: &Server) -> Bystander {
        let client = connect(server, "bystander").await;
        let room = client
            .create_room(arena_room("calm", 8))
            .await
            .unwrap()
            .room
            .id;
        Bystander { client, room }
    }

    /// Fails unless fresh snapshots still flow and the control stream still answers.
    async fn still_playing(&mut self) {
        let before = self.client.latest().map_or(0, |r| r.snapshot.tick.0);
        for _ in 0..5 {
            self.client
                .send_input(&tickwire_tests::steer(Vec2::Y, 0.0, 0))
                .unwrap();
            within("bystander snapshots", self.client.next_snapshot())
                .await
                .unwrap();
        }
        let after = self.client.latest().unwrap().snapshot.tick.0;
        assert!(after > before);
        self.client.ping().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_datagrams_and_bad_inputs_are_dropped() {
    let server = server(|c| c.arena.drones = 2).await;
    let mut bystander = Bystander::start(&server).await;
    let mut bad = connect(&server, "bad").await;
    bad.join_room(bystander.room).await.unwrap();
    let conn = bad.connection().clone();

    // Garbage, an unknown packet type, a truncated batch, an oversized batch.
    for junk in [
        vec![0xff; 40],
        vec![0x02, 1, 2, 3],
        vec![0x01, 9],
        vec![0x01; 1100],
        vec![],
    ] {
        conn.send_datagram(Bytes::from(junk)).unwrap();
    }
    // A NaN or an input out of its declared range never leaves the client.
    for nan in [
        steer(Vec2::new(f32::NAN, 0.0), 0.0, 0),
        steer(Vec2::new(5.0, 0.0), 0.0, 0),
        steer(Vec2::X, f32::INFINITY, 0),
    ] {
        assert!(matches!(
            bad.send_input(&nan),
            Err(ClientError::Undeclared(_))
        ));
    }
    // Sent raw: too few slots, too many, a move slot past its range, a bool of 2. Each batch
    // is refused whole, and counted.
    let refused_before = metric(server.http_addr, "tickwire_inputs_refused_total", "quic").await;
    let good_slots = steer(Vec2::X, 0.0, 0).to_slots().unwrap();
    let mut past_range = good_slots.clone();
    past_range[0] = 9000;
    let mut bad_bool = good_slots.clone();
    bad_bool[3] = 2;
    let bad_inputs = [
        good_slots[..3].to_vec(),
        [good_slots.clone(), vec![0]].concat(),
        past_range,
        bad_bool,
    ]
    .into_iter()
    .zip(100..)
    .map(|(slots, seq)| Input { seq, slots });
    for input in bad_inputs {
        bad.send_batch(&InputBatch {
            ack_tick: None,
            inputs: vec![input],
        })
        .unwrap();
    }
    bystander.still_playing().await;
    // None of them was applied: the input ack never reached those seqs.
    for _ in 0..10 {
        let r = within("snapshots", bad.next_snapshot()).await.unwrap();
        assert!(r.input_ack < 100, "a refused input was applied");
    }
    // A valid input afterwards still works.
    let good = InputBatch {
        ack_tick: None,
        inputs: vec![Input {
            seq: 104,
            slots: good_slots,
        }],
    };
    within("the valid input to be acked", async {
        loop {
            bad.send_batch(&good).unwrap();
            if bad.next_snapshot().await.unwrap().input_ack == 104 {
                break;
            }
        }
    })
    .await;
    // The connection reads its datagrams in order: the refusals were counted before the
    // valid input was applied.
    let refused = metric(server.http_addr, "tickwire_inputs_refused_total", "quic").await;
    assert!(
        refused >= refused_before + 4.0,
        "{refused_before} -> {refused}"
    );
    bystander.still_playing().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_control_frames_get_bad_request_and_the_stream_stays_usable() {
    let server = server(|c| c.arena.drones = 0).await;
    let mut bystander = Bystander::start(&server).await;
    let mut raw = RawControl::open(&server).await.unwrap();

    raw.write_raw(5, &[0xde, 0xad, 0xbe, 0xef, 0x00])
        .await
        .unwrap();
    assert_eq!(error_code(raw.read().await.unwrap()), ErrorCode::BadRequest);
    // A length prefix whose string claims far more than the frame holds.
    raw.write_raw(8, &[1, 0, 0, 0, 0xfd, 0xff, 0xff, 0x7f])
        .await
        .unwrap();
    assert_eq!(error_code(raw.read().await.unwrap()), ErrorCode::BadRequest);
    // Requests before hello.
    raw.send(&ClientFrame {
        id: 2,
        request: Request::ListRooms {
            mode: None,
            open_only: false,
        },
    })
    .await
    .unwrap();
    assert_eq!(
        error_code(raw.read().await.unwrap()),
        ErrorCode::NotWelcomed
    );
    // The same stream still takes a proper hello.
    raw.send(&hello(PROTOCOL_VERSION)).await.unwrap();
    match raw.read().await.unwrap() {
        ServerFrame::Reply {
            id: 1,
            result: Ok(Reply::Welcome(w)),
        } => assert_eq!(w.protocol, PROTOCOL_VERSION),
        other => panic!("expected welcome, got {other:?}"),
    }
    bystander.still_playing().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_control_frame_closes_only_that_connection() {
    let server = server(|c| c.arena.drones = 0).await;
    let mut bystander = Bystander::start(&server).await;
    let mut raw = RawControl::open(&server).await.unwrap();
    raw.send(&hello(PROTOCOL_VERSION)).await.unwrap();
    raw.read().await.unwrap();
    // Claims 16 MiB, far over the limit; the server must not wait for (or allocate) it.
    const CLAIM: u32 = 16 << 20;
    const { assert!(CLAIM as usize > MAX_CONTROL_BYTES) };
    raw.write_raw(CLAIM, &[0u8; 64]).await.unwrap();
    assert_eq!(
        error_code(raw.read().await.unwrap()),
        ErrorCode::FrameTooLarge
    );
    within("the connection to close", raw.conn.closed()).await;
    bystander.still_playing().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_protocol_version_is_refused_and_closed() {
    let server = server(|c| c.arena.drones = 0).await;
    let mut bystander = Bystander::start(&server).await;
    let mut raw = RawControl::open(&server).await.unwrap();
    raw.send(&hello(PROTOCOL_VERSION + 1)).await.unwrap();
    assert_eq!(
        error_code(raw.read().await.unwrap()),
        ErrorCode::VersionMismatch
    );
    within("the connection to close", raw.conn.closed()).await;
    // A version 5 client's hello (no ticket at its end) is unreadable as a whole, but still
    // answered with the version it named.
    let mut old = RawControl::open(&server).await.unwrap();
    let mut v5 = codec::encode(&hello(5)).unwrap();
    assert_eq!(v5.pop(), Some(0), "the ticket's None was the last byte");
    old.write_raw(v5.len() as u32, &v5).await.unwrap();
    match old.read().await.unwrap() {
        ServerFrame::Reply {
            id: 1,
            result: Err(e),
        } => {
            assert_eq!(e.code, ErrorCode::VersionMismatch);
            assert!(e.message.contains("client 5"), "{}", e.message);
        }
        other => panic!("expected version_mismatch, got {other:?}"),
    }
    within("the old client's connection to close", old.conn.closed()).await;
    bystander.still_playing().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_unknown_and_invalid_rooms_are_refused() {
    let server = server(|c| c.arena.drones = 0).await;
    let mut bystander = Bystander::start(&server).await;
    let owner = connect(&server, "owner").await;
    let other = connect(&server, "other").await;
    let solo = owner.create_room(arena_room("solo", 1)).await.unwrap();
    assert_eq!(
        refused(other.join_room(solo.room.id).await),
        ErrorCode::RoomFull
    );
    assert_eq!(
        refused(other.join_room(RoomId(999)).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        refused(owner.join_room(bystander.room).await),
        ErrorCode::AlreadyInRoom
    );
    assert_eq!(
        refused(other.quick_join("chess").await),
        ErrorCode::UnknownMode
    );
    let bad_name = CreateRoom {
        name: "\u{7}".repeat(3),
        ..arena_room("", 4)
    };
    assert_eq!(
        refused(other.create_room(bad_name).await),
        ErrorCode::BadRequest
    );
    let too_many = arena_room("huge", 200);
    assert_eq!(
        refused(other.create_room(too_many).await),
        ErrorCode::BadRequest
    );
    // After all that, the refused player can still join a room with space.
    other.join_room(bystander.room).await.unwrap();
    assert_eq!(other.stats().decode_errors.load(Ordering::Relaxed), 0);
    bystander.still_playing().await;
    server.shutdown().await;
}

/// The application close code a connection ended with.
fn close_code(e: quinn::ConnectionError) -> u64 {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => c.error_code.into_inner(),
        other => panic!("closed by {other:?}, not by the server's application code"),
    }
}

/// Reads one server frame off a raw control stream (None once it ends).
async fn next_frame(recv: &mut quinn::RecvStream) -> Option<ServerFrame> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await.ok()?;
    let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
    recv.read_exact(&mut body).await.ok()?;
    tickwire_protocol::codec::decode(&body, MAX_CONTROL_BYTES).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_calls_or_bad_frames_is_cut_off_once_with_code_5() {
    let server = server(|c| c.arena.drones = 0).await;
    let mut bystander = Bystander::start(&server).await;
    let flood_metric = "tickwire_flood_disconnects_total";
    for bad_frames in [false, true] {
        let before = metric(server.http_addr, flood_metric, "quic").await;
        let mut raw = RawControl::open(&server).await.unwrap();
        raw.send(&hello(PROTOCOL_VERSION)).await.unwrap();
        raw.read().await.unwrap();
        let RawControl {
            conn, send, recv, ..
        } = &mut raw;
        // Far more than the limit of 200 refusals, as fast as the stream takes them.
        let flood = async {
            for id in 2..2_000u32 {
                let body = if bad_frames {
                    vec![0xff; 3]
                } else {
                    let ping = ClientFrame {
                        id,
                        request: Request::Ping { client_time_us: 0 },
                    };
                    tickwire_protocol::codec::encode(&ping).unwrap()
                };
                let framed = [&(body.len() as u32).to_le_bytes()[..], &body].concat();
                if send.write_all(&framed).await.is_err() {
                    break;
                }
            }
        };
        let replies = async {
            let (mut answered, mut refused) = (0, 0);
            while let Some(frame) = next_frame(recv).await {
                match frame {
                    ServerFrame::Reply { result: Ok(_), .. } => answered += 1,
                    other => {
                        let code = error_code(other);
                        let expected = if bad_frames {
                            ErrorCode::BadRequest
                        } else {
                            ErrorCode::RateLimited
                        };
                        assert_eq!(code, expected);
                        refused += 1;
                    }
                }
            }
            (answered, refused)
        };
        let ((), (answered, refused)) = within("the flooder to be cut off", async {
            tokio::join!(flood, replies)
        })
        .await;
        assert!(answered <= 40, "{answered} pings answered");
        assert!(refused <= 201, "{refused} refused before the cut");
        assert_eq!(close_code(conn.closed().await), 5);
        assert_eq!(
            metric(server.http_addr, flood_metric, "quic").await,
            before + 1.0,
            "a flooder is counted once"
        );
    }
    bystander.still_playing().await;
    server.shutdown().await;
}

/// A client in a room too large for a datagram that never acknowledges a snapshot gets a full
/// snapshot on a stream every tick it can take. Each stream keeps its slot until the client has
/// acknowledged all of it, so however slow the client's acks (150 ms here), it never holds more
/// than the 2 streams PROTOCOL.md promises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_acks_holds_at_most_two_snapshot_streams() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    let server = server(|c| c.arena.drones = 1500).await;
    let relay = LossyRelay::start(
        server.quic_addr,
        Chaos::loss(0.0).uplink_delay(Duration::from_millis(150)),
        11,
    )
    .await
    .unwrap();
    let mut raw = RawControl::open_at(&server, relay.addr).await.unwrap();
    raw.send(&hello(PROTOCOL_VERSION)).await.unwrap();
    raw.read().await.unwrap();
    let create = ClientFrame {
        id: 2,
        request: Request::CreateRoom(arena_room("crowd", 2)),
    };
    raw.send(&create).await.unwrap();
    let RawControl { conn, recv, .. } = &mut raw;
    // Lobby events keep coming on the control stream; read them so they never back up.
    let control = async { while next_frame(recv).await.is_some() {} };
    let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let streams = async {
        let mut whole = 0;
        while whole < 12 {
            tokio::select! {
                stream = conn.accept_uni() => {
                    let mut stream = stream.expect("the connection stays open");
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let (open, done) = (open.clone(), done_tx.clone());
                    tokio::spawn(async move {
                        let read = stream.read_to_end(1 << 20).await;
                        open.fetch_sub(1, Ordering::SeqCst);
                        let _ = done.send(read.is_ok());
                    });
                }
                Some(complete) = done_rx.recv() => whole += usize::from(complete),
            }
        }
    };
    within("12 whole snapshot streams", async {
        tokio::select! {
            () = streams => {}
            () = control => panic!("the control stream ended"),
        }
    })
    .await;
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 2, "{most} snapshot streams half-received at once");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_control_stream_is_closed_with_code_2() {
    let server = server(|c| c.arena.drones = 0).await;
    // Quinn's default window would take megabytes of events to fill; 1 KiB takes four.
    let mut raw = RawControl::open_with_window(&server, 1024).await.unwrap();
    raw.send(&hello(PROTOCOL_VERSION)).await.unwrap();
    raw.read().await.unwrap();
    raw.send(&ClientFrame {
        id: 2,
        request: Request::CreateRoom(arena_room("deaf", 16)),
    })
    .await
    .unwrap();
    let room = match raw.read().await.unwrap() {
        ServerFrame::Reply {
            result: Ok(Reply::Joined(joined)),
            ..
        } => joined.room.id,
        other => panic!("not joined: {other:?}"),
    };
    // From here on it reads nothing. Others chat, each within its call rate (10 a second),
    // and every chat is an event for it: its 512 queued frames fill in a few seconds.
    let mut chatters = Vec::new();
    for i in 0..12 {
        let c = connect(&server, &format!("chatter{i}")).await;
        c.join_room(room).await.unwrap();
        chatters.push(c);
    }
    let text = "x".repeat(MAX_CHAT_CHARS);
    let chat = futures_util::future::join_all(chatters.iter().map(|c| async {
        let mut every = tokio::time::interval(Duration::from_millis(100));
        loop {
            every.tick().await;
            c.chat(&text).await.expect("chat within its rate");
        }
    }));
    let closed = tokio::select! {
        closed = within("the deaf client to be closed", raw.conn.closed()) => closed,
        _ = chat => unreachable!("the chat loops never end"),
    };
    assert_eq!(close_code(closed), 2);
    server.shutdown().await;
}
