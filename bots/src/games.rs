//! The games the bots can play: for each mode, the schema its snapshots decode with and the
//! game's own AI ([`tickwire_game::Game::new_bot`]), and how an in-process server hosts it. The bots know no
//! game's fields; they take both from the game's crate and send what the AI does as the game's
//! declared input, so a game of one's own is played by registering it here
//! ([`Games::game`]), as the built-in binary registers the built-in ones.

use anyhow::bail;
use std::sync::Arc;
use tickwire_game::{Bot, GameMode, Record};
use tickwire_protocol::{PlayerId, RecordError, Schema, Snapshot};
use tickwire_server::ServerBuilder;

/// A game's AI with its input as slots, so the bots drive any game the same way.
pub trait Ai: Send {
    fn act(&mut self, me: PlayerId, view: &Snapshot) -> Result<Vec<u32>, RecordError>;
}

impl<I: Record> Ai for Box<dyn Bot<I>> {
    fn act(&mut self, me: PlayerId, view: &Snapshot) -> Result<Vec<u32>, RecordError> {
        self.as_mut().act(me, view).to_slots()
    }
}

type BotFactory = Arc<dyn Fn(u64) -> Option<Box<dyn Ai>> + Send + Sync>;

/// One mode as the bots play it.
#[derive(Clone)]
pub struct Playbook {
    /// The schema the game's rooms declare: a join into a room of another is refused.
    pub schema: Arc<Schema>,
    bot: BotFactory,
}

impl Playbook {
    /// The game's AI for the bot seeded `seed` (None: the game gave none for that seed).
    pub fn bot(&self, seed: u64) -> Option<Box<dyn Ai>> {
        (self.bot)(seed)
    }
}

/// One registered mode: its playbook (None: the game has no AI) and how a local server hosts
/// it.
struct Mode {
    name: String,
    playbook: Option<Playbook>,
    host: Box<dyn Fn(ServerBuilder) -> ServerBuilder + Send + Sync>,
}

/// The modes a bots binary plays, registered like a server's games.
#[derive(Default)]
pub struct Games {
    modes: Vec<Mode>,
}

impl Games {
    pub fn new() -> Games {
        Games::default()
    }

    /// Plays `G` as `mode`, with `config` for an in-process server's rooms (`--local`). The
    /// bots play it with the AI a room of `G` gives ([`tickwire_game::Game::new_bot`]), each bot its own.
    pub fn game<G: GameMode>(mut self, mode: &str, config: G::Config) -> Games {
        let probe = G::new_room(&config, 0);
        let playbook = probe.new_bot(0).is_some().then(|| {
            let for_bots = config.clone();
            Playbook {
                schema: probe.schema(),
                bot: Arc::new(move |seed| {
                    let bot = G::new_room(&for_bots, seed).new_bot(seed)?;
                    Some(Box::new(bot) as Box<dyn Ai>)
                }),
            }
        });
        let name = mode.to_string();
        self.modes.push(Mode {
            name: name.clone(),
            playbook,
            host: Box::new(move |builder| builder.game::<G>(&name, config.clone())),
        });
        self
    }

    /// The first mode registered.
    pub fn default_mode(&self) -> Option<String> {
        self.modes.first().map(|m| m.name.clone())
    }

    /// How the bots play `mode`, or why they cannot.
    pub fn playbook(&self, mode: &str) -> anyhow::Result<Playbook> {
        let Some(found) = self.modes.iter().find(|m| m.name == mode) else {
            let known: Vec<&str> = self.modes.iter().map(|m| m.name.as_str()).collect();
            bail!(
                "these bots do not know how to play mode {mode:?} ({})",
                known.join(", ")
            );
        };
        match &found.playbook {
            Some(playbook) => Ok(playbook.clone()),
            None => bail!("mode {mode:?} has no AI for bots to play it with"),
        }
    }

    /// Registers every mode on an in-process server, the first as its default.
    pub fn host(&self, mut builder: ServerBuilder) -> ServerBuilder {
        for mode in &self.modes {
            builder = (mode.host)(builder);
        }
        builder
    }
}
