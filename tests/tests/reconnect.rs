//! Reconnection: a dropped player keeps its seat and entity for the grace period and resumes it
//! with its reconnect token, over either transport, from a full snapshot; after the grace the
//! seat is freed and the room is told.

use glam::Vec2;
use std::sync::atomic::Ordering;
use tickwire_arena::EntityKind;
use tickwire_arena::view as arena;
use tickwire_client::SioClient;
use tickwire_protocol::{PlayerId, RoomEvent};
use tickwire_tests::*;

async fn event(
    client: &mut impl GameClient,
    what: &str,
    pred: impl Fn(&RoomEvent) -> bool,
) -> RoomEvent {
    within(what, async {
        loop {
            let e = client.next_event().await.unwrap();
            if pred(&e) {
                return e;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_player_resumes_its_seat_over_either_transport() {
    let server = server(|c| {
        c.arena.drones = 2;
        c.server.reconnect_grace_secs = 30;
    })
    .await;
    let mut host = connect(&server, "host").await;
    let room = host
        .create_room(arena_room("sticky", 4))
        .await
        .unwrap()
        .room
        .id;

    // Over QUIC.
    let mut first = connect(&server, "wanderer").await;
    let joined = first.join_room(room).await.unwrap();
    let (player, entity) = (joined.player, joined.entity);
    // Inputs numbered up to 20 on the first connection...
    for _ in 0..20 {
        first
            .send_input(&tickwire_tests::steer(Vec2::ZERO, 0.0, 0))
            .unwrap();
    }
    snapshot_where(&mut first, "the inputs to be applied", |r| r.input_ack > 0).await;
    first.close().await;
    let dropped = event(
        &mut host,
        "the disconnect",
        |e| matches!(e, RoomEvent::PlayerDisconnected { player: p, .. } if *p == player),
    )
    .await;
    assert_eq!(
        dropped,
        RoomEvent::PlayerDisconnected {
            player,
            grace_secs: 30
        }
    );
    // The entity stays in the room meanwhile.
    snapshot_where(&mut host, "the entity to stay", |r| {
        r.snapshot.get(entity).is_some()
    })
    .await;
    let mut back = reconnect(&server, "wanderer", &joined.reconnect_token).await;
    let resumed = back.welcome().resumed.clone().expect("the seat was held");
    assert_eq!(
        (back.player(), resumed.entity, resumed.room.id),
        (player, entity, room)
    );
    assert_eq!(
        resumed.room.players, 2,
        "the seat was kept, not taken twice"
    );
    let r = snapshot_where(&mut back, "snapshots again", |r| {
        r.snapshot.get(entity).is_some()
    })
    .await;
    assert_eq!(r.snapshot.get(entity).unwrap().owner, Some(player));
    assert_eq!(
        back.stats().delta_snapshots.load(Ordering::Relaxed),
        0,
        "resumed from a full snapshot"
    );
    // ...and the new connection's, numbered from 1 again, move the player.
    let start = arena::get(&r.snapshot, entity).unwrap().position();
    let walked = within("the resumed player to walk", async {
        loop {
            back.send_input(&tickwire_tests::steer(Vec2::X, 0.0, 0))
                .unwrap();
            let r = back.next_snapshot().await.unwrap();
            if arena::get(&r.snapshot, entity).unwrap().position().x > start.x + 20.0 {
                return r;
            }
        }
    })
    .await;
    assert!(
        (1..20).contains(&walked.input_ack),
        "the new connection's inputs count from 1, not after the old one's: ack {}",
        walked.input_ack
    );

    // Over Socket.IO, with the same token.
    back.close().await;
    event(
        &mut host,
        "the second disconnect",
        |e| matches!(e, RoomEvent::PlayerDisconnected { player: p, .. } if *p == player),
    )
    .await;
    let url = format!("http://{}", server.http_addr);
    let mut sio =
        SioClient::connect_with_token(&url, "wanderer", Some(&joined.reconnect_token), arena())
            .await
            .unwrap();
    assert_eq!(sio.player(), player);
    assert_eq!(
        sio.welcome().resumed.as_ref().map(|j| j.entity),
        Some(entity)
    );
    snapshot_where(&mut sio, "Socket.IO snapshots", |r| {
        arena::entities(&r.snapshot)
            .any(|e| e.kind == EntityKind::Player && e.owner == Some(player))
    })
    .await;
    // Nobody ever left the room.
    assert!(
        host.try_event()
            .into_iter()
            .all(|e| !matches!(e, RoomEvent::PlayerLeft { .. }))
    );
    sio.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_grace_period_the_seat_is_freed() {
    let server = server(|c| {
        c.arena.drones = 0;
        c.server.reconnect_grace_secs = 1;
    })
    .await;
    let mut host = connect(&server, "host").await;
    let room = host
        .create_room(arena_room("brief", 4))
        .await
        .unwrap()
        .room
        .id;
    let first = connect(&server, "late").await;
    let joined = first.join_room(room).await.unwrap();
    let player = joined.player;
    first.close().await;
    event(&mut host, "the player to be dropped", |e| {
        *e == RoomEvent::PlayerLeft { player }
    })
    .await;
    assert_eq!(host.list_rooms(None).await.unwrap()[0].players, 1);
    // The token no longer holds a seat: a fresh player, in no room.
    let again = reconnect(&server, "late", &joined.reconnect_token).await;
    assert_eq!(again.welcome().resumed, None);
    assert_ne!(again.player(), PlayerId(player.0));
    server.shutdown().await;
}

/// A reconnect token presented while its seat is still connected (a player whose network
/// changed, or someone holding a copied token) takes the seat over: the new connection is
/// seated, and the old one is told `SeatTaken` and closed with code 4. The room never sees the
/// player leave or drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_used_while_its_seat_is_connected_takes_it_and_closes_the_old_connection() {
    let server = server(|c| {
        c.arena.drones = 0;
        c.server.reconnect_grace_secs = 30;
    })
    .await;
    let mut host = connect(&server, "host").await;
    let room = host
        .create_room(arena_room("contested", 4))
        .await
        .unwrap()
        .room
        .id;
    let mut first = connect(&server, "owner").await;
    let joined = first.join_room(room).await.unwrap();
    let (player, entity) = (joined.player, joined.entity);
    snapshot_where(&mut first, "the first connection's snapshots", |r| {
        r.snapshot.get(entity).is_some()
    })
    .await;

    // QUIC takes the seat from QUIC.
    let mut second = reconnect(&server, "owner", &joined.reconnect_token).await;
    let resumed = second
        .welcome()
        .resumed
        .clone()
        .expect("the seat is taken over");
    assert_eq!((second.player(), resumed.entity), (player, entity));
    assert_eq!(resumed.room.players, 2, "one seat, not two");
    event(&mut first, "the old connection to hear why", |e| {
        *e == RoomEvent::SeatTaken
    })
    .await;
    let old = first.connection();
    let closed = within("the old connection to close", old.closed()).await;
    match closed {
        quinn::ConnectionError::ApplicationClosed(c) => {
            assert_eq!(c.error_code, quinn::VarInt::from_u32(4), "{c:?}")
        }
        other => panic!("closed by {other:?}, not by the server's code 4"),
    }
    snapshot_where(&mut second, "the new connection's snapshots", |r| {
        r.snapshot.get(entity).is_some()
    })
    .await;

    // Socket.IO takes it from QUIC, and another Socket.IO connection from that one.
    let url = format!("http://{}", server.http_addr);
    let mut third =
        SioClient::connect_with_token(&url, "owner", Some(&joined.reconnect_token), arena())
            .await
            .unwrap();
    assert_eq!(third.player(), player);
    event(&mut second, "QUIC to hear it lost the seat", |e| {
        *e == RoomEvent::SeatTaken
    })
    .await;
    let mut fourth =
        SioClient::connect_with_token(&url, "owner", Some(&joined.reconnect_token), arena())
            .await
            .unwrap();
    assert_eq!(
        fourth.welcome().resumed.as_ref().map(|j| j.entity),
        Some(entity)
    );
    event(&mut third, "Socket.IO to hear it lost the seat", |e| {
        *e == RoomEvent::SeatTaken
    })
    .await;
    within("the old socket to be closed", async {
        while third.next_event().await.is_ok() {}
    })
    .await;
    snapshot_where(&mut fourth, "the last connection's snapshots", |r| {
        r.snapshot.get(entity).is_some()
    })
    .await;

    // The room saw none of it: no leave, no drop.
    while let Some(e) = host.try_event() {
        assert!(
            !matches!(
                e,
                RoomEvent::PlayerLeft { .. } | RoomEvent::PlayerDisconnected { .. }
            ),
            "{e:?}"
        );
    }
    assert_eq!(host.list_rooms(None).await.unwrap()[0].players, 2);
    fourth.close().await;
    server.shutdown().await;
}
