//! Bringing existing services in (R42), removing services and ordering their
//! names again (R44), and the driver's reads of one service and one request,
//! through the driver: each refusal is specific and changes nothing.

#[macro_use]
mod common;

use std::convert::Infallible;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{T0, last_token, race};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ActError, ChangeRequest, Changes, CommitError, Contacts, CustomerId, Driver, DriverError, Edit,
    EventKind, FailureReason, MemoryDirectory, MemoryNotifier, MemoryStore, MessageKind, PageSize,
    Refusal, RequestId, RequestState, Role, Roles, Service, ServiceError, ServiceName, StateName,
    Store,
};
use time::Duration;

type TestDriver = Driver<MemoryStore, MemoryNotifier, MemoryDirectory>;

fn id(text: &str) -> CustomerId {
    text.parse().expect("a valid customer id")
}

fn name(text: &str) -> ServiceName {
    text.parse().expect("a valid service name")
}

fn admin() -> CustomerId {
    id("AD1-OVH")
}

fn tech() -> CustomerId {
    id("TE2-OVH")
}

fn billing() -> CustomerId {
    id("BI3-OVH")
}

fn newcomer() -> CustomerId {
    id("NE4-OVH")
}

/// A driver whose directory knows the four customers above.
fn driver() -> TestDriver {
    let directory = MemoryDirectory::new();
    for customer in [admin(), tech(), billing(), newcomer()] {
        directory.add(customer);
    }
    Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory)
}

fn three_holders() -> Contacts {
    Contacts::new(admin(), tech(), billing())
}

/// The store's services, sorted by name.
fn services(driver: &TestDriver) -> Vec<Service> {
    let mut services = driver.store().services();
    services.sort_by(|a, b| a.name().cmp(b.name()));
    services
}

#[test]
fn imported_services_behave_like_ordered_ones() {
    // R42: three different holders, then the same rules as for an ordered
    // service: the tech contact passes tech on (R9), the admin anything (R8).
    let driver = driver();
    let imported = driver
        .import_services([
            (name("one.example"), three_holders()),
            (name("two.example"), Contacts::all(billing())),
        ])
        .unwrap();
    assert_eq!(
        imported[0],
        Service::import(name("one.example"), three_holders())
    );
    assert_eq!(driver.service(&name("one.example")).unwrap(), imported[0]);
    // R6: each holder lists their roles.
    assert_eq!(
        common::all_contacts(&driver, tech(), PageSize::default()).unwrap(),
        [(name("one.example"), Roles::from(Role::Tech))]
    );
    assert_eq!(
        common::all_contacts(&driver, billing(), PageSize::default()).unwrap(),
        [
            (name("one.example"), Roles::from(Role::Billing)),
            (name("two.example"), Roles::ALL)
        ]
    );
    // R9: the tech contact proposes a new tech contact; R11: not billing.
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let edit = Edit::new(name("one.example")).with(Role::Tech, newcomer());
    let request = driver.submit(&edit, tech(), T0, &mut rng).unwrap().value[0];
    let bad = Edit::new(name("one.example")).with(Role::Billing, newcomer());
    assert_eq!(
        driver.submit(&bad, tech(), T0, &mut rng).unwrap_err(),
        DriverError::Refused(Refusal::Submit(
            service_contacts::SubmitError::NotPermitted {
                role: Role::Billing,
                ask: Role::Admin
            }
        ))
    );
    let notifier = driver.notifier();
    let _ = driver
        .accept(request, tech(), &last_token(notifier, tech(), request), T0)
        .unwrap();
    let done = driver
        .accept(
            request,
            newcomer(),
            &last_token(notifier, newcomer(), request),
            T0,
        )
        .unwrap();
    assert_eq!(done.value.state().name(), StateName::Done);
    let service = driver.service(&name("one.example")).unwrap();
    assert_eq!(service.holder(Role::Tech), newcomer());
    assert_eq!(service.holder(Role::Admin), admin());
    driver.store().audit().unwrap();
}

