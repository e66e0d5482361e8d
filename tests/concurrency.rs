//! Eight threads share one in-memory store through the driver and race:
//! conflicting edits of one role, both confirmers accepting at once, accept
//! against cancel, accept against expiry (R27, R31).
//!
//! Afterwards exactly one of each conflicting set took effect, no update was
//! lost (each service's version counts exactly its opened edits and applied
//! changes), every request is consistent and the indexes agree with a full
//! scan.

mod common;
use common::{last_token, open_tech, race};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ActError, ChangeRequest, CustomerId, Driver, DriverError, Edit, MemoryDirectory,
    MemoryNotifier, MemoryStore, Refusal, RequestId, RequestState, Role, ServiceName, StateName,
    Store, SubmitError,
};
use time::{Duration, OffsetDateTime, macros::datetime};

const THREADS: usize = 8;
const ROUNDS: u32 = 300;

type TestDriver<'a> = Driver<&'a MemoryStore, &'a MemoryNotifier, &'a MemoryDirectory>;

fn id(n: u32) -> CustomerId {
    format!("CU{n}-OVH").parse().unwrap()
}

fn t0() -> OffsetDateTime {
    datetime!(2026-11-21 10:00 UTC)
}

fn state(store: &MemoryStore, request: RequestId) -> StateName {
    store.request(request).unwrap().unwrap().state().name()
}

#[test]
fn racing_actions_take_effect_once() {
    let store = MemoryStore::new();
    let notifier = MemoryNotifier::new();
    let directory = MemoryDirectory::new();
    for n in 0..100 {
        directory.add(id(n));
    }
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory).with_retries(64);

    for round in 0..ROUNDS {
        let seed = u64::from(round) * 1000;
        conflicting_edits(&driver, &store, round, seed);
        both_confirmers_at_once(&driver, &store, &notifier, round, seed);
        accept_against_cancel(&driver, &store, &notifier, round, seed);
        accept_against_expiry(&driver, &store, &notifier, round, seed);
    }

    check_consistency(&store);
}

fn conflicting_edits(driver: &TestDriver<'_>, store: &MemoryStore, round: u32, seed: u64) {
    let admin = id(1);
    {
        // R27: eight edits of the same role of one service; one opens.
        let edits: ServiceName = format!("edits-{round}.example").parse().unwrap();
        driver.order_service(&edits, admin).unwrap();
        let results = race(THREADS, |t| {
            let edit =
                Edit::new(edits.clone()).with(Role::Tech, id(10 + u32::try_from(t).unwrap()));
            let mut rng = ChaCha20Rng::seed_from_u64(seed + t as u64);
            driver.submit(&edit, admin, t0(), &mut rng)
        });
        let opened = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            opened, 1,
            "round {round}: {opened} conflicting edits opened"
        );
        for result in &results {
            if let Err(err) = result {
                assert!(
                    matches!(
                        err,
                        DriverError::Refused(Refusal::Submit(SubmitError::Conflict {
                            role: Role::Tech,
                            ..
                        }))
                    ),
                    "round {round}: unexpected error {err}"
                );
            }
        }
        let open = store
            .requests()
            .into_iter()
            .filter(|r| r.service() == &edits && r.is_open());
        assert_eq!(open.count(), 1);
    }
}

fn both_confirmers_at_once(
    driver: &TestDriver<'_>,
    store: &MemoryStore,
    notifier: &MemoryNotifier,
    round: u32,
    seed: u64,
) {
    let (admin, incoming) = (id(1), id(20));
    {
        // R16, R20: both confirmers accept at once, each on four threads.
        let both: ServiceName = format!("both-{round}.example").parse().unwrap();
        driver.order_service(&both, admin).unwrap();
        let request = open_tech(driver, &both, incoming, t0(), seed + 100);
        let tokens = [
            last_token(notifier, admin, request),
            last_token(notifier, incoming, request),
        ];
        let results = race(THREADS, |t| {
            let who = if t % 2 == 0 { admin } else { incoming };
            driver.accept(request, who, &tokens[t % 2], t0() + Duration::minutes(1))
        });
        let accepted = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            accepted, 2,
            "round {round}: {accepted} accepts succeeded, one per confirmer expected"
        );
        for result in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(
                    result,
                    DriverError::Refused(Refusal::Act(
                        ActError::InvalidToken | ActError::Closed { .. }
                    ))
                ),
                "round {round}: unexpected error {result}"
            );
        }
        assert_eq!(state(store, request), StateName::Done);
        assert_eq!(
            store.service(&both).unwrap().unwrap().holder(Role::Tech),
            incoming
        );
    }
}

