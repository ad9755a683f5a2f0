//! A role's quota, as Mesos 1.x has it: a *guarantee* the allocator satisfies before any role
//! gets more than its own guarantee, and keeps room for while it is unmet, and a *limit* the
//! role never holds more than.

use crate::resources::Resources;

/// A role's quota.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quota {
    /// Resources the role is offered first, and that other roles are not offered while the
    /// role holds less.
    pub guarantee: Resources,
    /// Resources the role never holds more of (`None`: no limit).
    pub limit: Option<Resources>,
}

impl Quota {
    /// What the role may still be offered under its limit, holding `allocated`.
    pub fn room_under_limit(&self, allocated: &Resources) -> Option<Resources> {
        self.limit.map(|limit| limit.minus(allocated))
    }

    /// What the role still lacks of its guarantee, holding `allocated`.
    pub fn unmet(&self, allocated: &Resources) -> Resources {
        self.guarantee.minus(allocated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_unmet_and_what_room_is_left() {
        let quota = Quota {
            guarantee: Resources::new(4.0, 4096),
            limit: Some(Resources::new(8.0, 8192)),
        };
        let held = Resources::new(6.0, 1024);
        assert_eq!(quota.unmet(&held), Resources::new(0.0, 3072));
        assert_eq!(
            quota.room_under_limit(&held),
            Some(Resources::new(2.0, 7168))
        );
        assert_eq!(Quota::default().room_under_limit(&held), None);
        assert!(Quota::default().unmet(&held).is_zero());
    }
}