#[test]
fn a_refused_import_writes_nothing() {
    // R42, R13, bad input: each refusal is specific and the store is left
    // exactly as it was.
    let driver = driver();
    driver
        .order_service(&name("taken.example"), admin())
        .unwrap();
    let before = services(&driver);
    let ghost = id("GH9-OVH");
    let cases: [(Vec<(ServiceName, Contacts)>, Refusal); 4] = [
        (
            vec![
                (name("new.example"), three_holders()),
                (name("taken.example"), three_holders()),
            ],
            Refusal::ServiceExists(name("taken.example")),
        ),
        (
            vec![
                (name("new.example"), three_holders()),
                (name("new.example"), Contacts::all(admin())),
            ],
            Refusal::Import(ServiceError::Duplicate(name("new.example"))),
        ),
        (Vec::new(), Refusal::Import(ServiceError::EmptyBatch)),
        (
            vec![
                (name("new.example"), three_holders()),
                (
                    name("other.example"),
                    Contacts::new(admin(), ghost, admin()),
                ),
            ],
            Refusal::UnknownCustomer(ghost),
        ),
    ];
    for (batch, refusal) in cases {
        let err = driver.import_services(batch).unwrap_err();
        assert_eq!(err, DriverError::Refused(refusal));
        assert_eq!(services(&driver), before, "{err}");
    }
    assert_eq!(
        Refusal::ServiceExists(name("taken.example")).to_string(),
        "a service named taken.example exists already"
    );
    assert_eq!(
        Refusal::Import(ServiceError::Duplicate(name("new.example"))).to_string(),
        "the batch names the service new.example twice"
    );
    assert!(driver.store().requests().is_empty());
}

#[test]
fn racing_imports_of_one_name_create_it_once() {
    // R42, R31: four hosts import batches sharing one name at once: exactly
    // one batch lands, whole; the others are refused, writing nothing.
    for round in 0..20 {
        let driver = driver();
        let results = race(4, |i| {
            driver.import_services([
                (name(&format!("own-{i}.example")), Contacts::all(admin())),
                (name("shared.example"), Contacts::all(tech())),
            ])
        });
        let won: Vec<usize> = (0..4).filter(|i| results[*i].is_ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        for (i, result) in results.iter().enumerate() {
            let own = driver
                .store()
                .service(&name(&format!("own-{i}.example")))
                .unwrap();
            match result {
                Ok(_) => assert!(own.is_some()),
                Err(err) => {
                    assert_eq!(
                        err,
                        &DriverError::Refused(Refusal::ServiceExists(name("shared.example"))),
                        "round {round}"
                    );
                    assert!(
                        own.is_none(),
                        "round {round}: a refused batch was written in part"
                    );
                }
            }
        }
        assert_eq!(driver.store().service_count(), 2);
    }
}

#[test]
fn removing_a_service_fails_its_live_requests_and_keeps_its_versions() {
    // R44, R30, R39: the tombstone stays, the live request fails with the
    // reason, its confirmers are told; the name can be ordered again, at the
    // version after the tombstone, and nothing of the old service comes back.
    let driver = driver();
    let site = name("example.com");
    driver
        .import_services([(site.clone(), three_holders())])
        .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let edit = Edit::new(site.clone()).with(Role::Billing, newcomer());
    let request = driver.submit(&edit, admin(), T0, &mut rng).unwrap().value[0];
    let token = last_token(driver.notifier(), newcomer(), request);
    let _ = driver.notifier().take();

    let removed = driver
        .remove_service(&site, T0 + Duration::hours(1))
        .unwrap();
    assert!(removed.all_delivered());
    let tombstone = removed.value;
    assert!(tombstone.is_removed());
    assert_eq!(tombstone.version().get(), 3, "created, opened, removed");
    let status = driver.request(request, T0 + Duration::hours(1)).unwrap();
    assert_eq!(status.state, StateName::Error);
    assert!(status.waiting_for.is_empty());
    assert!(matches!(
        status.request.state(),
        RequestState::Failed {
            reason: FailureReason::ServiceGone,
            ..
        }
    ));
    let told: Vec<CustomerId> = driver
        .notifier()
        .take()
        .iter()
        .filter(|m| {
            matches!(
                m.kind(),
                MessageKind::Failed {
                    reason: FailureReason::ServiceGone
                }
            )
        })
        .map(service_contacts::Message::to)
        .collect();
    assert_eq!(told, [admin(), newcomer()]);
    // Gone for every action and listing.
    let gone = DriverError::Refused(Refusal::UnknownService(site.clone()));
    assert_eq!(driver.service(&site).unwrap_err(), gone);
    assert_eq!(
        driver.submit(&edit, admin(), T0, &mut rng).unwrap_err(),
        gone
    );
    assert_eq!(driver.proposable(&site, admin(), T0).unwrap_err(), gone);
    assert_eq!(driver.remove_service(&site, T0).unwrap_err(), gone);
    assert!(
        common::all_contacts(&driver, tech(), PageSize::default())
            .unwrap()
            .is_empty()
    );
    let later = T0 + Duration::hours(2);
    assert!(driver.accept(request, newcomer(), &token, later).is_err());

    // Ordered again by someone else: a new service after the tombstone.
    let again = driver.order_service(&site, newcomer()).unwrap();
    assert_eq!(again.version().get(), 4);
    assert_eq!(again.contacts(), &Contacts::all(newcomer()));
    assert_eq!(again.last_request(Role::Billing), None);
    assert_eq!(
        driver.order_service(&site, admin()).unwrap_err(),
        DriverError::Refused(Refusal::ServiceExists(site.clone()))
    );
    // The old admin has no right on the new service (R11).
    let err = driver
        .submit(
            &Edit::new(site.clone()).with(Role::Tech, admin()),
            admin(),
            later,
            &mut rng,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        DriverError::Refused(Refusal::Submit(
            service_contacts::SubmitError::NotPermitted { .. }
        ))
    ));
    assert_eq!(
        common::all_contacts(&driver, newcomer(), PageSize::default()).unwrap(),
        [(site.clone(), Roles::ALL)]
    );
    driver.store().audit().unwrap();
}

