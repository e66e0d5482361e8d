//! Sixteen connections race through the `AsyncDriver` on one database:
//! conflicting edits of one role, both confirmers accepting at once, accept
//! against cancel, accept against expiry (R16, R20, R27, R28, R29, R31).
//!
//! Exactly one of each conflicting set takes effect; afterwards, read from a
//! store on fresh connections, nothing is lost (each service's version
//! counts its creation, its opened requests and its applied changes), no two
//! open requests share a role, every applied change is what its service
//! shows, and `request_parties` holds exactly the party entries of every
//! request.

mod common;

use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ActError, AsyncDriver, AsyncStore, CustomerId, DriverError, Edit, MemoryDirectory,
    MemoryNotifier, Refusal, RequestId, Role, ServiceName, StateName, SubmitError,
};
use service_contacts_postgres::PgStore;
use time::{Duration, OffsetDateTime, macros::datetime};
use tokio::sync::Barrier;

/// Racers per set, each on a connection of its own.
const RACERS: usize = 16;
const ROUNDS: u32 = 20;

type TestDriver = AsyncDriver<PgStore, MemoryNotifier, MemoryDirectory>;

fn id(n: u32) -> CustomerId {
    format!("CU{n}-OVH").parse().unwrap()
}

fn t0() -> OffsetDateTime {
    datetime!(2026-11-21 10:00 UTC)
}

/// Runs `work(racer)` on `RACERS` tasks released together by a barrier, and
/// returns their results in racer order.
async fn race<T, F, Fut>(driver: &Arc<TestDriver>, work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<TestDriver>, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|racer| {
            let barrier = Arc::clone(&barrier);
            let work = work(Arc::clone(driver), racer);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(RACERS);
    for task in tasks {
        results.push(task.await.expect("a racer panicked"));
    }
    results
}

/// The driver's error type here.
type Error = service_contacts::AsyncDriverErrorFor<PgStore, MemoryDirectory>;

/// Checks a race's results: `winners` succeeded, and every other racer
/// failed with an error `expected` allows.
fn settled(
    results: &[Result<(), Error>],
    winners: usize,
    round: u32,
    expected: impl Fn(&Error) -> bool,
) {
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, winners, "round {round}: {won} racers succeeded");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(expected(err), "round {round}: unexpected error {err}");
    }
}

/// Opens a change of `service`'s tech contact to `incoming`, asked by its
/// admin, and returns it with both confirmers' tokens (admin's, incoming's).
async fn open_tech(
    driver: &TestDriver,
    service: &ServiceName,
    incoming: CustomerId,
    seed: u64,
) -> (RequestId, [String; 2]) {
    let admin = id(1);
    let edit = Edit::new(service.clone()).with(Role::Tech, incoming);
    let request = driver
        .submit(&edit, admin, t0(), &mut ChaCha20Rng::seed_from_u64(seed))
        .await
        .expect("the edit opens")
        .value[0];
    let tokens = [
        common::last_token(driver.notifier(), admin, request),
        common::last_token(driver.notifier(), incoming, request),
    ];
    (request, tokens)
}

/// A new service `<prefix>.example` with a change of its tech contact that
/// the incoming contact confirmed: it waits for the admin, whose token comes
/// with it.
async fn waiting_for_admin(
    driver: &TestDriver,
    prefix: &str,
    seed: u64,
) -> (ServiceName, RequestId, Arc<String>) {
    let service: ServiceName = format!("{prefix}.example").parse().unwrap();
    driver.order_service(&service, id(1)).await.unwrap();
    let (request, [admin_token, incoming_token]) = open_tech(driver, &service, id(20), seed).await;
    let _ = driver
        .accept(request, id(20), &incoming_token, t0())
        .await
        .unwrap();
    (service, request, Arc::new(admin_token))
}

async fn state(driver: &TestDriver, request: RequestId) -> StateName {
    AsyncStore::request(driver.store(), request)
        .await
        .unwrap()
        .unwrap()
        .state()
        .name()
}

async fn tech(driver: &TestDriver, service: &ServiceName) -> CustomerId {
    AsyncStore::service(driver.store(), service)
        .await
        .unwrap()
        .unwrap()
        .holder(Role::Tech)
}

#[test]
fn sixteen_connections_racing_take_effect_once() {
    let runtime = common::runtime();
    let schema = common::Schema::new(runtime.handle());
    let store = schema.store(RACERS).expect("a store on an empty schema");
    let directory = MemoryDirectory::new();
    for n in 0..100 {
        directory.add(id(n));
    }
    let driver =
        Arc::new(AsyncDriver::new(store, MemoryNotifier::new(), directory).with_retries(64));
    runtime.block_on(async {
        for round in 0..ROUNDS {
            let seed = u64::from(round) * 1000;
            conflicting_edits(&driver, round, seed).await;
            both_confirmers_at_once(&driver, round, seed).await;
            accept_against_cancel(&driver, round, seed).await;
            accept_against_expiry(&driver, round, seed).await;
        }
    });
    // From a store on fresh connections.
    let fresh = schema.store(2).expect("the schema is ours");
    runtime.block_on(common::consistency::check(&fresh));
    drop((driver, fresh));
}

