//! A conformance suite for [`Store`] implementations (feature `testing`).
//!
//! A host that implements [`Store`] on its own database runs the suite
//! against fresh, empty stores and gets a report of every contract point:
//! version conflicts, all-or-nothing commits, indexes right after contacts
//! change, due-for-expiry queries, request listings, racing commits.
//!
//! ```
//! use service_contacts::MemoryStore;
//! use service_contacts::testing::run_store_suite;
//!
//! // In a host's test: build a fresh, empty store for each case.
//! let report = run_store_suite(MemoryStore::new);
//! report.assert_passed();
//! assert_eq!(report.passed.len(), service_contacts::testing::CASES.len());
//! ```
//!
//! For a database, the builder creates a new schema or a new file per call
//! (see the `SQLite` example in the repository).

use std::convert::Infallible;
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::host::{CommitError, Store};
use crate::{
    AccountStatus, ChangeRequest, Changes, CustomerId, Edit, Engine, Role, Roles, Service,
    ServiceName, Snapshot, Version, Write,
};

/// The names of the cases, in the order they run.
pub const CASES: &[&str] = &[
    "service_round_trip",
    "create_existing_conflicts",
    "stale_version_conflicts",
    "update_of_missing_record_conflicts",
    "commit_is_all_or_nothing",
    "request_round_trip",
    "last_requests_kept",
    "contacts_index_follows_changes",
    "requests_of_listing",
    "due_for_expiry_query",
    "racing_commits_one_wins",
];

/// The outcome of [`run_store_suite`].
#[derive(Debug, Default)]
pub struct Report {
    /// The cases that passed.
    pub passed: Vec<&'static str>,
    /// The cases that failed, with what went wrong.
    pub failed: Vec<(&'static str, String)>,
}

impl Report {
    /// Panics with every failure if any case failed.
    ///
    /// # Panics
    ///
    /// If a case failed.
    pub fn assert_passed(&self) {
        if !self.failed.is_empty() {
            let lines: Vec<String> = self
                .failed
                .iter()
                .map(|(case, why)| format!("  {case}: {why}"))
                .collect();
            panic!("store conformance failed:\n{}", lines.join("\n"));
        }
    }
}

/// Runs every case of the suite, each against a fresh store from `make`.
///
/// A case that panics is reported as failed with the panic's message.
pub fn run_store_suite<S, F>(mut make: F) -> Report
where
    S: Store + Sync,
    F: FnMut() -> S,
{
    let cases: [Case<S>; 11] = [
        ("service_round_trip", service_round_trip),
        ("create_existing_conflicts", create_existing_conflicts),
        ("stale_version_conflicts", stale_version_conflicts),
        (
            "update_of_missing_record_conflicts",
            update_of_missing_record_conflicts,
        ),
        ("commit_is_all_or_nothing", commit_is_all_or_nothing),
        ("request_round_trip", request_round_trip),
        ("last_requests_kept", last_requests_kept),
        (
            "contacts_index_follows_changes",
            contacts_index_follows_changes,
        ),
        ("requests_of_listing", requests_of_listing),
        ("due_for_expiry_query", due_for_expiry_query),
        ("racing_commits_one_wins", racing_commits_one_wins),
    ];
    let mut report = Report::default();
    for (name, case) in cases {
        let store = make();
        match catch_unwind(AssertUnwindSafe(|| case(&store))) {
            Ok(Ok(())) => report.passed.push(name),
            Ok(Err(why)) => report.failed.push((name, why)),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panicked".to_owned());
                report.failed.push((name, format!("panicked: {why}")));
            }
        }
    }
    report
}

type Outcome = Result<(), String>;

