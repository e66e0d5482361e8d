//! The driver against faulty hosts (R41, R31) and bad input: each failure is
//! specific, and leaves the store as it was.

#[macro_use]
mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ActError, ChangeRequest, Changes, CommitError, CustomerId, Driver, DriverError, Edit,
    MemoryDirectory, MemoryNotifier, MemoryStore, MessageKind, PageSize, Refusal, RequestFilter,
    RequestId, Role, Roles, Service, ServiceName, StateName, Store, SubmitError,
};
use time::{Duration, OffsetDateTime, macros::datetime};

/// A store that can be told to fail commits, with an error or a conflict.
#[derive(Default)]
struct FaultyStore {
    inner: MemoryStore,
    fail_commits: AtomicBool,
    conflict_always: AtomicBool,
    commits: AtomicU32,
}

#[derive(Debug, thiserror::Error)]
#[error("disk on fire")]
struct DiskOnFire;

impl Store for FaultyStore {
    type Error = DiskOnFire;
    fn service(&self, name: &ServiceName) -> Result<Option<Service>, DiskOnFire> {
        Ok(self
            .inner
            .service(name)
            .unwrap_or_else(|e: Infallible| match e {}))
    }
    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, DiskOnFire> {
        Ok(self.inner.request(id).unwrap_or_else(|e| match e {}))
    }
    forward_listings!(inner, DiskOnFire, common::never);
    fn commit(&self, changes: Changes) -> Result<(), CommitError<DiskOnFire>> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        if self.fail_commits.load(Ordering::SeqCst) {
            return Err(CommitError::Store(DiskOnFire));
        }
        if self.conflict_always.load(Ordering::SeqCst) {
            return Err(CommitError::Conflict);
        }
        self.inner
            .commit(changes)
            .map_err(|_| CommitError::Conflict)
    }
}

struct World {
    driver: Driver<FaultyStore, MemoryNotifier, MemoryDirectory>,
    admin: CustomerId,
    tech: CustomerId,
    stranger: CustomerId,
    site: ServiceName,
    rng: ChaCha20Rng,
}

fn t0() -> OffsetDateTime {
    datetime!(2026-11-21 10:00 UTC)
}

fn world() -> World {
    let directory = MemoryDirectory::new();
    let admin: CustomerId = "AD1-OVH".parse().unwrap();
    let tech: CustomerId = "TE2-OVH".parse().unwrap();
    let stranger: CustomerId = "ST3-OVH".parse().unwrap();
    for c in [admin, tech, stranger] {
        directory.add(c);
    }
    let driver = Driver::new(FaultyStore::default(), MemoryNotifier::new(), directory);
    let site: ServiceName = "example.com".parse().unwrap();
    driver.order_service(&site, admin).unwrap();
    World {
        driver,
        admin,
        tech,
        stranger,
        site,
        rng: ChaCha20Rng::seed_from_u64(11),
    }
}

impl World {
    /// Everything the store holds, in a stable order.
    fn dump(&self) -> String {
        let store = &self.driver.store().inner;
        let mut services = store.services();
        services.sort_by(|a, b| a.name().cmp(b.name()));
        let mut requests = store.requests();
        requests.sort_by_key(ChangeRequest::id);
        format!("{services:?}\n{requests:?}")
    }

    fn open_tech(&mut self) -> RequestId {
        let edit = Edit::new(self.site.clone()).with(Role::Tech, self.tech);
        let outcome = self
            .driver
            .submit(&edit, self.admin, t0(), &mut self.rng)
            .unwrap();
        assert!(outcome.all_delivered());
        outcome.value[0]
    }

    fn token(&self, to: CustomerId, request: RequestId) -> String {
        self.driver
            .notifier()
            .delivered()
            .iter()
            .rev()
            .find(|m| m.to() == to && m.request() == Some(request))
            .and_then(|m| m.token().map(service_contacts::Token::reveal))
            .expect("a token was delivered")
    }
}

