//! What one address may do, whatever the transport and however many connections it opens.
//!
//! Per-connection limits (`session::CALL_RATE`) are no defence against a client that opens a
//! fresh connection for every few calls, so each address also has an allowance: connections
//! open at once, new connections per second, lobby calls per second, and wrong private-room
//! codes. The last is far stricter than the others, because guessing codes is the one call
//! whose success is worth churning connections for. An IPv6 address counts by its /64 prefix,
//! the block one machine or home is usually given.
//!
//! Entries outlive the connections that made them for as long as their allowances are not
//! back to full, so closing and reopening connections resets nothing.

use crate::rate::{Bucket, Rate};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Wrong private-room codes an address may try: 10 at once, then one every 10 s. With 6
/// characters from 32 (about 10⁹ codes), finding one of 100 open private rooms takes an
/// address about 3 years of guessing.
pub const CODE_GUESS_RATE: Rate = Rate {
    burst: 10.0,
    per_sec: 0.1,
};
/// Addresses tracked at most. Each needs a completed handshake (a real address), so reaching
/// this takes that many machines; new addresses are then refused until entries expire.
const MAX_ADDRESSES: usize = 100_000;
/// How often idle entries are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// An address's allowances, all derived from how many connections it may hold at once
/// (`--per-address-connections`), so that one flag scales them together. This is the one
/// place they are worked out: the QUIC and Socket.IO handshakes, the lobby (rooms) and the
/// HTTP port (TCP connections and bytes read) all ask it.
#[derive(Clone, Copy, Debug)]
pub struct PeerLimits {
    pub connections: u32,
}

impl PeerLimits {
    /// New connections: as many at once as it may hold, then an eighth of that a second.
    fn handshakes(&self) -> Rate {
        let n = f64::from(self.connections);
        Rate {
            burst: n,
            per_sec: (n / 8.0).max(1.0),
        }
    }

    /// Requests to the HTTP API (`/api/rooms`, `/metrics`): a burst of one per connection
    /// the address may hold, then a quarter of that a second.
    fn api(&self) -> Rate {
        let n = f64::from(self.connections);
        Rate {
            burst: n,
            per_sec: (n / 4.0).max(1.0),
        }
    }

    /// Rooms the address's players may have made and still open: a quarter of its
    /// connections (16 by default), so one address never fills the server's room cap.
    pub fn rooms(&self) -> usize {
        (self.connections as usize / 4).max(1)
    }

    /// Of those, rooms with server bots, which cost a room's whole simulation without a
    /// human in it: a quarter again (4 by default).
    pub fn bot_rooms(&self) -> usize {
        (self.rooms() / 4).max(1)
    }

    /// TCP connections the address may hold on the HTTP port: a polling client holds up to
    /// two requests at once (its long poll and a send), and a page loads alongside.
    pub fn http_connections(&self) -> usize {
        2 * self.connections as usize + 16
    }

    /// Bytes all of the address's HTTP connections may send together: 16 KiB per
    /// connection it may hold, then 8 KiB a second (by default 1 MiB, then 512 KiB a second).
    pub fn http_read(&self) -> Rate {
        let n = f64::from(self.connections);
        Rate {
            burst: n * 16.0 * 1024.0,
            per_sec: n * 8.0 * 1024.0,
        }
    }

    /// Lobby calls: as many as a quarter of its connections would each be allowed.
    fn calls(&self) -> Rate {
        let share = (f64::from(self.connections) / 4.0).max(1.0);
        Rate {
            burst: crate::session::CALL_RATE.burst * share,
            per_sec: crate::session::CALL_RATE.per_sec * share,
        }
    }
}

/// Why an address was turned away; `as_str` is the metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("too many connections from this address")]
    Connections,
    #[error("too many new connections from this address; slow down")]
    Handshakes,
    #[error("too many addresses connected; try again later")]
    Addresses,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Connections => "connections",
            Refusal::Handshakes => "handshakes",
            Refusal::Addresses => "addresses",
        }
    }
}

