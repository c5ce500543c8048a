//! Snapshots into Bevy entities: a short buffer of decoded snapshots, and one Bevy entity per
//! replicated net id, spawned and despawned as the *shown* snapshot (the one at the render
//! clock, see [`crate::interpolation`]) says, so a remote entity appears and disappears when
//! the player sees its first and last position, not a render delay early. The local player's
//! entity follows the newest snapshot instead: prediction draws it ahead of the others.
//!
//! Every room's entities are spawned whatever the game ([`NetEntity`]: net id, kind index,
//! owner); a game's declared components are mirrored onto them with
//! [`crate::replicate::ReplicateApp::replicate`]. [`NetState`] (position, velocity, aim,
//! health) and the interpolation and prediction built on it are the arena's, and are attached
//! only in rooms of the arena's schema.

use crate::connection::{CurrentRoom, SnapshotMessage};
use bevy::platform::collections::HashMap;
use bevy::prelude::*;
use std::collections::VecDeque;
use std::sync::Arc;
use tickwire_arena::{EntityKind, EntityState};
use tickwire_client::Received;
use tickwire_protocol::{EntityRef, NetId, PlayerId, RoomId, Snapshot, Tick};

/// Snapshots kept, at most: about a second at 60 Hz, far more than any render delay.
pub const BUFFER_LEN: usize = 64;

/// A replicated entity: which one on the server, and what it is.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetEntity {
    pub id: NetId,
    /// Its kind's index in the room's schema.
    pub kind: u16,
    pub owner: Option<PlayerId>,
}

impl NetEntity {
    /// Its kind as the arena names it (in a room of the arena's schema).
    pub fn arena_kind(&self) -> Option<EntityKind> {
        EntityKind::from_bits(self.kind as u32)
    }
}

/// Whether the room is one of the arena's schema, whose entities get a [`NetState`].
pub fn is_arena_room(room: &CurrentRoom) -> bool {
    static ARENA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let arena = ARENA.get_or_init(|| tickwire_arena::view::schema().hash());
    room.joined
        .as_ref()
        .is_some_and(|j| &j.schema_hash == arena)
}

/// What to show for a replicated entity this frame, in world units: interpolated for remote
/// entities, predicted for the local player.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq)]
pub struct NetState {
    pub pos: Vec2,
    pub vel: Vec2,
    pub aim: f32,
    pub health: f32,
}

impl NetState {
    pub fn from_state(state: &EntityState) -> NetState {
        NetState {
            pos: state.position(),
            vel: state.velocity(),
            aim: state.aim_angle(),
            health: state.health as f32,
        }
    }
}

/// Marks the entity the player controls.
#[derive(Component, Clone, Copy, Debug)]
pub struct LocalPlayer;

/// Recent snapshots of the current room, oldest first.
#[derive(Resource, Default)]
pub struct SnapshotBuffer {
    room: Option<RoomId>,
    snapshots: VecDeque<Arc<Received>>,
}

impl SnapshotBuffer {
    pub fn newest(&self) -> Option<&Arc<Received>> {
        self.snapshots.back()
    }

    /// The newest tick received: what the next input acknowledges.
    pub fn newest_tick(&self) -> Option<Tick> {
        self.newest().map(|r| r.snapshot.tick)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Snapshot> {
        self.snapshots.iter().map(|r| &*r.snapshot)
    }

    /// The snapshot shown at fractional tick `at`: the newest at or before it, or the oldest
    /// when all are later (the clock has just started).
    pub fn shown(&self, at: f64) -> Option<&Snapshot> {
        self.around(at).0
    }

    /// The snapshots either side of fractional tick `at` and the fraction of the way from the
    /// first to the second: (newest at or before `at`, oldest after it, fraction). Before the
    /// oldest, only it; after the newest, only that.
    pub fn around(&self, at: f64) -> (Option<&Snapshot>, Option<&Snapshot>, f64) {
        let from = self.iter().rev().find(|s| s.tick.0 as f64 <= at);
        let to = self.iter().find(|s| s.tick.0 as f64 > at);
        match (from, to) {
            (Some(a), Some(b)) => {
                let t = (at - a.tick.0 as f64) / (b.tick.0 - a.tick.0) as f64;
                (from, to, t)
            }
            (None, Some(_)) => (to, None, 0.0),
            _ => (from, None, 0.0),
        }
    }

    fn push(&mut self, received: Arc<Received>) {
        if self
            .newest()
            .is_some_and(|n| n.snapshot.tick >= received.snapshot.tick)
        {
            return;
        }
        if self.snapshots.len() == BUFFER_LEN {
            self.snapshots.pop_front();
        }
        self.snapshots.push_back(received);
    }

    fn clear(&mut self) {
        self.snapshots.clear();
    }
}

/// Where the render clock stands, in fractional server ticks; None until it has started.
/// Interpolation owns it; replication reads it to pick the shown snapshot.
#[derive(Resource, Clone, Copy, Debug, Default)]
pub struct RenderTick(pub Option<f64>);

/// Bevy entity by net id.
#[derive(Resource, Default, Deref)]
pub struct NetIndex(HashMap<NetId, Entity>);

/// Counters for reports.
#[derive(Resource, Clone, Debug, Default)]
pub struct ReplicationStats {
    /// Net entities spawned so far (each net id once per room).
    pub entities_seen: u64,
    pub despawned: u64,
}

#[derive(Default)]
pub struct ReplicationPlugin;

impl Plugin for ReplicationPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<SnapshotBuffer>()
            .init_resource::<RenderTick>()
            .init_resource::<NetIndex>()
            .init_resource::<ReplicationStats>()
            .add_systems(
                PreUpdate,
                buffer_snapshots.after(crate::connection::ReceiveSet),
            )
            .add_systems(Update, sync_entities.in_set(ReplicationSet::Sync))
            .add_systems(
                PostUpdate,
                place_transforms.before(TransformSystems::Propagate),
            );
    }
}

