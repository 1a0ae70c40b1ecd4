//! What a log shows, accumulated in bounded memory: counts per status and per cause, top URIs
//! and clients per cause (approximate once a map is full), error buckets over time. Summaries
//! of chunks merge, in file order, into the summary of the whole input.

use std::collections::BTreeMap;
use std::hash::Hasher;

use serde::Serialize;

use super::classify::{Classification, Either, Facts};
use super::record::Record;
use super::LineError;

/// Distinct keys a top-K map holds before it drops its smaller half.
const TOP_CAPACITY: usize = 512;
/// Keys are cut to this many bytes (a URI can be 32 KB).
pub const MAX_KEY: usize = 200;
/// Distinct time buckets before the bucket width doubles.
const MAX_BUCKETS: usize = 512;
/// Bad lines kept as samples.
pub const BAD_SAMPLES: usize = 5;
/// Distinct 499 request_time values (in 100 ms steps) kept for the fixed-timeout check.
const MAX_RT_STEPS: usize = 256;

/// A multiply-rotate hash over 8-byte words: SipHash was a fifth of the cost of an error line.
/// Keys come from the log (URIs, clients), so they may be chosen to collide; a map holds at
/// most [`TOP_CAPACITY`] keys, which bounds what a collision can cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct WordHasher(u64);

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.0 =
            (self.0.rotate_left(5) ^ u64::from_le_bytes(tail) ^ bytes.len() as u64).wrapping_mul(K);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Counts per key, bounded: when full, the smaller half is dropped and its counts are added to
/// `dropped`, so a reported count is a lower bound (exact while nothing was dropped).
///
/// An open-addressing table of at most [`TOP_CAPACITY`] keys whose bytes live in one arena: a
/// new key costs a copy into the arena, no allocation of its own (a log with many clients adds
/// one on most error lines); the table is probed by a hash of the bytes, which are compared only
/// where the stored hash matches. Pruning finds the cut with `select_nth_unstable`, not a sort.
#[derive(Debug, Clone, Default)]
pub struct TopK {
    /// `TABLE_SLOTS` slots once a key was added: 0 empty, else the low 32 bits of the key's
    /// hash (a tag) in the high 32 and the index of its entry + 1 in the low 32.
    slots: Vec<u64>,
    entries: Vec<Entry>,
    /// The bytes of every entry's key, one after the other.
    arena: Vec<u8>,
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u64,
    hash: u64,
    start: u32,
    len: u32,
}

/// Slots of a [`TopK`] table: a power of two, at least twice [`TOP_CAPACITY`] so a probe ends
/// at an empty slot soon.
const TABLE_SLOTS: usize = 4 * TOP_CAPACITY;

impl TopK {
    #[inline]
    pub fn add(&mut self, key: &[u8], n: u64) {
        let key = &key[..key.len().min(MAX_KEY)];
        let hash = hash_bytes(key);
        if self.slots.is_empty() {
            self.slots = vec![0; TABLE_SLOTS];
        }
        let slot = match self.find(key, hash) {
            Ok(i) => {
                self.entries[i].count += n;
                return;
            }
            Err(slot) => slot,
        };
        if self.entries.len() >= TOP_CAPACITY {
            self.shrink();
            // The table was rebuilt: the free slot for this key moved.
            let Err(slot) = self.find(key, hash) else {
                unreachable!("a key absent before the shrink is absent after it");
            };
            return self.insert_at(slot, key, hash, n);
        }
        self.insert_at(slot, key, hash, n);
    }

