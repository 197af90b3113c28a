//! LEB128 varints: 7 bits a byte, low bits first, the high bit set on every
//! byte but the last.

/// Appends `value` to `out`.
#[inline]
pub fn encode(out: &mut impl Extend<u8>, value: u64) {
    let mut bytes = [0; MAX_LEN];
    let len = encode_into(&mut bytes, value);
    out.extend(bytes.iter().take(len).copied());
}

/// The most bytes a varint takes.
pub const MAX_LEN: usize = 10;

/// Writes `value` at the front of `out`; returns the bytes written (cut
/// short when `out` holds fewer than [`MAX_LEN`]).
#[inline]
pub fn encode_into(out: &mut [u8], mut value: u64) -> usize {
    let mut len = 0;
    for slot in out {
        len += 1;
        if value < 0x80 {
            *slot = value as u8;
            break;
        }
        *slot = (value as u8) | 0x80;
        value >>= 7;
    }
    len
}

/// Decodes one varint from the front of `bytes`; returns it and the bytes
/// it took. `None` for a truncated or overlong one.
#[inline]
pub fn decode(bytes: impl IntoIterator<Item = u8>) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, byte) in bytes.into_iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * index as u32;
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            encode(&mut out, value);
            assert_eq!(decode(out.iter().copied()), Some((value, out.len())));
        }
        assert_eq!(decode([0x80]), None);
        assert_eq!(decode([0xff; 11]), None);
    }
}
