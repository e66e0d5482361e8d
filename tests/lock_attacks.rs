//! Attacks on the "last request per role" locks, tombstones and imports
//! (R27, R29–R33, R41–R44), from an independent review. Each test drives the
//! pure `Engine` with `MemoryStore` commits (or the `Driver`) through one
//! exact interleaving and asserts what the rules require. The tests named
//! `held_*` were attacks that held from the start; the others each broke a
//! rule before the fix they now guard.
//!
//! Two hosts are simulated by their clocks: `H1` runs a couple of seconds
//! ahead of `H2`. Clocks never go backwards for any one request.

mod common;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    AccountStatus, ActError, ChangeRequest, Contacts, CustomerId, Driver, DriverError, Edit,
    Engine, EventKind, MemoryDirectory, MemoryNotifier, MemoryStore, Refusal, RequestId,
    RequestState, Role, Service, ServiceName, Snapshot, StateName, Store, SubmitError, Transition,
};
use time::{Duration, OffsetDateTime};

use common::{T0, last_token};

fn id(text: &str) -> CustomerId {
    text.parse().unwrap()
}
fn x() -> CustomerId {
    id("XX1-OVH")
}
fn y() -> CustomerId {
    id("YY2-OVH")
}
fn t() -> CustomerId {
    id("TT3-OVH")
}
fn name() -> ServiceName {
    "example.com".parse().unwrap()
}
fn good(_: CustomerId) -> AccountStatus {
    AccountStatus::GoodStanding
}

/// The default lifetime: 7 days.
fn deadline_of_t0() -> OffsetDateTime {
    T0 + Duration::days(7)
}

fn commit(store: &MemoryStore, transition: &Transition) {
    store
        .commit(transition.changes.clone())
        .expect("the commit goes through");
}

fn service(store: &MemoryStore) -> Service {
    store.service(&name()).unwrap().unwrap()
}

fn request(store: &MemoryStore, id: RequestId) -> ChangeRequest {
    store.request(id).unwrap().unwrap()
}

/// Reads like the driver: the service, then the requests it names.
fn read(store: &MemoryStore) -> (Service, Vec<ChangeRequest>) {
    let service = service(store);
    let requests = service
        .requests_to_load()
        .filter_map(|id| store.request(id).unwrap())
        .collect();
    (service, requests)
}

fn import(engine: &Engine, store: &MemoryStore, contacts: Contacts) {
    let existing: Vec<Service> = store.service(&name()).unwrap().into_iter().collect();
    commit(
        store,
        &engine.import([(name(), contacts)], &existing).unwrap(),
    );
}

/// Opens one request on the store as it is now; returns its id and the
/// tokens of its confirmers.
fn open(
    engine: &Engine,
    store: &MemoryStore,
    actor: CustomerId,
    role: Role,
    incoming: CustomerId,
    now: OffsetDateTime,
    seed: u64,
) -> (RequestId, Vec<(CustomerId, String)>) {
    let (service, requests) = read(store);
    let edit = Edit::new(name()).with(role, incoming);
    let snapshot = Snapshot {
        service: &service,
        requests: &requests,
    };
    let opened = engine
        .submit(
            &edit,
            actor,
            snapshot,
            &good,
            now,
            &mut ChaCha20Rng::seed_from_u64(seed),
        )
        .expect("the edit opens");
    commit(store, &opened);
    let rid = opened
        .changes
        .requests
        .iter()
        .find(|w| w.expected.is_none())
        .unwrap()
        .value
        .id();
    let tokens = opened
        .messages
        .iter()
        .filter_map(|m| m.token().map(|tk| (m.to(), tk.reveal())))
        .collect();
    (rid, tokens)
}

fn token(tokens: &[(CustomerId, String)], who: CustomerId) -> &str {
    &tokens.iter().find(|(c, _)| *c == who).unwrap().1
}