    /// `Ok(entry index)` of `key`, or `Err(free slot)` where it would go.
    #[inline]
    fn find(&self, key: &[u8], hash: u64) -> Result<usize, usize> {
        let mask = TABLE_SLOTS - 1;
        let tag = hash & 0xffff_ffff;
        let mut i = slot_of(hash);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return Err(i);
            }
            if s >> 32 == tag {
                let idx = (s as u32 - 1) as usize;
                let e = &self.entries[idx];
                if e.hash == hash && self.key(e) == key {
                    return Ok(idx);
                }
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn key(&self, e: &Entry) -> &[u8] {
        &self.arena[e.start as usize..(e.start + e.len) as usize]
    }

    fn insert_at(&mut self, slot: usize, key: &[u8], hash: u64, n: u64) {
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(key);
        self.entries.push(Entry {
            count: n,
            hash,
            start,
            len: key.len() as u32,
        });
        self.slots[slot] = hash << 32 | self.entries.len() as u64;
    }

    /// Keep the [`TOP_CAPACITY`] / 2 largest counts (ties at the cut: the earliest entries),
    /// add the others to `dropped`, and rebuild the arena and the table from what is kept.
    fn shrink(&mut self) {
        let half = TOP_CAPACITY / 2;
        let mut counts: Vec<u64> = self.entries.iter().map(|e| e.count).collect();
        let (_, keep_above, _) = counts.select_nth_unstable_by(half - 1, |a, b| b.cmp(a));
        let keep_above = *keep_above;
        let mut kept = 0;
        let mut dropped = 0;
        let mut arena_end = 0usize;
        let mut w = 0;
        for r in 0..self.entries.len() {
            let e = self.entries[r];
            // Ties at the cut go too once half is kept, so the table always shrinks.
            if e.count > keep_above || (e.count == keep_above && kept < half) {
                kept += 1;
                let (from, len) = (e.start as usize, e.len as usize);
                self.arena.copy_within(from..from + len, arena_end);
                self.entries[w] = Entry {
                    start: arena_end as u32,
                    ..e
                };
                arena_end += len;
                w += 1;
            } else {
                dropped += e.count;
            }
        }
        self.entries.truncate(w);
        self.arena.truncate(arena_end);
        self.dropped += dropped;
        self.slots.iter_mut().for_each(|s| *s = 0);
        let mask = TABLE_SLOTS - 1;
        for (idx, e) in self.entries.iter().enumerate() {
            let mut i = slot_of(e.hash);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = e.hash << 32 | (idx as u64 + 1);
        }
    }

    /// Distinct keys held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every key with its count, in the order the keys were first added (since the last shrink).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        self.entries.iter().map(|e| (self.key(e), e.count))
    }

    pub fn merge(&mut self, other: TopK) {
        self.dropped += other.dropped;
        for (k, n) in other.iter() {
            self.add(k, n);
        }
    }

    /// The `n` largest, largest first (ties by key, so output is stable).
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(&[u8], u64)> = self.iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter()
            .take(n)
            .map(|(k, c)| (String::from_utf8_lossy(k).into_owned(), c))
            .collect()
    }
}

