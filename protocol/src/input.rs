//! Player inputs and their validation.
//!
//! Inputs travel in [`InputBatch`]es: each datagram repeats the last few inputs, so one lost
//! datagram loses nothing, and carries the newest snapshot tick the client has decoded (its ack).

use crate::ids::Tick;
use glam::Vec2;
use serde::{Deserialize, Serialize};
use std::f32::consts::PI;

/// Button bit: fire the weapon.
pub const BUTTON_FIRE: u8 = 1;
/// Every button bit a client may set.
pub const KNOWN_BUTTONS: u8 = BUTTON_FIRE;
/// Most inputs one batch may carry.
pub const MAX_INPUTS_PER_BATCH: usize = 8;
/// How many recent inputs a client repeats in each batch.
pub const INPUT_REDUNDANCY: usize = 4;

#[derive(Copy, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Input {
    /// Increases by one for every input the client produces.
    pub seq: u32,
    /// Desired movement direction; length at most 1 (0 = stand still).
    pub move_dir: Vec2,
    /// Aim angle in radians, in [-PI, PI], 0 pointing along +x.
    pub aim: f32,
    pub buttons: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InputBatch {
    /// Newest snapshot tick the client has decoded, if any.
    pub ack_tick: Option<Tick>,
    /// Oldest first.
    pub inputs: Vec<Input>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("move vector is not finite")]
    MoveNotFinite,
    #[error("move vector longer than 1 ({0})")]
    MoveTooLong(f32),
    #[error("aim is not a finite angle in [-pi, pi]")]
    BadAim,
    #[error("unknown button bits {0:#04x}")]
    UnknownButtons(u8),
    #[error("batch holds {0} inputs; at most {MAX_INPUTS_PER_BATCH} allowed")]
    TooManyInputs(usize),
}

/// Slack for rounding in clients that normalise vectors in another language.
const LENGTH_SLACK: f32 = 1e-3;

impl Input {
    pub fn validate(&self) -> Result<(), InputError> {
        if !self.move_dir.is_finite() {
            return Err(InputError::MoveNotFinite);
        }
        let len = self.move_dir.length();
        if len > 1.0 + LENGTH_SLACK {
            return Err(InputError::MoveTooLong(len));
        }
        if !self.aim.is_finite() || self.aim.abs() > PI + LENGTH_SLACK {
            return Err(InputError::BadAim);
        }
        if self.buttons & !KNOWN_BUTTONS != 0 {
            return Err(InputError::UnknownButtons(self.buttons & !KNOWN_BUTTONS));
        }
        Ok(())
    }

    pub fn fire(&self) -> bool {
        self.buttons & BUTTON_FIRE != 0
    }
}

impl InputBatch {
    /// Validates every input; a batch with one bad input is rejected whole.
    pub fn validate(&self) -> Result<(), InputError> {
        if self.inputs.len() > MAX_INPUTS_PER_BATCH {
            return Err(InputError::TooManyInputs(self.inputs.len()));
        }
        self.inputs.iter().try_for_each(Input::validate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(move_dir: Vec2, aim: f32, buttons: u8) -> Input {
        Input {
            seq: 1,
            move_dir,
            aim,
            buttons,
        }
    }

    #[test]
    fn validation_rejects_bad_values() {
        assert!(
            input(Vec2::new(0.6, 0.8), 1.0, BUTTON_FIRE)
                .validate()
                .is_ok()
        );
        assert_eq!(
            input(Vec2::new(f32::NAN, 0.0), 0.0, 0).validate(),
            Err(InputError::MoveNotFinite)
        );
        assert!(matches!(
            input(Vec2::new(2.0, 0.0), 0.0, 0).validate(),
            Err(InputError::MoveTooLong(_))
        ));
        assert_eq!(
            input(Vec2::ZERO, f32::INFINITY, 0).validate(),
            Err(InputError::BadAim)
        );
        assert_eq!(
            input(Vec2::ZERO, 4.0, 0).validate(),
            Err(InputError::BadAim)
        );
        assert_eq!(
            input(Vec2::ZERO, 0.0, 0x80).validate(),
            Err(InputError::UnknownButtons(0x80))
        );
        let batch = InputBatch {
            ack_tick: None,
            inputs: vec![Input::default(); MAX_INPUTS_PER_BATCH + 1],
        };
        assert_eq!(batch.validate(), Err(InputError::TooManyInputs(9)));
    }
}
