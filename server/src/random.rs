//! The secrets the lobby hands out (private-room codes, reconnect tokens) come from here: the
//! system's secure random source. When it fails the call that needed the secret is refused;
//! nothing ever falls back to something predictable.

use tickwire_protocol::{ErrorBody, ErrorCode};

/// The random source failed; nothing was produced.
#[derive(Debug, thiserror::Error)]
#[error("the system's secure random source failed")]
pub struct Unavailable;

impl From<Unavailable> for ErrorBody {
    fn from(_: Unavailable) -> ErrorBody {
        ErrorBody::new(
            ErrorCode::Internal,
            "the server cannot make a secret right now; try again",
        )
    }
}

/// Where secret bytes come from; the server uses [`SystemRandom`], tests inject failures.
pub trait RandomSource: Send + Sync {
    fn fill(&self, dest: &mut [u8]) -> Result<(), Unavailable>;
}

/// The operating system's secure random source (through ring).
pub struct SystemRandom(ring::rand::SystemRandom);

impl SystemRandom {
    pub fn new() -> SystemRandom {
        SystemRandom(ring::rand::SystemRandom::new())
    }
}

impl Default for SystemRandom {
    fn default() -> Self {
        SystemRandom::new()
    }
}

impl RandomSource for SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), Unavailable> {
        use ring::rand::SecureRandom;
        self.0.fill(dest).map_err(|_| {
            tracing::error!("the system's secure random source failed");
            Unavailable
        })
    }
}

/// Private room codes: 6 characters from 32 that are hard to confuse (no 0/O, 1/I), so about
/// 10⁹ codes; with lobby calls rate-limited, guessing one is hopeless.
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

pub fn room_code(random: &dyn RandomSource) -> Result<String, Unavailable> {
    let mut bytes = [0u8; 6];
    random.fill(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| CODE_ALPHABET[(*b & 31) as usize] as char)
        .collect())
}

/// A token a player can later present to resume its seat: 128 random bits in hex.
pub fn reconnect_token(random: &dyn RandomSource) -> Result<String, Unavailable> {
    hex::<16>(random)
}

/// A node's name in the directory: 32 random bits in hex, so two processes never pick the
/// same one.
pub fn node_id(random: &dyn RandomSource) -> Result<String, Unavailable> {
    hex::<4>(random)
}

/// `N` random bytes in lower-case hex.
fn hex<const N: usize>(random: &dyn RandomSource) -> Result<String, Unavailable> {
    let mut bytes = [0u8; N];
    random.fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A source that always fails, as a broken `getrandom` would.
    pub struct Broken;

    impl RandomSource for Broken {
        fn fill(&self, _: &mut [u8]) -> Result<(), Unavailable> {
            Err(Unavailable)
        }
    }

    #[test]
    fn a_failed_source_gives_no_code_and_no_token() {
        assert!(room_code(&Broken).is_err());
        assert!(reconnect_token(&Broken).is_err());
    }

    #[test]
    fn codes_and_tokens_have_their_shape() {
        let code = room_code(&SystemRandom::new()).unwrap();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)));
        let token = reconnect_token(&SystemRandom::new()).unwrap();
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