#[test]
fn failed_commit_sends_nothing_and_changes_nothing() {
    // R41, R31
    let mut w = world();
    let request = w.open_tech();
    let tech_token = w.token(w.tech, request);
    let sent = w.driver.notifier().delivered().len();
    let before = w.dump();
    w.driver.store().fail_commits.store(true, Ordering::SeqCst);

    let edit = Edit::new(w.site.clone()).with(Role::Billing, w.tech);
    let err = w
        .driver
        .submit(&edit, w.admin, t0(), &mut w.rng)
        .unwrap_err();
    assert!(matches!(err, DriverError::Store(DiskOnFire)), "{err}");
    let err = w
        .driver
        .accept(request, w.tech, &tech_token, t0())
        .unwrap_err();
    assert!(matches!(err, DriverError::Store(DiskOnFire)), "{err}");
    let err = w.driver.cancel(request, w.admin, t0()).unwrap_err();
    assert!(matches!(err, DriverError::Store(DiskOnFire)), "{err}");

    assert_eq!(w.dump(), before, "a failed commit changed the store");
    assert_eq!(
        w.driver.notifier().delivered().len(),
        sent,
        "a message went out for an uncommitted state"
    );

    // Once the store recovers, the same token still works.
    w.driver.store().fail_commits.store(false, Ordering::SeqCst);
    let outcome = w.driver.accept(request, w.tech, &tech_token, t0()).unwrap();
    assert_eq!(outcome.value.missing_at(t0()), [w.admin]);
}

#[test]
fn endless_conflicts_give_up_without_effect() {
    // R31: a bounded number of attempts, then a retryable error.
    let mut w = world();
    let before = w.dump();
    w.driver
        .store()
        .conflict_always
        .store(true, Ordering::SeqCst);
    let commits = w.driver.store().commits.load(Ordering::SeqCst);
    let edit = Edit::new(w.site.clone()).with(Role::Tech, w.tech);
    let err = w
        .driver
        .submit(&edit, w.admin, t0(), &mut w.rng)
        .unwrap_err();
    assert!(
        matches!(err, DriverError::Contention { attempts: 17 }),
        "{err}"
    );
    assert_eq!(
        w.driver.store().commits.load(Ordering::SeqCst) - commits,
        17
    );
    assert_eq!(w.dump(), before);
    assert!(w.driver.notifier().delivered().is_empty());
}

#[test]
fn failed_delivery_keeps_the_state_and_resend_recovers() {
    // R41, R22, R23
    let mut w = world();
    let tech = w.tech;
    w.driver.notifier().fail_when(move |m| m.to() == tech);
    let edit = Edit::new(w.site.clone()).with(Role::Tech, w.tech);
    let outcome = w.driver.submit(&edit, w.admin, t0(), &mut w.rng).unwrap();
    let request = outcome.value[0];
    assert_eq!(outcome.undelivered.len(), 1);
    assert_eq!(outcome.undelivered[0].message.to(), w.tech);
    assert_eq!(outcome.undelivered[0].error.to, w.tech);
    // The request stands, waiting for both.
    let stored = w.driver.store().inner.request(request).unwrap().unwrap();
    assert_eq!(stored.state().name(), StateName::ValidatingByCustomers);
    assert_eq!(stored.missing_at(t0()), [w.admin, w.tech]);

    // The address is fixed; a resend after the interval reaches the tech.
    w.driver.notifier().deliver_all();
    let later = t0() + Duration::minutes(5);
    let resent = w
        .driver
        .resend(request, w.admin, later, &mut w.rng)
        .unwrap();
    assert!(resent.all_delivered());
    let token = w.token(w.tech, request);
    let admin_token = w.token(w.admin, request);
    let _ = w.driver.accept(request, w.tech, &token, later).unwrap();
    let done = w
        .driver
        .accept(request, w.admin, &admin_token, later)
        .unwrap();
    assert_eq!(done.value.state().name(), StateName::Done);
}

#[test]
fn failed_delivery_of_the_news_leaves_the_change_applied() {
    // R41: "change applied" fails to go out; the change stands.
    let mut w = world();
    let request = w.open_tech();
    let (a, t) = (w.token(w.admin, request), w.token(w.tech, request));
    w.driver
        .notifier()
        .fail_when(|m| matches!(m.kind(), MessageKind::Applied));
    let _ = w.driver.accept(request, w.tech, &t, t0()).unwrap();
    let outcome = w.driver.accept(request, w.admin, &a, t0()).unwrap();
    assert_eq!(outcome.undelivered.len(), 2);
    let service = w.driver.store().inner.service(&w.site).unwrap().unwrap();
    assert_eq!(service.holder(Role::Tech), w.tech);
}

