//! What the `SQLite` store's test files share: a scratch directory, listings
//! read page by page, and the consistency checks every concurrent run ends
//! with (R6, R20, R27, R31, R35, R45).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use service_contacts::{
    ChangeRequest, CustomerId, RequestFilter, RequestKey, Role, Roles, Service, ServiceName, Store,
};
use service_contacts_sqlite::{SqliteStore, SqliteStoreError};
use time::OffsetDateTime;

/// A fresh directory under the system's temporary directory, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "service-contacts-sqlite-{}-{name}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The rows of a listing read `page` at a time through `read`, which gets
/// the last row read so far: every page holds at most `page` rows, and a
/// short page is the last.
pub(crate) fn read_pages<T: Clone>(
    page: usize,
    mut read: impl FnMut(Option<&T>, usize) -> Result<Vec<T>, SqliteStoreError>,
) -> Vec<T> {
    let mut rows: Vec<T> = Vec::new();
    for _ in 0..10_000 {
        let next = read(rows.last(), page).unwrap();
        assert!(next.len() <= page, "a page of {page} holds {}", next.len());
        let done = next.len() < page;
        rows.extend(next);
        if done {
            return rows;
        }
    }
    panic!("the pages never end (a cursor that does not move on?)");
}

/// The key of `request` in "my requests".
pub(crate) fn opened_key(request: &ChangeRequest) -> RequestKey {
    RequestKey {
        at: request.opened_at(),
        id: request.id(),
    }
}

/// `customer`'s contacts, read `page` at a time (R6, R45).
pub(crate) fn all_contacts(
    store: &SqliteStore,
    customer: CustomerId,
    page: usize,
) -> Vec<(ServiceName, Roles)> {
    read_pages(page, |last: Option<&(ServiceName, Roles)>, n| {
        store.contacts_of(customer, last.map(|(name, _)| name), n)
    })
}

/// `customer`'s requests that `filter` lists at `now`, read `page` at a
/// time (R35, R45).
pub(crate) fn all_requests(
    store: &SqliteStore,
    customer: CustomerId,
    filter: &RequestFilter,
    now: OffsetDateTime,
    page: usize,
) -> Vec<ChangeRequest> {
    read_pages(page, |last: Option<&ChangeRequest>, n| {
        store.requests_of(customer, filter, now, last.map(opened_key), n)
    })
}

/// The database agrees with itself after concurrent runs, read through
/// `store` (a fresh connection): every row parses and every index agrees
/// with its table (the audit); nothing is lost (each service's version
/// counts its creation, its opened requests and its applied changes); no
/// two live requests share a role; every applied request is what its
/// service shows; and "my contacts" and "my requests" of each of
/// `customers` (every customer who may hold a role) agree with a full scan.
/// Returns the services and requests read.
pub(crate) fn check(
    store: &SqliteStore,
    customers: &[CustomerId],
    now: OffsetDateTime,
) -> (Vec<Service>, Vec<ChangeRequest>) {
    // Every row parses, columns match documents, parties match requests,
    // SQLite's integrity check passes.
    store.audit().unwrap();
    let services = store.services().unwrap();
    let requests = store.requests().unwrap();
    super::common::records::records_agree(&services, &requests);
    listings_agree(store, customers, now, &services, &requests);
    (services, requests)
}

/// R6, R35: "my contacts", served by the holder indexes, lists each role of
/// each live service once, for its holder; "my requests", served by the
/// party index, lists each customer's requests.
fn listings_agree(
    store: &SqliteStore,
    customers: &[CustomerId],
    now: OffsetDateTime,
    services: &[Service],
    requests: &[ChangeRequest],
) {
    let mut holders: BTreeMap<CustomerId, Vec<(ServiceName, Roles)>> = BTreeMap::new();
    for service in services {
        for holder in service.contacts().holders() {
            holders
                .entry(holder)
                .or_default()
                .push((service.name().clone(), service.roles_of(holder)));
        }
    }
    let mut listed_roles: BTreeMap<(ServiceName, Role), usize> = BTreeMap::new();
    for &customer in customers {
        let listed = all_contacts(store, customer, 2);
        assert_eq!(
            listed,
            holders.remove(&customer).unwrap_or_default(),
            "{customer}"
        );
        for (service, roles) in listed {
            for role in roles {
                *listed_roles.entry((service.clone(), role)).or_default() += 1;
            }
        }
    }
    assert!(
        holders.is_empty(),
        "holders outside the customers checked: {holders:?}"
    );
    assert_eq!(listed_roles.len(), services.len() * 3);
    assert!(listed_roles.values().all(|count| *count == 1));
    let parties: BTreeSet<CustomerId> = requests.iter().flat_map(ChangeRequest::parties).collect();
    for customer in parties {
        let listed: BTreeSet<_> = all_requests(store, customer, &RequestFilter::all(), now, 3)
            .iter()
            .map(ChangeRequest::id)
            .collect();
        let expected: BTreeSet<_> = requests
            .iter()
            .filter(|r| r.is_party(customer))
            .map(ChangeRequest::id)
            .collect();
        assert_eq!(listed, expected, "{customer}");
    }
}
