//! What a framework may do with the offers it accepts (Mesos' `Offer.Operation`): launch an
//! executor, RESERVE unreserved CPUs and memory for its role, UNRESERVE what its role holds
//! reserved. [`plan`] checks a list of [`Operation`]s against what the offers hold — in order,
//! each taking from what the ones before left — and says what each does; the master applies
//! the plan only when all of it holds, so an invalid accept changes nothing.
//!
//! Differences from Mesos, and why: an accept's offers are all of one pool (unreserved, or
//! reserved for one role), so resources a RESERVE makes are offered again (to the role) rather
//! than launched on in the same accept; only CPUs and memory are reserved (disk, ports and
//! custom scalars ride with the unreserved offer, see `tessera_allocator::extras`); static
//! reservations (`--resources "cpus(ROLE):N"`) cannot be unreserved, as in Mesos.

use tessera_allocator::{Extras, Resources};
use thiserror::Error;

/// One operation of an accept.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Operation {
    /// Launch an executor with these resources (ports, disk and scalars among the extras).
    Launch {
        executor_id: String,
        resources: Resources,
        extras: Extras,
    },
    /// Reserve unreserved CPUs and memory for the framework's role.
    Reserve {
        resources: Resources,
        extras: Extras,
    },
    /// Give CPUs and memory dynamically reserved for the framework's role back to everyone.
    Unreserve {
        resources: Resources,
        extras: Extras,
    },
}

/// What the accepted offers hold, and of which reservation they are.
#[derive(Clone, Debug)]
pub(crate) struct Offered<'a> {
    pub resources: Resources,
    pub extras: Extras,
    /// The role the offers are reserved for (`None`: unreserved).
    pub reservation: Option<&'a str>,
    /// How much of that role's reservation on the agent was made by RESERVE (only that can be
    /// unreserved).
    pub dynamic: Resources,
}

/// What an accept does, once checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// Launches in order: executor id, CPUs and memory, extras.
    pub launches: Vec<(String, Resources, Extras)>,
    /// Moved from the unreserved pool into the role's reservation.
    pub reserved: Resources,
    /// Moved from the role's reservation into the unreserved pool.
    pub unreserved: Resources,
    /// Left over: goes back to the pool it came from.
    pub unused: Resources,
    pub unused_extras: Extras,
}

/// An accept whose operations do not fit the offers; nothing was done.
#[derive(Debug, Error, PartialEq)]
pub(crate) enum OperationError {
    #[error(
        "executor {executor_id} needs {needed} but the offers hold only {left} (after the \
         operations before it); launch a smaller executor or wait for a larger offer"
    )]
    LaunchTooLarge {
        executor_id: String,
        needed: Resources,
        left: Resources,
    },
    #[error(
        "executor {executor_id} names ports {ports} that the offers do not hold (they hold \
         [{offered}]); take ports from the offer's port ranges"
    )]
    PortsNotOffered {
        executor_id: String,
        ports: String,
        offered: String,
    },
    #[error(
        "executor {executor_id} needs more than the offers hold: {missing}; ask for less or \
         wait for an offer that has it"
    )]
    ExtrasNotOffered {
        executor_id: String,
        missing: String,
    },
    #[error(
        "RESERVE needs a role: a framework of the default role `*` cannot reserve; subscribe \
         with a role (e.g. analytics)"
    )]
    ReserveWithoutRole,
    #[error(
        "RESERVE takes unreserved offers, but these are reserved for {role} already; reserve \
         from an unreserved offer"
    )]
    ReserveFromReserved { role: String },
    #[error(
        "UNRESERVE takes offers reserved for your role, but these are unreserved; unreserve \
         from an offer marked with your role"
    )]
    UnreserveUnreserved,
    #[error(
        "only cpus and mem can be reserved or unreserved; leave disk, ports and custom scalars \
         out of RESERVE and UNRESERVE"
    )]
    OnlyCpusAndMem,
    #[error("{operation} of nothing; name the cpus and mem to {operation}")]
    Nothing { operation: &'static str },
    #[error(
        "RESERVE of {wanted} but the offers hold only {left} unreserved (after the operations \
         before it); reserve less"
    )]
    ReserveTooLarge { wanted: Resources, left: Resources },
    #[error(
        "UNRESERVE of {wanted} but only {dynamic} of the role's reservation on this agent was \
         made by RESERVE and {left} of it is in the offers; the agent's static reservation \
         (its --resources) stays — unreserve at most the smaller"
    )]
    UnreserveTooLarge {
        wanted: Resources,
        dynamic: Resources,
        left: Resources,
    },
}

