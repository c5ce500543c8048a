//! One address's allowances, whatever the transport and however many connections it opens:
//! connections at once, new connections, and wrong private-room codes (the attack: thousands of
//! short-lived sockets guessing codes, each inside its own call limit).

use tickwire_client::{Client, ClientError, SioClient};
use tickwire_protocol::{CreateRoom, ErrorBody, ErrorCode};
use tickwire_tests::*;

/// Address refusals for `reason` over both transports (per process: compare before and after).
async fn refusals(server: &tickwire_server::Server, reason: &str) -> f64 {
    let reason = format!("reason=\"{reason}\"");
    let name = "tickwire_address_refusals_total";
    metric_with(server.http_addr, name, &[&reason]).await
}

fn refused(result: Result<impl std::fmt::Debug, ClientError>) -> ErrorBody {
    match result {
        Err(ClientError::Server(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Whether a QUIC connect was turned away before its handshake (QUIC's CONNECTION_REFUSED).
fn refused_before_handshake(result: Result<Client, ClientError>) -> bool {
    match result {
        Err(ClientError::Connection(quinn::ConnectionError::ConnectionClosed(close))) => {
            close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_holds_at_most_its_connections_over_both_transports() {
    let server = server(|c| c.server.per_address_connections = 4).await;
    let url = format!("http://{}", server.http_addr);
    let before = refusals(&server, "connections").await;
    let quic = [connect(&server, "q1").await, connect(&server, "q2").await];
    let _sio = [
        SioClient::connect(&url, "s1", arena()).await.unwrap(),
        SioClient::connect(&url, "s2", arena()).await.unwrap(),
    ];
    let fifth = Client::connect(config(&server, "q5")).await;
    assert!(refused_before_handshake(fifth), "a fifth QUIC connection");
    let fifth = SioClient::connect(&url, "s5", arena()).await;
    match fifth {
        Err(ClientError::Protocol(e)) => {
            assert!(
                e.contains("rate_limited: too many connections from this address"),
                "{e}"
            )
        }
        Err(other) => panic!("a fifth Socket.IO connection refused by {other}"),
        Ok(_) => panic!("a fifth Socket.IO connection was let in"),
    }
    assert_eq!(refusals(&server, "connections").await, before + 2.0);

    // A connection that goes gives its place back (once the server has seen it go, and the
    // address has a new connection's allowance: one a second here).
    let [first, _second] = quic;
    first.close().await;
    within("a place to come free", async {
        loop {
            match Client::connect(config(&server, "q6")).await {
                Ok(client) => break client,
                Err(e) => assert!(refused_before_handshake(Err(e))),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    server.shutdown().await;
}

fn config(server: &tickwire_server::Server, name: &str) -> tickwire_client::ClientConfig {
    tickwire_client::ClientConfig {
        server: server.quic_addr,
        trust: pin(server),
        name: name.into(),
        token: None,
        ticket: None,
        decoding: arena(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_room_codes_from_fresh_connections_run_out_after_ten() {
    let server = server(|c| c.arena.drones = 0).await;
    let owner = connect(&server, "owner").await;
    let code = owner
        .create_room(CreateRoom {
            private: true,
            ..arena_room("secret", 4)
        })
        .await
        .unwrap()
        .code
        .expect("a private room has a code");
    let wrong = if code == "ZZZZZZ" { "YYYYYY" } else { "ZZZZZZ" };
    let before = refusals(&server, "codes").await;

    // Each guesser is a fresh connection making a few guesses, well inside its own call limit.
    let (mut bad_codes, mut limited) = (0, 0);
    for i in 0..6 {
        let guesser = connect(&server, &format!("guesser {i}")).await;
        for _ in 0..3 {
            let e = refused(guesser.join_by_code(wrong).await);
            match e.code {
                ErrorCode::BadCode => bad_codes += 1,
                ErrorCode::RateLimited => {
                    assert!(e.message.contains("wrong room codes"), "{}", e.message);
                    limited += 1;
                }
                other => panic!("{other:?}: {}", e.message),
            }
        }
        guesser.close().await;
    }
    assert_eq!(bad_codes, 10, "the address's allowance of wrong codes");
    assert_eq!(limited, 8);
    assert_eq!(refusals(&server, "codes").await, before + 8.0);

    // Other calls from the address are not held back by its wrong codes.
    let player = connect(&server, "player").await;
    player.list_rooms(None).await.unwrap();
    let joined_by_id = player.quick_join("arena").await.unwrap();
    assert_ne!(joined_by_id.room.name, "secret");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_makes_a_share_of_the_rooms_not_all_of_them() {
    // 8 connections an address: 2 open rooms, 1 with server bots.
    let server = server(|c| {
        c.arena.drones = 0;
        c.server.per_address_connections = 8;
        c.server.max_rooms = 10;
    })
    .await;
    let mut players = [
        connect(&server, "a").await,
        connect(&server, "b").await,
        connect(&server, "c").await,
    ];
    let with_bots = CreateRoom {
        bots: 1,
        ..arena_room("bots", 4)
    };
    players[0].create_room(with_bots.clone()).await.unwrap();
    let e = refused(players[1].create_room(with_bots).await);
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert!(e.message.contains("your address"), "{}", e.message);
    players[1]
        .create_room(arena_room("plain", 4))
        .await
        .unwrap();
    let e = refused(players[2].create_room(arena_room("one too many", 4)).await);
    assert_eq!(e.code, ErrorCode::RateLimited);
    // Quick-join, finding no open room, would make one: refused the same way.
    players[0].leave_room().await.unwrap();
    players[1].leave_room().await.unwrap();
    let e = refused(players[2].quick_join("standard").await);
    assert_eq!(e.code, ErrorCode::RateLimited, "{}", e.message);
    server.shutdown().await;
}
