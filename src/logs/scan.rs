//! One pass over a block of log lines that finds, per line, where it ends and where its Nth
//! quote is: the fast path of a log that is mostly 2xx. The block is read 64 bytes at a time
//! into two bit masks (quote and newline positions), and the set bits are walked; a memchr
//! per line and per quote cost more in call overhead than the bytes themselves.

/// Calls `each(start, end, anchor)` for every line of `block`: `block[start..end]` is the line
/// without its `\n` (the block's last line may have none), `anchor` the position just after the
/// line's `quotes`-th `"` (if the line has that many).
///
/// AVX2 when the CPU has it (checked at run time), else SSE2 (every x86_64 has it), else plain
/// code; the tests hold the three to the same answers.
#[inline]
pub fn lines_with_anchor(
    block: &[u8],
    quotes: usize,
    each: impl FnMut(usize, usize, Option<usize>),
) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2::available() {
            return avx2::lines_with_anchor(block, quotes, each);
        }
        scan_with(block, quotes, each, sse2::masks64)
    }
    #[cfg(not(target_arch = "x86_64"))]
    scan_with(block, quotes, each, |c| scalar_masks(c))
}

/// The scan, given the masks of 64 bytes: per chunk, the newline bits are walked one by one;
/// of the quote bits only those a line needs before its anchor are looked at (the quotes after
/// the anchor, most of them in a combined log, cost nothing).
#[inline(always)]
fn scan_with(
    block: &[u8],
    quotes: usize,
    mut each: impl FnMut(usize, usize, Option<usize>),
    masks64: impl Fn(&[u8; 64]) -> (u64, u64),
) {
    let mut line = Line {
        start: 0,
        need: quotes,
        anchor: 0,
    };
    let mut chunks = block.chunks_exact(64);
    let mut base = 0;
    for chunk in &mut chunks {
        let (q, n) = masks64(chunk.try_into().unwrap_or(&[0; 64]));
        line.step(base, q, n, quotes, &mut each);
        base += 64;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let (q, n) = scalar_masks(rest);
        line.step(base, q, n, quotes, &mut each);
    }
    if line.start < block.len() {
        each(line.start, block.len(), line.anchor());
    }
}

/// The line being scanned.
struct Line {
    start: usize,
    /// Quotes still to pass before its anchor (0: found, or not looked for).
    need: usize,
    /// Just after its anchor quote; 0: not found (yet).
    anchor: usize,
}

impl Line {
    #[inline(always)]
    fn anchor(&self) -> Option<usize> {
        (self.anchor != 0).then_some(self.anchor)
    }

    /// The 64 bytes at `base`, as quote bits `q` and newline bits `n`.
    #[inline(always)]
    fn step(
        &mut self,
        base: usize,
        mut q: u64,
        mut n: u64,
        quotes: usize,
        each: &mut impl FnMut(usize, usize, Option<usize>),
    ) {
        loop {
            if self.need > 0 {
                // The quotes of this line in this chunk: those below its newline, if any.
                let mut mine = if n == 0 {
                    q
                } else {
                    q & ((n & n.wrapping_neg()) - 1)
                };
                while mine != 0 {
                    let bit = mine.trailing_zeros() as usize;
                    mine &= mine - 1;
                    self.need -= 1;
                    if self.need == 0 {
                        self.anchor = base + bit + 1;
                        break;
                    }
                }
            }
            if n == 0 {
                return;
            }
            let bit = n.trailing_zeros() as usize;
            n &= n - 1;
            each(self.start, base + bit, self.anchor());
            *self = Line {
                start: base + bit + 1,
                need: quotes,
                anchor: 0,
            };
            // Drop the quotes up to this newline (two shifts: `bit` may be 63).
            q &= (u64::MAX << bit) << 1;
        }
    }
}

/// Bit i of each mask: byte i of `chunk` (at most 64 bytes) is a `"` / a `\n`.
#[inline]
fn scalar_masks(chunk: &[u8]) -> (u64, u64) {
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
    #[expect(
        unsafe_code,
        reason = "SSE2 intrinsics are unsafe to call; see SAFETY below"
    )]
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

