//! A service's full history on `PostgreSQL` (R47): its requests, whatever
//! their state, and its operators' direct assignments (R46), each listed
//! newest first, ties by id, a page strictly after the position it is
//! given; assignments written once (an id written again is a conflict that
//! writes nothing, R31); corrupt assignment rows reported, never trusted
//! (R43); and an operator's assignment and the history read through the
//! `AsyncDriver`.

mod common;

use std::cmp::Reverse;
use std::sync::Arc;

use common::{Schema, runtime};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    AccountStatus, Actor, Assignment, AsyncDriver, AsyncStore, ChangeRequest, Changes, CommitError,
    CustomerId, DriverError, Edit, Engine, FailureReason, HistoryEntry, HistoryKey,
    MemoryDirectory, MemoryNotifier, MessageKind, OperatorAct, PageSize, Refusal, RequestState,
    Role, Service, ServiceName, Snapshot, Write,
};
use service_contacts_postgres::{PgStore, PgStoreError};
use time::{Duration, OffsetDateTime, macros::datetime};

fn id(n: u32) -> CustomerId {
    format!("CU{n}-OVH").parse().unwrap()
}

fn name(text: &str) -> ServiceName {
    text.parse().unwrap()
}

fn t0() -> OffsetDateTime {
    datetime!(2026-11-30 10:00 UTC)
}

