//! Declared records: a game's input and its messages, declared with the same fields (type and
//! precision) as its replicated kinds. On the wire a record is its slots, one `u32` per
//! component, quantised as the field declares; a receiver checks the count and every slot's
//! range before anything reads them, so a value outside what the game declared (NaN included:
//! it has no slot) never reaches the game.
//!
//! A game's Rust types implement [`Record`] (its input) and [`Messages`] (each direction's set
//! of messages, usually an enum); both are plain conversions to and from real values, so the
//! same type serves the server, the Rust clients and the bots.

use crate::schema::{Field, Kind};

/// A record's fields do not hold what was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("{expected} values expected, {got} sent")]
    WrongSize { expected: usize, got: usize },
    #[error("{0} is outside its declared range or not a number")]
    OutOfRange(String),
    #[error("no message kind {0}")]
    UnknownKind(u16),
}

/// A type that travels as one declared record (a game's input).
pub trait Record: Sized {
    /// The declared fields, in the order [`Record::write`] writes them. Built once (the
    /// derive keeps them in a static): the server and clients read them for every record.
    fn fields() -> &'static [Field];
    /// One real value per component, field after field (a 2-d field: x, then y); doubles, so
    /// every whole number a slot holds is exact.
    fn write(&self, out: &mut Vec<f64>);
    /// Reads what [`Record::write`] wrote (dequantised, so within the declared ranges).
    fn read(values: &mut Values<'_>) -> Self;

    /// The record's slots, quantised strictly: a value outside its field's range is an error.
    fn to_slots(&self) -> Result<Vec<u32>, RecordError> {
        let mut values = Vec::new();
        self.write(&mut values);
        quantise(Self::fields(), &values)
    }

    /// The record a peer sent, after checking the slots against the declaration.
    fn from_slots(slots: &[u32]) -> Result<Self, RecordError> {
        let mut values = Vec::new();
        dequantise(Self::fields(), slots, &mut values)?;
        Ok(Self::read(&mut Values::new(&values)))
    }
}

/// The messages one direction carries: one [`Kind`] per message, its fields declared like any
/// record's. Usually an enum with a variant per message.
pub trait Messages: Sized {
    /// The declared message kinds; a message names its kind by index in this list. Built
    /// once, like [`Record::fields`].
    fn kinds() -> &'static [Kind];
    /// Writes the message's values ([`Record::write`]'s order) and returns its kind's index.
    fn write(&self, out: &mut Vec<f64>) -> u16;
    /// Reads a message of the kind at `kind` (None: no such kind).
    fn read(kind: u16, values: &mut Values<'_>) -> Option<Self>;

    /// The message's kind and slots, quantised strictly.
    fn to_message(&self) -> Result<(u16, Vec<u32>), RecordError> {
        let mut values = Vec::new();
        let kind = self.write(&mut values);
        Ok((
            kind,
            quantise(&message_kind(Self::kinds(), kind)?.fields, &values)?,
        ))
    }

    /// The message a peer sent, after checking the slots against its kind's declaration.
    fn from_message(kind: u16, slots: &[u32]) -> Result<Self, RecordError> {
        let mut values = Vec::new();
        dequantise(
            &message_kind(Self::kinds(), kind)?.fields,
            slots,
            &mut values,
        )?;
        Self::read(kind, &mut Values::new(&values)).ok_or(RecordError::UnknownKind(kind))
    }
}

/// No input: a game whose players act through messages alone (a board game). Its clients
/// still send empty inputs, which carry their snapshot acks.
impl Record for () {
    fn fields() -> &'static [Field] {
        &[]
    }

    fn write(&self, _: &mut Vec<f64>) {}

    fn read(_: &mut Values<'_>) -> Self {}
}

/// A direction that carries no messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMessages {}

impl Messages for NoMessages {
    fn kinds() -> &'static [Kind] {
        &[]
    }

    fn write(&self, _: &mut Vec<f64>) -> u16 {
        match *self {}
    }

    fn read(_: u16, _: &mut Values<'_>) -> Option<Self> {
        None
    }
}

/// A record's real values, read in order. Reading past the end gives zeros, so a hand-written
/// [`Record::read`] that asks for more than its fields hold gets defaults, never a panic.
pub struct Values<'a> {
    values: std::slice::Iter<'a, f64>,
}

