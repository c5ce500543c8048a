//! The Rust Socket.IO client against the real server: lobby calls, binary snapshots that turn
//! into deltas once acknowledged, binary inputs that move the player, and a room shared with a
//! QUIC player.

use glam::Vec2;
use std::sync::atomic::Ordering;
use tickwire_arena::EntityKind;
use tickwire_arena::view as arena;
use tickwire_client::SioClient;
use tickwire_protocol::RoomEvent;
use tickwire_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socketio_player_plays_beside_a_quic_player() {
    let server = server(|c| c.arena.drones = 10).await;
    let url = format!("http://{}", server.http_addr);
    let mut sio = within(
        "socket.io connect",
        SioClient::connect(&url, "sio", arena()),
    )
    .await
    .unwrap();
    let mut quic = connect(&server, "quic").await;
    let joined = sio.create_room(arena_room("mixed", 4)).await.unwrap();
    assert_eq!(joined.player, sio.player());
    quic.join_room(joined.room.id).await.unwrap();
    let qp = quic.player();
    let joined_event = within("the join event", async {
        loop {
            if let RoomEvent::PlayerJoined { player, .. } = sio.next_event().await.unwrap()
                && player == qp
            {
                return player;
            }
        }
    })
    .await;
    assert_eq!(joined_event, qp);

    let me = sio.player();
    let own_x = |r: &tickwire_client::Received| {
        arena::entities(&r.snapshot)
            .find(|e| e.kind == EntityKind::Player && e.owner == Some(me))
            .map(|e| e.position().x)
    };
    let first = snapshot_where(&mut sio, "own avatar", |r| own_x(r).is_some()).await;
    let start = own_x(&first).unwrap();
    let dir = if start < 500.0 { Vec2::X } else { -Vec2::X };
    // The QUIC player sees the Socket.IO player move, and vice versa the inputs are acked.
    within("the QUIC player to see the Socket.IO player move", async {
        loop {
            sio.send_input(&tickwire_tests::steer(dir, 0.0, 0)).unwrap();
            let r = quic.next_snapshot().await.unwrap();
            let x = arena::entities(&r.snapshot)
                .find(|e| e.owner == Some(me) && e.kind == EntityKind::Player)
                .map(|e| e.position().x);
            if x.is_some_and(|x| (x - start).abs() > 50.0) {
                return;
            }
        }
    })
    .await;
    let r = sio.next_snapshot().await.unwrap();
    assert!(r.input_ack > 0, "the server applied the binary inputs");
    let stats = sio.stats();
    assert!(
        stats.delta_snapshots.load(Ordering::Relaxed) > 0,
        "acks led to deltas"
    );
    assert_eq!(stats.decode_errors.load(Ordering::Relaxed), 0);
    let rtt = sio.ping().await.unwrap();
    assert!(rtt.as_secs() < 5);
    sio.close().await;
    server.shutdown().await;
}