/// Ordering within a frame: entities exist (`Sync`) before their states are written (`Show`).
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplicationSet {
    Sync,
    Show,
}

fn buffer_snapshots(
    mut incoming: MessageReader<SnapshotMessage>,
    room: Res<CurrentRoom>,
    mut buffer: ResMut<SnapshotBuffer>,
) {
    let current = room.joined.as_ref().map(|j| j.room.id);
    if buffer.room != current {
        // A new room numbers its ticks afresh; nothing of the old one applies.
        buffer.room = current;
        buffer.clear();
    }
    for received in incoming.read() {
        if current.is_some() {
            buffer.push(received.0.clone());
        }
    }
}

fn sync_entities(
    mut commands: Commands,
    buffer: Res<SnapshotBuffer>,
    render: Res<RenderTick>,
    room: Res<CurrentRoom>,
    mut index: ResMut<NetIndex>,
    mut stats: ResMut<ReplicationStats>,
) {
    let local = room.joined.as_ref().map(|j| j.entity).filter(|e| e.0 != 0);
    let shown = match render.0 {
        Some(at) => buffer.shown(at),
        None => buffer.newest().map(|r| &*r.snapshot),
    };
    let newest = buffer.newest().map(|r| &*r.snapshot);
    let wanted = |id: NetId| -> Option<EntityRef<'_>> {
        if Some(id) == local {
            newest?.get(id)
        } else {
            shown?.get(id)
        }
    };
    let arena_room = is_arena_room(&room);

    index.0.retain(|id, entity| {
        if wanted(*id).is_some() {
            return true;
        }
        commands.entity(*entity).despawn();
        stats.despawned += 1;
        false
    });
    let candidates = shown
        .into_iter()
        .flat_map(|s| s.iter())
        .chain(local.and_then(|id| newest?.get(id)));
    for e in candidates {
        if index.0.contains_key(&e.id) || wanted(e.id).is_none() {
            continue;
        }
        let net = NetEntity {
            id: e.id,
            kind: e.kind,
            owner: e.owner,
        };
        let mut entity = commands.spawn((net, Transform::default()));
        if arena_room && let Some(state) = EntityState::from_entity(e) {
            let shown_state = NetState::from_state(&state);
            entity.insert((
                shown_state,
                Transform::from_translation(shown_state.pos.extend(0.0)),
            ));
        }
        if Some(e.id) == local {
            entity.insert(LocalPlayer);
        }
        index.0.insert(e.id, entity.id());
        stats.entities_seen += 1;
    }
}

/// Puts every replicated entity where its state says (x, y in world units; z keeps kinds in
/// layers so projectiles draw over drones and players over both).
fn place_transforms(mut shown: Query<(&NetEntity, &NetState, &mut Transform)>) {
    for (net, state, mut transform) in &mut shown {
        let z = match net.arena_kind() {
            Some(EntityKind::Drone) | None => 0.0,
            Some(EntityKind::Projectile) => 1.0,
            Some(EntityKind::Player) => 2.0,
        };
        transform.translation = state.pos.extend(z);
        transform.rotation = Quat::from_rotation_z(state.aim);
    }
}