/// Accepts with the store as it is now, read in the driver's order: the
/// request, then the service and the other requests it names (the request
/// in hand stands in for its own second read).
fn accept(
    engine: &Engine,
    store: &MemoryStore,
    rid: RequestId,
    who: CustomerId,
    tokens: &[(CustomerId, String)],
    now: OffsetDateTime,
) -> Transition {
    let req = request(store, rid);
    let service = service(store);
    let others = service
        .requests_to_load()
        .filter(|id| *id != rid)
        .filter_map(|id| store.request(id).unwrap());
    let requests: Vec<ChangeRequest> = std::iter::once(req.clone()).chain(others).collect();
    let snapshot = Snapshot {
        service: &service,
        requests: &requests,
    };
    let done = engine
        .accept(&req, who, token(tokens, who), now, Some(snapshot), &good)
        .expect("the acceptance is taken");
    commit(store, &done);
    done
}

fn remove(engine: &Engine, store: &MemoryStore, now: OffsetDateTime) {
    let (service, requests) = read(store);
    let snapshot = Snapshot {
        service: &service,
        requests: &requests,
    };
    commit(store, &engine.remove(snapshot, now).unwrap());
}

// ---------------------------------------------------------------------
// Once broken (R44, R30/R31): the `ServiceGone` verdict is neither checked
// against the service record nor version-checked, so a host that read the
// service before the request (a legal order, R44) fails a request of the
// re-created service.
// ---------------------------------------------------------------------

/// R44: service read first (a stale tombstone), request read after the name
/// was ordered again and a request opened on it: the last acceptance fails
/// the new request as `ServiceGone`, and the commit goes through although the
/// service changed three times since it was read.
#[test]
fn a_stale_tombstone_is_an_outdated_snapshot() {
    let engine = Engine::default();
    let store = MemoryStore::new();
    import(&engine, &store, Contacts::all(x()));
    remove(&engine, &store, T0);

    // Host H reads the service: the tombstone (v2).
    let stale = service(&store);
    assert!(stale.is_removed());

    // Meanwhile the name is ordered again and a request opened and confirmed
    // once on the new service.
    import(&engine, &store, Contacts::all(x()));
    let (rid, tokens) = open(&engine, &store, x(), Role::Tech, t(), T0, 1);
    let half = request(&store, rid);
    let step = engine
        .accept(&half, x(), token(&tokens, x()), T0, None, &good)
        .unwrap();
    commit(&store, &step);

    // H now reads the request (fresh) and decides the last acceptance with
    // the tombstone it read before.
    let fresh = request(&store, rid);
    let snapshot = Snapshot {
        service: &stale,
        requests: std::slice::from_ref(&fresh),
    };
    // The tombstone does not name the request: outdated, read again.
    let rejection = engine
        .accept(&fresh, t(), token(&tokens, t()), T0, Some(snapshot), &good)
        .unwrap_err();
    assert_eq!(rejection.error, ActError::SnapshotOutdated);
}

/// R44: the same with the service read before it was first ordered
/// (`snapshot: None`). Services are never deleted, so a request whose
/// service is missing can only come from a stale read.
#[test]
fn a_service_read_before_it_existed_is_an_outdated_snapshot() {
    let engine = Engine::default();
    let store = MemoryStore::new();
    // Host H reads the service: none yet.
    assert!(store.service(&name()).unwrap().is_none());

    import(&engine, &store, Contacts::all(x()));
    let (rid, tokens) = open(&engine, &store, x(), Role::Tech, t(), T0, 2);
    let half = request(&store, rid);
    commit(
        &store,
        &engine
            .accept(&half, x(), token(&tokens, x()), T0, None, &good)
            .unwrap(),
    );

    let fresh = request(&store, rid);
    let rejection = engine
        .accept(&fresh, t(), token(&tokens, t()), T0, None, &good)
        .unwrap_err();
    assert_eq!(rejection.error, ActError::SnapshotOutdated);
}

// ---------------------------------------------------------------------
// Once broken (R29, R44, liveness): `remove` and `apply` skip a request that
// is open but past its deadline *on the deciding host's clock*, without
// recording its expiry (unlike `submit`'s `Due` takeover). Another host
// whose clock is a little behind still sees it live.
// ---------------------------------------------------------------------

