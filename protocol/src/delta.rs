//! The snapshot delta format (version 3): a snapshot encoded against a baseline snapshot the
//! client already holds, or against nothing (a full snapshot). The exact bit layout is in
//! docs/PROTOCOL.md; this is the reference implementation.
//!
//! Where the bits go:
//! - both ends first carry every baseline entity forward along its velocity over the ticks
//!   between the two snapshots ([`advance`]); an entity at rest, or moving in a straight line,
//!   then needs nothing at all;
//! - only entities that differ from that prediction are listed, by the gaps between their
//!   indices in the baseline (a Rice code whose parameter both ends derive from the baseline's
//!   size and the count), or by a bitmap over the baseline when that is cheaper (many changes);
//! - a listed entity says which fields changed; position-only changes (the common case) take
//!   one bit;
//! - a position is sent against the prediction: one of its 8 neighbours in 3 bits (rounding to
//!   sixteenths makes straight movers miss by one now and then), a residual in 3 or 7 bits per
//!   axis, or absolute (10 bits per axis when it sits on whole units, 14 otherwise);
//! - velocity and aim changes are small deltas when small, absolute otherwise;
//! - the header names the baseline by the low byte of its tick and the gap to the new tick.

use crate::bits::{BitReader, BitWriter, BitsExhausted, rice_bits, ugamma_bits};
use crate::ids::{NetId, PlayerId, Tick};
use crate::schema::{
    AIM_BITS, EntityKind, EntityState, HEALTH_BITS, KIND_BITS, POS_BITS, VEL_BITS,
};
use crate::snapshot::Snapshot;

/// Most entities a decoded snapshot may hold; larger claims are refused before allocating.
pub const MAX_SNAPSHOT_ENTITIES: usize = 65_536;
/// The oldest baseline a delta may use, in ticks before the new snapshot. It keeps the 8-bit
/// tick in the header unambiguous: the client always holds a snapshot newer than the baseline.
pub const MAX_BASELINE_AGE: u32 = 128;

const FIELD_POS: u32 = 1;
const FIELD_VEL: u32 = 2;
const FIELD_AIM: u32 = 4;
const FIELD_HEALTH: u32 = 8;
const FIELD_BITS: u32 = 4;

const POS_MAX: i32 = (1 << POS_BITS) - 1;
/// Positions on whole units are multiples of this in quantised form (1/16 unit).
const WHOLE_UNIT: i32 = 16;
const WHOLE_BITS: u32 = 10;
const VEL_HALF: i32 = 1 << (VEL_BITS - 1);
const AIM_STEPS: i32 = 1 << AIM_BITS;
/// A small velocity change, per axis: [-32, 32) eighths of a unit per second.
const VEL_DELTA_BITS: u32 = 6;
/// A small aim change: [-32, 32) steps (±11°) covers a player sweeping the mouse at ~180°/s over
/// the few ticks a baseline usually lags.
const AIM_DELTA_BITS: u32 = 6;

/// Whether `d` fits a two's-complement field of `bits` bits.
fn fits_signed(d: i32, bits: u32) -> bool {
    let half = 1 << (bits - 1);
    (-half..half).contains(&d)
}

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
    base.tick < next.tick && next.tick.0 - base.tick.0 <= MAX_BASELINE_AGE
}

