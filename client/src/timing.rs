//! When to send inputs: timed to the snapshots so QUIC's ACKs ride on data packets.
//!
//! Every QUIC datagram must be acknowledged, and an ACK waits at most 25 ms for a packet to
//! ride on. An input sent a third of a snapshot interval after a snapshot arrives reaches the
//! server before its next snapshot goes out: the client's ACK of the snapshot rides on the
//! input, the server's ACK of the input on the next snapshot, and neither side sends a packet
//! just to acknowledge (docs/PROTOCOL.md, "Timing"; measured 79 → 62 packets per player and
//! second at 30 Hz, docs/BENCHMARKS.md).

use std::time::{Duration, Instant};

/// When the next input should go: a third of a snapshot interval after `last_snapshot` (when
/// the newest snapshot arrived), on the grid of `input_period` from there, and at least half a
/// period after `now`, so arrival jitter never sends two inputs back to back.
pub fn next_input_at(
    last_snapshot: Instant,
    snapshot_rate: u16,
    input_period: Duration,
    now: Instant,
) -> Instant {
    aligned_after(
        last_snapshot + input_lead(snapshot_rate),
        input_period,
        now + input_period / 2,
    )
}

/// A third of the snapshot interval (a rate of 0 is taken as 1).
fn input_lead(snapshot_rate: u16) -> Duration {
    Duration::from_secs_f64(1.0 / (3.0 * f64::from(snapshot_rate.max(1))))
}

/// The first of `anchor + k * period` (k ≥ 0) that is later than `after`.
fn aligned_after(anchor: Instant, period: Duration, after: Instant) -> Instant {
    if anchor > after || period.is_zero() {
        return anchor;
    }
    let behind = (after - anchor).as_nanos() / period.as_nanos();
    let steps = u32::try_from(behind + 1).unwrap_or(u32::MAX);
    anchor + period * steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_first_after_the_given_instant() {
        let anchor = Instant::now();
        let period = Duration::from_millis(30);
        // Not yet reached: the anchor itself.
        assert_eq!(aligned_after(anchor, period, anchor - period), anchor);
        // Exactly on a slot, or between two: the next one.
        assert_eq!(aligned_after(anchor, period, anchor), anchor + period);
        let later = anchor + Duration::from_millis(75);
        assert_eq!(aligned_after(anchor, period, later), anchor + period * 3);
        assert_eq!(
            aligned_after(anchor, Duration::ZERO, later),
            anchor,
            "no period, no slots"
        );
    }

    #[test]
    fn the_lead_is_a_third_of_the_snapshot_interval() {
        assert_eq!(input_lead(30).as_micros(), 11_111);
        // A nonsense rate from a server does not divide by zero.
        assert_eq!(input_lead(0), Duration::from_secs_f64(1.0 / 3.0));
    }

    #[test]
    fn inputs_follow_the_snapshots_and_never_bunch_up() {
        let period = Duration::from_millis(33);
        let snapshot = Instant::now();
        // Called just after an input went out, 1 ms after a snapshot: the next one goes 11 ms
        // after the following snapshot (11 ms after this one would be too soon).
        let next = next_input_at(snapshot, 30, period, snapshot + Duration::from_millis(1));
        assert_eq!(next, snapshot + input_lead(30) + period);
        // At least half a period from now, however the snapshots jitter.
        for late_ms in 0..100 {
            let now = snapshot + Duration::from_millis(late_ms);
            let next = next_input_at(snapshot, 30, period, now);
            assert!(next >= now + period / 2, "{late_ms} ms: too soon");
            assert!(next <= now + period * 3 / 2, "{late_ms} ms: too late");
        }
    }
}
