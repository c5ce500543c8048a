//! The HTTP port's accept loop: every TCP connection the HTTP API and Socket.IO get.
//!
//! It stands in for `axum::serve` for three reasons. axum sets hyper no timer, so hyper's
//! header-read timeout never fires and a connection that sends nothing is kept for ever; here
//! a connection must send a whole request head within [`HEADER_TIMEOUT`] of opening or of its
//! last response. Every connection costs a file descriptor, and running out of them stops
//! the whole HTTP side (`/healthz` included), so connections are capped below the descriptor
//! limit, which start-up raises to the hard limit. And one address may hold only so many of
//! them. A connection over a cap is answered `503` and closed at once, and the refusal is
//! logged (at most once a second) and counted.
//!
//! What a connection sends is metered in bytes ([`CONNECTION_READ`], and
//! [`PeerLimits::http_read`] for all of an address's together): past it the server reads no
//! further until the allowance refills, and TCP's flow control pushes back on the sender.
//! Engine.IO's own packets (no-ops, pongs) are handled inside engineioxide, out of tickwire's
//! sight; this is what bounds them.

use crate::peers::{PeerKey, PeerLimits};
use crate::rate::{Bucket, Rate};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

/// A connection must send a whole request head this soon after opening, or after the last
/// response on it (an idle keep-alive connection is closed the same way). Upgraded websockets
/// are past HTTP and kept alive by Engine.IO's heartbeat instead.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors kept back from HTTP connections for everything else (the QUIC socket, the
/// match log, the runtime's own), and never fewer than this.
const RESERVED_FDS: usize = 64;
/// How long shutdown waits for open HTTP requests to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The answer to a connection over a cap, written without waiting.
const REFUSED: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
/// Bytes one connection may send: a burst of 256 KiB, then 64 KiB a second (a player sends a
/// few KiB a second).
pub const CONNECTION_READ: Rate = Rate {
    burst: 256.0 * 1024.0,
    per_sec: 64.0 * 1024.0,
};
/// After an accept error (out of descriptors, say), wait this long before the next accept
/// rather than spin on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Raises this process's soft limit on open files to its hard limit and returns how many TCP
/// connections the HTTP port may hold: an eighth of the limit (at least [`RESERVED_FDS`]) is
/// kept back.
pub fn connection_cap() -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!("cannot raise the open-file limit: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let cap = cap_below(limit);
    tracing::info!("HTTP connections capped at {cap} (open-file limit {limit})");
    cap
}

/// How many TCP connections the HTTP port may hold under an open-file limit of `limit`.
pub fn cap_below(limit: u64) -> usize {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    limit.saturating_sub((limit / 8).max(RESERVED_FDS)).max(1)
}

/// The caps on the HTTP port's TCP connections.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Open at once, from everyone.
    pub total: usize,
    /// What one address may hold and send ([`PeerLimits::http_connections`],
    /// [`PeerLimits::http_read`]); an address counts under its [`PeerKey`], as everywhere.
    pub peer: PeerLimits,
}

/// Open connections, in all and by address; one slot per connection, given back on drop.
struct Open {
    caps: Caps,
    counts: Mutex<(usize, HashMap<PeerKey, Address>)>,
    /// Refusals are logged at most once a second.
    log: Mutex<Bucket>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Over {
    Total,
    Address,
}

impl Over {
    fn as_str(self) -> &'static str {
        match self {
            Over::Total => "http_connections",
            Over::Address => "http_address_connections",
        }
    }
}

/// One address's open connections and what they may still send.
struct Address {
    connections: usize,
    read: Arc<Mutex<Bucket>>,
}

struct Slot {
    open: Arc<Open>,
    key: PeerKey,
    /// The address's read allowance, shared by its connections.
    read: Arc<Mutex<Bucket>>,
}

impl Open {
    fn new(caps: Caps) -> Arc<Open> {
        Arc::new(Open {
            caps,
            counts: Mutex::new((0, HashMap::new())),
            log: Mutex::new(Bucket::new(Rate {
                burst: 1.0,
                per_sec: 1.0,
            })),
        })
    }