#[test]
fn unknown_things_get_specific_errors_and_change_nothing() {
    // R13
    let mut w = world();
    let _open = w.open_tech();
    let before = w.dump();
    let sent = w.driver.notifier().delivered().len();
    let nowhere: ServiceName = "nowhere.example".parse().unwrap();
    let ghost: CustomerId = "GH9-OVH".parse().unwrap();
    let missing: RequestId = "00000000000000000000000000000000".parse().unwrap();
    let now = t0();

    let refusal =
        |err: DriverError<DiskOnFire, Infallible>| err.refusal().cloned().expect("a refusal");

    let edit = Edit::new(nowhere.clone()).with(Role::Tech, w.tech);
    assert_eq!(
        refusal(
            w.driver
                .submit(&edit, w.admin, now, &mut w.rng)
                .unwrap_err()
        ),
        Refusal::UnknownService(nowhere.clone())
    );
    assert_eq!(
        refusal(w.driver.proposable(&nowhere, w.admin, now).unwrap_err()),
        Refusal::UnknownService(nowhere.clone())
    );
    for err in [
        w.driver.accept(missing, w.admin, "x", now).unwrap_err(),
        w.driver.refuse(missing, w.admin, "x", now).unwrap_err(),
        w.driver.cancel(missing, w.admin, now).unwrap_err(),
        w.driver
            .resend(missing, w.admin, now, &mut w.rng)
            .unwrap_err(),
    ] {
        assert_eq!(refusal(err), Refusal::UnknownRequest(missing));
    }
    assert_eq!(
        refusal(
            w.driver
                .order_service(&"new.example".parse().unwrap(), ghost)
                .unwrap_err()
        ),
        Refusal::UnknownCustomer(ghost)
    );
    assert_eq!(
        refusal(w.driver.order_service(&w.site, w.admin).unwrap_err()),
        Refusal::ServiceExists(w.site.clone())
    );
    assert_eq!(
        refusal(
            w.driver
                .my_contacts(ghost, None, PageSize::default())
                .unwrap_err()
        ),
        Refusal::UnknownCustomer(ghost)
    );
    assert_eq!(
        refusal(
            w.driver
                .my_requests(ghost, &RequestFilter::all(), now, None, PageSize::default())
                .unwrap_err()
        ),
        Refusal::UnknownCustomer(ghost)
    );
    let edit = Edit::new(w.site.clone()).with(Role::Billing, ghost);
    assert_eq!(
        refusal(
            w.driver
                .submit(&edit, w.admin, now, &mut w.rng)
                .unwrap_err()
        ),
        Refusal::Submit(SubmitError::UnknownCustomer { customer: ghost })
    );
    assert_eq!(w.dump(), before, "bad input changed the store");
    assert_eq!(
        w.driver.notifier().delivered().len(),
        sent,
        "bad input sent messages"
    );
}

#[test]
fn actors_who_are_not_parties_get_specific_errors_and_change_nothing() {
    // R24, R25, R28, R22, R11
    let mut w = world();
    let request = w.open_tech();
    let before = w.dump();
    let sent = w.driver.notifier().delivered().len();
    let now = t0();
    let refusal =
        |err: DriverError<DiskOnFire, Infallible>| err.refusal().cloned().expect("a refusal");
    let admin_token = w.token(w.admin, request);
    assert_eq!(
        refusal(
            w.driver
                .accept(request, w.stranger, &admin_token, now)
                .unwrap_err()
        ),
        Refusal::Act(ActError::InvalidToken)
    );
    assert_eq!(
        refusal(
            w.driver
                .refuse(request, w.stranger, &admin_token, now)
                .unwrap_err()
        ),
        Refusal::Act(ActError::InvalidToken)
    );
    assert_eq!(
        refusal(w.driver.cancel(request, w.stranger, now).unwrap_err()),
        Refusal::Act(ActError::NotRequester)
    );
    assert_eq!(
        refusal(
            w.driver
                .resend(request, w.stranger, now + Duration::hours(1), &mut w.rng)
                .unwrap_err()
        ),
        Refusal::Act(ActError::NotAConfirmer)
    );
    let edit = Edit::new(w.site.clone()).with(Role::Billing, w.stranger);
    assert_eq!(
        refusal(
            w.driver
                .submit(&edit, w.stranger, now, &mut w.rng)
                .unwrap_err()
        ),
        Refusal::Submit(SubmitError::NotPermitted {
            role: Role::Billing,
            ask: Role::Admin
        })
    );
    // Garbage tokens of every shape: the one token error (R25).
    for garbage in [
        "",
        "é",
        "\0",
        &"A".repeat(10_000),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        assert_eq!(
            refusal(
                w.driver
                    .accept(request, w.stranger, garbage, now)
                    .unwrap_err()
            ),
            Refusal::Act(ActError::InvalidToken)
        );
    }

    assert_eq!(w.dump(), before, "bad input changed the store");
    assert_eq!(
        w.driver.notifier().delivered().len(),
        sent,
        "bad input sent messages"
    );
}