/// [`WordHasher`] over the bytes of a key, mixed once more: its top bits pick the slot (they
/// depend on every byte), its low 32 are the tag a slot keeps.
#[inline]
fn hash_bytes(key: &[u8]) -> u64 {
    let mut h = WordHasher::default();
    h.write(key);
    let x = h.finish();
    (x ^ (x >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The first slot a key with this hash probes: the hash's top bits.
#[inline]
fn slot_of(hash: u64) -> usize {
    (hash >> (64 - TABLE_SLOTS.trailing_zeros())) as usize
}

/// Error counts per time bucket; buckets start one minute wide and double when there would be
/// more than [`MAX_BUCKETS`], so memory does not grow with the time span.
#[derive(Debug, Clone)]
pub struct TimeBuckets {
    /// Bucket width in minutes.
    pub width: u64,
    /// Minute index (minutes since 1970, as the log writes its local time) → count.
    pub counts: BTreeMap<u64, u64>,
}

impl Default for TimeBuckets {
    fn default() -> Self {
        TimeBuckets {
            width: 1,
            counts: BTreeMap::new(),
        }
    }
}

impl TimeBuckets {
    pub fn add(&mut self, minute: u64, n: u64) {
        *self.counts.entry(minute - minute % self.width).or_default() += n;
        while self.counts.len() > MAX_BUCKETS {
            self.widen(self.width * 2);
        }
    }

    fn widen(&mut self, width: u64) {
        self.width = width;
        let old = std::mem::take(&mut self.counts);
        for (m, n) in old {
            *self.counts.entry(m - m % width).or_default() += n;
        }
    }

    pub fn merge(&mut self, other: TimeBuckets) {
        if other.width > self.width {
            self.widen(other.width);
        }
        for (m, n) in other.counts {
            self.add(m, n);
        }
    }
}

/// What is known of one cause.
#[derive(Debug, Clone, Default)]
pub struct CauseStats {
    pub count: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub uris: TopK,
    pub clients: TopK,
    pub upstreams: TopK,
    pub buckets: TimeBuckets,
    /// Line number (in the whole input) and time of the first line that showed it.
    pub first_line: u64,
    pub first_time: Option<String>,
    /// The shortest and longest wait its lines logged (upstream_response_time, else
    /// request_time), in seconds: for a timeout, the listener's timeout as measured.
    pub waited: Option<(f64, f64)>,
}

/// Lines that may show any of several causes: the fields could not tell them apart.
#[derive(Debug, Clone)]
pub struct Undecided {
    pub either: &'static Either,
    pub stats: CauseStats,
}

impl CauseStats {
    /// Add the counts of a later chunk (its first line is not the first any more).
    fn merge(&mut self, n: CauseStats) {
        self.count += n.count;
        for (k, v) in n.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        self.uris.merge(n.uris);
        self.clients.merge(n.clients);
        self.upstreams.merge(n.upstreams);
        self.buckets.merge(n.buckets);
        self.waited = match (self.waited, n.waited) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (x, y) => x.or(y),
        };
    }
}

/// A line that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    pub input: String,
    pub line: u64,
    pub column: usize,
    pub reason: String,
    /// The line, cut to 200 bytes.
    pub text: String,
}

/// What the summary keeps of an error line's [`Facts`].
#[derive(Clone, Copy)]
struct Seen {
    status: u16,
    request_time: Option<f64>,
    /// upstream_response_time, else request_time.
    waited: Option<f64>,
    /// An upstream status was logged.
    reached: bool,
    nginx: bool,
}

impl Seen {
    fn of(f: &Facts) -> Seen {
        Seen {
            status: f.status,
            request_time: f.request_time,
            waited: f.upstream_response_time.or(f.request_time),
            reached: !f.upstream.is_empty(),
            nginx: f.dialect == super::record::Dialect::Nginx,
        }
    }
}

/// The summary of one chunk, one input or all inputs.
#[derive(Debug, Clone)]
pub struct Summary {
    pub lines: u64,
    pub bytes: u64,
    pub blank: u64,
    pub bad: u64,
    pub bad_samples: Vec<BadLine>,
    /// Count per status code (index = code; 0 holds lines with no status, e.g. HAProxy's -1).
    pub status: Vec<u64>,
    pub causes: BTreeMap<&'static str, CauseStats>,
    /// Error lines that may show any of several causes, by the `A or B` id.
    pub undecided: BTreeMap<&'static str, Undecided>,
    /// Error lines the reason in nginx's error.log decided.
    pub from_error_log: u64,
    /// Error lines the access log alone left undecided, read with an error.log.
    pub settled: u64,
    /// Error lines no documented cause explains, per status.
    pub unexplained: BTreeMap<u16, u64>,
    /// Lines that reached a backend (an upstream status was logged), among error lines.
    pub reached_backend: u64,
    /// Error lines of nginx's: nginx answers 502, not 503, when it has no server to try, so
    /// its 503s without an upstream are a limit's.
    pub nginx_errors: u64,
    /// 499 lines per request_time in 100 ms steps: one value for most of them is a client
    /// timeout (`499.client-timeout-short`).
    pub rt_499: BTreeMap<u64, u64>,
    /// Reused by every error line, so reading one allocates nothing.
    pub(super) scratch: Facts,
    /// The minute of the last time field that [`minute_of`] reads from its first bytes alone.
    minute_cache: Option<([u8; 17], Option<u64>)>,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            lines: 0,
            bytes: 0,
            blank: 0,
            bad: 0,
            bad_samples: Vec::new(),
            status: vec![0; 1000],
            causes: BTreeMap::new(),
            undecided: BTreeMap::new(),
            from_error_log: 0,
            settled: 0,
            unexplained: BTreeMap::new(),
            reached_backend: 0,
            nginx_errors: 0,
            rt_499: BTreeMap::new(),
            scratch: Facts::default(),
            minute_cache: None,
        }
    }
}

