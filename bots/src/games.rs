//! The games the bots can play: for each mode, the schema its snapshots decode with and the
//! game's own AI. The bots know no game's fields; they take both from the game's crate and
//! send what the AI does as the game's declared input.

use anyhow::bail;
use std::sync::Arc;
use tickwire_game::{Bot, Record};
use tickwire_protocol::{PlayerId, RecordError, Schema, Snapshot};

/// A game's AI with its input as slots, so the bots drive any game the same way.
pub trait Ai: Send {
    fn act(&mut self, me: PlayerId, view: &Snapshot) -> Result<Vec<u32>, RecordError>;
}

impl<I: Record> Ai for Box<dyn Bot<I>> {
    fn act(&mut self, me: PlayerId, view: &Snapshot) -> Result<Vec<u32>, RecordError> {
        self.as_mut().act(me, view).to_slots()
    }
}

/// One mode as the bots play it.
#[derive(Clone)]
pub struct Playbook {
    /// The schema the game's rooms declare: a join into a room of another is refused.
    pub schema: Arc<Schema>,
    bot: fn(u64) -> Box<dyn Ai>,
}

impl Playbook {
    /// The game's AI for the bot seeded `seed`.
    pub fn bot(&self, seed: u64) -> Box<dyn Ai> {
        (self.bot)(seed)
    }
}

fn ai<I: Record + 'static>(bot: impl Bot<I> + 'static) -> Box<dyn Ai> {
    let bot: Box<dyn Bot<I>> = Box::new(bot);
    Box::new(bot)
}

/// The modes this binary plays: the built-in games.
pub fn playbook(mode: &str) -> anyhow::Result<Playbook> {
    Ok(match mode {
        "arena" => Playbook {
            schema: tickwire_arena::view::schema(),
            bot: |seed| ai(tickwire_arena::Brain::new(seed)),
        },
        "standard" => Playbook {
            schema: tickwire_standard::schema(),
            bot: |seed| ai(tickwire_standard::Walker::new(seed)),
        },
        other => bail!("tickwire-bots does not know how to play mode {other:?} (arena, standard)"),
    })
}
