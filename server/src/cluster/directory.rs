//! The directory: which node hosts which room, the private codes, and how loaded each node is.
//! Each node's lobby writes its own rooms here as they change; sessions read it to list rooms
//! and to decide which node answers a join. With `--redis`, the nodes of other machines are
//! mirrored in too ([`Directory::mirror`]), each a lease that lapses unless renewed. It is
//! plain data, stepped by tests without tasks or a clock (times come in as arguments): the
//! nodes of one process share one behind a mutex ([`super::Cluster`]), held only for a lookup
//! or a write, never across an await.

use crate::peers::PeerKey;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tickwire_protocol::{NodeAddress, PlayerId, RoomId, RoomInfo, RoomState};

/// A node's name in the directory ([`crate::random::node_id`]).
pub type NodeId = String;

/// How long the first quick join of a mode that found no open room sends the next ones of
/// that mode to the node it chose: concurrent quick joins fill one new room, not one each.
pub const OPENING: Duration = Duration::from_secs(2);

/// How long another machine's node and its rooms stay listed without a fresh read of them.
pub const LEASE: Duration = Duration::from_secs(5);

/// One room as the directory lists it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Listing {
    pub node: NodeId,
    pub info: RoomInfo,
    /// The join code of a private room.
    pub code: Option<String>,
    pub maker: Maker,
    /// Made with server bots (seated or filling): the costly kind, limited more tightly.
    pub with_bots: bool,
}

/// The player and address a room was made by (quick joins included): rooms count against
/// their maker on every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Maker {
    pub player: PlayerId,
    pub origin: PeerKey,
}

/// Rooms open now, on every node, that one maker made: `(rooms, of those with bots)`, by its
/// player and by its address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Made {
    pub player: (usize, usize),
    pub address: (usize, usize),
}

impl Listing {
    /// A free seat, and the match not yet under way.
    pub fn open(&self) -> bool {
        takes_players(
            self.info.players.into(),
            self.info.max_players,
            self.info.state,
        )
    }
}

/// Whether a room with `seated` of `max` seats taken, in `state`, takes another player: a free
/// seat, and the match not yet under way. The lobby and the directory both decide by it.
pub fn takes_players(seated: usize, max: u8, state: RoomState) -> bool {
    seated < max as usize && matches!(state, RoomState::Waiting | RoomState::Countdown)
}

/// A node as the directory knows it.
struct NodeEntry {
    address: NodeAddress,
    /// Another machine's node: listed until then, unless a fresh read renews it.
    lapses: Option<Instant>,
}

#[derive(Default)]
pub struct Directory {
    nodes: BTreeMap<NodeId, NodeEntry>,
    rooms: BTreeMap<RoomId, Listing>,
    codes: HashMap<String, RoomId>,
    /// Per mode: the node a quick join found no open room on, and when.
    opening: HashMap<String, (NodeId, Instant)>,
}

impl Directory {
    /// A node of this process: listed for as long as the process runs.
    pub fn add_node(&mut self, node: NodeId, address: NodeAddress) {
        let entry = NodeEntry {
            address,
            lapses: None,
        };
        self.nodes.insert(node, entry);
    }

    pub fn address(&self, node: &str) -> Option<&NodeAddress> {
        self.nodes.get(node).map(|n| &n.address)
    }

    /// Whether `node` is one of this process's.
    pub fn is_local(&self, node: &str) -> bool {
        self.nodes.get(node).is_some_and(|n| n.lapses.is_none())
    }

    /// The rooms of `node`, as its lobby last wrote them.
    pub fn rooms_of(&self, node: &str) -> Vec<Listing> {
        self.rooms
            .values()
            .filter(|l| l.node == node)
            .cloned()
            .collect()
    }

    /// A fresh read of the other machines' nodes and rooms, made at `now`: it replaces what
    /// was mirrored before (a node or room missing from it is gone), and lapses after
    /// [`LEASE`] unless read again. Entries of this process's nodes are ignored: each node is
    /// the one source of its own.
    pub fn mirror(&mut self, now: Instant, nodes: Vec<(NodeId, NodeAddress)>, rooms: Vec<Listing>) {
        self.drop_remote(|_| true);
        for (node, address) in nodes {
            if self.nodes.contains_key(&node) {
                continue;
            }
            let lapses = Some(now + LEASE);
            self.nodes.insert(node, NodeEntry { address, lapses });
        }
        for listing in rooms {
            let remote = self
                .nodes
                .get(&listing.node)
                .is_some_and(|n| n.lapses.is_some());
            // Room ids are unique across machines (a block per process); should another
            // machine list one of this process's ids anyway, the local room keeps it.
            let ours = self
                .rooms
                .get(&listing.info.id)
                .is_some_and(|l| self.is_local(&l.node));
            if remote && !ours {
                self.put(listing);
            }
        }
    }

    /// Drops the other machines' nodes (and their rooms) whose lease ran out by `now`: with
    /// the shared store out of reach, what was last read of them stays only that long.
    pub fn lapse(&mut self, now: Instant) {
        self.drop_remote(|lapses| lapses <= now);
    }

