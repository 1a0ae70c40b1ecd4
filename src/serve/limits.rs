//! The serve mode's caps on probes: so many at once, and one at a time per target. A second
//! scrape of a target already being probed waits for it or is refused; it never doubles the
//! load on that target. Each probe's own caps (requests, rate, duration) are its module's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::config::WhenBusy;
use crate::target::Target;

/// Why a probe did not get its slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    #[error("{target} is being probed already; one probe at a time per target")]
    Target { target: String },
    #[error("{running} probes are running already, the most the config allows at once (limits: concurrent-probes)")]
    Server { running: usize },
}

/// One lock per target in use, kept while some probe holds or waits for it.
#[derive(Debug, Default)]
pub struct TargetLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// A probe's right to run: released when dropped.
#[derive(Debug)]
pub struct Slot {
    _server: OwnedSemaphorePermit,
    _targets: Vec<OwnedMutexGuard<()>>,
}

/// Where a target's load lands: its address and port, whatever the path.
pub fn target_key(t: &Target) -> String {
    format!("{}:{}", t.host.to_ascii_lowercase(), t.port)
}

impl TargetLocks {
    fn lock_of(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Locks nobody holds or waits for go: the map stays as large as the probes running.
        map.retain(|_, lock| Arc::strong_count(lock) > 1);
        map.entry(key.to_string()).or_default().clone()
    }

    /// A slot of `server` and the lock of every target in `keys`, waiting until `deadline`
    /// or not at all, as `when_busy` says.
    pub async fn take(
        &self,
        server: &Arc<Semaphore>,
        capacity: usize,
        keys: &[String],
        when_busy: WhenBusy,
        deadline: Instant,
    ) -> Result<Slot, Busy> {
        let mut keys = keys.to_vec();
        // One order for every probe: two probes sharing two targets cannot wait on each other.
        keys.sort();
        keys.dedup();
        let mut held = Vec::new();
        for key in &keys {
            let lock = self.lock_of(key);
            let busy = || Busy::Target {
                target: key.clone(),
            };
            let guard = match when_busy {
                WhenBusy::Refuse => lock.try_lock_owned().map_err(|_| busy())?,
                WhenBusy::Wait => tokio::time::timeout_at(deadline, lock.lock_owned())
                    .await
                    .map_err(|_| busy())?,
            };
            held.push(guard);
        }
        let running = || Busy::Server { running: capacity };
        let permit = match when_busy {
            WhenBusy::Refuse => server.clone().try_acquire_owned().map_err(|_| running())?,
            WhenBusy::Wait => tokio::time::timeout_at(deadline, server.clone().acquire_owned())
                .await
                .map_err(|_| running())?
                .map_err(|_| running())?,
        };
        Ok(Slot {
            _server: permit,
            _targets: held,
        })
    }
}

/// How long a probe may run: the scrape's timeout less the margin (so the answer reaches
/// Prometheus before it gives up), never more than the module's own duration cap, and at
/// least a tenth of a second.
pub fn probe_budget(
    scrape_timeout: Option<Duration>,
    margin: Duration,
    module: Duration,
) -> Duration {
    let floor = Duration::from_millis(100);
    match scrape_timeout {
        Some(t) => t.saturating_sub(margin).max(floor).min(module),
        None => module,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_the_scrape_timeout_less_the_margin_within_the_module_cap() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(probe_budget(Some(s(5)), ms(500), s(60)), ms(4500));
        assert_eq!(probe_budget(Some(s(120)), ms(500), s(60)), s(60));
        assert_eq!(probe_budget(None, ms(500), s(60)), s(60));
        assert_eq!(probe_budget(Some(ms(300)), ms(500), s(60)), ms(100));
    }

    #[tokio::test]
    async fn a_second_probe_of_a_target_is_refused_or_waits_never_runs_beside_it() {
        let locks = TargetLocks::default();
        let server = Arc::new(Semaphore::new(4));
        let keys = vec!["127.0.0.1:80".to_string()];
        let soon = Instant::now() + Duration::from_millis(50);
        let first = locks
            .take(&server, 4, &keys, WhenBusy::Refuse, soon)
            .await
            .expect("the first probe runs");
        let refused = locks.take(&server, 4, &keys, WhenBusy::Refuse, soon).await;
        assert!(matches!(refused, Err(Busy::Target { .. })));
        let waited = locks.take(&server, 4, &keys, WhenBusy::Wait, soon).await;
        assert!(
            matches!(waited, Err(Busy::Target { .. })),
            "waits until the deadline only"
        );
        // Another target runs beside it.
        let other = vec!["127.0.0.2:80".to_string()];
        assert!(locks
            .take(&server, 4, &other, WhenBusy::Refuse, soon)
            .await
            .is_ok());
        drop(first);
        assert!(locks
            .take(&server, 4, &keys, WhenBusy::Refuse, soon)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn the_server_cap_counts_every_target() {
        let locks = TargetLocks::default();
        let server = Arc::new(Semaphore::new(1));
        let soon = Instant::now() + Duration::from_millis(50);
        let _first = locks
            .take(&server, 1, &["a:1".into()], WhenBusy::Refuse, soon)
            .await
            .expect("one probe runs");
        let second = locks
            .take(&server, 1, &["b:1".into()], WhenBusy::Refuse, soon)
            .await;
        assert_eq!(second.err(), Some(Busy::Server { running: 1 }));
    }
}
