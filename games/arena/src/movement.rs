//! The movement rules of the arena, shared so a client can predict its own player exactly as
//! the server moves it.

use tickwire_game::glam::Vec2;

/// The arena is the square [0, ARENA_SIZE] × [0, ARENA_SIZE].
pub const ARENA_SIZE: f32 = 1000.0;
pub const PLAYER_RADIUS: f32 = 16.0;
/// Units per second at full stick.
pub const PLAYER_SPEED: f32 = 220.0;
pub const PROJECTILE_RADIUS: f32 = 4.0;
pub const PROJECTILE_SPEED: f32 = 600.0;
pub const DRONE_RADIUS: f32 = 14.0;
pub const DRONE_SPEED: f32 = 80.0;

/// Keeps a circle of `radius` inside the arena.
pub fn clamp_to_arena(pos: Vec2, radius: f32) -> Vec2 {
    pos.clamp(Vec2::splat(radius), Vec2::splat(ARENA_SIZE - radius))
}

/// One fixed step of a living player: returns the new position and the velocity it moved with.
/// `move_dir` longer than 1 is shortened to 1. Walking into a wall stops that axis.
pub fn step_player(pos: Vec2, move_dir: Vec2, dt: f32) -> (Vec2, Vec2) {
    let wanted = move_dir.clamp_length_max(1.0) * PLAYER_SPEED;
    let new_pos = clamp_to_arena(pos + wanted * dt, PLAYER_RADIUS);
    let vel = if dt > 0.0 {
        (new_pos - pos) / dt
    } else {
        Vec2::ZERO
    };
    (new_pos, vel)
}

/// The unit vector of an aim angle.
pub fn aim_dir(aim: f32) -> Vec2 {
    Vec2::from_angle(aim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn players_move_and_stop_at_walls() {
        let dt = 1.0 / 60.0;
        let (p, v) = step_player(Vec2::new(500.0, 500.0), Vec2::X, dt);
        assert!((p.x - (500.0 + PLAYER_SPEED * dt)).abs() < 1e-3);
        assert!((v.x - PLAYER_SPEED).abs() < 1e-2);
        let (p, v) = step_player(Vec2::new(ARENA_SIZE - PLAYER_RADIUS, 500.0), Vec2::X, dt);
        assert_eq!(p.x, ARENA_SIZE - PLAYER_RADIUS);
        assert_eq!(v.x, 0.0);
        let (_, v) = step_player(Vec2::new(500.0, 500.0), Vec2::new(3.0, 4.0), dt);
        assert!((v.length() - PLAYER_SPEED).abs() < 1e-2);
    }
}