#[test]
fn reads_of_one_request_and_one_service() {
    // R19, R29, R35: a request's page: its state at the time asked and whom
    // it waits for; unknown things are specific errors.
    let driver = driver();
    let site = name("example.com");
    driver
        .import_services([(site.clone(), three_holders())])
        .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let edit = Edit::new(site.clone()).with(Role::Tech, newcomer());
    let request = driver.submit(&edit, admin(), T0, &mut rng).unwrap().value[0];
    let status = driver.request(request, T0).unwrap();
    assert_eq!(status.state, StateName::ValidatingByCustomers);
    assert_eq!(status.waiting_for, [admin(), newcomer()]);
    let _ = driver
        .accept(
            request,
            admin(),
            &last_token(driver.notifier(), admin(), request),
            T0,
        )
        .unwrap();
    let status = driver.request(request, T0).unwrap();
    assert_eq!(status.waiting_for, [newcomer()]);
    assert_eq!(status.request.failed_attempts(newcomer()), 0);
    let late = status.request.deadline();
    let status = driver.request(request, late).unwrap();
    assert_eq!(status.state, StateName::Expired);
    assert!(status.waiting_for.is_empty());
    let service = driver.service(&site).unwrap();
    assert_eq!(service.last_request(Role::Tech), Some(request));
    let unknown = RequestId::from_bytes([7; 16]);
    assert_eq!(
        driver.request(unknown, T0).unwrap_err(),
        DriverError::Refused(Refusal::UnknownRequest(unknown))
    );
}

/// A store that hides the first `hidden` reads of a named request, as a
/// store read at two moments would: the driver reads again.
struct HidesRequests {
    inner: MemoryStore,
    hidden: AtomicU32,
}

impl Store for HidesRequests {
    type Error = Infallible;
    fn service(&self, name: &ServiceName) -> Result<Option<Service>, Infallible> {
        self.inner.service(name)
    }
    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Infallible> {
        let hide = self
            .hidden
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if hide {
            Ok(None)
        } else {
            self.inner.request(id)
        }
    }
    forward_listings!(inner, Infallible, std::convert::identity);
    fn commit(&self, changes: Changes) -> Result<(), CommitError<Infallible>> {
        self.inner.commit(changes)
    }
}

