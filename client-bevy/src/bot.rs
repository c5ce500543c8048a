//! An autopilot at the local player's controls, for headless runs and demos: it wanders
//! between random points of the arena, aims at the nearest other thing it sees and fires when
//! something is close. It writes [`PlayerIntent`] like a keyboard would.

use crate::prediction::PlayerIntent;
use crate::replication::{LocalPlayer, NetEntity, NetState};
use bevy::prelude::*;
use tickwire_arena::movement::{ARENA_SIZE, PLAYER_RADIUS};

/// How close a target must be to fire at it, world units.
const FIRE_RANGE: f32 = 350.0;
/// Within this distance of its waypoint the bot picks another.
const ARRIVED: f32 = 24.0;

/// The autopilot's own state; add [`BotPlugin`] to let it drive.
#[derive(Resource)]
pub struct Autopilot {
    rng: fastrand::Rng,
    waypoint: Vec2,
}

impl Autopilot {
    pub fn new(seed: u64) -> Autopilot {
        let mut rng = fastrand::Rng::with_seed(seed);
        let waypoint = random_point(&mut rng);
        Autopilot { rng, waypoint }
    }
}

fn random_point(rng: &mut fastrand::Rng) -> Vec2 {
    let margin = PLAYER_RADIUS * 2.0;
    let span = ARENA_SIZE - 2.0 * margin;
    Vec2::new(margin + rng.f32() * span, margin + rng.f32() * span)
}

pub struct BotPlugin {
    pub seed: u64,
}

impl Plugin for BotPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(Autopilot::new(self.seed))
            .add_systems(Update, drive);
    }
}

fn drive(
    mut pilot: ResMut<Autopilot>,
    mut intent: ResMut<PlayerIntent>,
    me: Query<&NetState, With<LocalPlayer>>,
    others: Query<(&NetEntity, &NetState), Without<LocalPlayer>>,
) {
    let Ok(me) = me.single() else {
        *intent = PlayerIntent::default();
        return;
    };
    if me.pos.distance(pilot.waypoint) < ARRIVED {
        pilot.waypoint = random_point(&mut pilot.rng);
    }
    let nearest = others
        .iter()
        .filter(|(net, _)| net.arena_kind() != Some(tickwire_arena::EntityKind::Projectile))
        .map(|(_, state)| state.pos)
        .min_by(|a, b| me.pos.distance(*a).total_cmp(&me.pos.distance(*b)));
    let to_waypoint = pilot.waypoint - me.pos;
    intent.move_dir = to_waypoint.normalize_or_zero();
    match nearest {
        Some(target) => {
            let to_target = target - me.pos;
            intent.aim = to_target.y.atan2(to_target.x);
            intent.fire = to_target.length() < FIRE_RANGE;
        }
        None => {
            intent.aim = to_waypoint.y.atan2(to_waypoint.x);
            intent.fire = false;
        }
    }
}