/// An operator's act: who and why (R46).
fn act(reason: &str) -> OperatorAct {
    OperatorAct::new("jane@support".parse().unwrap(), reason.parse().unwrap())
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A request opened on `service` at `at` (its tech role to `CU2-OVH`), as
/// the engine makes it; only the request is committed by the tests that
/// use it, the store does not ask which service wrote it.
fn request_at(service: &ServiceName, at: OffsetDateTime, seed: u64) -> ChangeRequest {
    let service = Service::order(service.clone(), id(1));
    let edit = Edit::new(service.name().clone()).with(Role::Tech, id(2));
    let snapshot = Snapshot {
        service: &service,
        requests: &[],
    };
    let opened = Engine::default()
        .submit(
            &edit,
            id(1),
            snapshot,
            &|_| AccountStatus::GoodStanding,
            at,
            &mut rng(seed),
        )
        .unwrap();
    opened.requests().next().unwrap().clone()
}

/// An operator's assignment on `service` at `at` (its tech role to
/// `CU2-OVH`), as the engine records it.
fn assignment_at(service: &ServiceName, at: OffsetDateTime, seed: u64) -> Assignment {
    let service = Service::order(service.clone(), id(1));
    let edit = Edit::new(service.name().clone()).with(Role::Tech, id(2));
    let snapshot = Snapshot {
        service: &service,
        requests: &[],
    };
    let mut assigned = Engine::default()
        .assign(
            snapshot,
            &edit,
            &act("mailbox lost"),
            &|_| AccountStatus::GoodStanding,
            at,
            &mut rng(seed),
        )
        .unwrap();
    assigned.changes.assignments.remove(0)
}

fn new_service(service: &ServiceName) -> Write<Service> {
    Write {
        value: Service::order(service.clone(), id(1)),
        expected: None,
    }
}

/// The history's order: newest first, ties by the id's bytes.
fn order(key: &HistoryKey) -> (Reverse<OffsetDateTime>, [u8; 16]) {
    (Reverse(key.at), key.id)
}

/// The history of `history.example` and, to be left out of it, of
/// `other.example`, committed: requests and assignments at the same
/// instants (three of each at `t0`), one nanosecond apart, a second apart.
struct World {
    store: PgStore,
    service: ServiceName,
    requests: Vec<ChangeRequest>,
    assignments: Vec<Assignment>,
}

fn world(runtime: &tokio::runtime::Runtime, schema: &Schema) -> World {
    let store = schema.store(4).unwrap();
    let (service, other) = (name("history.example"), name("other.example"));
    let nanosecond = Duration::nanoseconds(1);
    // (time, requests, assignments) on the service.
    let plan = [
        (t0(), 3, 3),
        (t0() + nanosecond, 1, 1),
        (t0() - nanosecond, 1, 2),
        (t0() - Duration::seconds(1), 2, 0),
        (t0() + Duration::seconds(2), 0, 2),
    ];
    let (mut requests, mut assignments) = (Vec::new(), Vec::new());
    let mut seed = 0;
    let mut next = || {
        seed += 1;
        seed
    };
    let mut all_requests = Vec::new();
    let mut all_assignments = Vec::new();
    for (at, r, a) in plan {
        for _ in 0..r {
            requests.push(request_at(&service, at, next()));
        }
        for _ in 0..a {
            assignments.push(assignment_at(&service, at, next()));
        }
        // The other service, at the same times.
        all_requests.push(request_at(&other, at, next()));
        all_assignments.push(assignment_at(&other, at, next()));
    }
    all_requests.extend(requests.iter().cloned());
    all_assignments.extend(assignments.iter().cloned());
    runtime.block_on(async {
        store
            .commit(Changes {
                services: vec![new_service(&service), new_service(&other)],
                requests: all_requests
                    .into_iter()
                    .map(|value| Write {
                        value,
                        expected: None,
                    })
                    .collect(),
                assignments: Vec::new(),
            })
            .await
            .unwrap();
        store
            .commit(Changes {
                assignments: all_assignments,
                ..Changes::default()
            })
            .await
            .unwrap();
    });
    requests.sort_by_key(|r| order(&HistoryEntry::Request(r.clone()).key()));
    assignments.sort_by_key(|a| order(&a.key()));
    World {
        store,
        service,
        requests,
        assignments,
    }
}

/// The keys of `requests`, in their order.
fn request_keys(requests: &[ChangeRequest]) -> Vec<HistoryKey> {
    requests
        .iter()
        .map(|r| HistoryEntry::Request(r.clone()).key())
        .collect()
}

/// Where a page of `w`'s history may start: every entry's key (of either
/// kind, since the driver goes on with both lists from the last entry of a
/// page), keys at the same instants with the least and the greatest id,
/// and keys before and after everything.
fn positions(w: &World) -> Vec<HistoryKey> {
    let mut positions = request_keys(&w.requests);
    positions.extend(w.assignments.iter().map(Assignment::key));
    for at in [
        t0(),
        t0() + Duration::nanoseconds(1),
        t0() - Duration::days(1),
    ] {
        positions.push(HistoryKey { at, id: [0; 16] });
        positions.push(HistoryKey { at, id: [0xff; 16] });
    }
    positions.push(HistoryKey {
        at: t0() + Duration::days(1),
        id: [0x80; 16],
    });
    positions
}

/// A whole list read `limit` rows at a time, each page after the key of
/// the last row of the one before.
async fn paged<T, F, Fut>(limit: usize, key: fn(&T) -> HistoryKey, read: F) -> Vec<T>
where
    F: Fn(Option<HistoryKey>, usize) -> Fut,
    Fut: Future<Output = Vec<T>>,
{
    let mut all: Vec<T> = Vec::new();
    loop {
        let page = read(all.last().map(key), limit).await;
        assert!(page.len() <= limit);
        let done = page.len() < limit;
        all.extend(page);
        if done {
            return all;
        }
    }
}

/// The whole history of `service` through the driver, `size` entries a
/// page, each page after the cursor of the one before.
async fn driver_history(
    driver: &AsyncDriver<PgStore, MemoryNotifier, MemoryDirectory>,
    service: &ServiceName,
    size: usize,
) -> Vec<HistoryEntry> {
    let size = PageSize::new(size).unwrap();
    let mut listed = Vec::new();
    let mut cursor = None;
    loop {
        let page = driver
            .history(service, cursor.as_ref(), size)
            .await
            .unwrap();
        assert!(page.items.len() <= size.get());
        listed.extend(page.items);
        cursor = page.next;
        if cursor.is_none() {
            return listed;
        }
    }
}

/// R47: each list of a service's history (`requests_on`, `assignments_on`),
/// read whole, one row and two rows at a time, and from every position
/// (each entry's own, and positions between and around them), is the
/// service's rows newest first, ties at one instant by id, strictly after
/// the position: the row at the position never again.
#[test]
fn each_list_of_a_services_history_is_newest_first_ties_by_id_strictly_after() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    let w = world(&runtime, &schema);
    let (store, service) = (&w.store, &w.service);
    runtime.block_on(async {
        let requests = store.requests_on(service, None, 100).await.unwrap();
        assert_eq!(requests, w.requests, "R47: the service's requests");
        assert_eq!(requests.len(), 7);
        let assignments = store.assignments_on(service, None, 100).await.unwrap();
        assert_eq!(assignments, w.assignments, "R47: its assignments");
        assert_eq!(assignments.len(), 8);
        assert_eq!(store.requests_on(service, None, 0).await.unwrap(), []);
        assert_eq!(store.assignments_on(service, None, 0).await.unwrap(), []);
        let never = name("never.example");
        assert_eq!(store.requests_on(&never, None, 10).await.unwrap(), []);
        assert_eq!(store.assignments_on(&never, None, 10).await.unwrap(), []);

        let request_keys = request_keys(&w.requests);
        for position in positions(&w) {
            let after = |key: &HistoryKey| position.listed_before(key);
            let expected: Vec<&ChangeRequest> = (w.requests.iter().zip(&request_keys))
                .filter(|(_, key)| after(key))
                .map(|(r, _)| r)
                .collect();
            let listed = store.requests_on(service, Some(position), 100).await;
            let listed = listed.unwrap();
            assert_eq!(
                listed.iter().collect::<Vec<_>>(),
                expected,
                "R47: requests after {position:?}"
            );
            let expected: Vec<&Assignment> =
                w.assignments.iter().filter(|a| after(&a.key())).collect();
            let listed = store.assignments_on(service, Some(position), 100).await;
            let listed = listed.unwrap();
            assert_eq!(
                listed.iter().collect::<Vec<_>>(),
                expected,
                "R47: assignments after {position:?}"
            );
        }

        let request_key = |r: &ChangeRequest| HistoryEntry::Request(r.clone()).key();
        for limit in [1, 2] {
            let requests = paged(limit, request_key, |after, n| async move {
                store.requests_on(service, after, n).await.unwrap()
            });
            assert_eq!(requests.await, w.requests, "R47: {limit} at a time");
            let assignments = paged(limit, Assignment::key, |after, n| async move {
                store.assignments_on(service, after, n).await.unwrap()
            });
            assert_eq!(assignments.await, w.assignments, "R47: {limit} at a time");
        }
    });
}

