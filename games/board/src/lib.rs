//! `board`: four in a row, a game nothing like a shooter, on the same public game API. Two
//! players take turns dropping a disc into one of seven columns; four in a line (across, down
//! or diagonal) wins, a full board is a draw.
//!
//! - The state is room-level: one `board` entity holds the 42 cells, whose turn it is, who
//!   plays which colour, the winner and the move count. It replicates like any entity.
//! - Players send no per-tick input ([`Game::Input`] is `()`); a move is a typed message,
//!   [`ToRoom::Drop`] (or [`ToRoom::Resign`]), which the game validates: not your turn, a full
//!   column or no match running are refused with a reason the player is told.
//! - The room tells the player to move [`ToPlayer::YourTurn`], to that player alone.
//! - Lobbies, ready-up and results are the room's: a match starts when both are ready and ends
//!   with a [`MatchResult`] naming the winner. A room has two seats ([`Game::max_players`]);
//!   anyone may spectate.
//!
//! It has no AI, so its rooms refuse server bots.

use std::sync::{Arc, OnceLock};
use tickwire_game::hecs::World;
use tickwire_game::protocol::schema::{Field, FieldType, Kind};
use tickwire_game::protocol::{
    Capture, Head, MatchResult, NetId, PlayerId, PlayerScore, RoomEvent, Schema,
};
use tickwire_game::{Game, GameMode, Joiner, Messages, Outbox, TickInput};

pub const COLUMNS: usize = 7;
pub const ROWS: usize = 6;
const CELLS: usize = COLUMNS * ROWS;
/// The board's net id: the one entity of the room.
pub const BOARD: NetId = NetId(1);

/// What a cell holds, and the two sides.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Disc {
    #[default]
    Empty = 0,
    Red = 1,
    Yellow = 2,
}

impl Disc {
    fn other(self) -> Disc {
        match self {
            Disc::Red => Disc::Yellow,
            Disc::Yellow => Disc::Red,
            Disc::Empty => Disc::Empty,
        }
    }

    fn from_slot(q: u32) -> Disc {
        match q {
            1 => Disc::Red,
            2 => Disc::Yellow,
            _ => Disc::Empty,
        }
    }
}

/// What a player sends the room.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Messages)]
pub enum ToRoom {
    /// Drops a disc into `column` (0 to 6).
    Drop {
        #[tw(int(0, 6))]
        column: u8,
    },
    /// Gives the match up: the other player wins.
    Resign,
}

/// What the room tells a player.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Messages)]
pub enum ToPlayer {
    /// It is this player's move; `moves` discs are on the board.
    YourTurn {
        #[tw(int(0, 42))]
        moves: u8,
    },
}

/// The board's fields, in capture order: the cells row by row from the bottom (`r0c0` is the
/// bottom left), then `turn`, `red`, `yellow` (the players' ids, 0 for none), `winner` and
/// `moves`.
pub fn schema() -> Arc<Schema> {
    static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let disc = FieldType::Enum {
                variants: vec!["empty".into(), "red".into(), "yellow".into()],
            };
            let player = FieldType::Int {
                min: 0,
                max: u32::MAX as i64,
            };
            let mut fields: Vec<Field> = (0..CELLS)
                .map(|i| Field::new(cell_name(i), disc.clone(), 1))
                .collect();
            fields.extend([
                Field::new("turn", disc.clone(), 1),
                Field::new("red", player.clone(), 1),
                Field::new("yellow", player, 1),
                Field::new(
                    "winner",
                    FieldType::Enum {
                        variants: vec!["none".into(), "red".into(), "yellow".into(), "draw".into()],
                    },
                    1,
                ),
                Field::new(
                    "moves",
                    FieldType::Int {
                        min: 0,
                        max: CELLS as i64,
                    },
                    1,
                ),
            ]);
            let schema = tickwire_game::declare::<Board>(vec![Kind::new("board", fields)]);
            Arc::new(schema.expect("the board schema is well formed"))
        })
        .clone()
}

fn cell_name(i: usize) -> String {
    format!("r{}c{}", i / COLUMNS, i % COLUMNS)
}

/// How a match ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Won(Disc),
    Draw,
}

