//! A [`Plan`] built step by step: the sides first, then only what differs from the defaults.
//! A new field of the plan gets its default here, not at every place that builds a plan.

use crate::profile::Profile;
use crate::target::Target;

use super::{Limits, MarkerPlace, Plan, ProbeSpec};

/// `with_FIELD(value)`: the plan with that field set and the others kept.
macro_rules! with {
    ($($(#[doc = $doc:literal])* $setter:ident => $field:ident: $ty:ty,)*) => {
        $(
            $(#[doc = $doc])*
            pub fn $setter(self, $field: $ty) -> Plan {
                Plan { $field, ..self }
            }
        )*
    };
}

impl Plan {
    /// A plan against these sides with the defaults: the `auto` profile, no probes, the default
    /// limits, only the always-masked headers, no marker, no pool.
    pub fn new(listener: Option<Target>, backend: Option<Target>) -> Plan {
        Plan {
            listener,
            backend,
            profile: Profile::default(),
            probes: Vec::new(),
            limits: Limits::default(),
            mask: Vec::new(),
            marker: false,
            marker_place: MarkerPlace::Header,
            pool: Vec::new(),
            owner_confirmed: false,
        }
    }

    with! {
        /// Whose documented numbers the measurements are compared with.
        with_profile => profile: Profile,
        with_probes => probes: Vec<ProbeSpec>,
        with_limits => limits: Limits,
        /// Header names masked besides the defaults.
        with_mask => mask: Vec<String>,
        /// Add the `X-Lbprobe-Id` marker to every raw request.
        with_marker => marker: bool,
        /// Where the marker goes (the header unless said).
        with_marker_place => marker_place: MarkerPlace,
        /// Every member of the backend pool, asked directly by the `pool` family.
        with_pool => pool: Vec<Target>,
        /// `--i-own-this-target`.
        with_owner_confirmed => owner_confirmed: bool,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Family;
    use crate::target::Role;

    #[test]
    fn a_new_plan_holds_the_defaults_until_told_otherwise() {
        let backend = Target::parse(Role::Backend, "http://127.0.0.1:9090/").unwrap();
        let plan = Plan::new(None, Some(backend.clone()));
        assert!(plan.listener.is_none());
        assert_eq!(plan.profile.name, Profile::default().name);
        assert!(plan.probes.is_empty() && plan.mask.is_empty() && plan.pool.is_empty());
        assert!(!plan.marker);
        assert_eq!(plan.limits, Limits::default());

        let limits = Limits {
            max_requests: 7,
            ..Limits::default()
        };
        let plan = plan
            .with_profile(Profile::nginx())
            .with_probes(vec![ProbeSpec::default_for(Family::Protocol)])
            .with_limits(limits)
            .with_mask(vec!["X-Api-Key".into()])
            .with_marker(true)
            .with_pool(vec![backend.clone(), backend]);
        assert_eq!(plan.profile.name, Profile::nginx().name);
        assert_eq!(plan.probes.len(), 1);
        assert_eq!(plan.limits.max_requests, 7);
        assert_eq!(plan.mask, ["X-Api-Key"]);
        assert!(plan.marker);
        assert_eq!(plan.pool.len(), 2);
    }
}
