//! A Socket.IO client that stops reading: its snapshots are dropped (and counted in /metrics),
//! it is disconnected once stalled past the bound, and another player in the same room never
//! misses a beat.

use futures_util::{SinkExt, StreamExt};
use tickwire_client::SioClient;
use tickwire_protocol::RoomEvent;
use tickwire_tests::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_socket_is_dropped_then_cut_off_without_hurting_others() {
    // Many drones and no acks: every snapshot is a full one of several kilobytes.
    // No reconnect grace, so the cut-off player's seat is given up at once.
    let server = server(|c| {
        c.arena.drones = 2500;
        c.server.reconnect_grace_secs = 0;
    })
    .await;
    let url = format!("http://{}", server.http_addr);
    let mut steady = SioClient::connect(&url, "steady", arena()).await.unwrap();
    let room = steady
        .create_room(arena_room("shared", 4))
        .await
        .unwrap()
        .room
        .id;

    // The stalled client: a websocket over a TCP socket with a tiny receive buffer, which joins
    // the room and then never reads again.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.http_addr).await.unwrap();
    let ws_url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        server.http_addr
    );
    let (mut ws, _) = tokio_tungstenite::client_async(ws_url, tcp).await.unwrap();
    ws.send(Message::text(r#"40{"name":"stalled"}"#))
        .await
        .unwrap();
    // Join once connected, read until the join is acknowledged, then stop reading.
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(t) = msg else { continue };
            // Calls go after `welcome`, which says the server listens.
            if t.starts_with(r#"42["welcome""#) {
                let join = format!(r#"420["room:join",{{"roomId":{}}}]"#, room.0);
                ws.send(Message::text(join)).await.unwrap();
            } else if t.starts_with("430") {
                assert!(t.contains(r#""ok":true"#), "{t}");
                return;
            }
        }
        panic!("connection ended before the join ack");
    })
    .await
    .expect("the stalled client's join is acknowledged within a minute");

    // Meanwhile the steady player keeps receiving fresh snapshots, every tick.
    let mut last = steady.next_snapshot().await.unwrap().snapshot.tick.0;
    // Filling the socket's buffers, then the 5 s stall bound: longer than the usual wait.
    let cut_off = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        for seen in 0u64.. {
            let r = steady.next_snapshot().await.unwrap();
            assert!(r.snapshot.tick.0 > last);
            assert!(
                r.snapshot.tick.0 - last <= 10,
                "the steady player missed {} ticks",
                r.snapshot.tick.0 - last
            );
            last = r.snapshot.tick.0;
            // Every 30th snapshot (twice a second): /metrics is rate-limited per address too.
            if seen % 30 == 0
                && metric(
                    server.http_addr,
                    "tickwire_slow_disconnects_total",
                    "socketio",
                )
                .await
                    >= 1.0
            {
                return true;
            }
        }
        false
    })
    .await
    .expect("the stalled socket is cut off within a minute");
    assert!(cut_off);
    assert!(
        metric(
            server.http_addr,
            "tickwire_snapshots_dropped_total",
            "socketio"
        )
        .await
            >= 1.0
    );
    // The seat was given back: the room says the player left.
    within("the stalled player to leave the room", async {
        loop {
            if let RoomEvent::PlayerLeft { .. } = steady.next_event().await.unwrap() {
                return;
            }
        }
    })
    .await;
    let rooms = steady.list_rooms(None).await.unwrap();
    assert_eq!(rooms.iter().find(|r| r.id == room).unwrap().players, 1);
    drop(ws);
    steady.close().await;
    server.shutdown().await;
}
