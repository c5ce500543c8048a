//! A game's declared components mirrored into Bevy: `app.replicate::<Ship>()` keeps a `Ship`
//! component on every replicated entity of the kind `Ship` declares, for any game. A remote
//! entity's value is interpolated at the render clock between the snapshots either side of it
//! ([`tickwire_client::blend`]: numbers move, angles turn the short way, discrete fields wait);
//! the local player's entity follows the newest snapshot.
//!
//! A component is a Rust type that implements `Record` (usually `#[derive(Record)]`) with the
//! same fields, in the same order and precision, as the kind it mirrors in the game's schema;
//! [`Replicated::KIND`] names that kind. A declaration that does not match the schema is
//! reported once and mirrored nowhere, never read as garbage.

use crate::connection::{CurrentRoom, TickwireSettings};
use crate::replication::{NetEntity, RenderTick, ReplicationSet, SnapshotBuffer};
use bevy::prelude::*;
use tickwire_client::blend::blend;
use tickwire_protocol::record::{Values, dequantise, slot_count};
use tickwire_protocol::{Record, Snapshot};

/// A Bevy component that mirrors one replicated kind.
pub trait Replicated:
    Component<Mutability = bevy::ecs::component::Mutable> + Record + PartialEq
{
    /// The kind's name in the game's schema.
    const KIND: &'static str;
    /// Whether remote entities' values are interpolated between snapshots (the default) or
    /// step from one snapshot's values to the next.
    const INTERPOLATE: bool = true;
}

pub trait ReplicateApp {
    /// Mirrors `C` onto every replicated entity of its kind.
    fn replicate<C: Replicated>(&mut self) -> &mut Self;
}

impl ReplicateApp for App {
    fn replicate<C: Replicated>(&mut self) -> &mut Self {
        self.add_systems(
            Update,
            mirror::<C>
                .in_set(ReplicationSet::Show)
                .after(ReplicationSet::Sync),
        )
    }
}

/// Where `C`'s kind sits in the app's schema: its index and slot count, or why it is not there.
fn layout<C: Replicated>(settings: &TickwireSettings) -> Result<(u16, usize), String> {
    let schema = &settings.schema;
    let index = schema
        .kind_index(C::KIND)
        .ok_or_else(|| format!("the schema has no kind {:?}", C::KIND))?;
    let declared = C::fields();
    let kind = schema
        .kind(index)
        .ok_or_else(|| format!("no kind {index}"))?;
    if kind.fields != declared {
        return Err(format!(
            "{} does not declare the fields of kind {:?}",
            std::any::type_name::<C>(),
            C::KIND
        ));
    }
    Ok((index, slot_count(declared)))
}

fn mirror<C: Replicated>(
    mut commands: Commands,
    settings: Option<Res<TickwireSettings>>,
    buffer: Res<SnapshotBuffer>,
    render: Res<RenderTick>,
    room: Res<CurrentRoom>,
    mut cached: Local<Option<Result<(u16, usize), String>>>,
    mut entities: Query<(Entity, &NetEntity, Option<&mut C>)>,
) {
    let Some(settings) = settings else {
        return;
    };
    let layout = cached.get_or_insert_with(|| {
        let l = layout::<C>(&settings);
        if let Err(e) = &l {
            warn!("not mirroring {}: {e}", std::any::type_name::<C>());
        }
        l
    });
    let Ok((kind, slots)) = *layout else {
        return;
    };
    let local = room.joined.as_ref().map(|j| j.entity).filter(|e| e.0 != 0);
    let newest = buffer.newest().map(|r| &*r.snapshot);
    let (from, to, t) = match render.0 {
        Some(at) if C::INTERPOLATE => buffer.around(at),
        Some(at) => (buffer.shown(at), None, 0.0),
        None => (newest, None, 0.0),
    };
    let fields = C::fields();
    let (mut a, mut b, mut shown) = (Vec::new(), Vec::new(), Vec::new());
    for (entity, net, current) in &mut entities {
        if net.kind != kind {
            continue;
        }
        let values = |s: Option<&Snapshot>, out: &mut Vec<f64>| {
            out.clear();
            s.and_then(|s| s.get(net.id))
                .and_then(|e| e.values.get(..slots))
                .is_some_and(|v| dequantise(fields, v, out).is_ok())
        };
        shown.clear();
        if Some(net.id) == local {
            if !values(newest, &mut shown) {
                continue;
            }
        } else {
            match (values(from, &mut a), values(to, &mut b)) {
                (true, true) => blend(fields, &a, &b, t, &mut shown),
                (true, false) => shown.append(&mut a),
                // It has just appeared: its first value.
                (false, true) => shown.append(&mut b),
                (false, false) => continue,
            }
        }
        let value = C::read(&mut Values::new(&shown));
        match current {
            Some(mut c) => {
                if *c != value {
                    *c = value;
                }
            }
            None => {
                commands.entity(entity).insert(value);
            }
        }
    }
}