/// Four in a row.
pub struct Board {
    cells: [Disc; CELLS],
    turn: Disc,
    red: Option<PlayerId>,
    yellow: Option<PlayerId>,
    seated: Vec<(PlayerId, String)>,
    outcome: Option<Outcome>,
    moves: u8,
    playing: bool,
    match_no: u32,
    /// A player of the running match left: the other wins at the next step.
    forfeit: Option<Disc>,
}

impl GameMode for Board {
    type Config = ();

    fn new_room(_: &(), _: u64) -> Board {
        Board {
            cells: [Disc::Empty; CELLS],
            turn: Disc::Empty,
            red: None,
            yellow: None,
            seated: Vec::new(),
            outcome: None,
            moves: 0,
            playing: false,
            match_no: 0,
            forfeit: None,
        }
    }
}

impl Board {
    fn side(&self, player: PlayerId) -> Disc {
        if self.red == Some(player) {
            Disc::Red
        } else if self.yellow == Some(player) {
            Disc::Yellow
        } else {
            Disc::Empty
        }
    }

    fn player(&self, side: Disc) -> Option<PlayerId> {
        match side {
            Disc::Red => self.red,
            Disc::Yellow => self.yellow,
            Disc::Empty => None,
        }
    }

    fn cell(&self, row: usize, column: usize) -> Disc {
        self.cells[row * COLUMNS + column]
    }

    /// Whether the disc at (row, column) makes four in a line.
    fn wins(&self, row: usize, column: usize) -> bool {
        let disc = self.cell(row, column);
        [(0, 1), (1, 0), (1, 1), (1, -1)].iter().any(|&(dr, dc)| {
            let run = |sign: i32| {
                (1..4)
                    .take_while(|k| {
                        let r = row as i32 + sign * k * dr;
                        let c = column as i32 + sign * k * dc;
                        (0..ROWS as i32).contains(&r)
                            && (0..COLUMNS as i32).contains(&c)
                            && self.cell(r as usize, c as usize) == disc
                    })
                    .count()
            };
            1 + run(1) + run(-1) >= 4
        })
    }

    fn finish(&mut self, outcome: Outcome, out: &mut Outbox<ToPlayer>) {
        self.outcome = Some(outcome);
        self.playing = false;
        self.turn = Disc::Empty;
        let winner = match outcome {
            Outcome::Won(side) => self.player(side),
            Outcome::Draw => None,
        };
        let players = self
            .seated
            .iter()
            .filter(|(p, _)| self.side(*p) != Disc::Empty)
            .map(|(p, name)| PlayerScore::new(*p, name.clone(), i32::from(winner == Some(*p))))
            .collect();
        out.event(RoomEvent::MatchEnded(MatchResult {
            match_no: self.match_no,
            winner,
            players,
        }));
    }

    fn tell_turn(&self, out: &mut Outbox<ToPlayer>) {
        if let Some(p) = self.player(self.turn) {
            out.tell(p, ToPlayer::YourTurn { moves: self.moves });
        }
    }

    /// Plays `column` for `player`, or says why not.
    fn drop_disc(
        &mut self,
        player: PlayerId,
        column: usize,
        out: &mut Outbox<ToPlayer>,
    ) -> Result<(), String> {
        if !self.playing {
            return Err("no match is running".into());
        }
        let side = self.side(player);
        if side == Disc::Empty {
            return Err("you are watching this match".into());
        }
        if side != self.turn {
            return Err("not your turn".into());
        }
        let row = (0..ROWS)
            .find(|&r| self.cell(r, column) == Disc::Empty)
            .ok_or_else(|| format!("column {column} is full"))?;
        self.cells[row * COLUMNS + column] = side;
        self.moves += 1;
        if self.wins(row, column) {
            self.finish(Outcome::Won(side), out);
        } else if self.moves as usize == CELLS {
            self.finish(Outcome::Draw, out);
        } else {
            self.turn = side.other();
            self.tell_turn(out);
        }
        Ok(())
    }
}

impl Game for Board {
    type Input = ();
    type ToRoom = ToRoom;
    type ToPlayer = ToPlayer;

    fn min_players(&self) -> usize {
        2
    }

    fn max_players(&self) -> Option<u8> {
        Some(2)
    }

    fn add_player(
        &mut self,
        _world: &mut World,
        player: PlayerId,
        who: &Joiner<'_>,
    ) -> Result<NetId, String> {
        if self.seated.len() >= 2 {
            return Err("the board seats two; spectate to watch".into());
        }
        self.seated.push((player, who.name.to_owned()));
        // Players own no entity; the board is the room's.
        Ok(NetId(0))
    }