/// AVX2 (and BMI1 for the bit walk), on CPUs that have them: 32 bytes per compare.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
    };

    /// Whether this CPU runs [`lines_with_anchor`] (std caches the answer).
    #[inline]
    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("bmi1")
    }

    /// [`super::lines_with_anchor`] compiled for AVX2; call only where [`available`].
    #[inline]
    pub fn lines_with_anchor(
        block: &[u8],
        quotes: usize,
        each: impl FnMut(usize, usize, Option<usize>),
    ) {
        debug_assert!(available());
        #[expect(unsafe_code, reason = "calling a target_feature function is unsafe")]
        // SAFETY: callers check `available()` first, so the CPU has AVX2 and BMI1.
        unsafe {
            scan(block, quotes, each)
        }
    }

    #[target_feature(enable = "avx2,bmi1")]
    fn scan(block: &[u8], quotes: usize, each: impl FnMut(usize, usize, Option<usize>)) {
        super::scan_with(block, quotes, each, |c| masks64(c));
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn masks64(chunk: &[u8; 64]) -> (u64, u64) {
        let quote = _mm256_set1_epi8(b'"' as i8);
        let newline = _mm256_set1_epi8(b'\n' as i8);
        #[expect(
            unsafe_code,
            reason = "unaligned AVX2 loads read through a raw pointer"
        )]
        // SAFETY: each load reads 32 bytes inside `chunk`, which has 64 (loadu: any alignment).
        let (lo, hi) = unsafe {
            (
                _mm256_loadu_si256(chunk.as_ptr().cast::<__m256i>()),
                _mm256_loadu_si256(chunk[32..].as_ptr().cast::<__m256i>()),
            )
        };
        let bits = |v: __m256i, b: __m256i| _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, b)) as u32;
        let q = u64::from(bits(lo, quote)) | u64::from(bits(hi, quote)) << 32;
        let n = u64::from(bits(lo, newline)) | u64::from(bits(hi, newline)) << 32;
        (q, n)
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

    /// Every implementation (plain, SSE2, AVX2 where the CPU has it) gives the same lines and
    /// anchors as a byte-by-byte split, on random blocks of every length around the 64-byte
    /// chunks, for every anchor quote count.
    #[test]
    fn every_implementation_agrees_on_random_blocks() {
        let alphabet = b"\"\n\nab \"\\x";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..3_000 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1442695040888963407);
            let len = match round % 3 {
                0 => (seed >> 40) as usize % 200,
                1 => 64 * ((seed >> 40) as usize % 5) + ((seed >> 20) as usize % 3),
                _ => (seed >> 40) as usize % 1000,
            };
            let mut x = seed;
            let block: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly plain bytes, like a log: long lines with a few quotes.
                    if x % 7 < 5 {
                        b'a'
                    } else {
                        alphabet[(x >> 32) as usize % alphabet.len()]
                    }
                })
                .collect();
            for quotes in [0, 1, 2, 3, 6] {
                let want = reference(&block, quotes);
                let mut plain = Vec::new();
                scan_with(
                    &block,
                    quotes,
                    |s, e, a| plain.push((s, e, a)),
                    |c| scalar_masks(c),
                );
                assert_eq!(plain, want, "plain, {quotes} quotes, {block:?}");
                #[cfg(target_arch = "x86_64")]
                {
                    let mut sse = Vec::new();
                    scan_with(&block, quotes, |s, e, a| sse.push((s, e, a)), sse2::masks64);
                    assert_eq!(sse, want, "sse2, {quotes} quotes, {block:?}");
                    if avx2::available() {
                        let mut avx = Vec::new();
                        avx2::lines_with_anchor(&block, quotes, |s, e, a| avx.push((s, e, a)));
                        assert_eq!(avx, want, "avx2, {quotes} quotes, {block:?}");
                    }
                }
            }
        }
    }

    /// Lines and anchors the slow way: split on newlines, count quotes.
    fn reference(block: &[u8], quotes: usize) -> Vec<(usize, usize, Option<usize>)> {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, &b) in block.iter().enumerate() {
            if b == b'\n' {
                out.push((start, i, anchor_of(block, start, i, quotes)));
                start = i + 1;
            }
        }
        if start < block.len() {
            out.push((
                start,
                block.len(),
                anchor_of(block, start, block.len(), quotes),
            ));
        }
        out
    }

    fn anchor_of(block: &[u8], start: usize, end: usize, quotes: usize) -> Option<usize> {
        if quotes == 0 {
            return None;
        }
        (start..end)
            .filter(|&i| block[i] == b'"')
            .nth(quotes - 1)
            .map(|i| i + 1)
    }

    #[test]
    fn empty_and_newline_only_blocks() {
        assert!(lines(b"", 2).is_empty());
        assert_eq!(lines(b"\n", 1), vec![(vec![], None)]);
    }
}
