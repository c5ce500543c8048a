//! Nodes: one process serves on every core by running one node per core, each with its own
//! QUIC endpoint (quinn drives an endpoint from one task) and its own lobby and rooms. They
//! share the HTTP port and one logical lobby: the [`Directory`] lists every node's rooms and
//! codes, and decides where a new room goes. A room lives on one node; a QUIC player whose room
//! is on another node is handed a seat reserved there ([`tickwire_protocol::Moved`]) and
//! connects to it. Socket.IO players all come in through the shared HTTP port, so their
//! session talks to the room's node directly. See docs/ARCHITECTURE.md, "Nodes".

pub mod directory;

pub use directory::{Directory, Listing, Made, Maker, NodeId};

use crate::lobby::LobbyHandle;
use crate::random::{self, RandomSource};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tickwire_protocol::{NodeAddress, RoomId, RoomInfo};
use tokio::time::Instant;

/// How long a seat reserved for a player sent to another node waits for it.
pub const RESERVATION: Duration = Duration::from_secs(10);

/// The directory the nodes of this process share.
#[derive(Clone, Default)]
pub struct SharedDirectory(Arc<Mutex<Directory>>);

impl SharedDirectory {
    /// The directory, for one lookup or write. A panic elsewhere while it was held leaves
    /// plain data behind, still good to read.
    pub fn lock(&self) -> MutexGuard<'_, Directory> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
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
    }

    /// What `maker` has made that is still open, on every node.
    pub fn made_by(&self, maker: Maker) -> Made {
        self.directory.lock().made_by(maker)
    }

    pub fn remove(&self, room: RoomId) {
        self.directory.lock().remove(room);
    }

    pub fn claim_code(&self, code: &str, room: RoomId) -> bool {
        self.directory.lock().claim_code(code, room)
    }

    pub fn release_code(&self, code: &str) {
        self.directory.lock().release_code(code)
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

/// A fresh node name: 8 hex digits from the secure random source.
pub fn new_node_id(random: &dyn RandomSource) -> Result<NodeId, random::Unavailable> {
    let mut bytes = [0u8; 4];
    random.fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// One of this process's nodes.
pub struct LocalNode {
    pub id: NodeId,
    pub lobby: LobbyHandle,
    pub address: NodeAddress,
}

/// This process's nodes and the directory they share: what a session asks where to go.
pub struct Cluster {
    nodes: Vec<LocalNode>,
    directory: SharedDirectory,
    /// What an empty mode name means (the first registered mode).
    default_mode: String,
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
        }
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

    /// Public rooms of every node (see [`Directory::list`]).
    pub fn list(&self, mode: Option<&str>, open_only: bool) -> Vec<RoomInfo> {
        self.directory.lock().list(mode, open_only)
    }

    /// Where a new room goes (see [`Directory::place`]).
    pub fn place(&self, home: usize) -> usize {
        let home_id = &self.node(home).id;
        let placed = self.directory.lock().place(home_id);
        placed.and_then(|n| self.index(&n)).unwrap_or(home)
    }

    /// Where a quick join of `mode` goes (see [`Directory::quick`]).
    pub fn quick(&self, mode: &str, home: usize) -> usize {
        let mode = if mode.is_empty() {
            &self.default_mode
        } else {
            mode
        };
        let home_id = &self.node(home).id;
        let placed = self
            .directory
            .lock()
            .quick(mode, home_id, Instant::now().into_std());
        placed.and_then(|n| self.index(&n)).unwrap_or(home)
    }

    /// The node hosting `room`; an unknown room is `home`'s to refuse.
    pub fn room_node(&self, room: RoomId, home: usize) -> usize {
        let node = self.directory.lock().room_node(room).cloned();
        node.and_then(|n| self.index(&n)).unwrap_or(home)
    }

    /// The node hosting the private room with `code`; an unknown code is `home`'s to refuse.
    pub fn code_node(&self, code: &str, home: usize) -> usize {
        let node = self.directory.lock().code_node(code).cloned();
        node.and_then(|n| self.index(&n)).unwrap_or(home)
    }

    /// The node a reconnect token belongs to; `None` when no node of the cluster is its
    /// maker any more (or it was never a token).
    pub fn token_node(&self, token: &str) -> Option<usize> {
        let (node, _) = token.split_once('.')?;
        self.index(node)
    }
}
