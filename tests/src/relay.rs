//! A bad network on loopback: a UDP relay between any number of clients and one server that
//! loses, delays, reorders and duplicates datagrams, seeded so that a run's decisions repeat.
//!
//! Each client address the relay hears from gets a socket of its own towards the server, so the
//! server sees one peer per client, as it would across a real network. Every datagram that
//! survives the loss draw is held for the fixed delay of its direction plus a uniform jitter and
//! released in the order of those deadlines: with a jitter larger than the gap between two
//! datagrams they overtake each other, which is how a real path reorders. Duplicates are
//! dropped by QUIC itself (packet numbers); they are there to prove that.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long a chaos run plays: `TICKWIRE_CHAOS_SECS` when set (`scripts/chaos`), else
/// `default` seconds (`./scripts/test`'s short runs).
pub fn chaos_run(default: f64) -> Duration {
    let secs = std::env::var("TICKWIRE_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(default);
    Duration::from_secs_f64(secs)
}

/// What the relay does to each datagram, in each direction.
#[derive(Clone, Debug)]
pub struct Chaos {
    /// The share of datagrams dropped.
    pub loss: f64,
    /// Each datagram is held a further uniform 0..=`jitter`.
    pub jitter: Duration,
    /// The share of datagrams that arrive twice (each copy with its own jitter).
    pub duplicate: f64,
    /// A fixed delay on client → server datagrams only, so acks trail the snapshots.
    pub uplink_delay: Duration,
}

impl Chaos {
    /// Only loss.
    pub fn loss(loss: f64) -> Chaos {
        Chaos {
            loss,
            jitter: Duration::ZERO,
            duplicate: 0.0,
            uplink_delay: Duration::ZERO,
        }
    }

    /// `loss`, 0–50 ms of jitter and 2% duplicates: the bad network of the chaos tests.
    pub fn bad(loss: f64) -> Chaos {
        Chaos {
            jitter: Duration::from_millis(50),
            duplicate: 0.02,
            ..Chaos::loss(loss)
        }
    }

    pub fn uplink_delay(self, uplink_delay: Duration) -> Chaos {
        Chaos {
            uplink_delay,
            ..self
        }
    }
}

/// What a [`LossyRelay`] did, over both directions and every client.
#[derive(Default, Debug)]
pub struct RelayCounts {
    /// Datagrams sent on (a duplicate counts twice).
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    /// Extra copies sent.
    pub duplicated: AtomicU64,
    /// Datagrams sent on after one that arrived after them.
    pub reordered: AtomicU64,
}

impl RelayCounts {
    pub fn get(&self, counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

impl std::fmt::Display for RelayCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "forwarded {}, dropped {}, duplicated {}, reordered {}",
            self.get(&self.forwarded),
            self.get(&self.dropped),
            self.get(&self.duplicated),
            self.get(&self.reordered)
        )
    }
}

/// A UDP relay on 127.0.0.1 in front of `server`; see the module doc. Stops when dropped.
pub struct LossyRelay {
    pub addr: SocketAddr,
    pub counts: Arc<RelayCounts>,
    chaos: Shared,
    task: tokio::task::JoinHandle<()>,
}

/// What the relay does now; read for each datagram, so a test can make the path worse.
type Shared = Arc<Mutex<Chaos>>;

impl LossyRelay {
    /// `seed` drives every draw of loss, duplication and delay.
    pub async fn start(server: SocketAddr, chaos: Chaos, seed: u64) -> anyhow::Result<LossyRelay> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = front.local_addr()?;
        let counts = Arc::new(RelayCounts::default());
        let chaos = Arc::new(Mutex::new(chaos));
        let task = tokio::spawn(uplink(front, server, chaos.clone(), seed, counts.clone()));
        Ok(LossyRelay {
            addr,
            counts,
            chaos,
            task,
        })
    }

    /// From the next datagram on, the path does `chaos`.
    pub fn set_chaos(&self, chaos: Chaos) {
        *lock(&self.chaos) = chaos;
    }
}

fn lock(chaos: &Shared) -> std::sync::MutexGuard<'_, Chaos> {
    // A test that panicked while holding it has failed already; the value is still whole.
    chaos
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        // The downlinks live in the uplink task's JoinSet and end with it.
        self.task.abort();
    }
}