impl<'a> Values<'a> {
    pub fn new(values: &'a [f64]) -> Values<'a> {
        Values {
            values: values.iter(),
        }
    }

    pub fn f64(&mut self) -> f64 {
        self.values.next().copied().unwrap_or(0.0)
    }

    pub fn f32(&mut self) -> f32 {
        self.f64() as f32
    }

    pub fn vec2(&mut self) -> glam::Vec2 {
        glam::Vec2::new(self.f32(), self.f32())
    }

    pub fn bool(&mut self) -> bool {
        self.f64() != 0.0
    }

    /// A whole number (an int, an enum's variant index or an entity id).
    pub fn int(&mut self) -> i64 {
        self.f64() as i64
    }
}

/// Components the fields hold in all.
pub fn slot_count(fields: &[Field]) -> usize {
    fields.iter().map(|f| f.dims as usize).sum()
}

/// The message kind a message names by its index in `kinds`.
pub fn message_kind(kinds: &[Kind], kind: u16) -> Result<&Kind, RecordError> {
    kinds
        .get(kind as usize)
        .ok_or(RecordError::UnknownKind(kind))
}

/// The field of each slot, in slot order: a field of `dims` components once per component.
pub fn slot_fields(fields: &[Field]) -> impl Iterator<Item = &Field> {
    fields
        .iter()
        .flat_map(|f| std::iter::repeat_n(f, f.dims as usize))
}

/// Refuses `got` components where the fields hold another number.
fn expect_size(fields: &[Field], got: usize) -> Result<(), RecordError> {
    let expected = slot_count(fields);
    if got == expected {
        Ok(())
    } else {
        Err(RecordError::WrongSize { expected, got })
    }
}

/// Each component in its field's slot; refuses a wrong count, NaN and anything out of range.
pub fn quantise(fields: &[Field], values: &[f64]) -> Result<Vec<u32>, RecordError> {
    expect_size(fields, values.len())?;
    slot_fields(fields)
        .zip(values)
        .map(|(f, &v)| {
            f.ty.try_quantise_f64(v)
                .map_err(|_| RecordError::OutOfRange(f.name.clone()))
        })
        .collect()
}

/// Checks slots a peer sent against the fields: the count, and each slot within its range.
pub fn check(fields: &[Field], slots: &[u32]) -> Result<(), RecordError> {
    expect_size(fields, slots.len())?;
    match slot_fields(fields)
        .zip(slots)
        .find(|(f, q)| **q > f.ty.max_slot())
    {
        Some((f, _)) => Err(RecordError::OutOfRange(f.name.clone())),
        None => Ok(()),
    }
}

/// The real values of checked slots, appended to `out`.
pub fn dequantise(fields: &[Field], slots: &[u32], out: &mut Vec<f64>) -> Result<(), RecordError> {
    check(fields, slots)?;
    out.extend(
        slot_fields(fields)
            .zip(slots)
            .map(|(f, &q)| f.ty.dequantise_f64(q)),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FieldType, Predict};

    #[derive(Debug, PartialEq)]
    struct Steer {
        dir: glam::Vec2,
        boost: bool,
        gear: i64,
    }

    impl Record for Steer {
        fn fields() -> &'static [Field] {
            static FIELDS: std::sync::OnceLock<Vec<Field>> = std::sync::OnceLock::new();
            FIELDS.get_or_init(|| {
                vec![
                    Field::new("dir", FieldType::fixed(-1.0, 1.0, 1, 256), 2),
                    Field::new("boost", FieldType::Bool, 1),
                    Field::new("gear", FieldType::Int { min: -1, max: 5 }, 1),
                ]
            })
        }

        fn write(&self, out: &mut Vec<f64>) {
            out.extend([
                self.dir.x as f64,
                self.dir.y as f64,
                self.boost as u8 as f64,
                self.gear as f64,
            ]);
        }

        fn read(v: &mut Values<'_>) -> Self {
            Steer {
                dir: v.vec2(),
                boost: v.bool(),
                gear: v.int(),
            }
        }
    }

