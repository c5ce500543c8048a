//! The board game (four in a row) end to end: a game whose state is room-level and whose moves
//! are typed messages, played by real clients over QUIC and over Socket.IO: lobby, ready-up,
//! turns told to one player, moves refused by the game with its reason, bad messages refused
//! by the declaration and counted, and the result.

use tickwire_board::{BOARD, BoardView, Disc, ToPlayer, ToRoom};
use tickwire_client::{ClientError, Decoding, SioClient};
use tickwire_protocol::{CreateRoom, ErrorCode, Messages, PlayerId, Request, RoomEvent};
use tickwire_tests::*;

fn board() -> Decoding {
    Decoding::Full(tickwire_board::schema())
}

fn board_room(private: bool) -> CreateRoom {
    CreateRoom {
        name: "four".into(),
        mode: "board".into(),
        max_players: 3,
        private,
        bots: 0,
        fill_bots: false,
    }
}

fn code(result: Result<(), ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Server(e)) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Waits for the game to tell `client` it is its move.
async fn my_turn(client: &mut impl GameClient) -> u8 {
    within("your_turn", async {
        loop {
            if let RoomEvent::Message { kind, slots } = client.next_event().await.unwrap() {
                let ToPlayer::YourTurn { moves } = ToPlayer::from_message(kind, &slots).unwrap();
                return moves;
            }
        }
    })
    .await
}

