//! Central enforcement of a run's safety caps: request count, rate and duration.
//!
//! Every request any probe sends takes a ticket here first, so no probe family can exceed the
//! scenario's limits on its own.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::Limits;

/// Why a request was not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Exhausted {
    #[error("the run's request cap ({0}) is reached")]
    Requests(u32),
    #[error("the run's time cap ({0:?}) is reached")]
    Duration(Duration),
    #[error("the run was interrupted (Ctrl-C or SIGTERM)")]
    Interrupted,
}

/// A request to stop issuing requests (Ctrl-C), shared by whoever asks and the run's budget.
/// Once triggered it stays triggered.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<InterruptState>);

#[derive(Debug, Default)]
struct InterruptState {
    triggered: AtomicBool,
    notify: Notify,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    pub fn trigger(&self) {
        self.0.triggered.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_triggered(&self) -> bool {
        self.0.triggered.load(Ordering::SeqCst)
    }

    /// Resolves once [`trigger`](Self::trigger) has been called (at once if it was).
    pub async fn triggered(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the flag is read, so a trigger in between is not missed.
            notified.as_mut().enable();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

pub struct Budget {
    limits: Limits,
    sent: AtomicU32,
    started: Instant,
    interval: Duration,
    /// When the next request may start (a token bucket of depth one: smooth, never bursty).
    next_slot: Mutex<Instant>,
    first_refusal: Mutex<Option<Exhausted>>,
    interrupt: Interrupt,
}

impl Budget {
    pub fn new(limits: Limits) -> Budget {
        let now = Instant::now();
        let interval = if limits.max_rate > 0.0 {
            Duration::from_secs_f64(1.0 / limits.max_rate)
        } else {
            Duration::ZERO
        };
        Budget {
            limits,
            sent: AtomicU32::new(0),
            started: now,
            interval,
            next_slot: Mutex::new(now),
            first_refusal: Mutex::new(None),
            interrupt: Interrupt::new(),
        }
    }

    /// The same budget, refusing every request once `interrupt` is triggered.
    pub fn with_interrupt(mut self, interrupt: Interrupt) -> Budget {
        self.interrupt = interrupt;
        self
    }

    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    /// Wait for the rate limiter and count one request, or refuse.
    pub async fn ticket(&self) -> Result<(), Exhausted> {
        if self.interrupt.is_triggered() {
            return Err(self.refuse(Exhausted::Interrupted));
        }
        let deadline = self.started + self.limits.max_duration;
        let slot = {
            let mut next = self.next_slot.lock().unwrap_or_else(|p| p.into_inner());
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        if slot >= deadline {
            return Err(self.refuse(Exhausted::Duration(self.limits.max_duration)));
        }
        tokio::select! {
            _ = tokio::time::sleep_until(slot) => {}
            _ = self.interrupt.triggered() => return Err(self.refuse(Exhausted::Interrupted)),
        }
        let n = self.sent.fetch_add(1, Ordering::SeqCst);
        if n >= self.limits.max_requests {
            self.sent.fetch_sub(1, Ordering::SeqCst);
            return Err(self.refuse(Exhausted::Requests(self.limits.max_requests)));
        }
        Ok(())
    }

    /// Time left before the duration cap.
    pub fn remaining(&self) -> Duration {
        (self.started + self.limits.max_duration).saturating_duration_since(Instant::now())
    }

    fn refuse(&self, why: Exhausted) -> Exhausted {
        let mut first = self.first_refusal.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(why);
        why
    }

    /// The run's caps, for probes that size themselves under them (the rate ramp).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn sent(&self) -> u32 {
        self.sent.load(Ordering::SeqCst)
    }

    /// The first cap that refused a request, if any did: the run is then partial.
    pub fn refusal(&self) -> Option<Exhausted> {
        *self.first_refusal.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn caps_requests_and_spaces_them_by_rate() {
        let budget = Budget::new(Limits {
            max_requests: 3,
            max_rate: 10.0,
            max_duration: Duration::from_secs(60),
            request_timeout: Duration::from_secs(1),
        });
        let start = Instant::now();
        for _ in 0..3 {
            budget.ticket().await.unwrap();
        }
        // Paused clock: elapsed time is exactly what the limiter slept.
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        assert_eq!(budget.ticket().await, Err(Exhausted::Requests(3)));
        assert_eq!(budget.sent(), 3);
        assert_eq!(budget.refusal(), Some(Exhausted::Requests(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_interrupt_refuses_waiting_and_later_tickets() {
        let interrupt = Interrupt::new();
        let budget = Arc::new(
            Budget::new(Limits {
                max_requests: 100,
                max_rate: 0.1,
                max_duration: Duration::from_secs(600),
                request_timeout: Duration::from_secs(1),
            })
            .with_interrupt(interrupt.clone()),
        );
        budget.ticket().await.unwrap();
        // The next slot is 10 s away: the waiting ticket is refused when the interrupt comes.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.ticket().await }
        });
        tokio::task::yield_now().await;
        interrupt.trigger();
        assert_eq!(waiting.await.unwrap(), Err(Exhausted::Interrupted));
        assert_eq!(budget.ticket().await, Err(Exhausted::Interrupted));
        assert_eq!(budget.sent(), 1);
        assert_eq!(budget.refusal(), Some(Exhausted::Interrupted));
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_past_the_duration_cap() {
        let budget = Budget::new(Limits {
            max_requests: 100,
            max_rate: 1.0,
            max_duration: Duration::from_millis(2500),
            request_timeout: Duration::from_secs(1),
        });
        for _ in 0..3 {
            budget.ticket().await.unwrap();
        }
        assert!(matches!(budget.ticket().await, Err(Exhausted::Duration(_))));
    }
}
