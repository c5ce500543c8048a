//! Bit-level writer and reader for the snapshot format. Bits fill each byte from its least
//! significant bit up (the order of docs/PROTOCOL.md). Reads never run past the end: they
//! return [`BitsExhausted`].

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ran out of bits")]
pub struct BitsExhausted;

#[derive(Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    filled: u32,
}

impl BitWriter {
    pub fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            bytes: Vec::with_capacity(bytes),
            ..Default::default()
        }
    }

    /// Writes the low `bits` bits of `value` (0 ≤ bits ≤ 32).
    pub fn write(&mut self, value: u32, bits: u32) {
        debug_assert!(bits <= 32);
        if bits == 0 {
            return;
        }
        let masked = (value as u64) & ((1u64 << bits) - 1);
        // At most 31 bits are pending, so 32 more always fit the accumulator; whole 32-bit
        // words leave it together (their bytes in order: the low byte first).
        self.acc |= masked << self.filled;
        self.filled += bits;
        if self.filled >= 32 {
            self.bytes
                .extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.filled -= 32;
        }
    }

    pub fn write_bool(&mut self, b: bool) {
        self.write(b as u32, 1);
    }

    /// Variable-length unsigned integer: a 2-bit size class, then 4, 8, 16 or 32 bits.
    pub fn write_var(&mut self, v: u32) {
        let (class, bits) = var_class(v);
        self.write(class, 2);
        self.write(v, bits);
    }

    /// Elias gamma code of `n` ≥ 1: ⌊log2 n⌋ zero bits, a one bit, then the bits of `n` below
    /// its leading one (least significant first). 1 costs 1 bit, 2–3 cost 3, 4–7 cost 5.
    pub fn write_gamma(&mut self, n: u64) {
        debug_assert!(n >= 1);
        let len = 63 - n.leading_zeros();
        self.write_wide(0, len);
        self.write(1, 1);
        self.write_wide(n - (1u64 << len), len);
    }

    /// Gamma code of `v + 1`, for values from 0.
    pub fn write_ugamma(&mut self, v: u32) {
        self.write_gamma(v as u64 + 1);
    }

    /// Signed value: zig-zag (0, -1, 1, -2, …) then [`Self::write_ugamma`].
    pub fn write_sgamma(&mut self, v: i32) {
        self.write_ugamma(((v << 1) ^ (v >> 31)) as u32);
    }

    /// Rice code of `v` with shift `r`: `v >> r` zero bits, a one bit, then the low `r` bits.
    pub fn write_rice(&mut self, v: u32, r: u32) {
        let q = v >> r;
        for _ in 0..q / 32 {
            self.write(0, 32);
        }
        self.write(0, q % 32);
        self.write(1, 1);
        self.write(v, r);
    }

    fn write_wide(&mut self, v: u64, bits: u32) {
        if bits > 32 {
            self.write(v as u32, 32);
            self.write((v >> 32) as u32, bits - 32);
        } else {
            self.write(v as u32, bits);
        }
    }

    /// A signed value in `bits` bits, two's complement.
    pub fn write_signed(&mut self, v: i32, bits: u32) {
        self.write(v as u32, bits);
    }

    pub fn bit_len(&self) -> usize {
        self.bytes.len() * 8 + self.filled as usize
    }

    /// Pads the last byte with zero bits.
    pub fn finish(mut self) -> Vec<u8> {
        let pending = self.filled.div_ceil(8) as usize;
        self.bytes
            .extend_from_slice(&self.acc.to_le_bytes()[..pending]);
        self.bytes
    }
}

fn var_class(v: u32) -> (u32, u32) {
    match v {
        0..=0xf => (0, 4),
        0x10..=0xff => (1, 8),
        0x100..=0xffff => (2, 16),
        _ => (3, 32),
    }
}

/// How many bits [`BitWriter::write_var`] spends on `v`.
pub fn var_bits(v: u32) -> u32 {
    2 + var_class(v).1
}

/// How many bits [`BitWriter::write_ugamma`] spends on `v`.
pub fn ugamma_bits(v: u32) -> u32 {
    2 * (63 - (v as u64 + 1).leading_zeros()) + 1
}

/// How many bits [`BitWriter::write_rice`] spends on `v`.
pub fn rice_bits(v: u32, r: u32) -> u32 {
    (v >> r) + 1 + r
}