impl Summary {
    pub fn parsed(&self) -> u64 {
        self.status.iter().sum()
    }

    pub fn errors(&self) -> u64 {
        self.status[400..].iter().sum()
    }

    pub fn bad_line(&mut self, input: &str, line: u64, text: &[u8], e: LineError) {
        self.bad += 1;
        if self.bad_samples.len() < BAD_SAMPLES {
            self.bad_samples.push(BadLine {
                input: input.to_string(),
                line,
                column: e.column + 1,
                reason: e.message,
                text: String::from_utf8_lossy(&text[..text.len().min(200)]).into_owned(),
            });
        }
    }

    /// Count an error line under what it shows.
    pub fn error_line(&mut self, line: u64, rec: &Record<'_>, facts: &Facts, c: Classification) {
        let seen = Seen::of(facts);
        self.count_error(line, rec, seen, c);
    }

    /// [`error_line`](Self::error_line) with the facts in [`Summary::scratch`].
    pub(super) fn scratch_error_line(&mut self, line: u64, rec: &Record<'_>, c: Classification) {
        let seen = Seen::of(&self.scratch);
        self.count_error(line, rec, seen, c);
    }

    fn count_error(&mut self, line: u64, rec: &Record<'_>, facts: Seen, c: Classification) {
        if facts.reached {
            self.reached_backend += 1;
        }
        if facts.nginx {
            self.nginx_errors += 1;
        }
        if facts.status == 499 {
            if let Some(rt) = facts.request_time {
                let step = (rt * 10.0).round().max(0.0) as u64;
                if self.rt_499.len() < MAX_RT_STEPS || self.rt_499.contains_key(&step) {
                    *self.rt_499.entry(step).or_default() += 1;
                }
            }
        }
        if c.from_error_log {
            self.from_error_log += 1;
        }
        let s = match (c.cause, c.either) {
            (Some(cause), _) => self.causes.entry(cause).or_default(),
            (None, Some(either)) => {
                &mut self
                    .undecided
                    .entry(either.id)
                    .or_insert_with(|| Undecided {
                        either,
                        stats: CauseStats::default(),
                    })
                    .stats
            }
            (None, None) => {
                *self.unexplained.entry(facts.status).or_default() += 1;
                return;
            }
        };
        if s.count == 0 {
            s.first_line = line;
            s.first_time = rec.time.map(|t| String::from_utf8_lossy(t).into_owned());
        }
        s.count += 1;
        *s.by_status.entry(facts.status).or_default() += 1;
        if let Some(w) = facts.waited {
            s.waited = Some(s.waited.map_or((w, w), |(lo, hi)| (lo.min(w), hi.max(w))));
        }
        if let Some(u) = rec.uri() {
            let u = &u[..crate::bytes::find_byte(b'?', u).unwrap_or(u.len())];
            s.uris.add(u, 1);
        }
        if let Some(c) = rec.client {
            s.clients.add(c, 1);
        }
        if let Some(a) = rec.upstream_addr.filter(|a| !super::record::is_dash(a)) {
            s.upstreams.add(a, 1);
        }
        if let Some(m) = rec
            .time
            .and_then(|t| minute_cached(&mut self.minute_cache, t))
        {
            s.buckets.add(m, 1);
        }
    }