    fn remove_player(&mut self, _world: &mut World, player: PlayerId) {
        self.seated.retain(|(p, _)| *p != player);
        let side = self.side(player);
        if self.playing && side != Disc::Empty {
            self.forfeit = Some(side);
        }
    }

    fn start_match(&mut self, _world: &mut World, out: &mut Outbox<ToPlayer>) {
        self.match_no += 1;
        self.cells = [Disc::Empty; CELLS];
        self.moves = 0;
        self.outcome = None;
        self.forfeit = None;
        // The longest seated play, and red (who starts) alternates from match to match.
        let mut players = self.seated.iter().map(|(p, _)| *p);
        let (first, second) = (players.next(), players.next());
        (self.red, self.yellow) = if self.match_no % 2 == 1 {
            (first, second)
        } else {
            (second, first)
        };
        self.turn = Disc::Red;
        self.playing = true;
        out.event(RoomEvent::MatchStarted {
            match_no: self.match_no,
        });
        self.tell_turn(out);
    }

    fn abort_match(&mut self, _world: &mut World) {
        self.playing = false;
        self.turn = Disc::Empty;
    }

    fn step(
        &mut self,
        _world: &mut World,
        _inputs: &[(PlayerId, TickInput<()>)],
        _dt: f32,
        out: &mut Outbox<ToPlayer>,
    ) {
        if let Some(side) = self.forfeit.take()
            && self.playing
        {
            self.finish(Outcome::Won(side.other()), out);
        }
    }

    fn message(
        &mut self,
        _world: &mut World,
        player: PlayerId,
        message: ToRoom,
        out: &mut Outbox<ToPlayer>,
    ) -> Result<(), String> {
        match message {
            ToRoom::Drop { column } => self.drop_disc(player, column as usize, out),
            ToRoom::Resign => {
                let side = self.side(player);
                if !self.playing || side == Disc::Empty {
                    return Err("you are not playing a match".into());
                }
                self.finish(Outcome::Won(side.other()), out);
                Ok(())
            }
        }
    }

    fn schema(&self) -> Arc<Schema> {
        schema()
    }

    fn capture(&self, _world: &World, out: &mut Capture) {
        let mut slots: Vec<u32> = self.cells.iter().map(|&d| d as u32).collect();
        let winner = match self.outcome {
            None => 0,
            Some(Outcome::Won(side)) => side as u32,
            Some(Outcome::Draw) => 3,
        };
        slots.extend([
            self.turn as u32,
            self.red.map_or(0, |p| p.0),
            self.yellow.map_or(0, |p| p.0),
            winner,
            self.moves as u32,
        ]);
        let head = Head {
            id: BOARD,
            kind: 0,
            owner: None,
        };
        out.push(head, &slots);
    }
}

/// The board as a client sees it in a snapshot's `board` entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardView {
    pub cells: [Disc; CELLS],
    pub turn: Disc,
    pub red: Option<PlayerId>,
    pub yellow: Option<PlayerId>,
    pub moves: u8,
}

impl BoardView {
    /// Reads the board entity's slots (see [`schema`]).
    pub fn from_slots(slots: &[u32]) -> Option<BoardView> {
        if slots.len() < CELLS + 5 {
            return None;
        }
        let mut cells = [Disc::Empty; CELLS];
        for (cell, &q) in cells.iter_mut().zip(slots) {
            *cell = Disc::from_slot(q);
        }
        let player = |q: u32| (q != 0).then_some(PlayerId(q));
        Some(BoardView {
            cells,
            turn: Disc::from_slot(slots[CELLS]),
            red: player(slots[CELLS + 1]),
            yellow: player(slots[CELLS + 2]),
            moves: slots[CELLS + 4] as u8,
        })
    }