async fn match_result(client: &mut impl GameClient) -> Option<PlayerId> {
    within("the match to end", async {
        loop {
            if let RoomEvent::MatchEnded(r) = client.next_event().await.unwrap() {
                return r.winner;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_quic_players_play_four_in_a_row_to_a_result() {
    let server = server(|_| {}).await;
    let addr = server.quic_addr;
    let mut red = connect_as(addr, pin(&server), "red", board()).await;
    let mut yellow = connect_as(addr, pin(&server), "yellow", board()).await;
    let joined = red.create_room(board_room(false)).await.unwrap();
    assert_eq!(joined.entity.0, 0, "a board player owns no entity");
    yellow.join_room(joined.room.id).await.unwrap();
    // No match yet: the game refuses the move with its reason.
    match red.send_message(&ToRoom::Drop { column: 0 }).await {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.code, ErrorCode::Refused);
            assert_eq!(e.message, "no match is running");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    red.set_ready(true).await.unwrap();
    yellow.set_ready(true).await.unwrap();
    assert_eq!(my_turn(&mut red).await, 0);
    // Out of turn, and a column past the declared range (refused before the game sees it):
    // both counted.
    let before = metric(server.http_addr, "tickwire_messages_refused_total", "quic").await;
    assert_eq!(
        code(yellow.send_message(&ToRoom::Drop { column: 0 }).await),
        ErrorCode::Refused
    );
    let past = Request::Message {
        kind: 0,
        slots: vec![7],
    };
    assert!(matches!(
        yellow.call(past).await,
        Err(ClientError::Server(e)) if e.code == ErrorCode::BadRequest
    ));
    let unknown = Request::Message {
        kind: 9,
        slots: vec![],
    };
    assert!(matches!(
        yellow.call(unknown).await,
        Err(ClientError::Server(e)) if e.code == ErrorCode::BadRequest
    ));
    let after = metric(server.http_addr, "tickwire_messages_refused_total", "quic").await;
    assert!(after >= before + 3.0, "{before} -> {after}");
    // The client refuses what it cannot declare before sending.
    assert!(matches!(
        red.send_message(&ToRoom::Drop { column: 9 }).await,
        Err(ClientError::Undeclared(_))
    ));
    red.send_message(&ToRoom::Drop { column: 0 }).await.unwrap();
    yellow
        .send_message(&ToRoom::Drop { column: 0 })
        .await
        .unwrap();
    // The board replicates as the room's one entity.
    let seen = snapshot_where(&mut red, "both discs on the board", |r| {
        r.snapshot
            .get(BOARD)
            .and_then(|e| BoardView::from_slots(e.values))
            .is_some_and(|b| b.moves == 2)
    })
    .await;
    let view = BoardView::from_slots(seen.snapshot.get(BOARD).unwrap().values).unwrap();
    assert_eq!(
        (view.cell(0, 0), view.cell(1, 0)),
        (Disc::Red, Disc::Yellow)
    );
    assert_eq!(view.red, Some(red.player()));
    for column in 1..3 {
        red.send_message(&ToRoom::Drop { column }).await.unwrap();
        yellow.send_message(&ToRoom::Drop { column }).await.unwrap();
    }
    red.send_message(&ToRoom::Drop { column: 3 }).await.unwrap();
    assert_eq!(match_result(&mut yellow).await, Some(red.player()));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_players_play_a_private_board_and_bad_messages_are_counted() {
    let server = server(|_| {}).await;
    let url = format!("http://{}", server.http_addr);
    let mut red = SioClient::connect(&url, "red", board()).await.unwrap();
    let mut yellow = SioClient::connect(&url, "yellow", board()).await.unwrap();
    let joined = red.create_room(board_room(true)).await.unwrap();
    let code_word = joined.code.clone().expect("a private room has a code");
    yellow.join_by_code(&code_word).await.unwrap();
    red.set_ready(true).await.unwrap();
    yellow.set_ready(true).await.unwrap();
    let before = metric(
        server.http_addr,
        "tickwire_messages_refused_total",
        "socketio",
    )
    .await;
    my_turn(&mut red).await;
    red.send_message(&ToRoom::Drop { column: 0 }).await.unwrap();
    my_turn(&mut yellow).await;
    assert_eq!(
        code(red.send_message(&ToRoom::Drop { column: 2 }).await),
        ErrorCode::Refused
    );
    let past = Request::Message {
        kind: 0,
        slots: vec![12],
    };
    assert!(matches!(
        yellow.call(past).await,
        Err(ClientError::Server(e)) if e.code == ErrorCode::BadRequest
    ));
    let after = metric(
        server.http_addr,
        "tickwire_messages_refused_total",
        "socketio",
    )
    .await;
    assert!(after >= before + 2.0, "{before} -> {after}");
    // An input the board does not declare (it declares none) is refused and counted too; the
    // socket's events are taken in order, so it is counted before the ping is answered.
    let inputs_before = metric(
        server.http_addr,
        "tickwire_inputs_refused_total",
        "socketio",
    )
    .await;
    yellow.send_slots(vec![1, 2, 3]).unwrap();
    yellow.ping().await.unwrap();
    let inputs_after = metric(
        server.http_addr,
        "tickwire_inputs_refused_total",
        "socketio",
    )
    .await;
    assert!(
        inputs_after > inputs_before,
        "{inputs_before} -> {inputs_after}"
    );
    yellow
        .send_message(&ToRoom::Drop { column: 0 })
        .await
        .unwrap();
    for column in 1..3 {
        my_turn(&mut red).await;
        red.send_message(&ToRoom::Drop { column }).await.unwrap();
        my_turn(&mut yellow).await;
        yellow.send_message(&ToRoom::Drop { column }).await.unwrap();
    }
    my_turn(&mut red).await;
    red.send_message(&ToRoom::Drop { column: 3 }).await.unwrap();
    assert_eq!(match_result(&mut yellow).await, Some(red.player()));
    // Resigning outside a match is refused by the game.
    assert_eq!(
        code(red.send_message(&ToRoom::Resign).await),
        ErrorCode::Refused
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_room_refuses_bots_and_an_arena_client() {
    let server = server(|_| {}).await;
    let host = connect_as(server.quic_addr, pin(&server), "host", board()).await;
    let with_bots = CreateRoom {
        bots: 1,
        ..board_room(false)
    };
    assert!(matches!(
        host.create_room(with_bots).await,
        Err(ClientError::Server(e)) if e.code == ErrorCode::BadRequest
    ));
    let joined = host.create_room(board_room(false)).await.unwrap();
    let arena_player = connect(&server, "shooter").await;
    assert!(matches!(
        arena_player.join_room(joined.room.id).await,
        Err(ClientError::SchemaMismatch(_))
    ));
    // Resuming the board seat with a client built for the arena is refused the same way.
    host.close().await;
    let resumed = tickwire_client::Client::connect(tickwire_client::ClientConfig {
        server: server.quic_addr,
        trust: pin(&server),
        name: "host".into(),
        token: Some(joined.reconnect_token.clone()),
        ticket: None,
        decoding: arena(),
    })
    .await;
    assert!(
        matches!(resumed, Err(ClientError::SchemaMismatch(_))),
        "{:?}",
        resumed.err()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_room_has_two_seats_and_anyone_may_watch() {
    let server = server(|_| {}).await;
    let addr = server.quic_addr;
    let red = connect_as(addr, pin(&server), "red", board()).await;
    let yellow = connect_as(addr, pin(&server), "yellow", board()).await;
    let third = connect_as(addr, pin(&server), "third", board()).await;
    let made = red.create_room(board_room(false)).await.unwrap();
    assert_eq!(made.room.max_players, 2, "capped to the game's two seats");
    yellow.join_room(made.room.id).await.unwrap();
    assert!(matches!(
        third.join_room(made.room.id).await,
        Err(ClientError::Server(e)) if e.code == ErrorCode::RoomFull
    ));
    third.spectate(made.room.id).await.unwrap();
    server.shutdown().await;
}
