//! One process, several nodes: each node has its own QUIC endpoint and rooms, and the lobby is
//! one. A player who comes in through one node and whose room is on another is sent there with
//! a seat reserved, and the client follows by itself.

use std::collections::BTreeSet;
use tickwire_client::{Client, ClientConfig, SioClient};
use tickwire_protocol::{
    ClientFrame, CreateRoom, ErrorCode, PROTOCOL_VERSION, Reply, Request, RoomEvent, ServerFrame,
};
use tickwire_tests::*;

async fn two_nodes() -> tickwire_server::Server {
    server(|c| {
        c.server.nodes = Some(2);
        c.arena.drones = 0;
    })
    .await
}

fn port_of(client: &Client) -> u16 {
    client.connection().remote_address().port()
}

async fn connect_with_token(
    addr: std::net::SocketAddr,
    server: &tickwire_server::Server,
    token: &str,
) -> Client {
    Client::connect(ClientConfig {
        server: addr,
        trust: pin(server),
        name: "back".into(),
        token: Some(token.into()),
        ticket: None,
        decoding: arena(),
    })
    .await
    .expect("client connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_made_on_one_node_is_joined_by_code_through_the_other() {
    let server = two_nodes().await;
    let (a, b) = (node_addr(&server, 0), node_addr(&server, 1));
    assert_ne!(a.port(), b.port());
    let mut host = connect_to(a, pin(&server), "host").await;
    let room = CreateRoom {
        private: true,
        ..arena_room("secret", 4)
    };
    let made = host.create_room(room).await.unwrap();
    assert_eq!(
        port_of(&host),
        a.port(),
        "equal nodes: the room stays on the home node"
    );
    let code = made.code.expect("a private room has a code");

    let mut guest = connect_to(b, pin(&server), "guest").await;
    let joined = guest.join_by_code(&code).await.unwrap();
    assert_eq!(joined.room.id, made.room.id);
    assert_eq!(
        port_of(&guest),
        a.port(),
        "the guest moved to the room's node"
    );
    assert_eq!(guest.player(), joined.player);
    let entity = joined.entity;
    snapshot_where(&mut guest, "the guest's own entity", |r| {
        r.snapshot.get(entity).is_some()
    })
    .await;
    let guest_id = joined.player;
    within("the host to see the guest", async {
        loop {
            if host.next_event().await.unwrap()
                == (RoomEvent::PlayerJoined {
                    player: guest_id,
                    name: "guest".into(),
                })
            {
                return;
            }
        }
    })
    .await;
    // The guest plays over its new connection.
    guest.send_input(&steer(glam::Vec2::X, 0.0, 0)).unwrap();

    // A public room asked for through node 0 goes to node 1, the less loaded; either node
    // lists both.
    let other = connect_to(a, pin(&server), "other").await;
    let public = other.create_room(arena_room("open", 4)).await.unwrap();
    assert_eq!(port_of(&other), b.port(), "placed on the less loaded node");
    let lister = connect_to(b, pin(&server), "lister").await;
    let listed: BTreeSet<u32> = lister
        .list_rooms(None)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id.0)
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from([public.room.id.0]),
        "private rooms stay unlisted"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_quick_joins_through_both_nodes_fill_one_room() {
    let server = two_nodes().await;
    let mut clients = Vec::new();
    for i in 0..12 {
        clients.push(connect_to(node_addr(&server, i % 2), pin(&server), &format!("p{i}")).await);
    }
    let joins = futures_util::future::join_all(clients.iter().map(|c| c.quick_join("arena"))).await;
    let rooms: BTreeSet<u32> = joins
        .into_iter()
        .map(|j| j.expect("quick join").room.id.0)
        .collect();
    assert_eq!(rooms.len(), 1, "one room, not one per node: {rooms:?}");
    let ports: BTreeSet<u16> = clients.iter().map(port_of).collect();
    assert_eq!(ports.len(), 1, "everyone is on the room's node");
    let listed = server.cluster.list(None, false);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].players, 12);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_through_another_node_takes_the_seat_back() {
    let server = two_nodes().await;
    let (a, b) = (node_addr(&server, 0), node_addr(&server, 1));
    let host = connect_to(a, pin(&server), "host").await;
    let made = host.create_room(arena_room("kept", 4)).await.unwrap();
    let player = connect_to(a, pin(&server), "player").await;
    let joined = player.join_room(made.room.id).await.unwrap();
    player.close().await;

    let mut back = connect_with_token(b, &server, &joined.reconnect_token).await;
    let resumed = back.welcome().resumed.clone().expect("the seat was held");
    assert_eq!(
        (resumed.entity, resumed.room.id),
        (joined.entity, made.room.id)
    );
    assert_eq!(port_of(&back), a.port(), "back on the room's node");
    assert_eq!(back.player(), joined.player);
    let entity = joined.entity;
    snapshot_where(&mut back, "the resumed entity", |r| {
        r.snapshot.get(entity).is_some()
    })
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserved_seat_nobody_takes_is_freed_and_its_token_is_then_room_lost() {
    let server = two_nodes().await;
    let (a, b) = (node_addr(&server, 0), node_addr(&server, 1));
    let mut host = connect_to(a, pin(&server), "host").await;
    let made = host.create_room(arena_room("pair", 2)).await.unwrap();

    // A client that asks through node 1 and never goes where it is sent.
    let mut raw = RawControl::open_at(&server, b).await.unwrap();
    let hello = Request::Hello {
        protocol: PROTOCOL_VERSION,
        name: "no-show".into(),
        token: None,
        schemas: Vec::new(),
        ticket: None,
    };
    raw.send(&ClientFrame {
        id: 1,
        request: hello,
    })
    .await
    .unwrap();
    raw.read().await.unwrap();
    let join = Request::JoinRoom { room: made.room.id };
    raw.send(&ClientFrame {
        id: 2,
        request: join,
    })
    .await
    .unwrap();
    let moved = match raw.read().await.unwrap() {
        ServerFrame::Reply {
            id: 2,
            result: Ok(Reply::Moved(m)),
        } => m,
        other => panic!("expected a move, got {other:?}"),
    };
    assert_eq!(moved.node.quic_port, a.port());
    assert_eq!(moved.node.cert_sha256, server.cert_sha256);
    assert_eq!(
        server.cluster.list(None, false)[0].players,
        2,
        "the seat is held"
    );
    let refused = connect_to(b, pin(&server), "late")
        .await
        .join_room(made.room.id)
        .await;
    assert!(
        matches!(&refused, Err(tickwire_client::ClientError::Server(e)) if e.code == ErrorCode::RoomFull),
        "{refused:?}"
    );

    within("the reservation to expire", async {
        loop {
            if let RoomEvent::PlayerLeft { .. } = host.next_event().await.unwrap() {
                return;
            }
        }
    })
    .await;
    assert_eq!(
        server.cluster.list(None, false)[0].players,
        1,
        "the seat is free again"
    );
    let late = connect_with_token(a, &server, &moved.token).await;
    assert_eq!(late.welcome().resumed, None);
    let lost = late.welcome().lost.clone().expect("told why");
    assert_eq!(lost.code, ErrorCode::RoomLost);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_no_node_made_is_room_lost_not_a_hang() {
    let server = two_nodes().await;
    let client = connect_with_token(
        server.quic_addr,
        &server,
        "0badf00d.00112233445566778899aabbccddeeff",
    )
    .await;
    assert_eq!(client.welcome().resumed, None);
    assert_eq!(
        client.welcome().lost.as_ref().map(|e| e.code),
        Some(ErrorCode::RoomLost)
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_players_reach_the_rooms_of_every_node_through_the_shared_port() {
    let server = two_nodes().await;
    let first = connect_to(node_addr(&server, 0), pin(&server), "first").await;
    first.create_room(arena_room("zero", 4)).await.unwrap();
    let second = connect_to(node_addr(&server, 0), pin(&server), "second").await;
    let made = second.create_room(arena_room("one", 4)).await.unwrap();
    assert_eq!(port_of(&second), node_addr(&server, 1).port());

    let url = format!("http://{}", server.http_addr);
    let mut sio = SioClient::connect(&url, "web", arena()).await.unwrap();
    assert_eq!(sio.list_rooms(None).await.unwrap().len(), 2);
    let joined = sio.join_room(made.room.id).await.unwrap();
    let entity = joined.entity;
    snapshot_where(&mut sio, "the Socket.IO player's entity", |r| {
        r.snapshot.get(entity).is_some()
    })
    .await;
    server.shutdown().await;
}