/// R27: sixteen edits of the same role of one service; one opens.
async fn conflicting_edits(driver: &Arc<TestDriver>, round: u32, seed: u64) {
    let service: ServiceName = format!("edits-{round}.example").parse().unwrap();
    driver.order_service(&service, id(1)).await.unwrap();
    let results = race(driver, |driver, racer| {
        let service = service.clone();
        async move {
            let incoming = id(10 + u32::try_from(racer).unwrap());
            let edit = Edit::new(service).with(Role::Tech, incoming);
            let mut rng = ChaCha20Rng::seed_from_u64(seed + racer as u64);
            driver
                .submit(&edit, id(1), t0(), &mut rng)
                .await
                .map(|_| ())
        }
    })
    .await;
    settled(&results, 1, round, |err| {
        matches!(
            err,
            DriverError::Refused(Refusal::Submit(SubmitError::Conflict {
                role: Role::Tech,
                ..
            }))
        )
    });
}

/// R16, R20: both confirmers accept at once, each on eight connections.
async fn both_confirmers_at_once(driver: &Arc<TestDriver>, round: u32, seed: u64) {
    let (admin, incoming) = (id(1), id(20));
    let service: ServiceName = format!("both-{round}.example").parse().unwrap();
    driver.order_service(&service, admin).await.unwrap();
    let (request, tokens) = open_tech(driver, &service, incoming, seed + 100).await;
    let tokens = Arc::new(tokens);
    let results = race(driver, |driver, racer| {
        let tokens = Arc::clone(&tokens);
        async move {
            let who = if racer % 2 == 0 { admin } else { incoming };
            let at = t0() + Duration::minutes(1);
            driver
                .accept(request, who, &tokens[racer % 2], at)
                .await
                .map(|_| ())
        }
    })
    .await;
    // One accept per confirmer.
    settled(&results, 2, round, |err| {
        matches!(
            err,
            DriverError::Refused(Refusal::Act(
                ActError::InvalidToken | ActError::Closed { .. }
            ))
        )
    });
    assert_eq!(state(driver, request).await, StateName::Done);
    assert_eq!(tech(driver, &service).await, incoming);
}

/// R28 against R20: the last confirmation races a cancel.
async fn accept_against_cancel(driver: &Arc<TestDriver>, round: u32, seed: u64) {
    let (admin, incoming) = (id(1), id(20));
    let (service, request, admin_token) =
        waiting_for_admin(driver, &format!("cancel-{round}"), seed + 200).await;
    let results = race(driver, |driver, racer| {
        let admin_token = Arc::clone(&admin_token);
        async move {
            if racer % 2 == 0 {
                driver
                    .accept(request, admin, &admin_token, t0())
                    .await
                    .map(|_| "accept")
            } else {
                driver.cancel(request, admin, t0()).await.map(|_| "cancel")
            }
        }
    })
    .await;
    let winners: Vec<&str> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
    let (expected_state, expected_tech) = if winners[0] == "accept" {
        (StateName::Done, incoming)
    } else {
        (StateName::Aborted, admin)
    };
    assert_eq!(state(driver, request).await, expected_state);
    assert_eq!(tech(driver, &service).await, expected_tech);
}

/// R29 against R20: the last confirmation, a second before the deadline,
/// races the expiry sweep at the deadline.
async fn accept_against_expiry(driver: &Arc<TestDriver>, round: u32, seed: u64) {
    let (admin, incoming) = (id(1), id(20));
    let (service, request, admin_token) =
        waiting_for_admin(driver, &format!("expiry-{round}"), seed + 300).await;
    let deadline = AsyncStore::request(driver.store(), request)
        .await
        .unwrap()
        .unwrap()
        .deadline();
    let results = race(driver, |driver, racer| {
        let admin_token = Arc::clone(&admin_token);
        async move {
            if racer % 2 == 0 {
                let before = deadline - Duration::seconds(1);
                driver
                    .accept(request, admin, &admin_token, before)
                    .await
                    .is_ok()
            } else {
                let sweep = driver.expire_due(deadline).await.unwrap().value;
                assert!(sweep.is_complete(), "round {round}: {:?}", sweep.failed);
                sweep.expired.contains(&request)
            }
        }
    })
    .await;
    let effects = results.iter().filter(|ok| **ok).count();
    assert_eq!(
        effects, 1,
        "round {round}: {effects} of accept/expire took effect"
    );
    let holder = tech(driver, &service).await;
    match state(driver, request).await {
        StateName::Done => assert_eq!(holder, incoming),
        StateName::Expired => assert_eq!(holder, admin),
        other => panic!("round {round}: request ended {other}"),
    }
}
