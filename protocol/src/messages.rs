//! Control messages: the reliable, request/reply part of the protocol (QUIC control stream).
//!
//! A client sends [`ClientFrame`]s, each a [`Request`] with an id; the server answers each with a
//! [`ServerFrame::Reply`] carrying the same id, and pushes [`ServerFrame::Event`]s on its own.

use crate::ids::{NetId, PlayerId, RoomId};
use crate::schema::Schema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest player or room name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest mode name, in characters.
pub const MAX_MODE_CHARS: usize = 32;
/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 200;
/// Most schema hashes a hello may name.
pub const MAX_KNOWN_SCHEMAS: usize = 16;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientFrame {
    /// Chosen by the client; echoed in the reply.
    pub id: u32,
    pub request: Request,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Must be the first request on a connection.
    Hello {
        protocol: u16,
        name: String,
        token: Option<String>,
        /// Hashes of the schemas this client holds ([`Schema::hash`], at most
        /// [`MAX_KNOWN_SCHEMAS`]): a join into a room of one of them carries only the hash.
        schemas: Vec<String>,
        /// A ticket from the game's backend that names the player (a JWT), for a server that
        /// asks for one; ignored by a server that does not.
        ticket: Option<String>,
    },
    ListRooms {
        mode: Option<String>,
        /// Only rooms with a free seat whose match has not started.
        open_only: bool,
    },
    CreateRoom(CreateRoom),
    JoinRoom {
        room: RoomId,
    },
    /// Join an open room of this mode, or create one. An empty mode (here and in
    /// [`CreateRoom`]) is the server's default mode.
    QuickJoin {
        mode: String,
    },
    LeaveRoom,
    /// Echoed back as [`Reply::Pong`]; the client measures the round trip.
    Ping {
        client_time_us: u64,
    },
    /// Marks the player ready (or not) in its room; answered with [`Reply::Done`].
    SetReady {
        ready: bool,
    },
    /// Says something to everyone in the room; answered with [`Reply::Done`].
    Chat {
        text: String,
    },
    /// Joins a private room by the code its creator shares.
    JoinByCode {
        code: String,
    },
    /// The room's owner starts the countdown without waiting for everyone to be ready.
    StartMatch,
    /// Watch a room: snapshots and events, no entity, no seat; allowed while a match runs.
    /// A private room is watched by its code.
    Spectate {
        room: Option<RoomId>,
        code: Option<String>,
    },
    /// A game message to the room: the index of one of the schema's `messages.toRoom` kinds
    /// and its slots. Answered with [`Reply::Done`] once the game took it, or `refused` with
    /// the game's reason.
    Message {
        kind: u16,
        slots: Vec<u32>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRoom {
    pub name: String,
    pub mode: String,
    pub max_players: u8,
    pub private: bool,
    /// AI players the server adds to the room; they take seats and are always ready.
    pub bots: u8,
    /// At each match start, fill the seats still empty with AI players, who leave again when
    /// the match is over.
    pub fill_bots: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServerFrame {
    Reply {
        id: u32,
        result: Result<Reply, ErrorBody>,
    },
    Event(RoomEvent),
    /// A protocol error not tied to one request (an unreadable frame, say).
    Error(ErrorBody),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    Welcome(Welcome),
    Rooms(Vec<RoomInfo>),
    Joined(Joined),
    Left,
    Pong {
        client_time_us: u64,
    },
    /// The request was carried out and has nothing else to say.
    Done,
    /// The room is hosted by another node: its seat is held there for the [`Moved::token`].
    /// Answers a join, a quick join, a create or a hello with a reconnect token.
    Moved(Moved),
}

/// Where a node takes its players (docs/PROTOCOL.md, "Nodes").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddress {
    /// The node's host name or IP; `None`: the host this client already talks to (another
    /// node of the same machine).
    pub host: Option<String>,
    pub quic_port: u16,
    /// The node's HTTP (Socket.IO) port.
    pub http_port: u16,
    /// Hex SHA-256 of that node's own QUIC certificate, for the client to pin.
    pub cert_sha256: String,
}

/// A seat reserved on another node: connect to it and say hello with `token`, which only that
/// node accepts; after `expires_ms` the seat is given up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub node: NodeAddress,
    pub token: String,
    pub expires_ms: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub player: PlayerId,
    pub protocol: u16,
    pub tick_rate: u16,
    pub snapshot_rate: u16,
    /// Set when the hello carried a valid reconnect token: the player is back in its seat, with
    /// its entity, and snapshots start again from a full one.
    pub resumed: Option<Joined>,
    /// Set when the hello carried a reconnect token whose seat is gone (its room closed, its
    /// node stopped, or the seat was given up): `room_lost`. The player is welcomed afresh.
    pub lost: Option<ErrorBody>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub room: RoomInfo,
    pub player: PlayerId,
    /// The player's own entity in the room (0 for a spectator).
    pub entity: NetId,
    pub reconnect_token: String,
    /// The private room's join code (None for public rooms).
    pub code: Option<String>,
    /// The room's replicated schema, which its snapshots follow (filled in by the room); left
    /// out when the client's hello named its hash. On every transport it travels in its JSON
    /// form (docs/PROTOCOL.md, "Schemas").
    #[serde(with = "schema_as_json")]
    pub schema: Option<Arc<Schema>>,
    /// [`Schema::hash`] of the room's schema, always.
    pub schema_hash: String,
}

/// A schema inside a bincode message: its JSON text, the one encoding of a schema.
mod schema_as_json {
    use super::Schema;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(s: &Option<Arc<Schema>>, out: S) -> Result<S::Ok, S::Error> {
        let text = s
            .as_ref()
            .map(|s| serde_json::to_string(&**s).map_err(serde::ser::Error::custom))
            .transpose()?;
        text.serialize(out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<Schema>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            serde_json::from_str(&t)
                .map(Arc::new)
                .map_err(D::Error::custom)
        })
        .transpose()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub id: RoomId,
    pub name: String,
    pub mode: String,
    pub players: u8,
    pub max_players: u8,
    pub state: RoomState,
    pub private: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoomState {
    /// Between matches: players gather and get ready.
    Waiting,
    /// Everyone is ready (or the owner started): the match begins when it runs out.
    Countdown,
    Playing,
    /// A match just ended; the room shows the results, then waits again.
    Finished,
}

impl RoomState {
    pub fn parse(s: &str) -> Option<RoomState> {
        [
            RoomState::Waiting,
            RoomState::Countdown,
            RoomState::Playing,
            RoomState::Finished,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RoomState::Waiting => "waiting",
            RoomState::Countdown => "countdown",
            RoomState::Playing => "playing",
            RoomState::Finished => "finished",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RoomEvent {
    PlayerJoined {
        player: PlayerId,
        name: String,
    },
    PlayerLeft {
        player: PlayerId,
    },
    MatchStarted {
        match_no: u32,
    },
    MatchEnded(MatchResult),
    /// The room closed; the player is no longer in it.
    RoomClosed,
    PlayerReady {
        player: PlayerId,
        ready: bool,
    },
    Chat {
        player: PlayerId,
        name: String,
        text: String,
    },
    /// The player's connection dropped; its seat and entity wait `grace_secs` for it to come
    /// back with its reconnect token, then it leaves.
    PlayerDisconnected {
        player: PlayerId,
        grace_secs: u32,
    },
    /// The room's lifecycle moved; `seconds` is what is left of a countdown or results pause.
    StateChanged {
        state: RoomState,
        seconds: u32,
    },
    /// A game message from the room, to this player alone or to everyone in the room: the
    /// index of one of the schema's `messages.toPlayer` kinds and its slots.
    Message {
        kind: u16,
        slots: Vec<u32>,
    },
    /// The player's seat was resumed with its reconnect token from another connection: this
    /// one is no longer the player's and the server closes it after this event.
    SeatTaken,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchResult {
    pub match_no: u32,
    pub winner: Option<PlayerId>,
    pub players: Vec<PlayerScore>,
}

/// One player's line of a match result: the score the game ranks by, and whatever else the
/// game counts, by the game's own names (the arena's kills and deaths).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerScore {
    pub player: PlayerId,
    pub name: String,
    pub score: i32,
    pub stats: BTreeMap<String, i64>,
}

impl PlayerScore {
    pub fn new(player: PlayerId, name: impl Into<String>, score: i32) -> PlayerScore {
        PlayerScore {
            player,
            name: name.into(),
            score,
            stats: BTreeMap::new(),
        }
    }

    /// The same line with one more of the game's counts.
    pub fn with(mut self, stat: impl Into<String>, value: i64) -> PlayerScore {
        self.stats.insert(stat.into(), value);
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// Short, stable error codes; `as_str` is what JSON clients see.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    BadRequest,
    VersionMismatch,
    NotWelcomed,
    NotFound,
    RoomFull,
    AlreadyInRoom,
    NotInRoom,
    UnknownMode,
    FrameTooLarge,
    ServerFull,
    RateLimited,
    Internal,
    BadCode,
    MatchInProgress,
    NotOwner,
    /// The game turned a message or a seat down (not your turn, a full column, a full board):
    /// its reason says why.
    Refused,
    /// The server asks for a ticket and this one is missing, expired or not signed by the
    /// game's backend; or a seat was asked back by a player it does not belong to.
    Unauthorized,
    /// The room a reconnect token or a seat reservation named is gone: its node stopped, the
    /// room closed, or the seat was given up.
    RoomLost,
    /// Another node did not answer in time. Asked again on the same connection, the same call
    /// is carried out once.
    Timeout,
}

impl ErrorCode {
    const ALL: [ErrorCode; 19] = [
        ErrorCode::BadRequest,
        ErrorCode::VersionMismatch,
        ErrorCode::NotWelcomed,
        ErrorCode::NotFound,
        ErrorCode::RoomFull,
        ErrorCode::AlreadyInRoom,
        ErrorCode::NotInRoom,
        ErrorCode::UnknownMode,
        ErrorCode::FrameTooLarge,
        ErrorCode::ServerFull,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::BadCode,
        ErrorCode::MatchInProgress,
        ErrorCode::NotOwner,
        ErrorCode::Refused,
        ErrorCode::Unauthorized,
        ErrorCode::RoomLost,
        ErrorCode::Timeout,
    ];

    pub fn parse(s: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::NotWelcomed => "not_welcomed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::AlreadyInRoom => "already_in_room",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::UnknownMode => "unknown_mode",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::BadCode => "bad_code",
            ErrorCode::MatchInProgress => "match_in_progress",
            ErrorCode::NotOwner => "not_owner",
            ErrorCode::Refused => "refused",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RoomLost => "room_lost",
            ErrorCode::Timeout => "timeout",
        }
    }
}

/// Characters that show nothing or reorder what follows them, removed from names and chat
/// before anything else is checked: bidirectional controls (a right-to-left override makes a
/// name read backwards), zero-width characters and joiners, the byte-order mark, soft hyphens,
/// the Hangul fillers (blank, but letters to every other rule), tag characters, line and
/// paragraph separators. A zero-width joiner goes too, so an emoji family shows as its members.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Text as the server keeps it: Unicode NFC, without [`invisible`] characters, trimmed.
/// Refused when it holds a control character or nothing visible is left.
fn normalise(text: &str, what: &str, max: usize) -> Result<String, ErrorBody> {
    use unicode_normalization::UnicodeNormalization;
    let bad = |why: String| Err(ErrorBody::new(ErrorCode::BadRequest, why));
    if text.chars().any(char::is_control) {
        return bad(format!("{what} must not hold control characters"));
    }
    let kept: String = text.nfc().filter(|&c| !invisible(c)).collect();
    let kept = kept.trim();
    let chars = kept.chars().count();
    if chars == 0 {
        return bad(format!("{what} must hold something visible"));
    }
    if chars > max {
        return bad(format!("{what} must be 1 to {max} characters"));
    }
    Ok(kept.to_string())
}

/// A player or room name as the server keeps it ([`normalise`]): 1 to [`MAX_NAME_CHARS`]
/// visible characters.
pub fn normalise_name(name: &str) -> Result<String, ErrorBody> {
    normalise(name, "name", MAX_NAME_CHARS)
}

/// Checks a player or room name ([`normalise_name`]) without keeping the result.
pub fn validate_name(name: &str) -> Result<(), ErrorBody> {
    normalise_name(name).map(|_| ())
}

/// Checks the schema hashes of a hello: at most [`MAX_KNOWN_SCHEMAS`], each 16 hex digits.
pub fn validate_schema_hashes(hashes: &[String]) -> Result<(), ErrorBody> {
    let well_formed = |h: &String| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit());
    if hashes.len() > MAX_KNOWN_SCHEMAS || !hashes.iter().all(well_formed) {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            format!("schemas: at most {MAX_KNOWN_SCHEMAS} hashes of 16 hex digits"),
        ));
    }
    Ok(())
}

/// A chat message as the room shows it ([`normalise`]): 1 to [`MAX_CHAT_CHARS`] visible
/// characters.
pub fn normalise_chat(text: &str) -> Result<String, ErrorBody> {
    normalise(text, "chat text", MAX_CHAT_CHARS)
}

/// Checks a chat message ([`normalise_chat`]) without keeping the result.
pub fn validate_chat(text: &str) -> Result<(), ErrorBody> {
    normalise_chat(text).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("ada").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("   ").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(validate_name(&"é".repeat(MAX_NAME_CHARS)).is_ok());
    }

    /// What an attacker tried: text that renders as nothing, or reorders what follows it.
    #[test]
    fn invisible_and_reordering_text_is_refused_or_removed() {
        for blank in [
            "\u{200B}",
            "\u{3164}",
            "\u{FEFF}",
            "\u{202E}",
            "\u{2028}",
            " \u{200D} ",
            "\u{115F}\u{1160}",
        ] {
            assert!(normalise_name(blank).is_err(), "{blank:?}");
            assert!(normalise_chat(blank).is_err(), "{blank:?}");
        }
        assert!(normalise_chat("     ").is_err(), "chat of spaces only");
        assert_eq!(normalise_name("\u{202E}ada\u{202C}").unwrap(), "ada");
        assert_eq!(normalise_name("  a\u{200B}da ").unwrap(), "ada");
        // NFC: a decomposed é becomes the one character, so two spellings are one name.
        assert_eq!(normalise_name("e\u{301}").unwrap(), "\u{E9}");
        assert_eq!(normalise_chat("gg \u{1F44D}").unwrap(), "gg \u{1F44D}");
        assert!(normalise_chat("a\u{7}b").is_err(), "control characters");
        // The limit counts what is kept.
        let padded = format!("{}{}", "\u{200B}".repeat(40), "x".repeat(MAX_NAME_CHARS));
        assert_eq!(
            normalise_name(&padded).unwrap().chars().count(),
            MAX_NAME_CHARS
        );
    }
}
