//! Interpolating a declared record between two snapshots, for any schema: what a client shows
//! of a remote entity between the snapshots it has.
//!
//! The field's declared type says how: a fixed-point number moves linearly, an angle turns the
//! short way round, and whatever is discrete (a whole number, an enum, a flag, an entity
//! reference) keeps its earlier value until the later snapshot is reached — halfway between
//! two enum variants is no variant.

use tickwire_protocol::record::slot_fields;
use tickwire_protocol::schema::{Field, FieldType};

/// The values a fraction `t` (clamped to `0..=1`) of the way from `a` to `b`, appended to
/// `out`. `a` and `b` are dequantised values of `fields` (one per slot, as
/// [`tickwire_protocol::record::dequantise`] gives them); a shorter one ends the output.
pub fn blend(fields: &[Field], a: &[f64], b: &[f64], t: f64, out: &mut Vec<f64>) {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    for ((field, &a), &b) in slot_fields(fields).zip(a).zip(b) {
        out.push(match field.ty {
            FieldType::Fixed { .. } => a + (b - a) * t,
            FieldType::Angle { .. } => {
                use std::f64::consts::{PI, TAU};
                let turn = (b - a + PI).rem_euclid(TAU) - PI;
                let at = a + turn * t;
                // Back into the range an angle dequantises to, `-π..π`.
                (at + PI).rem_euclid(TAU) - PI
            }
            FieldType::Int { .. }
            | FieldType::Enum { .. }
            | FieldType::Bool
            | FieldType::Entity => {
                if t < 1.0 {
                    a
                } else {
                    b
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;
    use tickwire_protocol::schema::FieldType;

    fn fields() -> Vec<Field> {
        vec![
            Field::new("pos", FieldType::fixed(0.0, 1024.0, 1, 16), 2),
            Field::new("aim", FieldType::Angle { bits: 10 }, 1),
            Field::new("hp", FieldType::Int { min: 0, max: 100 }, 1),
            Field::new("alive", FieldType::Bool, 1),
            Field::new(
                "team",
                FieldType::Enum {
                    variants: vec!["red".into(), "blue".into()],
                },
                1,
            ),
            Field::new("target", FieldType::Entity, 1),
        ]
    }

    fn at(a: &[f64], b: &[f64], t: f64) -> Vec<f64> {
        let mut out = Vec::new();
        blend(&fields(), a, b, t, &mut out);
        out
    }

    #[test]
    fn numbers_move_and_discrete_fields_wait_for_the_later_snapshot() {
        let a = [10.0, 20.0, 0.0, 100.0, 1.0, 0.0, 7.0];
        let b = [20.0, 0.0, 1.0, 50.0, 0.0, 1.0, 9.0];
        assert_eq!(at(&a, &b, 0.0), a);
        assert_eq!(at(&a, &b, 0.25), [12.5, 15.0, 0.25, 100.0, 1.0, 0.0, 7.0]);
        assert_eq!(at(&a, &b, 1.0), b);
        // Outside 0..=1, and NaN, hold the ends.
        assert_eq!(at(&a, &b, 3.0), b);
        assert_eq!(at(&a, &b, -1.0), a);
        assert_eq!(at(&a, &b, f64::NAN), a);
    }

    #[test]
    fn an_angle_turns_the_short_way_and_stays_in_range() {
        let angle = |a: f64, b: f64, t: f64| at(&[0.0, 0.0, a], &[0.0, 0.0, b], t)[2];
        // From just under π to just over -π: across π, not back through 0.
        let across = angle(PI - 0.1, -PI + 0.1, 0.5);
        assert!((across.abs() - PI).abs() < 1e-9, "{across}");
        assert!((-PI..PI).contains(&across));
        let quarter = angle(PI - 0.1, -PI + 0.1, 0.25);
        assert!((quarter - (PI - 0.05)).abs() < 1e-9, "{quarter}");
        assert!((angle(0.2, 0.6, 0.5) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn a_short_record_ends_the_output() {
        assert_eq!(at(&[1.0, 2.0], &[3.0, 4.0, 5.0], 0.5), [2.0, 3.0]);
    }
}
