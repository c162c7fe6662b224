//! The one list of the order platform's consumer roles: each role's name, its default group,
//! what it is, and what its panel of the live view features. Commands, the demo and the
//! group watch take the roles from here; adding a role means one entry here, one file in
//! roles/, its command-line arguments, and how it is built (commands/consume.rs).

/// What the live view features of a role, besides what every role panel shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shows {
    /// The role's panel only.
    Panel,
    /// Its counters and its events per second next to the group table, when there is room.
    CountersAndRate,
}

/// One consumer role of the order platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RoleEntry {
    /// The role's name: its subcommand, its client ids and reports.
    pub name: &'static str,
    /// What the role does, in one line (its subcommand's help).
    pub about: &'static str,
    /// What the live view features of it.
    pub shows: Shows,
}

impl RoleEntry {
    /// The group the role joins unless told otherwise: the role's name.
    pub(crate) fn default_group(&self) -> &'static str {
        self.name
    }
}

/// Follows every order's lifecycle (roles/order_processor.rs).
pub(crate) const ORDER_PROCESSOR: RoleEntry = RoleEntry {
    name: "order-processor",
    about: "Follow every order's lifecycle; send malformed records and violations to <topic>.dlq",
    shows: Shows::Panel,
};

/// Counts what the shop does (roles/analytics.rs).
pub(crate) const ANALYTICS: RoleEntry = RoleEntry {
    name: "analytics",
    about: "Count events per status and source, completed and in-flight orders, malformed records",
    shows: Shows::CountersAndRate,
};

/// Appends every record to the audit log (roles/storage.rs).
pub(crate) const STORAGE: RoleEntry = RoleEntry {
    name: "storage",
    about: "Append every record to an audit log file, exactly once, even across crashes",
    shows: Shows::Panel,
};

/// Pays for every PLACED order (roles/payments.rs): a read-process-write stage, not a
/// consumer role. It is not in [`ROLES`], which the demo and the group watch build and run
/// as sinks; the stage runs on its own runtime (kafka/stage/), where the commit is the
/// lesson.
pub(crate) const PAYMENTS: RoleEntry = RoleEntry {
    name: "payments",
    about: "Pay for every PLACED order: read orders, produce payments, at-most-, at-least- or exactly-once",
    shows: Shows::Panel,
};

/// Every role, in the order of the live view's panels.
pub(crate) const ROLES: [RoleEntry; 3] = [ORDER_PROCESSOR, ANALYTICS, STORAGE];

/// The names of every role, in panel order.
pub(crate) fn names() -> Vec<&'static str> {
    ROLES.iter().map(|r| r.name).collect()
}

/// The groups the roles join by default: the group view shows them once they have
/// committed offsets, even without members.
pub fn default_groups() -> Vec<String> {
    ROLES.iter().map(|r| r.default_group().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_groups_default_to_them() {
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ROLES.len());
        for role in ROLES {
            assert_eq!(role.default_group(), role.name);
        }
        assert_eq!(
            default_groups(),
            ["order-processor", "analytics", "storage"]
        );
    }

    #[test]
    fn exactly_one_role_features_its_counters_and_rate() {
        let featured: Vec<&str> = ROLES
            .iter()
            .filter(|r| r.shows == Shows::CountersAndRate)
            .map(|r| r.name)
            .collect();
        assert_eq!(featured, ["analytics"]);
    }
}