    /// Merge the summary of the chunk that follows this one; its line numbers were counted from
    /// its own start, so they move by the lines before it.
    pub fn merge(&mut self, mut next: Summary) {
        let offset = self.lines;
        for b in &mut next.bad_samples {
            b.line += offset;
        }
        self.lines += next.lines;
        self.bytes += next.bytes;
        self.blank += next.blank;
        self.bad += next.bad;
        let room = BAD_SAMPLES.saturating_sub(self.bad_samples.len());
        self.bad_samples
            .extend(next.bad_samples.into_iter().take(room));
        for (a, b) in self.status.iter_mut().zip(next.status) {
            *a += b;
        }
        for (id, n) in next.causes {
            match self.causes.get_mut(id) {
                None => {
                    let mut n = n;
                    n.first_line += offset;
                    self.causes.insert(id, n);
                }
                Some(s) => s.merge(n),
            }
        }
        for (id, n) in next.undecided {
            match self.undecided.get_mut(id) {
                None => {
                    let mut n = n;
                    n.stats.first_line += offset;
                    self.undecided.insert(id, n);
                }
                Some(s) => s.stats.merge(n.stats),
            }
        }
        self.from_error_log += next.from_error_log;
        self.settled += next.settled;
        for (k, v) in next.unexplained {
            *self.unexplained.entry(k).or_default() += v;
        }
        self.reached_backend += next.reached_backend;
        self.nginx_errors += next.nginx_errors;
        for (k, v) in next.rt_499 {
            if self.rt_499.len() < MAX_RT_STEPS || self.rt_499.contains_key(&k) {
                *self.rt_499.entry(k).or_default() += v;
            }
        }
    }

    /// Conclusions only the whole input supports: 503s without an upstream when no line
    /// reached any backend are the listener having none (`503.no-backends`), not a limit;
    /// but not nginx's, which answers 502 when it has no server to try.
    pub fn finish(&mut self) {
        if self.reached_backend == 0 && self.nginx_errors == 0 {
            if let Some(s) = self.causes.remove("503.rate-limited") {
                self.causes.insert("503.no-backends", s);
            }
        }
    }

    /// The one request_time most 499 lines share (seconds, share), when it is a client timeout.
    pub fn fixed_499_timeout(&self) -> Option<(f64, f64)> {
        let total: u64 = self.rt_499.values().sum();
        let (step, n) = self.rt_499.iter().max_by_key(|(_, n)| **n)?;
        let share = *n as f64 / total as f64;
        (total >= 10 && share >= 0.8 && *step >= 5).then_some((*step as f64 / 10.0, share))
    }
}