/// Checks `operations` of a framework in `role` against `offered` and says what they do.
pub(crate) fn plan(
    offered: &Offered,
    role: &str,
    operations: &[Operation],
) -> Result<Plan, OperationError> {
    let mut left = offered.resources;
    let mut left_extras = offered.extras.clone();
    let mut plan = Plan::default();
    for op in operations {
        match op {
            Operation::Launch {
                executor_id,
                resources,
                extras,
            } => {
                if !left.contains(resources) {
                    return Err(OperationError::LaunchTooLarge {
                        executor_id: executor_id.clone(),
                        needed: *resources,
                        left,
                    });
                }
                if !left_extras.ports.contains(&extras.ports) {
                    return Err(OperationError::PortsNotOffered {
                        executor_id: executor_id.clone(),
                        ports: extras.ports.minus(&left_extras.ports).to_string(),
                        offered: left_extras.ports.to_string(),
                    });
                }
                if !left_extras.contains(extras) {
                    return Err(OperationError::ExtrasNotOffered {
                        executor_id: executor_id.clone(),
                        missing: extras.missing_from(&left_extras).join(", "),
                    });
                }
                left = left.minus(resources);
                left_extras = left_extras.minus(extras);
                plan.launches
                    .push((executor_id.clone(), *resources, extras.clone()));
            }
            Operation::Reserve { resources, extras } => {
                check_cpus_mem("RESERVE", resources, extras)?;
                if role == tessera_allocator::DEFAULT_ROLE || role.is_empty() {
                    return Err(OperationError::ReserveWithoutRole);
                }
                if let Some(role) = offered.reservation {
                    return Err(OperationError::ReserveFromReserved {
                        role: role.to_string(),
                    });
                }
                if !left.contains(resources) {
                    return Err(OperationError::ReserveTooLarge {
                        wanted: *resources,
                        left,
                    });
                }
                left = left.minus(resources);
                plan.reserved = plan.reserved.plus(resources);
            }
            Operation::Unreserve { resources, extras } => {
                check_cpus_mem("UNRESERVE", resources, extras)?;
                if offered.reservation.is_none() {
                    return Err(OperationError::UnreserveUnreserved);
                }
                let may = offered.dynamic.minus(&plan.unreserved).min(&left);
                if !may.contains(resources) {
                    return Err(OperationError::UnreserveTooLarge {
                        wanted: *resources,
                        dynamic: offered.dynamic.minus(&plan.unreserved),
                        left,
                    });
                }
                left = left.minus(resources);
                plan.unreserved = plan.unreserved.plus(resources);
            }
        }
    }
    plan.unused = left;
    plan.unused_extras = left_extras;
    Ok(plan)
}

