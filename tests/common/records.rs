//! The record-level checks every concurrent run ends with, on any store's
//! services and requests read whole: nothing lost, no two live requests on
//! one role, every applied change shown (R20, R27, R31). Shared by the core's
//! races and the `SQLite` and `PostgreSQL` stores' tests (included by path).

use std::collections::BTreeMap;

use service_contacts::{ChangeRequest, CustomerId, RequestState, Role, Service};

/// Every check, on every service of `services` with its `requests`.
///
/// # Panics
///
/// At the first check that fails, naming the service.
pub(crate) fn records_agree(services: &[Service], requests: &[ChangeRequest]) {
    for service in services {
        let of_service: Vec<&ChangeRequest> = requests
            .iter()
            .filter(|r| r.service() == service.name())
            .collect();
        let applied: Vec<&ChangeRequest> = of_service
            .iter()
            .copied()
            .filter(|r| matches!(r.state(), RequestState::Applied { .. }))
            .collect();
        // R31: the version counts its creation, every opened request (it
        // writes the service) and every applied change: nothing was lost.
        assert_eq!(
            service.version().get(),
            (1 + of_service.len() + applied.len()) as u64,
            "{}: version {} after {} requests, {} applied",
            service.name(),
            service.version(),
            of_service.len(),
            applied.len()
        );
        // R27: no two open requests share a role.
        let open: Vec<&&ChangeRequest> = of_service.iter().filter(|r| r.is_open()).collect();
        for (i, a) in open.iter().enumerate() {
            for b in &open[i + 1..] {
                assert!(
                    (a.roles() & b.roles()).is_empty(),
                    "{}: overlapping open requests",
                    service.name()
                );
            }
        }
        for role in Role::ALL {
            applied_changes_lead_to_the_holder(service, role, &of_service, &applied);
        }
    }
}

/// R20: the applied changes of `role` are what `service` shows. The last
/// request opened on the role, if applied, names its holder; and the applied
/// changes, each from the holder it found (`outgoing`) to its `incoming`,
/// make one path ending at the holder: every customer is entered as often
/// as left, except the holder (entered once more) and the first holder
/// (left once more), unless the path came back to where it started.
fn applied_changes_lead_to_the_holder(
    service: &Service,
    role: Role,
    of_service: &[&ChangeRequest],
    applied: &[&ChangeRequest],
) {
    let name = service.name();
    let holder = service.holder(role);
    if let Some(last) = service.last_request(role) {
        let last = of_service
            .iter()
            .find(|r| r.id() == last)
            .unwrap_or_else(|| panic!("{name}: its last {role} request {last} is not stored"));
        if matches!(last.state(), RequestState::Applied { .. }) {
            assert_eq!(
                holder,
                last.incoming(),
                "{name}: {role} after {}",
                last.id()
            );
        }
    }
    let mut balance: BTreeMap<CustomerId, i64> = BTreeMap::new();
    for request in applied.iter().filter(|r| r.roles().contains(role)) {
        let outgoing = request
            .outgoing(role)
            .unwrap_or_else(|| panic!("{name}: {} names no outgoing {role}", request.id()));
        *balance.entry(outgoing).or_default() -= 1;
        *balance.entry(request.incoming()).or_default() += 1;
    }
    balance.retain(|_, entered| *entered != 0);
    if !balance.is_empty() {
        assert_eq!(balance.remove(&holder), Some(1), "{name}: {role} {holder}");
        assert_eq!(
            balance.into_values().collect::<Vec<_>>(),
            [-1],
            "{name}: the applied {role} changes are not one path to {holder}"
        );
    }
}
