//! The snapshot delta format (version 4): a snapshot encoded against a baseline snapshot the
//! client already holds, or against nothing (a full snapshot), in the shape of the room's
//! [`Schema`]. The exact bit layout is in docs/PROTOCOL.md; this is the reference
//! implementation.
//!
//! Where the bits go:
//! - both ends first carry every baseline entity forward by its schema's predictions
//!   ([`predict`]): a position along its velocity, a heading along its velocity, everything
//!   else as it was; an entity that did just that needs nothing at all;
//! - only entities that differ from that prediction are listed, by the gaps between their
//!   indices in the baseline (a Rice code whose parameter both ends derive from the baseline's
//!   size and the count), or by a bitmap over the baseline when that is cheaper (many changes);
//! - a listed entity says which fields changed (one bit when the same fields changed as in the
//!   entity of its kind listed before it);
//! - each changed field is sent against its prediction as a Rice-coded residual, with one Rice
//!   parameter per field for the whole snapshot chosen by the encoder, or absolutely when that
//!   is cheaper (a fixed-point value on a whole unit takes the bits of its whole-unit range);
//! - a new entity is sent like a change against the entity of its kind sent before it, or
//!   against zeros;
//! - the header names the baseline by the low byte of its tick and the gap to the new tick.

use crate::bits::{BitReader, BitWriter, BitsExhausted, rice_bits, ugamma_bits};
use crate::code::Code;
use crate::ids::{NetId, PlayerId, Tick};
use crate::schema::{Plan, Schema, heading};
use crate::snapshot::{Head, Snapshot};
use std::ops::Range;
use strength_reduce::StrengthReducedU32;

/// Most entities a decoded snapshot may hold; larger claims are refused before allocating.
pub const MAX_SNAPSHOT_ENTITIES: usize = 65_536;
/// The oldest baseline a delta may use, in ticks before the new snapshot. It keeps the 8-bit
/// tick in the header unambiguous: the client always holds a snapshot newer than the baseline.
pub const MAX_BASELINE_AGE: u32 = 128;
/// A residual whose Rice quotient reaches this is sent as this many zero bits and the value.
const ESCAPE: u32 = 16;
/// Largest Rice parameter a section may name.
const MAX_RICE: u32 = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("snapshot is truncated")]
    Truncated,
    #[error("snapshot needs a baseline whose tick ends in {0:#04x}, which is not held")]
    MissingBaseline(u8),
    #[error("snapshot is against a baseline ending in {wanted:#04x}, given {given:?}")]
    BaselineMismatch { wanted: u8, given: Tick },
    #[error("snapshot claims {0} entities, more than allowed")]
    TooManyEntities(usize),
    #[error("entity id out of range")]
    IdOverflow,
    #[error("snapshot changes or removes {0:?}, which the baseline does not hold")]
    UnknownEntity(NetId),
    #[error("snapshot both removes and changes {0:?}")]
    RemovedAndUpdated(NetId),
    #[error("unknown entity kind {0}")]
    BadKind(u32),
    #[error("baseline was decoded with another schema")]
    WrongStride,
    #[error("malformed snapshot: {0}")]
    Malformed(&'static str),
}

impl From<BitsExhausted> for DecodeError {
    fn from(_: BitsExhausted) -> Self {
        DecodeError::Truncated
    }
}

/// What the first bits of a delta say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaHeader {
    Full {
        tick: Tick,
        tick_rate: u8,
    },
    /// Against the baseline whose tick's low byte is `baseline_low`; the new tick is that
    /// baseline's tick plus `age`.
    Delta {
        baseline_low: u8,
        age: u32,
    },
}

impl DeltaHeader {
    /// The new snapshot's tick, given the baseline's (ignored for a full snapshot).
    pub fn tick(&self, baseline: Option<Tick>) -> Option<Tick> {
        match (self, baseline) {
            (DeltaHeader::Full { tick, .. }, _) => Some(*tick),
            (DeltaHeader::Delta { age, .. }, Some(b)) => b.0.checked_add(*age).map(Tick),
            (DeltaHeader::Delta { .. }, None) => None,
        }
    }

    pub fn baseline_low(&self) -> Option<u8> {
        match self {
            DeltaHeader::Full { .. } => None,
            DeltaHeader::Delta { baseline_low, .. } => Some(*baseline_low),
        }
    }
}

/// Whether a delta from `base` to `next` is allowed (else the encoder writes a full snapshot).
pub fn usable_baseline(base: &Snapshot, next: &Snapshot) -> bool {
    base.tick < next.tick
        && next.tick.0 - base.tick.0 <= MAX_BASELINE_AGE
        && base.stride() == next.stride()
}

/// The span a prediction covers.
#[derive(Copy, Clone, Debug)]
pub struct Clock {
    pub from: Tick,
    pub to: Tick,
    pub tick_rate: u8,
}

/// Fills `out` with what the schema predicts an entity of `kind` to be at `clock.to`, given its
/// baseline slots `base` (at `clock.from`) and its new slots `new`, of which only the fields
/// without a prediction are read (a velocity is read from the new state: both ends know it by
/// the time they predict what follows it).
///
/// A position moves along the mean of its baseline and new velocity (the trapezoid rule), as
/// `round(V·t·kn / (2·kd·rate))` at each absolute tick `t` with `V` the sum of both velocities
/// about their zero, rounded half away from zero, the difference taken and clamped to the
/// range. Evaluating at absolute ticks makes predictions compose (a→b then b→c lands where a→c
/// does for a constant velocity), which is what lets the server keep a straight mover exactly
/// on its prediction ([`settle`]). A tick rate of 0 predicts no movement. A heading points along
/// the new velocity ([`heading`]), or stays when that is zero.
///
/// Predicting many entities over one clock is cheaper through a [`Predictor`].
pub fn predict(
    schema: &Schema,
    kind: u16,
    base: &[u32],
    new: &[u32],
    clock: Clock,
    out: &mut [u32],
) {
    Predictor::new(schema, clock).predict(kind, base, new, out);
}

/// [`predict`] over one clock, with what each prediction needs worked out once: the codec
/// predicts every entity of a snapshot over the same clock, and a division per axis at each
/// end of the span would otherwise be most of its cost.
pub struct Predictor {
    kinds: Vec<KindOps>,
    ops: Vec<Op>,
    /// Runs of slots that hold (fields without a prediction), as slot ranges.
    held: Vec<Range<usize>>,
}

/// A kind's slot count, and its ranges of `ops` and `held`.
#[derive(Clone)]
struct KindOps {
    slots: usize,
    ops: Range<usize>,
    held: Range<usize>,
}

enum Op {
    Integrate {
        at: usize,
        velocity: usize,
        dims: usize,
        zero: i64,
        max: u32,
        path: Path,
    },
    Heading {
        at: usize,
        velocity: usize,
        zero: i64,
        steps: u32,
    },
}

/// `round(v·t·kn / den)` (half away from zero) at both ends of a clock, for any velocity sum
/// `v`, and the difference: how far `v` carries a position over the clock.
///
/// Each end's `t·kn` is split once per clock into `m·den + r` (`0 <= r < den`), so for every
/// entity `round(v·t·kn / den) = v·m ± round(|v|·r / den)`: the part left to divide is small,
/// and fits the 32-bit division by a constant for any velocity a game declares in practice.
#[derive(Copy, Clone)]
struct Path {
    /// `kn < 0`: the path runs against the velocity.
    flip: bool,
    /// `m` at the far end minus `m` at the near end.
    dm: i64,
    r_to: u64,
    r_from: u64,
    /// The largest `|v|` the split way takes (0: none; then the wide way, for any `v`).
    fast: u64,
    den: u64,
    twice_den: StrengthReducedU32,
    to: Tick,
    from: Tick,
    kn: i64,
}

impl Path {
    fn new(clock: Clock, kn: i64, kd: i64) -> Path {
        let den = (2 * kd * clock.tick_rate as i64).unsigned_abs().max(1);
        let split = |t: Tick| {
            let scaled = t.0 as u128 * kn.unsigned_abs() as u128;
            (scaled / den as u128, (scaled % den as u128) as u64)
        };
        let ((m_to, r_to), (m_from, r_from)) = (split(clock.to), split(clock.from));
        let dm = m_to - m_from;
        // `2·|v|·r + den` must fit the 32-bit division, and `|v|·(dm + 1)` an i64 easily.
        let fast = match u32::try_from(2 * den) {
            Ok(_) => {
                let by_division = (u32::MAX as u64 - den) / (2 * r_to.max(r_from).max(1));
                let by_span = (1u128 << 61) / (dm + 1);
                by_division.min(by_span.min(u64::MAX as u128) as u64)
            }
            Err(_) => 0,
        };
        Path {
            flip: kn < 0,
            dm: dm as i64,
            r_to,
            r_from,
            fast,
            den,
            twice_den: StrengthReducedU32::new(u32::try_from(2 * den).unwrap_or(u32::MAX)),
            to: clock.to,
            from: clock.from,
            kn,
        }
    }

    /// Position `pos` carried over the clock by velocity sum `v`, clamped to `0..=max`.
    #[inline]
    fn carry(&self, pos: u32, v: i64, max: u32) -> u32 {
        if v == 0 {
            return pos;
        }
        let along = if self.flip { -v } else { v };
        let speed = along.unsigned_abs();
        if speed > self.fast {
            return self.carry_wide(pos, v, max);
        }
        // Both ends' rounded remainder parts, each below 2^32 (checked by `fast`).
        let part = |r: u64| ((2 * speed * r + self.den) as u32 / self.twice_den) as i64;
        let parts = part(self.r_to) - part(self.r_from);
        // Negated when `along` is negative (sign is all ones), without a branch.
        let sign = along >> 63;
        let span = along * self.dm + ((parts ^ sign) - sign);
        (pos as i64 + span).clamp(0, max as i64) as u32
    }

