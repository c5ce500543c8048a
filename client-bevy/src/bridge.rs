//! The async side: a small tokio runtime beside Bevy's loop, running one task that owns the
//! [`tickwire_client::Client`]. Bevy and the task talk through two bounded channels; nothing
//! here knows about Bevy, so the systems stay plain and the task stays testable.
//!
//! Inputs do not go through the task: the game loop holds an [`InputSender`] (a clone of the
//! QUIC connection) so it learns each input's seq at once, which prediction needs. Lobby calls
//! run as tasks of their own, so a reply on its way never holds up snapshots.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tickwire_client::{Client, ClientConfig, GameClient, InputSender, Received};
use tickwire_protocol::{Reply, Request, RoomEvent, Welcome};
use tokio::sync::mpsc;

/// What the game asks of the task.
#[derive(Debug)]
pub enum Command {
    /// A lobby call; its reply comes back as [`Update::Reply`] with the same request.
    Call(Request),
    /// Measures the round trip through the server's request path.
    Ping,
}

/// What the task tells the game.
pub enum Update {
    Connected {
        welcome: Welcome,
        inputs: InputSender,
    },
    /// Connecting failed, or the connection ended; the text says why.
    Closed(String),
    Reply {
        request: Request,
        result: Result<Reply, String>,
    },
    Event(RoomEvent),
    Snapshot(Arc<Received>),
    Rtt(Duration),
}

/// Updates waiting for the game, at most. Snapshots are dropped when it is full (the game is
/// not running its loop), so a stalled window cannot grow memory.
const UPDATE_QUEUE: usize = 1024;
/// Commands waiting for the task, at most; past it a command is refused at once.
const COMMAND_QUEUE: usize = 64;

/// The runtime and both ends of the channels the game uses.
pub struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
    commands: mpsc::Sender<Command>,
    updates: mpsc::Receiver<Update>,
}

impl Bridge {
    /// Starts the runtime and the task that connects with `config`.
    pub fn start(config: ClientConfig) -> std::io::Result<Bridge> {
        // One worker: the task is light, and the game's own threads need the cores.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tickwire-net")
            .enable_all()
            .build()?;
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (updates_tx, updates) = mpsc::channel(UPDATE_QUEUE);
        runtime.spawn(run(config, commands_rx, updates_tx));
        Ok(Bridge {
            runtime: Some(runtime),
            commands,
            updates,
        })
    }

    /// Queues a command; false when the task is gone or too far behind.
    pub fn send(&self, command: Command) -> bool {
        self.commands.try_send(command).is_ok()
    }

    /// The next update waiting, without blocking.
    pub fn try_recv(&mut self) -> Option<Update> {
        self.updates.try_recv().ok()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropping a runtime blocks on its tasks; the game loop must not wait on the network.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn run(
    config: ClientConfig,
    mut commands: mpsc::Receiver<Command>,
    updates: mpsc::Sender<Update>,
) {
    let mut client = match Client::connect(config).await {
        Ok(client) => client,
        Err(e) => {
            let _ = updates.try_send(Update::Closed(e.to_string()));
            return;
        }
    };
    let connected = Update::Connected {
        welcome: client.welcome().clone(),
        inputs: client.input_sender(),
    };
    if updates.try_send(connected).is_err() {
        return;
    }
    let mut snapshots = client.state().snapshot_feed();
    let why = loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else {
                    // The game dropped its bridge: say goodbye to the server.
                    client.close().await;
                    return;
                };
                // Each call is its own task: the loop goes on forwarding snapshots and events
                // while the reply is on its way. The server answers in order.
                let (caller, updates) = (client.caller(), updates.clone());
                tokio::spawn(async move {
                    let update = match command {
                        Command::Call(request) => {
                            let result = caller.call(request.clone()).await.map_err(|e| e.to_string());
                            Update::Reply { request, result }
                        }
                        Command::Ping => {
                            let sent = Instant::now();
                            match caller.call(Request::Ping { client_time_us: 0 }).await {
                                Ok(_) => Update::Rtt(sent.elapsed()),
                                // A lost connection shows on the feeds below.
                                Err(_) => return,
                            }
                        }
                    };
                    let _ = updates.send(update).await;
                });
            }
            changed = snapshots.changed() => {
                if changed.is_err() {
                    break "the connection closed".to_owned();
                }
                let newest = snapshots.borrow_and_update().clone();
                if let Some(received) = newest {
                    // A full queue means the game is not draining it: skip this snapshot
                    // rather than wait (the next one supersedes it anyway).
                    let _ = updates.try_send(Update::Snapshot(received));
                }
            }
            event = client.next_event() => match event {
                Ok(event) => {
                    if updates.send(Update::Event(event)).await.is_err() {
                        return;
                    }
                }
                Err(e) => break e.to_string(),
            },
        }
    };
    let _ = updates.try_send(Update::Closed(why));
}
