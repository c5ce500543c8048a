//! The README's example game (`examples/coins`), a crate of its own on the public API, played
//! over both transports: a player runs with its declared input, waves with a message everyone
//! hears, and a server bot (the game's AI) plays beside it.

use glam::Vec2;
use std::sync::Arc;
use tickwire_client::{Decoding, SioClient};
use tickwire_example_coins::{Coins, Heard, PLAYER, Run, Say};
use tickwire_protocol::{CreateRoom, Messages, RoomEvent};
use tickwire_server::Server;
use tickwire_server::config::ServerConfig;
use tickwire_tests::*;

async fn coins_server() -> Server {
    Server::builder(ServerConfig::loopback())
        .game::<Coins>("coins", ())
        .start()
        .await
        .expect("server starts")
}

fn coins() -> Decoding {
    Decoding::Full(tickwire_example_coins::schema())
}

fn with_a_bot() -> CreateRoom {
    CreateRoom {
        name: "coins".into(),
        mode: String::new(),
        max_players: 4,
        private: false,
        bots: 1,
        fill_bots: false,
    }
}

/// Runs right until the player's own entity has moved right, then waves and hears it.
async fn run_and_wave(client: &mut impl GameClient) {
    let me = client.player();
    let x = |r: &tickwire_client::Received| {
        r.snapshot
            .iter()
            .find(|e| e.kind == PLAYER && e.owner == Some(me))
            .map(|e| e.values[0])
    };
    let start = snapshot_where(client, "my runner", |r| x(r).is_some()).await;
    let start = x(&start).unwrap();
    within("the runner to move right", async {
        loop {
            client.send_input(&Run { dir: Vec2::X }).unwrap();
            let r = client.next_snapshot().await.unwrap();
            if x(&r).is_some_and(|now| now > start + 40) {
                break;
            }
        }
    })
    .await;
    client.send_message(&Say::Wave).await.unwrap();
    within("the wave to come back", async {
        loop {
            // Everyone in the room hears every wave; wait for one's own.
            if let RoomEvent::Message { kind, slots } = client.next_event().await.unwrap()
                && Heard::from_message(kind, &slots).unwrap() == (Heard::Waved { player: me.0 })
            {
                break;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_game_plays_over_quic_and_socketio_with_a_server_bot() {
    let server = coins_server().await;
    let mut quic = connect_as(server.quic_addr, pin(&server), "quic", coins()).await;
    let joined = quic.create_room(with_a_bot()).await.unwrap();
    assert_eq!(
        joined.room.mode, "coins",
        "the first registered is the default"
    );
    assert_eq!(joined.room.players, 2, "the bot took a seat");
    let url = format!("http://{}", server.http_addr);
    let mut sio = SioClient::connect(&url, "sio", coins()).await.unwrap();
    sio.join_room(joined.room.id).await.unwrap();
    run_and_wave(&mut quic).await;
    run_and_wave(&mut sio).await;
    // The hello named the client's schema: the join carried only its hash.
    assert!(joined.schema.is_none());
    assert_eq!(joined.schema_hash, tickwire_example_coins::schema().hash());
    // A client that holds no schema gets it in full.
    let blind = connect_as(server.quic_addr, pin(&server), "blind", Decoding::TicksOnly).await;
    let seen = blind.join_room(joined.room.id).await.unwrap();
    let schema: &Arc<_> = seen.schema.as_ref().expect("the schema in full");
    assert_eq!(schema.input()[0].name, "dir");
    assert_eq!(schema.hash(), joined.schema_hash);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_game_refuses_a_seat_with_its_reason_and_the_lobby_gives_it_back() {
    let server = coins_server().await;
    let first = connect_as(server.quic_addr, pin(&server), "twin", coins()).await;
    let mut second = connect_as(server.quic_addr, pin(&server), "twin", coins()).await;
    let room = first
        .create_room(CreateRoom {
            bots: 0,
            ..with_a_bot()
        })
        .await
        .unwrap()
        .room
        .id;
    match second.join_room(room).await {
        Err(tickwire_client::ClientError::Server(e)) => {
            assert_eq!(e.code, tickwire_protocol::ErrorCode::Refused);
            assert_eq!(e.message, "\"twin\" is already playing here");
        }
        other => panic!("expected the game's refusal, got {other:?}"),
    }
    // The lobby hears of it from the room and frees the seat it had given.
    within("the lobby to count one player again", async {
        loop {
            let rooms = second.list_rooms(Some("coins")).await.unwrap();
            if rooms.iter().any(|r| r.id == room && r.players == 1) {
                break;
            }
        }
    })
    .await;
    // The refused player is free to watch, and to play in a room of its own.
    second.spectate(room).await.unwrap();
    second.leave_room().await.unwrap();
    let own = second.create_room(with_a_bot()).await.unwrap();
    assert_eq!(own.room.players, 2, "itself and a bot");
    server.shutdown().await;
}
