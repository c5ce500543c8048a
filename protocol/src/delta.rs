//! The snapshot delta format: a snapshot encoded against a baseline snapshot the client already
//! holds (or against nothing: a full snapshot). The exact bit layout is in docs/PROTOCOL.md.
//!
//! Only entities that were removed, added or changed are written, each by the gap between its id
//! and the previous id written, so unchanged entities cost nothing. A changed entity carries a
//! 4-bit mask of which fields (position, velocity, aim, health) follow.

use crate::bits::{BitReader, BitWriter, BitsExhausted};
use crate::ids::{NetId, PlayerId, Tick};
use crate::schema::{
    AIM_BITS, EntityKind, EntityState, HEALTH_BITS, KIND_BITS, POS_BITS, VEL_BITS,
};
use crate::snapshot::Snapshot;

/// Most entities a decoded snapshot may hold; larger claims are refused before allocating.
pub const MAX_SNAPSHOT_ENTITIES: usize = 65_536;

const FIELD_POS: u32 = 1;
const FIELD_VEL: u32 = 2;
const FIELD_AIM: u32 = 4;
const FIELD_HEALTH: u32 = 8;
const FIELD_BITS: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("snapshot is truncated")]
    Truncated,
    #[error("snapshot needs baseline tick {0:?}, which is not held")]
    MissingBaseline(Tick),
    #[error("snapshot is against baseline {wanted:?}, given {given:?}")]
    BaselineMismatch { wanted: Tick, given: Tick },
    #[error("snapshot claims {0} entities, more than allowed")]
    TooManyEntities(usize),
    #[error("entity id out of range")]
    IdOverflow,
    #[error("snapshot changes or removes {0:?}, which the baseline does not hold")]
    UnknownEntity(NetId),
    #[error("snapshot both removes and updates {0:?}")]
    RemovedAndUpdated(NetId),
    #[error("unknown entity kind {0}")]
    BadKind(u32),
}

