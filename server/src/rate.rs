//! Token buckets for rate limits.

use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Events allowed at once.
    pub burst: f64,
    /// Events allowed per second after that.
    pub per_sec: f64,
}

/// A token bucket: `take` succeeds while the rate allows.
#[derive(Debug)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: Rate) -> Bucket {
        Bucket {
            rate,
            tokens: rate.burst,
            at: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let refill = (now - self.at).as_secs_f64() * self.rate.per_sec;
        self.tokens = (self.tokens + refill).min(self.rate.burst);
        self.at = now;
    }

    /// Whether the bucket has refilled to its burst: it then says nothing a fresh one would not.
    pub fn full(&mut self) -> bool {
        self.refill();
        self.tokens >= self.rate.burst
    }

    /// Returns one token taken for something that turned out not to count.
    pub fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.rate.burst);
    }

    /// Takes `n` tokens, past empty if need be: a debt the refill pays off first.
    pub fn spend(&mut self, n: f64) {
        self.refill();
        self.tokens -= n;
    }

    /// How long until the bucket is out of debt (zero when it is not in debt).
    pub fn owed(&mut self) -> Duration {
        self.refill();
        if self.tokens >= 0.0 || self.rate.per_sec <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate.per_sec)
        }
    }

    pub fn take(&mut self) -> bool {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
