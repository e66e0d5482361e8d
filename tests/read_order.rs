//! The locks hold whatever order a host reads in (R27, R31, R32, R44).
//!
//! A host that drives the pure engine itself (as an async host does) reads
//! the service and its requests in one order or the other, and another
//! host's commit lands at a chosen point of its decision: before its reads,
//! between its two reads, after its reads and before its commit, or after
//! its commit. Every combination is run, so each interleaving is certain,
//! not left to timing; after each, the rules must hold.

mod common;

use std::collections::HashMap;

use common::T0;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    AccountStatus, ActError, ChangeRequest, Changes, CommitError, Contacts, CustomerId, Edit,
    Engine, FailureReason, MemoryStore, RequestState, Role, Roles, Service, ServiceError,
    ServiceName, Snapshot, Store, SubmitError, Transition, Write,
};
use time::{Duration, OffsetDateTime};

fn id(text: &str) -> CustomerId {
    text.parse().expect("a valid customer id")
}

fn everyone(_: CustomerId) -> AccountStatus {
    AccountStatus::GoodStanding
}

/// The order in which the host reads.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// The service, then the requests it names.
    ServiceFirst,
    /// The service's requests (from the host's own listing), then the
    /// service.
    RequestsFirst,
}

/// Where the other host's commit lands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Landing {
    BeforeReads,
    BetweenReads,
    BeforeCommit,
    AfterCommit,
}

const ORDERS: [Order; 2] = [Order::ServiceFirst, Order::RequestsFirst];
const LANDINGS: [Landing; 4] = [
    Landing::BeforeReads,
    Landing::BetweenReads,
    Landing::BeforeCommit,
    Landing::AfterCommit,
];

/// What the host's decision came to.
#[derive(Debug)]
enum Decided {
    Commit(Changes),
    Refused(String),
    /// The snapshot disagrees with its service: read again.
    Outdated,
}

/// How the host's action ended.
#[derive(Debug, PartialEq)]
enum Ended {
    Committed,
    Refused(String),
}