    /// The same in 128 bits, for any velocity and clock.
    #[cold]
    fn carry_wide(&self, pos: u32, v: i64, max: u32) -> u32 {
        let den = self.den as i128;
        let at = |t: Tick| {
            let num = v as i128 * t.0 as i128 * self.kn as i128;
            (num.abs() * 2 + den) / (2 * den) * num.signum()
        };
        (pos as i128 + at(self.to) - at(self.from)).clamp(0, max as i128) as u32
    }
}

impl Predictor {
    pub fn new(schema: &Schema, clock: Clock) -> Predictor {
        let mut kinds = Vec::with_capacity(schema.kinds().len());
        let mut ops = Vec::new();
        let mut held: Vec<Range<usize>> = Vec::new();
        for (k, kind) in schema.kinds().iter().enumerate() {
            let layout = schema.layout(k as u16);
            let held_start = held.len();
            for (f, field) in kind.fields.iter().enumerate() {
                // A tick rate of 0 predicts no movement: a position holds too.
                let holds = match layout.plans[f] {
                    Plan::Hold => true,
                    Plan::Integrate { .. } => clock.tick_rate == 0,
                    Plan::Heading { .. } => false,
                };
                if !holds {
                    continue;
                }
                let run = layout.offsets[f]..layout.offsets[f] + field.dims as usize;
                match held[held_start..].last_mut() {
                    Some(last) if last.end == run.start => last.end = run.end,
                    _ => held.push(run),
                }
            }
            let start = ops.len();
            for &(at, plan) in &layout.predicted {
                match plan {
                    Plan::Hold => {}
                    // A tick rate of 0 predicts no movement.
                    Plan::Integrate { .. } if clock.tick_rate == 0 => {}
                    Plan::Integrate {
                        velocity,
                        dims,
                        zero,
                        kn,
                        kd,
                        max,
                    } => ops.push(Op::Integrate {
                        at,
                        velocity,
                        dims,
                        zero,
                        max,
                        path: Path::new(clock, kn, kd),
                    }),
                    Plan::Heading {
                        velocity,
                        zero,
                        steps,
                    } => ops.push(Op::Heading {
                        at,
                        velocity,
                        zero,
                        steps,
                    }),
                }
            }
            kinds.push(KindOps {
                slots: layout.slots,
                ops: start..ops.len(),
                held: held_start..held.len(),
            });
        }
        Predictor { kinds, ops, held }
    }

    /// [`settle`] for one entity of `kind`, its slots `old` in the previous snapshot and
    /// `values` as captured now (settled in place). Returns whether it now is exactly where the
    /// prediction from `old` puts it.
    fn settle(&self, kind: u16, old: &[u32], values: &mut [u32]) -> bool {
        let Some(k) = self.kinds.get(kind as usize) else {
            return false;
        };
        let mut follows = self.held[k.held.clone()]
            .iter()
            .all(|run| same_slots(&old[run.clone()], &values[run.clone()]));
        for op in &self.ops[k.ops.clone()] {
            match *op {
                Op::Integrate {
                    at,
                    velocity,
                    dims,
                    zero,
                    max,
                    ref path,
                } => {
                    let field = Integrated {
                        path,
                        at,
                        velocity,
                        zero,
                        max,
                    };
                    // Dims are 1 to 4 (the schema checks); each count gets its own
                    // straight-line code.
                    follows &= match dims {
                        1 => field.settle::<1>(old, values),
                        2 => field.settle::<2>(old, values),
                        3 => field.settle::<3>(old, values),
                        _ => field.settle::<4>(old, values),
                    };
                }
                Op::Heading {
                    at,
                    velocity,
                    zero,
                    steps,
                } => {
                    follows &=
                        values[at] == along(values, velocity, zero, steps).unwrap_or(old[at]);
                }
            }
        }
        follows
    }

    /// [`predict`] for an entity of `kind` over this predictor's clock.
    #[inline]
    pub fn predict(&self, kind: u16, base: &[u32], new: &[u32], out: &mut [u32]) {
        let k = &self.kinds[kind as usize];
        copy_slots(&mut out[..k.slots], &base[..k.slots]);
        for op in &self.ops[k.ops.clone()] {
            match *op {
                Op::Integrate {
                    at,
                    velocity,
                    dims,
                    zero,
                    max,
                    ref path,
                } => {
                    for a in 0..dims {
                        let v =
                            (base[velocity + a] as i64 - zero) + (new[velocity + a] as i64 - zero);
                        out[at + a] = path.carry(base[at + a], v, max);
                    }
                }
                Op::Heading {
                    at,
                    velocity,
                    zero,
                    steps,
                } => {
                    if let Some(h) = along(new, velocity, zero, steps) {
                        out[at] = h;
                    }
                }
            }
        }
    }
}

/// One integrated field of an entity, as [`Predictor::settle`] settles it.
struct Integrated<'a> {
    path: &'a Path,
    at: usize,
    velocity: usize,
    zero: i64,
    max: u32,
}

impl Integrated<'_> {
    /// Settles the field's `D` axes in place: whether the velocity held and the captured
    /// position was near enough the prediction from `old` to become it.
    #[inline(always)]
    fn settle<const D: usize>(&self, old: &[u32], values: &mut [u32]) -> bool {
        let (at, velocity) = (self.at, self.velocity);
        let end = at.max(velocity) + D;
        if end > old.len() || end > values.len() {
            return false;
        }
        if (0..D).any(|a| old[velocity + a] != values[velocity + a]) {
            return false;
        }
        let mut predicted = [0u32; D];
        let mut near = true;
        for a in 0..D {
            let v = 2 * (old[velocity + a] as i64 - self.zero);
            predicted[a] = self.path.carry(old[at + a], v, self.max);
            near &= (predicted[a] as i64 - values[at + a] as i64).abs() <= SETTLE_TOLERANCE;
        }
        if near {
            values[at..at + D].copy_from_slice(&predicted);
        }
        near
    }
}

/// The heading of the 2-d velocity at slot `velocity` of `values` (None when it is zero).
#[inline]
fn along(values: &[u32], velocity: usize, zero: i64, steps: u32) -> Option<u32> {
    let (x, y) = (
        values[velocity] as i64 - zero,
        values[velocity + 1] as i64 - zero,
    );
    heading(x, y, steps)
}

/// A field's few slots copied inline: a copy loop of unknown length becomes a library call,
/// which costs more than the copy.
#[inline]
fn copy_slots(out: &mut [u32], from: &[u32]) {
    match (out, from) {
        ([o], [a]) => *o = *a,
        ([o0, o1], [a0, a1]) => (*o0, *o1) = (*a0, *a1),
        ([o0, o1, o2], [a0, a1, a2]) => (*o0, *o1, *o2) = (*a0, *a1, *a2),
        (out, from) => out.copy_from_slice(from),
    }
}

/// How far (in quanta, per axis) [`settle`] lets a replicated position sit from the
/// simulation's rounded one.
pub const SETTLE_TOLERANCE: i64 = 2;

/// Keeps entities that move at a constant velocity exactly on their prediction. For each
/// integrated field of an entity of `next` that `prev` holds with the same kind, owner and
/// velocity, if the position predicted from `prev` is within [`SETTLE_TOLERANCE`] of the
/// captured one on every axis, that prediction becomes its position. Rounding would otherwise
/// put most straight movers a quantum off their prediction in most snapshots, and each such
/// miss costs a record. The replicated position stays within 2.5 quanta of the simulation's;
/// the difference does not grow, because the prediction follows the quantised velocity exactly
/// and the entity is re-captured as soon as it drifts out. Call it on each snapshot as captured,
/// with the one captured before it.
///
/// It also records, per entity, since when it has followed its prediction through every
/// snapshot so settled: predictions compose (an entity that followed its constant velocity
/// from `a` through `b` to `c` is where the prediction from `a` puts it at `c`, clamping
/// included, since a constant velocity moves one way), so [`encode`] knows an entity that has
/// followed since the baseline or before to be unchanged, without predicting it. Only snapshots
/// of the chain settled this way may serve as baselines for that knowledge to hold, which is how
/// a room's history is built.
pub fn settle(schema: &Schema, prev: &Snapshot, next: &mut Snapshot) {
    if prev.tick >= next.tick || next.tick_rate != prev.tick_rate || prev.stride() != next.stride()
    {
        return;
    }
    let clock = Clock {
        from: prev.tick,
        to: next.tick,
        tick_rate: prev.tick_rate,
    };
    let stride = next.stride();
    if stride == 0 {
        return;
    }
    let predictor = Predictor::new(schema, clock);
    let mut since = vec![next.tick; next.len()];
    let (old_heads, old_values) = (prev.heads(), prev.all_values());
    let (heads, values) = next.heads_and_values_mut();
    let mut j = 0;
    for ((head, values), since) in heads
        .iter()
        .zip(values.chunks_exact_mut(stride))
        .zip(&mut since)
    {
        while j < old_heads.len() && old_heads[j].id < head.id {
            j += 1;
        }
        let Some(old_head) = old_heads.get(j) else {
            break;
        };
        if old_head != head {
            continue;
        }
        let old = &old_values[j * stride..(j + 1) * stride];
        if predictor.settle(head.kind, old, values) {
            *since = prev.since(j).unwrap_or(prev.tick);
        }
    }
    next.set_since(since);
}

/// The Rice parameter for `count` changed indices among `len` baseline entities: gaps between
/// them average about `len / count`, and a Rice code fits a geometric spread of gaps best with
/// 2^shift near 0.69 of that mean (here 11/16). Both ends compute it; it is never sent.
pub fn rice_shift(len: usize, count: usize) -> u32 {
    let scaled = (len as u64 * 11) / (count.max(1) as u64 * 16);
    scaled.checked_ilog2().unwrap_or(0)
}

