//! Lobbies over QUIC: private rooms by code, ready-up to a started match, a match that ends with
//! results, the owner's start, and the lobby's refusals.

use std::collections::BTreeSet;
use tickwire_arena::view as arena;
use tickwire_client::{Client, ClientError};
use tickwire_protocol::{CreateRoom, ErrorCode, RoomEvent, RoomState};
use tickwire_tests::*;

fn refused<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Server(e)) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// No drones, and matches of a second with no countdown and a second of results.
fn quick_matches(c: &mut TestSetup) {
    c.arena.drones = 0;
    c.arena.match_secs = 1.0;
    c.server.countdown_secs = 0;
    c.server.results_secs = 1;
}

/// Waits for the room to reach `state`.
async fn state(client: &mut Client, state: RoomState) {
    within(&format!("state {}", state.as_str()), async {
        loop {
            if let RoomEvent::StateChanged { state: s, .. } = client.next_event().await.unwrap()
                && s == state
            {
                return;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_rooms_are_unlisted_and_joined_by_code() {
    let server = server(|c| c.arena.drones = 0).await;
    let host = connect(&server, "host").await;
    let guest = connect(&server, "guest").await;
    let made = host
        .create_room(CreateRoom {
            private: true,
            ..arena_room("secret", 4)
        })
        .await
        .unwrap();
    let code = made.code.clone().expect("a private room has a code");
    assert_eq!(code.len(), 6);
    assert!(guest.list_rooms(None).await.unwrap().is_empty());
    assert_eq!(
        refused(guest.join_room(made.room.id).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        refused(guest.join_by_code("ZZZZZZ").await),
        ErrorCode::BadCode
    );
    let joined = guest.join_by_code(&code.to_lowercase()).await.unwrap();
    assert_eq!(joined.room.id, made.room.id);
    assert_eq!(joined.room.players, 2);
    // Public rooms do not get codes; quick-join never lands in a private room.
    let other = connect(&server, "other").await;
    let quick = other.quick_join("arena").await.unwrap();
    assert_ne!(quick.room.id, made.room.id);
    assert_eq!(quick.code, None);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_players_start_a_match_that_ends_with_results() {
    let log = std::env::temp_dir().join(format!("tickwire-matches-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let log_path = log.clone();
    let server = server(move |c| {
        c.arena.drones = 0;
        c.arena.match_secs = 1.0;
        c.server.countdown_secs = 1;
        c.server.results_secs = 1;
        c.server.match_log = Some(log_path);
    })
    .await;
    let mut a = connect(&server, "a").await;
    let mut b = connect(&server, "b").await;
    let room = a.create_room(arena_room("duel", 3)).await.unwrap().room.id;
    b.join_room(room).await.unwrap();
    a.set_ready(true).await.unwrap();
    // Not everyone is ready: listed as waiting, joinable.
    let listed = a.list_rooms(Some("arena")).await.unwrap();
    assert_eq!(listed[0].state, RoomState::Waiting);
    b.set_ready(true).await.unwrap();
    state(&mut a, RoomState::Countdown).await;
    state(&mut a, RoomState::Playing).await;
    // A third player cannot join a match under way.
    let late = connect(&server, "late").await;
    assert_eq!(
        refused(late.join_room(room).await),
        ErrorCode::MatchInProgress
    );
    assert!(late.list_rooms(None).await.unwrap()[0].state == RoomState::Playing);
    assert!(late.list_rooms(None).await.unwrap().len() == 1);
    let open = late
        .call(tickwire_protocol::Request::ListRooms {
            mode: None,
            open_only: true,
        })
        .await
        .unwrap();
    assert_eq!(open, tickwire_protocol::Reply::Rooms(Vec::new()));
    // The match ends by time with a result naming both players.
    let result = within("the results", async {
        loop {
            if let RoomEvent::MatchEnded(r) = b.next_event().await.unwrap() {
                return r;
            }
        }
    })
    .await;
    let players: BTreeSet<_> = result.players.iter().map(|p| p.player).collect();
    assert_eq!(players, BTreeSet::from([a.player(), b.player()]));
    state(&mut a, RoomState::Finished).await;
    state(&mut a, RoomState::Waiting).await;
    // The room left its results only after the result was on disk.
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().last().expect("one line per match");
    assert!(line.contains(r#""type":"match_ended""#), "{line}");
    assert!(line.contains(&format!(r#""room":{}"#, room.0)), "{line}");
    assert!(
        line.contains(&format!(r#""playerId":{}"#, a.player().0)),
        "{line}"
    );
    std::fs::remove_file(&log).unwrap();
    // After the results the room waits again, and the latecomer may join.
    late.join_room(room).await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_starts_early() {
    let server = server(|c| {
        c.arena.drones = 0;
        c.server.countdown_secs = 1;
    })
    .await;
    let mut owner = connect(&server, "owner").await;
    let other = connect(&server, "other").await;
    let room = owner
        .create_room(arena_room("mine", 4))
        .await
        .unwrap()
        .room
        .id;
    other.join_room(room).await.unwrap();
    assert_eq!(refused(other.start_match().await), ErrorCode::NotOwner);
    owner.start_match().await.unwrap();
    state(&mut owner, RoomState::Playing).await;
    assert_eq!(
        refused(owner.start_match().await),
        ErrorCode::MatchInProgress
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobby_limits_are_refused_with_their_codes() {
    let server = server(|c| {
        c.arena.drones = 0;
        c.server.max_rooms = 2;
    })
    .await;
    let a = connect(&server, "a").await;
    let b = connect(&server, "b").await;
    let c = connect(&server, "c").await;
    a.create_room(arena_room("one", 1)).await.unwrap();
    b.create_room(arena_room("two", 1)).await.unwrap();
    assert_eq!(
        refused(c.create_room(arena_room("three", 1)).await),
        ErrorCode::ServerFull
    );
    // Both rooms are full, so quick-join has nowhere to go and cannot make a room.
    assert_eq!(refused(c.quick_join("arena").await), ErrorCode::ServerFull);
    assert_eq!(
        refused(a.join_room(tickwire_protocol::RoomId(2)).await),
        ErrorCode::AlreadyInRoom
    );
    assert_eq!(refused(c.chat("hello").await), ErrorCode::NotInRoom);
    assert_eq!(refused(c.start_match().await), ErrorCode::NotInRoom);
    // A burst of calls past the allowance is refused, and the others are unaffected.
    let mut limited = 0;
    for _ in 0..40 {
        if let Err(ClientError::Server(e)) = c.list_rooms(None).await {
            assert_eq!(e.code, ErrorCode::RateLimited);
            limited += 1;
        }
    }
    assert!(limited >= 10, "{limited} of 40 calls refused");
    a.list_rooms(None).await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_bots_fill_seats_and_play_even_with_no_human() {
    let log = std::env::temp_dir().join(format!("tickwire-bots-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let log_path = log.clone();
    let server = server(move |c| {
        c.arena.drones = 0;
        c.arena.match_secs = 1.0;
        c.server.countdown_secs = 0;
        c.server.results_secs = 1;
        c.server.match_log = Some(log_path);
    })
    .await;
    let mut human = connect(&server, "human").await;
    let made = human
        .create_room(CreateRoom {
            bots: 3,
            ..arena_room("with bots", 4)
        })
        .await
        .unwrap();
    assert_eq!(made.room.players, 4, "three bots and the creator");
    let other = connect(&server, "other").await;
    assert_eq!(
        refused(other.join_room(made.room.id).await),
        ErrorCode::RoomFull
    );
    let too_many = CreateRoom {
        bots: 4,
        ..arena_room("no seat left", 4)
    };
    assert_eq!(
        refused(other.create_room(too_many).await),
        ErrorCode::BadRequest
    );
    // The bots are ready; the human's ready starts the match, and the bots move in it.
    human.set_ready(true).await.unwrap();
    state(&mut human, RoomState::Playing).await;
    let me = human.player();
    let bots_at = |r: &tickwire_client::Received| -> Vec<(u32, [u16; 2])> {
        arena::entities(&r.snapshot)
            .filter(|e| e.kind == tickwire_arena::EntityKind::Player && e.owner != Some(me))
            .map(|e| (e.id.0, e.pos))
            .collect()
    };
    let first = bots_at(&human.next_snapshot().await.unwrap());
    assert_eq!(first.len(), 3);
    snapshot_where(&mut human, "the bots to move", |r| {
        let now = bots_at(r);
        now.len() == 3 && now.iter().zip(&first).all(|(a, b)| a.1 != b.1)
    })
    .await;

    // Zero humans: a room of bots alone plays its match to a result in the match log.
    let bots_only = other
        .create_room(CreateRoom {
            bots: 2,
            ..arena_room("bots alone", 3)
        })
        .await
        .unwrap()
        .room
        .id;
    let mut other = other;
    other.leave_room().await.unwrap();
    let needle = format!(r#""room":{}"#, bots_only.0);
    within("the bots' match in the log", async {
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().any(|l| l.contains(&needle)) {
                return;
            }
            // The log is written when the match ends; look again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    std::fs::remove_file(&log).unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectators_watch_a_match_without_a_seat() {
    let server = server(|c| {
        c.arena.drones = 3;
        c.arena.match_secs = 2.0;
        c.server.countdown_secs = 0;
    })
    .await;
    let mut player = connect(&server, "player").await;
    let room = player
        .create_room(CreateRoom {
            bots: 1,
            ..arena_room("watched", 2)
        })
        .await
        .unwrap()
        .room
        .id;
    player.set_ready(true).await.unwrap();
    state(&mut player, RoomState::Playing).await;
    let mut watcher = connect(&server, "watcher").await;
    assert_eq!(
        refused(watcher.join_room(room).await),
        ErrorCode::MatchInProgress
    );
    let watching = watcher.spectate(room).await.unwrap();
    assert_eq!(watching.entity.0, 0, "a spectator has no entity");
    assert_eq!(watching.room.players, 2, "and takes no seat");
    let me = watcher.player();
    let seen = snapshot_where(&mut watcher, "the match's entities", |r| {
        arena::entities(&r.snapshot)
            .filter(|e| e.kind == tickwire_arena::EntityKind::Player)
            .count()
            == 2
    })
    .await;
    assert!(arena::entities(&seen.snapshot).all(|e| e.owner != Some(me)));
    // Its acks turn the stream into deltas, and it hears the room's events.
    for _ in 0..10 {
        watcher
            .send_input(&tickwire_tests::steer(glam::Vec2::ZERO, 0.0, 0))
            .unwrap();
        watcher.next_snapshot().await.unwrap();
    }
    assert!(
        watcher
            .stats()
            .delta_snapshots
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    within("the watched match to end", async {
        loop {
            if let RoomEvent::MatchEnded(_) = watcher.next_event().await.unwrap() {
                return;
            }
        }
    })
    .await;
    assert_eq!(player.list_rooms(None).await.unwrap()[0].players, 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_fill_empty_seats_for_a_match_and_leave_after() {
    let server = server(quick_matches).await;
    let mut human = connect(&server, "human").await;
    human
        .create_room(CreateRoom {
            fill_bots: true,
            ..arena_room("topped up", 4)
        })
        .await
        .unwrap();
    assert_eq!(human.list_rooms(None).await.unwrap()[0].players, 1);
    human.set_ready(true).await.unwrap();
    state(&mut human, RoomState::Playing).await;
    let players = |r: &tickwire_client::Received| {
        arena::entities(&r.snapshot)
            .filter(|e| e.kind == tickwire_arena::EntityKind::Player)
            .count()
    };
    snapshot_where(&mut human, "three fillers beside the human", |r| {
        players(r) == 4
    })
    .await;
    assert_eq!(human.list_rooms(None).await.unwrap()[0].players, 4);
    state(&mut human, RoomState::Waiting).await;
    // The fillers left with the match: the seats are free for people again.
    assert_eq!(human.list_rooms(None).await.unwrap()[0].players, 1);
    server.shutdown().await;
}

/// A client decodes with the schema it was built for (the arena's): a room of another game is
/// refused on join, naming the first field that differs, and the client is not left seated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_built_for_another_schema_is_refused_on_join_by_the_first_difference() {
    let server = server(|_| {}).await;
    let client = connect(&server, "arena-built").await;
    let refused = client
        .create_room(CreateRoom {
            mode: "standard".into(),
            ..arena_room("load", 16)
        })
        .await;
    match refused {
        Err(ClientError::SchemaMismatch(diff)) => {
            assert!(
                diff.starts_with("player.vel"),
                "names the first difference: {diff}"
            )
        }
        other => panic!("expected a schema mismatch, got {other:?}"),
    }
    // It left the room again: it can go elsewhere, and the standard room is empty.
    let joined = client.create_room(arena_room("home", 4)).await.unwrap();
    assert_eq!(joined.room.mode, "arena");
    let rooms = client.list_rooms(Some("standard")).await.unwrap();
    assert!(rooms.iter().all(|r| r.players == 0), "{rooms:?}");
    server.shutdown().await;
}

/// Names and chat that render as nothing, or reorder what follows them, are refused or kept
/// without the invisible part (NFC, bidirectional controls and zero-width characters removed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_names_and_chat_are_refused_or_cleaned() {
    let server = server(|c| c.arena.drones = 0).await;
    for blank in ["\u{200B}", "\u{3164}", "\u{FEFF}", "\u{202E}"] {
        let refused_hello = Client::connect(tickwire_client::ClientConfig {
            server: server.quic_addr,
            trust: pin(&server),
            name: blank.to_owned(),
            token: None,
            ticket: None,
            decoding: arena(),
        })
        .await;
        assert_eq!(
            refused(refused_hello.map(|_| ())),
            ErrorCode::BadRequest,
            "{blank:?}"
        );
    }
    let eve = connect(&server, "\u{202E}eve\u{202C}").await;
    let bob = connect(&server, "bob").await;
    let joined = eve
        .create_room(arena_room(" \u{200B}lob\u{200D}by ", 4))
        .await
        .unwrap();
    assert_eq!(joined.room.name, "lobby");
    bob.join_room(joined.room.id).await.unwrap();
    assert_eq!(refused(eve.chat("   ").await), ErrorCode::BadRequest);
    assert_eq!(refused(eve.chat("\u{2028}").await), ErrorCode::BadRequest);
    eve.chat("e\u{301}\u{200B}!").await.unwrap();
    let mut bob = bob;
    let (name, text) = within("the chat", async {
        loop {
            if let RoomEvent::Chat { name, text, .. } = bob.next_event().await.unwrap() {
                return (name, text);
            }
        }
    })
    .await;
    assert_eq!((name.as_str(), text.as_str()), ("eve", "\u{E9}!"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_makes_few_rooms_and_a_bot_match_left_alone_closes_after_it() {
    let server = server(quick_matches).await;
    let mut maker = connect(&server, "maker").await;
    // Two open rooms a player: create-and-leave does not make a third.
    for name in ["first", "second"] {
        maker.create_room(arena_room(name, 4)).await.unwrap();
        maker.leave_room().await.unwrap();
    }
    assert_eq!(
        refused(maker.create_room(arena_room("third", 4)).await),
        ErrorCode::RateLimited
    );

    let mut other = connect(&server, "other").await;
    let bots = CreateRoom {
        bots: 2,
        ..arena_room("bots", 3)
    };
    let made = other.create_room(bots.clone()).await.unwrap();
    let mut watcher = connect(&server, "watcher").await;
    watcher.spectate(made.room.id).await.unwrap();
    other.leave_room().await.unwrap();
    // One open room with server bots a player.
    assert_eq!(
        refused(other.create_room(bots.clone()).await),
        ErrorCode::RateLimited
    );
    // Left to themselves the bots play their match; the watcher sees it end, then the room
    // close instead of starting another.
    within("the bots' match to end and the room to close", async {
        let mut ended = false;
        loop {
            match watcher.next_event().await.unwrap() {
                RoomEvent::MatchEnded(_) => ended = true,
                RoomEvent::RoomClosed => break assert!(ended, "closed before the match ended"),
                _ => {}
            }
        }
    })
    .await;
    // With it closed, its maker may make another.
    other.create_room(bots).await.unwrap();
    server.shutdown().await;
}
