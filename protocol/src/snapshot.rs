//! A snapshot: the quantised state of every replicated entity of a room at one tick, in the
//! shape of the room's [`Schema`](crate::schema::Schema) but without knowing it: each entity is
//! a head (id, kind, owner) and `stride` slots, the kind's own slots first and zeros after.

use crate::ids::{NetId, PlayerId, Tick};
use crate::schema::Field;

/// The tick rate a snapshot assumes when none is given.
pub const DEFAULT_TICK_RATE: u8 = 60;

/// Who an entity is: what the codec treats as its identity. A change of kind or owner is sent
/// as a new entity.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Head {
    pub id: NetId,
    /// Index into the schema's kinds.
    pub kind: u16,
    /// The player who owns it (an avatar, a projectile's shooter), if any.
    pub owner: Option<PlayerId>,
}

/// One entity of a snapshot.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EntityRef<'a> {
    pub id: NetId,
    pub kind: u16,
    pub owner: Option<PlayerId>,
    /// The entity's slots (its kind's, then zeros up to the snapshot's stride).
    pub values: &'a [u32],
}

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub tick: Tick,
    /// Simulation steps per second. Deltas predict a moving entity's position from its
    /// baseline velocity over the ticks between the two snapshots; this is the clock for that.
    /// 0 turns prediction off.
    pub tick_rate: u8,
    /// Sorted by id, ids unique.
    heads: Vec<Head>,
    /// `stride` slots per head, in the same order.
    values: Vec<u32>,
    stride: usize,
    /// Per entity, when known: the oldest tick from which the schema's predictions carry it to
    /// this snapshot exactly, through the snapshots captured in between (`delta::settle` works
    /// it out as a room captures). The encoder needs no prediction to know that such an entity
    /// is unchanged against a baseline at or after that tick. Empty when unknown; not part of
    /// what the snapshot says, so equality ignores it.
    since: Vec<Tick>,
}

impl PartialEq for Snapshot {
    fn eq(&self, other: &Snapshot) -> bool {
        self.tick == other.tick
            && self.tick_rate == other.tick_rate
            && self.stride == other.stride
            && self.heads == other.heads
            && self.values == other.values
    }
}

impl Eq for Snapshot {}

impl Snapshot {
    /// An empty snapshot whose entities have `stride` slots.
    pub fn empty(tick: Tick, stride: usize) -> Snapshot {
        Snapshot {
            tick,
            tick_rate: DEFAULT_TICK_RATE,
            heads: Vec::new(),
            values: Vec::new(),
            stride,
            since: Vec::new(),
        }
    }

    /// Builds a snapshot from entities in any order (a game's ECS iteration order); of two
    /// with one id, the first is kept.
    pub fn capture(capture: Capture, tick: Tick) -> Snapshot {
        let stride = capture.stride;
        let mut snapshot = Snapshot::empty(tick, stride);
        // A game's iteration order is often id order already: then nothing moves.
        if capture.ascending {
            snapshot.heads = capture.heads;
            snapshot.values = capture.values;
            return snapshot;
        }
        let mut order: Vec<(NetId, u32)> = capture
            .heads
            .iter()
            .enumerate()
            .map(|(i, h)| (h.id, i as u32))
            .collect();
        order.sort_unstable();
        order.dedup_by_key(|(id, _)| *id);
        snapshot.heads.reserve(order.len());
        snapshot.values.reserve(order.len() * stride);
        for &(_, i) in &order {
            let i = i as usize;
            snapshot.heads.push(capture.heads[i]);
            snapshot
                .values
                .extend_from_slice(&capture.values[i * stride..(i + 1) * stride]);
        }
        snapshot
    }

