//! [`StrictPriority`]: roles served strictly by priority (their weight: higher first), the
//! alternative to weighted DRF. A role gets only what every role of higher priority does not
//! take (it declined, is filtered, or is suppressed); roles of equal priority share by DRF.

use crate::hierarchical::{HierarchicalAllocator, RoleOrder};
use crate::resources::Resources;

/// Strict priority between roles. See the [module docs](self).
#[derive(Debug, Default)]
pub struct StrictPriority;

impl RoleOrder for StrictPriority {
    fn rank(&self, allocation: &Resources, weight: f64, total: &Resources) -> [f64; 2] {
        [-weight, allocation.dominant_share_of(total)]
    }
}

/// The hierarchical allocator with strict priorities between roles.
pub type PriorityAllocator = HierarchicalAllocator<StrictPriority>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::Allocator;
    use std::time::{Duration, Instant};

    const GB: u64 = 1024;

    #[test]
    fn the_higher_priority_takes_all_it_wants_and_the_lower_gets_the_rest() {
        let mut alloc = PriorityAllocator::new();
        for i in 0..4 {
            alloc.add_agent(&format!("s{i}"), Resources::new(2.0, GB));
        }
        alloc.set_weight("production", 10.0);
        alloc.add_framework("batch", &["*"]);
        alloc.add_framework("prod", &["production"]);
        let now = Instant::now();
        let d = alloc.allocate(now);
        assert!(d.iter().all(|d| d.framework_id == "prod"), "{d:?}");
        assert_eq!(d.len(), 4);
        // prod keeps two agents and declines two: only then does batch get them.
        for agent in ["s2", "s3"] {
            alloc.recover_resources(
                "prod",
                "production",
                agent,
                Resources::new(2.0, GB),
                Some(now + Duration::from_secs(30)),
            );
        }
        let d = alloc.allocate(now);
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d.framework_id == "batch"), "{d:?}");
        // Weighted DRF would have split the cluster evenly from the start.
        let mut fair = crate::drf::DrfAllocator::new();
        for i in 0..4 {
            fair.add_agent(&format!("s{i}"), Resources::new(2.0, GB));
        }
        fair.add_framework("batch", &["*"]);
        fair.add_framework("prod", &["production"]);
        let d = fair.allocate(now);
        assert_eq!(d.iter().filter(|d| d.framework_id == "batch").count(), 2);
    }
}