/// A host deciding on `name` in `order`, while `other` lands at `landing`
/// (once). On a commit conflict or an outdated snapshot it reads and decides
/// again, at most eight times.
fn host(
    store: &MemoryStore,
    name: &ServiceName,
    order: Order,
    landing: Landing,
    other: impl FnOnce(),
    decide: impl Fn(Snapshot<'_>) -> Decided,
) -> Ended {
    let mut other = Some(other);
    let mut land = |at: Landing| {
        if at == landing
            && let Some(other) = other.take()
        {
            other();
        }
    };
    for _ in 0..8 {
        land(Landing::BeforeReads);
        let (service, requests) = match order {
            Order::ServiceFirst => {
                let service = store.service(name).unwrap().expect("the service");
                land(Landing::BetweenReads);
                let requests = service
                    .requests_to_load()
                    .filter_map(|id| store.request(id).unwrap())
                    .collect::<Vec<_>>();
                (service, requests)
            }
            Order::RequestsFirst => {
                let requests: Vec<ChangeRequest> = store
                    .requests()
                    .into_iter()
                    .filter(|r| r.service() == name)
                    .collect();
                land(Landing::BetweenReads);
                let service = store.service(name).unwrap().expect("the service");
                (service, requests)
            }
        };
        let snapshot = Snapshot {
            service: &service,
            requests: &requests,
        };
        match decide(snapshot) {
            Decided::Outdated => {}
            Decided::Refused(why) => return Ended::Refused(why),
            Decided::Commit(changes) => {
                land(Landing::BeforeCommit);
                match store.commit(changes) {
                    Ok(()) => {
                        land(Landing::AfterCommit);
                        return Ended::Committed;
                    }
                    Err(CommitError::Conflict) => {}
                    Err(CommitError::Store(never)) => match never {},
                }
            }
        }
    }
    panic!("the host kept reading outdated snapshots");
}

/// The service as stored and the requests it names, read in that order: a
/// consistent snapshot for the other host.
fn load(store: &MemoryStore, name: &ServiceName) -> (Service, Vec<ChangeRequest>) {
    let service = store.service(name).unwrap().expect("the service");
    let requests = service
        .requests_to_load()
        .filter_map(|id| store.request(id).unwrap())
        .collect();
    (service, requests)
}

fn commit(store: &MemoryStore, transition: &Transition) {
    store
        .commit(transition.changes.clone())
        .expect("the other host's commit");
}

/// Opens `roles` of `name` for `incoming`, asked by `actor`, at `now`, from a
/// consistent read; returns the request and its tokens.
fn open(
    store: &MemoryStore,
    name: &ServiceName,
    actor: CustomerId,
    incoming: CustomerId,
    roles: Roles,
    now: OffsetDateTime,
    seed: u64,
) -> Result<(ChangeRequest, HashMap<CustomerId, String>), SubmitError> {
    let (service, requests) = load(store, name);
    let edit = roles.iter().fold(Edit::new(name.clone()), |edit, role| {
        edit.with(role, incoming)
    });
    let snapshot = Snapshot {
        service: &service,
        requests: &requests,
    };
    let transition = Engine::default().submit(
        &edit,
        actor,
        snapshot,
        &everyone,
        now,
        &mut ChaCha20Rng::seed_from_u64(seed),
    )?;
    commit(store, &transition);
    let request = transition
        .changes
        .requests
        .iter()
        .find(|w| w.expected.is_none())
        .map(|w| w.value.clone())
        .expect("a request opened");
    let tokens = transition
        .messages
        .iter()
        .filter_map(|m| Some((m.to(), m.token()?.reveal())))
        .collect();
    Ok((request, tokens))
}

/// A fresh store with `name` held by `contacts`.
fn store_with(name: &ServiceName, contacts: Contacts) -> MemoryStore {
    let store = MemoryStore::new();
    store
        .commit(Changes {
            services: vec![Write {
                value: Service::import(name.clone(), contacts),
                expected: None,
            }],
            requests: Vec::new(),
            assignments: Vec::new(),
        })
        .unwrap();
    store
}

/// The requests of `name` that could still apply at `now`, by role.
fn live_by_role(store: &MemoryStore, name: &ServiceName, now: OffsetDateTime) -> Vec<(Role, u32)> {
    Role::ALL
        .into_iter()
        .map(|role| {
            let live = store
                .requests()
                .iter()
                .filter(|r| r.service() == name && r.is_live(now) && r.roles().contains(role))
                .count();
            (role, u32::try_from(live).unwrap())
        })
        .collect()
}

#[test]
fn one_live_request_per_role_whatever_the_read_order() {
    // R27, R44: the host proposes a tech contact while another host opens a
    // request on the same role; whatever the order of reads and wherever
    // the other commit lands, one request is live on the role, never two.
    let name: ServiceName = "example.com".parse().unwrap();
    let (admin, x, y) = (id("AD1-OVH"), id("XX2-OVH"), id("YY3-OVH"));
    for order in ORDERS {
        for landing in LANDINGS {
            let store = store_with(&name, Contacts::all(admin));
            let mut other_result = None;
            let ended = host(
                &store,
                &name,
                order,
                landing,
                || other_result = Some(open(&store, &name, admin, y, Role::Tech.into(), T0, 2)),
                |snapshot| {
                    let edit = Edit::new(name.clone()).with(Role::Tech, x);
                    match Engine::default().submit(
                        &edit,
                        admin,
                        snapshot,
                        &everyone,
                        T0,
                        &mut ChaCha20Rng::seed_from_u64(1),
                    ) {
                        Ok(t) => Decided::Commit(t.changes),
                        Err(SubmitError::SnapshotOutdated) => Decided::Outdated,
                        Err(err) => Decided::Refused(err.to_string()),
                    }
                },
            );
            let case = format!("{order:?}, other lands {landing:?}");
            let live = live_by_role(&store, &name, T0);
            assert_eq!(live[1], (Role::Tech, 1), "{case}: {live:?}");
            // Exactly one of the two opened.
            let other_opened = matches!(other_result, Some(Ok(_)));
            assert_ne!(ended == Ended::Committed, other_opened, "{case}: {ended:?}");
            if landing == Landing::AfterCommit {
                assert_eq!(ended, Ended::Committed, "{case}");
            } else {
                // The other landed first: the host is refused, naming it.
                let Ended::Refused(why) = &ended else {
                    panic!("{case}: {ended:?}")
                };
                assert!(
                    why.contains("already open for the tech contact"),
                    "{case}: {why}"
                );
            }
            store.audit().unwrap();
        }
    }
}

#[test]
fn requests_that_lost_their_right_fail_whatever_the_read_order() {
    // R32, R44: the last confirmation of an admin change is decided while
    // the outgoing admin opens a tech change on the same service. Whatever
    // the order and the landing, the outgoing admin's request cannot stay
    // live once the admin change applies.
    let name: ServiceName = "example.com".parse().unwrap();
    let (old, new, x) = (id("OL1-OVH"), id("NE2-OVH"), id("XX3-OVH"));
    let engine = Engine::default();
    for order in ORDERS {
        for landing in LANDINGS {
            // The tech contact is someone else: the old admin's tech change
            // rests on the admin right alone.
            let store = store_with(&name, Contacts::new(old, id("TE4-OVH"), old));
            let (admin_change, tokens) =
                open(&store, &name, old, new, Role::Admin.into(), T0, 1).unwrap();
            let confirmed = engine
                .accept(&admin_change, old, &tokens[&old], T0, None, &everyone)
                .unwrap();
            commit(&store, &confirmed);
            let waiting = confirmed.request(admin_change.id()).unwrap().clone();
            let later = T0 + Duration::minutes(1);
            let mut other_result = None;
            let ended = host(
                &store,
                &name,
                order,
                landing,
                || other_result = Some(open(&store, &name, old, x, Role::Tech.into(), later, 2)),
                |snapshot| match engine.accept(
                    &waiting,
                    new,
                    &tokens[&new],
                    later,
                    Some(snapshot),
                    &everyone,
                ) {
                    Ok(t) => Decided::Commit(t.changes),
                    Err(rejection) if rejection.error == ActError::SnapshotOutdated => {
                        Decided::Outdated
                    }
                    Err(rejection) => Decided::Refused(rejection.to_string()),
                },
            );
            let case = format!("{order:?}, other lands {landing:?}");
            assert_eq!(ended, Ended::Committed, "{case}");
            let service = store.service(&name).unwrap().unwrap();
            assert_eq!(service.holder(Role::Admin), new, "{case}");
            match other_result {
                Some(Ok((tech_change, _))) => {
                    // Opened before the apply: failed by it (R32).
                    let stored = store.request(tech_change.id()).unwrap().unwrap();
                    let RequestState::Failed { reason, .. } = stored.state() else {
                        panic!("{case}: the old admin's request is {:?}", stored.state());
                    };
                    assert_eq!(
                        reason,
                        &FailureReason::RightRemoved {
                            role: Role::Tech,
                            by: admin_change.id()
                        },
                        "{case}"
                    );
                }
                // Decided after the apply: the old admin may no longer ask.
                Some(Err(err)) => {
                    assert_eq!(landing, Landing::AfterCommit, "{case}");
                    assert!(
                        matches!(err, SubmitError::NotPermitted { .. }),
                        "{case}: {err}"
                    );
                }
                None => panic!("{case}: the other host never ran"),
            }
            // No live request of a customer without the right to it.
            for request in store.requests().iter().filter(|r| r.is_live(later)) {
                let rights = service.contacts().rights_of(request.requester());
                assert!(rights.is_superset(request.roles()), "{case}: {request:?}");
            }
            store.audit().unwrap();
        }
    }
}

#[test]
fn a_decision_about_a_removed_service_never_lands_on_its_successor() {
    // R44: the host decides an edit on a service while another host removes
    // it and a new customer orders the name again. The stale decision never
    // commits; decided again, it is refused; the new owner keeps the service.
    let name: ServiceName = "example.com".parse().unwrap();
    let (old, taker, x) = (id("OL1-OVH"), id("TA2-OVH"), id("XX3-OVH"));
    let engine = Engine::default();
    for order in ORDERS {
        for landing in [
            Landing::BeforeReads,
            Landing::BetweenReads,
            Landing::BeforeCommit,
        ] {
            let store = store_with(&name, Contacts::all(old));
            let (pending, _) = open(&store, &name, old, x, Role::Billing.into(), T0, 1).unwrap();
            let before = store.service(&name).unwrap().unwrap().version();
            let ended = host(
                &store,
                &name,
                order,
                landing,
                || {
                    let (service, requests) = load(&store, &name);
                    let snapshot = Snapshot {
                        service: &service,
                        requests: &requests,
                    };
                    commit(&store, &engine.remove(snapshot, T0).unwrap());
                    let tombstone = store.service(&name).unwrap().unwrap();
                    let again = engine
                        .import([(name.clone(), Contacts::all(taker))], &[tombstone])
                        .unwrap();
                    commit(&store, &again);
                },
                |snapshot| {
                    let edit = Edit::new(name.clone()).with(Role::Tech, x);
                    match engine.submit(
                        &edit,
                        old,
                        snapshot,
                        &everyone,
                        T0,
                        &mut ChaCha20Rng::seed_from_u64(3),
                    ) {
                        Ok(t) => Decided::Commit(t.changes),
                        Err(err) => Decided::Refused(err.to_string()),
                    }
                },
            );
            let case = format!("{order:?}, other lands {landing:?}");
            assert_eq!(
                ended,
                Ended::Refused(
                    "not permitted to change the tech contact: ask the admin contact".into()
                ),
                "{case}"
            );
            let service = store.service(&name).unwrap().unwrap();
            assert_eq!(service.contacts(), &Contacts::all(taker), "{case}");
            assert!(
                service.version().get() > before.get() + 1,
                "{case}: {service:?}"
            );
            assert_eq!(service.last_request(Role::Tech), None, "{case}");
            // The old service's pending request failed with it (R30, R39).
            let pending = store.request(pending.id()).unwrap().unwrap();
            assert!(
                matches!(
                    pending.state(),
                    RequestState::Failed {
                        reason: FailureReason::ServiceGone,
                        ..
                    }
                ),
                "{case}: {:?}",
                pending.state()
            );
            store.audit().unwrap();
        }
    }
}

#[test]
fn an_outdated_snapshot_is_refused_never_decided() {
    // R44: a snapshot that lacks a request its service names is outdated:
    // applying refuses to decide on it, and so does removing.
    let name: ServiceName = "example.com".parse().unwrap();
    let (admin, new, x) = (id("AD1-OVH"), id("NE2-OVH"), id("XX3-OVH"));
    let engine = Engine::default();
    let store = store_with(&name, Contacts::new(admin, id("TE4-OVH"), admin));
    let (change, tokens) = open(&store, &name, admin, new, Role::Admin.into(), T0, 1).unwrap();
    let confirmed = engine
        .accept(&change, admin, &tokens[&admin], T0, None, &everyone)
        .unwrap();
    commit(&store, &confirmed);
    let waiting = confirmed.request(change.id()).unwrap().clone();
    let (tech, _) = open(&store, &name, admin, x, Role::Tech.into(), T0, 2).unwrap();
    let service = store.service(&name).unwrap().unwrap();
    assert_eq!(
        service.requests_to_load().collect::<Vec<_>>(),
        [change.id(), tech.id()]
    );
    // Without the tech request: outdated.
    let short = [waiting.clone()];
    let snapshot = Snapshot {
        service: &service,
        requests: &short,
    };
    let rejection = engine
        .accept(&waiting, new, &tokens[&new], T0, Some(snapshot), &everyone)
        .unwrap_err();
    assert_eq!(rejection.error, ActError::SnapshotOutdated);
    assert!(rejection.record.is_none(), "nothing to write");
    assert_eq!(
        engine.remove(snapshot, T0).unwrap_err(),
        ServiceError::SnapshotOutdated
    );
    // A service read before the request opened does not name it: outdated.
    let older = Service::new(name.clone(), *service.contacts(), service.version());
    let full = [waiting.clone(), tech.clone()];
    let snapshot = Snapshot {
        service: &older,
        requests: &full,
    };
    let rejection = engine
        .accept(&waiting, new, &tokens[&new], T0, Some(snapshot), &everyone)
        .unwrap_err();
    assert_eq!(rejection.error, ActError::SnapshotOutdated);
    // The whole snapshot decides: the tech request fails with the apply.
    let snapshot = Snapshot {
        service: &service,
        requests: &full,
    };
    let done = engine
        .accept(&waiting, new, &tokens[&new], T0, Some(snapshot), &everyone)
        .unwrap();
    let failed = done
        .request(tech.id())
        .expect("the tech request is written");
    assert!(matches!(failed.state(), RequestState::Failed { .. }));
    // And a submit that sees a named request it did not read asks for a new
    // read too.
    let snapshot = Snapshot {
        service: &service,
        requests: &short,
    };
    let edit = Edit::new(name.clone()).with(Role::Tech, new);
    let err = engine
        .submit(
            &edit,
            admin,
            snapshot,
            &everyone,
            T0,
            &mut ChaCha20Rng::seed_from_u64(9),
        )
        .unwrap_err();
    assert_eq!(err, SubmitError::SnapshotOutdated);
}