    pub fn with_tick_rate(mut self, tick_rate: u8) -> Snapshot {
        self.tick_rate = tick_rate;
        self
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    pub fn len(&self) -> usize {
        self.heads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    pub fn heads(&self) -> &[Head] {
        &self.heads
    }

    pub fn values(&self, index: usize) -> &[u32] {
        &self.values[index * self.stride..(index + 1) * self.stride]
    }

    /// Every entity's slots, `stride` after `stride`, in id order.
    pub(crate) fn all_values(&self) -> &[u32] {
        &self.values
    }

    /// The heads and every entity's slots to change in place (for settling, which records
    /// since when each has followed its prediction itself).
    pub(crate) fn heads_and_values_mut(&mut self) -> (&[Head], &mut [u32]) {
        (&self.heads, &mut self.values)
    }

    /// An entity's slots to change (which forgets how long it has followed its prediction).
    pub fn values_mut(&mut self, index: usize) -> &mut [u32] {
        if let Some(since) = self.since.get_mut(index) {
            *since = self.tick;
        }
        &mut self.values[index * self.stride..(index + 1) * self.stride]
    }

    /// Since when entity `index` has followed its prediction, if known (see the field).
    pub(crate) fn since(&self, index: usize) -> Option<Tick> {
        self.since.get(index).copied()
    }

    /// Records, per entity, since when each has followed its prediction.
    pub(crate) fn set_since(&mut self, since: Vec<Tick>) {
        debug_assert_eq!(since.len(), self.heads.len());
        self.since = since;
    }

    pub fn entity(&self, index: usize) -> EntityRef<'_> {
        let h = self.heads[index];
        EntityRef {
            id: h.id,
            kind: h.kind,
            owner: h.owner,
            values: self.values(index),
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = EntityRef<'_>> + '_ {
        (0..self.heads.len()).map(|i| self.entity(i))
    }

    pub fn index_of(&self, id: NetId) -> Option<usize> {
        self.heads.binary_search_by_key(&id, |h| h.id).ok()
    }

    pub fn get(&self, id: NetId) -> Option<EntityRef<'_>> {
        self.index_of(id).map(|i| self.entity(i))
    }

    /// Appends an entity whose id is above every id held (the decoder's order).
    pub(crate) fn push_sorted(&mut self, head: Head, values: &[u32]) {
        debug_assert!(self.heads.last().is_none_or(|h| h.id < head.id));
        self.since.clear();
        self.heads.push(head);
        let start = self.values.len();
        self.values.extend_from_slice(values);
        self.values.resize(start + self.stride, 0);
    }

    /// Keeps the entities for which `keep(index)` holds.
    pub(crate) fn retain_indices(&mut self, mut keep: impl FnMut(usize) -> bool) {
        let stride = self.stride;
        self.since.clear();
        let mut out = 0;
        for i in 0..self.heads.len() {
            if keep(i) {
                self.heads[out] = self.heads[i];
                self.values
                    .copy_within(i * stride..(i + 1) * stride, out * stride);
                out += 1;
            }
        }
        self.heads.truncate(out);
        self.values.truncate(out * stride);
    }
}

/// Entities gathered in any order, to become a [`Snapshot`].
pub struct Capture {
    stride: usize,
    heads: Vec<Head>,
    values: Vec<u32>,
    /// Whether every id so far is above the one before (then the capture is the snapshot).
    ascending: bool,
    /// Kept between [`Capture::push_record`] calls so they allocate nothing.
    scratch: Vec<f64>,
}

impl Capture {
    pub fn new(stride: usize) -> Capture {
        Capture::with_capacity(stride, 0)
    }

    /// A capture with room for `entities` without growing.
    pub fn with_capacity(stride: usize, entities: usize) -> Capture {
        Capture {
            stride,
            heads: Vec::with_capacity(entities),
            values: Vec::with_capacity(entities * stride),
            ascending: true,
            scratch: Vec::new(),
        }
    }

    /// Adds an entity; `values` are its kind's slots (at most `stride`; the rest are zeros).
    /// Inlined into a game's capture loop, where the slot count is usually a constant and the
    /// copy becomes a few moves instead of a library call for each entity.
    #[inline]
    pub fn push(&mut self, head: Head, values: &[u32]) {
        self.push_head(head);
        let start = self.values.len();
        // Copied whole when it fits, so the length stays the caller's constant.
        if values.len() <= self.stride {
            self.values.extend_from_slice(values);
        } else {
            self.values.extend_from_slice(&values[..self.stride]);
        }
        self.values.resize(start + self.stride, 0);
    }

    #[inline]
    fn push_head(&mut self, head: Head) {
        if let Some(last) = self.heads.last() {
            self.ascending &= last.id < head.id;
        }
        self.heads.push(head);
    }

    /// Adds an entity from a declared record whose fields are its kind's (`fields`, from the
    /// schema): each value quantised into its field, clamped into range (NaN: the zero slot).
    /// The server's own state is never refused, only made to fit.
    pub fn push_record<R: crate::Record>(&mut self, head: Head, fields: &[Field], record: &R) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        record.write(&mut scratch);
        self.push_head(head);
        let start = self.values.len();
        self.values.extend(
            crate::record::slot_fields(fields)
                .zip(&scratch)
                .map(|(f, &v)| f.ty.quantise_f64(v)),
        );
        self.values.truncate(start + self.stride);
        self.values.resize(start + self.stride, 0);
        self.scratch = scratch;
    }

    pub fn len(&self) -> usize {
        self.heads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }
}