/// Encodes `next` against `base` (None, or a baseline too old, not older, or of another
/// stride: a full snapshot). Both must be in the shape of `schema`.
pub fn encode(schema: &Schema, base: Option<&Snapshot>, next: &Snapshot) -> Vec<u8> {
    let base = base.filter(|b| usable_baseline(b, next));
    let stride = next.stride();
    let clock = Clock {
        from: base.map_or(next.tick, |b| b.tick),
        to: next.tick,
        tick_rate: base.map_or(next.tick_rate, |b| b.tick_rate),
    };
    let base_len = base.map_or(0, |b| b.len());

    // One merge pass over both sorted lists; a kept entity is compared with its prediction.
    let mut removed: Vec<NetId> = Vec::new();
    let mut changed: Vec<(usize, usize)> = Vec::new();
    let mut predictions: Vec<u32> = Vec::new();
    let mut spawned: Vec<usize> = Vec::new();
    let mut scratch = vec![0u32; stride];
    let predictor = Predictor::new(schema, clock);
    let (mut i, mut j) = (0, 0);
    while i < base_len || j < next.len() {
        let b = base.and_then(|b| b.heads().get(i));
        let n = next.heads().get(j);
        match (b, n) {
            (Some(bh), Some(nh)) if bh.id == nh.id => {
                if bh != nh {
                    spawned.push(j);
                } else {
                    // Known to have followed its prediction since the baseline: unchanged.
                    let followed = base.is_some_and(|b| next.since(j).is_some_and(|s| s <= b.tick));
                    if !followed || cfg!(debug_assertions) {
                        let base_values = base.map_or(&[][..], |b| b.values(i));
                        predictor.predict(nh.kind, base_values, next.values(j), &mut scratch);
                        let slots = schema.layout(nh.kind).slots;
                        let same = same_slots(&scratch[..slots], &next.values(j)[..slots]);
                        debug_assert!(same || !followed, "{nh:?} followed since the baseline");
                        if !same {
                            changed.push((i, j));
                            predictions.extend_from_slice(&scratch);
                        }
                    }
                }
                i += 1;
                j += 1;
            }
            (Some(bh), Some(nh)) if bh.id < nh.id => {
                removed.push(bh.id);
                i += 1;
            }
            (Some(bh), None) => {
                removed.push(bh.id);
                i += 1;
            }
            (_, Some(_)) => {
                spawned.push(j);
                j += 1;
            }
            (None, None) => unreachable!("loop condition"),
        }
    }

    let mut w = BitWriter::with_capacity(8 + changed.len() * 3 + spawned.len() * 8);
    match base {
        None => {
            w.write_bool(true);
            w.write(next.tick.0, 32);
            w.write(next.tick_rate as u32, 8);
        }
        Some(b) => {
            w.write_bool(false);
            w.write(b.tick.0 & 0xff, 8);
            w.write_ugamma(next.tick.0 - b.tick.0 - 1);
        }
    }

    // Removals: a flag, then a count and the id gaps.
    w.write_bool(!removed.is_empty());
    if !removed.is_empty() {
        w.write_ugamma(removed.len() as u32 - 1);
        let mut ids = IdGaps::default();
        for id in &removed {
            w.write_ugamma(ids.gap(*id));
        }
    }

    // Changed entities: by a bitmap over the baseline, by the index gaps of the changed, or by
    // those of the unchanged (when nearly everything changed), whichever is smallest.
    let changed_indices: Vec<usize> = changed.iter().map(|&(i, _)| i).collect();
    // The count says which: when more than half changed, the gaps are the unchanged ones'.
    let inverted = 2 * changed.len() > base_len;
    let unchanged: Vec<usize> = if inverted {
        let mut k = 0;
        (0..base_len)
            .filter(|&i| {
                let hit = changed_indices.get(k) == Some(&i);
                k += hit as usize;
                !hit
            })
            .collect()
    } else {
        Vec::new()
    };
    let listed = if inverted {
        &unchanged
    } else {
        &changed_indices
    };
    let bitmap =
        base_len < gaps_bits(base_len, listed) + ugamma_bits(changed.len() as u32) as usize;
    w.write_bool(bitmap);
    if bitmap {
        let mut k = 0;
        for idx in 0..base_len {
            let hit = changed_indices.get(k) == Some(&idx);
            w.write_bool(hit);
            k += hit as usize;
        }
    } else {
        w.write_ugamma(changed.len() as u32);
        write_gaps(&mut w, base_len, listed);
    }
    let records: Vec<Record<'_>> = changed
        .iter()
        .enumerate()
        .map(|(k, &(_, j))| Record {
            kind: next.heads()[j].kind,
            reference: &predictions[k * stride..(k + 1) * stride],
            values: next.values(j),
        })
        .collect();
    write_section(&mut w, schema, FirstMask::Predicted, &records);

    // Spawned (new, or replacing an entity whose kind or owner changed): heads, then their
    // values against the one of their kind before them.
    w.write_ugamma(spawned.len() as u32);
    let mut ids = IdGaps::default();
    let kind_bits = schema.kind_bits();
    for &j in &spawned {
        let h = next.heads()[j];
        w.write_ugamma(ids.gap(h.id));
        w.write(h.kind as u32, kind_bits);
        match h.owner {
            Some(p) => {
                w.write_bool(true);
                w.write_ugamma(p.0);
            }
            None => w.write_bool(false),
        }
    }
    let zeros = zero_slots(schema);
    let mut last_of_kind: Vec<Option<usize>> = vec![None; schema.kinds().len()];
    let records: Vec<Record<'_>> = spawned
        .iter()
        .map(|&j| {
            let kind = next.heads()[j].kind;
            let reference = match last_of_kind[kind as usize].replace(j) {
                Some(prev) => next.values(prev),
                None => &zeros[kind as usize * stride..][..stride],
            };
            Record {
                kind,
                reference,
                values: next.values(j),
            }
        })
        .collect();
    write_section(&mut w, schema, FirstMask::All, &records);
    w.finish()
}

/// Which of a section's `n` records of a kind send a field: `γ(count)`, then the positions
/// (among the kind's records) as [`write_gaps`].
fn write_listing(w: &mut BitWriter, n: usize, positions: &[usize]) {
    w.write_ugamma(positions.len() as u32);
    write_gaps(w, n, positions);
}

/// Bits of [`write_listing`].
fn listing_bits(n: usize, positions: &[usize]) -> usize {
    ugamma_bits(positions.len() as u32) as usize + gaps_bits(n, positions)
}

/// Reads [`write_listing`]: positions below `n`, ascending.
fn read_listing(r: &mut BitReader<'_>, n: usize) -> Result<Vec<usize>, DecodeError> {
    let count = r.read_ugamma()? as usize;
    if count > n {
        return Err(DecodeError::Malformed(
            "more records listed than the section holds",
        ));
    }
    read_gaps(r, n, count, "listed record past the section")
}

/// Ascending positions below `n` (changed entities among a baseline's, records among a kind's)
/// as Rice-coded gaps, with the shift [`rice_shift`] gives for their count among `n`.
fn write_gaps(w: &mut BitWriter, n: usize, positions: &[usize]) {
    let shift = rice_shift(n, positions.len());
    for gap in index_gaps(positions) {
        w.write_rice(gap, shift);
    }
}

/// Bits of [`write_gaps`].
fn gaps_bits(n: usize, positions: &[usize]) -> usize {
    let shift = rice_shift(n, positions.len());
    index_gaps(positions)
        .map(|g| rice_bits(g, shift) as usize)
        .sum()
}

/// Reads [`write_gaps`] for `count` positions; a gap that would land at or past `n` is the
/// error `past`.
fn read_gaps(
    r: &mut BitReader<'_>,
    n: usize,
    count: usize,
    past: &'static str,
) -> Result<Vec<usize>, DecodeError> {
    let shift = rice_shift(n, count);
    let mut positions = Vec::with_capacity(count);
    let mut next = 0usize;
    for _ in 0..count {
        // The largest gap that still lands below n.
        let room = n
            .checked_sub(next + 1)
            .ok_or(DecodeError::Malformed(past))? as u32;
        let gap = r
            .read_rice(shift, room)?
            .ok_or(DecodeError::Malformed(past))?;
        positions.push(next + gap as usize);
        next += gap as usize + 1;
    }
    Ok(positions)
}

/// Ascending indices as gaps: each index minus the one before it minus one, the first from 0.
fn index_gaps(indices: &[usize]) -> impl Iterator<Item = u32> + '_ {
    let mut next = 0usize;
    indices.iter().map(move |&i| {
        let gap = i - next;
        next = i + 1;
        gap as u32
    })
}

/// Slot-wise equality, inlined (a handful of slots: a library compare costs more than it does).
#[inline]
fn same_slots(a: &[u32], b: &[u32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Each kind's zero values (what the first new entity of a kind is sent against), `stride`
/// slots per kind.
fn zero_slots(schema: &Schema) -> Vec<u32> {
    let stride = schema.stride();
    let mut out = vec![0; stride * schema.kinds().len()];
    for (k, kind) in schema.kinds().iter().enumerate() {
        let layout = schema.layout(k as u16);
        for (f, field) in kind.fields.iter().enumerate() {
            let at = k * stride + layout.offsets[f];
            out[at..at + field.dims as usize].fill(field.ty.zero_slot());
        }
    }
    out
}

/// An entity as a section sends it: its values against a reference.
struct Record<'a> {
    kind: u16,
    reference: &'a [u32],
    values: &'a [u32],
}

/// Bits of one residual slot with Rice parameter `k` (escaped when the quotient is too long).
fn residual_bits(z: u64, k: u32, plain_bits: u32) -> u64 {
    let q = z >> k;
    if q < ESCAPE as u64 {
        q + 1 + k as u64
    } else {
        ESCAPE as u64 + plain_bits as u64
    }
}

/// The mask a section's first record of a kind is compared with.
#[derive(Copy, Clone)]
enum FirstMask {
    /// Changes: the predicted fields (a prediction missed by rounding is the commonest change).
    Predicted,
    /// New entities: every field (the first of a kind is sent against zeros).
    All,
}

impl FirstMask {
    fn expects(self, layout: &crate::schema::KindLayout, field: usize) -> bool {
        match self {
            FirstMask::Predicted => layout.plans[field] != Plan::Hold,
            FirstMask::All => true,
        }
    }
}

/// What a section sends for one (kind, field): absolutely, or residuals with Rice parameter k.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Coding {
    Absolute,
    Rice(u32),
}