/// The key an address counts under: an IPv4 address itself (also when mapped into IPv6), an
/// IPv6 address by its /64.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PeerKey {
    V4(u32),
    V6(u64),
}

impl From<IpAddr> for PeerKey {
    fn from(ip: IpAddr) -> PeerKey {
        match ip {
            IpAddr::V4(v4) => PeerKey::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => PeerKey::V4(v4.into()),
                None => PeerKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

struct Peer {
    /// Connections admitted and not yet dropped (handshakes in progress included).
    connections: u32,
    handshakes: Bucket,
    calls: Bucket,
    guesses: Bucket,
    api: Bucket,
}

impl Peer {
    fn new(limits: PeerLimits) -> Peer {
        Peer {
            connections: 0,
            handshakes: Bucket::new(limits.handshakes()),
            calls: Bucket::new(limits.calls()),
            guesses: Bucket::new(CODE_GUESS_RATE),
            api: Bucket::new(limits.api()),
        }
    }

    fn idle(&mut self) -> bool {
        self.connections == 0
            && self.handshakes.full()
            && self.calls.full()
            && self.guesses.full()
            && self.api.full()
    }
}

impl Table {
    /// The entry of `key`, made when missing (dropping idle ones now and then).
    fn peer(&mut self, key: PeerKey, limits: PeerLimits) -> Result<&mut Peer, Refusal> {
        let now = Instant::now();
        if now - self.swept >= SWEEP_EVERY {
            self.peers.retain(|_, p| !p.idle());
            self.swept = now;
        }
        if !self.peers.contains_key(&key) && self.peers.len() >= MAX_ADDRESSES {
            return Err(Refusal::Addresses);
        }
        Ok(self.peers.entry(key).or_insert_with(|| Peer::new(limits)))
    }
}

struct Table {
    peers: HashMap<PeerKey, Peer>,
    swept: Instant,
}

/// Every address's allowances; one per server, shared by both transports.
pub struct Peers {
    limits: PeerLimits,
    table: Mutex<Table>,
}

impl Peers {
    pub fn new(limits: PeerLimits) -> Arc<Peers> {
        Arc::new(Peers {
            limits,
            table: Mutex::new(Table {
                peers: HashMap::new(),
                swept: Instant::now(),
            }),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // The table stays consistent across a panic elsewhere: every update is one statement.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection from `ip`, spending one of its new-connection allowance; the
    /// connection counts against the address until the returned handle (and its clones) drop.
    /// Called before the handshake where the transport allows it, so a refusal costs nothing.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<PeerHandle, Refusal> {
        let key = PeerKey::from(ip);
        let limits = self.limits;
        let mut table = self.table();
        let peer = table.peer(key, limits)?;
        if peer.connections >= limits.connections {
            return Err(Refusal::Connections);
        }
        if !peer.handshakes.take() {
            return Err(Refusal::Handshakes);
        }
        peer.connections += 1;
        Ok(PeerHandle(Arc::new(Admitted {
            peers: self.clone(),
            key,
        })))
    }

    /// Spends one of `ip`'s HTTP API requests; false when it has none left.
    pub fn api_request(&self, ip: IpAddr) -> bool {
        let limits = self.limits;
        let mut table = self.table();
        table
            .peer(PeerKey::from(ip), limits)
            .is_ok_and(|p| p.api.take())
    }

    fn with<T>(&self, key: PeerKey, f: impl FnOnce(&mut Peer) -> T) -> Option<T> {
        self.table().peers.get_mut(&key).map(f)
    }
}

/// A connection's share of its address's allowances. Clones share one connection.
#[derive(Clone)]
pub struct PeerHandle(Arc<Admitted>);

struct Admitted {
    peers: Arc<Peers>,
    key: PeerKey,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.peers.with(self.key, |p| p.connections -= 1);
    }
}

impl PeerHandle {
    /// The address this connection counts under (the lobby limits rooms by it).
    pub fn key(&self) -> PeerKey {
        self.0.key
    }

    /// Spends one of the address's lobby calls; false when it has none left.
    pub fn call(&self) -> bool {
        self.0.peers.with(self.0.key, |p| p.calls.take()) == Some(true)
    }

    /// Spends one of the address's code guesses before a call by code; false when it has none
    /// left. [`PeerHandle::right_code`] gives it back when the code was right.
    pub fn guess(&self) -> bool {
        self.0.peers.with(self.0.key, |p| p.guesses.take()) == Some(true)
    }

    pub fn right_code(&self) {
        self.0.peers.with(self.0.key, |p| p.guesses.give_back());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));

    fn peers(connections: u32) -> Arc<Peers> {
        Peers::new(PeerLimits { connections })
    }

    #[tokio::test(start_paused = true)]
    async fn connections_at_once_are_capped_per_address_and_freed_on_drop() {
        let peers = peers(4);
        let held: Vec<_> = (0..4).map(|_| peers.admit(HOME).unwrap()).collect();
        assert_eq!(peers.admit(HOME).err(), Some(Refusal::Connections));
        assert!(
            peers.admit(OTHER).is_ok(),
            "another address is not affected"
        );
        let clone = held[0].clone();
        drop(held);
        // Time for 4 new connections' allowance, so only the count at once can refuse.
        tokio::time::advance(Duration::from_secs(4)).await;
        let again: Vec<_> = (0..3).map(|_| peers.admit(HOME).unwrap()).collect();
        assert_eq!(
            peers.admit(HOME).err(),
            Some(Refusal::Connections),
            "a clone keeps its connection counted"
        );
        drop(clone);
        assert!(peers.admit(HOME).is_ok());
        drop(again);
    }

    #[tokio::test(start_paused = true)]
    async fn churning_connections_runs_out_of_new_connections() {
        let peers = peers(8);
        for _ in 0..8 {
            drop(peers.admit(HOME).unwrap());
        }
        // Closing each connection gives nothing back: the allowance refills with time only.
        assert_eq!(peers.admit(HOME).err(), Some(Refusal::Handshakes));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(peers.admit(HOME).is_ok());
        assert_eq!(peers.admit(HOME).err(), Some(Refusal::Handshakes));
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_codes_cost_the_address_and_right_ones_do_not() {
        let peers = peers(64);
        let first = peers.admit(HOME).unwrap();
        for _ in 0..10 {
            assert!(first.guess());
        }
        assert!(!first.guess());
        // A new connection from the same address starts with nothing.
        let second = peers.admit(HOME).unwrap();
        assert!(!second.guess());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(second.guess());
        second.right_code();
        assert!(second.guess(), "a right code was given back");
        assert!(peers.admit(OTHER).unwrap().guess());
    }

    #[tokio::test(start_paused = true)]
    async fn an_addresss_calls_are_shared_by_its_connections() {
        let peers = peers(4); // one connection's worth of calls: 20 at once
        let (a, b) = (peers.admit(HOME).unwrap(), peers.admit(HOME).unwrap());
        let spent = (0..40).filter(|i| if i % 2 == 0 { a.call() } else { b.call() });
        assert_eq!(spent.count(), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ipv6_home_counts_once_and_idle_entries_expire() {
        let peers = peers(2);
        let home = |host: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0, 0, 0, host));
        let _a = peers.admit(home(1)).unwrap();
        let _b = peers.admit(home(2)).unwrap();
        assert_eq!(peers.admit(home(3)).err(), Some(Refusal::Connections));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        drop(peers.admit(mapped).unwrap());
        assert_eq!(
            peers.table().peers.len(),
            2,
            "a mapped IPv4 address counts as itself"
        );
        drop((_a, _b));
        tokio::time::advance(Duration::from_secs(120)).await;
        drop(peers.admit(OTHER).unwrap());
        assert_eq!(peers.table().peers.len(), 1, "only the new address is left");
    }
}