fn accept_against_cancel(
    driver: &TestDriver<'_>,
    store: &MemoryStore,
    notifier: &MemoryNotifier,
    round: u32,
    seed: u64,
) {
    let (admin, incoming) = (id(1), id(20));
    {
        // R28 against R20: the last confirmation races a cancel.
        let cancel: ServiceName = format!("cancel-{round}.example").parse().unwrap();
        driver.order_service(&cancel, admin).unwrap();
        let request = open_tech(driver, &cancel, incoming, t0(), seed + 200);
        let admin_token = last_token(notifier, admin, request);
        let incoming_token = last_token(notifier, incoming, request);
        let _ = driver
            .accept(request, incoming, &incoming_token, t0())
            .unwrap();
        let results = race(THREADS, |t| {
            if t % 2 == 0 {
                driver
                    .accept(request, admin, &admin_token, t0())
                    .map(|_| "accept")
            } else {
                driver.cancel(request, admin, t0()).map(|_| "cancel")
            }
        });
        let winners: Vec<&str> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let holder = store.service(&cancel).unwrap().unwrap().holder(Role::Tech);
        if winners[0] == "accept" {
            assert_eq!(state(store, request), StateName::Done);
            assert_eq!(holder, incoming);
        } else {
            assert_eq!(state(store, request), StateName::Aborted);
            assert_eq!(holder, admin);
        }
    }
}

fn accept_against_expiry(
    driver: &TestDriver<'_>,
    store: &MemoryStore,
    notifier: &MemoryNotifier,
    round: u32,
    seed: u64,
) {
    let (admin, incoming) = (id(1), id(20));
    {
        // R29 against R20: the last confirmation, a second before the
        // deadline, races the expiry sweep at the deadline.
        let expiry: ServiceName = format!("expiry-{round}.example").parse().unwrap();
        driver.order_service(&expiry, admin).unwrap();
        let request = open_tech(driver, &expiry, incoming, t0(), seed + 300);
        let deadline = store.request(request).unwrap().unwrap().deadline();
        let admin_token = last_token(notifier, admin, request);
        let incoming_token = last_token(notifier, incoming, request);
        let _ = driver
            .accept(request, incoming, &incoming_token, t0())
            .unwrap();
        let results = race(THREADS, |t| {
            if t % 2 == 0 {
                driver
                    .accept(
                        request,
                        admin,
                        &admin_token,
                        deadline - Duration::seconds(1),
                    )
                    .is_ok()
            } else {
                let sweep = driver.expire_due(deadline).unwrap().value;
                assert!(sweep.is_complete(), "round {round}: {:?}", sweep.failed);
                sweep.expired.contains(&request)
            }
        });
        let effects = results.iter().filter(|ok| **ok).count();
        assert_eq!(
            effects, 1,
            "round {round}: {effects} of accept/expire took effect"
        );
        let holder = store.service(&expiry).unwrap().unwrap().holder(Role::Tech);
        match state(store, request) {
            StateName::Done => assert_eq!(holder, incoming),
            StateName::Expired => assert_eq!(holder, admin),
            other => panic!("round {round}: request ended {other}"),
        }
    }
}

/// Every request is consistent with its service, no update was lost, and the
/// indexes agree with a full scan.
fn check_consistency(store: &MemoryStore) {
    store.audit().expect("indexes agree with a full scan");
    let requests = store.requests();
    for service in store.services() {
        let of_service: Vec<&ChangeRequest> = requests
            .iter()
            .filter(|r| r.service() == service.name())
            .collect();
        // R31: the version counts every committed edit (opening writes the
        // service) and every applied change, so nothing was lost.
        let applied = of_service
            .iter()
            .filter(|r| matches!(r.state(), RequestState::Applied { .. }))
            .count();
        let expected = 1 + of_service.len() + applied;
        assert_eq!(
            service.version().get(),
            expected as u64,
            "{}: version {} after {} requests, {applied} applied",
            service.name(),
            service.version(),
            of_service.len(),
        );
        // R27: no two open requests share a role.
        let open: Vec<_> = of_service.iter().filter(|r| r.is_open()).collect();
        for (i, a) in open.iter().enumerate() {
            for b in &open[i + 1..] {
                assert!(
                    (a.roles() & b.roles()).is_empty(),
                    "{}: overlapping open requests",
                    service.name()
                );
            }
        }
        // R20: the last applied change is what the service shows.
        if let Some(last) = of_service
            .iter()
            .filter(|r| matches!(r.state(), RequestState::Applied { .. }))
            .max_by_key(|r| r.version())
        {
            for role in last.roles() {
                assert_eq!(service.holder(role), last.incoming());
            }
        }
    }
}
