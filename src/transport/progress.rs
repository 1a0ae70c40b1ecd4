//! The minimum-rate rule for response heads: once an answer's head has begun, it must end
//! within a grace period plus the time its bytes take at a minimum rate, as Apache's
//! mod_reqtimeout reasons about request heads (`header=…,MinRate=500`). A server writes its
//! head at once (a proxy in front of a slow server still sends a whole head), so a head that
//! trickles in a byte at a time is a server dripping on purpose or broken: a timeout well
//! before the request timeout, however many bytes came.
//!
//! Bodies have no such rule: a body that pauses (a server streaming what it computes) cannot
//! be told from one that drips until the pause ends, and the probes that wait on purpose (a
//! listener's read timeout firing mid-body) must see that end. Interim answers (1xx) do not
//! count as progress towards the final head, nor against it: each restarts the clock, as a
//! `103 Early Hints` sent long before the final answer is allowed to.

use std::time::Duration;

use tokio::time::Instant;

/// How fast a head that has begun must keep coming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// Time allowed from a head's first byte regardless of its size.
    pub grace: Duration,
    /// Bytes per second a head must keep up beyond the grace.
    pub bytes_per_sec: u32,
}

impl Default for MinRate {
    fn default() -> Self {
        MinRate {
            grace: Duration::from_secs(2),
            bytes_per_sec: 500,
        }
    }
}

/// Watches the response bytes of one exchange for the end of the final head.
#[derive(Debug)]
pub(crate) struct HeadClock {
    rule: MinRate,
    /// Where the head being read begins (after the interim answers before it).
    start: usize,
    /// When its first byte arrived.
    started_at: Option<Instant>,
    /// Where the search for the blank line that ends it resumes.
    scan_from: usize,
    /// The final head is in (or the rule no longer applies): nothing more to watch.
    done: bool,
    /// Heads longer than this are the size rules' business, not this one's.
    max_head: usize,
}

impl HeadClock {
    pub(crate) fn new(rule: Option<MinRate>, max_head: usize) -> HeadClock {
        HeadClock {
            rule: rule.unwrap_or_default(),
            start: 0,
            started_at: None,
            scan_from: 0,
            done: rule.is_none(),
            max_head,
        }
    }

    /// Account for the bytes received so far (`bytes` holds all of them), at `now`.
    pub(crate) fn advance(&mut self, bytes: &[u8], now: Instant) {
        while !self.done && self.start < bytes.len() {
            if self.started_at.is_none() {
                self.started_at = Some(now);
            }
            let Some(end) = blank_line_end(bytes, self.scan_from.max(self.start)) else {
                // The next search re-reads the last bytes: a CRLFCRLF may straddle two reads.
                self.scan_from = bytes.len().saturating_sub(3).max(self.start);
                if bytes.len() - self.start > self.max_head {
                    self.done = true;
                }
                return;
            };
            if interim(&bytes[self.start..end]) {
                // An interim answer is in: the clock waits for the next head's first byte.
                self.start = end;
                self.scan_from = end;
                self.started_at = None;
            } else {
                self.done = true;
            }
        }
    }

    /// When the head being read must have ended; `None` when no head is being read.
    pub(crate) fn deadline(&self, bytes_in: usize) -> Option<Instant> {
        if self.done {
            return None;
        }
        let started = self.started_at?;
        let head_bytes = bytes_in.saturating_sub(self.start) as f64;
        let allowance =
            Duration::from_secs_f64(head_bytes / f64::from(self.rule.bytes_per_sec.max(1)));
        Some(started + self.rule.grace + allowance)
    }
}

/// The index just past the first blank line (CRLF CRLF, or bare LF LF) at or after `from`.
fn blank_line_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(lf) = memchr::memchr(b'\n', &bytes[i..]) {
        let at = i + lf;
        match bytes.get(at + 1) {
            Some(b'\n') => return Some(at + 2),
            Some(b'\r') if bytes.get(at + 2) == Some(&b'\n') => return Some(at + 3),
            _ => i = at + 1,
        }
    }
    None
}

/// Whether a head is an interim answer: `HTTP/x.y 1xx`, other than 101 (a protocol switch is
/// the last HTTP/1 head there is).
fn interim(head: &[u8]) -> bool {
    let line = head.trim_ascii_start();
    let Some(rest) = line.strip_prefix(b"HTTP/") else {
        return false;
    };
    let code = rest
        .iter()
        .position(|&b| b == b' ')
        .and_then(|sp| rest.get(sp + 1..sp + 4));
    matches!(code, Some([b'1', a, b]) if a.is_ascii_digit() && b.is_ascii_digit() && [*a, *b] != *b"01")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> HeadClock {
        HeadClock::new(Some(MinRate::default()), 64 * 1024)
    }

    #[test]
    fn blank_lines_are_found_across_line_ends() {
        assert_eq!(blank_line_end(b"HTTP/1.1 200 OK\r\n\r\nbody", 0), Some(19));
        assert_eq!(blank_line_end(b"HTTP/1.1 200 OK\n\nbody", 0), Some(17));
        assert_eq!(blank_line_end(b"HTTP/1.1 200 OK\r\nA: b\r\n", 0), None);
        assert_eq!(blank_line_end(b"\n", 0), None);
    }

    #[test]
    fn interim_answers_are_1xx_but_not_101() {
        assert!(interim(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(interim(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"));
        assert!(!interim(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"));
        assert!(!interim(b"HTTP/1.1 200 OK\r\n\r\n"));
        assert!(!interim(b"garbage\r\n\r\n"));
    }

    #[test]
    fn a_head_that_began_has_a_deadline_until_it_ends() {
        let t0 = Instant::now();
        let mut c = clock();
        assert_eq!(c.deadline(0), None, "nothing began");
        c.advance(b"HT", t0);
        assert_eq!(
            c.deadline(2),
            Some(t0 + Duration::from_secs(2) + Duration::from_millis(4))
        );
        // More bytes later: the clock still runs from the first one, with more allowance.
        let more = b"HTTP/1.1 200 OK\r\nServer: x\r\n";
        c.advance(more, t0 + Duration::from_secs(1));
        let expected = Duration::from_secs_f64(2.0 + more.len() as f64 / 500.0);
        assert_eq!(c.deadline(more.len()), Some(t0 + expected));
        c.advance(
            b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbo",
            t0 + Duration::from_secs(1),
        );
        assert_eq!(c.deadline(40), None, "the head is in; the body has no rule");
    }

    #[test]
    fn interim_answers_restart_the_clock() {
        let t0 = Instant::now();
        let mut c = clock();
        let interim = b"HTTP/1.1 102 Processing\r\n\r\n";
        c.advance(interim, t0);
        assert_eq!(c.deadline(interim.len()), None, "between heads, no clock");
        let mut bytes = interim.to_vec();
        bytes.extend_from_slice(b"HTTP/1.1 2");
        let t1 = t0 + Duration::from_secs(5);
        c.advance(&bytes, t1);
        let d = c.deadline(bytes.len()).expect("the final head began");
        assert!(d > t1 + Duration::from_secs(2) && d < t1 + Duration::from_millis(2100));
    }

    #[test]
    fn no_rule_no_deadline_and_huge_heads_are_left_to_the_size_bound() {
        let mut off = HeadClock::new(None, 64 * 1024);
        off.advance(b"HT", Instant::now());
        assert_eq!(off.deadline(2), None);
        let mut small = HeadClock::new(Some(MinRate::default()), 8);
        small.advance(b"HTTP/1.1 200 OK\r\nX: y", Instant::now());
        assert_eq!(small.deadline(21), None);
    }
}