    #[test]
    fn a_record_round_trips_through_its_slots_and_bad_values_are_refused() {
        let s = Steer {
            dir: glam::Vec2::new(0.5, -0.25),
            boost: true,
            gear: -1,
        };
        let slots = s.to_slots().unwrap();
        assert_eq!(slots.len(), 4);
        assert_eq!(Steer::from_slots(&slots).unwrap(), s);
        let nan = Steer {
            dir: glam::Vec2::new(f32::NAN, 0.0),
            ..s
        };
        assert_eq!(nan.to_slots(), Err(RecordError::OutOfRange("dir".into())));
        let far = Steer { gear: 6, ..nan };
        assert!(far.to_slots().is_err());
        assert!(matches!(
            Steer::from_slots(&slots[..3]),
            Err(RecordError::WrongSize {
                expected: 4,
                got: 3
            })
        ));
        let mut wild = slots.clone();
        wild[3] = 7;
        assert_eq!(
            Steer::from_slots(&wild),
            Err(RecordError::OutOfRange("gear".into()))
        );
        assert_eq!(
            Field::new("x", FieldType::Bool, 1).predict,
            Predict::Hold,
            "a record's fields are never predicted"
        );
    }

    #[test]
    fn a_captured_record_is_made_to_fit_its_fields_never_refused() {
        let mut capture = crate::Capture::new(5);
        let head = |id| crate::Head {
            id: crate::NetId(id),
            kind: 0,
            owner: None,
        };
        let fine = Steer {
            dir: glam::Vec2::new(0.5, -0.25),
            boost: true,
            gear: 3,
        };
        let wild = Steer {
            dir: glam::Vec2::new(f32::NAN, 7.0),
            boost: false,
            gear: 99,
        };
        capture.push_record(head(1), Steer::fields(), &fine);
        capture.push_record(head(2), Steer::fields(), &wild);
        let s = crate::Snapshot::capture(capture, crate::Tick(1));
        let fine_slots = s.get(crate::NetId(1)).unwrap().values;
        assert_eq!(&fine_slots[..4], &fine.to_slots().unwrap()[..]);
        assert_eq!(fine_slots[4], 0, "padded to the stride");
        let fields = Steer::fields();
        let wild_slots = s.get(crate::NetId(2)).unwrap().values;
        assert_eq!(
            wild_slots[0],
            fields[0].ty.zero_slot(),
            "NaN: the zero slot"
        );
        assert_eq!(wild_slots[1], fields[0].ty.max_slot(), "clamped");
        assert_eq!(wild_slots[3], fields[2].ty.max_slot());
    }

    #[derive(Debug, PartialEq)]
    enum Play {
        Drop { column: i64 },
        Resign,
    }

    impl Messages for Play {
        fn kinds() -> &'static [Kind] {
            static KINDS: std::sync::OnceLock<Vec<Kind>> = std::sync::OnceLock::new();
            KINDS.get_or_init(|| {
                vec![
                    Kind::new(
                        "drop",
                        vec![Field::new("column", FieldType::Int { min: 0, max: 6 }, 1)],
                    ),
                    Kind::new("resign", vec![]),
                ]
            })
        }

        fn write(&self, out: &mut Vec<f64>) -> u16 {
            match self {
                Play::Drop { column } => {
                    out.push(*column as f64);
                    0
                }
                Play::Resign => 1,
            }
        }

        fn read(kind: u16, v: &mut Values<'_>) -> Option<Self> {
            match kind {
                0 => Some(Play::Drop { column: v.int() }),
                1 => Some(Play::Resign),
                _ => None,
            }
        }
    }

    #[test]
    fn messages_name_their_kind_and_are_checked_against_it() {
        let (kind, slots) = Play::Drop { column: 3 }.to_message().unwrap();
        assert_eq!((kind, &slots[..]), (0, &[3][..]));
        assert_eq!(
            Play::from_message(kind, &slots).unwrap(),
            Play::Drop { column: 3 }
        );
        assert_eq!(Play::from_message(1, &[]).unwrap(), Play::Resign);
        assert!(Play::from_message(1, &[0]).is_err());
        assert!(Play::from_message(0, &[7]).is_err());
        assert_eq!(Play::from_message(2, &[]), Err(RecordError::UnknownKind(2)));
        assert!(Play::Drop { column: 9 }.to_message().is_err());
    }
}
