//! The checks every concurrent run ends with, read from a store on fresh
//! connections: nothing lost, no overlapping open requests, every applied
//! change shown, the party index exactly the requests' entries (R20, R27,
//! R31, R35).

use std::collections::BTreeSet;

/// The record checks the core's tests and both stores' tests share.
#[path = "../../../tests/common/records.rs"]
mod records;

use service_contacts::ChangeRequest;
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
    records::records_agree(&services, &requests);
    party_rows_are_the_entries(store, &requests).await;
}

/// R35: the party index holds each request's entries, no more, no less.
pub(crate) async fn party_rows_are_the_entries(store: &PgStore, requests: &[ChangeRequest]) {
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