/// Encodes `next` against `base` (None, or a baseline too old or not older: a full snapshot).
pub fn encode(base: Option<&Snapshot>, next: &Snapshot) -> Vec<u8> {
    let base = base.filter(|b| usable_baseline(b, next));
    let empty: &[EntityState] = &[];
    let base_entities = base.map_or(empty, |b| &b.entities[..]);
    let age = base.map_or(0, |b| next.tick.0 - b.tick.0);
    let base_tick = base.map_or(next.tick, |b| b.tick);
    let tick_rate = base.map_or(next.tick_rate, |b| b.tick_rate);

    // One merge pass over both sorted lists; a kept entity is compared with where the baseline
    // predicts it, not with the baseline itself.
    let mut removed: Vec<NetId> = Vec::new();
    let mut changed: Vec<(usize, EntityState, &EntityState)> = Vec::new();
    let mut spawned: Vec<&EntityState> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < base_entities.len() || j < next.entities.len() {
        match (base_entities.get(i), next.entities.get(j)) {
            (Some(b), Some(n)) if b.id == n.id => {
                if b.kind != n.kind || b.owner != n.owner {
                    spawned.push(n);
                } else {
                    let predicted = advance(b, base_tick, next.tick, tick_rate);
                    if predicted != *n {
                        changed.push((i, predicted, n));
                    }
                }
                i += 1;
                j += 1;
            }
            (Some(b), Some(n)) if b.id < n.id => {
                removed.push(b.id);
                i += 1;
            }
            (Some(b), None) => {
                removed.push(b.id);
                i += 1;
            }
            (_, Some(n)) => {
                spawned.push(n);
                j += 1;
            }
            (None, None) => unreachable!("loop condition"),
        }
    }

    let mut w = BitWriter::with_capacity(8 + changed.len() * 2 + spawned.len() * 10);
    match base {
        None => {
            w.write_bool(true);
            w.write(next.tick.0, 32);
            w.write(next.tick_rate as u32, 8);
        }
        Some(b) => {
            w.write_bool(false);
            w.write(b.tick.0 & 0xff, 8);
            w.write_ugamma(age - 1);
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

    // Changed entities: by index gaps or by a bitmap over the baseline, whichever is smaller.
    let shift = rice_shift(base_entities.len(), changed.len());
    let gap_bits: usize = ugamma_bits(changed.len() as u32) as usize
        + index_gaps(&changed)
            .map(|g| rice_bits(g, shift) as usize)
            .sum::<usize>();
    let bitmap = base_entities.len() < gap_bits;
    w.write_bool(bitmap);
    if bitmap {
        let mut k = 0;
        for idx in 0..base_entities.len() {
            let hit = changed.get(k).is_some_and(|c| c.0 == idx);
            w.write_bool(hit);
            k += hit as usize;
        }
    } else {
        w.write_ugamma(changed.len() as u32);
        for gap in index_gaps(&changed) {
            w.write_rice(gap, shift);
        }
    }
    for (_, predicted, n) in &changed {
        write_changes(&mut w, predicted, n);
    }

    // Spawned (new, or replacing an entity whose kind or owner changed): full records.
    w.write_ugamma(spawned.len() as u32);
    let mut ids = IdGaps::default();
    for n in &spawned {
        w.write_ugamma(ids.gap(n.id));
        write_full(&mut w, n);
    }
    w.finish()
}

fn index_gaps<'a>(
    changed: &'a [(usize, EntityState, &EntityState)],
) -> impl Iterator<Item = u32> + 'a {
    let mut next = 0usize;
    changed.iter().map(move |(i, _, _)| {
        let gap = i - next;
        next = i + 1;
        gap as u32
    })
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

/// Where a velocity carries a position from tick `from` to tick `to` (all in quantised units:
/// position 1/16, velocity 1/8 per second, so one velocity unit moves 2/`tick_rate` position
/// units per tick). The path is evaluated at both absolute ticks, each rounded half away from
/// zero, and the difference taken: `round(2·v·to / rate) − round(2·v·from / rate)`. That makes
/// predictions compose — a→b then b→c lands exactly where a→c does — which is what lets the
/// server keep a straight mover exactly on its prediction ([`settle`]). Clamps to the position
/// range; a tick rate of 0 predicts no movement.
pub fn predict(pos: u16, vel: u16, from: Tick, to: Tick, tick_rate: u8) -> u16 {
    if tick_rate == 0 {
        return pos;
    }
    let v = vel as i64 - VEL_HALF as i64;
    let path = |t: Tick| {
        let num = v * 2 * t.0 as i64;
        let den = tick_rate as i64;
        (num.abs() * 2 + den) / (2 * den) * num.signum()
    };
    (pos as i64 + path(to) - path(from)).clamp(0, POS_MAX as i64) as u16
}

/// How far (in sixteenths, per axis) [`settle`] lets a replicated position sit from the
/// simulation's rounded one.
pub const SETTLE_TOLERANCE: i32 = 2;

/// Keeps entities that fly straight exactly on their prediction. For each entity of `next`
/// that `prev` holds with the same kind, owner and velocity, if the position predicted from
/// `prev` is within [`SETTLE_TOLERANCE`] of the captured one on both axes, that prediction
/// becomes its position. Rounding to sixteenths would otherwise put most straight movers a
/// sixteenth off their prediction in most snapshots, and each such miss costs a record. The
/// replicated position stays within 2.5 sixteenths (0.16 units) of the simulation's; the
/// difference does not grow, because the prediction follows the quantised velocity exactly and
/// the entity is re-captured as soon as it drifts out. Call it on each snapshot as captured,
/// with the one captured before it.
pub fn settle(prev: &Snapshot, next: &mut Snapshot) {
    if prev.tick >= next.tick || next.tick_rate != prev.tick_rate {
        return;
    }
    let mut old = prev.entities.iter().peekable();
    for e in &mut next.entities {
        while old.next_if(|o| o.id < e.id).is_some() {}
        let Some(o) = old.next_if(|o| o.id == e.id) else {
            continue;
        };
        if o.kind != e.kind || o.owner != e.owner || o.vel != e.vel {
            continue;
        }
        let p = advance(o, prev.tick, next.tick, prev.tick_rate).pos;
        if (0..2).all(|a| (p[a] as i32 - e.pos[a] as i32).abs() <= SETTLE_TOLERANCE) {
            e.pos = p;
        }
    }
}

/// The baseline entity carried forward from tick `from` to `to`: its position moved by
/// [`predict`], every other field as it was. Entities the new snapshot holds exactly like this
/// are not sent.
pub fn advance(b: &EntityState, from: Tick, to: Tick, tick_rate: u8) -> EntityState {
    EntityState {
        pos: [0, 1].map(|a| predict(b.pos[a], b.vel[a], from, to, tick_rate)),
        ..*b
    }
}

/// The Rice parameter for `count` changed indices among `len` baseline entities: gaps between
/// them average about `len / count`, and a Rice code fits a geometric spread of gaps best with
/// 2^shift near 0.69 of that mean (here 11/16). Both ends compute it; it is never sent.
pub fn rice_shift(len: usize, count: usize) -> u32 {
    let scaled = (len as u64 * 11) / (count.max(1) as u64 * 16);
    scaled.checked_ilog2().unwrap_or(0)
}

/// A changed entity against where the baseline predicts it (`p`): which fields differ, then each.
fn write_changes(w: &mut BitWriter, p: &EntityState, n: &EntityState) {
    let pos = p.pos != n.pos;
    let only_pos = pos && p.vel == n.vel && p.aim == n.aim && p.health == n.health;
    w.write_bool(only_pos);
    let mask = if only_pos {
        FIELD_POS
    } else {
        let flag = |changed: bool, field: u32| if changed { field } else { 0 };
        let mask = flag(pos, FIELD_POS)
            | flag(p.vel != n.vel, FIELD_VEL)
            | flag(p.aim != n.aim, FIELD_AIM)
            | flag(p.health != n.health, FIELD_HEALTH);
        w.write(mask, FIELD_BITS);
        mask
    };
    if mask & FIELD_POS != 0 {
        write_position(w, p.pos, n.pos);
    }
    if mask & FIELD_VEL != 0 {
        let d = [0, 1].map(|a| n.vel[a] as i32 - p.vel[a] as i32);
        if d.iter().all(|&d| fits_signed(d, VEL_DELTA_BITS)) {
            w.write_bool(false);
            w.write_signed(d[0], VEL_DELTA_BITS);
            w.write_signed(d[1], VEL_DELTA_BITS);
        } else {
            w.write_bool(true);
            write_pair(w, n.vel, VEL_BITS);
        }
    }
    if mask & FIELD_AIM != 0 {
        // The shortest way round the circle.
        let d = (n.aim as i32 - p.aim as i32 + AIM_STEPS / 2).rem_euclid(AIM_STEPS) - AIM_STEPS / 2;
        if fits_signed(d, AIM_DELTA_BITS) {
            w.write_bool(false);
            w.write_signed(d, AIM_DELTA_BITS);
        } else {
            w.write_bool(true);
            w.write(n.aim as u32, AIM_BITS);
        }
    }
    if mask & FIELD_HEALTH != 0 {
        w.write(n.health as u32, HEALTH_BITS);
    }
}

/// The eight positions next to a prediction, in the order class 0 numbers them: most entities
/// that miss their prediction at all miss it by one sixteenth, from rounding.
const NEIGHBOURS: [[i32; 2]; 8] = [
    [-1, -1],
    [0, -1],
    [1, -1],
    [-1, 0],
    [1, 0],
    [-1, 1],
    [0, 1],
    [1, 1],
];

/// A position against its prediction (never equal to it: then the field is not sent): class 0
/// one of the 8 neighbouring positions (3 bits), 1 within ±3 per axis (3 bits each), 2 within
/// ±63 (7 bits each), 3 absolute.
fn write_position(w: &mut BitWriter, predicted: [u16; 2], pos: [u16; 2]) {
    let r = [0, 1].map(|a| pos[a] as i32 - predicted[a] as i32);
    let within = |m: i32| r.iter().all(|d| d.abs() <= m);
    if let Some(k) = NEIGHBOURS.iter().position(|n| *n == r) {
        w.write(0, 2);
        w.write(k as u32, 3);
    } else if within(3) {
        w.write(1, 2);
        w.write_signed(r[0], 3);
        w.write_signed(r[1], 3);
    } else if within(63) {
        w.write(2, 2);
        w.write_signed(r[0], 7);
        w.write_signed(r[1], 7);
    } else {
        w.write(3, 2);
        write_absolute_position(w, pos);
    }
}

/// 1 bit "on whole units", then 10 bits per axis (whole units) or 14 (sixteenths).
fn write_absolute_position(w: &mut BitWriter, pos: [u16; 2]) {
    let whole = pos
        .iter()
        .all(|&p| p as i32 % WHOLE_UNIT == 0 && (p as i32 / WHOLE_UNIT) < (1 << WHOLE_BITS));
    w.write_bool(whole);
    if whole {
        w.write(pos[0] as u32 / WHOLE_UNIT as u32, WHOLE_BITS);
        w.write(pos[1] as u32 / WHOLE_UNIT as u32, WHOLE_BITS);
    } else {
        write_pair(w, pos, POS_BITS);
    }
}

fn read_absolute_position(r: &mut BitReader<'_>) -> Result<[u16; 2], DecodeError> {
    if r.read_bool()? {
        let x = r.read(WHOLE_BITS)? as u16 * WHOLE_UNIT as u16;
        let y = r.read(WHOLE_BITS)? as u16 * WHOLE_UNIT as u16;
        if x as i32 > POS_MAX || y as i32 > POS_MAX {
            return Err(DecodeError::Malformed("position out of range"));
        }
        Ok([x, y])
    } else {
        Ok(read_pair(r, POS_BITS)?)
    }
}

fn write_full(w: &mut BitWriter, e: &EntityState) {
    w.write(e.kind as u32, KIND_BITS);
    match e.owner {
        Some(p) => {
            w.write_bool(true);
            w.write_ugamma(p.0);
        }
        None => w.write_bool(false),
    }
    write_absolute_position(w, e.pos);
    let resting = e.vel == EntityState::REST_VEL;
    w.write_bool(resting);
    if !resting {
        write_pair(w, e.vel, VEL_BITS);
    }
    w.write(e.aim as u32, AIM_BITS);
    w.write(e.health as u32, HEALTH_BITS);
}

fn write_pair(w: &mut BitWriter, v: [u16; 2], bits: u32) {
    w.write(v[0] as u32, bits);
    w.write(v[1] as u32, bits);
}

fn read_pair(r: &mut BitReader<'_>, bits: u32) -> Result<[u16; 2], BitsExhausted> {
    Ok([r.read(bits)? as u16, r.read(bits)? as u16])
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

/// Decodes a delta. `base` must be the snapshot the header names when it is a delta; it is
/// ignored for a full snapshot.
pub fn decode(bytes: &[u8], base: Option<&Snapshot>) -> Result<Snapshot, DecodeError> {
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
    let base_entities: &[EntityState] = base.map_or(&[], |b| &b.entities);

    // Removals.
    let mut removed = Vec::new();
    if r.read_bool()? {
        let count = r.read_ugamma()? as usize + 1;
        if count > base_entities.len() {
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
        if base_entities.len() > r.remaining() {
            return Err(DecodeError::Truncated);
        }
        for idx in 0..base_entities.len() {
            if r.read_bool()? {
                changed_at.push(idx);
            }
        }
    } else {
        let count = r.read_ugamma()? as usize;
        if count > base_entities.len() {
            return Err(DecodeError::TooManyEntities(count));
        }
        changed_at.reserve(count);
        let shift = rice_shift(base_entities.len(), count);
        let mut next = 0usize;
        for _ in 0..count {
            // The largest gap that still lands inside the baseline.
            let room = base_entities
                .len()
                .checked_sub(next + 1)
                .ok_or(DecodeError::Malformed("changed index past the baseline"))?
                as u32;
            let gap = r
                .read_rice(shift, room)?
                .ok_or(DecodeError::Malformed("changed index past the baseline"))?;
            let idx = next + gap as usize;
            changed_at.push(idx);
            next = idx + 1;
        }
    }
    // Every baseline entity carried forward, then the listed ones corrected.
    let base_tick = base.map_or(tick, |b| b.tick);
    let mut entities: Vec<EntityState> = base_entities
        .iter()
        .map(|b| advance(b, base_tick, tick, tick_rate))
        .collect();
    for &idx in &changed_at {
        entities[idx] = read_changes(&mut r, &entities[idx])?;
    }

    // Drop the removed (each must be in the baseline and not also changed).
    if !removed.is_empty() {
        let mut gone = vec![false; entities.len()];
        for id in &removed {
            let idx = base_entities
                .binary_search_by_key(id, |e| e.id)
                .map_err(|_| DecodeError::UnknownEntity(*id))?;
            if changed_at.binary_search(&idx).is_ok() {
                return Err(DecodeError::RemovedAndUpdated(*id));
            }
            gone[idx] = true;
        }
        let mut k = 0;
        entities.retain(|_| {
            k += 1;
            !gone[k - 1]
        });
    }

    // Spawned: full records merged in by id.
    let count = r.read_ugamma()? as usize;
    if count > MAX_SNAPSHOT_ENTITIES || count > r.remaining() {
        return Err(DecodeError::TooManyEntities(count));
    }
    let mut spawned = Vec::with_capacity(count);
    let mut ids = IdGaps::default();
    for _ in 0..count {
        let id = ids.id(r.read_ugamma()?)?;
        spawned.push(read_full(&mut r, id)?);
    }
    let entities = merge_spawned(entities, spawned);
    if entities.len() > MAX_SNAPSHOT_ENTITIES {
        return Err(DecodeError::TooManyEntities(entities.len()));
    }
    Ok(Snapshot {
        tick,
        tick_rate,
        entities,
    })
}

/// Reads a change record against the predicted entity `p`.
fn read_changes(r: &mut BitReader<'_>, p: &EntityState) -> Result<EntityState, DecodeError> {
    let mask = if r.read_bool()? {
        FIELD_POS
    } else {
        r.read(FIELD_BITS)?
    };
    let mut e = *p;
    if mask & FIELD_POS != 0 {
        let residual = match r.read(2)? {
            0 => Some(NEIGHBOURS[r.read(3)? as usize]),
            1 => Some([r.read_signed(3)?, r.read_signed(3)?]),
            2 => Some([r.read_signed(7)?, r.read_signed(7)?]),
            _ => None,
        };
        e.pos = match residual {
            Some([dx, dy]) => [offset(p.pos[0], dx)?, offset(p.pos[1], dy)?],
            None => read_absolute_position(r)?,
        };
    }
    if mask & FIELD_VEL != 0 {
        e.vel = if r.read_bool()? {
            read_pair(r, VEL_BITS)?
        } else {
            let dx = r.read_signed(VEL_DELTA_BITS)?;
            let dy = r.read_signed(VEL_DELTA_BITS)?;
            [vel_offset(p.vel[0], dx)?, vel_offset(p.vel[1], dy)?]
        };
    }
    if mask & FIELD_AIM != 0 {
        e.aim = if r.read_bool()? {
            r.read(AIM_BITS)? as u16
        } else {
            (p.aim as i32 + r.read_signed(AIM_DELTA_BITS)?).rem_euclid(AIM_STEPS) as u16
        };
    }
    if mask & FIELD_HEALTH != 0 {
        e.health = r.read(HEALTH_BITS)? as u8;
    }
    Ok(e)
}

fn offset(p: u16, d: i32) -> Result<u16, DecodeError> {
    let v = p as i32 + d;
    if !(0..=POS_MAX).contains(&v) {
        return Err(DecodeError::Malformed("position out of range"));
    }
    Ok(v as u16)
}

fn vel_offset(v: u16, d: i32) -> Result<u16, DecodeError> {
    let n = v as i32 + d;
    if !(0..(2 * VEL_HALF)).contains(&n) {
        return Err(DecodeError::Malformed("velocity out of range"));
    }
    Ok(n as u16)
}

fn read_full(r: &mut BitReader<'_>, id: NetId) -> Result<EntityState, DecodeError> {
    let kind_bits = r.read(KIND_BITS)?;
    let kind = EntityKind::from_bits(kind_bits).ok_or(DecodeError::BadKind(kind_bits))?;
    let owner = if r.read_bool()? {
        Some(PlayerId(r.read_ugamma()?))
    } else {
        None
    };
    let pos = read_absolute_position(r)?;
    let vel = if r.read_bool()? {
        EntityState::REST_VEL
    } else {
        read_pair(r, VEL_BITS)?
    };
    Ok(EntityState {
        id,
        kind,
        owner,
        pos,
        vel,
        aim: r.read(AIM_BITS)? as u16,
        health: r.read(HEALTH_BITS)? as u8,
    })
}

/// Both lists sorted by id; a spawned entity replaces one with the same id.
fn merge_spawned(kept: Vec<EntityState>, spawned: Vec<EntityState>) -> Vec<EntityState> {
    if spawned.is_empty() {
        return kept;
    }
    let mut out = Vec::with_capacity(kept.len() + spawned.len());
    let mut kept = kept.into_iter().peekable();
    for s in spawned {
        while let Some(k) = kept.next_if(|k| k.id < s.id) {
            out.push(k);
        }
        kept.next_if(|k| k.id == s.id);
        out.push(s);
    }
    out.extend(kept);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        let a = Snapshot::capture(Tick(1), (1..=500).map(|i| entity(i, 10)).collect());
        let b = Snapshot {
            tick: Tick(2),
            ..a.clone()
        };
        let bytes = encode(Some(&a), &b);
        assert!(bytes.len() <= 2, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes, Some(&a)), Ok(b));
    }

    /// 100 drones flying along x at 80 units/s, 60 Hz, captured at `tick`.
    fn fleet(tick: u32) -> Snapshot {
        let es = (1..=100)
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
            .collect();
        Snapshot::capture(Tick(tick), es).with_tick_rate(60)
    }

    #[test]
    fn straight_movers_cost_nothing() {
        // Baseline 3 ticks back: every drone is where its velocity carries it.
        let (a, b) = (fleet(10), fleet(13));
        let bytes = encode(Some(&a), &b);
        assert!(bytes.len() <= 2, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes, Some(&a)), Ok(b));
    }

    #[test]
    fn movers_off_their_prediction_are_listed() {
        let (a, mut b) = (fleet(10), fleet(13));
        // One stops (velocity and position), one is a sixteenth off, one jumps far.
        b.entities[3].vel = EntityState::REST_VEL;
        b.entities[3].pos = a.entities[3].pos;
        b.entities[40].pos[1] += 1;
        b.entities[70].pos = [8000, 8000];
        let bytes = encode(Some(&a), &b);
        assert_eq!(decode(&bytes, Some(&a)), Ok(b.clone()));
        // The neighbour costs its index gap, 1 bit pos-only and 5 bits of position.
        let mut one = fleet(13);
        one.entities[40].pos[1] += 1;
        let bits = encode(Some(&a), &one).len() * 8;
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
        let base = Snapshot::capture(
            Tick(1000),
            (1..=100).map(|i| at_rest(i, i as u16)).collect(),
        )
        .with_tick_rate(60);
        let mut next = base.clone();
        next.tick = Tick(1001);
        next.entities[37].pos = [500 * 16, 250 * 16];
        let bytes = encode(Some(&base), &next);
        assert_eq!(bytes, [0xd0, 0xa3, 0xe5, 0xd3, 0xa7, 0x4f]);
        assert_eq!(decode(&bytes, Some(&base)), Ok(next));
    }

    #[test]
    fn settle_keeps_straight_movers_on_their_prediction() {
        let mut prev = fleet(10);
        prev.entities[5].vel = EntityState::REST_VEL;
        let mut next = fleet(11);
        next.entities[5].vel = EntityState::REST_VEL; // at rest in both: stays
        next.entities[5].pos = prev.entities[5].pos;
        next.entities[1].pos[1] += 1; // a sixteenth off: settled
        next.entities[2].pos[1] += 3; // pushed: kept
        next.entities[3].vel[1] += 40; // turned: kept
        next.entities[4].pos[0] += 2; // two off on the moving axis: settled
        let captured = next.clone();
        settle(&prev, &mut next);
        for (i, (p, (n, c))) in prev
            .entities
            .iter()
            .zip(next.entities.iter().zip(&captured.entities))
            .enumerate()
        {
            let predicted = advance(p, prev.tick, next.tick, 60);
            match i {
                2 | 3 => assert_eq!(n, c, "entity {i} keeps its captured state"),
                _ => assert_eq!(*n, predicted, "entity {i} settles on its prediction"),
            }
        }
        // Captured and settled tick after tick, the fleet costs nothing but the header against
        // any of its earlier snapshots.
        let mut chain = vec![fleet(20)];
        for t in 21..=40 {
            let mut s = fleet(t);
            settle(chain.last().unwrap(), &mut s);
            chain.push(s);
        }
        let last = chain.last().unwrap();
        for base in &chain[..chain.len() - 1] {
            let bytes = encode(Some(base), last);
            // Full flag, baseline byte, γ(age − 1), then four empty sections: nothing listed.
            let header_bits = 9 + ugamma_bits(last.tick.0 - base.tick.0 - 1) as usize + 4;
            assert_eq!(
                bytes.len(),
                header_bits.div_ceil(8),
                "from tick {}",
                base.tick.0
            );
            assert_eq!(decode(&bytes, Some(base)).as_ref(), Ok(last));
        }
    }

    #[test]
    fn wrong_missing_or_old_baselines() {
        let a = Snapshot::capture(Tick(1), vec![entity(1, 1)]);
        let b = Snapshot::capture(Tick(2), vec![entity(1, 2)]);
        let bytes = encode(Some(&a), &b);
        assert_eq!(decode(&bytes, None), Err(DecodeError::MissingBaseline(1)));
        assert!(matches!(
            decode(&bytes, Some(&b)),
            Err(DecodeError::BaselineMismatch { .. })
        ));
        // A baseline older than MAX_BASELINE_AGE gives a full snapshot.
        let late = Snapshot::capture(Tick(1 + MAX_BASELINE_AGE + 1), vec![entity(1, 3)]);
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
        assert_eq!(predict(1000, 8192 + 640, a, b, 60), 1064);
        assert_eq!(predict(1000, 8192 - 640, a, b, 60), 936);
        // One tick moves 22 or 21 sixteenths depending on where it starts (213.3 → 234.7 →
        // 256.0 round to 213, 235, 256), and the steps add up to the three-tick prediction.
        assert_eq!(predict(1000, 8192 + 640, Tick(10), Tick(11), 60), 1022);
        assert_eq!(predict(1000, 8192 + 640, Tick(11), Tick(12), 60), 1021);
        let (a, b) = t(0, 128);
        assert_eq!(predict(10, 0, a, b, 1), 0);
        assert_eq!(predict(16000, 16383, a, b, 1), POS_MAX as u16);
        assert_eq!(predict(5, 9999, a, b, 0), 5);
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
            .prop_map(|(tick, rate, es)| Snapshot::capture(Tick(tick), es).with_tick_rate(rate))
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
            let mut entities: Vec<EntityState> = base
                .entities
                .iter()
                .filter(|_| rnd(10) != 0)
                .map(|e| {
                    let mut e = *e;
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
            let next = Snapshot {
                tick: to,
                ..Snapshot::capture(base.tick, entities).with_tick_rate(base.tick_rate)
            };
            (base, next)
        })
    }

    proptest! {
        #[test]
        fn delta_round_trips(base in arb_snapshot(), next in arb_snapshot()) {
            let next = Snapshot { tick_rate: base.tick_rate, ..next };
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
            let via = predict(predict(pos, vel, a, b, rate), vel, b, c, rate);
            prop_assert_eq!(via, predict(pos, vel, a, c, rate));
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
