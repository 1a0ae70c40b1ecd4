//! Searching bytes, in one place: the log parsers, the wire parsers, the capture and the tests
//! look for a byte or a run of bytes the same way. Runs of bytes go to `memchr::memmem`.

/// Most fields are short (`-`, an address, a time, a request line or user agent below 64
/// bytes): eight bytes at a time in a register (the classic "has a zero byte" trick on
/// `word ^ pattern`) beats memchr's set-up and a loop over single bytes; longer values go to
/// memchr.
#[inline]
pub fn find_byte(b: u8, hay: &[u8]) -> Option<usize> {
    const SHORT: usize = 64;
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(b);
    let mut i = 0;
    while i + 8 <= hay.len() && i < SHORT {
        let mut word = [0u8; 8];
        word.copy_from_slice(&hay[i..i + 8]);
        let x = u64::from_le_bytes(word) ^ pattern;
        // The lowest set bit marks the first zero byte of `x` exactly (a borrow only
        // propagates upwards from a zero byte, so any false positive sits above a true one).
        let zero = x.wrapping_sub(LO) & !x & HI;
        if zero != 0 {
            return Some(i + (zero.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i >= SHORT {
        return memchr::memchr(b, &hay[i..]).map(|at| at + i);
    }
    hay[i..].iter().position(|&c| c == b).map(|at| at + i)
}

/// Where `needle` first occurs in `hay`.
#[inline]
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Whether `needle` occurs in `hay`.
#[inline]
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time search finds the first occurrence wherever it is, also next to bytes
    /// the trick could mistake for a match (0x01 above a match, 0x80 and up).
    #[test]
    fn find_byte_agrees_with_a_plain_search() {
        let alphabet = [b' ', b'"', b'a', 0x01, 0x21, 0x80, 0xff, 0x00];
        let mut seed = 7u64;
        for _ in 0..20_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (seed >> 33) as usize % 150;
            let hay: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 60)) as usize + i * 7) % alphabet.len()])
                .collect();
            for b in [b' ', b'"', 0x00, 0x01, 0xff] {
                assert_eq!(
                    find_byte(b, &hay),
                    hay.iter().position(|&c| c == b),
                    "{b:#x} in {hay:?}"
                );
            }
        }
    }

    #[test]
    fn runs_of_bytes_are_found_where_they_first_begin() {
        assert_eq!(find(b"a\r\n\r\nb\r\n\r\n", b"\r\n\r\n"), Some(1));
        assert_eq!(find(b"abc", b""), Some(0));
        assert_eq!(find(b"ab", b"abc"), None);
        assert!(contains(b"x\n\r\ny", b"\n\r\n"));
        assert!(!contains(b"x\n\ry", b"\n\n"));
    }
}
