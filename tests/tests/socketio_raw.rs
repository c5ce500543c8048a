//! What a Socket.IO client can send that the official client never would, spoken as raw
//! Engine.IO frames over a real websocket: attachments the server must buffer until their
//! packet is whole (the attack: 20 sockets each holding ~9.75 MB grew the server by 188 MB),
//! and Engine.IO's own packets, which never reach tickwire's handlers (the attack: 110,000
//! no-ops in a second).

use futures_util::{SinkExt, StreamExt};
use tickwire_server::transport::socketio::{MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS};
use tickwire_tests::*;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A raw websocket Socket.IO connection, connected to the namespace and welcomed.
async fn welcomed(http: std::net::SocketAddr, name: &str) -> Ws {
    let tcp = tokio::net::TcpStream::connect(http).await.unwrap();
    let url = format!("ws://{http}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    let connect = format!(r#"40{{"name":"{name}"}}"#);
    ws.send(Message::text(connect)).await.unwrap();
    within("welcome", async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg
                && t.starts_with(r#"42["welcome""#)
            {
                return;
            }
        }
        panic!("closed before welcome");
    })
    .await;
    ws
}

/// Reads until the server ends the connection (answering its pings meanwhile, so only the
/// attachment rules can end it).
async fn until_closed(ws: &mut Ws) {
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(t) = msg
            && t.as_str() == "2"
        {
            let _ = ws.send(Message::text("3")).await;
        }
    }
}

fn input_header(attachments: usize) -> Message {
    let placeholders: Vec<String> = (0..attachments)
        .map(|n| format!(r#"{{"_placeholder":true,"num":{n}}}"#))
        .collect();
    Message::text(format!(
        r#"45{attachments}-["input",{}]"#,
        placeholders.join(",")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_unfinished_attachments_close_only_their_connection() {
    let server = server(|c| c.arena.drones = 0).await;
    let url = format!("http://{}", server.http_addr);
    let bystander = tickwire_client::SioClient::connect(&url, "bystander", arena())
        .await
        .unwrap();

    // More attachment bytes than any input needs: closed as they arrive.
    let mut big = welcomed(server.http_addr, "big").await;
    big.send(input_header(2)).await.unwrap();
    for _ in 0..2 {
        let chunk = vec![0u8; MAX_ATTACHMENT_BYTES / 2 + 1];
        big.send(Message::binary(chunk)).await.unwrap();
    }
    within(
        "the oversized packet's connection to close",
        until_closed(&mut big),
    )
    .await;

    // A packet that announces more attachments than an input has: closed on its header, before
    // anything is buffered.
    let mut many = welcomed(server.http_addr, "many").await;
    many.send(input_header(MAX_ATTACHMENTS + 1)).await.unwrap();
    within(
        "the many-attachment packet's connection to close",
        until_closed(&mut many),
    )
    .await;

    // Nobody else noticed.
    use tickwire_client::GameClient;
    bystander.ping().await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_engine_io_noise_is_read_no_faster_than_its_allowance() {
    let server = server(|c| c.arena.drones = 0).await;
    let url = format!("http://{}", server.http_addr);
    let bystander = tickwire_client::SioClient::connect(&url, "bystander", arena())
        .await
        .unwrap();
    let throttled = async || {
        let name = "tickwire_reads_throttled_total";
        metric(server.http_addr, name, "http").await
    };
    let before = throttled().await;
    let mut noisy = welcomed(server.http_addr, "noisy").await;
    // 60,000 pongs nobody asked for (Engine.IO takes them without a word to tickwire): about
    // 420 KB on the wire, past a connection's burst of 256 KiB.
    let mut noise = futures_util::stream::iter((0..60_000).map(|_| Ok(Message::text("3"))));
    within("the noise to be taken", noisy.send_all(&mut noise))
        .await
        .unwrap();
    // A call after it is answered only once the server has read everything before it.
    noisy.send(Message::text(r#"4299["ping"]"#)).await.unwrap();
    within("the call after the noise to be answered", async {
        while let Some(Ok(msg)) = noisy.next().await {
            if let Message::Text(t) = msg
                && t.starts_with("4399")
            {
                return;
            }
        }
        panic!("closed before the answer");
    })
    .await;
    assert!(
        throttled().await > before,
        "the noisy connection was held back"
    );
    use tickwire_client::GameClient;
    bystander.ping().await.unwrap();
    server.shutdown().await;
}