/// R47: the driver's history of the service, merged from both lists, lists
/// every entry once, newest first, ties by id whatever their kind, with
/// pages of any size.
#[test]
fn the_drivers_history_merges_both_lists_page_by_page() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    let w = world(&runtime, &schema);
    let mut expected: Vec<HistoryEntry> = (w.requests.iter().cloned())
        .map(HistoryEntry::Request)
        .chain(w.assignments.iter().cloned().map(HistoryEntry::Assignment))
        .collect();
    expected.sort_by_key(|entry| order(&entry.key()));
    // The ties at `t0` are of both kinds.
    let at_t0: Vec<bool> = (expected.iter())
        .filter(|e| e.key().at == t0())
        .map(|e| matches!(e, HistoryEntry::Request(_)))
        .collect();
    assert_eq!((at_t0.len(), at_t0.iter().filter(|r| **r).count()), (6, 3));
    let driver = AsyncDriver::new(
        w.store.clone(),
        MemoryNotifier::new(),
        MemoryDirectory::new(),
    );
    for size in [1, 3, 15, 500] {
        let listed = runtime.block_on(driver_history(&driver, &w.service, size));
        assert_eq!(listed, expected, "R47: the history, {size} a page");
    }
}

/// R46, R31: an assignment is written once. A commit whose assignment id is
/// already stored, or names one id twice, is a conflict and writes nothing
/// else it carried; of two commits racing to write one new assignment,
/// exactly one does.
#[test]
fn an_assignment_written_twice_conflicts_and_writes_nothing() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    let store = Arc::new(schema.store(4).unwrap());
    let service = name("twice.example");
    let first = assignment_at(&service, t0(), 1);
    runtime.block_on(async {
        store
            .commit(Changes {
                services: vec![new_service(&service)],
                assignments: vec![first.clone()],
                ..Changes::default()
            })
            .await
            .unwrap();
        // Again, with a new service and a new request in the same commit.
        let other = name("with-it.example");
        let request = request_at(&other, t0(), 2);
        let again = store
            .commit(Changes {
                services: vec![new_service(&other)],
                requests: vec![Write {
                    value: request.clone(),
                    expected: None,
                }],
                assignments: vec![first.clone()],
            })
            .await;
        assert!(matches!(again, Err(CommitError::Conflict)), "{again:?}");
        assert_eq!(AsyncStore::service(&*store, &other).await.unwrap(), None);
        assert_eq!(
            AsyncStore::request(&*store, request.id()).await.unwrap(),
            None
        );
        assert_eq!(
            store.assignments().await.unwrap(),
            std::slice::from_ref(&first)
        );

        // One new id twice in one commit.
        let second = assignment_at(&service, t0() + Duration::minutes(1), 3);
        let twice = store
            .commit(Changes {
                assignments: vec![second.clone(), second.clone()],
                ..Changes::default()
            })
            .await;
        assert!(matches!(twice, Err(CommitError::Conflict)), "{twice:?}");
        assert_eq!(
            store.assignments().await.unwrap(),
            std::slice::from_ref(&first)
        );

        // Two commits racing with one new assignment, each on its own
        // connection: one writes it, the other conflicts.
        let third = assignment_at(&service, t0() + Duration::minutes(2), 4);
        let race = |store: Arc<PgStore>| {
            let third = third.clone();
            tokio::spawn(async move {
                store
                    .commit(Changes {
                        assignments: vec![third],
                        ..Changes::default()
                    })
                    .await
            })
        };
        let (a, b) = tokio::join!(race(Arc::clone(&store)), race(Arc::clone(&store)));
        let results = [a.unwrap(), b.unwrap()];
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(CommitError::Conflict))),
            "{results:?}"
        );
        let mut expected = vec![first.clone(), third.clone()];
        expected.sort_by_key(|a| a.id().to_string());
        assert_eq!(store.assignments().await.unwrap(), expected);
        assert_eq!(
            store.assignments_on(&service, None, 10).await.unwrap(),
            [third, first]
        );
    });
}

fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, PgStoreError>, key: &str, detail: &str) {
    match result {
        Err(PgStoreError::Corrupt {
            table,
            key: k,
            detail: d,
        }) => {
            assert_eq!((table, k.as_str()), ("assignments", key), "{d}");
            assert!(d.contains(detail), "{detail:?} in {d}");
        }
        other => panic!("expected a corrupt assignments row, got {other:?}"),
    }
}

/// R43, R47: an assignment row that does not parse, or whose columns
/// disagree with its document, is `PgStoreError::Corrupt` naming the table,
/// the row's key and what is wrong, from the history listing, the full scan
/// and the driver; nothing panics, nothing is repaired.
#[test]
fn a_corrupt_assignment_row_is_reported_not_trusted() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    let store = schema.store(2).unwrap();
    let service = name("corrupt.example");
    let assignment = assignment_at(&service, t0(), 9);
    let key = assignment.id().to_string();
    runtime
        .block_on(store.commit(Changes {
            services: vec![new_service(&service)],
            assignments: vec![assignment.clone()],
            ..Changes::default()
        }))
        .unwrap();
    let listed = || runtime.block_on(store.assignments_on(&service, None, 10));
    let driver = AsyncDriver::new(store.clone(), MemoryNotifier::new(), MemoryDirectory::new());
    let other_id = "0123456789abcdef0123456789abcdef";
    for (damage, restore, detail) in [
        (
            "UPDATE assignments SET doc = doc || '{\"unknown\": 1}'".to_owned(),
            "UPDATE assignments SET doc = doc - 'unknown'".to_owned(),
            "column doc",
        ),
        (
            "UPDATE assignments SET doc = jsonb_set(doc, '{changes}', '[]')".to_owned(),
            format!(
                "UPDATE assignments SET doc = '{}'",
                serde_json::to_string(&assignment).unwrap()
            ),
            "column doc",
        ),
        (
            format!("UPDATE assignments SET doc = jsonb_set(doc, '{{id}}', '\"{other_id}\"')"),
            "UPDATE assignments SET doc = jsonb_set(doc, '{id}', to_jsonb(id))".to_owned(),
            "the document is assignment 0123456789abcdef0123456789abcdef",
        ),
        (
            "UPDATE assignments SET at_ns = at_ns + 1".to_owned(),
            "UPDATE assignments SET at_ns = at_ns - 1".to_owned(),
            "the columns disagree with the document",
        ),
        (
            "UPDATE assignments SET at_s = at_s - 60".to_owned(),
            "UPDATE assignments SET at_s = at_s + 60".to_owned(),
            "the columns disagree with the document",
        ),
    ] {
        schema.execute(&damage);
        assert_corrupt(listed(), &key, detail);
        assert_corrupt(runtime.block_on(store.assignments()), &key, detail);
        match runtime.block_on(driver.history(&service, None, PageSize::default())) {
            Err(DriverError::Store(PgStoreError::Corrupt { table, .. })) => {
                assert_eq!(table, "assignments");
            }
            other => panic!("{damage}: expected a corrupt row, got {other:?}"),
        }
        schema.execute(&restore);
        assert_eq!(
            listed().unwrap(),
            std::slice::from_ref(&assignment),
            "{restore}"
        );
    }
    // A row filed under another service than its document's: found there,
    // and refused.
    schema.execute("UPDATE services SET name = 'elsewhere.example'");
    schema.execute("UPDATE assignments SET service = 'elsewhere.example'");
    assert_corrupt(
        runtime.block_on(store.assignments_on(&name("elsewhere.example"), None, 10)),
        &key,
        "the columns disagree with the document",
    );
    // A key that is not an id.
    schema.execute("UPDATE assignments SET id = upper(id)");
    assert_corrupt(
        runtime.block_on(store.assignments()),
        &key.to_uppercase(),
        "is not an assignment id",
    );
}

