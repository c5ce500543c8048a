//! The final report: the contract's JSON object, or a readable summary.

use crate::swarm::BotOutcome;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Serialize, Debug)]
pub struct Report {
    pub transport: String,
    pub bots: usize,
    pub connected: usize,
    pub rooms: usize,
    pub duration_secs: f64,
    pub snapshots: u64,
    pub snapshot_bytes: u64,
    pub avg_snapshot_bytes: f64,
    pub inputs_sent: u64,
    pub rtt_ms_p50: f64,
    pub rtt_ms_p99: f64,
    pub matches_finished: usize,
    pub errors: u64,
    /// Seconds the bots spent seated in their rooms, summed: snapshots due = this × the
    /// server's snapshot rate (connecting and joining excluded).
    pub seated_secs: f64,
}

impl Report {
    pub fn new(
        transport: &str,
        bots: usize,
        rooms: usize,
        duration_secs: f64,
        outcomes: &[BotOutcome],
    ) -> Report {
        let snapshots: u64 = outcomes.iter().map(|o| o.snapshots).sum();
        let snapshot_bytes: u64 = outcomes.iter().map(|o| o.snapshot_bytes).sum();
        let mut rtts: Vec<f64> = outcomes
            .iter()
            .flat_map(|o| o.rtt_ms.iter().copied())
            .collect();
        rtts.sort_by(f64::total_cmp);
        let matches: BTreeSet<_> = outcomes.iter().flat_map(|o| o.matches.iter()).collect();
        Report {
            transport: transport.to_owned(),
            bots,
            connected: outcomes.iter().filter(|o| o.connected).count(),
            rooms,
            duration_secs,
            snapshots,
            snapshot_bytes,
            avg_snapshot_bytes: if snapshots == 0 {
                0.0
            } else {
                round2(snapshot_bytes as f64 / snapshots as f64)
            },
            inputs_sent: outcomes.iter().map(|o| o.inputs_sent).sum(),
            rtt_ms_p50: round2(percentile(&rtts, 0.50)),
            rtt_ms_p99: round2(percentile(&rtts, 0.99)),
            matches_finished: matches.len(),
            errors: outcomes.iter().map(|o| o.errors).sum(),
            seated_secs: round2(outcomes.iter().map(|o| o.seated_secs).sum()),
        }
    }

    pub fn table(&self) -> String {
        format!(
            "bots {}/{} connected in {} rooms over {} for {:.1}s\n\
             snapshots {} ({} bytes, {:.1} bytes avg), inputs {}\n\
             rtt p50 {:.2} ms, p99 {:.2} ms; matches finished {}; errors {}",
            self.connected,
            self.bots,
            self.rooms,
            self.transport,
            self.duration_secs,
            self.snapshots,
            self.snapshot_bytes,
            self.avg_snapshot_bytes,
            self.inputs_sent,
            self.rtt_ms_p50,
            self.rtt_ms_p99,
            self.matches_finished,
            self.errors
        )
    }
}

/// Nearest-rank percentile of sorted samples; 0 when there are none.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&s, 0.5), 50.0);
        assert_eq!(percentile(&s, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