/// R44, R29: H1 (clock at the deadline) removes the service: the request
/// past its deadline is recorded as expired with it (it used to stay open).
/// The name is ordered again. H2 (two seconds behind) gives the last
/// acceptance: refused at once, never a livelock of outdated reads.
#[test]
fn a_removal_expires_a_due_request_so_no_host_can_finish_it() {
    let directory = MemoryDirectory::new();
    for c in [x(), t()] {
        directory.add(c);
    }
    let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory);
    driver.order_service(&name(), x()).unwrap();
    let rid = common::open_tech(&driver, &name(), t(), T0, 3);
    let _ = driver
        .accept(rid, x(), &last_token(driver.notifier(), x(), rid), T0)
        .unwrap();

    // H1, at the deadline: remove the service.
    let h1 = deadline_of_t0();
    let _ = driver.remove_service(&name(), h1).unwrap();
    let left = driver.store().request(rid).unwrap().unwrap();
    assert_eq!(left.state(), &RequestState::Expired { at: h1 });

    driver.order_service(&name(), x()).unwrap();

    // H2, two seconds behind H1: the last acceptance.
    let h2 = h1 - Duration::seconds(2);
    let result = driver.accept(rid, t(), &last_token(driver.notifier(), t(), rid), h2);
    assert_eq!(
        result.unwrap_err(),
        DriverError::Refused(Refusal::Act(ActError::OutOfOrder { last: h1 }))
    );
    assert_eq!(driver.store().request(rid).unwrap().unwrap(), left);
}

/// R32, R29: H1 (clock at B's deadline) applies A, which takes the admin
/// right from X; X's pending tech request B is past its deadline on H1's
/// clock, so A records its expiry (it used to skip it). H2 (two seconds
/// behind) gives the admin role back to X and then tries to finish B: B
/// stays expired and never applies.
#[test]
fn an_apply_expires_a_due_request_so_a_host_behind_cannot_finish_it() {
    let engine = Engine::default();
    let store = MemoryStore::new();
    // X is admin and billing; Z is tech, so X's right over tech is the
    // admin's (R8).
    import(&engine, &store, Contacts::new(x(), id("ZZ4-OVH"), x()));

    // B: X (admin) proposes T as tech, at T0.
    let (b, b_tokens) = open(&engine, &store, x(), Role::Tech, t(), T0, 10);
    // A: X proposes Y as admin, a minute later; X confirms.
    let a_open = T0 + Duration::minutes(1);
    let (a, a_tokens) = open(&engine, &store, x(), Role::Admin, y(), a_open, 11);
    accept(&engine, &store, a, x(), &a_tokens, a_open);

    // H1 at B's deadline: Y's confirmation applies A.
    let h1 = deadline_of_t0();
    let applied = accept(&engine, &store, a, y(), &a_tokens, h1);
    assert_eq!(applied.request(a).unwrap().state().name(), StateName::Done);
    let b_after_a = request(&store, b);
    assert_eq!(b_after_a.state(), &RequestState::Expired { at: h1 });
    assert!(applied.request(b).is_some(), "B's expiry is in A's commit");

    // H2, two seconds behind: Y gives the admin role back to X (C), then X
    // tries to confirm B.
    let h2 = h1 - Duration::seconds(2);
    let (c, c_tokens) = open(&engine, &store, y(), Role::Admin, x(), h2, 12);
    accept(&engine, &store, c, y(), &c_tokens, h2);
    accept(&engine, &store, c, x(), &c_tokens, h2);
    let (service_now, named) = read(&store);
    let snapshot = Snapshot {
        service: &service_now,
        requests: &named,
    };
    let rejection = engine
        .accept(
            &b_after_a,
            x(),
            token(&b_tokens, x()),
            h2,
            Some(snapshot),
            &good,
        )
        .unwrap_err();
    assert_eq!(rejection.error, ActError::OutOfOrder { last: h1 });
    assert_eq!(request(&store, b), b_after_a);
    assert_eq!(service(&store).holder(Role::Tech), id("ZZ4-OVH"));
}

// ---------------------------------------------------------------------
// Once broken (R44, R30): the engine opens requests on a tombstone.
// ---------------------------------------------------------------------

/// `Engine::submit` and `Engine::proposable` ignore `is_removed`: an edit of
/// a removed service is decided and commits (the request can never apply).
#[test]
fn nothing_opens_on_a_tombstone() {
    let engine = Engine::default();
    let store = MemoryStore::new();
    import(&engine, &store, Contacts::all(x()));
    remove(&engine, &store, T0);
    let (tomb, requests) = read(&store);
    assert!(tomb.is_removed());
    let snapshot = Snapshot {
        service: &tomb,
        requests: &requests,
    };
    let allowed = engine.proposable(snapshot, x(), &good, T0).allowed();
    let edit = Edit::new(name()).with(Role::Tech, t());
    let decided = engine.submit(
        &edit,
        x(),
        snapshot,
        &good,
        T0,
        &mut ChaCha20Rng::seed_from_u64(20),
    );
    assert_eq!(allowed, service_contacts::Roles::EMPTY);
    assert_eq!(decided.unwrap_err(), SubmitError::ServiceRemoved);
}

