//! Nodes: one process serves on every core by running one node per core, each with its own
//! QUIC endpoint (quinn drives an endpoint from one task) and its own lobby and rooms. They
//! share the HTTP port and one logical lobby: the [`Directory`] lists every node's rooms and
//! codes, and decides where a new room goes. A room lives on one node; a QUIC player whose room
//! is on another node is handed a seat reserved there ([`tickwire_protocol::Moved`]) and
//! connects to it. Socket.IO players all come in through the shared HTTP port, so their
//! session talks to the room's node directly. See docs/ARCHITECTURE.md, "Nodes".

pub mod directory;
pub mod shared;

pub use directory::{Directory, LEASE, Listing, Made, Maker, NodeId};

use crate::lobby::{LobbyHandle, SeatCall};
use crate::random::{self, RandomSource};
use crate::session::Seeker;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tickwire_protocol::{ErrorBody, ErrorCode, Moved, NodeAddress, RoomId, RoomInfo};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a seat reserved for a player sent to another node waits for it.
pub const RESERVATION: Duration = Duration::from_secs(10);

/// The directory the nodes of this process share.
#[derive(Clone, Default)]
pub struct SharedDirectory {
    directory: Arc<Mutex<Directory>>,
    /// Told whenever a node's rooms change, so other machines hear of it without waiting for
    /// the next refresh.
    changed: Arc<Notify>,
}

impl SharedDirectory {
    /// The directory, for one lookup or write. A panic elsewhere while it was held leaves
    /// plain data behind, still good to read.
    pub fn lock(&self) -> MutexGuard<'_, Directory> {
        self.directory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completes after a node's rooms changed (once for any number of changes meanwhile).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    fn touch(&self) {
        self.changed.notify_one();
    }
}

/// A node's own part of the directory: what its lobby writes there.
#[derive(Clone)]
pub struct Registry {
    pub node: NodeId,
    directory: SharedDirectory,
}

impl Registry {
    pub fn new(node: NodeId, directory: SharedDirectory) -> Registry {
        Registry { node, directory }
    }

    /// A room of this node as it is now.
    pub fn put(&self, listing: Listing) {
        self.directory.lock().put(listing);
        self.directory.touch();
    }

    /// What `maker` has made that is still open, on every node.
    pub fn made_by(&self, maker: Maker) -> Made {
        self.directory.lock().made_by(maker)
    }

    pub fn remove(&self, room: RoomId) {
        self.directory.lock().remove(room);
        self.directory.touch();
    }

    pub fn claim_code(&self, code: &str, room: RoomId) -> bool {
        self.directory.lock().claim_code(code, room)
    }

    /// A reconnect token only this node takes: the node's name, a dot, the secret. Any node
    /// sends a hello with it here, and a token whose node is gone is known lost at once.
    pub fn token(&self, random: &dyn RandomSource) -> Result<String, random::Unavailable> {
        Ok(format!(
            "{}.{}",
            self.node,
            random::reconnect_token(random)?
        ))
    }
}

/// One of this process's nodes.
pub struct LocalNode {
    pub id: NodeId,
    pub lobby: LobbyHandle,
    pub address: NodeAddress,
}

/// Which node a call goes to: one of this process's (by index), or another machine's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    Local(usize),
    Remote(NodeId),
}

/// This process's nodes and the directory they share: what a session asks where to go.
pub struct Cluster {
    nodes: Vec<LocalNode>,
    directory: SharedDirectory,
    /// What an empty mode name means (the first registered mode).
    default_mode: String,
    /// Calls to other machines' nodes, with `--redis`.
    remote: OnceLock<Arc<shared::Remote>>,
}

impl Cluster {
    pub fn new(nodes: Vec<LocalNode>, directory: SharedDirectory, default_mode: String) -> Self {
        {
            let mut d = directory.lock();
            for n in &nodes {
                d.add_node(n.id.clone(), n.address.clone());
            }
        }
        Cluster {
            nodes,
            directory,
            default_mode,
            remote: OnceLock::new(),
        }
    }

    /// Connects this process's nodes to other machines' through `remote`.
    pub fn join(&self, remote: Arc<shared::Remote>) {
        let _ = self.remote.set(remote);
    }

    pub fn directory(&self) -> &SharedDirectory {
        &self.directory
    }

