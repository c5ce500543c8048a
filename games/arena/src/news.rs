//! What the arena tells everyone in the room as game messages (the schema's
//! `messages.toPlayer`): a kill feed. Scores and results travel as the room's own events.

use tickwire_game::Messages;
use tickwire_game::protocol::PlayerId;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Messages)]
pub enum ArenaNews {
    /// `killer`'s projectile killed the player `victim` (drones killed are not told).
    Kill {
        #[tw(int(0, 4294967295))]
        killer: u32,
        #[tw(int(0, 4294967295))]
        victim: u32,
    },
}

impl ArenaNews {
    pub fn kill(killer: PlayerId, victim: PlayerId) -> ArenaNews {
        ArenaNews::Kill {
            killer: killer.0,
            victim: victim.0,
        }
    }
}
