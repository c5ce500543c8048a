//! Datagram packets. The first byte says what follows.
//!
//! Client → server: `INPUT` + bincode [`InputBatch`].
//! Server → client: `SNAPSHOT` + input ack (u32 little-endian: the newest input seq the server
//! has applied, 0 for none) + a delta body ([`crate::delta`]). A snapshot too large for one
//! datagram travels as the same packet on its own unidirectional QUIC stream.

use crate::codec::{self, CodecError, MAX_INPUT_BYTES};
use crate::input::InputBatch;

pub const INPUT: u8 = 0x01;
pub const SNAPSHOT: u8 = 0x02;
/// Bytes in front of a snapshot's delta body.
pub const SNAPSHOT_HEADER_BYTES: usize = 5;
/// Largest snapshot packet a client accepts (on a stream).
pub const MAX_SNAPSHOT_PACKET_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    #[error("packet too short")]
    TooShort,
    #[error(transparent)]
    Codec(#[from] CodecError),
}

pub fn encode_input(batch: &InputBatch) -> Result<Vec<u8>, CodecError> {
    let body = codec::encode(batch)?;
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(INPUT);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes and validates nothing but the framing; call [`InputBatch::validate`] next.
pub fn decode_input(packet: &[u8]) -> Result<InputBatch, PacketError> {
    match packet.split_first() {
        None => Err(PacketError::Empty),
        Some((&INPUT, body)) => Ok(codec::decode(body, MAX_INPUT_BYTES)?),
        Some((&t, _)) => Err(PacketError::UnknownType(t)),
    }
}

/// Writes the per-player header in front of a (shared) delta body.
pub fn encode_snapshot(input_ack: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + body.len());
    out.push(SNAPSHOT);
    out.extend_from_slice(&input_ack.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Splits a snapshot packet into its input ack and delta body.
pub fn decode_snapshot(packet: &[u8]) -> Result<(u32, &[u8]), PacketError> {
    match packet.split_first() {
        None => Err(PacketError::Empty),
        Some((&SNAPSHOT, rest)) => {
            let (ack, body) = rest.split_first_chunk::<4>().ok_or(PacketError::TooShort)?;
            Ok((u32::from_le_bytes(*ack), body))
        }
        Some((&t, _)) => Err(PacketError::UnknownType(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Tick;
    use crate::input::Input;

    #[test]
    fn packets_round_trip() {
        let batch = InputBatch {
            ack_tick: Some(Tick(9)),
            inputs: vec![Input {
                seq: 3,
                ..Input::default()
            }],
        };
        assert_eq!(decode_input(&encode_input(&batch).unwrap()).unwrap(), batch);
        let p = encode_snapshot(42, &[1, 2, 3]);
        assert_eq!(decode_snapshot(&p).unwrap(), (42, &[1u8, 2, 3][..]));
        assert!(decode_snapshot(&p[..3]).is_err());
        assert!(decode_input(&p).is_err());
        assert!(decode_input(&[]).is_err());
    }
}
