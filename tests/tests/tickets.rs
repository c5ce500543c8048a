//! A server that asks for tickets: only players holding one signed by the game's backend get
//! in, under the name the ticket gives, and the game's join hook sees who they are (the coins
//! example seats one runner per account). Over QUIC; tests/js/tickets.test.js does the same
//! over Socket.IO with the official client.

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use tickwire_client::{Client, ClientConfig, ClientError, Decoding};
use tickwire_example_coins::Coins;
use tickwire_protocol::{CreateRoom, ErrorCode, RoomEvent};
use tickwire_server::Server;
use tickwire_server::config::ServerConfig;
use tickwire_tests::*;

const KEY: &[u8] = b"the game's backend and the server";

async fn ticketed_server() -> Server {
    let mut config = ServerConfig::loopback();
    config.auth_key = Some(KEY.to_vec());
    Server::builder(config)
        .game::<Coins>("coins", ())
        .start()
        .await
        .expect("server starts")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn signed(claims: serde_json::Value, key: &[u8]) -> String {
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(key))
        .expect("a ticket")
}

/// A ticket for `subject` under `name`, valid for a minute.
fn ticket(subject: &str, name: &str) -> String {
    signed(
        json!({"sub": subject, "name": name, "exp": now() + 60}),
        KEY,
    )
}

async fn connect_with(
    server: &Server,
    name: &str,
    ticket: Option<String>,
    token: Option<String>,
) -> Result<Client, ClientError> {
    Client::connect(ClientConfig {
        server: server.quic_addr,
        trust: pin(server),
        name: name.to_owned(),
        token,
        ticket,
        decoding: Decoding::Full(tickwire_example_coins::schema()),
    })
    .await
}

fn unauthorized<T>(result: Result<T, ClientError>) -> String {
    match result {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.code, ErrorCode::Unauthorized, "{e:?}");
            e.message
        }
        Err(other) => panic!("expected unauthorized, got {other:?}"),
        Ok(_) => panic!("expected unauthorized, got in"),
    }
}

fn room() -> CreateRoom {
    CreateRoom {
        name: "coins".into(),
        mode: String::new(),
        max_players: 4,
        private: false,
        bots: 0,
        fill_bots: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_players_with_a_good_ticket_get_in() {
    let server = ticketed_server().await;
    let no_ticket = connect_with(&server, "ada", None, None).await;
    assert!(unauthorized(no_ticket).contains("needs a ticket"));
    let expired = signed(json!({"sub": "u1", "exp": now() - 120}), KEY);
    let refused = connect_with(&server, "ada", Some(expired), None).await;
    assert!(unauthorized(refused).contains("expired"));
    let forged = signed(
        json!({"sub": "u1", "exp": now() + 60}),
        b"a key the backend never had, 32+",
    );
    let refused = connect_with(&server, "ada", Some(forged), None).await;
    assert!(unauthorized(refused).contains("signature"));
    let refused = connect_with(&server, "ada", Some("garbage".into()), None).await;
    assert!(unauthorized(refused).contains("malformed"));
    // A refused hello closes the connection; the server is still there for a good ticket.
    let ada = connect_with(&server, "ada", Some(ticket("u1", "Ada")), None)
        .await
        .expect("a good ticket gets in");
    ada.create_room(room()).await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_names_the_player_and_the_game_sees_the_account() {
    let server = ticketed_server().await;
    let mut host = connect_with(&server, "host", Some(ticket("u1", "Host")), None)
        .await
        .unwrap();
    let joined = host.create_room(room()).await.unwrap();
    // The client asks to be called "mallory"; the ticket says Ada.
    let ada = connect_with(&server, "mallory", Some(ticket("u2", "Ada")), None)
        .await
        .unwrap();
    ada.join_room(joined.room.id).await.unwrap();
    let name = within("Ada's arrival", async {
        loop {
            if let RoomEvent::PlayerJoined { player, name } = host.next_event().await.unwrap()
                && player == ada.player()
            {
                break name;
            }
        }
    })
    .await;
    assert_eq!(name, "Ada");
    // The same account on a second device: the game's join hook turns it away (coins seats
    // one runner per account), under another name too.
    let again = connect_with(&server, "ada2", Some(ticket("u2", "Ada (phone)")), None)
        .await
        .unwrap();
    match again.join_room(joined.room.id).await {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.code, ErrorCode::Refused, "{e:?}");
        }
        other => panic!("expected the game's refusal, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_goes_back_only_to_the_account_it_was_given_to() {
    let server = ticketed_server().await;
    let ada = connect_with(&server, "ada", Some(ticket("u1", "Ada")), None)
        .await
        .unwrap();
    let joined = ada.create_room(room()).await.unwrap();
    let token = joined.reconnect_token.clone();
    // Someone else who learnt the token, with a ticket of their own.
    let stolen = connect_with(
        &server,
        "eve",
        Some(ticket("u9", "Eve")),
        Some(token.clone()),
    )
    .await;
    assert!(unauthorized(stolen).contains("belongs to another player"));
    // Ada herself, from a new connection, takes her seat back.
    let back = connect_with(&server, "ada", Some(ticket("u1", "Ada")), Some(token))
        .await
        .expect("the seat's own account resumes it");
    let resumed = back.welcome().resumed.as_ref().expect("resumed");
    assert_eq!(resumed.room.id, joined.room.id);
    server.shutdown().await;
}