    pub fn cell(&self, row: usize, column: usize) -> Disc {
        self.cells[row * COLUMNS + column]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_game::protocol::{Snapshot, Tick};

    fn started() -> (Board, World, Outbox<ToPlayer>) {
        let mut board = Board::new_room(&(), 0);
        let mut world = World::new();
        board
            .add_player(&mut world, PlayerId(1), &Joiner::named("ada"))
            .unwrap();
        board
            .add_player(&mut world, PlayerId(2), &Joiner::named("bo"))
            .unwrap();
        let mut out = Outbox::default();
        board.start_match(&mut world, &mut out);
        (board, world, out)
    }

    fn play(board: &mut Board, world: &mut World, out: &mut Outbox<ToPlayer>, p: u32, c: u8) {
        board
            .message(world, PlayerId(p), ToRoom::Drop { column: c }, out)
            .unwrap();
    }

    #[test]
    fn turns_alternate_and_bad_moves_are_refused_with_a_reason() {
        let (mut board, mut world, mut out) = started();
        let drop = |c| ToRoom::Drop { column: c };
        let refused = |board: &mut Board, world: &mut World, out: &mut Outbox<_>, p, c| {
            board.message(world, PlayerId(p), drop(c), out).unwrap_err()
        };
        assert_eq!(
            refused(&mut board, &mut world, &mut out, 2, 0),
            "not your turn"
        );
        for _ in 0..3 {
            play(&mut board, &mut world, &mut out, 1, 0);
            play(&mut board, &mut world, &mut out, 2, 0);
        }
        assert_eq!(
            refused(&mut board, &mut world, &mut out, 1, 0),
            "column 0 is full"
        );
        assert!(
            board
                .add_player(&mut world, PlayerId(3), &Joiner::named("cy"))
                .is_err()
        );
        assert_eq!(
            refused(&mut board, &mut world, &mut out, 3, 1),
            "you are watching this match"
        );
        let (_, told) = out.take();
        let turns: Vec<_> = told.collect();
        assert_eq!(
            turns[0],
            (Some(PlayerId(1)), ToPlayer::YourTurn { moves: 0 })
        );
        assert_eq!(turns.len(), 7, "one turn told per move, and the first");
    }

    #[test]
    fn four_in_a_line_wins_across_down_and_diagonally() {
        // Red plays columns 0..3 on the bottom row; yellow stacks on top of them.
        let (mut board, mut world, mut out) = started();
        for c in 0..3 {
            play(&mut board, &mut world, &mut out, 1, c);
            play(&mut board, &mut world, &mut out, 2, c);
        }
        play(&mut board, &mut world, &mut out, 1, 3);
        assert!(out.match_ended());
        assert_eq!(board.outcome, Some(Outcome::Won(Disc::Red)));
        let ended = out.events().iter().find_map(|e| match e {
            RoomEvent::MatchEnded(r) => Some(r.clone()),
            _ => None,
        });
        assert_eq!(ended.unwrap().winner, Some(PlayerId(1)));

        // A diagonal for red: (0,0) (1,1) (2,2) (3,3).
        let (mut board, mut world, mut out) = started();
        for (p, c) in [
            (1, 0),
            (2, 1),
            (1, 1),
            (2, 2),
            (1, 3),
            (2, 2),
            (1, 2),
            (2, 3),
            (1, 6),
            (2, 3),
            (1, 3),
        ] {
            play(&mut board, &mut world, &mut out, p, c);
        }
        assert_eq!(board.outcome, Some(Outcome::Won(Disc::Red)));
    }

    #[test]
    fn leaving_or_resigning_gives_the_match_away_and_the_board_replicates() {
        let (mut board, mut world, mut out) = started();
        play(&mut board, &mut world, &mut out, 1, 4);
        let mut capture = Capture::new(schema().stride());
        board.capture(&world, &mut capture);
        let snapshot = Snapshot::capture(capture, Tick(1));
        let view = BoardView::from_slots(snapshot.get(BOARD).unwrap().values).unwrap();
        assert_eq!(view.cell(0, 4), Disc::Red);
        assert_eq!(
            (view.turn, view.red, view.moves),
            (Disc::Yellow, Some(PlayerId(1)), 1)
        );

        board.remove_player(&mut world, PlayerId(2));
        board.step(&mut world, &[], 1.0 / 60.0, &mut out);
        assert_eq!(board.outcome, Some(Outcome::Won(Disc::Red)));

        let (mut board, mut world, mut out) = started();
        board
            .message(&mut world, PlayerId(2), ToRoom::Resign, &mut out)
            .unwrap();
        assert_eq!(board.outcome, Some(Outcome::Won(Disc::Red)));
        assert!(
            board
                .message(&mut world, PlayerId(2), ToRoom::Resign, &mut out)
                .is_err()
        );
    }
}
