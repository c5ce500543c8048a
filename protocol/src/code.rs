//! How the snapshot codec writes one field's values, worked out once per schema from the
//! field's type: its width, its range, whether it is sent as a residual against a reference,
//! and how it is sent absolutely. The delta format (docs/PROTOCOL.md) decides; this only keeps
//! the codec from re-deriving it for every value.

use crate::bits::{BitReader, BitWriter, ugamma_bits};
use crate::delta::DecodeError;
use crate::schema::{FieldType, bits_for};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Code {
    /// The field's width `w`: bits of `0..=max`.
    pub(crate) bits: u32,
    /// The largest slot.
    pub(crate) max: u32,
    pub(crate) form: Form,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Form {
    /// A fixed-point or int value: residuals on a line; absolutely in `w` bits, or (fixed point
    /// in steps of 1/den) a flag and, when every component is on a whole unit, whole units.
    Linear { whole: Option<Whole> },
    /// Residuals the shortest way round a circle of `2^w` steps; absolutely in `w` bits.
    Angle,
    /// Absolutely only, in `w` bits.
    Enum,
    /// Absolutely only, in no bits: a bool that is sent is the other value.
    Bool,
    /// Absolutely only, as `γ(id)`.
    Entity,
}

/// A fixed-point type in steps of 1/den (den > 1) sends a value on a whole unit as that unit's
/// offset from the lowest whole unit in range, in `bits`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Whole {
    den: i64,
    lowest: i64,
    min_q: i64,
    bits: u32,
    /// Slot `q` is on a whole unit when `q ≡ first (mod den)`, and it is unit
    /// `(q − first) / den`: the slot and unit of the lowest whole unit worked out once, so
    /// telling a slot's unit takes one unsigned division (a mask and a shift when `den` is a
    /// power of two, as it commonly is) instead of signed ones.
    first: u32,
}

impl Whole {
    fn of(ty: &FieldType) -> Option<Whole> {
        let FieldType::Fixed { step, min_q, count } = *ty else {
            return None;
        };
        if step.num != 1 || step.den < 2 {
            return None;
        }
        let den = step.den as i64;
        let lowest = min_q.div_euclid(den) + (min_q.rem_euclid(den) != 0) as i64;
        let highest = (min_q + count as i64 - 1).div_euclid(den);
        (highest >= lowest).then(|| Whole {
            den,
            lowest,
            min_q,
            bits: bits_for((highest - lowest + 1) as u64),
            first: (lowest * den - min_q) as u32,
        })
    }

    /// The whole unit of slot `q`, if it is on one.
    #[inline]
    fn unit(&self, q: u32) -> Option<u32> {
        let above = q.checked_sub(self.first)?;
        let den = self.den as u32;
        if den.is_power_of_two() {
            (above & (den - 1) == 0).then(|| above >> den.trailing_zeros())
        } else {
            (above % den == 0).then(|| above / den)
        }
    }
}

const OUT_OF_RANGE: DecodeError = DecodeError::Malformed("value out of its declared range");

impl Code {
    pub(crate) fn of(ty: &FieldType) -> Code {
        let form = match ty {
            FieldType::Fixed { .. } | FieldType::Int { .. } => Form::Linear {
                whole: Whole::of(ty),
            },
            FieldType::Angle { .. } => Form::Angle,
            FieldType::Enum { .. } => Form::Enum,
            FieldType::Bool => Form::Bool,
            FieldType::Entity => Form::Entity,
        };
        Code {
            bits: ty.bits(),
            max: ty.max_slot(),
            form,
        }
    }

    /// Whether the field is sent as a residual against its reference (else absolutely).
    #[inline]
    pub(crate) fn has_residual(&self) -> bool {
        matches!(self.form, Form::Linear { .. } | Form::Angle)
    }

    /// The residual of `value` against `reference`, zig-zagged.
    #[inline]
    pub(crate) fn residual(&self, reference: u32, value: u32) -> u64 {
        let d = match self.form {
            // The steps are a power of two: a mask is the Euclidean remainder.
            Form::Angle => {
                let steps = 1i64 << self.bits;
                ((value as i64 - reference as i64 + steps / 2) & (steps - 1)) - steps / 2
            }
            _ => value as i64 - reference as i64,
        };
        ((d << 1) ^ (d >> 63)) as u64
    }

    #[inline]
    pub(crate) fn unresidual(&self, reference: u32, z: u64) -> Result<u32, DecodeError> {
        let d = (z >> 1) as i64 ^ -((z & 1) as i64);
        let v = match self.form {
            Form::Angle => (reference as i64 + d) & ((1 << self.bits) - 1),
            _ => reference as i64 + d,
        };
        if (0..=self.max as i64).contains(&v) {
            Ok(v as u32)
        } else {
            Err(OUT_OF_RANGE)
        }
    }

    /// Bits of `values` sent absolutely.
    pub(crate) fn absolute_bits(&self, values: &[u32]) -> u32 {
        let n = values.len() as u32;
        match self.form {
            Form::Bool => 0,
            Form::Entity => values.iter().map(|&v| ugamma_bits(v)).sum(),
            Form::Linear { whole: Some(whole) } => {
                if values.iter().all(|&q| whole.unit(q).is_some()) {
                    1 + whole.bits * n
                } else {
                    1 + self.bits * n
                }
            }
            Form::Linear { whole: None } | Form::Angle | Form::Enum => self.bits * n,
        }
    }

    pub(crate) fn write_absolute(&self, w: &mut BitWriter, reference: &[u32], values: &[u32]) {
        match self.form {
            Form::Bool => debug_assert!(reference != values, "a bool sent is the other value"),
            Form::Entity => values.iter().for_each(|&v| w.write_ugamma(v)),
            Form::Linear { whole: Some(whole) } => {
                let all_whole = values.iter().all(|&q| whole.unit(q).is_some());
                w.write_bool(all_whole);
                for &q in values {
                    match whole.unit(q) {
                        Some(u) if all_whole => w.write(u, whole.bits),
                        _ => w.write(q, self.bits),
                    }
                }
            }
            Form::Linear { whole: None } | Form::Angle | Form::Enum => {
                values.iter().for_each(|&v| w.write(v, self.bits))
            }
        }
    }

    pub(crate) fn read_absolute(
        &self,
        r: &mut BitReader<'_>,
        reference: &[u32],
        out: &mut [u32],
    ) -> Result<(), DecodeError> {
        match self.form {
            Form::Bool => {
                for (o, &b) in out.iter_mut().zip(reference) {
                    *o = b ^ 1;
                }
                Ok(())
            }
            Form::Entity => {
                for o in out.iter_mut() {
                    *o = r.read_ugamma()?;
                }
                Ok(())
            }
            Form::Linear { whole: Some(whole) } if r.read_bool()? => {
                for o in out.iter_mut() {
                    let q = (whole.lowest + r.read(whole.bits)? as i64) * whole.den - whole.min_q;
                    *o = u32::try_from(q)
                        .ok()
                        .filter(|&q| q <= self.max)
                        .ok_or(OUT_OF_RANGE)?;
                }
                Ok(())
            }
            _ => {
                for o in out.iter_mut() {
                    *o = self.read_plain(r)?;
                }
                Ok(())
            }
        }
    }

    /// A value in `w` bits (an absolute value, or an escaped residual's).
    #[inline]
    pub(crate) fn read_plain(&self, r: &mut BitReader<'_>) -> Result<u32, DecodeError> {
        let v = r.read(self.bits)?;
        if v > self.max {
            return Err(OUT_OF_RANGE);
        }
        Ok(v)
    }
}