// ---------------------------------------------------------------------
// Once broken (R27, R44): a named-but-missing request is a final R27 refusal,
// not a "read again".
// ---------------------------------------------------------------------

/// A host reads the requests first (none named yet), then B is opened and
/// cancelled, then the host reads the service (naming B). The snapshot is
/// outdated, but submit refuses with `Conflict { open: B }`, naming a
/// cancelled request as open, instead of asking for a new read.
#[test]
fn a_named_but_missing_request_asks_for_a_new_read() {
    let engine = Engine::default();
    let store = MemoryStore::new();
    import(&engine, &store, Contacts::all(x()));
    let requests_read: Vec<ChangeRequest> = Vec::new();
    let (b, _) = open(&engine, &store, x(), Role::Tech, t(), T0, 30);
    commit(
        &store,
        &engine.cancel(&request(&store, b), x(), T0).unwrap(),
    );
    let service_read = service(&store);
    let snapshot = Snapshot {
        service: &service_read,
        requests: &requests_read,
    };
    let edit = Edit::new(name()).with(Role::Tech, y());
    let decided = engine.submit(
        &edit,
        x(),
        snapshot,
        &good,
        T0,
        &mut ChaCha20Rng::seed_from_u64(31),
    );
    assert_eq!(decided.unwrap_err(), SubmitError::SnapshotOutdated);
}

// ---------------------------------------------------------------------
// Once broken (R43, R29): the `Due` takeover assumes `expire` cannot fail,
// but R43 lets through an awaiting record with an event after its deadline.
// ---------------------------------------------------------------------

/// R43, R29: a stored awaiting request whose last event (a failed attempt)
/// lies after its deadline is refused on the way in. (It used to read back,
/// and then the takeover of its role could not record its expiry.)
#[cfg(feature = "serde")]
#[test]
fn an_awaiting_record_with_an_event_past_its_deadline_is_refused() {
    let engine = Engine::default();
    let store = MemoryStore::new();
    import(&engine, &store, Contacts::all(x()));
    let (b, _) = open(&engine, &store, x(), Role::Tech, t(), T0, 40);
    // A wrong token by T, recorded (R26).
    let rejection = engine
        .accept(&request(&store, b), t(), "wrong", T0, None, &good)
        .unwrap_err();
    store.commit(rejection.record.unwrap()).unwrap();
    let mut json = serde_json::to_value(request(&store, b)).unwrap();
    let late = deadline_of_t0() + Duration::days(1);
    let history = json["history"].as_array_mut().expect("a history array");
    let last = history.last_mut().unwrap();
    last["at"] = serde_json::to_value(
        late.format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
    )
    .unwrap();
    let err = serde_json::from_value::<ChangeRequest>(json).unwrap_err();
    assert!(
        err.to_string().contains("is not before its deadline"),
        "{err}"
    );
}

// ---------------------------------------------------------------------
// Attacks that held (these pass).
// ---------------------------------------------------------------------

fn snap<'a>(service: &'a Service, requests: &'a [ChangeRequest]) -> Snapshot<'a> {
    Snapshot { service, requests }
}

/// R27: two hosts decide an edit of the same role on the same read; one
/// commits, the other conflicts on the service.
#[test]
fn held_two_submits_on_one_read() {
    let engine = Engine::default();
    let store = MemoryStore::new();
    import(&engine, &store, Contacts::all(x()));
    let (s, r) = read(&store);
    let one = engine
        .submit(
            &Edit::new(name()).with(Role::Tech, t()),
            x(),
            snap(&s, &r),
            &good,
            T0,
            &mut ChaCha20Rng::seed_from_u64(50),
        )
        .unwrap();
    let two = engine
        .submit(
            &Edit::new(name())
                .with(Role::Tech, y())
                .with(Role::Billing, y()),
            x(),
            snap(&s, &r),
            &good,
            T0,
            &mut ChaCha20Rng::seed_from_u64(51),
        )
        .unwrap();
    assert!(store.commit(one.changes).is_ok());
    assert!(store.commit(two.changes).is_err());
}