pub struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() * 8 - self.pos
    }

    /// Reads `bits` bits (0 ≤ bits ≤ 32).
    pub fn read(&mut self, bits: u32) -> Result<u32, BitsExhausted> {
        debug_assert!(bits <= 32);
        if bits as usize > self.remaining() {
            return Err(BitsExhausted);
        }
        if bits == 0 {
            return Ok(0);
        }
        // The (up to) eight bytes from the one holding the next bit: at most 7 + 32 bits are
        // needed, and a word load beats a byte loop.
        let at = self.pos / 8;
        let mut word = [0u8; 8];
        match self.bytes.get(at..at + 8) {
            Some(whole) => word.copy_from_slice(whole),
            None => {
                let tail = &self.bytes[at..];
                word[..tail.len()].copy_from_slice(tail);
            }
        }
        let v = (u64::from_le_bytes(word) >> (self.pos % 8)) & ((1u64 << bits) - 1);
        self.pos += bits as usize;
        Ok(v as u32)
    }

    pub fn read_bool(&mut self) -> Result<bool, BitsExhausted> {
        Ok(self.read(1)? == 1)
    }

    /// Reads an Elias gamma code; values needing more than 32 bits are refused.
    pub fn read_gamma(&mut self) -> Result<u64, BitsExhausted> {
        let mut len = 0;
        while !self.read_bool()? {
            len += 1;
            if len > 32 {
                return Err(BitsExhausted);
            }
        }
        let low = if len == 0 { 0 } else { self.read_wide(len)? };
        Ok((1u64 << len) + low)
    }

    /// Reads [`BitWriter::write_ugamma`]; results over `u32::MAX` are refused.
    pub fn read_ugamma(&mut self) -> Result<u32, BitsExhausted> {
        u32::try_from(self.read_gamma()? - 1).map_err(|_| BitsExhausted)
    }

    pub fn read_sgamma(&mut self) -> Result<i32, BitsExhausted> {
        let z = self.read_ugamma()?;
        Ok(((z >> 1) as i32) ^ -((z & 1) as i32))
    }

    /// Reads [`BitWriter::write_rice`]. A value over `max` is `None`, found as soon as its
    /// leading zeros say so, so a run of zero bits cannot keep the reader going.
    pub fn read_rice(&mut self, r: u32, max: u32) -> Result<Option<u32>, BitsExhausted> {
        let mut q = 0u64;
        while !self.read_bool()? {
            q += 1;
            if q << r > max as u64 {
                return Ok(None);
            }
        }
        let v = (q << r) | self.read(r)? as u64;
        Ok(u32::try_from(v).ok().filter(|v| *v <= max))
    }

    fn read_wide(&mut self, bits: u32) -> Result<u64, BitsExhausted> {
        if bits > 32 {
            let low = self.read(32)? as u64;
            Ok(low | (self.read(bits - 32)? as u64) << 32)
        } else {
            Ok(self.read(bits)? as u64)
        }
    }

    /// A signed value of `bits` bits, two's complement.
    pub fn read_signed(&mut self, bits: u32) -> Result<i32, BitsExhausted> {
        let v = self.read(bits)?;
        let shift = 32 - bits;
        Ok(((v << shift) as i32) >> shift)
    }

    pub fn read_var(&mut self) -> Result<u32, BitsExhausted> {
        let bits = match self.read(2)? {
            0 => 4,
            1 => 8,
            2 => 16,
            _ => 32,
        };
        self.read(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        let mut w = BitWriter::default();
        w.write(5, 3);
        w.write_bool(true);
        w.write(0xdead_beef, 32);
        for v in [0u32, 15, 16, 255, 256, 65535, 65536, u32::MAX] {
            w.write_var(v);
        }
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.read(3), Ok(5));
        assert_eq!(r.read_bool(), Ok(true));
        assert_eq!(r.read(32), Ok(0xdead_beef));
        for v in [0u32, 15, 16, 255, 256, 65535, 65536, u32::MAX] {
            assert_eq!(r.read_var(), Ok(v));
        }
        assert!(r.remaining() < 8);
        assert_eq!(r.read(8), Err(BitsExhausted));

        let mut w = BitWriter::default();
        let values = [0u32, 1, 2, 3, 7, 8, 1000, u32::MAX - 1, u32::MAX];
        for v in values {
            w.write_ugamma(v);
        }
        for v in [0i32, -1, 1, -64, 63, i32::MIN, i32::MAX] {
            w.write_sgamma(v);
        }
        w.write_signed(-3, 3);
        w.write_signed(5, 7);
        assert_eq!(ugamma_bits(0), 1);
        assert_eq!(ugamma_bits(2), 3);
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for v in values {
            assert_eq!(r.read_ugamma(), Ok(v));
        }
        for v in [0i32, -1, 1, -64, 63, i32::MIN, i32::MAX] {
            assert_eq!(r.read_sgamma(), Ok(v));
        }
        assert_eq!(r.read_signed(3), Ok(-3));
        assert_eq!(r.read_signed(7), Ok(5));
        // Rice codes, and a value past the reader's limit.
        let mut w = BitWriter::default();
        for (v, r) in [(0u32, 0u32), (5, 0), (99, 6), (64, 6), (1 << 20, 3)] {
            w.write_rice(v, r);
        }
        w.write_rice(40, 2);
        assert_eq!(rice_bits(99, 6), 8);
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for (v, k) in [(0u32, 0u32), (5, 0), (99, 6), (64, 6), (1 << 20, 3)] {
            assert_eq!(r.read_rice(k, u32::MAX), Ok(Some(v)));
        }
        assert_eq!(r.read_rice(2, 39), Ok(None));
        // 40 zero bits is not a gamma code this reader accepts.
        assert_eq!(BitReader::new(&[0; 8]).read_gamma(), Err(BitsExhausted));
    }
}
