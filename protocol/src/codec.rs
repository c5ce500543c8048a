//! The bincode 2 codec for control messages and input batches.
//!
//! Every bincode call of the project lives in this file (see DESIGN.md: bincode is pinned and
//! unmaintained, so a move to another codec must be one file). Every decode is size-limited: the
//! input length is checked first, and bincode's own limit stops a length prefix from claiming
//! more memory than the message could hold.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest control message either side accepts (and the largest control frame).
pub const MAX_CONTROL_BYTES: usize = 64 * 1024;
/// Largest input batch accepted in one datagram.
pub const MAX_INPUT_BYTES: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("message of {len} bytes is over the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("cannot encode message: {0}")]
    Encode(String),
}

/// What decoding one frame may allocate. bincode counts the in-memory size of everything it
/// decodes against this (a `u32` that took one byte on the wire counts 4, a `u64` 8), not the
/// bytes read; no field decodes to more than 8 times its encoded size, so this never refuses
/// a frame within [`MAX_CONTROL_BYTES`], and still stops a length prefix that claims more
/// than the frame can hold before anything is allocated for it.
const DECODE_CLAIM_LIMIT: usize = 8 * MAX_CONTROL_BYTES;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_CLAIM_LIMIT>()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = bincode::serde::encode_to_vec(value, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    if bytes.len() > MAX_CONTROL_BYTES {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit: MAX_CONTROL_BYTES,
        });
    }
    Ok(bytes)
}

/// Encodes a control frame as it goes on the control stream: a `u32` little-endian length, then
/// the encoded value (docs/PROTOCOL.md, "Control frames").
pub fn encode_frame<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let body = encode(value)?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Decodes exactly one value from `bytes`, which may be at most `limit` bytes long.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    let limit = limit.min(MAX_CONTROL_BYTES);
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

/// The frame id and protocol version of a `Hello` frame from a client of any version, read
/// where the frame as a whole is not this version's. Every version starts a `ClientFrame`
/// holding a `Hello` the same way (the id, the request's variant 0, the protocol, the name),
/// so a server can answer an older or newer client `version_mismatch` instead of a malformed
/// frame. Protocol 0 was never a version: such a frame is garbage.
pub fn hello_version(bytes: &[u8]) -> Option<(u32, u16)> {
    let ((id, variant, protocol, _name), _): ((u32, u32, u16, String), usize) =
        bincode::serde::decode_from_slice(bytes, config()).ok()?;
    (variant == 0 && protocol != 0).then_some((id, protocol))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{ClientFrame, Request};
    use proptest::prelude::*;

    #[test]
    fn control_frames_round_trip_and_limits_hold() {
        let frame = ClientFrame {
            id: 7,
            request: Request::Hello {
                protocol: 1,
                name: "ada".into(),
                token: None,
                schemas: vec!["00112233445566ff".into()],
                ticket: Some("a.b.c".into()),
            },
        };
        let bytes = encode(&frame).unwrap();
        assert_eq!(decode::<ClientFrame>(&bytes, 1024).unwrap(), frame);
        assert!(matches!(
            decode::<ClientFrame>(&bytes, 2),
            Err(CodecError::TooLarge { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            decode::<ClientFrame>(&long, 1024),
            Err(CodecError::TrailingBytes(1))
        ));
        // A string whose length prefix claims far more than the message holds.
        let claim = [7u8, 0, 0, 0, 253, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0];
        assert!(decode::<ClientFrame>(&claim, 1024).is_err());
    }

    #[test]
    fn a_hello_of_another_version_still_shows_its_version() {
        // Version 5's hello: no ticket at the end.
        #[derive(serde::Serialize)]
        enum OldRequest {
            Hello {
                protocol: u16,
                name: String,
                token: Option<String>,
                schemas: Vec<String>,
            },
        }
        let old = encode(&(
            9u32,
            OldRequest::Hello {
                protocol: 5,
                name: "ada".into(),
                token: None,
                schemas: Vec::new(),
            },
        ))
        .unwrap();
        assert!(decode::<ClientFrame>(&old, 1024).is_err());
        assert_eq!(hello_version(&old), Some((9, 5)));
        let ping = encode(&ClientFrame {
            id: 3,
            request: Request::Ping { client_time_us: 1 },
        })
        .unwrap();
        assert_eq!(hello_version(&ping), None, "not a hello");
        // Garbage that starts like a hello of protocol 0, and one with no name after.
        assert_eq!(hello_version(&[1, 0, 0, 0, 0xfd, 0xff, 0xff, 0x7f]), None);
        assert_eq!(hello_version(&[1, 0, 5]), None);
    }

    #[test]
    fn a_frame_of_exactly_the_limit_decodes_and_one_byte_more_does_not() {
        // The text fills the frame up to the byte: the id and the request's variant take one
        // byte each, the text's length prefix three.
        let frame = |len: usize| ClientFrame {
            id: 1,
            request: Request::Chat {
                text: "x".repeat(len),
            },
        };
        let at_limit = encode(&frame(MAX_CONTROL_BYTES - 5)).unwrap();
        assert_eq!(at_limit.len(), MAX_CONTROL_BYTES);
        let back: ClientFrame = decode(&at_limit, MAX_CONTROL_BYTES).unwrap();
        assert_eq!(back, frame(MAX_CONTROL_BYTES - 5));
        assert!(matches!(
            encode(&frame(MAX_CONTROL_BYTES - 4)),
            Err(CodecError::TooLarge { .. })
        ));
        let mut over = at_limit;
        over.push(0);
        assert!(matches!(
            decode::<ClientFrame>(&over, MAX_CONTROL_BYTES),
            Err(CodecError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode::<ClientFrame>(&bytes, MAX_CONTROL_BYTES);
            let _ = decode::<crate::messages::ServerFrame>(&bytes, MAX_CONTROL_BYTES);
            let _ = decode::<crate::input::InputBatch>(&bytes, MAX_INPUT_BYTES);
        }
    }
}
