//! One seat's inputs between network arrival and the fixed step: a short jitter buffer that
//! applies each input for exactly one step, so a client that predicts its own movement with
//! the shared rules (one input per tick) lands where the server does.
//!
//! Inputs do not arrive one per tick: frames, the network and the sender's clock bunch them.
//! "Newest wins" would skip some of a burst and the client's prediction would drift by a step
//! each time; instead each step takes the oldest waiting input. When none is waiting the last
//! one is held (the player keeps moving as it last asked). The buffer is bounded: past
//! [`MAX_QUEUED`] the oldest are dropped, so a client whose clock runs fast cannot build up
//! latency, and a flood costs nothing.

use std::collections::VecDeque;
use tickwire_protocol::Input;

/// Inputs waiting for a step, at most: 4 ticks, 67 ms at 60 Hz.
pub const MAX_QUEUED: usize = 4;

/// What one step applies for a seat.
#[derive(Debug, Clone, Copy)]
pub struct Stepped {
    pub input: Input,
    /// Whether it fires (a press in a dropped input counts).
    pub fire: bool,
    /// A new input (false: the last one, held).
    pub fresh: bool,
}

#[derive(Debug, Default)]
pub struct InputQueue {
    waiting: VecDeque<Input>,
    /// The input the last step applied; held while nothing newer waits.
    current: Option<Input>,
    /// A fire press in an input that was dropped unapplied, so the click is not lost.
    fire_pending: bool,
    /// The newest seq accepted; anything at or below it is a repeat (batches carry the last
    /// few inputs again for datagram loss).
    newest: u32,
}

impl InputQueue {
    /// Takes the inputs of one batch that are new, oldest first.
    pub fn receive(&mut self, inputs: &[Input]) {
        let mut fresh: Vec<Input> = inputs
            .iter()
            .filter(|i| i.seq > self.newest)
            .copied()
            .collect();
        fresh.sort_unstable_by_key(|i| i.seq);
        fresh.dedup_by_key(|i| i.seq);
        for input in fresh {
            self.newest = input.seq;
            self.waiting.push_back(input);
        }
        while self.waiting.len() > MAX_QUEUED {
            if let Some(dropped) = self.waiting.pop_front() {
                self.fire_pending |= dropped.fire();
            }
        }
    }

    /// The input for the next step: the oldest waiting one, or the last one again (not fresh).
    pub fn take_for_step(&mut self) -> Option<Stepped> {
        if let Some(input) = self.waiting.pop_front() {
            self.current = Some(input);
            let fire = input.fire() || std::mem::take(&mut self.fire_pending);
            return Some(Stepped {
                input,
                fire,
                fresh: true,
            });
        }
        // Buttons are held state: a held input keeps firing (the game's cooldown paces it).
        let pending = std::mem::take(&mut self.fire_pending);
        self.current.map(|input| Stepped {
            input,
            fire: input.fire() || pending,
            fresh: false,
        })
    }

    /// The seq of the input the last step applied: the input ack.
    pub fn applied(&self) -> u32 {
        self.current.map_or(0, |i| i.seq)
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
    use glam::Vec2;
    use tickwire_protocol::input::BUTTON_FIRE;

    fn input(seq: u32, x: f32) -> Input {
        Input {
            seq,
            move_dir: Vec2::new(x, 0.0),
            ..Input::default()
        }
    }

    #[test]
    fn a_burst_is_applied_one_per_step_in_order() {
        let mut q = InputQueue::default();
        q.receive(&[input(2, 0.2), input(1, 0.1), input(3, 0.3)]);
        // The next batch repeats 2 and 3 (redundancy) and brings 4.
        q.receive(&[input(2, 0.2), input(3, 0.3), input(4, 0.4)]);
        let seqs: Vec<u32> = (0..6)
            .map(|_| q.take_for_step().unwrap().input.seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 4, 4]);
        assert_eq!(q.applied(), 4);
    }

    #[test]
    fn the_buffer_is_bounded_and_keeps_the_newest_and_their_clicks() {
        let mut q = InputQueue::default();
        let mut batch: Vec<Input> = (1..=10).map(|s| input(s, 0.0)).collect();
        batch[0].buttons = BUTTON_FIRE;
        q.receive(&batch);
        let Stepped {
            input: first, fire, ..
        } = q.take_for_step().unwrap();
        assert_eq!(first.seq, 7);
        assert!(fire, "a click in a dropped input still fires");
        assert!(!q.take_for_step().unwrap().fire, "and fires once");
    }

    #[test]
    fn a_held_input_is_held_with_its_buttons_and_reset_accepts_seq_one_again() {
        let mut q = InputQueue::default();
        assert!(q.take_for_step().is_none());
        let mut shot = input(1, 1.0);
        shot.buttons = BUTTON_FIRE;
        q.receive(&[shot]);
        assert!(q.take_for_step().unwrap().fire);
        let Stepped {
            input: held,
            fire,
            fresh,
        } = q.take_for_step().unwrap();
        assert!(!fresh, "a held input is not fresh");
        assert_eq!(held.seq, 1);
        assert!(fire);
        q.reset();
        q.receive(&[input(1, 0.5)]);
        assert_eq!(q.take_for_step().unwrap().input.move_dir.x, 0.5);
    }
}