#[test]
fn an_outdated_read_is_read_again_then_given_up() {
    // R44: the removal's snapshot misses the request its service names: the
    // driver reads again; a store that never answers it ends in Contention,
    // with nothing written.
    for (hidden, removed) in [(1, true), (u32::MAX, false)] {
        let directory = MemoryDirectory::new();
        directory.add(admin());
        directory.add(newcomer());
        let store = HidesRequests {
            inner: MemoryStore::new(),
            hidden: AtomicU32::new(0),
        };
        let driver = Driver::new(store, MemoryNotifier::new(), directory).with_retries(3);
        let site = name("example.com");
        driver.order_service(&site, admin()).unwrap();
        let edit = Edit::new(site.clone()).with(Role::Tech, newcomer());
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let _ = driver.submit(&edit, admin(), T0, &mut rng).unwrap();
        driver.store().hidden.store(hidden, Ordering::SeqCst);
        let before = driver.store().inner.services();
        let result = driver.remove_service(&site, T0);
        if removed {
            assert!(result.unwrap().value.is_removed());
        } else {
            assert_eq!(result.unwrap_err(), DriverError::Contention { attempts: 4 });
            assert_eq!(driver.store().inner.services(), before);
        }
    }
}

/// Another host's action, run once on the store just before the first read
/// of a service: for the last confirmation, between its read of the
/// request and its read of the service. Counts the reads and the commits.
#[derive(Default)]
struct LandsBeforeServiceRead {
    inner: MemoryStore,
    land: Mutex<Option<Other>>,
    request_reads: AtomicU32,
    service_reads: AtomicU32,
    conflicts: AtomicU32,
}

type Other = Box<dyn FnOnce(&MemoryStore) + Send>;

impl Store for LandsBeforeServiceRead {
    type Error = Infallible;
    fn service(&self, name: &ServiceName) -> Result<Option<Service>, Infallible> {
        let other = self.land.lock().unwrap().take();
        if let Some(other) = other {
            other(&self.inner);
        }
        self.service_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.service(name)
    }
    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Infallible> {
        self.request_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.request(id)
    }
    forward_listings!(inner, Infallible, std::convert::identity);
    fn commit(&self, changes: Changes) -> Result<(), CommitError<Infallible>> {
        let result = self.inner.commit(changes);
        if result.is_err() {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
        }
        result
    }
}

/// What another host does to a request, through its own driver, given a
/// confirmer's token.
type Act = fn(&Driver<&MemoryStore, MemoryNotifier, MemoryDirectory>, RequestId, &str);

/// What another host does to a request waiting for the admin alone, given
/// the admin's token, and the state the admin's confirmation then finds it
/// closed in (`None`: it applies): nothing; the admin cancels; the admin,
/// in another tab, types a wrong token (a failed attempt, R26); the same
/// confirmation lands there first.
const OTHER_HOSTS: [(&str, Option<Act>, Option<StateName>); 4] = [
    ("no other host", None, None),
    (
        "cancelled",
        Some(|other, request, _| {
            let _ = other.cancel(request, admin(), T0).unwrap();
        }),
        Some(StateName::Aborted),
    ),
    (
        "a failed attempt",
        Some(|other, request, _| {
            let _ = other
                .accept(request, admin(), "not-the-token", T0)
                .unwrap_err();
        }),
        None,
    ),
    (
        "the same confirmation",
        Some(|other, request, token| {
            let _ = other.accept(request, admin(), token, T0).unwrap();
        }),
        Some(StateName::Done),
    ),
];

/// A directory that knows the admin and the newcomer.
fn two_customers() -> MemoryDirectory {
    let directory = MemoryDirectory::new();
    directory.add(admin());
    directory.add(newcomer());
    directory
}

/// `site`, ordered by the admin, with a change of its tech contact to the
/// newcomer that the newcomer confirmed: the request and the admin's token,
/// the last confirmation missing. The notifier is left empty.
fn waiting_for_admin(
    driver: &Driver<LandsBeforeServiceRead, MemoryNotifier, MemoryDirectory>,
    site: &ServiceName,
) -> (RequestId, String) {
    driver.order_service(site, admin()).unwrap();
    let edit = Edit::new(site.clone()).with(Role::Tech, newcomer());
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let request = driver.submit(&edit, admin(), T0, &mut rng).unwrap().value[0];
    let token = |who| last_token(driver.notifier(), who, request);
    let _ = driver
        .accept(request, newcomer(), &token(newcomer()), T0)
        .unwrap();
    let admin_token = token(admin());
    let _ = driver.notifier().take();
    (request, admin_token)
}

