//! Who may connect: open (the default, for a local server) or only players holding a ticket
//! that the game's own backend signed.
//!
//! A ticket is a JSON Web Token signed with HS256 under a key the backend and the server
//! share. It must name the player (`sub`, the backend's id for them) and expire (`exp`, Unix
//! seconds); `name`, when present, is the name the player is shown under, in place of the one
//! the client asked for. Every claim reaches the game's join hook as the player's
//! [`Identity`]. The ticket is checked at `Hello` (QUIC) and at the Socket.IO handshake; a
//! refusal is `unauthorized` with the reason.
//!
//! The check is jsonwebtoken's (constant-time signature comparison, `exp` and `nbf` with a
//! few seconds' leeway for clocks apart). Only HS256 is accepted: a ticket that names another
//! algorithm (`none` included) is refused.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::sync::Arc;
use tickwire_game::Identity;
use tickwire_protocol::{ErrorBody, ErrorCode};

/// Shortest key accepted: HS256's own output size. A shorter shared secret is guessable
/// offline from one ticket.
pub const MIN_KEY_BYTES: usize = 32;
/// Longest ticket read; a ticket names a player and a few claims.
pub const MAX_TICKET_BYTES: usize = 4096;
/// How far apart the backend's clock and the server's may be.
const LEEWAY_SECS: u64 = 5;

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the ticket key is {0} bytes; at least {MIN_KEY_BYTES} are needed")]
    TooShort(usize),
    #[error("cannot read the ticket key from {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// What a connection must show to be let in.
#[derive(Clone, Default)]
pub enum Gate {
    /// Anyone, under any name; a ticket sent anyway is ignored.
    #[default]
    Open,
    /// A valid ticket signed with this key.
    Tickets(Arc<Tickets>),
}

pub struct Tickets {
    key: DecodingKey,
    validation: Validation,
}

impl Gate {
    /// A gate that asks for tickets signed with `key`.
    pub fn tickets(key: &[u8]) -> Result<Gate, KeyError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(key.len()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        // An audience is the backend's business: when it sets one, the server does not know
        // which to expect, so it is not checked.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Gate::Tickets(Arc::new(Tickets {
            key: DecodingKey::from_secret(key),
            validation,
        })))
    }

    /// The key in a file: its bytes, less trailing whitespace (an editor's newline).
    pub fn from_key_file(path: &std::path::Path) -> Result<Gate, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Gate::tickets(bytes.trim_ascii_end())
    }

    pub fn requires_tickets(&self) -> bool {
        matches!(self, Gate::Tickets(_))
    }

    /// Lets a connection in: `None` for an open gate, the ticket's identity otherwise.
    pub fn check(&self, ticket: Option<&str>) -> Result<Option<Identity>, ErrorBody> {
        match self {
            Gate::Open => Ok(None),
            Gate::Tickets(tickets) => tickets.verify(ticket).map(Some),
        }
    }
}

impl Tickets {
    fn verify(&self, ticket: Option<&str>) -> Result<Identity, ErrorBody> {
        let refuse = |why: &str| ErrorBody::new(ErrorCode::Unauthorized, why);
        let ticket = ticket.ok_or_else(|| refuse("this server needs a ticket"))?;
        if ticket.len() > MAX_TICKET_BYTES {
            return Err(refuse("the ticket is too long"));
        }
        let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            ticket,
            &self.key,
            &self.validation,
        )
        .map_err(|e| {
            refuse(match e.kind() {
                ErrorKind::ExpiredSignature => "the ticket has expired",
                ErrorKind::ImmatureSignature => "the ticket is not valid yet",
                ErrorKind::InvalidSignature => "the ticket's signature is wrong",
                ErrorKind::InvalidAlgorithm => "the ticket must be signed with HS256",
                ErrorKind::MissingRequiredClaim(_) => "the ticket needs sub and exp",
                _ => "the ticket is malformed",
            })
        })?
        .claims;
        let subject = match claims.get("sub") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(refuse("the ticket's sub must be a non-empty string")),
        };
        let name = match claims.get("name") {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(refuse("the ticket's name must be a string")),
        };
        Ok(Identity {
            subject,
            name,
            claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn ticket(claims: serde_json::Value, key: &[u8]) -> String {
        encode(&Header::default(), &claims, &EncodingKey::from_secret(key)).unwrap()
    }

    fn refusal(gate: &Gate, ticket: Option<&str>) -> String {
        let e = gate.check(ticket).unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthorized);
        e.message
    }

    #[test]
    fn a_good_ticket_names_the_player_and_carries_its_claims() {
        let gate = Gate::tickets(KEY).unwrap();
        let t = ticket(
            json!({"sub": "u-17", "name": "Ada", "exp": now() + 60, "team": "red"}),
            KEY,
        );
        let who = gate.check(Some(&t)).unwrap().unwrap();
        assert_eq!(who.subject, "u-17");
        assert_eq!(who.name.as_deref(), Some("Ada"));
        assert_eq!(who.claims["team"], "red");
        assert!(Gate::Open.check(Some(&t)).unwrap().is_none());
        assert!(Gate::Open.check(None).unwrap().is_none());
    }

    #[test]
    fn bad_tickets_are_refused_with_the_reason() {
        let gate = Gate::tickets(KEY).unwrap();
        let exp = now() + 60;
        assert!(refusal(&gate, None).contains("needs a ticket"));
        let expired = ticket(json!({"sub": "u", "exp": now() - 60}), KEY);
        assert!(refusal(&gate, Some(&expired)).contains("expired"));
        let forged = ticket(
            json!({"sub": "u", "exp": exp}),
            b"another key of thirty-two bytes!",
        );
        assert!(refusal(&gate, Some(&forged)).contains("signature"));
        let no_exp = ticket(json!({"sub": "u"}), KEY);
        assert!(refusal(&gate, Some(&no_exp)).contains("sub and exp"));
        let no_sub = ticket(json!({"exp": exp}), KEY);
        assert!(refusal(&gate, Some(&no_sub)).contains("sub and exp"));
        let number_sub = ticket(json!({"sub": 7, "exp": exp}), KEY);
        assert!(refusal(&gate, Some(&number_sub)).contains("sub"));
        let later = ticket(json!({"sub": "u", "exp": exp, "nbf": now() + 30}), KEY);
        assert!(refusal(&gate, Some(&later)).contains("not valid yet"));
        assert!(refusal(&gate, Some("not.a.jwt")).contains("malformed"));
        assert!(refusal(&gate, Some(&"a".repeat(MAX_TICKET_BYTES + 1))).contains("too long"));
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &json!({"sub": "u", "exp": exp}),
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert!(refusal(&gate, Some(&hs512)).contains("HS256"));
        // An unsigned ticket: header {"alg":"none"}, the claims, no signature.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let unsigned = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(format!(r#"{{"sub":"u","exp":{exp}}}"#))
        );
        assert!(gate.check(Some(&unsigned)).is_err());
    }

    #[test]
    fn a_key_file_is_read_less_its_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("tickwire-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, [KEY, b"\n"].concat()).unwrap();
        let gate = Gate::from_key_file(&path).unwrap();
        let t = ticket(json!({"sub": "u", "exp": now() + 60}), KEY);
        assert!(gate.check(Some(&t)).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            Gate::from_key_file(&path),
            Err(KeyError::Read { .. })
        ));
    }

    #[test]
    fn a_short_key_is_refused() {
        assert!(matches!(
            Gate::tickets(b"short"),
            Err(KeyError::TooShort(5))
        ));
    }
}