/// One datagram waiting out its delay: ordered by deadline, then by arrival (a duplicate's
/// two copies share one), which is all the heap compares.
struct Waiting<T> {
    at: Instant,
    arrival: u64,
    to: T,
    packet: Vec<u8>,
}

impl<T> Waiting<T> {
    fn key(&self) -> (Instant, u64) {
        (self.at, self.arrival)
    }
}

impl<T> PartialEq for Waiting<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<T> Eq for Waiting<T> {}

impl<T> PartialOrd for Waiting<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Waiting<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// Datagrams waiting out their delay, released earliest deadline first, each with its
/// arrival number to tell when one overtook another.
struct Held<T> {
    heap: BinaryHeap<Reverse<Waiting<T>>>,
    arrivals: u64,
    latest_released: Option<u64>,
}

impl<T> Held<T> {
    fn new() -> Held<T> {
        Held {
            heap: BinaryHeap::new(),
            arrivals: 0,
            latest_released: None,
        }
    }

    /// Draws loss, duplication and delays for one datagram that just arrived.
    fn arrive(
        &mut self,
        rng: &mut fastrand::Rng,
        chaos: &Shared,
        uplink: bool,
        to: T,
        packet: &[u8],
        counts: &RelayCounts,
    ) where
        T: Clone,
    {
        let chaos = lock(chaos).clone();
        let delay = if uplink {
            chaos.uplink_delay
        } else {
            Duration::ZERO
        };
        self.arrivals += 1;
        if rng.f64() < chaos.loss {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let copies = if rng.f64() < chaos.duplicate {
            counts.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = chaos.jitter.mul_f64(rng.f64());
            self.heap.push(Reverse(Waiting {
                at: Instant::now() + delay + jitter,
                arrival: self.arrivals,
                to: to.clone(),
                packet: packet.to_vec(),
            }));
        }
    }

    fn next_release(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(w)| w.at)
    }

    /// The datagram whose deadline came first.
    fn release(&mut self, counts: &RelayCounts) -> Option<(T, Vec<u8>)> {
        let Reverse(w) = self.heap.pop()?;
        if self
            .latest_released
            .is_some_and(|latest| w.arrival < latest)
        {
            counts.reordered.fetch_add(1, Ordering::Relaxed);
        }
        self.latest_released = Some(self.latest_released.map_or(w.arrival, |l| l.max(w.arrival)));
        counts.forwarded.fetch_add(1, Ordering::Relaxed);
        Some((w.to, w.packet))
    }
}

/// Sleeps until `at`, or for ever when nothing is held.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Client → server: one socket for all clients in front, one per client towards the server.
async fn uplink(
    front: Arc<UdpSocket>,
    server: SocketAddr,
    chaos: Shared,
    seed: u64,
    counts: Arc<RelayCounts>,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut links: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut downlinks = JoinSet::new();
    let mut held: Held<Arc<UdpSocket>> = Held::new();
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            r = front.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { return };
                let back = match links.get(&from) {
                    Some(back) => back.clone(),
                    None => {
                        let Ok(back) = open_link(server).await else { return };
                        let back = Arc::new(back);
                        downlinks.spawn(downlink(
                            back.clone(),
                            front.clone(),
                            from,
                            chaos.clone(),
                            seed.wrapping_add(1 + links.len() as u64),
                            counts.clone(),
                        ));
                        links.insert(from, back.clone());
                        back
                    }
                };
                held.arrive(&mut rng, &chaos, true, back, &buf[..n], &counts);
            }
            _ = until(held.next_release()) => {
                if let Some((back, packet)) = held.release(&counts) {
                    let _ = back.send(&packet).await;
                }
            }
        }
    }
}

async fn open_link(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let back = UdpSocket::bind("127.0.0.1:0").await?;
    back.connect(server).await?;
    Ok(back)
}

/// Server → one client.
async fn downlink(
    back: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    chaos: Shared,
    seed: u64,
    counts: Arc<RelayCounts>,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut held: Held<()> = Held::new();
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            r = back.recv(&mut buf) => {
                let Ok(n) = r else { return };
                held.arrive(&mut rng, &chaos, false, (), &buf[..n], &counts);
            }
            _ = until(held.next_release()) => {
                if let Some(((), packet)) = held.release(&counts) {
                    let _ = front.send_to(&packet, client).await;
                }
            }
        }
    }
}
