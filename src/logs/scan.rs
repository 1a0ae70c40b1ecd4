//! One pass over a block of log lines that finds, per line, where it ends and where its Nth
//! quote is: the fast path of a log that is mostly 2xx. The block is read 64 bytes at a time
//! into two bit masks (quote and newline positions), and the set bits are walked; a memchr
//! per line and per quote cost more in call overhead than the bytes themselves.

/// Calls `each(start, end, anchor)` for every line of `block`: `block[start..end]` is the line
/// without its `\n` (the block's last line may have none), `anchor` the position just after the
/// line's `quotes`-th `"` (if the line has that many).
#[inline]
pub fn lines_with_anchor(
    block: &[u8],
    quotes: usize,
    mut each: impl FnMut(usize, usize, Option<usize>),
) {
    let (mut line_start, mut seen, mut anchor) = (0usize, 0usize, None);
    let mut base = 0;
    while base < block.len() {
        let end = (base + 64).min(block.len());
        let (quote_bits, newline_bits) = masks(&block[base..end]);
        let mut bits = quote_bits | newline_bits;
        while bits != 0 {
            let bit = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let pos = base + bit;
            if newline_bits & (1 << bit) != 0 {
                each(line_start, pos, anchor);
                (line_start, seen, anchor) = (pos + 1, 0, None);
            } else {
                seen += 1;
                if seen == quotes {
                    anchor = Some(pos + 1);
                }
            }
        }
        base = end;
    }
    if line_start < block.len() {
        each(line_start, block.len(), anchor);
    }
}

/// Bit i of each mask: byte i of `chunk` (at most 64 bytes) is a `"` / a `\n`.
#[inline]
fn masks(chunk: &[u8]) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    if chunk.len() == 64 {
        return sse2::masks64(chunk.try_into().unwrap_or(&[0; 64]));
    }
    let (mut q, mut n) = (0u64, 0u64);
    for (i, &b) in chunk.iter().enumerate() {
        q |= u64::from(b == b'"') << i;
        n |= u64::from(b == b'\n') << i;
    }
    (q, n)
}

/// SSE2 is part of every x86_64 CPU: no runtime detection needed.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };

    #[inline]
    #[allow(unsafe_code)]
    pub fn masks64(chunk: &[u8; 64]) -> (u64, u64) {
        // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics run on every CPU
        // this code is built for; each load reads 16 bytes of `chunk` (loadu: any alignment).
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let newline = _mm_set1_epi8(b'\n' as i8);
            let (mut q, mut n) = (0u64, 0u64);
            for (i, sixteen) in chunk.chunks_exact(16).enumerate() {
                let v = _mm_loadu_si128(sixteen.as_ptr().cast::<__m128i>());
                let qm = _mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) as u32 as u64;
                let nm = _mm_movemask_epi8(_mm_cmpeq_epi8(v, newline)) as u32 as u64;
                q |= qm << (16 * i);
                n |= nm << (16 * i);
            }
            (q, n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(block: &[u8], quotes: usize) -> Vec<(Vec<u8>, Option<usize>)> {
        let mut out = Vec::new();
        lines_with_anchor(block, quotes, |s, e, a| {
            out.push((block[s..e].to_vec(), a.map(|a| a - s)));
        });
        out
    }

    /// The scan agrees with splitting on newlines and counting quotes byte by byte, for lines
    /// that cross the 64-byte chunks at every offset.
    #[test]
    fn agrees_with_a_byte_by_byte_split() {
        let mut block = Vec::new();
        for i in 0..300usize {
            let pad = "x".repeat(i % 131);
            let line = match i % 4 {
                0 => format!("a{pad} \"GET / HTTP/1.1\" 200 \"r\" \"ua\""),
                1 => format!("{pad}\"only one"),
                2 => String::new(),
                _ => format!("\"\"{pad}\" 404"),
            };
            block.extend_from_slice(line.as_bytes());
            block.push(b'\n');
        }
        block.extend_from_slice(b"last \"a\" 500");
        let want: Vec<(Vec<u8>, Option<usize>)> = block
            .split(|&b| b == b'\n')
            .map(|l| {
                let anchor = l
                    .iter()
                    .enumerate()
                    .filter(|(_, &b)| b == b'"')
                    .nth(1)
                    .map(|(i, _)| i + 1);
                (l.to_vec(), anchor)
            })
            .collect();
        assert_eq!(lines(&block, 2), want);
    }

    #[test]
    fn empty_and_newline_only_blocks() {
        assert!(lines(b"", 2).is_empty());
        assert_eq!(lines(b"\n", 1), vec![(vec![], None)]);
    }
}