impl Coding {
    fn write(self, w: &mut BitWriter) {
        w.write_bool(self == Coding::Absolute);
        if let Coding::Rice(k) = self {
            w.write_ugamma(k);
        }
    }

    fn read(r: &mut BitReader<'_>) -> Result<Coding, DecodeError> {
        if r.read_bool()? {
            return Ok(Coding::Absolute);
        }
        match r.read_ugamma()? {
            k if k <= MAX_RICE => Ok(Coding::Rice(k)),
            _ => Err(DecodeError::Malformed("Rice parameter too large")),
        }
    }

    /// Bits of [`Coding::write`].
    fn bits(self) -> u64 {
        match self {
            Coding::Absolute => 1,
            Coding::Rice(k) => 1 + ugamma_bits(k) as u64,
        }
    }
}

/// The masks of every record, then a coding per (kind, field) that any record changed, then
/// each record's changed fields in the kind's order.
fn write_section(w: &mut BitWriter, schema: &Schema, first: FirstMask, records: &[Record<'_>]) {
    if records.is_empty() {
        return;
    }
    // Each record's mask (flattened, record n's from starts[n]), and the records of each kind.
    let nk = schema.kinds().len();
    let mut masks: Vec<bool> = Vec::new();
    let mut starts = Vec::with_capacity(records.len());
    let mut of_kind: Vec<Vec<usize>> = vec![Vec::new(); nk];
    for (n, r) in records.iter().enumerate() {
        let layout = schema.layout(r.kind);
        starts.push(masks.len());
        for (f, &at) in layout.offsets.iter().enumerate() {
            let dims = schema.kinds()[r.kind as usize].fields[f].dims as usize;
            masks.push(!same_slots(
                &r.reference[at..at + dims],
                &r.values[at..at + dims],
            ));
        }
        of_kind[r.kind as usize].push(n);
    }
    let fields_of = |k: usize| schema.kinds()[k].fields.len();
    // The fields any record of a kind changed.
    let used: Vec<Vec<bool>> = (0..nk)
        .map(|k| {
            let mut used = vec![
                false;
                if of_kind[k].is_empty() {
                    0
                } else {
                    fields_of(k)
                }
            ];
            for &n in &of_kind[k] {
                for (u, &m) in used.iter_mut().zip(&masks[starts[n]..]) {
                    *u |= m;
                }
            }
            used
        })
        .collect();
    // Kinds with two or more records may send one mask for all of them, the union of their
    // masks, and then, per field of the union, either that every record sends it (a record
    // that kept it sends a zero residual) or the list of the records that send it (the others
    // kept it). The encoder takes the shared mask when that looks cheaper than a mask per
    // record, and per field whichever of the two looks cheaper.
    let mut shared = vec![false; nk];
    for k in (0..nk).filter(|&k| of_kind[k].len() >= 2) {
        let layout = schema.layout(k as u16);
        let kind = &schema.kinds()[k];
        let fields = fields_of(k);
        let records_of_kind = &of_kind[k];
        let union = &used[k];
        let mut per_record = 0usize;
        let mut previous: Option<&[bool]> = None;
        for &n in records_of_kind {
            let m = &masks[starts[n]..starts[n] + fields];
            per_record += if previous == Some(m) { 1 } else { 1 + fields };
            previous = Some(m);
        }
        let mut shared_bits = 1 + fields;
        let mut plans: Vec<(usize, Option<Vec<usize>>)> = Vec::new();
        for f in (0..fields).filter(|&f| union[f]) {
            let sending: Vec<usize> = (0..records_of_kind.len())
                .filter(|&i| masks[starts[records_of_kind[i]] + f])
                .collect();
            let kept = records_of_kind.len() - sending.len();
            let code = &layout.codes[f];
            // A zero residual costs 1 + k bits with k about the changed residuals' size; a
            // field without residuals cannot say "kept" but by the list.
            let every = code.has_residual().then(|| {
                let dims = kind.fields[f].dims as usize;
                let (mut sum, mut slots) = (0u64, 0u64);
                for &i in &sending {
                    let r = &records[records_of_kind[i]];
                    let at = layout.offsets[f];
                    for a in 0..dims {
                        sum += code.residual(r.reference[at + a], r.values[at + a]);
                        slots += 1;
                    }
                }
                let k = 64 - (sum / slots.max(1)).leading_zeros() as usize;
                1 + kept * dims * (1 + k)
            });
            let listed = 1 + listing_bits(records_of_kind.len(), &sending);
            match every {
                Some(every) if every <= listed => {
                    shared_bits += every;
                    plans.push((f, None));
                }
                _ => {
                    shared_bits += listed;
                    plans.push((f, Some(sending)));
                }
            }
        }
        let use_union = shared_bits < per_record;
        w.write_bool(use_union);
        if !use_union {
            continue;
        }
        write_mask(w, layout, first, None, union);
        for &n in records_of_kind {
            masks[starts[n]..starts[n] + fields].copy_from_slice(union);
        }
        for (f, listed) in plans {
            w.write_bool(listed.is_some());
            let Some(sending) = listed else { continue };
            write_listing(w, records_of_kind.len(), &sending);
            let mut next = sending.iter().peekable();
            for (i, &n) in records_of_kind.iter().enumerate() {
                let sends = next.next_if_eq(&&i).is_some();
                masks[starts[n] + f] = sends;
            }
        }
        shared[k] = true;
    }
    // The others, record by record.
    let mask = |n: usize| &masks[starts[n]..starts[n] + fields_of(records[n].kind as usize)];
    let mut last: Vec<Option<usize>> = vec![None; nk];
    for (n, record) in records.iter().enumerate() {
        let k = record.kind as usize;
        if !shared[k] {
            let previous = last[k].replace(n).map(mask);
            write_mask(w, schema.layout(k as u16), first, previous, mask(n));
        }
    }
    // Codings, chosen for the fewest bits over the section.
    let mut codings: Vec<Vec<Coding>> = vec![Vec::new(); nk];
    let mut zs: Vec<u64> = Vec::new();
    for (k, kind) in schema.kinds().iter().enumerate() {
        let layout = schema.layout(k as u16);
        for (f, &hit) in used[k].iter().enumerate() {
            let code = &layout.codes[f];
            let (at, dims) = (layout.offsets[f], kind.fields[f].dims as usize);
            if !hit || !code.has_residual() {
                codings[k].push(Coding::Absolute);
                continue;
            }
            let mut absolute = 0u64;
            zs.clear();
            for &n in of_kind[k].iter().filter(|&&n| masks[starts[n] + f]) {
                let r = &records[n];
                absolute += code.absolute_bits(&r.values[at..at + dims]) as u64;
                for a in 0..dims {
                    zs.push(code.residual(r.reference[at + a], r.values[at + a]));
                }
            }
            // A Rice code fits residuals best with 2^k near their mean: try around it.
            let mean = zs.iter().sum::<u64>() / zs.len().max(1) as u64;
            let guess = (64 - mean.leading_zeros()).min(MAX_RICE);
            let (best_k, best) = (guess.saturating_sub(1)..=(guess + 1).min(MAX_RICE))
                .map(|k| {
                    let bits: u64 = zs.iter().map(|&z| residual_bits(z, k, code.bits)).sum();
                    (k, bits)
                })
                .min_by_key(|&(k, bits)| (bits + Coding::Rice(k).bits(), k))
                .expect("at least k = 0");
            let coding = if absolute + Coding::Absolute.bits() <= best + Coding::Rice(best_k).bits()
            {
                Coding::Absolute
            } else {
                Coding::Rice(best_k)
            };
            coding.write(w);
            codings[k].push(coding);
        }
    }
    // Values.
    for (n, r) in records.iter().enumerate() {
        let kind = &schema.kinds()[r.kind as usize];
        let layout = schema.layout(r.kind);
        let mask = &masks[starts[n]..];
        for &f in &layout.order {
            if !mask[f] {
                continue;
            }
            let code = &layout.codes[f];
            let (at, dims) = (layout.offsets[f], kind.fields[f].dims as usize);
            let (reference, values) = (&r.reference[at..at + dims], &r.values[at..at + dims]);
            match codings[r.kind as usize][f] {
                Coding::Absolute => code.write_absolute(w, reference, values),
                Coding::Rice(k) => {
                    for (&p, &v) in reference.iter().zip(values) {
                        let z = code.residual(p, v);
                        if z >> k < ESCAPE as u64 {
                            w.write_rice(z as u32, k);
                        } else {
                            w.write(0, ESCAPE);
                            w.write(v, code.bits);
                        }
                    }
                }
            }
        }
    }
}

/// A mask: `same u(1)` (the same as `previous`, or the section's first mask when there is
/// none), else one bit per field.
fn write_mask(
    w: &mut BitWriter,
    layout: &crate::schema::KindLayout,
    first: FirstMask,
    previous: Option<&[bool]>,
    mask: &[bool],
) {
    let same = match previous {
        Some(p) => p == mask,
        None => mask
            .iter()
            .enumerate()
            .all(|(f, &m)| m == first.expects(layout, f)),
    };
    w.write_bool(same);
    if !same {
        mask.iter().for_each(|&m| w.write_bool(m));
    }
}

fn read_mask(
    r: &mut BitReader<'_>,
    layout: &crate::schema::KindLayout,
    first: FirstMask,
    previous: Option<&[bool]>,
    fields: usize,
    out: &mut Vec<bool>,
) -> Result<(), DecodeError> {
    if r.read_bool()? {
        match previous {
            Some(p) => out.extend_from_slice(p),
            None => out.extend((0..fields).map(|f| first.expects(layout, f))),
        }
        return Ok(());
    }
    if fields > r.remaining() {
        return Err(DecodeError::Truncated);
    }
    for _ in 0..fields {
        out.push(r.read_bool()?);
    }
    Ok(())
}

/// What a section's first two parts say: per record a mask (one bool per field of its kind,
/// flattened, record `n`'s from `starts[n]`), and per (kind, field) the coding.
struct SectionPlan {
    masks: Vec<bool>,
    starts: Vec<usize>,
    codings: Vec<Vec<Coding>>,
}

/// Reads a section's masks and codings for records of the given kinds.
fn read_section_plan(
    r: &mut BitReader<'_>,
    schema: &Schema,
    first: FirstMask,
    kinds: &[u16],
) -> Result<SectionPlan, DecodeError> {
    let nk = schema.kinds().len();
    let mut count = vec![0usize; nk];
    for &k in kinds {
        *count
            .get_mut(k as usize)
            .ok_or(DecodeError::BadKind(k as u32))? += 1;
    }
    // Kinds with two or more records may share one mask, each of its fields sent by every
    // record of the kind or by those listed (per field: which of the kind's records send it).
    // (A listing is kept as its positions, which the bits read bound, never as a table.)
    type Listed = (usize, std::iter::Peekable<std::vec::IntoIter<usize>>);
    let mut shared: Vec<Option<(Vec<bool>, Vec<Listed>)>> = (0..nk).map(|_| None).collect();
    for k in 0..nk {
        if count[k] >= 2 && r.read_bool()? {
            let mut mask = Vec::new();
            let fields = schema.kinds()[k].fields.len();
            read_mask(r, schema.layout(k as u16), first, None, fields, &mut mask)?;
            let mut listed = Vec::new();
            for f in (0..fields).filter(|&f| mask[f]) {
                if r.read_bool()? {
                    listed.push((f, read_listing(r, count[k])?.into_iter().peekable()));
                }
            }
            shared[k] = Some((mask, listed));
        }
    }
    let mut masks: Vec<bool> = Vec::new();
    let mut starts = Vec::with_capacity(kinds.len());
    let mut last: Vec<Option<usize>> = vec![None; nk];
    let mut used: Vec<Vec<bool>> = vec![Vec::new(); nk];
    let mut position = vec![0usize; nk];
    for &k in kinds {
        let n = schema.kinds()[k as usize].fields.len();
        let start = masks.len();
        starts.push(start);
        if let Some((mask, listed)) = &mut shared[k as usize] {
            masks.extend_from_slice(mask);
            let i = position[k as usize];
            for (f, positions) in listed.iter_mut() {
                masks[start + *f] = positions.next_if_eq(&i).is_some();
            }
            position[k as usize] += 1;
        } else {
            let previous = last[k as usize].replace(start);
            let layout = schema.layout(k);
            match previous {
                Some(p) => {
                    let prev: Vec<bool> = masks[p..p + n].to_vec();
                    read_mask(r, layout, first, Some(&prev), n, &mut masks)?;
                }
                None => read_mask(r, layout, first, None, n, &mut masks)?,
            }
        }
        let used = &mut used[k as usize];
        used.resize(n, false);
        for (u, &m) in used.iter_mut().zip(&masks[start..start + n]) {
            *u |= m;
        }
    }
    let mut codings: Vec<Vec<Coding>> = vec![Vec::new(); schema.kinds().len()];
    for (k, used) in used.iter().enumerate() {
        let codes = &schema.layout(k as u16).codes;
        for (f, &hit) in used.iter().enumerate() {
            let coding = if hit && codes[f].has_residual() {
                Coding::read(r)?
            } else {
                Coding::Absolute
            };
            codings[k].push(coding);
        }
    }
    Ok(SectionPlan {
        masks,
        starts,
        codings,
    })
}

/// Reads one field's changed values against what `out` holds now (its reference), in place.
fn read_field(
    r: &mut BitReader<'_>,
    code: &Code,
    coding: Coding,
    out: &mut [u32],
) -> Result<(), DecodeError> {
    let mut held = [0u32; 4];
    held[..out.len()].copy_from_slice(out);
    let reference = &held[..out.len()];
    match coding {
        Coding::Absolute => code.read_absolute(r, reference, out),
        Coding::Rice(k) => {
            for (o, &p) in out.iter_mut().zip(reference) {
                let mut q = 0u64;
                while !r.read_bool()? {
                    q += 1;
                    if q == ESCAPE as u64 {
                        break;
                    }
                }
                *o = if q == ESCAPE as u64 {
                    code.read_plain(r)?
                } else {
                    code.unresidual(p, (q << k) | r.read(k)? as u64)?
                };
            }
            Ok(())
        }
    }
}

/// Ids and indices are written as gaps from the previous one plus one, starting from 0, so a run
/// of consecutive ids costs one bit each.
#[derive(Default)]
struct IdGaps {
    next: u64,
}

impl IdGaps {
    fn gap(&mut self, id: NetId) -> u32 {
        let gap = id.0 as u64 - self.next;
        self.next = id.0 as u64 + 1;
        gap as u32
    }

    fn id(&mut self, gap: u32) -> Result<NetId, DecodeError> {
        let id = self.next + gap as u64;
        if id > u32::MAX as u64 {
            return Err(DecodeError::IdOverflow);
        }
        self.next = id + 1;
        Ok(NetId(id as u32))
    }
}

/// Reads the header, so a client can find the baseline a delta needs.
pub fn read_header(bytes: &[u8]) -> Result<DeltaHeader, DecodeError> {
    let mut r = BitReader::new(bytes);
    read_header_from(&mut r)
}

fn read_header_from(r: &mut BitReader<'_>) -> Result<DeltaHeader, DecodeError> {
    if r.read_bool()? {
        let tick = Tick(r.read(32)?);
        let tick_rate = r.read(8)? as u8;
        return Ok(DeltaHeader::Full { tick, tick_rate });
    }
    let baseline_low = r.read(8)? as u8;
    let age = r.read_ugamma()?.saturating_add(1);
    if age > MAX_BASELINE_AGE {
        return Err(DecodeError::Malformed("baseline older than allowed"));
    }
    Ok(DeltaHeader::Delta { baseline_low, age })
}

/// Decodes a delta in the shape of `schema`. `base` must be the snapshot the header names when
/// it is a delta; it is ignored for a full snapshot.
pub fn decode(
    schema: &Schema,
    bytes: &[u8],
    base: Option<&Snapshot>,
) -> Result<Snapshot, DecodeError> {
    let stride = schema.stride();
    let mut r = BitReader::new(bytes);
    let header = read_header_from(&mut r)?;
    let (base, tick, tick_rate) = match (header, base) {
        (DeltaHeader::Full { tick, tick_rate }, _) => (None, tick, tick_rate),
        (DeltaHeader::Delta { baseline_low, .. }, None) => {
            return Err(DecodeError::MissingBaseline(baseline_low));
        }
        (DeltaHeader::Delta { baseline_low, .. }, Some(b))
            if b.tick.0 & 0xff != baseline_low as u32 =>
        {
            return Err(DecodeError::BaselineMismatch {
                wanted: baseline_low,
                given: b.tick,
            });
        }
        (DeltaHeader::Delta { .. }, Some(b)) => {
            let tick = header
                .tick(Some(b.tick))
                .ok_or(DecodeError::Malformed("tick overflow"))?;
            (Some(b), tick, b.tick_rate)
        }
    };
    if base.is_some_and(|b| b.stride() != stride) {
        return Err(DecodeError::WrongStride);
    }
    let base_len = base.map_or(0, |b| b.len());
    let clock = Clock {
        from: base.map_or(tick, |b| b.tick),
        to: tick,
        tick_rate,
    };

    // Removals.
    let mut removed = Vec::new();
    if r.read_bool()? {
        let count = r.read_ugamma()? as usize + 1;
        if count > base_len {
            return Err(DecodeError::TooManyEntities(count));
        }
        removed.reserve(count);
        let mut ids = IdGaps::default();
        for _ in 0..count {
            removed.push(ids.id(r.read_ugamma()?)?);
        }
    }

    // Changed entities, as indices into the baseline.
    let mut changed_at: Vec<usize> = Vec::new();
    if r.read_bool()? {
        if base_len > r.remaining() {
            return Err(DecodeError::Truncated);
        }
        for idx in 0..base_len {
            if r.read_bool()? {
                changed_at.push(idx);
            }
        }
    } else {
        let changed = r.read_ugamma()? as usize;
        if changed > base_len {
            return Err(DecodeError::TooManyEntities(changed));
        }
        // More than half changed: the gaps are those of the unchanged.
        let inverted = 2 * changed > base_len;
        let count = if inverted {
            base_len - changed
        } else {
            changed
        };
        let listed = read_gaps(&mut r, base_len, count, "changed index past the baseline")?;
        changed_at = if inverted {
            let mut k = 0;
            (0..base_len)
                .filter(|&i| {
                    let hit = listed.get(k) == Some(&i);
                    k += hit as usize;
                    !hit
                })
                .collect()
        } else {
            listed
        };
    }

    // Every baseline entity carried forward, then the listed ones corrected.
    let mut out = Snapshot::empty(tick, stride).with_tick_rate(tick_rate);
    let predictor = Predictor::new(schema, clock);
    let mut scratch = vec![0u32; stride];
    if let Some(b) = base {
        for i in 0..b.len() {
            let head = b.heads()[i];
            if head.kind as usize >= schema.kinds().len() {
                return Err(DecodeError::BadKind(head.kind as u32));
            }
            predictor.predict(head.kind, b.values(i), b.values(i), &mut scratch);
            // Only the kind's slots: the rest of the scratch is another kind's.
            out.push_sorted(head, &scratch[..schema.layout(head.kind).slots]);
        }
        let kinds: Vec<u16> = changed_at.iter().map(|&i| b.heads()[i].kind).collect();
        let SectionPlan {
            masks,
            starts,
            codings,
        } = read_section_plan(&mut r, schema, FirstMask::Predicted, &kinds)?;
        let mut values = vec![0u32; stride];
        for (n, &idx) in changed_at.iter().enumerate() {
            let kind_index = kinds[n];
            let kind = &schema.kinds()[kind_index as usize];
            let layout = schema.layout(kind_index);
            let mask = &masks[starts[n]..starts[n] + kind.fields.len()];
            let old = b.values(idx);
            values.copy_from_slice(old);
            let mut predicted_done = false;
            for &f in &layout.order {
                let field = &kind.fields[f];
                let (at, dims) = (layout.offsets[f], field.dims as usize);
                if layout.plans[f] != Plan::Hold && !predicted_done {
                    // Every field a prediction reads is final now.
                    predictor.predict(kind_index, old, &values, &mut scratch);
                    for &g in layout
                        .order
                        .iter()
                        .filter(|&&g| layout.plans[g] != Plan::Hold)
                    {
                        let (at, dims) = (layout.offsets[g], kind.fields[g].dims as usize);
                        values[at..at + dims].copy_from_slice(&scratch[at..at + dims]);
                    }
                    predicted_done = true;
                }
                if mask[f] {
                    let coding = codings[kind_index as usize][f];
                    read_field(&mut r, &layout.codes[f], coding, &mut values[at..at + dims])?;
                }
            }
            out.values_mut(idx).copy_from_slice(&values);
        }
    } else {
        read_section_plan(&mut r, schema, FirstMask::Predicted, &[])?;
    }

    // Drop the removed (each must be in the baseline and not also changed).
    if !removed.is_empty() {
        let mut gone = vec![false; out.len()];
        for id in &removed {
            let idx = out.index_of(*id).ok_or(DecodeError::UnknownEntity(*id))?;
            if changed_at.binary_search(&idx).is_ok() {
                return Err(DecodeError::RemovedAndUpdated(*id));
            }
            gone[idx] = true;
        }
        out.retain_indices(|i| !gone[i]);
    }

    // Spawned: heads, then values against the one of their kind before them, merged in by id.
    let count = r.read_ugamma()? as usize;
    if count > MAX_SNAPSHOT_ENTITIES || count > r.remaining() {
        return Err(DecodeError::TooManyEntities(count));
    }
    let kind_bits = schema.kind_bits();
    let mut heads = Vec::with_capacity(count);
    let mut ids = IdGaps::default();
    for _ in 0..count {
        let id = ids.id(r.read_ugamma()?)?;
        let kind = r.read(kind_bits)?;
        if kind as usize >= schema.kinds().len() {
            return Err(DecodeError::BadKind(kind));
        }
        let owner = if r.read_bool()? {
            Some(PlayerId(r.read_ugamma()?))
        } else {
            None
        };
        heads.push(Head {
            id,
            kind: kind as u16,
            owner,
        });
    }
    let kinds: Vec<u16> = heads.iter().map(|h| h.kind).collect();
    let SectionPlan {
        masks,
        starts,
        codings,
    } = read_section_plan(&mut r, schema, FirstMask::All, &kinds)?;
    let zeros = zero_slots(schema);
    let mut spawned_values = vec![0u32; count * stride];
    let mut last_of_kind: Vec<Option<usize>> = vec![None; schema.kinds().len()];
    for n in 0..count {
        let kind_index = kinds[n];
        let kind = &schema.kinds()[kind_index as usize];
        let layout = schema.layout(kind_index);
        match last_of_kind[kind_index as usize].replace(n) {
            Some(prev) => {
                spawned_values.copy_within(prev * stride..(prev + 1) * stride, n * stride);
            }
            None => spawned_values[n * stride..(n + 1) * stride]
                .copy_from_slice(&zeros[kind_index as usize * stride..][..stride]),
        }
        let values = &mut spawned_values[n * stride..(n + 1) * stride];
        let mask = &masks[starts[n]..starts[n] + kind.fields.len()];
        for &f in &layout.order {
            if mask[f] {
                let field = &kind.fields[f];
                let (at, dims) = (layout.offsets[f], field.dims as usize);
                let coding = codings[kind_index as usize][f];
                read_field(&mut r, &layout.codes[f], coding, &mut values[at..at + dims])?;
            }
        }
    }
    let out = merge_spawned(out, &heads, &spawned_values);
    if out.len() > MAX_SNAPSHOT_ENTITIES {
        return Err(DecodeError::TooManyEntities(out.len()));
    }
    Ok(out)
}

/// Both sorted by id; a spawned entity replaces one with the same id.
fn merge_spawned(kept: Snapshot, heads: &[Head], values: &[u32]) -> Snapshot {
    if heads.is_empty() {
        return kept;
    }
    let stride = kept.stride();
    let mut out = Snapshot::empty(kept.tick, stride).with_tick_rate(kept.tick_rate);
    let mut k = 0;
    for (n, h) in heads.iter().enumerate() {
        while k < kept.len() && kept.heads()[k].id < h.id {
            out.push_sorted(kept.heads()[k], kept.values(k));
            k += 1;
        }
        if k < kept.len() && kept.heads()[k].id == h.id {
            k += 1;
        }
        out.push_sorted(*h, &values[n * stride..(n + 1) * stride]);
    }
    for i in k..kept.len() {
        out.push_sorted(kept.heads()[i], kept.values(i));
    }
    out
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{self as arena, EntityKind, EntityState};
    use crate::schema::{Field, FieldType, Kind, Predict};
    use crate::snapshot::Capture;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn schema() -> Arc<Schema> {
        arena::schema()
    }

    fn encode(base: Option<&Snapshot>, next: &Snapshot) -> Vec<u8> {
        super::encode(&schema(), base, next)
    }

    fn decode(bytes: &[u8], base: Option<&Snapshot>) -> Result<Snapshot, DecodeError> {
        super::decode(&schema(), bytes, base)
    }

    fn snap(tick: u32, es: &[EntityState]) -> Snapshot {
        arena::capture(Tick(tick), es.iter().copied()).with_tick_rate(60)
    }

    fn states(s: &Snapshot) -> Vec<EntityState> {
        arena::entities(s).collect()
    }

    /// An arena entity carried from `from` to `to` at its own velocity.
    fn advance(e: &EntityState, from: Tick, to: Tick, tick_rate: u8) -> EntityState {
        e.advance(from, to, tick_rate)
    }

    /// One axis of a position carried at a constant velocity.
    fn predict_pos(pos: u16, vel: u16, from: Tick, to: Tick, tick_rate: u8) -> u16 {
        let e = EntityState {
            pos: [pos, 0],
            vel: [vel, EntityState::REST_VEL[1]],
            ..entity(1, 0)
        };
        advance(&e, from, to, tick_rate).pos[0]
    }

    fn entity(id: u32, x: u16) -> EntityState {
        EntityState {
            id: NetId(id),
            kind: EntityKind::Drone,
            owner: None,
            pos: [x, 7],
            vel: [8192, 8192],
            aim: 3,
            health: 50,
        }
    }

    #[test]
    fn unchanged_world_costs_only_the_header() {
        let es: Vec<_> = (1..=500).map(|i| entity(i, 10)).collect();
        let (a, b) = (snap(1, &es), snap(2, &es));
        let bytes = encode(Some(&a), &b);
        assert!(bytes.len() <= 2, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes, Some(&a)), Ok(b));
    }

    /// 100 drones flying along x at 80 units/s, 60 Hz, at `tick`.
    fn fleet(tick: u32) -> Vec<EntityState> {
        (1..=100)
            .map(|i| {
                EntityState::quantise(
                    NetId(i),
                    EntityKind::Drone,
                    None,
                    glam::Vec2::new(100.0 + 80.0 * tick as f32 / 60.0, i as f32 * 9.0),
                    glam::Vec2::new(80.0, 0.0),
                    0.0,
                    30.0,
                )
            })
            .collect()
    }

    #[test]
    fn straight_movers_cost_nothing() {
        // Baseline 3 ticks back: every drone is where its velocity carries it.
        let (a, b) = (snap(10, &fleet(10)), snap(13, &fleet(13)));
        let bytes = encode(Some(&a), &b);
        assert!(bytes.len() <= 2, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes, Some(&a)), Ok(b));
    }

    #[test]
    fn movers_off_their_prediction_are_listed() {
        let a = fleet(10);
        let mut b = fleet(13);
        // One stops (velocity and position), one is a sixteenth off, one jumps far.
        b[3].vel = EntityState::REST_VEL;
        b[3].pos = a[3].pos;
        b[40].pos[1] += 1;
        b[70].pos = [8000, 8000];
        let (sa, sb) = (snap(10, &a), snap(13, &b));
        assert_eq!(decode(&encode(Some(&sa), &sb), Some(&sa)), Ok(sb));
        // The neighbour costs its index gap, its mask, a coding and its residual.
        let mut one = fleet(13);
        one[40].pos[1] += 1;
        let bits = encode(Some(&sa), &snap(13, &one)).len() * 8;
        assert!(bits <= 32, "{bits} bits");
    }

    /// The worked example in docs/PROTOCOL.md ("Example"), byte for byte.
    #[test]
    fn documented_example() {
        let at_rest = |id: u32, x: u16| EntityState {
            id: NetId(id),
            kind: EntityKind::Drone,
            owner: None,
            pos: [x * 16, 160],
            vel: EntityState::REST_VEL,
            aim: 0,
            health: 100,
        };
        let world: Vec<_> = (1..=100).map(|i| at_rest(i, i as u16)).collect();
        let base = snap(1000, &world);
        let mut moved = world.clone();
        moved[37].pos = [500 * 16, 250 * 16];
        let next = snap(1001, &moved);
        let bytes = encode(Some(&base), &next);
        assert_eq!(bytes, [0xd0, 0xa3, 0xe5, 0xe9, 0xd3, 0x27]);
        assert_eq!(decode(&bytes, Some(&base)), Ok(next));
    }

    #[test]
    fn settle_keeps_straight_movers_on_their_prediction() {
        let mut prev = fleet(10);
        prev[5].vel = EntityState::REST_VEL;
        let mut next = fleet(11);
        next[5].vel = EntityState::REST_VEL; // at rest in both: stays
        next[5].pos = prev[5].pos;
        next[1].pos[1] += 1; // a sixteenth off: settled
        next[2].pos[1] += 3; // pushed: kept
        next[3].vel[1] += 40; // turned: kept
        next[4].pos[0] += 2; // two off on the moving axis: settled
        let (sp, mut sn) = (snap(10, &prev), snap(11, &next));
        super::settle(&schema(), &sp, &mut sn);
        for (i, (p, (n, c))) in prev.iter().zip(states(&sn).iter().zip(&next)).enumerate() {
            match i {
                2 | 3 => assert_eq!(n, c, "entity {i} keeps its captured state"),
                _ => assert_eq!(*n, advance(p, Tick(10), Tick(11), 60), "entity {i} settles"),
            }
        }
        // Captured and settled tick after tick, the fleet costs nothing but the header against
        // any of its earlier snapshots.
        let mut chain = vec![snap(20, &fleet(20))];
        for t in 21..=40 {
            let mut s = snap(t, &fleet(t));
            super::settle(&schema(), chain.last().unwrap(), &mut s);
            chain.push(s);
        }
        let last = chain.last().unwrap();
        for base in &chain[..chain.len() - 1] {
            let bytes = encode(Some(base), last);
            // Full flag, baseline byte, γ(age − 1), then three empty sections: nothing listed.
            let header_bits = 9 + ugamma_bits(last.tick.0 - base.tick.0 - 1) as usize + 3;
            assert_eq!(bytes.len(), header_bits.div_ceil(8), "from {}", base.tick.0);
            assert_eq!(decode(&bytes, Some(base)).as_ref(), Ok(last));
        }
    }

    #[test]
    fn wrong_missing_or_old_baselines() {
        let a = snap(1, &[entity(1, 1)]);
        let b = snap(2, &[entity(1, 2)]);
        let bytes = encode(Some(&a), &b);
        assert_eq!(decode(&bytes, None), Err(DecodeError::MissingBaseline(1)));
        assert!(matches!(
            decode(&bytes, Some(&b)),
            Err(DecodeError::BaselineMismatch { .. })
        ));
        // A baseline older than MAX_BASELINE_AGE gives a full snapshot.
        let late = snap(1 + MAX_BASELINE_AGE + 1, &[entity(1, 3)]);
        let bytes = encode(Some(&a), &late);
        assert!(matches!(read_header(&bytes), Ok(DeltaHeader::Full { .. })));
        assert_eq!(decode(&bytes, None), Ok(late));
    }

    #[test]
    fn prediction_rounds_and_clamps() {
        let t = |a: u32, b: u32| (Tick(a), Tick(b));
        // 80 units/s = 640 velocity units above the midpoint: 2·640·t/60 is 213.3 at tick 10
        // and 277.3 at 13, so 277 − 213 = 64 sixteenths (4 units).
        let (a, b) = t(10, 13);
        assert_eq!(predict_pos(1000, 8192 + 640, a, b, 60), 1064);
        assert_eq!(predict_pos(1000, 8192 - 640, a, b, 60), 936);
        // One tick moves 22 or 21 sixteenths depending on where it starts (213.3 → 234.7 →
        // 256.0 round to 213, 235, 256), and the steps add up to the three-tick prediction.
        assert_eq!(predict_pos(1000, 8192 + 640, Tick(10), Tick(11), 60), 1022);
        assert_eq!(predict_pos(1000, 8192 + 640, Tick(11), Tick(12), 60), 1021);
        let (a, b) = t(0, 128);
        assert_eq!(predict_pos(10, 0, a, b, 1), 0);
        assert_eq!(predict_pos(16000, 16383, a, b, 1), 16383);
        assert_eq!(predict_pos(5, 9999, a, b, 0), 5);
    }

    /// A schema with every field type, a heading, and a kind of 70 fields (more than a 64-bit
    /// mask holds).
    fn mixed_schema() -> Schema {
        let f = |name: &str, ty, dims, predict| Field {
            name: name.into(),
            ty,
            dims,
            predict,
        };
        let ship = Kind {
            name: "ship".into(),
            fields: vec![
                f(
                    "pos",
                    FieldType::fixed(0.0, 1000.0, 1, 16),
                    2,
                    Predict::Integrate(1),
                ),
                f(
                    "vel",
                    FieldType::fixed(-128.0, 128.0, 1, 8),
                    2,
                    Predict::Hold,
                ),
                f(
                    "angle",
                    FieldType::Angle { bits: 10 },
                    1,
                    Predict::Heading(1),
                ),
                f(
                    "team",
                    FieldType::Enum {
                        variants: vec!["red".into(), "blue".into(), "green".into()],
                    },
                    1,
                    Predict::Hold,
                ),
                f("shield", FieldType::Bool, 1, Predict::Hold),
                f("target", FieldType::Entity, 1, Predict::Hold),
                f(
                    "ammo",
                    FieldType::Int { min: -5, max: 300 },
                    1,
                    Predict::Hold,
                ),
            ],
        };
        let wide = Kind {
            name: "wide".into(),
            fields: (0..70)
                .map(|i| {
                    f(
                        &format!("f{i}"),
                        FieldType::Int { min: 0, max: 1000 },
                        1,
                        Predict::Hold,
                    )
                })
                .collect(),
        };
        Schema::new(vec![ship, wide]).unwrap()
    }

    fn mixed_snapshot(
        schema: &Schema,
        tick: u32,
        rate: u8,
        es: &[(u32, u16, Option<u32>, Vec<u32>)],
    ) -> Snapshot {
        let mut c = Capture::new(schema.stride());
        for (id, kind, owner, values) in es {
            c.push(
                Head {
                    id: NetId(*id),
                    kind: *kind,
                    owner: owner.map(PlayerId),
                },
                values,
            );
        }
        Snapshot::capture(c, Tick(tick)).with_tick_rate(rate)
    }

    fn arb_mixed_entity() -> impl Strategy<Value = (u32, u16, Option<u32>, Vec<u32>)> {
        let ship = (
            0u32..16000,
            0u32..16000,
            0u32..2048,
            0u32..2048,
            0u32..1024,
            0u32..3,
            0u32..2,
            prop_oneof![Just(0u32), any::<u32>()],
            0u32..306,
        )
            .prop_map(|(x, y, vx, vy, a, t, s, e, am)| (0u16, vec![x, y, vx, vy, a, t, s, e, am]));
        let wide = proptest::collection::vec(0u32..1001, 70).prop_map(|v| (1u16, v));
        (
            0u32..300,
            proptest::option::of(0u32..5),
            prop_oneof![ship, wide],
        )
            .prop_map(|(id, owner, (kind, values))| (id, kind, owner, values))
    }

    /// Changes an entity's values a little or a lot (or not at all), per field.
    fn nudge(values: &mut [u32], kind: u16, rnd: &mut impl FnMut(u32) -> u32) {
        let max: Vec<u32> = if kind == 0 {
            vec![15999, 15999, 2047, 2047, 1023, 2, 1, u32::MAX, 305]
        } else {
            vec![1000; 70]
        };
        for (v, m) in values.iter_mut().zip(max) {
            match rnd(6) {
                0 => *v = rnd(m.min(1 << 30)),
                1 => *v = (*v as i64 + rnd(9) as i64 - 4).clamp(0, m as i64) as u32,
                _ => {}
            }
        }
    }

    #[test]
    fn a_heading_follows_the_new_velocity() {
        let schema = mixed_schema();
        // Flying north-east at (40, 40) u/s, then turning to (0, 40): a 90° heading.
        let ship = |x, vx: u32, vy: u32, angle| {
            (
                1,
                0u16,
                None,
                vec![x, 800, 1024 + vx * 8, 1024 + vy * 8, angle, 0, 0, 0, 5],
            )
        };
        let a = mixed_snapshot(&schema, 10, 60, &[ship(800, 40, 40, 128)]);
        let b = mixed_snapshot(&schema, 11, 60, &[ship(811, 0, 40, 256)]);
        let bytes = super::encode(&schema, Some(&a), &b);
        assert_eq!(super::decode(&schema, &bytes, Some(&a)), Ok(b));
    }

    #[test]
    fn a_shared_mask_lists_the_few_records_that_send_a_field() {
        let schema = mixed_schema();
        // Twenty ships all a quantum off their prediction; two raise their shield (a bool,
        // which only a listing can leave out for the others) and one turns.
        let ship = |i: u32, x: u32, shield: u32, angle: u32| {
            (
                i,
                0u16,
                None,
                vec![x, 800, 1024, 1024, angle, 0, shield, 0, 5],
            )
        };
        let a: Vec<_> = (1..=20).map(|i| ship(i, 100 * i, 0, 0)).collect();
        let b: Vec<_> = (1..=20)
            .map(|i| {
                ship(
                    i,
                    100 * i + 1,
                    u32::from(i == 4 || i == 17),
                    300 * u32::from(i == 9),
                )
            })
            .collect();
        let (a, b) = (
            mixed_snapshot(&schema, 10, 60, &a),
            mixed_snapshot(&schema, 11, 60, &b),
        );
        let bytes = super::encode(&schema, Some(&a), &b);
        assert_eq!(super::decode(&schema, &bytes, Some(&a)), Ok(b));
        // Header, listing, one shared mask with two short lists (about 40 bits, where masks per
        // record would take about 70), then 20 positions a quantum off (about 100 bits).
        assert!(bytes.len() <= 20, "{} bytes", bytes.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// The unchecked path and the wide one agree wherever the fast one is taken, at the
        /// edge of its bound and at the far end of the tick range.
        #[test]
        fn fast_paths_are_the_wide_ones(
            (from, span) in (0u32..=u32::MAX, 1u32..64),
            (kn, kd, rate) in (-(1i64 << 20)..1 << 20, prop_oneof![1i64..1 << 10, 1i64..1 << 40], 1u8..=240),
            (pos, v, edge) in (0u32..1 << 20, prop_oneof![-(1i64 << 16)..1 << 16, -(1i64 << 40)..1 << 40], any::<bool>()),
        ) {
            let clock = Clock { from: Tick(from), to: Tick(from.saturating_add(span)), tick_rate: rate };
            let path = Path::new(clock, kn, kd);
            let v = if edge && path.fast > 0 { path.fast as i64 * v.signum() } else { v };
            prop_assert_eq!(path.carry(pos, v, u32::MAX), path.carry_wide(pos, v, u32::MAX));
        }
    }

    proptest! {
        #[test]
        fn any_schema_round_trips(
            base in proptest::collection::vec(arb_mixed_entity(), 0..40),
            spawn in proptest::collection::vec(arb_mixed_entity(), 0..8),
            (tick, age, rate, seed) in (0u32..1 << 30, 1u32..=MAX_BASELINE_AGE, 0u8..=120, any::<u64>()),
        ) {
            let schema = mixed_schema();
            let a = mixed_snapshot(&schema, tick, rate, &base);
            let mut state = seed;
            let mut rnd = |n: u32| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 33) % n.max(1) as u64) as u32
            };
            let mut next: Vec<_> = base.iter().filter(|_| rnd(8) != 0).cloned().collect();
            for e in &mut next {
                nudge(&mut e.3, e.1, &mut rnd);
            }
            next.extend(spawn);
            let b = mixed_snapshot(&schema, tick + age, rate, &next);
            let bytes = super::encode(&schema, Some(&a), &b);
            prop_assert_eq!(super::decode(&schema, &bytes, Some(&a)), Ok(b.clone()));
            let full = super::encode(&schema, None, &b);
            prop_assert_eq!(super::decode(&schema, &full, None), Ok(b));
        }

        /// A room's history: each capture settled against the one before. Encoding against
        /// any of them with what settling recorded gives the same bytes as predicting every
        /// entity, and decodes to the capture.
        #[test]
        fn settled_chains_encode_as_if_every_entity_was_predicted(
            start in proptest::collection::vec(arb_mixed_entity(), 0..40),
            (tick, rate, seed) in (0u32..1 << 30, 1u8..=120, any::<u64>()),
        ) {
            let schema = mixed_schema();
            let mut state = seed;
            let mut rnd = |n: u32| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 33) % n.max(1) as u64) as u32
            };
            let mut chain = vec![mixed_snapshot(&schema, tick, rate, &start)];
            let mut t = tick;
            for _ in 0..12 {
                let prev = chain.last().unwrap();
                let step = 1 + rnd(3);
                let clock = Clock { from: Tick(t), to: Tick(t + step), tick_rate: rate };
                t += step;
                let mut next = Vec::new();
                for e in prev.iter() {
                    let mut values = e.values[..schema.layout(e.kind).slots].to_vec();
                    match rnd(10) {
                        0 => continue,
                        1 | 2 => nudge(&mut values, e.kind, &mut rnd),
                        _ => {
                            // Along its prediction, as a simulation rounds it (settled back).
                            let mut out = vec![0; schema.stride()];
                            predict(&schema, e.kind, e.values, e.values, clock, &mut out);
                            let n = values.len();
                            values.copy_from_slice(&out[..n]);
                            if e.kind == 0 && rnd(2) == 0 {
                                values[0] = (values[0] + rnd(3)).saturating_sub(1).min(15999);
                            }
                        }
                    }
                    next.push((e.id.0, e.kind, e.owner.map(|p| p.0), values));
                }
                if rnd(3) == 0 {
                    next.push((300 + rnd(50), 0, None, vec![rnd(16000), 5, 1024, 1030, 0, 0, 0, 0, 0]));
                    next.sort_by_key(|e| e.0);
                    next.dedup_by_key(|e| e.0);
                }
                let mut captured = mixed_snapshot(&schema, t, rate, &next);
                settle(&schema, prev, &mut captured);
                chain.push(captured);
            }
            let last = chain.last().unwrap();
            let mut unknown = last.clone();
            for i in 0..unknown.len() {
                unknown.values_mut(i);
            }
            for base in &chain[..chain.len() - 1] {
                let bytes = super::encode(&schema, Some(base), last);
                prop_assert_eq!(&bytes, &super::encode(&schema, Some(base), &unknown));
                prop_assert_eq!(super::decode(&schema, &bytes, Some(base)), Ok(last.clone()));
            }
        }

        #[test]
        fn any_schema_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600), base in proptest::collection::vec(arb_mixed_entity(), 0..40)) {
            let schema = mixed_schema();
            let a = mixed_snapshot(&schema, 1000, 60, &base);
            let _ = super::decode(&schema, &bytes, Some(&a));
            let _ = super::decode(&schema, &bytes, None);
        }
    }

    fn arb_entity() -> impl Strategy<Value = EntityState> {
        (
            0u32..200,
            0u32..3,
            proptest::option::of(prop_oneof![0u32..100, any::<u32>()]),
            prop_oneof![
                any::<[u16; 2]>(),
                (0u16..1000, 0u16..1000).prop_map(|(x, y)| [x * 16, y * 16])
            ],
            prop_oneof![any::<[u16; 2]>(), Just([8192, 8192])],
            0u16..1024,
            any::<u8>(),
        )
            .prop_map(|(id, kind, owner, pos, vel, aim, health)| EntityState {
                id: NetId(id),
                kind: EntityKind::from_bits(kind).unwrap(),
                owner: owner.map(PlayerId),
                pos: pos.map(|v| v & 0x3fff),
                vel: vel.map(|v| v & 0x3fff),
                aim,
                health,
            })
    }

    fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
        (
            any::<u32>(),
            0u8..=240,
            proptest::collection::vec(arb_entity(), 0..120),
        )
            .prop_map(|(tick, rate, es)| arena::capture(Tick(tick), es).with_tick_rate(rate))
    }

    /// A snapshot derived from `base` by small, game-like changes `age` ticks later.
    fn arb_pair() -> impl Strategy<Value = (Snapshot, Snapshot)> {
        (arb_snapshot(), 1u32..=MAX_BASELINE_AGE, any::<u64>()).prop_map(|(base, age, seed)| {
            let to = Tick(base.tick.0.wrapping_add(age));
            let rng_state = std::cell::Cell::new(seed);
            let rnd = |n: u32| {
                let s = rng_state
                    .get()
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                rng_state.set(s);
                ((s >> 33) % n as u64) as u32
            };
            let mut entities: Vec<EntityState> = states(&base)
                .into_iter()
                .filter(|_| rnd(10) != 0)
                .map(|mut e| {
                    match rnd(7) {
                        0 => e.pos = advance(&e, base.tick, to, base.tick_rate).pos,
                        6 => {
                            e.pos = advance(&e, base.tick, to, base.tick_rate)
                                .pos
                                .map(|p| (p as i32 + rnd(3) as i32 - 1).clamp(0, 16383) as u16)
                        }
                        1 => {
                            e.pos = e
                                .pos
                                .map(|p| (p as i32 + rnd(9) as i32 - 4).clamp(0, 16383) as u16)
                        }
                        2 => {
                            e.vel = e
                                .vel
                                .map(|v| (v as i32 + rnd(41) as i32 - 20).clamp(0, 16383) as u16)
                        }
                        3 => e.aim = ((e.aim as u32 + rnd(40)) % 1024) as u16,
                        4 => e.health = rnd(256) as u8,
                        _ => {}
                    }
                    e
                })
                .collect();
            for k in 0..rnd(5) {
                entities.push(entity(200 + k, rnd(16000) as u16));
            }
            let next = arena::capture(to, entities).with_tick_rate(base.tick_rate);
            (base, next)
        })
    }

    proptest! {
        #[test]
        fn delta_round_trips(base in arb_snapshot(), next in arb_snapshot()) {
            let next = next.with_tick_rate(base.tick_rate);
            let bytes = encode(Some(&base), &next);
            let used = usable_baseline(&base, &next).then_some(&base);
            prop_assert_eq!(decode(&bytes, used), Ok(next.clone()));
            let full = encode(None, &next);
            prop_assert_eq!(decode(&full, None), Ok(next));
        }

        #[test]
        fn predictions_compose(
            pos in 4000u16..12000,
            speed in -1.0f64..1.0,
            (start, hop1, hop2) in (any::<u32>(), 0u32..200, 0u32..200),
            rate in 1u8..=240,
        ) {
            let (a, b) = (Tick(start / 2), Tick(start / 2 + hop1));
            let c = Tick(b.0 + hop2);
            // A velocity that cannot carry the position out of range (where clamping would
            // break the sum) over the whole span: |2·v·span / rate| ≤ 4000.
            let span = (hop1 + hop2).max(1) as f64;
            let vmax = (4000.0 * rate as f64 / (2.0 * span)).min(8191.0);
            let vel = (8192.0 + speed * vmax).round() as u16;
            let via = predict_pos(predict_pos(pos, vel, a, b, rate), vel, b, c, rate);
            prop_assert_eq!(via, predict_pos(pos, vel, a, c, rate));
        }

        #[test]
        fn small_changes_round_trip((base, next) in arb_pair()) {
            let bytes = encode(Some(&base), &next);
            let used = usable_baseline(&base, &next).then_some(&base);
            prop_assert_eq!(decode(&bytes, used), Ok(next));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), base in arb_snapshot()) {
            let _ = decode(&bytes, Some(&base));
            let _ = decode(&bytes, None);
        }

        #[test]
        fn truncated_snapshots_are_errors((base, next) in arb_pair(), cut in 0usize..1000) {
            let bytes = encode(Some(&base), &next);
            let used = usable_baseline(&base, &next).then_some(&base);
            let cut = cut % bytes.len();
            // Dropping at least one whole byte leaves a snapshot that cannot decode to `next`.
            prop_assert!(decode(&bytes[..cut], used) != Ok(next));
        }
    }
}