fn check_cpus_mem(
    operation: &'static str,
    resources: &Resources,
    extras: &Extras,
) -> Result<(), OperationError> {
    if !extras.is_empty() {
        return Err(OperationError::OnlyCpusAndMem);
    }
    if resources.is_zero() {
        return Err(OperationError::Nothing { operation });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_allocator::Ranges;

    fn ports(pairs: &[(u64, u64)]) -> Extras {
        Extras {
            ports: Ranges::new(pairs.iter().copied()),
            ..Extras::default()
        }
    }

    fn launch(id: &str, cpus: f64, mem_mb: u64, extras: Extras) -> Operation {
        Operation::Launch {
            executor_id: id.into(),
            resources: Resources::new(cpus, mem_mb),
            extras,
        }
    }

    fn reserve(cpus: f64, mem_mb: u64) -> Operation {
        Operation::Reserve {
            resources: Resources::new(cpus, mem_mb),
            extras: Extras::default(),
        }
    }

    fn unreserve(cpus: f64, mem_mb: u64) -> Operation {
        Operation::Unreserve {
            resources: Resources::new(cpus, mem_mb),
            extras: Extras::default(),
        }
    }

    fn unreserved() -> Offered<'static> {
        Offered {
            resources: Resources::new(4.0, 4096),
            extras: Extras {
                disk_mb: 1000,
                ..ports(&[(31000, 31009)])
            },
            reservation: None,
            dynamic: Resources::ZERO,
        }
    }

    #[test]
    fn launches_take_cpus_mem_and_ports_from_the_offer_in_order() {
        let plan = plan(
            &unreserved(),
            "*",
            &[
                launch("a", 1.0, 1024, ports(&[(31000, 31001)])),
                launch("b", 2.0, 1024, ports(&[(31005, 31005)])),
            ],
        )
        .unwrap();
        assert_eq!(plan.launches.len(), 2);
        assert_eq!(plan.unused, Resources::new(1.0, 2048));
        assert_eq!(
            plan.unused_extras,
            Extras {
                disk_mb: 1000,
                ..ports(&[(31002, 31004), (31006, 31009)])
            }
        );
        // A port outside the offer, or one taken by a launch before, is refused.
        let err = super::plan(
            &unreserved(),
            "*",
            &[
                launch("a", 1.0, 0, ports(&[(31000, 31000)])),
                launch("b", 1.0, 0, ports(&[(31000, 31000), (8080, 8080)])),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err,
            OperationError::PortsNotOffered {
                executor_id: "b".into(),
                ports: "8080,31000".into(),
                offered: "31001-31009".into()
            }
        );
        assert!(err.to_string().contains("take ports from the offer"));
        let too_big = super::plan(
            &unreserved(),
            "*",
            &[launch("a", 5.0, 0, Extras::default())],
        );
        assert!(matches!(
            too_big,
            Err(OperationError::LaunchTooLarge { .. })
        ));
        let disk = Extras {
            disk_mb: 2000,
            ..Extras::default()
        };
        let err = super::plan(&unreserved(), "*", &[launch("a", 1.0, 0, disk)]).unwrap_err();
        assert!(
            err.to_string().contains("disk 2000 MiB (has 1000)"),
            "{err}"
        );
    }

    #[test]
    fn reserve_takes_unreserved_cpus_and_mem_for_a_named_role() {
        let plan = plan(
            &unreserved(),
            "analytics",
            &[
                reserve(2.0, 1024),
                launch("a", 1.0, 1024, Extras::default()),
            ],
        )
        .unwrap();
        assert_eq!(plan.reserved, Resources::new(2.0, 1024));
        assert_eq!(plan.unused, Resources::new(1.0, 2048));
        let err = |role: &str, offered: &Offered, ops: &[Operation]| {
            super::plan(offered, role, ops).unwrap_err()
        };
        assert_eq!(
            err("*", &unreserved(), &[reserve(1.0, 0)]),
            OperationError::ReserveWithoutRole
        );
        assert!(matches!(
            err(
                "analytics",
                &unreserved(),
                &[reserve(3.0, 0), reserve(2.0, 0)]
            ),
            OperationError::ReserveTooLarge { .. }
        ));
        assert_eq!(
            err(
                "analytics",
                &unreserved(),
                &[Operation::Reserve {
                    resources: Resources::new(1.0, 0),
                    extras: ports(&[(31000, 31000)])
                }]
            ),
            OperationError::OnlyCpusAndMem
        );
        assert_eq!(
            err("analytics", &unreserved(), &[reserve(0.0, 0)]),
            OperationError::Nothing {
                operation: "RESERVE"
            }
        );
        let reserved = Offered {
            reservation: Some("analytics"),
            ..unreserved()
        };
        assert_eq!(
            err("analytics", &reserved, &[reserve(1.0, 0)]),
            OperationError::ReserveFromReserved {
                role: "analytics".into()
            }
        );
    }

    #[test]
    fn unreserve_gives_back_only_what_reserve_made() {
        let reserved = Offered {
            resources: Resources::new(4.0, 4096),
            extras: Extras::default(),
            reservation: Some("analytics"),
            // 2 of the 4 CPUs are the agent's static reservation.
            dynamic: Resources::new(2.0, 2048),
        };
        let plan = plan(&reserved, "analytics", &[unreserve(2.0, 2048)]).unwrap();
        assert_eq!(plan.unreserved, Resources::new(2.0, 2048));
        assert_eq!(plan.unused, Resources::new(2.0, 2048));
        let err = super::plan(
            &reserved,
            "analytics",
            &[unreserve(1.0, 0), unreserve(1.5, 0)],
        )
        .unwrap_err();
        assert!(matches!(err, OperationError::UnreserveTooLarge { .. }));
        assert!(err.to_string().contains("static reservation"), "{err}");
        assert_eq!(
            super::plan(&unreserved(), "analytics", &[unreserve(1.0, 0)]).unwrap_err(),
            OperationError::UnreserveUnreserved
        );
    }
}
