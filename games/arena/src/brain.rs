//! What an arena bot does with the world it sees: close in on the nearest living enemy player
//! (or a drone when no player is around), circle it, aim at it and fire when in range. Server
//! bots and the `tickwire-bots` swarm both use it; it sees only a snapshot, as a player does.

use crate::input::ArenaInput;
use crate::view::{self as arena, EntityKind};
use tickwire_game::Bot;
use tickwire_game::glam::Vec2;
use tickwire_game::protocol::{PlayerId, Snapshot};

const KEEP_DISTANCE: f32 = 160.0;
const FIRE_RANGE: f32 = 420.0;

pub struct Brain {
    rng: fastrand::Rng,
    /// +1 or -1: which way this bot circles its target.
    orbit: f32,
    wander: Vec2,
}

impl Bot<ArenaInput> for Brain {
    fn act(&mut self, me: PlayerId, view: &Snapshot) -> ArenaInput {
        Brain::act(self, me, view)
    }
}

impl Brain {
    pub fn new(seed: u64) -> Brain {
        let mut rng = fastrand::Rng::with_seed(seed);
        let orbit = if rng.bool() { 1.0 } else { -1.0 };
        Brain {
            rng,
            orbit,
            wander: Vec2::X,
        }
    }

    pub fn act(&mut self, me: PlayerId, world: &Snapshot) -> ArenaInput {
        let Some(own) =
            arena::entities(world).find(|e| e.kind == EntityKind::Player && e.owner == Some(me))
        else {
            return self.idle();
        };
        if own.health == 0 {
            return self.idle();
        }
        let pos = own.position();
        let nearest = |kind: EntityKind| {
            arena::entities(world)
                .filter(|e| e.kind == kind && e.id != own.id && e.health > 0)
                .map(|e| (e.position(), e.position().distance_squared(pos)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
        };
        let Some((target, dist2)) =
            nearest(EntityKind::Player).or_else(|| nearest(EntityKind::Drone))
        else {
            return self.idle();
        };
        let to = target - pos;
        let dist = dist2.sqrt();
        let dir = to.normalize_or(Vec2::X);
        let move_dir = if dist > KEEP_DISTANCE {
            dir
        } else {
            dir.perp() * self.orbit
        };
        if self.rng.f32() < 0.01 {
            self.orbit = -self.orbit;
        }
        let jitter = (self.rng.f32() - 0.5) * 0.1;
        let aim = wrap_angle(to.y.atan2(to.x) + jitter);
        ArenaInput {
            move_dir,
            aim,
            fire: dist < FIRE_RANGE,
        }
    }

    fn idle(&mut self) -> ArenaInput {
        if self.rng.f32() < 0.05 {
            let a = self.rng.f32() * std::f32::consts::TAU;
            self.wander = Vec2::from_angle(a);
        }
        ArenaInput {
            move_dir: self.wander,
            aim: 0.0,
            fire: false,
        }
    }
}

fn wrap_angle(a: f32) -> f32 {
    use std::f32::consts::{PI, TAU};
    let w = (a + PI).rem_euclid(TAU) - PI;
    w.clamp(-PI, PI)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EntityState;
    use tickwire_game::Record;
    use tickwire_game::protocol::{NetId, Tick};

    fn player(id: u32, owner: u32, x: f32) -> EntityState {
        EntityState::quantise(
            NetId(id),
            EntityKind::Player,
            Some(PlayerId(owner)),
            Vec2::new(x, 500.0),
            Vec2::ZERO,
            0.0,
            100.0,
        )
    }

    #[test]
    fn bots_chase_aim_and_fire_at_the_nearest_player() {
        let world = arena::capture(
            Tick(1),
            [
                player(1, 1, 100.0),
                player(2, 2, 400.0),
                player(3, 3, 900.0),
            ],
        );
        let mut brain = Brain::new(1);
        let act = brain.act(PlayerId(1), &world);
        assert!(act.move_dir.x > 0.9);
        assert!(act.aim.abs() < 0.1);
        assert!(act.fire);
        let far = brain.act(PlayerId(3), &world);
        assert!(!far.fire);
        assert!(far.move_dir.x < -0.9);
        for a in [act, far] {
            assert!(a.move_dir.length() <= 1.0 + 1e-4);
            assert!(a.to_slots().is_ok(), "within the declared input");
        }
    }
}
