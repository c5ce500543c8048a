//! Player inputs and their validation.
//!
//! An input is the game's declared input record (see [`crate::record`]) as slots, numbered by
//! the client. Inputs travel in [`InputBatch`]es: each datagram repeats the last few inputs, so
//! one lost datagram loses nothing, and carries the newest snapshot tick the client has decoded
//! (its ack).

use crate::ids::Tick;
use crate::record::{self, RecordError};
use crate::schema::Field;
use serde::{Deserialize, Serialize};

/// Most inputs one batch may carry.
pub const MAX_INPUTS_PER_BATCH: usize = 8;
/// How many recent inputs a client repeats in each batch.
pub const INPUT_REDUNDANCY: usize = 4;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// Increases by one for every input the client produces.
    pub seq: u32,
    /// The game's input record, one slot per component of its declared fields.
    pub slots: Vec<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputBatch {
    /// Newest snapshot tick the client has decoded, if any.
    pub ack_tick: Option<Tick>,
    /// Oldest first.
    pub inputs: Vec<Input>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("batch holds {0} inputs; at most {MAX_INPUTS_PER_BATCH} allowed")]
    TooManyInputs(usize),
    #[error("input: {0}")]
    Record(#[from] RecordError),
}

impl InputError {
    /// A short, stable label for counting refusals by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            InputError::TooManyInputs(_) => "too_many",
            InputError::Record(RecordError::WrongSize { .. }) => "wrong_size",
            InputError::Record(_) => "out_of_range",
        }
    }
}

impl InputBatch {
    /// Checks every input against the game's declared input fields; a batch with one bad input
    /// is refused whole.
    pub fn validate(&self, fields: &[Field]) -> Result<(), InputError> {
        if self.inputs.len() > MAX_INPUTS_PER_BATCH {
            return Err(InputError::TooManyInputs(self.inputs.len()));
        }
        for input in &self.inputs {
            record::check(fields, &input.slots)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FieldType;

    #[test]
    fn validation_refuses_wrong_sizes_out_of_range_slots_and_long_batches() {
        let fields = vec![
            Field::new("move", FieldType::fixed(-1.0, 1.0, 1, 256), 2),
            Field::new("fire", FieldType::Bool, 1),
        ];
        let batch = |slots: Vec<u32>| InputBatch {
            ack_tick: None,
            inputs: vec![Input { seq: 1, slots }],
        };
        assert!(batch(vec![256, 0, 1]).validate(&fields).is_ok());
        assert_eq!(
            batch(vec![256, 0]).validate(&fields).unwrap_err().reason(),
            "wrong_size"
        );
        assert_eq!(
            batch(vec![256, 0, 2]).validate(&fields),
            Err(InputError::Record(RecordError::OutOfRange("fire".into())))
        );
        assert_eq!(
            batch(vec![600, 0, 0])
                .validate(&fields)
                .unwrap_err()
                .reason(),
            "out_of_range"
        );
        let long = InputBatch {
            ack_tick: None,
            inputs: vec![Input::default(); MAX_INPUTS_PER_BATCH + 1],
        };
        assert_eq!(long.validate(&fields), Err(InputError::TooManyInputs(9)));
    }
}