    pub fn nodes(&self) -> &[LocalNode] {
        &self.nodes
    }

    pub fn node(&self, index: usize) -> &LocalNode {
        &self.nodes[index.min(self.nodes.len() - 1)]
    }

    fn index(&self, node: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == node)
    }

    /// The place of a node the directory named; `home` when it named none.
    fn resolve(&self, node: Option<NodeId>, home: usize) -> Place {
        match node {
            None => Place::Local(home),
            Some(n) => match self.index(&n) {
                Some(i) => Place::Local(i),
                None => Place::Remote(n),
            },
        }
    }

    /// Where a player sent to `place` connects.
    pub fn address(&self, place: &Place) -> Option<NodeAddress> {
        match place {
            Place::Local(i) => Some(self.node(*i).address.clone()),
            Place::Remote(node) => self.directory.lock().address(node).cloned(),
        }
    }

    /// Public rooms of every node (see [`Directory::list`]).
    pub fn list(&self, mode: Option<&str>, open_only: bool) -> Vec<RoomInfo> {
        self.directory.lock().list(mode, open_only)
    }

    /// Where a new room goes (see [`Directory::place`]).
    pub fn place(&self, home: usize) -> Place {
        let placed = self.directory.lock().place(&self.node(home).id);
        self.resolve(placed, home)
    }

    /// Where a quick join of `mode` goes: the node of the fullest open public room of the
    /// mode; else the node that opens one, which concurrent quick joins agree on so they fill
    /// one room ([`Directory::opening`], and with other machines the shared directory's).
    pub async fn quick(&self, mode: &str, home: usize) -> Place {
        let mode = if mode.is_empty() {
            &self.default_mode
        } else {
            mode
        };
        let (fullest, candidate) = {
            let d = self.directory.lock();
            (d.fullest_open(mode), d.place(&self.node(home).id))
        };
        let placed = match (fullest, candidate) {
            (Some(node), _) => Some(node),
            (None, Some(candidate)) => Some(match self.remote.get() {
                Some(remote) => remote.opening(mode, candidate).await,
                None => {
                    let now = Instant::now().into_std();
                    self.directory.lock().opening(mode, candidate, now)
                }
            }),
            (None, None) => None,
        };
        self.resolve(placed, home)
    }

    /// The node hosting `room`; an unknown room is `home`'s to refuse.
    pub fn room_node(&self, room: RoomId, home: usize) -> Place {
        let node = self.directory.lock().room_node(room).cloned();
        self.resolve(node, home)
    }

    /// The node hosting the private room with `code`; an unknown code is `home`'s to refuse.
    /// A code this process has not mirrored yet (a room made on another machine a moment ago)
    /// is looked up in the shared directory.
    pub async fn code_node(&self, code: &str, home: usize) -> Place {
        let node = self.directory.lock().code_node(code).cloned();
        let node = match (node, self.remote.get()) {
            (Some(node), _) => Some(node),
            (None, Some(remote)) => remote.find_code(code).await,
            (None, None) => None,
        };
        self.resolve(node, home)
    }

    /// The node a reconnect token belongs to; `None` when no node of the cluster is its
    /// maker any more (or it was never a token).
    pub fn token_node(&self, token: &str) -> Option<Place> {
        let (node, _) = token.split_once('.')?;
        let known = self.directory.lock().address(node).is_some();
        known.then(|| self.resolve(Some(node.to_owned()), 0))
    }

    /// A fresh id for a call to another machine's node.
    pub fn new_call_id(&self) -> u64 {
        self.remote.get().map_or(0, |r| r.new_call_id())
    }

    /// Reserves a seat for `seeker` on another machine's `node` and says where to take it.
    /// The call goes under `id`: the same call asked again under the same id (after a
    /// timeout) is carried out once.
    pub async fn reserve_remote(
        &self,
        node: &str,
        id: u64,
        seeker: Seeker,
        call: SeatCall,
    ) -> Result<Moved, ErrorBody> {
        let remote = self.remote.get().ok_or_else(|| {
            ErrorBody::new(ErrorCode::Internal, "this server reaches no other machine")
        })?;
        let (token, address) = remote.reserve(node, id, seeker, call).await?;
        Ok(crate::session::moved(address, token))
    }
}