    fn admit(self: &Arc<Self>, key: PeerKey) -> Result<Slot, Over> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (total, by_address) = &mut *counts;
        if *total >= self.caps.total {
            return Err(Over::Total);
        }
        let mine = by_address.entry(key).or_insert_with(|| Address {
            connections: 0,
            read: Arc::new(Mutex::new(Bucket::new(self.caps.peer.http_read()))),
        });
        if mine.connections >= self.caps.peer.http_connections() {
            return Err(Over::Address);
        }
        mine.connections += 1;
        *total += 1;
        Ok(Slot {
            open: self.clone(),
            key,
            read: mine.read.clone(),
        })
    }

    fn refuse(&self, tcp: TcpStream, peer: SocketAddr, over: Over) {
        crate::metrics::address_refused("http", over.as_str());
        let total = self.counts.lock().map_or(0, |c| c.0);
        if self.log.lock().is_ok_and(|mut b| b.take()) {
            tracing::warn!(
                %peer, open = total, cap = self.caps.total,
                per_address = self.caps.peer.http_connections(),
                "refusing HTTP connections: {}",
                match over {
                    Over::Total => "the server is at its connection cap",
                    Over::Address => "this address is at its connection cap",
                }
            );
        }
        // Best effort and never waiting: the connection is closed either way.
        let _ = tcp.try_write(REFUSED);
        drop(tcp);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (total, by_address) = &mut *counts;
        *total -= 1;
        if let Some(address) = by_address.get_mut(&self.key) {
            address.connections -= 1;
            if address.connections == 0 {
                by_address.remove(&self.key);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` turns true, then lets open requests finish
/// for a moment.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    caps: Caps,
    shutdown: watch::Receiver<bool>,
) {
    let open = Open::new(caps);
    // Every connection's task holds a sender; the receiver ends once all of them are gone.
    let (alive, mut all_gone) = mpsc::channel::<()>(1);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let mut stopping = shutdown.clone();
    let mut stop = std::pin::pin!(async move {
        let _ = stopping.wait_for(|down| *down).await;
    });
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("cannot accept an HTTP connection: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let slot = match open.admit(PeerKey::from(peer.ip())) {
            Ok(slot) => slot,
            Err(over) => {
                open.refuse(tcp, peer, over);
                continue;
            }
        };
        // Game traffic is many small messages: Nagle's algorithm would hold each one back
        // waiting for an ack (tens of milliseconds of added latency).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        // The peer's address reaches handlers (the Socket.IO handshake's per-address limits)
        // as axum's `ConnectInfo`.
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = http
            .serve_connection(TokioIo::new(Metered::new(tcp, slot)), service)
            .with_upgrades();
        let (mut down, alive) = (shutdown.clone(), alive.clone());
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let stop = async move {
                let _ = down.wait_for(|down| *down).await;
            };
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stop => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, "HTTP connection ended: {e}");
            }
            drop(alive);
        });
    }
    drop(alive);
    if tokio::time::timeout(SHUTDOWN_GRACE, all_gone.recv())
        .await
        .is_err()
    {
        tracing::debug!("HTTP connections still open at shutdown are dropped");
    }
}

/// A TCP connection whose reads spend its own and its address's read allowance, and wait
/// while either is in debt. It holds the connection's slot.
struct Metered {
    tcp: TcpStream,
    own: Bucket,
    slot: Slot,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Metered {
    fn new(tcp: TcpStream, slot: Slot) -> Metered {
        Metered {
            tcp,
            own: Bucket::new(CONNECTION_READ),
            slot,
            wait: None,
        }
    }

    fn owed(&mut self) -> Duration {
        let address = self
            .slot
            .read
            .lock()
            .map_or(Duration::ZERO, |mut b| b.owed());
        self.own.owed().max(address)
    }
}

impl AsyncRead for Metered {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if let Some(wait) = this.wait.as_mut() {
                std::task::ready!(wait.as_mut().poll(cx));
                this.wait = None;
            }
            let owed = this.owed();
            if owed.is_zero() {
                break;
            }
            crate::metrics::read_throttled("http");
            this.wait = Some(Box::pin(tokio::time::sleep(owed)));
        }
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.tcp).poll_read(cx, buf))?;
        let read = (buf.filled().len() - before) as f64;
        this.own.spend(read);
        if let Ok(mut address) = this.slot.read.lock() {
            address.spend(read);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Metered {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_in_all_and_per_address_and_given_back() {
        let peer = PeerLimits { connections: 1 };
        let per_address = peer.http_connections();
        let open = Open::new(Caps {
            total: per_address + 1,
            peer,
        });
        let key = |ip: [u8; 4]| PeerKey::from(std::net::IpAddr::from(ip));
        let (a, b) = (key([192, 0, 2, 1]), key([192, 0, 2, 2]));
        let mut held: Vec<_> = (0..per_address).map(|_| open.admit(a).unwrap()).collect();
        assert_eq!(open.admit(a).err(), Some(Over::Address));
        let _other = open.admit(b).unwrap();
        assert_eq!(open.admit(b).err(), Some(Over::Total));
        held.pop();
        assert!(open.admit(b).is_ok());
        assert!(open.counts.lock().unwrap().1.len() <= 2);
    }

    #[test]
    fn an_ipv6_home_shares_one_cap() {
        let peer = PeerLimits { connections: 1 };
        let open = Open::new(Caps { total: 1000, peer });
        let host = |h: u16| {
            PeerKey::from(std::net::IpAddr::from(std::net::Ipv6Addr::new(
                0x2001, 0xdb8, 0, 7, 0, 0, 0, h,
            )))
        };
        let held: Vec<_> = (0..peer.http_connections())
            .map(|h| open.admit(host(h as u16)).unwrap())
            .collect();
        assert_eq!(open.admit(host(999)).err(), Some(Over::Address));
        drop(held);
    }
}
