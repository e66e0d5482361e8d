//! The checks every concurrent run ends with, read from a store on fresh
//! connections: nothing lost, no overlapping open requests, every applied
//! change shown, the party index exactly the requests' entries (R20, R27,
//! R31, R35).

use std::collections::{BTreeMap, BTreeSet};

use service_contacts::{ChangeRequest, CustomerId, RequestState, Role, Service};
use service_contacts_postgres::PgStore;

/// Every check, on every service and request of `store`'s schema.
///
/// # Panics
///
/// At the first check that fails, naming the service.
pub(crate) async fn check(store: &PgStore) {
    let services = store.services().await.expect("every service reads back");
    let requests = store.requests().await.expect("every request reads back");
    assert!(!services.is_empty());
    for service in &services {
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
        // writes the service) and every applied change.
        let expected = 1 + of_service.len() + applied.len();
        assert_eq!(
            service.version().get(),
            expected as u64,
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
                    "{}: overlapping",
                    service.name()
                );
            }
        }
        for role in Role::ALL {
            applied_changes_lead_to_the_holder(service, role, &of_service, &applied);
        }
    }
    party_rows_are_the_entries(store, &requests).await;
}

/// R20, R30: the applied changes of `role` are what `service` shows. The
/// last request opened on the role, if applied, names its holder; and the
/// applied changes, each from the holder it found (`outgoing`) to its
/// `incoming`, make one path ending at the holder: every customer is entered
/// as often as left, except the holder (entered once more) and the first
/// holder (left once more), unless the path came back to where it started.
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

/// R35: the party index holds each request's entries, no more, no less.
async fn party_rows_are_the_entries(store: &PgStore, requests: &[ChangeRequest]) {
    let expected: BTreeSet<(String, String, String, String)> = requests
        .iter()
        .flat_map(|r| {
            r.party_entries().map(|(customer, part)| {
                (
                    customer.as_str().to_owned(),
                    r.id().to_string(),
                    format!("{part:?}"),
                    r.state().name().as_str().to_owned(),
                )
            })
        })
        .collect();
    let client = store.pool().get().await.unwrap();
    let stored: BTreeSet<(String, String, String, String)> = client
        .query(
            "SELECT customer, request_id, part, state FROM request_parties",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let part = match row.get::<_, &str>(2) {
                "requester" => "AskedByMe",
                "incoming" => "ComingToMe",
                "outgoing" => "TakingFromMe",
                "waiting" => "WaitingForMe",
                other => panic!("part {other}"),
            };
            (row.get(0), row.get(1), part.to_owned(), row.get(3))
        })
        .collect();
    assert_eq!(
        stored, expected,
        "request_parties against the requests' entries"
    );
}