/// One named case of the suite.
type Case<S> = (&'static str, fn(&S) -> Outcome);

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

fn host<T, E: Display>(result: Result<T, E>) -> Result<T, String> {
    result.map_err(|err| format!("store error: {err}"))
}

fn committed<E: Display>(result: Result<(), CommitError<E>>, what: &str) -> Outcome {
    match result {
        Ok(()) => Ok(()),
        Err(CommitError::Conflict) => Err(format!("{what}: unexpected conflict")),
        Err(CommitError::Store(err)) => Err(format!("{what}: store error: {err}")),
    }
}

fn conflicted<E: Display>(result: Result<(), CommitError<E>>, what: &str) -> Outcome {
    match result {
        Err(CommitError::Conflict) => Ok(()),
        Ok(()) => Err(format!("{what}: committed, expected a conflict")),
        Err(CommitError::Store(err)) => Err(format!("{what}: store error: {err}")),
    }
}

/// A deterministic generator for the suite's tokens: SHA-256 in counter
/// mode. Tokens made here guard nothing.
struct SuiteRng(u64);

impl TryRng for SuiteRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(32) {
            self.0 += 1;
            let block: [u8; 32] = Sha256::digest(self.0.to_le_bytes()).into();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for SuiteRng {}

fn id(text: &str) -> CustomerId {
    CustomerId::parse(text).expect("valid fixture identifier")
}

fn name(text: &str) -> ServiceName {
    ServiceName::parse(text).expect("valid fixture name")
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)
}

fn create(service: &Service) -> Changes {
    Changes {
        services: vec![Write {
            value: service.clone(),
            expected: None,
        }],
        requests: Vec::new(),
    }
}

/// Opens a request in the store: `requester` (the admin) proposes
/// `incoming` for `roles` of `service`, at `now`.
fn open_request<S: Store>(
    store: &S,
    service: &Service,
    incoming: CustomerId,
    roles: Roles,
    now: OffsetDateTime,
    seed: u64,
) -> Result<ChangeRequest, String> {
    // Opening a request writes the service at its next version: use the
    // stored one.
    let service = &host(store.service(service.name()))?.ok_or("fixture service missing")?;
    let requester = service.holder(Role::Admin);
    let mut edit = Edit::new(service.name().clone());
    for role in roles {
        edit.set(role, incoming);
    }
    let mut named = Vec::new();
    for id in service.requests_to_load() {
        named.extend(host(store.request(id))?);
    }
    let snapshot = Snapshot {
        service,
        requests: &named,
    };
    let everyone = |_| AccountStatus::GoodStanding;
    let transition = Engine::default()
        .submit(
            &edit,
            requester,
            snapshot,
            &everyone,
            now,
            &mut SuiteRng(seed),
        )
        .map_err(|err| format!("fixture edit refused: {err}"))?;
    let request = transition
        .requests()
        .next()
        .cloned()
        .ok_or("fixture edit opened nothing")?;
    committed(store.commit(transition.changes), "opening a request")?;
    Ok(request)
}

fn service_round_trip<S: Store>(store: &S) -> Outcome {
    let service = Service::order(name("round.example"), id("AA1-OVH"));
    ensure!(
        host(store.service(service.name()))?.is_none(),
        "an empty store has a service"
    );
    committed(store.commit(create(&service)), "creating a service")?;
    let loaded = host(store.service(service.name()))?;
    ensure!(
        loaded.as_ref() == Some(&service),
        "read back {loaded:?}, wrote {service:?}"
    );
    Ok(())
}

fn create_existing_conflicts<S: Store>(store: &S) -> Outcome {
    let service = Service::order(name("twice.example"), id("AA1-OVH"));
    committed(store.commit(create(&service)), "first creation")?;
    let other = Service::order(name("twice.example"), id("BB2-OVH"));
    conflicted(store.commit(create(&other)), "second creation")?;
    let loaded = host(store.service(service.name()))?;
    ensure!(
        loaded.as_ref() == Some(&service),
        "a refused creation changed the service"
    );
    Ok(())
}

fn stale_version_conflicts<S: Store>(store: &S) -> Outcome {
    let service = Service::order(name("stale.example"), id("AA1-OVH"));
    committed(store.commit(create(&service)), "creation")?;
    let mut contacts = *service.contacts();
    contacts.set(Role::Tech, id("BB2-OVH"));
    let v2 = Service::new(service.name().clone(), contacts, service.version().next());
    let update = |value: &Service, expected| Changes {
        services: vec![Write {
            value: value.clone(),
            expected: Some(expected),
        }],
        requests: Vec::new(),
    };
    conflicted(
        store.commit(update(&v2, Version::new(7))),
        "update expecting a wrong version",
    )?;
    committed(
        store.commit(update(&v2, service.version())),
        "update expecting the right version",
    )?;
    conflicted(
        store.commit(update(&v2, service.version())),
        "second update expecting the replaced version",
    )?;
    let loaded = host(store.service(service.name()))?;
    ensure!(
        loaded.as_ref() == Some(&v2),
        "read back {loaded:?} after the update"
    );
    Ok(())
}

fn update_of_missing_record_conflicts<S: Store>(store: &S) -> Outcome {
    let service = Service::order(name("missing.example"), id("AA1-OVH"));
    let changes = Changes {
        services: vec![Write {
            value: service.clone(),
            expected: Some(Version::FIRST),
        }],
        requests: Vec::new(),
    };
    conflicted(store.commit(changes), "update of a service never created")?;
    ensure!(
        host(store.service(service.name()))?.is_none(),
        "a refused update created a service"
    );
    Ok(())
}

fn commit_is_all_or_nothing<S: Store>(store: &S) -> Outcome {
    let admin = id("AA1-OVH");
    let service = Service::order(name("atomic.example"), admin);
    committed(store.commit(create(&service)), "creation")?;
    let request = open_request(store, &service, id("BB2-OVH"), Role::Tech.into(), t0(), 1)?;
    // A batch with a good new service and a stale request write.
    let fresh = Service::order(name("fresh.example"), admin);
    let mut stale = request.clone();
    stale.version = request.version().next();
    let batch = Changes {
        services: vec![Write {
            value: fresh.clone(),
            expected: None,
        }],
        requests: vec![Write {
            value: stale,
            expected: Some(Version::new(99)),
        }],
    };
    conflicted(store.commit(batch), "a batch with one stale write")?;
    ensure!(
        host(store.service(fresh.name()))?.is_none(),
        "the good half of a conflicting batch was written"
    );
    ensure!(
        host(store.contacts_of(admin))?.len() == 1,
        "the holder index shows a service of a conflicting batch"
    );
    let loaded = host(store.request(request.id()))?;
    ensure!(
        loaded.as_ref() == Some(&request),
        "the stale half changed the request"
    );
    Ok(())
}

fn request_round_trip<S: Store>(store: &S) -> Outcome {
    let service = Service::order(name("request.example"), id("AA1-OVH"));
    committed(store.commit(create(&service)), "creation")?;
    let request = open_request(
        store,
        &service,
        id("BB2-OVH"),
        Role::Tech | Role::Billing,
        t0(),
        2,
    )?;
    let loaded = host(store.request(request.id()))?;
    ensure!(loaded.as_ref() == Some(&request), "read back {loaded:?}");
    // A cancelled request keeps its full state and history.
    let cancelled = Engine::default()
        .cancel(&request, request.requester(), t0() + Duration::minutes(1))
        .map_err(|err| err.to_string())?;
    let after = cancelled.request(request.id()).cloned().ok_or("no write")?;
    committed(store.commit(cancelled.changes), "cancelling")?;
    let loaded = host(store.request(request.id()))?;
    ensure!(
        loaded.as_ref() == Some(&after),
        "read back {loaded:?} after cancel"
    );
    Ok(())
}

fn last_requests_kept<S: Store>(store: &S) -> Outcome {
    let a = Service::order(name("a.example"), id("AA1-OVH"));
    let b = Service::order(name("b.example"), id("AA1-OVH"));
    committed(store.commit(create(&a)), "creation")?;
    committed(store.commit(create(&b)), "creation")?;
    let tech = open_request(store, &a, id("BB2-OVH"), Role::Tech.into(), t0(), 3)?;
    let billing = open_request(store, &a, id("CC3-OVH"), Role::Billing.into(), t0(), 4)?;
    let other = open_request(store, &b, id("BB2-OVH"), Role::Tech.into(), t0(), 5)?;
    // R27, R44: the service record names the last request of each role.
    let names = |service: &Service| -> Result<Vec<_>, String> {
        let stored = host(store.service(service.name()))?.ok_or("service vanished")?;
        Ok(stored.last_requests().collect())
    };
    ensure!(
        names(&a)? == [(Role::Tech, tech.id()), (Role::Billing, billing.id())],
        "the last requests of a.example were not kept: {:?}",
        names(&a)?
    );
    ensure!(
        names(&b)? == [(Role::Tech, other.id())],
        "the last requests of b.example were not kept: {:?}",
        names(&b)?
    );
    Ok(())
}

fn contacts_index_follows_changes<S: Store>(store: &S) -> Outcome {
    let (old, new) = (id("AA1-OVH"), id("BB2-OVH"));
    let z = Service::order(name("z.example"), old);
    let a = Service::order(name("a.example"), old);
    committed(store.commit(create(&z)), "creation")?;
    committed(store.commit(create(&a)), "creation")?;
    let listed = host(store.contacts_of(old))?;
    ensure!(
        listed
            == [
                (a.name().clone(), Roles::ALL),
                (z.name().clone(), Roles::ALL)
            ],
        "contacts of the owner, sorted by name: {listed:?}"
    );
    let mut contacts = *z.contacts();
    contacts.set(Role::Tech, new);
    contacts.set(Role::Billing, new);
    let z2 = Service::new(z.name().clone(), contacts, z.version().next());
    let changes = Changes {
        services: vec![Write {
            value: z2,
            expected: Some(z.version()),
        }],
        requests: Vec::new(),
    };
    committed(store.commit(changes), "changing contacts")?;
    let listed = host(store.contacts_of(new))?;
    ensure!(
        listed == [(z.name().clone(), Role::Tech | Role::Billing)],
        "contacts of the new holder: {listed:?}"
    );
    let listed = host(store.contacts_of(old))?;
    ensure!(
        listed
            == [
                (a.name().clone(), Roles::ALL),
                (z.name().clone(), Role::Admin.into())
            ],
        "contacts of the old holder: {listed:?}"
    );
    // Giving the admin role away too drops z.example from the old holder.
    contacts.set(Role::Admin, new);
    let z3 = Service::new(z.name().clone(), contacts, z.version().next().next());
    let changes = Changes {
        services: vec![Write {
            value: z3,
            expected: Some(z.version().next()),
        }],
        requests: Vec::new(),
    };
    committed(store.commit(changes), "changing the admin")?;
    let listed = host(store.contacts_of(old))?;
    ensure!(
        listed == [(a.name().clone(), Roles::ALL)],
        "old holder still listed: {listed:?}"
    );
    ensure!(
        host(store.contacts_of(id("ZZ9-OVH")))?.is_empty(),
        "a stranger has contacts"
    );
    Ok(())
}

fn requests_of_listing<S: Store>(store: &S) -> Outcome {
    let (admin, tech, stranger) = (id("AA1-OVH"), id("BB2-OVH"), id("ZZ9-OVH"));
    let mut contacts = *Service::order(name("x.example"), admin).contacts();
    contacts.set(Role::Tech, tech);
    let service = Service::new(name("x.example"), contacts, Version::FIRST);
    committed(store.commit(create(&service)), "creation")?;
    let first = open_request(store, &service, id("CC3-OVH"), Role::Tech.into(), t0(), 6)?;
    let second = open_request(
        store,
        &service,
        id("DD4-OVH"),
        Role::Billing.into(),
        t0() + Duration::hours(1),
        7,
    )?;
    let ids = |customer| -> Result<Vec<_>, String> {
        Ok(host(store.requests_of(customer))?
            .iter()
            .map(ChangeRequest::id)
            .collect())
    };
    ensure!(
        ids(admin)? == [second.id(), first.id()],
        "requester's requests, newest first"
    );
    ensure!(
        ids(id("CC3-OVH"))? == [first.id()],
        "incoming customer's requests"
    );
    ensure!(ids(tech)? == [first.id()], "outgoing contact's requests");
    ensure!(ids(stranger)?.is_empty(), "a stranger has requests");
    // Terminal requests stay listed.
    let cancelled = Engine::default()
        .cancel(&first, admin, t0() + Duration::hours(2))
        .map_err(|err| err.to_string())?;
    committed(store.commit(cancelled.changes), "cancelling")?;
    ensure!(
        ids(tech)? == [first.id()],
        "a cancelled request left the listing"
    );
    Ok(())
}

fn due_for_expiry_query<S: Store>(store: &S) -> Outcome {
    let service = Service::order(name("due.example"), id("AA1-OVH"));
    committed(store.commit(create(&service)), "creation")?;
    let early = open_request(store, &service, id("BB2-OVH"), Role::Tech.into(), t0(), 8)?;
    let late = open_request(
        store,
        &service,
        id("CC3-OVH"),
        Role::Billing.into(),
        t0() + Duration::days(1),
        9,
    )?;
    let ids = |now| -> Result<Vec<_>, String> {
        Ok(host(store.due_for_expiry(now))?
            .iter()
            .map(ChangeRequest::id)
            .collect())
    };
    ensure!(
        ids(early.deadline() - Duration::seconds(1))?.is_empty(),
        "due before the deadline"
    );
    ensure!(
        ids(early.deadline())? == [early.id()],
        "not due at the deadline itself"
    );
    ensure!(
        ids(late.deadline())? == [early.id(), late.id()],
        "not earliest deadline first"
    );
    let expired = Engine::default()
        .expire(&early, early.deadline())
        .map_err(|err| err.to_string())?;
    committed(store.commit(expired.changes), "expiring")?;
    ensure!(
        ids(late.deadline())? == [late.id()],
        "an expired request is still due"
    );
    Ok(())
}

fn racing_commits_one_wins<S: Store + Sync>(store: &S) -> Outcome {
    let service = Service::order(name("race.example"), id("AA1-OVH"));
    committed(store.commit(create(&service)), "creation")?;
    for round in 0..20u32 {
        let current = host(store.service(service.name()))?.ok_or("service vanished")?;
        let results: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4u8)
                .map(|i| {
                    let current = &current;
                    scope.spawn(move || {
                        let mut contacts = *current.contacts();
                        let holder = format!("R{}{round}{i}-OVH", char::from(b'A' + i));
                        contacts.set(Role::Tech, id(&holder));
                        let next = Service::new(
                            current.name().clone(),
                            contacts,
                            current.version().next(),
                        );
                        store
                            .commit(Changes {
                                services: vec![Write {
                                    value: next,
                                    expected: Some(current.version()),
                                }],
                                requests: Vec::new(),
                            })
                            .is_ok()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(false))
                .collect()
        });
        let wins = results.iter().filter(|ok| **ok).count();
        ensure!(
            wins == 1,
            "round {round}: {wins} of 4 racing commits on one version succeeded"
        );
        let after = host(store.service(service.name()))?.ok_or("service vanished")?;
        ensure!(
            after.version() == current.version().next(),
            "round {round}: version not bumped once"
        );
    }
    Ok(())
}