/// R46, R47 end to end: an operator assigns contacts through the
/// `AsyncDriver` (committed with the service and the requests it fails, the
/// old and new holders told), and the service's history lists the
/// assignments and the request newest first, page by page, also once the
/// service is removed.
#[test]
fn an_operators_assignment_and_the_history_through_the_driver() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    let store = schema.store(4).unwrap();
    let directory = MemoryDirectory::new();
    for n in 1..=3 {
        directory.add(id(n));
    }
    let driver = AsyncDriver::new(store.clone(), MemoryNotifier::new(), directory);
    let service = name("assigned.example");
    runtime.block_on(async {
        // A request of the tech role to CU2, which CU2 confirmed.
        let (request, _) = common::waiting_for_admin(&driver, &service, 1, t0()).await;
        let _ = driver.notifier().take();

        // The operator gives the billing role to CU3: the request (tech)
        // stays open.
        let billing = Edit::new(service.clone()).with(Role::Billing, id(3));
        let first = driver
            .assign(
                &billing,
                &act("billing mailbox lost"),
                t0() + Duration::minutes(2),
                &mut rng(2),
            )
            .await
            .unwrap();
        assert!(first.all_delivered());
        let first = first.value;
        assert_eq!(first.service(), &service);
        assert_eq!(first.by(), &act("billing mailbox lost"));
        let told: Vec<CustomerId> = driver
            .notifier()
            .take()
            .iter()
            .filter(|m| matches!(m.kind(), MessageKind::Assigned { .. }))
            .map(service_contacts::Message::to)
            .collect();
        assert!(told.contains(&id(1)) && told.contains(&id(3)), "{told:?}");
        let read = AsyncStore::request(&store, request).await.unwrap().unwrap();
        assert!(read.is_open());

        // The tech role to CU3: the request on it fails at the operator's
        // hand (R32, R46), in the same commit.
        let tech = Edit::new(service.clone()).with(Role::Tech, id(3));
        let second = driver
            .assign(
                &tech,
                &act("tech left the company"),
                t0() + Duration::minutes(3),
                &mut rng(3),
            )
            .await
            .unwrap()
            .value;
        let failed = AsyncStore::request(&store, request).await.unwrap().unwrap();
        match failed.state() {
            RequestState::Failed { reason, .. } => assert_eq!(
                *reason,
                FailureReason::Reassigned {
                    role: Role::Tech,
                    by: second.id(),
                }
            ),
            other => panic!("expected the request failed, got {other:?}"),
        }
        let last = failed.history().last().unwrap();
        assert_eq!(
            last.actor(),
            Some(&Actor::Operator(act("tech left the company")))
        );
        let stored = AsyncStore::service(&store, &service)
            .await
            .unwrap()
            .unwrap();
        let holders = Role::ALL.map(|role| stored.holder(role));
        assert_eq!(holders, [id(1), id(3), id(3)], "admin, tech, billing");
        assert_eq!(
            store.assignments_on(&service, None, 10).await.unwrap(),
            [second.clone(), first.clone()]
        );

        // The history, one entry a page: the two assignments, then the
        // request as last committed.
        let expected = [
            HistoryEntry::Assignment(second.clone()),
            HistoryEntry::Assignment(first.clone()),
            HistoryEntry::Request(failed.clone()),
        ];
        assert_eq!(driver_history(&driver, &service, 1).await, expected);
        common::consistency::party_rows_are_the_entries(&store, &store.requests().await.unwrap())
            .await;

        // A removed service keeps its history; a name that never was has
        // none.
        let _ = driver
            .remove_service(&service, t0() + Duration::minutes(4))
            .await
            .unwrap();
        assert_eq!(driver_history(&driver, &service, 1).await, expected);
        let unknown = driver
            .history(&name("never.example"), None, PageSize::default())
            .await
            .unwrap_err();
        assert!(
            matches!(unknown.refusal(), Some(Refusal::UnknownService(_))),
            "{unknown:?}"
        );
    });
}
