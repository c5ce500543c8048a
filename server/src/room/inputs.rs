//! One seat's inputs between network arrival and the fixed step: a short jitter buffer that
//! applies each input for exactly one step, so a client that predicts its own movement with
//! the shared rules (one input per tick) lands where the server does.
//!
//! Inputs do not arrive one per tick: frames, the network and the sender's clock bunch them.
//! "Newest wins" would skip some of a burst and the client's prediction would drift by a step
//! each time; instead each step takes the oldest waiting input. When none is waiting the last
//! one is held (the player keeps moving as it last asked). The buffer is bounded: past
//! [`MAX_QUEUED`] the oldest are dropped, so a client whose clock runs fast cannot build up
//! latency, and a flood costs nothing. A press is not lost with a dropped input: a bool field
//! set in a dropped input is set in the next one applied (a click still fires).

use std::collections::VecDeque;
use tickwire_protocol::Input;

/// Inputs waiting for a step, at most: 4 ticks, 67 ms at 60 Hz.
pub const MAX_QUEUED: usize = 4;

#[derive(Debug, Default)]
pub struct InputQueue {
    waiting: VecDeque<Input>,
    /// The input the last step applied; held while nothing newer waits.
    current: Option<Input>,
    /// Bool slots pressed in an input that was dropped unapplied, so the press is not lost.
    pending: Vec<usize>,
    /// The newest seq accepted; anything at or below it is a repeat (batches carry the last
    /// few inputs again for datagram loss).
    newest: u32,
}

impl InputQueue {
    /// Takes the inputs of one batch that are new, oldest first. `presses` are the slots of
    /// the input's bool fields.
    pub fn receive(&mut self, inputs: &[Input], presses: &[usize]) {
        let mut fresh: Vec<&Input> = inputs.iter().filter(|i| i.seq > self.newest).collect();
        fresh.sort_unstable_by_key(|i| i.seq);
        fresh.dedup_by_key(|i| i.seq);
        for input in fresh {
            self.newest = input.seq;
            self.waiting.push_back(input.clone());
        }
        while self.waiting.len() > MAX_QUEUED {
            if let Some(dropped) = self.waiting.pop_front() {
                for &slot in presses {
                    if dropped.slots.get(slot).is_some_and(|&v| v != 0)
                        && !self.pending.contains(&slot)
                    {
                        self.pending.push(slot);
                    }
                }
            }
        }
    }

    /// The input for the next step, the oldest waiting one or the last one again, written
    /// into `slots` (kept by the caller from step to step, so a step allocates nothing) with
    /// the presses of dropped inputs added. Whether it is new (false: the last one, held);
    /// None before any input arrived.
    pub fn take_for_step(&mut self, slots: &mut Vec<u32>) -> Option<bool> {
        let fresh = match self.waiting.pop_front() {
            Some(input) => {
                self.current = Some(input);
                true
            }
            // Buttons are held state: a held input keeps its presses (the game paces them).
            None => false,
        };
        let current = self.current.as_ref()?;
        slots.clear();
        slots.extend_from_slice(&current.slots);
        for slot in self.pending.drain(..) {
            if let Some(v) = slots.get_mut(slot) {
                *v = 1;
            }
        }
        Some(fresh)
    }

    /// The seq of the input the last step applied: the input ack.
    pub fn applied(&self) -> u32 {
        self.current.as_ref().map_or(0, |i| i.seq)
    }

    /// The seq a new input must exceed (server bots number theirs from it).
    pub fn newest(&self) -> u32 {
        self.newest
    }

    /// Forgets everything: the connection dropped, and a new one numbers its inputs from 1.
    pub fn reset(&mut self) {
        *self = InputQueue::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slots: a move and a fire button (slot 1).
    const FIRE: &[usize] = &[1];

    /// One step's input: its seq, slots and freshness.
    fn take(q: &mut InputQueue) -> Option<(u32, Vec<u32>, bool)> {
        let mut slots = Vec::new();
        let fresh = q.take_for_step(&mut slots)?;
        Some((q.applied(), slots, fresh))
    }

    fn input(seq: u32, x: u32) -> Input {
        Input {
            seq,
            slots: vec![x, 0],
        }
    }

    #[test]
    fn a_burst_is_applied_one_per_step_in_order() {
        let mut q = InputQueue::default();
        q.receive(&[input(2, 2), input(1, 1), input(3, 3)], FIRE);
        // The next batch repeats 2 and 3 (redundancy) and brings 4.
        q.receive(&[input(2, 2), input(3, 3), input(4, 4)], FIRE);
        let seqs: Vec<u32> = (0..6).map(|_| take(&mut q).unwrap().0).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 4, 4]);
        assert_eq!(q.applied(), 4);
    }

    #[test]
    fn the_buffer_is_bounded_and_keeps_the_newest_and_their_clicks() {
        let mut q = InputQueue::default();
        let mut batch: Vec<Input> = (1..=10).map(|s| input(s, 0)).collect();
        batch[0].slots[1] = 1;
        q.receive(&batch, FIRE);
        let (seq, slots, _) = take(&mut q).unwrap();
        assert_eq!(seq, 7);
        assert_eq!(slots[1], 1, "a click in a dropped input still fires");
        assert_eq!(take(&mut q).unwrap().1[1], 0, "and fires once");
    }

    #[test]
    fn a_held_input_is_held_with_its_buttons_and_reset_accepts_seq_one_again() {
        let mut q = InputQueue::default();
        assert!(take(&mut q).is_none());
        let mut shot = input(1, 9);
        shot.slots[1] = 1;
        q.receive(&[shot], FIRE);
        assert_eq!(take(&mut q).unwrap().1[1], 1);
        let (seq, slots, fresh) = take(&mut q).unwrap();
        assert!(!fresh, "a held input is not fresh");
        assert_eq!(seq, 1);
        assert_eq!(slots[1], 1);
        q.reset();
        q.receive(&[input(1, 5)], FIRE);
        assert_eq!(take(&mut q).unwrap().1[0], 5);
    }
}
