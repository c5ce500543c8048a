//! Playing over real loopback QUIC: seeing each other, room isolation, convergence over a lossy
//! path, large snapshots, leaving.

use glam::Vec2;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tickwire_arena::EntityKind;
use tickwire_arena::view as arena;
use tickwire_protocol::{PlayerId, RoomEvent};
use tickwire_tests::*;

fn player_x(r: &tickwire_client::Received, player: PlayerId) -> Option<f32> {
    arena::entities(&r.snapshot)
        .find(|e| e.kind == EntityKind::Player && e.owner == Some(player))
        .map(|e| e.position().x)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_in_one_room_see_each_other_move() {
    let server = server(|c| c.arena.drones = 5).await;
    let mut a = connect(&server, "alice").await;
    let mut b = connect(&server, "bob").await;
    let joined = a.create_room(arena_room("duel", 2)).await.unwrap();
    b.join_room(joined.room.id).await.unwrap();
    let (pa, pb) = (a.player(), b.player());

    // Each sees the other's avatar.
    let seen = snapshot_where(&mut b, "bob to see alice", |r| player_x(r, pa).is_some()).await;
    let start_a = player_x(&seen, pa).unwrap();
    let seen = snapshot_where(&mut a, "alice to see bob", |r| player_x(r, pb).is_some()).await;
    let start_b = player_x(&seen, pb).unwrap();

    // Alice walks right (or left, if she starts near the right wall); Bob watches.
    let dir = if start_a < 500.0 { Vec2::X } else { -Vec2::X };
    let moved = within("bob to see alice move", async {
        loop {
            a.send_input(&tickwire_tests::steer(dir, 0.0, 0)).unwrap();
            let r = b.next_snapshot().await.unwrap();
            if let Some(x) = player_x(&r, pa)
                && (x - start_a).abs() > 50.0
            {
                return x;
            }
        }
    })
    .await;
    assert!((moved - start_a).signum() == dir.x.signum());

    let dir = if start_b < 500.0 { Vec2::X } else { -Vec2::X };
    within("alice to see bob move", async {
        loop {
            b.send_input(&tickwire_tests::steer(dir, 0.0, 0)).unwrap();
            let r = a.next_snapshot().await.unwrap();
            if player_x(&r, pb).is_some_and(|x| (x - start_b).abs() > 50.0) {
                return;
            }
        }
    })
    .await;
    // The inputs were acknowledged.
    assert!(a.latest().unwrap().input_ack > 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_in_different_rooms_never_see_each_other() {
    let server = server(|c| c.arena.drones = 3).await;
    let mut a = connect(&server, "a").await;
    let mut b = connect(&server, "b").await;
    let ra = a.create_room(arena_room("one", 4)).await.unwrap();
    let rb = b.create_room(arena_room("two", 4)).await.unwrap();
    assert_ne!(ra.room.id, rb.room.id);
    let (pa, pb) = (a.player(), b.player());
    let mut owners_seen_by_b = BTreeSet::new();
    let mut owners_seen_by_a = BTreeSet::new();
    for _ in 0..60 {
        // Both fire, so projectiles (owned by their shooters) are in play too.
        a.send_input(&tickwire_tests::steer(Vec2::X, 0.5, 1))
            .unwrap();
        b.send_input(&tickwire_tests::steer(-Vec2::X, -0.5, 1))
            .unwrap();
        let rb = within("b's snapshot", b.next_snapshot()).await.unwrap();
        owners_seen_by_b.extend(arena::entities(&rb.snapshot).filter_map(|e| e.owner));
        let ra = within("a's snapshot", a.next_snapshot()).await.unwrap();
        owners_seen_by_a.extend(arena::entities(&ra.snapshot).filter_map(|e| e.owner));
    }
    assert_eq!(owners_seen_by_b, BTreeSet::from([pb]));
    assert_eq!(owners_seen_by_a, BTreeSet::from([pa]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_path_still_converges_to_the_servers_world() {
    let server = server(|c| c.arena.drones = 40).await;
    // 15% of datagrams lost each way (snapshots, and the acks riding on inputs), and every
    // input datagram 40 ms late, so acks trail the snapshots by a few ticks.
    let relay = LossyRelay::start(
        server.quic_addr,
        Chaos::loss(0.15).uplink_delay(Duration::from_millis(40)),
        7,
    )
    .await
    .unwrap();
    let mut lossy = connect_to(relay.addr, pin(&server), "lossy").await;
    let mut clean = connect(&server, "clean").await;
    let joined = lossy.create_room(arena_room("lossy", 4)).await.unwrap();
    clean.join_room(joined.room.id).await.unwrap();

    let mut compared = 0;
    let mut last_tick = 0;
    within("snapshots over the lossy path", async {
        while compared < 40 {
            lossy
                .send_input(&tickwire_tests::steer(Vec2::new(0.6, 0.8), 1.0, 1))
                .unwrap();
            clean
                .send_input(&tickwire_tests::steer(Vec2::new(-0.6, 0.2), -2.0, 1))
                .unwrap();
            let r = lossy.next_snapshot().await.unwrap();
            assert!(r.snapshot.tick.0 > last_tick, "ticks only move forward");
            last_tick = r.snapshot.tick.0;
            let _ = clean.latest();
            // The server's own quantised world at that tick, from its history.
            if let Some(truth) = server.inspect(joined.room.id, r.snapshot.tick).await {
                assert_eq!(
                    *r.snapshot, truth,
                    "client world differs at {:?}",
                    r.snapshot.tick
                );
                compared += 1;
            }
        }
    })
    .await;
    let stats = lossy.stats();
    assert!(
        relay.counts.dropped.load(Ordering::Relaxed) > 0,
        "the relay dropped packets"
    );
    assert!(
        stats.delta_snapshots.load(Ordering::Relaxed) > 0,
        "deltas were used"
    );
    assert_eq!(stats.decode_errors.load(Ordering::Relaxed), 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_larger_than_a_datagram_still_arrive() {
    let server = server(|c| c.arena.drones = 1500).await;
    let mut client = connect(&server, "big").await;
    let joined = client.create_room(arena_room("crowd", 2)).await.unwrap();
    let max = client.connection().max_datagram_size().unwrap();
    let r = snapshot_where(&mut client, "a large snapshot", |r| r.snapshot.len() > 1500).await;
    let truth = server
        .inspect(joined.room.id, r.snapshot.tick)
        .await
        .expect("tick still in history");
    assert_eq!(*r.snapshot, truth);
    let full = tickwire_protocol::delta::encode(&arena::schema(), None, &truth).len();
    assert!(
        full > max,
        "a full snapshot ({full} bytes) exceeds a datagram ({max} bytes)"
    );
    // Later ticks keep coming.
    let next_tick = r.snapshot.tick.0;
    snapshot_where(&mut client, "a later snapshot", |n| {
        n.snapshot.tick.0 > next_tick
    })
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_or_disconnecting_removes_the_player() {
    // No reconnect grace: a dropped connection gives the seat up at once.
    let server = server(|c| {
        c.arena.drones = 0;
        c.server.reconnect_grace_secs = 0;
    })
    .await;
    let mut a = connect(&server, "stays").await;
    let b = connect(&server, "goes").await;
    let mut c = connect(&server, "leaves").await;
    let joined = a.create_room(arena_room("hall", 4)).await.unwrap();
    b.join_room(joined.room.id).await.unwrap();
    c.join_room(joined.room.id).await.unwrap();
    let (pb, pc) = (b.player(), c.player());
    snapshot_where(&mut a, "all three", |r| {
        player_x(r, pb).is_some() && player_x(r, pc).is_some()
    })
    .await;

    c.leave_room().await.unwrap();
    b.close().await;
    let mut left = BTreeSet::new();
    within("both to leave", async {
        while left.len() < 2 {
            if let RoomEvent::PlayerLeft { player } = a.next_event().await.unwrap() {
                left.insert(player);
            }
        }
    })
    .await;
    assert_eq!(left, BTreeSet::from([pb, pc]));
    snapshot_where(&mut a, "their avatars to go", |r| {
        player_x(r, pb).is_none() && player_x(r, pc).is_none()
    })
    .await;
    let rooms = a.list_rooms(None).await.unwrap();
    assert_eq!(rooms[0].players, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_rooms_close_after_the_timeout() {
    let server = server(|c| c.server.empty_room_secs = 1).await;
    let mut a = connect(&server, "a").await;
    a.create_room(arena_room("brief", 2)).await.unwrap();
    assert_eq!(a.list_rooms(Some("arena")).await.unwrap().len(), 1);
    a.leave_room().await.unwrap();
    within("the empty room to close", async {
        while !a.list_rooms(None).await.unwrap().is_empty() {
            // The lobby sweeps once a second; ask again after the next sweep.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    server.shutdown().await;
}