/// R27, R29: H1 (past B's deadline) takes the role over while H2 (before
/// it) gives B's last acceptance, both on the same reads: exactly one
/// commits, whichever goes first.
#[test]
fn held_due_takeover_races_the_last_acceptance() {
    for takeover_first in [true, false] {
        let engine = Engine::default();
        let store = MemoryStore::new();
        import(&engine, &store, Contacts::all(x()));
        let (b, tokens) = open(&engine, &store, x(), Role::Tech, t(), T0, 60);
        accept(&engine, &store, b, x(), &tokens, T0);
        let (s, r) = read(&store);
        let h1 = deadline_of_t0();
        let h2 = h1 - Duration::seconds(1);
        let takeover = engine
            .submit(
                &Edit::new(name()).with(Role::Tech, y()),
                x(),
                snap(&s, &r),
                &good,
                h1,
                &mut ChaCha20Rng::seed_from_u64(61),
            )
            .unwrap();
        let b_now = request(&store, b);
        let apply = engine
            .accept(
                &b_now,
                t(),
                token(&tokens, t()),
                h2,
                Some(snap(&s, &r)),
                &good,
            )
            .unwrap();
        let (first, second) = if takeover_first {
            (takeover, apply)
        } else {
            (apply, takeover)
        };
        assert!(store.commit(first.changes).is_ok());
        assert!(store.commit(second.changes).is_err());
    }
}

/// R32, lazy locks: the apply fails a named request read as live that was
/// cancelled meanwhile (no service write): the commit conflicts on the
/// request, and the retry decides on the cancelled one.
#[test]
fn held_r32_on_a_stale_live_read_conflicts() {
    let engine = Engine::default();
    let store = MemoryStore::new();
    // X is admin and billing; the tech contact is someone else.
    import(&engine, &store, Contacts::new(x(), id("ZZ4-OVH"), x()));
    let (b, _) = open(&engine, &store, x(), Role::Tech, t(), T0, 70);
    let (a, a_tokens) = open(&engine, &store, x(), Role::Admin, y(), T0, 71);
    accept(&engine, &store, a, x(), &a_tokens, T0);
    let (s, r) = read(&store);
    commit(
        &store,
        &engine.cancel(&request(&store, b), x(), T0).unwrap(),
    );
    let decided = engine
        .accept(
            &request(&store, a),
            y(),
            token(&a_tokens, y()),
            T0,
            Some(snap(&s, &r)),
            &good,
        )
        .unwrap();
    assert!(decided.request(b).is_some(), "B read live is failed by R32");
    assert!(store.commit(decided.changes).is_err());
    let done = accept(&engine, &store, a, y(), &a_tokens, T0);
    assert!(done.request(b).is_none());
    assert_eq!(request(&store, b).state().name(), StateName::Aborted);
}

/// R31, R44: the last acceptance decides on the request in hand (read
/// before the service, as the driver does), whatever the snapshot holds
/// under its id: that copy, one read after the service, or none give the
/// same writes. A copy in hand that went stale between the two reads makes
/// those writes conflict on the request; decided again on a fresh read,
/// the change applies and keeps what the other host wrote.
#[test]
fn held_apply_decides_on_the_request_in_hand() {
    let engine = Engine::default();
    let store = MemoryStore::new();
    import(&engine, &store, Contacts::all(x()));
    let (a, a_tokens) = open(&engine, &store, x(), Role::Tech, t(), T0, 95);
    accept(&engine, &store, a, x(), &a_tokens, T0);
    // The host reads A, awaiting T's confirmation alone.
    let in_hand = request(&store, a);
    // Before it reads the service, T types a wrong token in another tab: a
    // failed attempt, recorded at A's next version (R26).
    let wrong = engine
        .accept(&in_hand, t(), "not-the-token", T0, None, &good)
        .unwrap_err();
    store
        .commit(wrong.record.expect("a failed attempt"))
        .unwrap();
    let (service, read_after) = read(&store);
    assert_ne!(read_after[0].version(), in_hand.version());
    let decide = |requests: &[ChangeRequest]| {
        engine
            .accept(
                &in_hand,
                t(),
                token(&a_tokens, t()),
                T0,
                Some(snap(&service, requests)),
                &good,
            )
            .unwrap()
            .changes
    };
    let on_the_copy_in_hand = decide(std::slice::from_ref(&in_hand));
    assert_eq!(decide(&read_after), on_the_copy_in_hand);
    assert_eq!(decide(&[]), on_the_copy_in_hand);
    assert!(
        store.commit(on_the_copy_in_hand).is_err(),
        "R31: the stale copy conflicts"
    );
    // Read again (the driver would): applied, the failed attempt kept.
    let done = accept(&engine, &store, a, t(), &a_tokens, T0);
    let applied = done.request(a).unwrap();
    assert_eq!(applied.state().name(), StateName::Done);
    let failed = applied
        .history()
        .iter()
        .filter(|e| matches!(e.kind(), EventKind::FailedAttempt))
        .count();
    assert_eq!(failed, 1, "R26: the failed attempt is kept");
    assert_eq!(read(&store).0.holder(Role::Tech), t());
}