#[test]
fn a_wrong_token_from_a_confirmer_is_counted_and_nothing_else() {
    // R26, R34: the one refusal that writes: the failed attempt.
    let mut w = world();
    let request = w.open_tech();
    let before = w.driver.store().inner.request(request).unwrap().unwrap();
    let err = w.driver.accept(request, w.tech, "wrong", t0()).unwrap_err();
    assert_eq!(err.refusal(), Some(&Refusal::Act(ActError::InvalidToken)));
    let after = w.driver.store().inner.request(request).unwrap().unwrap();
    assert_eq!(after.version(), before.version().next());
    assert_eq!(after.history().len(), before.history().len() + 1);
    assert_eq!(after.state().name(), StateName::ValidatingByCustomers);
}

#[test]
fn my_contacts_and_my_requests() {
    // R6, R35
    let mut w = world();
    let request = w.open_tech();
    assert_eq!(
        common::all_contacts(&w.driver, w.admin, PageSize::default()).unwrap(),
        [(w.site.clone(), Roles::ALL)]
    );
    let all = RequestFilter::all();
    let size = PageSize::default();
    assert!(
        common::all_contacts(&w.driver, w.tech, size)
            .unwrap()
            .is_empty()
    );
    let mine = common::all_requests(&w.driver, w.tech, &all, t0(), size).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].id, request);
    assert!(mine[0].waits_for_me);
    assert_eq!(mine[0].state, StateName::ValidatingByCustomers);
    assert!(
        common::all_requests(&w.driver, w.stranger, &all, t0(), size)
            .unwrap()
            .is_empty()
    );
    // Past the deadline it shows as expired and waits for no one (R29).
    let late = t0() + Duration::days(8);
    let mine = common::all_requests(&w.driver, w.tech, &all, late, size).unwrap();
    assert_eq!(mine[0].state, StateName::Expired);
    assert!(!mine[0].waits_for_me);
}

#[test]
fn a_store_that_answers_with_another_record_has_no_such_request() {
    // A host store that returns the wrong row for an id (a corrupt index)
    // gets a refusal, not a panic, and nothing is written.
    struct Mixup(MemoryStore, RequestId);
    impl Store for Mixup {
        type Error = Infallible;
        fn service(&self, name: &ServiceName) -> Result<Option<Service>, Infallible> {
            self.0.service(name)
        }
        fn request(&self, _: RequestId) -> Result<Option<ChangeRequest>, Infallible> {
            self.0.request(self.1)
        }
        forward_listings!(0, Infallible, std::convert::identity);
        fn commit(&self, changes: Changes) -> Result<(), CommitError<Infallible>> {
            self.0.commit(changes)
        }
    }
    let mut w = world();
    let request = w.open_tech();
    let other: RequestId = "0123456789abcdef0123456789abcdef".parse().unwrap();
    let store = Mixup(MemoryStore::new(), request);
    let inner = w.driver.store().inner.request(request).unwrap().unwrap();
    let site = w.driver.store().inner.service(&w.site).unwrap().unwrap();
    store
        .0
        .commit(Changes {
            services: vec![service_contacts::Write {
                value: site,
                expected: None,
            }],
            requests: vec![service_contacts::Write {
                value: inner,
                expected: None,
            }],
            assignments: Vec::new(),
        })
        .unwrap();
    let directory = MemoryDirectory::new();
    directory.add(w.admin);
    let driver = Driver::new(&store, MemoryNotifier::new(), &directory);
    let err = driver.cancel(other, w.admin, t0()).unwrap_err();
    assert_eq!(err.refusal(), Some(&Refusal::UnknownRequest(other)));
    let err = driver
        .resend(other, w.admin, t0() + Duration::hours(1), &mut w.rng)
        .unwrap_err();
    assert_eq!(err.refusal(), Some(&Refusal::UnknownRequest(other)));
    assert!(store.0.request(request).unwrap().unwrap().is_open());
}

#[test]
fn the_memory_store_refuses_a_write_that_does_not_move_the_version_on() {
    // R31: a record written at the version it replaces would let two
    // writers of that version both succeed.
    let store = MemoryStore::new();
    let service = Service::order("example.com".parse().unwrap(), "AD1-OVH".parse().unwrap());
    let create = Changes {
        services: vec![service_contacts::Write {
            value: service.clone(),
            expected: None,
        }],
        requests: Vec::new(),
        assignments: Vec::new(),
    };
    store.commit(create).unwrap();
    let same = Changes {
        services: vec![service_contacts::Write {
            value: service.clone(),
            expected: Some(service.version()),
        }],
        requests: Vec::new(),
        assignments: Vec::new(),
    };
    assert!(matches!(store.commit(same), Err(CommitError::Conflict)));
}