/// Minutes since 1970-01-01 of a logged time, as written (the zone is not applied): nginx's
/// `$time_local` (`24/Nov/2025:19:29:01 +0000`, HAProxy's too), ISO 8601
/// (`2025-11-24T19:29:01+00:00`) and `$msec` (`1764012541.123`).
pub fn minute_of(t: &[u8]) -> Option<u64> {
    let num = |s: &[u8]| -> Option<u64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let civil = |y: u64, m: u64, d: u64, hh: u64, mm: u64| -> Option<u64> {
        if !(1..=12).contains(&m)
            || !(1..=31).contains(&d)
            || hh > 23
            || mm > 59
            || !(1970..=9999).contains(&y)
        {
            return None;
        }
        Some(days_from_civil(y, m, d) * 1440 + hh * 60 + mm)
    };
    if t.len() >= 17 && t[2] == b'/' && t[6] == b'/' && t[11] == b':' {
        const MONTHS: [&[u8]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let m = MONTHS.iter().position(|m| *m == &t[3..6])? as u64 + 1;
        return civil(
            num(&t[7..11])?,
            m,
            num(&t[0..2])?,
            num(&t[12..14])?,
            num(&t[15..17])?,
        );
    }
    let iso = t.len() >= 16 && t[4] == b'-' && t[7] == b'-' && matches!(t[10], b'T' | b' ');
    // nginx's error.log: `2025/11/24 19:29:01`, the same fields with slashes.
    let nginx_error = t.len() >= 16 && t[4] == b'/' && t[7] == b'/' && t[10] == b' ';
    if iso || nginx_error {
        return civil(
            num(&t[0..4])?,
            num(&t[5..7])?,
            num(&t[8..10])?,
            num(&t[11..13])?,
            num(&t[14..16])?,
        );
    }
    let secs = t.split(|&b| b == b'.').next()?;
    (secs.len() >= 9).then_some(num(secs)? / 60)
}

/// Seconds since 1970-01-01 of a logged time, as written (the zone is not applied, so two
/// times compare when both are the server's wall clock): every layout [`minute_of`] reads,
/// nginx's error.log (`2025/11/24 19:29:01`) included.
pub fn second_of(t: &[u8]) -> Option<u64> {
    // The seconds follow the minute: `:SS` at 16 in ISO 8601 and the error.log's layout, at 17
    // in `$time_local`.
    let colon = if t.get(13) == Some(&b':') { 16 } else { 17 };
    if let Some([b':', a @ b'0'..=b'5', b @ b'0'..=b'9']) = t.get(colon..colon + 3) {
        return Some(minute_of(t)? * 60 + u64::from(a - b'0') * 10 + u64::from(b - b'0'));
    }
    let whole = t.split(|&b| b == b'.').next()?;
    if whole.len() < 9 || whole.len() > 19 || !whole.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(whole).ok()?.parse().ok()
}

/// [`minute_of`], remembering the last answer: a log's lines come in time order, so most error
/// lines share the minute of the one before. Only times whose minute is a function of their
/// first 17 bytes (`$time_local`, ISO 8601) are remembered; `$msec` is read every time.
fn minute_cached(cache: &mut Option<([u8; 17], Option<u64>)>, t: &[u8]) -> Option<u64> {
    let Some(head) = t.get(..17) else {
        return minute_of(t);
    };
    if let Some((key, minute)) = cache {
        if key[..] == *head {
            return *minute;
        }
    }
    let minute = minute_of(t);
    let fixed = (t[2] == b'/' && t[6] == b'/' && t[11] == b':')
        || (t[4] == b'-' && t[7] == b'-' && matches!(t[10], b'T' | b' '));
    if fixed {
        let mut key = [0u8; 17];
        key.copy_from_slice(head);
        *cache = Some((key, minute));
    }
    minute
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2025-11-24 19:29` for a minute index.
pub fn minute_label(minute: u64) -> String {
    let days = minute / 1440;
    let (hh, mm) = ((minute % 1440) / 60, minute % 60);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn times_of_every_format_agree() {
        let a = minute_of(b"24/Nov/2025:19:29:01 +0000").unwrap();
        assert_eq!(minute_of(b"2025-11-24T19:29:59+00:00"), Some(a));
        assert_eq!(minute_of(b"1764012541.123"), Some(a));
        assert_eq!(minute_label(a), "2025-11-24 19:29");
        assert_eq!(
            minute_of(b"06/Feb/2009:12:14:14.655")
                .map(minute_label)
                .as_deref(),
            Some("2009-02-06 12:14")
        );
        assert_eq!(minute_of(b"nonsense"), None);
        assert_eq!(minute_of(b"99/Xyz/2025:19:29:01"), None);
    }

    /// The access log's and the error log's clocks read alike, to the second.
    #[test]
    fn seconds_of_every_format_agree() {
        let a = second_of(b"24/Nov/2025:19:29:01 +0000").unwrap();
        assert_eq!(a % 60, 1);
        assert_eq!(second_of(b"2025/11/24 19:29:01"), Some(a));
        assert_eq!(second_of(b"2025-11-24T19:29:01+00:00"), Some(a));
        assert_eq!(second_of(b"1764012541.123"), Some(a));
        assert_eq!(second_of(b"2025/13/24 19:29:01"), None);
        assert_eq!(second_of(b"24/Nov/2025:19:29:6x +0000"), None);
        assert_eq!(second_of(b"-"), None);
    }

    /// The remembered minute is the minute of the line at hand, whatever came before.
    #[test]
    fn cached_minutes_agree_with_minute_of() {
        let times: [&[u8]; 9] = [
            b"24/Nov/2025:19:29:01 +0000",
            b"24/Nov/2025:19:29:59 +0000",
            b"24/Nov/2025:19:30:00 +0000",
            b"2025-11-24T19:29:59+00:00",
            b"1764012541.123",
            b"17640125411234567.5",
            b"17640125411234567",
            b"99/Xyz/2025:19:29:01",
            b"24/Nov/2025:19:30:00 +0000",
        ];
        let mut cache = None;
        for _ in 0..2 {
            for t in times {
                assert_eq!(minute_cached(&mut cache, t), minute_of(t), "{t:?}");
            }
        }
    }

    #[test]
    fn top_k_stays_bounded_and_keeps_the_heavy_keys() {
        let mut t = TopK::default();
        for i in 0..100_000u32 {
            t.add(format!("/rare/{i}").as_bytes(), 1);
            t.add(b"/heavy", 1);
        }
        assert!(t.len() <= TOP_CAPACITY);
        assert_eq!(t.top(1), vec![("/heavy".to_string(), 100_000)]);
        assert!(t.dropped > 0);
    }

    /// The semantics of [`TopK`] written the slow way: keys in the order they were added, a
    /// linear search, and the documented pruning (keep the half with the largest counts, ties at
    /// the cut to the earliest keys, the rest counted in `dropped`).
    #[derive(Default)]
    struct ModelTopK {
        keys: Vec<(Vec<u8>, u64)>,
        dropped: u64,
    }

    impl ModelTopK {
        fn add(&mut self, key: &[u8], n: u64) {
            let key = &key[..key.len().min(MAX_KEY)];
            if let Some(e) = self.keys.iter_mut().find(|e| e.0 == key) {
                e.1 += n;
                return;
            }
            if self.keys.len() >= TOP_CAPACITY {
                let mut counts: Vec<u64> = self.keys.iter().map(|e| e.1).collect();
                counts.sort_unstable_by(|a, b| b.cmp(a));
                let cut = counts[TOP_CAPACITY / 2 - 1];
                let mut kept = 0;
                let mut dropped = 0;
                self.keys.retain(|e| {
                    let keep = e.1 > cut || (e.1 == cut && kept < TOP_CAPACITY / 2);
                    if keep {
                        kept += 1;
                    } else {
                        dropped += e.1;
                    }
                    keep
                });
                self.dropped += dropped;
            }
            self.keys.push((key.to_vec(), n));
        }
    }

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *seed >> 16
    }

    /// A random key: mostly a few heavy ones, else one of many rare ones; lengths from 0 to
    /// past [`MAX_KEY`] (keys that differ only after the cut are one key).
    fn random_key(seed: &mut u64, rare: u64) -> Vec<u8> {
        let r = lcg(seed);
        let id = if r % 4 == 0 { r % 7 } else { r % rare };
        let len = match id % 5 {
            0 => 0,
            1 => 1 + id as usize % 8,
            2 => MAX_KEY - 1 + id as usize % 3,
            3 => MAX_KEY + 40,
            _ => 9 + id as usize % 60,
        };
        let mut k: Vec<u8> = format!("/{id}/")
            .into_bytes()
            .into_iter()
            .cycle()
            .take(len)
            .collect();
        if len > MAX_KEY {
            // Beyond the cut: must not make a different key.
            k[MAX_KEY..].fill(b'x' + (r % 3) as u8);
        }
        k
    }

    /// The table holds what the slow model holds, key for key and count for count, and drops
    /// the same counts, on random keys below and far above its capacity; merging agrees too.
    #[test]
    fn top_k_table_agrees_with_the_slow_model() {
        let mut seed = 12_345u64;
        for (round, rare) in [50u64, 400, 600, 5_000, 100_000].into_iter().enumerate() {
            let mut t = TopK::default();
            let mut m = ModelTopK::default();
            let mut exact: HashMap<Vec<u8>, u64> = HashMap::new();
            let mut total = 0;
            for _ in 0..20_000 {
                let k = random_key(&mut seed, rare);
                let n = 1 + lcg(&mut seed) % 3;
                t.add(&k, n);
                m.add(&k, n);
                *exact.entry(k[..k.len().min(MAX_KEY)].to_vec()).or_default() += n;
                total += n;
            }
            let got: Vec<(Vec<u8>, u64)> = t.iter().map(|(k, n)| (k.to_vec(), n)).collect();
            assert_eq!(got, m.keys, "round {round}");
            assert_eq!(t.dropped, m.dropped, "round {round}");
            assert!(t.len() <= TOP_CAPACITY);
            assert_eq!(got.iter().map(|e| e.1).sum::<u64>() + t.dropped, total);
            // Approximate only once something was dropped; counts are lower bounds.
            assert_eq!(t.dropped == 0, exact.len() <= TOP_CAPACITY, "round {round}");
            for (k, n) in &got {
                assert!(*n <= exact[k]);
                if t.dropped == 0 {
                    assert_eq!(*n, exact[k]);
                }
            }
            let mut merged = TopK::default();
            let mut model = ModelTopK::default();
            for (k, n) in m.keys.iter().rev() {
                merged.add(k, *n);
                model.add(k, *n);
            }
            merged.merge(t.clone());
            model.dropped += m.dropped;
            for (k, n) in &m.keys {
                model.add(k, *n);
            }
            let got: Vec<(Vec<u8>, u64)> = merged.iter().map(|(k, n)| (k.to_vec(), n)).collect();
            assert_eq!(got, model.keys, "merge, round {round}");
            assert_eq!(merged.dropped, model.dropped, "merge, round {round}");
        }
    }

    /// A full table finds each of its keys again (probes past the keys that share a slot), and
    /// the first key beyond it drops the smaller half.
    #[test]
    fn top_k_finds_every_key_of_a_full_table() {
        let mut t = TopK::default();
        for i in 0..TOP_CAPACITY as u32 {
            t.add(&i.to_le_bytes(), u64::from(i) + 1);
        }
        assert_eq!(t.len(), TOP_CAPACITY);
        for i in 0..TOP_CAPACITY as u32 {
            t.add(&i.to_le_bytes(), 1);
        }
        assert_eq!(t.dropped, 0);
        for (k, n) in t.iter() {
            let i = u32::from_le_bytes(k.try_into().unwrap());
            assert_eq!(n, u64::from(i) + 2);
        }
        // One more key: the smaller half goes (counts 2..=257), the new key is in.
        t.add(b"new", 1);
        assert_eq!(t.len(), TOP_CAPACITY / 2 + 1);
        assert_eq!(t.dropped, (2..=257).sum::<u64>());
        assert_eq!(
            t.top(1),
            vec![(
                String::from_utf8_lossy(&511u32.to_le_bytes()).into_owned(),
                513
            )]
        );
    }

    #[test]
    fn buckets_widen_instead_of_growing() {
        let mut b = TimeBuckets::default();
        for m in 0..10_000 {
            b.add(m, 1);
        }
        assert!(b.counts.len() <= MAX_BUCKETS);
        assert_eq!(b.counts.values().sum::<u64>(), 10_000);
        assert!(b.width >= 16);
    }
}
