//! The games the bots can play: for each mode, the schema its snapshots decode with and the
//! game's own AI. The bots know no game's fields; they take both from the game's crate.

use anyhow::bail;
use std::sync::Arc;
use tickwire_game::Bot;
use tickwire_protocol::Schema;

/// One mode as the bots play it.
#[derive(Clone)]
pub struct Playbook {
    /// The schema the game's rooms declare: a join into a room of another is refused.
    pub schema: Arc<Schema>,
    bot: fn(u64) -> Box<dyn Bot>,
}

impl Playbook {
    /// The game's AI for the bot seeded `seed`.
    pub fn bot(&self, seed: u64) -> Box<dyn Bot> {
        (self.bot)(seed)
    }
}

/// The modes this binary plays: the built-in games.
pub fn playbook(mode: &str) -> anyhow::Result<Playbook> {
    Ok(match mode {
        "arena" => Playbook {
            schema: tickwire_arena::view::schema(),
            bot: |seed| Box::new(tickwire_arena::Brain::new(seed)),
        },
        "standard" => Playbook {
            schema: tickwire_standard::schema(),
            bot: |seed| Box::new(tickwire_standard::Walker::new(seed)),
        },
        other => bail!("tickwire-bots does not know how to play mode {other:?} (arena, standard)"),
    })
}
