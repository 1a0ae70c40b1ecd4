//! The floor of a run's wall time: no schedule can finish before the run's requests are spent at
//! its max rate, nor before its longest single wait is over. The report sets the wall time
//! against it, so a run that takes much longer than its floor shows it (waits that add up where
//! they could overlap).
//!
//! The longest wait is the longest any request of this run actually waited for its answer (or
//! for nothing), named by its plan: each [`Planned`] request carries the wait its family declares
//! (a template a server may sit on, an incomplete request), else the request timeout bounds it.
//! A request answered in a millisecond made no 10 s wait, whatever its bound: counting bounds
//! instead of waits would put every run's floor at the request timeout.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::target::Role;

use super::context::Planned;
use super::{Family, Observation};

/// The longest single wait of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LongestWait {
    pub family: Family,
    /// As the observation is named (a template id, `header-8192`, `request-3`).
    pub variant: String,
    pub role: Role,
    /// How long the request waited, from its connect to its end.
    pub seconds: f64,
    /// What its plan allowed it: its family's declared wait, or the run's request timeout.
    pub bound_seconds: f64,
    /// True when the bound is the family's declared wait, false when it is the request timeout.
    pub declared: bool,
}

impl LongestWait {
    /// Whether the request waited out its whole bound (no answer came before it).
    pub fn waited_out(&self) -> bool {
        self.seconds + 0.05 >= self.bound_seconds
    }
}

/// A run's floor: the time its requests take at the max rate, and its longest single wait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    /// requests ÷ max rate.
    pub rate_seconds: f64,
    pub longest_wait: Option<LongestWait>,
}

impl Floor {
    /// The larger of the two: no schedule finishes sooner.
    pub fn seconds(&self) -> f64 {
        self.longest_wait
            .as_ref()
            .map_or(0.0, |w| w.seconds)
            .max(self.rate_seconds)
    }

    /// Whether the longest wait, not the rate, sets the floor.
    pub fn set_by_wait(&self) -> bool {
        self.longest_wait
            .as_ref()
            .is_some_and(|w| w.seconds > self.rate_seconds)
    }
}

/// The declared waits of planned requests, by what their observations are named.
pub type Waits = HashMap<(Family, String, Role), Duration>;

/// The declared waits of `planned` (requests without one are bounded by the request timeout).
pub fn declared(planned: &[Planned]) -> Waits {
    planned
        .iter()
        .filter_map(|p| Some(((p.family, p.variant.clone(), p.role), p.wait?)))
        .collect()
}

/// The floor of a run that sent `requests` at `max_rate` per second and made `observations`.
pub fn floor(
    requests: u32,
    max_rate: f64,
    observations: &[Observation],
    waits: &Waits,
    request_timeout: Duration,
) -> Floor {
    let rate_seconds = if max_rate > 0.0 {
        f64::from(requests) / max_rate
    } else {
        0.0
    };
    let longest_wait = observations
        .iter()
        .filter_map(|o| Some((o, o.exchange.as_ref()?.timings.total_ms / 1000.0)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(o, seconds)| {
            let declared = waits
                .get(&(o.family, o.variant.clone(), o.role))
                .copied()
                // A malformed template's wait is its exchange's deadline, which the request
                // timeout caps; partial and keepalive wait past the request timeout on purpose.
                .filter(|&wait| o.family != Family::Malformed || wait < request_timeout);
            LongestWait {
                family: o.family,
                variant: o.variant.clone(),
                role: o.role,
                seconds,
                bound_seconds: declared.unwrap_or(request_timeout).as_secs_f64(),
                declared: declared.is_some(),
            }
        });
    Floor {
        rate_seconds,
        longest_wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Detail, SentRequest};
    use crate::transport::{ConnEnd, Endpoint, Exchange, Wire};

    fn observed(family: Family, variant: &str, role: Role, ms: f64) -> Observation {
        let endpoint = Endpoint {
            host: "127.0.0.1".into(),
            port: 1,
            wire: Wire::Plain,
            family: None,
        };
        let mut exchange = Exchange::not_started(&endpoint);
        exchange.end = ConnEnd::Timeout;
        exchange.timings.total_ms = ms;
        Observation {
            id: "o1".into(),
            family,
            variant: variant.into(),
            role,
            well_formed: false,
            evidence_for: Vec::new(),
            request: SentRequest::described("", 0, true),
            exchange: Some(exchange),
            detail: Detail::None,
            logged: None,
        }
    }

    #[test]
    fn the_longest_wait_made_is_named_with_the_bound_its_plan_gave_it() {
        let observations = [
            observed(
                Family::Malformed,
                "cl-larger-than-body",
                Role::Backend,
                3000.0,
            ),
            observed(Family::Methods, "GET", Role::Listener, 2.0),
        ];
        let waits: Waits = [(
            (
                Family::Malformed,
                "cl-larger-than-body".to_string(),
                Role::Backend,
            ),
            Duration::from_secs(3),
        )]
        .into();
        let f = floor(100, 50.0, &observations, &waits, Duration::from_secs(10));
        assert_eq!(f.rate_seconds, 2.0);
        let w = f.longest_wait.clone().expect("a wait");
        assert_eq!(
            (w.family, w.variant.as_str(), w.role),
            (Family::Malformed, "cl-larger-than-body", Role::Backend)
        );
        assert!(w.declared && w.waited_out(), "{w:?}");
        assert_eq!(w.bound_seconds, 3.0);
        assert!(f.set_by_wait());
        assert_eq!(f.seconds(), 3.0);
        // Under a shorter request timeout, the template's wait is the timeout's.
        let f = floor(100, 50.0, &observations, &waits, Duration::from_secs(1));
        let w = f.longest_wait.expect("a wait");
        assert!(!w.declared);
        assert_eq!(w.bound_seconds, 1.0);
    }

    #[test]
    fn quick_answers_leave_the_rate_as_the_floor() {
        let observations = [observed(Family::Methods, "GET", Role::Listener, 2.0)];
        let f = floor(
            500,
            50.0,
            &observations,
            &Waits::new(),
            Duration::from_secs(10),
        );
        assert!(!f.set_by_wait());
        assert_eq!(f.seconds(), 10.0);
        let w = f.longest_wait.expect("a wait");
        assert!(!w.waited_out() && !w.declared && w.bound_seconds == 10.0);
    }
}