/// R44: requests read before the service: the apply sees a named request
/// missing and asks for a new read; a service read before the request was
/// opened does not name it and asks too.
#[test]
fn held_apply_on_reads_in_the_other_order() {
    let engine = Engine::default();
    let store = MemoryStore::new();
    import(&engine, &store, Contacts::all(x()));
    let early = service(&store);
    let (a, a_tokens) = open(&engine, &store, x(), Role::Tech, t(), T0, 80);
    accept(&engine, &store, a, x(), &a_tokens, T0);
    let (b, _) = open(&engine, &store, x(), Role::Billing, y(), T0, 81);
    let _ = b;
    let a_now = request(&store, a);
    // Service read before A was opened.
    let err = engine
        .accept(
            &a_now,
            t(),
            token(&a_tokens, t()),
            T0,
            Some(snap(&early, std::slice::from_ref(&a_now))),
            &good,
        )
        .unwrap_err();
    assert_eq!(err.error, ActError::SnapshotOutdated);
    // Current service, but B (named on billing) not read.
    let s = service(&store);
    let err = engine
        .accept(
            &a_now,
            t(),
            token(&a_tokens, t()),
            T0,
            Some(snap(&s, std::slice::from_ref(&a_now))),
            &good,
        )
        .unwrap_err();
    assert_eq!(err.error, ActError::SnapshotOutdated);
}

/// R44, R30, R31: decisions made on the old live service (submit, apply,
/// an R30 verdict, a removal) cannot commit once it was removed and the name
/// ordered again.
#[test]
fn held_stale_decisions_on_the_old_incarnation_conflict() {
    let engine = Engine::default();
    let store = MemoryStore::new();
    import(&engine, &store, Contacts::all(x()));
    let (a, a_tokens) = open(&engine, &store, x(), Role::Tech, t(), T0, 90);
    accept(&engine, &store, a, x(), &a_tokens, T0);
    let (s, r) = read(&store);
    let a_now = request(&store, a);
    let stale_submit = engine
        .submit(
            &Edit::new(name()).with(Role::Billing, y()),
            x(),
            snap(&s, &r),
            &good,
            T0,
            &mut ChaCha20Rng::seed_from_u64(91),
        )
        .unwrap();
    let stale_apply = engine
        .accept(
            &a_now,
            t(),
            token(&a_tokens, t()),
            T0,
            Some(snap(&s, &r)),
            &good,
        )
        .unwrap();
    let nobody = |_| AccountStatus::Unknown;
    let stale_verdict = engine
        .accept(
            &a_now,
            t(),
            token(&a_tokens, t()),
            T0,
            Some(snap(&s, &r)),
            &nobody,
        )
        .unwrap();
    let stale_remove = engine.remove(snap(&s, &r), T0).unwrap();
    remove(&engine, &store, T0);
    import(&engine, &store, Contacts::all(x()));
    for (what, transition) in [
        ("submit", stale_submit),
        ("apply", stale_apply),
        ("R30 verdict", stale_verdict),
        ("remove", stale_remove),
    ] {
        assert!(
            store.commit(transition.changes).is_err(),
            "{what} committed"
        );
    }
    assert!(service(&store).last_request(Role::Tech).is_none());
}