#[test]
fn the_last_confirmation_reads_its_request_once_and_a_stale_copy_conflicts() {
    // R31, R44: the last confirmation decides on the request it read first,
    // which stands in for the service's copy of it (not read again). When
    // another host changes the request between that read and the read of
    // the service, the decision on the stale copy conflicts at commit; the
    // driver reads again and decides on what the other host wrote, which is
    // never lost.
    let site = name("example.com");
    for (what, act, refused_as) in OTHER_HOSTS {
        let driver = Driver::new(
            LandsBeforeServiceRead::default(),
            MemoryNotifier::new(),
            two_customers(),
        );
        let (request, admin_token) = waiting_for_admin(&driver, &site);
        let store = driver.store();
        if let Some(act) = act {
            let token = admin_token.clone();
            *store.land.lock().unwrap() = Some(Box::new(move |inner: &MemoryStore| {
                let other = Driver::new(inner, MemoryNotifier::new(), two_customers());
                act(&other, request, &token);
            }));
        }
        store.request_reads.store(0, Ordering::SeqCst);
        store.service_reads.store(0, Ordering::SeqCst);
        let result = driver.accept(request, admin(), &admin_token, T0);
        // Each attempt reads the request once, and the service if it is
        // still the last confirmation (the service names only this
        // request, the one in hand); the retry finds a closed request.
        let attempts = 1 + u32::from(act.is_some());
        let last_confirmations = if refused_as.is_none() { attempts } else { 1 };
        assert_eq!(
            store.request_reads.load(Ordering::SeqCst),
            attempts,
            "{what}"
        );
        assert_eq!(
            store.service_reads.load(Ordering::SeqCst),
            last_confirmations,
            "{what}"
        );
        assert_eq!(
            store.conflicts.load(Ordering::SeqCst),
            u32::from(act.is_some()),
            "{what}: the stale copy conflicts"
        );
        let stored = store.inner.request(request).unwrap().unwrap();
        let service = store.inner.service(&site).unwrap().unwrap();
        match refused_as {
            None => {
                assert_eq!(result.unwrap().value, stored, "{what}");
                assert_eq!(stored.state().name(), StateName::Done, "{what}");
                assert_eq!(service.holder(Role::Tech), newcomer(), "{what}");
            }
            Some(state) => {
                let err = result.unwrap_err();
                assert_eq!(
                    err,
                    DriverError::Refused(Refusal::Act(ActError::Closed { state })),
                    "{what}"
                );
                assert_eq!(stored.state().name(), state, "{what}");
                assert!(driver.notifier().take().is_empty(), "{what}");
            }
        }
        // Nothing the other host wrote is lost: its failed attempt stays
        // recorded (R26), and a change applies once (R31): order, submit,
        // apply are the service's three versions.
        let failed = stored
            .history()
            .iter()
            .filter(|e| matches!(e.kind(), EventKind::FailedAttempt))
            .count();
        assert_eq!(failed, usize::from(what == "a failed attempt"), "{what}");
        let applied = u64::from(stored.state().name() == StateName::Done);
        assert_eq!(service.version().get(), 2 + applied, "{what}");
        store.inner.audit().unwrap();
    }
}

#[test]
fn a_large_import_is_indexed_in_name_order() {
    // R42, R6, R45: a batch big enough to be indexed by sort and merge (not
    // one insertion at a time), in no particular name order, onto holders
    // who already hold services: "my contacts" pages through it in name
    // order, and every index agrees with a scan.
    let driver = driver();
    driver
        .import_services([(name("m-early.example"), three_holders())])
        .unwrap();
    let batch: Vec<(ServiceName, Contacts)> = (0..2_000u32)
        .map(|n| {
            let scrambled = n.wrapping_mul(7919) % 2_000;
            let holders = if n % 2 == 0 {
                three_holders()
            } else {
                Contacts::all(newcomer())
            };
            (name(&format!("s{scrambled}.example")), holders)
        })
        .collect();
    driver.import_services(batch).unwrap();
    driver.store().audit().unwrap();
    let listed = common::all_contacts(&driver, admin(), PageSize::new(7).unwrap()).unwrap();
    assert_eq!(listed.len(), 1_001);
    assert!(listed.windows(2).all(|w| w[0].0 < w[1].0));
    let listed = common::all_contacts(&driver, newcomer(), PageSize::default()).unwrap();
    assert_eq!(listed.len(), 1_000);
}