    fn drop_remote(&mut self, gone: impl Fn(Instant) -> bool) {
        let lapsed: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.lapses.is_some_and(&gone))
            .map(|(id, _)| id.clone())
            .collect();
        if lapsed.is_empty() {
            return;
        }
        for node in &lapsed {
            self.nodes.remove(node);
        }
        let rooms: Vec<RoomId> = self
            .rooms
            .values()
            .filter(|l| lapsed.contains(&l.node))
            .map(|l| l.info.id)
            .collect();
        for room in rooms {
            self.remove(room);
        }
    }

    /// A room as it is now (created, or its players or state changed).
    pub fn put(&mut self, listing: Listing) {
        if let Some(code) = &listing.code {
            self.codes.insert(code.clone(), listing.info.id);
        }
        self.rooms.insert(listing.info.id, listing);
    }

    /// The room closed: it and its code are gone.
    pub fn remove(&mut self, room: RoomId) {
        if let Some(listing) = self.rooms.remove(&room)
            && let Some(code) = listing.code
        {
            self.codes.remove(&code);
        }
    }

    /// Takes `code` for a room about to be made, unless some room of any node has it.
    pub fn claim_code(&mut self, code: &str, room: RoomId) -> bool {
        if self.codes.contains_key(code) {
            return false;
        }
        self.codes.insert(code.to_owned(), room);
        true
    }

    /// Public rooms of every node, of one mode if given; with `open_only`, only those with a
    /// free seat whose match has not started. In room-id order.
    pub fn list(&self, mode: Option<&str>, open_only: bool) -> Vec<RoomInfo> {
        self.rooms
            .values()
            .filter(|l| !l.info.private && mode.is_none_or(|m| l.info.mode == m))
            .filter(|l| !open_only || l.open())
            .map(|l| l.info.clone())
            .collect()
    }

    /// What `maker` has made that is still open, on every node.
    pub fn made_by(&self, maker: Maker) -> Made {
        let mut made = Made::default();
        for l in self.rooms.values() {
            for (count, mine) in [
                (&mut made.player, l.maker.player == maker.player),
                (&mut made.address, l.maker.origin == maker.origin),
            ] {
                if mine {
                    count.0 += 1;
                    count.1 += usize::from(l.with_bots);
                }
            }
        }
        made
    }

    pub fn room_node(&self, room: RoomId) -> Option<&NodeId> {
        self.rooms.get(&room).map(|l| &l.node)
    }

    /// The node of the private room with this code (as a player types it).
    pub fn code_node(&self, code: &str) -> Option<&NodeId> {
        let room = self.codes.get(&code.trim().to_ascii_uppercase())?;
        self.room_node(*room)
    }

    /// The node of the fullest open public room of `mode`.
    pub fn fullest_open(&self, mode: &str) -> Option<NodeId> {
        self.rooms
            .values()
            .filter(|l| !l.info.private && l.info.mode == mode && l.open())
            .max_by_key(|l| (l.info.players, std::cmp::Reverse(l.info.id)))
            .map(|l| l.node.clone())
    }

    /// Seats taken on each node, by players and server bots: the load a new room is placed by.
    fn loads(&self) -> BTreeMap<&NodeId, u32> {
        let mut loads: BTreeMap<&NodeId, u32> = self.nodes.keys().map(|n| (n, 0)).collect();
        for l in self.rooms.values() {
            if let Some(load) = loads.get_mut(&l.node) {
                *load += u32::from(l.info.players) + 1;
            }
        }
        loads
    }

    /// The node a new room goes to: the least loaded (a room counts one more than its seats, so
    /// empty rooms spread too), `home` among equals (it needs no move), else the first.
    pub fn place(&self, home: &str) -> Option<NodeId> {
        self.loads()
            .into_iter()
            .min_by_key(|(node, load)| (*load, node.as_str() != home))
            .map(|(node, _)| node.clone())
    }

    /// The node that opens a new room of `mode` for a quick join that found no open one: the
    /// node an earlier such quick join was sent to within [`OPENING`] (it is making the room);
    /// else `candidate` (where a new room goes), remembered as opening.
    pub fn opening(&mut self, mode: &str, candidate: NodeId, now: Instant) -> NodeId {
        if let Some((node, since)) = self.opening.get(mode)
            && now.duration_since(*since) < OPENING
            && self.nodes.contains_key(node)
        {
            return node.clone();
        }
        self.opening
            .insert(mode.to_owned(), (candidate.clone(), now));
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(port: u16) -> NodeAddress {
        NodeAddress {
            host: None,
            quic_port: port,
            http_port: 8080,
            cert_sha256: "00".repeat(32),
        }
    }

    fn room(id: u32, node: &str, players: u8, private: bool) -> Listing {
        Listing {
            node: node.into(),
            info: RoomInfo {
                id: RoomId(id),
                name: format!("room {id}"),
                mode: "tag".into(),
                players,
                max_players: 4,
                state: RoomState::Waiting,
                private,
            },
            code: private.then(|| format!("CODE{id}")),
            maker: Maker {
                player: PlayerId(id),
                origin: PeerKey::from(std::net::IpAddr::from([192, 0, 2, 1])),
            },
            with_bots: false,
        }
    }

    fn two_nodes() -> Directory {
        let mut d = Directory::default();
        d.add_node("a".into(), address(1));
        d.add_node("b".into(), address(2));
        d
    }

    #[test]
    fn rooms_of_every_node_are_listed_and_private_ones_found_by_code_only() {
        let mut d = two_nodes();
        d.put(room(1, "a", 1, false));
        d.put(room(2, "b", 2, false));
        d.put(room(3, "b", 1, true));
        let ids: Vec<u32> = d.list(None, false).iter().map(|r| r.id.0).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(d.code_node(" code3 ").map(String::as_str), Some("b"));
        assert!(
            !d.claim_code("CODE3", RoomId(9)),
            "a code is unique across nodes"
        );
        d.remove(RoomId(3));
        assert_eq!(d.code_node("CODE3"), None);
        assert!(d.claim_code("CODE3", RoomId(9)));
        let mut bots = room(4, "a", 1, false);
        bots.with_bots = true;
        d.put(bots);
        let made = d.made_by(room(4, "b", 0, false).maker);
        assert_eq!(made.player, (1, 1));
        assert_eq!(
            made.address,
            (3, 1),
            "one address made all three open rooms"
        );
    }

    #[test]
    fn new_rooms_go_to_the_least_loaded_node_and_home_among_equals() {
        let mut d = two_nodes();
        assert_eq!(d.place("b").as_deref(), Some("b"));
        assert_eq!(d.place("elsewhere").as_deref(), Some("a"));
        d.put(room(1, "a", 3, false));
        assert_eq!(d.place("a").as_deref(), Some("b"));
    }

    #[test]
    fn concurrent_quick_joins_that_find_no_room_all_go_to_one_node() {
        // What a quick join asks of a lone process's directory (`Cluster::quick`).
        let quick =
            |d: &mut Directory, mode: &str, home: &str, now: Instant| match d.fullest_open(mode) {
                Some(node) => Some(node),
                None => d.place(home).map(|c| d.opening(mode, c, now)),
            };
        let mut d = two_nodes();
        let now = Instant::now();
        let first = quick(&mut d, "tag", "a", now);
        d.put(room(7, "b", 0, false));
        // An empty room of another mode on b made it the less loaded node: still `first`.
        let mut other = room(7, "b", 0, false);
        other.info.mode = "race".into();
        d.put(other);
        let second = quick(&mut d, "tag", "b", now + Duration::from_millis(500));
        assert_eq!(first, second);
        assert_eq!(first.as_deref(), Some("a"));
        // Once the room exists it is what quick joins find.
        d.put(room(8, "a", 1, false));
        assert_eq!(
            quick(&mut d, "tag", "b", now + OPENING * 2).as_deref(),
            Some("a")
        );
        d.put(room(8, "a", 4, false));
        // The only room is full and the opening is old: placed by load.
        assert_eq!(
            quick(&mut d, "tag", "b", now + OPENING * 2).as_deref(),
            Some("b")
        );
    }

    #[test]
    fn another_machines_rooms_are_listed_while_their_lease_is_renewed() {
        let mut d = two_nodes();
        let now = Instant::now();
        let remote = vec![("c".to_owned(), address(3)), ("a".to_owned(), address(9))];
        d.put(room(8, "a", 3, false));
        let rooms = vec![
            room(5, "c", 2, false),
            room(6, "c", 1, true),
            room(7, "a", 1, false),
            room(8, "c", 0, false),
        ];
        let listed = |d: &Directory| -> Vec<(u32, u8)> {
            d.list(None, false)
                .iter()
                .map(|r| (r.id.0, r.players))
                .collect()
        };
        d.mirror(now, remote.clone(), rooms);
        // A node of this process is never taken from the mirror, nor its rooms.
        assert!(d.is_local("a") && !d.is_local("c"));
        assert_eq!(d.address("a").map(|a| a.quic_port), Some(1));
        assert_eq!(listed(&d), [(5, 2), (8, 3)], "a's room 8 stays a's");
        assert_eq!(d.code_node("CODE6").map(String::as_str), Some("c"));
        assert!(
            !d.claim_code("CODE6", RoomId(1)),
            "codes are unique across machines too"
        );
        // Unrenewed, the lease runs out.
        d.lapse(now + LEASE / 2);
        assert_eq!(d.list(None, false).len(), 2);
        d.lapse(now + LEASE);
        assert_eq!(listed(&d), [(8, 3)]);
        assert_eq!(d.address("c"), None);
        assert_eq!(d.code_node("CODE6"), None);
        // A fresh read without the room drops it at once.
        d.mirror(now, remote.clone(), vec![room(5, "c", 2, false)]);
        d.mirror(now, remote, Vec::new());
        assert_eq!(listed(&d), [(8, 3)]);
        assert_eq!(d.address("c").map(|a| a.quic_port), Some(3));
    }
}