impl From<BitsExhausted> for DecodeError {
    fn from(_: BitsExhausted) -> Self {
        DecodeError::Truncated
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaHeader {
    pub tick: Tick,
    /// None: a full snapshot.
    pub baseline: Option<Tick>,
}

/// Encodes `next` against `base` (None: a full snapshot).
pub fn encode(base: Option<&Snapshot>, next: &Snapshot) -> Vec<u8> {
    let empty: &[EntityState] = &[];
    let base_entities = base.map_or(empty, |b| &b.entities[..]);

    // One merge pass over both sorted lists finds what left and what is new or changed.
    let mut removed: Vec<NetId> = Vec::new();
    let mut updates: Vec<(&EntityState, Option<&EntityState>)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < base_entities.len() || j < next.entities.len() {
        match (base_entities.get(i), next.entities.get(j)) {
            (Some(b), Some(n)) if b.id == n.id => {
                if b != n {
                    updates.push((n, Some(b)));
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
                updates.push((n, None));
                j += 1;
            }
            (None, None) => unreachable!("loop condition"),
        }
    }

    let mut w = BitWriter::with_capacity(16 + updates.len() * 8);
    w.write(next.tick.0, 32);
    match base {
        Some(b) => {
            w.write_bool(true);
            w.write(b.tick.0, 32);
        }
        None => w.write_bool(false),
    }
    w.write_var(removed.len() as u32);
    let mut ids = IdGaps::default();
    for id in &removed {
        w.write_var(ids.gap(*id));
    }
    w.write_var(updates.len() as u32);
    let mut ids = IdGaps::default();
    for (n, b) in &updates {
        w.write_var(ids.gap(n.id));
        match b {
            Some(b) if b.kind == n.kind && b.owner == n.owner => write_changes(&mut w, b, n),
            _ => write_full(&mut w, n),
        }
    }
    w.finish()
}

/// Ids are written as gaps from the previous id written plus one, starting from 0, so a run of
/// consecutive ids costs a zero gap each.
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

fn write_full(w: &mut BitWriter, e: &EntityState) {
    w.write_bool(true);
    w.write(e.kind as u32, KIND_BITS);
    match e.owner {
        Some(p) => {
            w.write_bool(true);
            w.write_var(p.0);
        }
        None => w.write_bool(false),
    }
    write_pair(w, e.pos, POS_BITS);
    write_pair(w, e.vel, VEL_BITS);
    w.write(e.aim as u32, AIM_BITS);
    w.write(e.health as u32, HEALTH_BITS);
}

fn write_changes(w: &mut BitWriter, b: &EntityState, n: &EntityState) {
    w.write_bool(false);
    let mut mask = 0;
    if b.pos != n.pos {
        mask |= FIELD_POS;
    }
    if b.vel != n.vel {
        mask |= FIELD_VEL;
    }
    if b.aim != n.aim {
        mask |= FIELD_AIM;
    }
    if b.health != n.health {
        mask |= FIELD_HEALTH;
    }
    w.write(mask, FIELD_BITS);
    if mask & FIELD_POS != 0 {
        write_pair(w, n.pos, POS_BITS);
    }
    if mask & FIELD_VEL != 0 {
        write_pair(w, n.vel, VEL_BITS);
    }
    if mask & FIELD_AIM != 0 {
        w.write(n.aim as u32, AIM_BITS);
    }
    if mask & FIELD_HEALTH != 0 {
        w.write(n.health as u32, HEALTH_BITS);
    }
}

fn write_pair(w: &mut BitWriter, v: [u16; 2], bits: u32) {
    w.write(v[0] as u32, bits);
    w.write(v[1] as u32, bits);
}

fn read_pair(r: &mut BitReader<'_>, bits: u32) -> Result<[u16; 2], BitsExhausted> {
    Ok([r.read(bits)? as u16, r.read(bits)? as u16])
}

/// Reads the tick and the baseline a delta needs, so a client can find the baseline.
pub fn read_header(bytes: &[u8]) -> Result<DeltaHeader, DecodeError> {
    let mut r = BitReader::new(bytes);
    read_header_from(&mut r)
}

fn read_header_from(r: &mut BitReader<'_>) -> Result<DeltaHeader, DecodeError> {
    let tick = Tick(r.read(32)?);
    let baseline = if r.read_bool()? {
        Some(Tick(r.read(32)?))
    } else {
        None
    };
    Ok(DeltaHeader { tick, baseline })
}

enum Update {
    Full(EntityState),
    Changes {
        id: NetId,
        pos: Option<[u16; 2]>,
        vel: Option<[u16; 2]>,
        aim: Option<u16>,
        health: Option<u8>,
    },
}

impl Update {
    fn id(&self) -> NetId {
        match self {
            Update::Full(e) => e.id,
            Update::Changes { id, .. } => *id,
        }
    }

    fn apply(self, base: Option<&EntityState>) -> Result<EntityState, DecodeError> {
        match (self, base) {
            (Update::Full(e), _) => Ok(e),
            (Update::Changes { id, .. }, None) => Err(DecodeError::UnknownEntity(id)),
            (
                Update::Changes {
                    pos,
                    vel,
                    aim,
                    health,
                    ..
                },
                Some(b),
            ) => Ok(EntityState {
                pos: pos.unwrap_or(b.pos),
                vel: vel.unwrap_or(b.vel),
                aim: aim.unwrap_or(b.aim),
                health: health.unwrap_or(b.health),
                ..*b
            }),
        }
    }
}

/// Smallest number of bits one update record can take; bounds counts before allocating.
const MIN_UPDATE_BITS: usize = 6 + 1 + FIELD_BITS as usize;
const MIN_REMOVED_BITS: usize = 6;

/// Decodes a delta. `base` must be the snapshot of the header's baseline tick when it has one;
/// it is ignored for a full snapshot.
pub fn decode(bytes: &[u8], base: Option<&Snapshot>) -> Result<Snapshot, DecodeError> {
    let mut r = BitReader::new(bytes);
    let header = read_header_from(&mut r)?;
    let base_entities: &[EntityState] = match (header.baseline, base) {
        (None, _) => &[],
        (Some(wanted), None) => return Err(DecodeError::MissingBaseline(wanted)),
        (Some(wanted), Some(b)) if b.tick != wanted => {
            return Err(DecodeError::BaselineMismatch {
                wanted,
                given: b.tick,
            });
        }
        (Some(_), Some(b)) => &b.entities,
    };

    let removed_count = r.read_var()? as usize;
    if removed_count > base_entities.len() {
        return Err(DecodeError::TooManyEntities(removed_count));
    }
    if removed_count * MIN_REMOVED_BITS > r.remaining() {
        return Err(DecodeError::Truncated);
    }
    let mut removed = Vec::with_capacity(removed_count);
    let mut ids = IdGaps::default();
    for _ in 0..removed_count {
        removed.push(ids.id(r.read_var()?)?);
    }

    let update_count = r.read_var()? as usize;
    if update_count > MAX_SNAPSHOT_ENTITIES {
        return Err(DecodeError::TooManyEntities(update_count));
    }
    if update_count * MIN_UPDATE_BITS > r.remaining() {
        return Err(DecodeError::Truncated);
    }
    let mut updates = Vec::with_capacity(update_count);
    let mut ids = IdGaps::default();
    for _ in 0..update_count {
        let id = ids.id(r.read_var()?)?;
        updates.push(read_update(&mut r, id)?);
    }

    let entities = merge(base_entities, &removed, updates)?;
    if entities.len() > MAX_SNAPSHOT_ENTITIES {
        return Err(DecodeError::TooManyEntities(entities.len()));
    }
    Ok(Snapshot {
        tick: header.tick,
        entities,
    })
}

fn read_update(r: &mut BitReader<'_>, id: NetId) -> Result<Update, DecodeError> {
    if r.read_bool()? {
        let kind_bits = r.read(KIND_BITS)?;
        let kind = EntityKind::from_bits(kind_bits).ok_or(DecodeError::BadKind(kind_bits))?;
        let owner = if r.read_bool()? {
            Some(PlayerId(r.read_var()?))
        } else {
            None
        };
        return Ok(Update::Full(EntityState {
            id,
            kind,
            owner,
            pos: read_pair(r, POS_BITS)?,
            vel: read_pair(r, VEL_BITS)?,
            aim: r.read(AIM_BITS)? as u16,
            health: r.read(HEALTH_BITS)? as u8,
        }));
    }
    let mask = r.read(FIELD_BITS)?;
    let pos = (mask & FIELD_POS != 0)
        .then(|| read_pair(r, POS_BITS))
        .transpose()?;
    let vel = (mask & FIELD_VEL != 0)
        .then(|| read_pair(r, VEL_BITS))
        .transpose()?;
    let aim = (mask & FIELD_AIM != 0)
        .then(|| r.read(AIM_BITS).map(|v| v as u16))
        .transpose()?;
    let health = (mask & FIELD_HEALTH != 0)
        .then(|| r.read(HEALTH_BITS).map(|v| v as u8))
        .transpose()?;
    Ok(Update::Changes {
        id,
        pos,
        vel,
        aim,
        health,
    })
}

/// Merges the baseline with the removals and updates; all three are sorted by id.
fn merge(
    base: &[EntityState],
    removed: &[NetId],
    updates: Vec<Update>,
) -> Result<Vec<EntityState>, DecodeError> {
    let mut out = Vec::with_capacity(base.len() + updates.len());
    let mut removed = removed.iter().peekable();
    let mut updates = updates.into_iter().peekable();
    for b in base {
        while let Some(u) = updates.next_if(|u| u.id() < b.id) {
            out.push(u.apply(None)?);
        }
        if let Some(&&r) = removed.peek() {
            if r < b.id {
                return Err(DecodeError::UnknownEntity(r));
            }
            if r == b.id {
                removed.next();
                if updates.peek().is_some_and(|u| u.id() == b.id) {
                    return Err(DecodeError::RemovedAndUpdated(b.id));
                }
                continue;
            }
        }
        match updates.next_if(|u| u.id() == b.id) {
            Some(u) => out.push(u.apply(Some(b))?),
            None => out.push(*b),
        }
    }
    if let Some(&r) = removed.next() {
        return Err(DecodeError::UnknownEntity(r));
    }
    for u in updates {
        out.push(u.apply(None)?);
    }
    Ok(out)
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
        assert!(bytes.len() <= 11, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes, Some(&a)), Ok(b));
    }

    #[test]
    fn wrong_or_missing_baseline_is_an_error() {
        let a = Snapshot::capture(Tick(1), vec![entity(1, 1)]);
        let b = Snapshot::capture(Tick(2), vec![entity(1, 2)]);
        let bytes = encode(Some(&a), &b);
        assert_eq!(
            decode(&bytes, None),
            Err(DecodeError::MissingBaseline(Tick(1)))
        );
        assert!(matches!(
            decode(&bytes, Some(&b)),
            Err(DecodeError::BaselineMismatch { .. })
        ));
    }

    fn arb_entity() -> impl Strategy<Value = EntityState> {
        (
            0u32..200,
            0u32..3,
            proptest::option::of(0u32..100_000),
            any::<[u16; 2]>(),
            any::<[u16; 2]>(),
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
            proptest::collection::vec(arb_entity(), 0..120),
        )
            .prop_map(|(tick, es)| Snapshot::capture(Tick(tick), es))
    }

    proptest! {
        #[test]
        fn delta_round_trips(base in arb_snapshot(), next in arb_snapshot()) {
            let bytes = encode(Some(&base), &next);
            prop_assert_eq!(decode(&bytes, Some(&base)), Ok(next.clone()));
            let full = encode(None, &next);
            prop_assert_eq!(decode(&full, None), Ok(next));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), base in arb_snapshot()) {
            let _ = decode(&bytes, Some(&base));
            let _ = decode(&bytes, None);
        }

        #[test]
        fn truncated_snapshots_are_errors(base in arb_snapshot(), next in arb_snapshot(), cut in 0usize..1000) {
            let bytes = encode(Some(&base), &next);
            let cut = cut % bytes.len();
            // Dropping at least one whole byte leaves a snapshot that cannot decode to `next`.
            let decoded = decode(&bytes[..cut], Some(&base));
            prop_assert!(decoded != Ok(next));
        }
    }
}
