//! Operators (R46) and a service's full history (R47), rule by rule, through
//! the [`Engine`] and through both drivers.
//!
//! An operator acts with an [`OperatorAct`]: who they are and why they act.
//! They may cancel an open request (R28, R39), send it again (R22, R23) or
//! assign contacts directly (R13, R14, R31, R32); every act is recorded with
//! the operator and the reason (R34), no act changes a terminal request, and
//! every refusal is specific and changes nothing: the store (services,
//! requests, assignments) and the messages sent are compared before and
//! after.
//!
//! The driver scenarios are written once over [`Drive`] and run through the
//! blocking [`Driver`] and the [`AsyncDriver`] (`on_both_drivers!`). The
//! race of an assignment against a customer's last acceptance holds each
//! racer's first commit until both have decided, then lets them commit in a
//! chosen order, so each order is certain, not left to the scheduler.
//!
//! Run: `cargo test --all-features --test operators`.

#[macro_use]
mod common;

use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};

use common::drive::{self, Drive, history_pages};
use common::hooked::{Call, Hook, Hooked};
use common::{T0, last_token};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    AccountStatus, ActError, Actor, AssignError, Assignment, AsyncDriver, ChangeRequest, Changes,
    CommitError, Contacts, CursorError, CustomerId, Driver, DriverError, Edit, Engine, EventKind,
    FailureReason, HistoryEntry, Listing, MemoryDirectory, MemoryNotifier, MemoryStore, Message,
    MessageKind, OperatorAct, OperatorId, Outcome, PageSize, Reason, Reassignment, Refusal,
    RequestId, RequestState, Role, Roles, Service, ServiceName, Snapshot, StateName, Store,
};
use time::{Duration, OffsetDateTime};

// ----- the cast -----

fn customer(text: &str) -> CustomerId {
    text.parse().expect("a valid customer id")
}

/// Orders the services: holds every role of them at first (R5).
fn admin() -> CustomerId {
    customer("AD1-OVH")
}

fn tech() -> CustomerId {
    customer("TE2-OVH")
}

fn billing() -> CustomerId {
    customer("BI3-OVH")
}

fn new_admin() -> CustomerId {
    customer("NA4-OVH")
}

fn new_tech() -> CustomerId {
    customer("NT5-OVH")
}

/// A customer with no account (R13).
fn ghost() -> CustomerId {
    customer("ZZ9-OVH")
}

fn name(text: &str) -> ServiceName {
    text.parse().expect("a valid service name")
}

fn jane() -> OperatorId {
    "jane.doe@support".parse().expect("a valid operator")
}

/// Jane acts, for `reason`.
fn act(reason: &str) -> OperatorAct {
    OperatorAct::new(jane(), reason.parse().expect("a valid reason"))
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A generator no other call in this run shares, so that no two requests
/// or assignments draw the same id or tokens.
fn fresh_rng() -> ChaCha20Rng {
    static NEXT: AtomicU64 = AtomicU64::new(1 << 32);
    rng(NEXT.fetch_add(1, Ordering::Relaxed))
}

fn minutes(n: i64) -> OffsetDateTime {
    T0 + Duration::minutes(n)
}

// ----- the world -----

/// Everything the store holds, and how many messages were delivered.
#[derive(Debug, PartialEq)]
struct Dump {
    services: Vec<Service>,
    requests: Vec<ChangeRequest>,
    assignments: Vec<Assignment>,
    delivered: usize,
}

/// The in-memory host parts, shared by the driver under test and the
/// blocking driver that sets some scenes.
#[derive(Default)]
struct World {
    store: MemoryStore,
    notifier: MemoryNotifier,
    directory: MemoryDirectory,
}

impl World {
    /// Accounts for the cast, all in good standing; no service yet.
    fn new() -> World {
        let world = World::default();
        for c in [admin(), tech(), billing(), new_admin(), new_tech()] {
            world.directory.add(c);
        }
        world
    }

    fn blocking(&self) -> Driver<&MemoryStore, &MemoryNotifier, &MemoryDirectory> {
        Driver::new(&self.store, &self.notifier, &self.directory)
    }

    fn asynchronous(&self) -> AsyncDriver<&MemoryStore, &MemoryNotifier, &MemoryDirectory> {
        AsyncDriver::new(&self.store, &self.notifier, &self.directory)
    }

    fn dump(&self) -> Dump {
        let mut services = self.store.services();
        services.sort_by(|a, b| a.name().cmp(b.name()));
        let mut requests = self.store.requests();
        requests.sort_by_key(ChangeRequest::id);
        let assignments = services
            .iter()
            .flat_map(|s| stored_assignments(&self.store, s.name()))
            .collect();
        Dump {
            services,
            requests,
            assignments,
            delivered: self.notifier.delivered().len(),
        }
    }

    fn request(&self, id: RequestId) -> ChangeRequest {
        infallible(self.store.request(id)).expect("the request is stored")
    }

    fn service(&self, name: &ServiceName) -> Service {
        infallible(self.store.service(name)).expect("the service is stored")
    }

    /// How many messages were delivered so far: a mark for [`World::since`].
    fn mark(&self) -> usize {
        self.notifier.delivered().len()
    }

    /// The messages delivered since `mark`.
    fn since(&self, mark: usize) -> Vec<Message> {
        self.notifier.delivered()[mark..].to_vec()
    }

    fn token(&self, to: CustomerId, request: RequestId) -> String {
        last_token(&self.notifier, to, request)
    }

    /// Imports `name` with these holders (R42), through the blocking driver.
    fn import(&self, name: &ServiceName, contacts: Contacts) {
        self.blocking()
            .import_services([(name.clone(), contacts)])
            .expect("imported");
    }
}

fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

/// Every assignment of `name` the store holds, newest first.
fn stored_assignments(store: &MemoryStore, name: &ServiceName) -> Vec<Assignment> {
    infallible(store.assignments_on(name, None, usize::MAX))
}

/// Runs `$scenario(&world, &driver)` on a fresh world through the blocking
/// driver, then on another through the async driver (on tokio's
/// current-thread runtime).
macro_rules! on_both_drivers {
    ($scenario:ident) => {{
        let world = World::new();
        drive::now($scenario(&world, &world.blocking()));
        let world = World::new();
        runtime().block_on($scenario(&world, &world.asynchronous()));
    }};
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
}

/// The refusal an action met; any other outcome fails the test.
#[track_caller]
fn refusal<T: fmt::Debug, E: fmt::Debug, SE: fmt::Display, DE: fmt::Display>(
    result: Result<Outcome<T, E>, DriverError<SE, DE>>,
) -> Refusal {
    match result {
        Ok(outcome) => panic!("not refused: {:?}", outcome.value),
        Err(err) => err
            .refusal()
            .cloned()
            .unwrap_or_else(|| panic!("not a refusal: {err}")),
    }
}

/// The value of an action that must succeed, with every message delivered.
#[track_caller]
fn done<T, E: fmt::Debug, SE: fmt::Display, DE: fmt::Display>(
    result: Result<Outcome<T, E>, DriverError<SE, DE>>,
) -> T {
    match result {
        Ok(outcome) => {
            assert!(outcome.undelivered.is_empty(), "{:?}", outcome.undelivered);
            outcome.value
        }
        Err(err) => panic!("refused: {err}"),
    }
}

/// Opens a request giving `role` of `site` to `to`, asked by `by` at `at`.
async fn open<D: Drive>(
    d: &D,
    site: &ServiceName,
    role: Role,
    to: CustomerId,
    by: CustomerId,
    at: OffsetDateTime,
) -> RequestId {
    let edit = Edit::new(site.clone()).with(role, to);
    done(d.submit(&edit, by, at, &mut fresh_rng()).await)[0]
}

/// Every confirmer still missing accepts request `id` at `at`.
async fn accept_all<D: Drive>(w: &World, d: &D, id: RequestId, at: OffsetDateTime) {
    for who in w.request(id).missing_at(at) {
        let token = w.token(who, id);
        let _ = done(d.accept(id, who, &token, at).await);
    }
}

/// The news `messages` carry, as (recipient, request, kind) with the kind
/// named; for checks that ignore tokens.
fn news(messages: &[Message]) -> Vec<(CustomerId, Option<RequestId>, &'static str)> {
    let mut out: Vec<_> = messages
        .iter()
        .map(|m| {
            let kind = match m.kind() {
                MessageKind::ConfirmationRequested { .. } => "confirm",
                MessageKind::Applied => "applied",
                MessageKind::Replaced => "replaced",
                MessageKind::Refused { .. } => "refused",
                MessageKind::Cancelled { .. } => "cancelled",
                MessageKind::Expired => "expired",
                MessageKind::Failed { .. } => "failed",
                MessageKind::Assigned { .. } => "assigned",
            };
            (m.to(), m.request(), kind)
        })
        .collect();
    out.sort();
    out
}

// ----- parsing operators and reasons (R46) -----

#[test]
fn operator_identities_are_checked_with_specific_errors() {
    // R46, R3's manner: each refusal says what is wrong and where.
    let cases = [
        ("", "empty operator identity"),
        (
            "jane doe",
            "unexpected character ' ' at position 4 of an operator identity",
        ),
        (
            " jane",
            "unexpected character ' ' at position 0 of an operator identity",
        ),
        (
            "jane\n",
            "unexpected character '\\n' at position 4 of an operator identity",
        ),
        (
            "jané",
            "unexpected character 'é' at position 3 of an operator identity",
        ),
        (
            "jane/support",
            "unexpected character '/' at position 4 of an operator identity",
        ),
        (&"j".repeat(65), "operator identity of 65 bytes, at most 64"),
        (
            &"j".repeat(300),
            "operator identity of 300 bytes, at most 64",
        ),
    ];
    for (text, expected) in cases {
        let err = text.parse::<OperatorId>().unwrap_err();
        assert_eq!(err.to_string(), expected, "{text:?}");
    }
    // At the limit, and every character allowed, kept as written.
    for text in [
        "j".repeat(64),
        "Jane.Doe-2_x@support.example".to_owned(),
        "a".to_owned(),
    ] {
        let id: OperatorId = text.parse().unwrap();
        assert_eq!(id.as_str(), text);
        assert_eq!(id.to_string(), text);
    }
    // Case is kept, so two spellings are two operators.
    assert_ne!(
        "Jane".parse::<OperatorId>().unwrap(),
        "jane".parse::<OperatorId>().unwrap()
    );
}

#[test]
fn reasons_are_checked_with_specific_errors() {
    // R46: a reason prints as one honest line.
    let cases = [
        ("", "empty reason: say why the operator acts"),
        ("   ", "empty reason: say why the operator acts"),
        (
            "\t \u{a0}\u{3000}",
            "empty reason: say why the operator acts",
        ),
        (
            "line one\nline two",
            "control character '\\n' at character 8 of a reason",
        ),
        ("a\tb", "control character '\\t' at character 1 of a reason"),
        ("ok\r", "control character '\\r' at character 2 of a reason"),
        (
            "esc \u{1b}[31m",
            "control character '\\u{1b}' at character 4 of a reason",
        ),
        (
            "abc\u{202e}fed",
            "control character '\\u{202e}' at character 3 of a reason",
        ),
        (
            "one\u{2028}two",
            "control character '\\u{2028}' at character 3 of a reason",
        ),
        (
            "\u{2066}isolated",
            "control character '\\u{2066}' at character 0 of a reason",
        ),
        // Positions count characters, not bytes.
        (
            "été\n",
            "control character '\\n' at character 3 of a reason",
        ),
        (&"x".repeat(501), "reason of 501 characters, at most 500"),
        (&"é".repeat(501), "reason of 501 characters, at most 500"),
    ];
    for (text, expected) in cases {
        let err = text.parse::<Reason>().unwrap_err();
        assert_eq!(err.to_string(), expected, "{text:?}");
    }
    // The limit is in characters: 500 two-byte letters pass.
    for text in ["x".repeat(500), "é".repeat(500), "  padded  ".to_owned()] {
        let reason: Reason = text.parse().unwrap();
        assert_eq!(reason.as_str(), text, "kept as written");
    }
}

/// Fails on `operators` at 68bff5c: a reason made only of invisible
/// format characters (zero-width space U+200B, word joiner U+2060, soft
/// hyphen U+00AD, zero-width no-break space U+FEFF) is accepted: it is not
/// white space to `str::trim` nor a control character, yet it prints as
/// nothing, so an operator acts with no reason anyone can read.
#[test]
fn a_reason_that_shows_nothing_is_refused() {
    // R46: "Every operator action carries a reason."
    for text in [
        "\u{200b}",
        "\u{2060}\u{2060}",
        "\u{ad}",
        "\u{feff}",
        " \u{200b} ",
    ] {
        assert!(
            text.parse::<Reason>().is_err(),
            "{text:?} reads as a reason, yet shows nothing"
        );
    }
}

/// The strategies of `service_contacts::strategy` (feature `proptest`).
#[cfg(feature = "proptest")]
mod strategies {
    use proptest::prelude::*;
    use service_contacts::strategy::{
        bad_reason_text, near_miss_operator_id, operator_act, operator_id_text, reason_text,
    };
    use service_contacts::{Actor, OperatorId, Reason};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// R46: what the strategies make valid parses and keeps its text; what
        /// they make invalid is refused with an error that names its problem.
        #[test]
        fn operator_texts_parse_as_their_strategies_say(
            id in operator_id_text(),
            reason in reason_text(),
            bad_id in near_miss_operator_id(),
            bad_reason in bad_reason_text(),
            act in operator_act(),
        ) {
            let parsed: OperatorId = id.parse().unwrap();
            prop_assert_eq!(parsed.as_str(), id.as_str());
            let parsed: Reason = reason.parse().unwrap();
            prop_assert_eq!(parsed.as_str(), reason.as_str());
            let err = bad_id.parse::<OperatorId>().unwrap_err().to_string();
            prop_assert!(err.contains("operator identity"), "{}", err);
            let err = bad_reason.parse::<Reason>().unwrap_err().to_string();
            prop_assert!(err.contains("reason"), "{}", err);
            // Display of an actor names the operator, never the reason.
            let shown = Actor::Operator(act.clone()).to_string();
            prop_assert_eq!(shown, format!("operator {}", act.operator()));
        }
    }
}

// ----- an operator cancels (R46, R28, R39, R34) -----

#[test]
fn an_operator_cancels_an_open_request() {
    on_both_drivers!(operator_cancels);
}

async fn operator_cancels<D: Drive>(w: &World, d: &D) {
    // R46, R39, R34, R27
    let site = name("example.com");
    d.order_service(&site, admin()).await.unwrap();
    let id = open(d, &site, Role::Tech, tech(), admin(), T0).await;
    let service = w.service(&site);
    let old_token = w.token(tech(), id);
    let why = act("the customer asked by phone to drop the change");
    let (mark, at) = (w.mark(), minutes(1));
    let cancelled = done(d.cancel_by_operator(id, &why, at).await);
    // Ended at the operator's hand, at its next version.
    let operator = Actor::Operator(why.clone());
    assert_eq!(
        cancelled.state(),
        &RequestState::Cancelled {
            by: operator.clone(),
            at
        }
    );
    assert_eq!(cancelled, w.request(id));
    assert_eq!(cancelled.version().get(), 2);
    // R34: the history keeps who (the operator, no customer) and why.
    let last = cancelled.history().last().unwrap();
    assert_eq!(
        (last.kind(), last.at(), last.actor()),
        (&EventKind::Cancelled, at, Some(&operator))
    );
    assert_eq!(last.operator(), Some(&why));
    assert_eq!(last.customer(), None);
    // R39: both confirmers are told who cancelled and why; nobody else.
    let sent = w.since(mark);
    assert_eq!(
        news(&sent),
        [
            (admin(), Some(id), "cancelled"),
            (tech(), Some(id), "cancelled")
        ]
    );
    for m in &sent {
        let MessageKind::Cancelled { by } = m.kind() else {
            unreachable!()
        };
        assert_eq!(by, &operator, "the news names the operator and the reason");
        assert_eq!(
            by.operator().map(|a| a.reason().as_str()),
            Some(why.reason().as_str())
        );
    }
    // A cancel writes the request alone.
    assert_eq!(w.service(&site), service);
    // The tokens are dead: the request reports its state (R25).
    let refused = refusal(d.accept(id, tech(), &old_token, minutes(2)).await);
    assert_eq!(
        refused,
        Refusal::Act(ActError::Closed {
            state: StateName::Aborted
        })
    );
    // R27: the role is free again.
    let _ = open(d, &site, Role::Tech, new_tech(), admin(), minutes(3)).await;
}

#[test]
fn no_operator_action_changes_a_terminal_request() {
    on_both_drivers!(terminal_requests_stay);
}

/// One request in each terminal state (each on a service of its own), with
/// the state it shows.
async fn terminal_requests<D: Drive>(w: &World, d: &D) -> Vec<(RequestId, StateName)> {
    let mut out = Vec::new();
    let site = |n: usize| name(&format!("s{n}.example"));
    for n in 0..7 {
        d.order_service(&site(n), admin()).await.unwrap();
    }
    // Applied (R20).
    let id = open(d, &site(0), Role::Tech, tech(), admin(), T0).await;
    accept_all(w, d, id, minutes(1)).await;
    out.push((id, StateName::Done));
    // Refused (R21).
    let id = open(d, &site(1), Role::Tech, tech(), admin(), T0).await;
    let _ = done(d.refuse(id, tech(), &w.token(tech(), id), minutes(1)).await);
    out.push((id, StateName::Refused));
    // Cancelled by the requester (R28), and by an operator (R46).
    let id = open(d, &site(2), Role::Tech, tech(), admin(), T0).await;
    let _ = done(d.cancel(id, admin(), minutes(1)).await);
    out.push((id, StateName::Aborted));
    let id = open(d, &site(3), Role::Tech, tech(), admin(), T0).await;
    let _ = done(
        d.cancel_by_operator(id, &act("duplicate"), minutes(1))
            .await,
    );
    out.push((id, StateName::Aborted));
    // Failed: overtaken by an operator's assignment (R32, R46).
    let id = open(d, &site(4), Role::Tech, tech(), admin(), T0).await;
    let edit = Edit::new(site(4)).with(Role::Tech, new_tech());
    let _ = done(
        d.assign(&edit, &act("mailbox lost"), minutes(1), &mut fresh_rng())
            .await,
    );
    out.push((id, StateName::Error));
    // Failed: the service was removed (R30).
    let id = open(d, &site(5), Role::Tech, tech(), admin(), T0).await;
    let _ = done(d.remove_service(&site(5), minutes(1)).await);
    out.push((id, StateName::Error));
    // Expired, and recorded (R29).
    let id = open(d, &site(6), Role::Tech, tech(), admin(), T0).await;
    let deadline = w.request(id).deadline();
    let sweep = done(d.expire_due(deadline).await);
    assert_eq!(sweep.expired, [id]);
    out.push((id, StateName::Expired));
    out
}

async fn terminal_requests_stay<D: Drive>(w: &World, d: &D) {
    // R46: "No operator action changes a terminal request."
    let requests = terminal_requests(w, d).await;
    let later = T0 + Duration::days(10);
    let before = w.dump();
    for (id, state) in requests {
        let closed = Refusal::Act(ActError::Closed { state });
        let why = act("cleaning up");
        assert_eq!(
            refusal(d.cancel_by_operator(id, &why, later).await),
            closed,
            "{state}"
        );
        assert_eq!(
            refusal(d.resend_by_operator(id, &why, later, &mut rng(1)).await),
            closed,
            "{state}"
        );
        let service = w.request(id).service().clone();
        // An assignment on the service leaves its terminal requests as
        // they are (the removed service is refused: R44).
        let edit = Edit::new(service.clone()).with(Role::Billing, billing());
        let before_request = w.request(id);
        match d.assign(&edit, &why, later, &mut fresh_rng()).await {
            Ok(_) => assert_eq!(w.request(id), before_request, "{state}"),
            Err(err) => assert_eq!(err.refusal(), Some(&Refusal::UnknownService(service))),
        }
    }
    // Only the assignments wrote; every request is as it was.
    let after = w.dump();
    assert_eq!(after.requests, before.requests);
}

#[test]
fn operators_cannot_act_on_a_request_past_its_deadline() {
    on_both_drivers!(past_the_deadline);
}

async fn past_the_deadline<D: Drive>(w: &World, d: &D) {
    // R29, R46: past its deadline a request behaves as expired, for
    // operators too; their refusal records nothing.
    let site = name("example.com");
    d.order_service(&site, admin()).await.unwrap();
    let id = open(d, &site, Role::Tech, tech(), admin(), T0).await;
    let deadline = w.request(id).deadline();
    let before = w.dump();
    let why = act("the customer called");
    for at in [deadline, deadline + Duration::days(3)] {
        let expired = Refusal::Act(ActError::Closed {
            state: StateName::Expired,
        });
        assert_eq!(refusal(d.cancel_by_operator(id, &why, at).await), expired);
        assert_eq!(
            refusal(d.resend_by_operator(id, &why, at, &mut rng(3)).await),
            expired
        );
    }
    assert_eq!(w.dump(), before, "a refusal changes nothing");
    // A second before the deadline, the cancel goes through.
    let cancelled = done(
        d.cancel_by_operator(id, &why, deadline - Duration::seconds(1))
            .await,
    );
    assert_eq!(cancelled.state().name(), StateName::Aborted);
}

#[test]
fn operators_acting_on_an_unknown_request_or_service_are_refused() {
    on_both_drivers!(unknown_targets);
}

async fn unknown_targets<D: Drive>(w: &World, d: &D) {
    // R46: a specific error each, and nothing changes.
    let site = name("example.com");
    d.order_service(&site, admin()).await.unwrap();
    let _ = open(d, &site, Role::Tech, tech(), admin(), T0).await;
    let before = w.dump();
    let why = act("ticket 4711");
    let nobody = RequestId::from_bytes([7; 16]);
    assert_eq!(
        refusal(d.cancel_by_operator(nobody, &why, minutes(10)).await),
        Refusal::UnknownRequest(nobody)
    );
    assert_eq!(
        refusal(
            d.resend_by_operator(nobody, &why, minutes(10), &mut rng(1))
                .await
        ),
        Refusal::UnknownRequest(nobody)
    );
    let elsewhere = name("nowhere.example");
    let edit = Edit::new(elsewhere.clone()).with(Role::Tech, tech());
    assert_eq!(
        refusal(d.assign(&edit, &why, minutes(10), &mut rng(1)).await),
        Refusal::UnknownService(elsewhere.clone())
    );
    let err = d
        .history(&elsewhere, None, PageSize::new(10).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.refusal(), Some(&Refusal::UnknownService(elsewhere)));
    assert_eq!(w.dump(), before);
}

// ----- an operator resends (R46, R22, R23, R37, R34) -----

#[test]
fn an_operator_resends_to_the_confirmers_still_missing() {
    on_both_drivers!(operator_resends);
}

async fn operator_resends<D: Drive>(w: &World, d: &D) {
    // R46, R22, R23, R37, R34
    let site = name("example.com");
    d.order_service(&site, admin()).await.unwrap();
    let id = open(d, &site, Role::Tech, tech(), admin(), T0).await;
    let admin_token = w.token(admin(), id);
    let _ = done(d.accept(id, admin(), &admin_token, minutes(1)).await);
    let old = w.token(tech(), id);
    let why = act("the tech contact fixed their address with support");
    let operator = Actor::Operator(why.clone());
    // R23: the interval runs from the opening, for operators too.
    let before = w.dump();
    let too_soon = refusal(
        d.resend_by_operator(id, &why, minutes(4), &mut rng(9))
            .await,
    );
    assert_eq!(
        too_soon,
        Refusal::Act(ActError::TooSoon {
            retry_at: minutes(5)
        })
    );
    assert_eq!(w.dump(), before, "a refused resend changes nothing");
    let mark = w.mark();
    let resent = done(
        d.resend_by_operator(id, &why, minutes(5), &mut rng(9))
            .await,
    );
    // R37: one new confirmation request, to the confirmer still missing.
    let sent = w.since(mark);
    assert_eq!(news(&sent), [(tech(), Some(id), "confirm")]);
    assert!(matches!(
        sent[0].kind(),
        MessageKind::ConfirmationRequested { resent: true, .. }
    ));
    let new = sent[0].token().expect("a token").reveal();
    assert_ne!(new, old);
    // R34: the history names the operator, and the party reissued to.
    let last = resent.history().last().unwrap();
    assert_eq!(
        (last.kind(), last.actor()),
        (&EventKind::TokenReissued { to: tech() }, Some(&operator))
    );
    assert_eq!(resent.history().len(), w.request(id).history().len());
    // R23: the interval holds across customers and operators alike.
    assert_eq!(
        refusal(d.resend(id, tech(), minutes(9), &mut rng(10)).await),
        Refusal::Act(ActError::TooSoon {
            retry_at: minutes(10)
        })
    );
    // R23: the old token no longer works, the new one does (R20).
    assert_eq!(
        refusal(d.accept(id, tech(), &old, minutes(6)).await),
        Refusal::Act(ActError::InvalidToken)
    );
    let applied = done(d.accept(id, tech(), &new, minutes(6)).await);
    assert_eq!(applied.state().name(), StateName::Done);
    assert_eq!(w.service(&site).holder(Role::Tech), tech());
}

#[test]
fn a_customers_resend_limits_the_operators_too() {
    on_both_drivers!(customer_then_operator);
}

async fn customer_then_operator<D: Drive>(w: &World, d: &D) {
    // R23: one interval per request, whoever sent last.
    let site = name("example.com");
    d.order_service(&site, admin()).await.unwrap();
    let id = open(d, &site, Role::Tech, tech(), admin(), T0).await;
    let _ = done(d.resend(id, admin(), minutes(10), &mut rng(1)).await);
    let before = w.dump();
    let why = act("second try");
    assert_eq!(
        refusal(
            d.resend_by_operator(id, &why, minutes(12), &mut rng(2))
                .await
        ),
        Refusal::Act(ActError::TooSoon {
            retry_at: minutes(15)
        })
    );
    assert_eq!(w.dump(), before);
    // Both confirmers are missing: both get a new token.
    let mark = w.mark();
    let _ = done(
        d.resend_by_operator(id, &why, minutes(15), &mut rng(2))
            .await,
    );
    assert_eq!(
        news(&w.since(mark)),
        [
            (admin(), Some(id), "confirm"),
            (tech(), Some(id), "confirm")
        ]
    );
}

// ----- an operator assigns (R46, R13, R14, R31, R32, R29) -----

#[test]
fn an_assignment_changes_the_contacts_at_once_and_tells_every_holder() {
    on_both_drivers!(assignment_applies);
}

async fn assignment_applies<D: Drive>(w: &World, d: &D) {
    // R46, R31: no confirmation; the service at its next version, the
    // record with it.
    let site = name("example.com");
    w.import(&site, Contacts::new(admin(), tech(), billing()));
    let before = w.service(&site);
    let why = act("mailbox lost, identity checked by phone");
    // Roles named with their holder are left alone (admin here).
    let edit = Edit::new(site.clone())
        .with(Role::Admin, admin())
        .with(Role::Tech, new_tech())
        .with(Role::Billing, new_admin());
    let (mark, at) = (w.mark(), minutes(1));
    let record = done(d.assign(&edit, &why, at, &mut rng(1)).await);
    assert_eq!(record.service(), &site);
    assert_eq!(record.at(), at);
    assert_eq!(record.by(), &why);
    assert_eq!(
        record.changes(),
        [
            Reassignment {
                role: Role::Tech,
                from: tech(),
                to: new_tech()
            },
            Reassignment {
                role: Role::Billing,
                from: billing(),
                to: new_admin()
            },
        ]
    );
    assert_eq!(record.roles(), Roles::from(Role::Tech) | Role::Billing);
    let after = w.service(&site);
    assert_eq!(after.version(), before.version().next(), "R31");
    assert_eq!(
        after.contacts(),
        &Contacts::new(admin(), new_tech(), new_admin())
    );
    assert_eq!(
        stored_assignments(&w.store, &site),
        std::slice::from_ref(&record)
    );
    // R46: each old and new holder told once, with the roles they gave or
    // took, who changed what, and why. The admin, untouched, hears nothing.
    let sent = w.since(mark);
    let mut told: Vec<(CustomerId, Roles)> = sent.iter().map(|m| (m.to(), m.roles())).collect();
    told.sort();
    let mut expected = vec![
        (tech(), Roles::from(Role::Tech)),
        (new_tech(), Roles::from(Role::Tech)),
        (billing(), Roles::from(Role::Billing)),
        (new_admin(), Roles::from(Role::Billing)),
    ];
    expected.sort();
    assert_eq!(told, expected);
    for m in &sent {
        assert_eq!(m.assignment(), Some(record.id()));
        assert_eq!(
            (m.request(), m.requester(), m.incoming()),
            (None, None, None)
        );
        assert_eq!(m.other_party(), None);
        assert_eq!(m.service(), &site);
        assert!(m.token().is_none());
        let MessageKind::Assigned { by, changes } = m.kind() else {
            panic!("{m:?}")
        };
        assert_eq!((by, changes.as_slice()), (&why, record.changes()));
    }
}

#[test]
fn one_message_for_a_holder_who_gives_and_takes() {
    on_both_drivers!(holders_told_once);
}

async fn holders_told_once<D: Drive>(w: &World, d: &D) {
    // R46: "every old and new holder is told": once each, all their roles.
    let site = name("example.com");
    w.import(&site, Contacts::new(admin(), tech(), billing()));
    // The admin and the tech contact swap; billing goes to someone new.
    let edit = Edit::new(site.clone())
        .with(Role::Admin, tech())
        .with(Role::Tech, admin())
        .with(Role::Billing, new_admin());
    let mark = w.mark();
    let record = done(
        d.assign(&edit, &act("swap asked by both"), T0, &mut rng(1))
            .await,
    );
    assert_eq!(record.changes().len(), 3);
    let mut told: Vec<(CustomerId, Roles)> =
        w.since(mark).iter().map(|m| (m.to(), m.roles())).collect();
    told.sort();
    let admin_tech = Roles::from(Role::Admin) | Role::Tech;
    let mut expected = vec![
        (admin(), admin_tech),
        (tech(), admin_tech),
        (billing(), Roles::from(Role::Billing)),
        (new_admin(), Roles::from(Role::Billing)),
    ];
    expected.sort();
    assert_eq!(told, expected);
    assert_eq!(
        w.service(&site).contacts(),
        &Contacts::new(tech(), admin(), new_admin())
    );
}

#[test]
fn assigning_a_customer_without_an_account_is_refused() {
    on_both_drivers!(unknown_incoming);
}

async fn unknown_incoming<D: Drive>(w: &World, d: &D) {
    // R13: the incoming customer must exist; nothing changes.
    let site = name("example.com");
    w.import(&site, Contacts::new(admin(), tech(), billing()));
    let _ = open(d, &site, Role::Tech, new_tech(), admin(), T0).await;
    let before = w.dump();
    let why = act("the customer says this is their colleague");
    for edit in [
        Edit::new(site.clone()).with(Role::Tech, ghost()),
        Edit::new(site.clone()).with(Role::Admin, ghost()),
        Edit::new(site.clone())
            .with(Role::Admin, new_admin())
            .with(Role::Billing, ghost()),
    ] {
        assert_eq!(
            refusal(d.assign(&edit, &why, minutes(1), &mut rng(1)).await),
            Refusal::Assign(AssignError::UnknownCustomer { customer: ghost() })
        );
    }
    // An account closed since: the same.
    w.directory.remove(new_admin());
    let edit = Edit::new(site.clone()).with(Role::Admin, new_admin());
    assert_eq!(
        refusal(d.assign(&edit, &why, minutes(1), &mut rng(1)).await),
        Refusal::Assign(AssignError::UnknownCustomer {
            customer: new_admin()
        })
    );
    assert_eq!(w.dump(), before, "a refused assignment changes nothing");
}

#[test]
fn billing_contacts_behind_with_payments_stop_an_assignment_of_billing() {
    on_both_drivers!(billing_standing);
}

async fn billing_standing<D: Drive>(w: &World, d: &D) {
    // R14: neither the outgoing nor the incoming billing contact may be
    // behind with payments; nothing changes.
    let site = name("example.com");
    w.import(&site, Contacts::new(admin(), tech(), billing()));
    let before = w.dump();
    let why = act("billing handed over");
    let to_new = Edit::new(site.clone()).with(Role::Billing, new_admin());
    // The incoming one.
    w.directory.set_good_standing(new_admin(), false);
    assert_eq!(
        refusal(d.assign(&to_new, &why, T0, &mut rng(1)).await),
        Refusal::Assign(AssignError::NotInGoodStanding {
            customer: new_admin()
        })
    );
    // The outgoing one (checked first).
    w.directory.set_good_standing(billing(), false);
    assert_eq!(
        refusal(d.assign(&to_new, &why, T0, &mut rng(1)).await),
        Refusal::Assign(AssignError::NotInGoodStanding {
            customer: billing()
        })
    );
    w.directory.set_good_standing(new_admin(), true);
    assert_eq!(
        refusal(d.assign(&to_new, &why, T0, &mut rng(1)).await),
        Refusal::Assign(AssignError::NotInGoodStanding {
            customer: billing()
        })
    );
    assert_eq!(w.dump(), before);
    // R14 is about billing only: the tech role moves to a customer behind
    // with payments while the billing contact is too.
    w.directory.set_good_standing(new_tech(), false);
    let tech_only = Edit::new(site.clone())
        .with(Role::Tech, new_tech())
        .with(Role::Billing, billing());
    let record = done(d.assign(&tech_only, &why, T0, &mut rng(1)).await);
    assert_eq!(record.roles(), Roles::from(Role::Tech));
}

#[test]
fn an_assignment_that_changes_nothing_is_refused() {
    on_both_drivers!(nothing_to_assign);
}

async fn nothing_to_assign<D: Drive>(w: &World, d: &D) {
    // R46 (R12's manner): no change, no edit, no service: refused, nothing
    // written.
    let site = name("example.com");
    w.import(&site, Contacts::new(admin(), tech(), billing()));
    let why = act("checking");
    let before = w.dump();
    let same = Edit::new(site.clone())
        .with(Role::Admin, admin())
        .with(Role::Tech, tech())
        .with(Role::Billing, billing());
    assert_eq!(
        refusal(d.assign(&same, &why, T0, &mut rng(1)).await),
        Refusal::Assign(AssignError::NoChange)
    );
    assert_eq!(
        refusal(
            d.assign(&Edit::new(site.clone()), &why, T0, &mut rng(1))
                .await
        ),
        Refusal::Assign(AssignError::EmptyEdit)
    );
    assert_eq!(w.dump(), before);
    // A removed service is no longer there to assign (R44).
    let _ = done(d.remove_service(&site, T0).await);
    let before = w.dump();
    let edit = Edit::new(site.clone()).with(Role::Tech, new_tech());
    assert_eq!(
        refusal(d.assign(&edit, &why, T0, &mut rng(1)).await),
        Refusal::UnknownService(site.clone())
    );
    assert_eq!(w.dump(), before);
}

#[test]
fn an_assignment_fails_the_open_requests_it_overtakes_in_the_same_commit() {
    on_both_drivers!(overtaken_requests);
}

async fn overtaken_requests<D: Drive>(w: &World, d: &D) {
    // R32, R46, R31, R34, R39
    let site = name("example.com");
    // The admin also holds billing; the tech contact is someone else.
    w.import(&site, Contacts::new(admin(), tech(), admin()));
    // The admin asks for a new tech contact (relying on the admin right),
    // and for a new billing contact (which they also hold).
    let on_tech = open(d, &site, Role::Tech, new_tech(), admin(), T0).await;
    let on_billing = open(d, &site, Role::Billing, billing(), admin(), T0).await;
    let billing_before = w.request(on_billing);
    let version = w.service(&site).version();
    // Support moves the admin role away.
    let why = act("the company changed hands; papers checked");
    let (mark, at) = (w.mark(), minutes(1));
    let edit = Edit::new(site.clone()).with(Role::Admin, new_admin());
    let record = done(d.assign(&edit, &why, at, &mut rng(5)).await);
    assert_eq!(w.service(&site).version(), version.next(), "R31: one step");
    // The tech request relied on the admin right: failed, at the
    // operator's hand, naming the assignment.
    let failed = w.request(on_tech);
    let reason = FailureReason::Reassigned {
        role: Role::Tech,
        by: record.id(),
    };
    assert_eq!(
        failed.state(),
        &RequestState::Failed {
            reason: reason.clone(),
            at
        }
    );
    let last = failed.history().last().unwrap();
    assert_eq!(
        (last.kind(), last.actor()),
        (
            &EventKind::Failed {
                reason: reason.clone()
            },
            Some(&Actor::Operator(why.clone()))
        )
    );
    // The billing request did not: the old admin still holds billing.
    assert_eq!(w.request(on_billing), billing_before);
    // R39: the failed request's confirmers are told, with the reason; the
    // old and the new admin get the assignment's news.
    let sent = w.since(mark);
    assert_eq!(
        news(&sent),
        [
            (admin(), None, "assigned"),
            (admin(), Some(on_tech), "failed"),
            (new_admin(), None, "assigned"),
            (new_tech(), Some(on_tech), "failed"),
        ]
    );
    for m in &sent {
        if let MessageKind::Failed { reason: told } = m.kind() {
            assert_eq!(told, &reason);
        }
    }
    // Then the tech role itself moves: the billing request is untouched,
    // and a later request on tech fails because its role changed.
    let on_tech = open(d, &site, Role::Tech, new_tech(), new_admin(), minutes(2)).await;
    let edit = Edit::new(site.clone()).with(Role::Tech, billing());
    let record = done(d.assign(&edit, &why, minutes(3), &mut rng(6)).await);
    assert_eq!(
        w.request(on_tech).state(),
        &RequestState::Failed {
            reason: FailureReason::Reassigned {
                role: Role::Tech,
                by: record.id()
            },
            at: minutes(3)
        }
    );
    assert_eq!(w.request(on_billing), billing_before);
}

#[test]
fn an_assignment_records_the_expiry_of_requests_past_their_deadline() {
    on_both_drivers!(expired_with_an_assignment);
}

async fn expired_with_an_assignment<D: Drive>(w: &World, d: &D) {
    // R29, R32, R46, R31: one commit ends every request the service names
    // that can no longer apply.
    let site = name("example.com");
    d.order_service(&site, admin()).await.unwrap();
    let stale = open(d, &site, Role::Billing, billing(), admin(), T0).await;
    // Opened while the other was still live: nothing expired it yet.
    let live = open(
        d,
        &site,
        Role::Tech,
        tech(),
        admin(),
        T0 + Duration::days(6),
    )
    .await;
    let at = w.request(stale).deadline() + Duration::hours(1);
    let mark = w.mark();
    let why = act("tech contact lost their mailbox");
    let edit = Edit::new(site.clone()).with(Role::Tech, new_tech());
    let record = done(d.assign(&edit, &why, at, &mut rng(7)).await);
    // The stale one: expired, by the system (no actor), at the time given.
    let expired = w.request(stale);
    assert_eq!(expired.state(), &RequestState::Expired { at });
    assert_eq!(expired.history().last().unwrap().actor(), None);
    // The live one: failed at the operator's hand.
    assert_eq!(
        w.request(live).state(),
        &RequestState::Failed {
            reason: FailureReason::Reassigned {
                role: Role::Tech,
                by: record.id()
            },
            at
        }
    );
    let mut expected = vec![
        (admin(), None, "assigned"),
        (admin(), Some(stale), "expired"),
        (admin(), Some(live), "failed"),
        (billing(), Some(stale), "expired"),
        (new_tech(), None, "assigned"),
        (tech(), Some(live), "failed"),
    ];
    expected.sort();
    assert_eq!(news(&w.since(mark)), expected);
}

/// A store that counts its commits and keeps the shape of the last one.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    commits: AtomicUsize,
    last: Mutex<(usize, usize, usize)>,
}

impl Store for Counting {
    type Error = Infallible;

    fn service(&self, name: &ServiceName) -> Result<Option<Service>, Infallible> {
        self.inner.service(name)
    }

    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Infallible> {
        self.inner.request(id)
    }

    forward_listings!(inner, Infallible, std::convert::identity);

    fn commit(&self, changes: Changes) -> Result<(), CommitError<Infallible>> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = (
            changes.services.len(),
            changes.requests.len(),
            changes.assignments.len(),
        );
        self.inner.commit(changes)
    }
}

#[test]
fn the_driver_commits_an_assignment_and_what_it_ends_at_once() {
    // R31, R32, R29: the service, the record, the failed and the expired
    // requests in one commit.
    let directory = MemoryDirectory::new();
    for c in [admin(), tech(), billing(), new_tech()] {
        directory.add(c);
    }
    let driver = Driver::new(Counting::default(), MemoryNotifier::new(), directory);
    let site = name("example.com");
    driver.order_service(&site, admin()).unwrap();
    let stale = drive::now(open(&driver, &site, Role::Billing, billing(), admin(), T0));
    let live_from = T0 + Duration::days(6);
    let _live = drive::now(open(&driver, &site, Role::Tech, tech(), admin(), live_from));
    let later = driver
        .store()
        .inner
        .request(stale)
        .unwrap()
        .unwrap()
        .deadline();
    let commits = driver.store().commits.load(Ordering::SeqCst);
    let edit = Edit::new(site).with(Role::Tech, new_tech());
    let _ = driver
        .assign(&edit, &act("tech mailbox lost"), later, &mut rng(3))
        .unwrap();
    assert_eq!(driver.store().commits.load(Ordering::SeqCst), commits + 1);
    assert_eq!(*driver.store().last.lock().unwrap(), (1, 2, 1));
}

// ----- the engine's own refusals (R46, R44) -----

/// `example.com` held by the admin, the tech and the billing contact.
fn three_holders() -> Service {
    Service::new(
        name("example.com"),
        Contacts::new(admin(), tech(), billing()),
        service_contacts::Version::FIRST,
    )
}

/// The writes of Jane's assignment of `edit` on `service` (with no request
/// read), or the refusal.
fn engine_assign(
    service: &Service,
    edit: &Edit,
    accounts: impl Fn(CustomerId) -> AccountStatus,
) -> Result<Changes, AssignError> {
    let snapshot = Snapshot {
        service,
        requests: &[],
    };
    Engine::default()
        .assign(snapshot, edit, &act("support"), &accounts, T0, &mut rng(1))
        .map(|t| t.changes)
}

/// Every account in good standing but `who`, whose status is `status`.
fn all_good_but(who: CustomerId, status: AccountStatus) -> impl Fn(CustomerId) -> AccountStatus {
    move |c| {
        if c == who {
            status
        } else {
            AccountStatus::GoodStanding
        }
    }
}

#[test]
fn the_engine_refuses_assignments_it_cannot_make() {
    // R46, R44: each refusal specific, no transition.
    let service = three_holders();
    let site = service.name().clone();
    let everyone = |_: CustomerId| AccountStatus::GoodStanding;
    let other = Edit::new(name("other.example")).with(Role::Tech, new_tech());
    assert_eq!(
        engine_assign(&service, &other, everyone),
        Err(AssignError::ServiceMismatch {
            edit: name("other.example"),
            given: site.clone()
        })
    );
    assert_eq!(
        engine_assign(&service, &Edit::new(site.clone()), everyone),
        Err(AssignError::EmptyEdit)
    );
    let edit = Edit::new(site.clone()).with(Role::Tech, new_tech());
    let tombstone = Service::restore(
        site.clone(),
        *service.contacts(),
        service.version().next(),
        service.last_requests(),
        true,
    );
    assert_eq!(
        engine_assign(&tombstone, &edit, everyone),
        Err(AssignError::ServiceRemoved)
    );
    // The service names a request the snapshot lacks: read again (R44).
    let opened = Engine::default()
        .submit(
            &Edit::new(site.clone()).with(Role::Tech, new_tech()),
            admin(),
            Snapshot {
                service: &service,
                requests: &[],
            },
            &everyone,
            T0,
            &mut rng(2),
        )
        .unwrap();
    let naming = opened.changes.services[0].value.clone();
    assert_eq!(
        engine_assign(&naming, &edit, everyone),
        Err(AssignError::SnapshotOutdated)
    );
    let same = Edit::new(site).with(Role::Tech, tech());
    assert_eq!(
        engine_assign(&service, &same, everyone),
        Err(AssignError::NoChange)
    );
}

#[test]
fn the_engine_checks_the_accounts_of_an_assignment() {
    // R13, R14: the incoming customer exists; both billing contacts are in
    // good standing for a billing change.
    let service = three_holders();
    let site = service.name().clone();
    let edit = Edit::new(site.clone()).with(Role::Tech, new_tech());
    assert_eq!(
        engine_assign(
            &service,
            &edit,
            all_good_but(new_tech(), AccountStatus::Unknown)
        ),
        Err(AssignError::UnknownCustomer {
            customer: new_tech()
        })
    );
    let to_billing = Edit::new(site).with(Role::Billing, new_tech());
    assert_eq!(
        engine_assign(
            &service,
            &to_billing,
            all_good_but(billing(), AccountStatus::BehindWithPayments)
        ),
        Err(AssignError::NotInGoodStanding {
            customer: billing()
        })
    );
    assert_eq!(
        engine_assign(
            &service,
            &to_billing,
            all_good_but(new_tech(), AccountStatus::BehindWithPayments)
        ),
        Err(AssignError::NotInGoodStanding {
            customer: new_tech()
        })
    );
    // An outgoing billing contact the directory does not know counts as
    // not in good standing (DESIGN, R14).
    assert_eq!(
        engine_assign(
            &service,
            &to_billing,
            all_good_but(billing(), AccountStatus::Unknown)
        ),
        Err(AssignError::NotInGoodStanding {
            customer: billing()
        })
    );
    // The refusals' messages.
    assert_eq!(
        AssignError::NotInGoodStanding {
            customer: billing()
        }
        .to_string(),
        "BI3-OVH is behind with payments and cannot give or take the billing role"
    );
    assert_eq!(
        AssignError::UnknownCustomer { customer: ghost() }.to_string(),
        "no customer account ZZ9-OVH"
    );
}

#[test]
fn the_engine_assigns_in_one_transition() {
    // R31, R32, R46: one transition holds the service at its next version,
    // the record, and each overtaken request at its next version.
    let engine = Engine::default();
    let site = name("example.com");
    let service = Service::order(site.clone(), admin());
    let everyone = |_: CustomerId| AccountStatus::GoodStanding;
    let opened = engine
        .submit(
            &Edit::new(site.clone()).with(Role::Tech, tech()),
            admin(),
            Snapshot {
                service: &service,
                requests: &[],
            },
            &everyone,
            T0,
            &mut rng(2),
        )
        .unwrap();
    let service = opened.changes.services[0].value.clone();
    let request = opened.requests().next().unwrap().clone();
    let why = act("support");
    let edit = Edit::new(site.clone()).with(Role::Tech, new_tech());
    let requests = [request.clone()];
    let snapshot = Snapshot {
        service: &service,
        requests: &requests,
    };
    let t = engine
        .assign(snapshot, &edit, &why, &everyone, minutes(1), &mut rng(3))
        .unwrap();
    assert_eq!(t.changes.services.len(), 1);
    assert_eq!(t.changes.services[0].expected, Some(service.version()));
    assert_eq!(
        t.changes.services[0].value.version(),
        service.version().next()
    );
    assert_eq!(t.changes.assignments.len(), 1);
    assert_eq!(t.changes.requests.len(), 1);
    assert_eq!(t.changes.requests[0].expected, Some(request.version()));
    let failed = &t.changes.requests[0].value;
    assert_eq!(failed.version(), request.version().next());
    assert!(failed.history().starts_with(request.history()));
    // An operator's act before the request's last event keeps the history
    // in order: refused as out of order for cancel and resend (R34).
    let early = T0 - Duration::minutes(1);
    assert_eq!(
        engine
            .cancel_by_operator(&request, &why, early)
            .unwrap_err(),
        ActError::OutOfOrder { last: T0 }
    );
    assert_eq!(
        engine
            .resend_by_operator(&request, &why, early, &mut rng(4))
            .unwrap_err(),
        ActError::OutOfOrder { last: T0 }
    );
}

// ----- an assignment racing a customer's last acceptance (R31) -----

/// Which racer commits first.
#[derive(Clone, Copy, Debug, PartialEq)]
enum First {
    Accept,
    Assign,
}

/// The scene: a request giving the tech role to `tech()`, which the admin
/// confirmed; the tech contact's acceptance is the last one. Returns the
/// request and the tech contact's token.
fn scene(w: &World) -> (ServiceName, RequestId, String) {
    let site = name("example.com");
    let d = w.blocking();
    d.order_service(&site, admin()).unwrap();
    let id = drive::now(open(&d, &site, Role::Tech, tech(), admin(), T0));
    let _ = done(d.accept(id, admin(), &w.token(admin(), id), T0));
    (site, id, w.token(tech(), id))
}

/// What each racer got: `Ok` if its action took effect, else the error
/// (shown).
type Raced = (Result<ChangeRequest, String>, Result<Assignment, String>);

/// Checks the end of a race on `w`: with `retries` 0 exactly one of the two
/// took effect, the loser met contention; with retries, the loser decided
/// again on what the winner committed.
fn check_race(
    w: &World,
    site: &ServiceName,
    id: RequestId,
    first: First,
    retries: u32,
    raced: Raced,
) {
    let (accepted, assigned) = raced;
    let service = w.service(site);
    let assignments = stored_assignments(&w.store, site);
    let request = w.request(id);
    let contention = |e: &String| e.starts_with("Contention");
    match (first, retries) {
        (First::Accept, 0) => {
            assert_eq!(accepted.map(|r| r.state().name()), Ok(StateName::Done));
            assert!(assigned.as_ref().is_err_and(contention), "{assigned:?}");
            assert_eq!(service.holder(Role::Tech), tech());
            assert!(assignments.is_empty(), "the losing assignment wrote");
        }
        (First::Assign, 0) => {
            assert!(assigned.is_ok(), "{assigned:?}");
            assert!(accepted.as_ref().is_err_and(contention), "{accepted:?}");
            assert_eq!(service.holder(Role::Tech), new_tech());
            assert_eq!(assignments.len(), 1);
            assert!(matches!(
                request.state(),
                RequestState::Failed {
                    reason: FailureReason::Reassigned { .. },
                    ..
                }
            ));
        }
        (First::Accept, _) => {
            // The change applied, then the operator's assignment moved the
            // role on, from the holder it found.
            assert_eq!(request.state().name(), StateName::Done);
            let record = assigned.expect("the assignment decided again and landed");
            assert_eq!(
                record.changes(),
                [Reassignment {
                    role: Role::Tech,
                    from: tech(),
                    to: new_tech()
                }]
            );
            assert_eq!(service.holder(Role::Tech), new_tech());
        }
        (First::Assign, _) => {
            // The assignment overtook the request; the acceptance then
            // found it failed.
            assert!(assigned.is_ok());
            assert_eq!(
                accepted,
                Err(format!(
                    "{:?}",
                    DriverError::<Infallible, Infallible>::Refused(Refusal::Act(
                        ActError::Closed {
                            state: StateName::Error
                        }
                    ))
                ))
            );
            assert_eq!(service.holder(Role::Tech), new_tech());
        }
    }
    // No update lost: one version for the order, the opening and each
    // change that landed (R31).
    let changes = usize::from(request.state().name() == StateName::Done) + assignments.len();
    assert_eq!(
        service.version().get(),
        2 + u64::try_from(changes).unwrap(),
        "{first:?}, {retries} retries"
    );
    w.store.audit().expect("the indexes agree with a scan");
}

/// A blocking store whose first commit, once armed, reports that the racer
/// decided and waits to be let through.
struct Gated<'w> {
    inner: &'w MemoryStore,
    armed: AtomicBool,
    reached: Mutex<mpsc::Sender<()>>,
    go: Mutex<mpsc::Receiver<()>>,
}

impl Store for Gated<'_> {
    type Error = Infallible;

    fn service(&self, name: &ServiceName) -> Result<Option<Service>, Infallible> {
        self.inner.service(name)
    }

    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Infallible> {
        self.inner.request(id)
    }

    forward_listings!(inner, Infallible, std::convert::identity);

    fn commit(&self, changes: Changes) -> Result<(), CommitError<Infallible>> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.reached
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .send(())
                .expect("the referee listens");
            self.go
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv()
                .expect("the referee lets the commit through");
        }
        self.inner.commit(changes)
    }
}

/// The race through two blocking drivers on threads.
fn race_blocking(first: First, retries: u32) {
    let w = World::new();
    let (site, id, token) = scene(&w);
    let (reached_tx, reached) = mpsc::channel();
    let gate = |go| Gated {
        inner: &w.store,
        armed: AtomicBool::new(true),
        reached: Mutex::new(reached_tx.clone()),
        go: Mutex::new(go),
    };
    let (go_accept, go_rx) = mpsc::channel();
    let accept_store = gate(go_rx);
    let (go_assign, go_rx) = mpsc::channel();
    let assign_store = gate(go_rx);
    let accepting = Driver::new(&accept_store, &w.notifier, &w.directory).with_retries(retries);
    let assigning = Driver::new(&assign_store, &w.notifier, &w.directory).with_retries(retries);
    let edit = Edit::new(site.clone()).with(Role::Tech, new_tech());
    let why = act("tech contact cannot receive mail");
    let raced = std::thread::scope(|scope| {
        let accept = scope.spawn(|| {
            accepting
                .accept(id, tech(), &token, minutes(1))
                .map(|o| o.value)
                .map_err(|e| format!("{e:?}"))
        });
        let assign = scope.spawn(|| {
            assigning
                .assign(&edit, &why, minutes(1), &mut rng(8))
                .map(|o| o.value)
                .map_err(|e| format!("{e:?}"))
        });
        // Both decided on the same state before either commits.
        for _ in 0..2 {
            reached
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("both racers reach their commit");
        }
        let (go_first, go_second) = match first {
            First::Accept => (&go_accept, &go_assign),
            First::Assign => (&go_assign, &go_accept),
        };
        go_first.send(()).unwrap();
        let (accepted, assigned) = match first {
            First::Accept => {
                let accepted = accept.join().unwrap();
                go_second.send(()).unwrap();
                (accepted, assign.join().unwrap())
            }
            First::Assign => {
                let assigned = assign.join().unwrap();
                go_second.send(()).unwrap();
                (accept.join().unwrap(), assigned)
            }
        };
        (accepted, assigned)
    });
    check_race(&w, &site, id, first, retries, raced);
}

/// Holds the first commit of one async racer, once armed, until let
/// through.
#[derive(Default)]
struct AsyncGate {
    armed: AtomicBool,
    reached: tokio::sync::Notify,
    go: tokio::sync::Notify,
}

impl Hook for AsyncGate {
    async fn before(&self, call: Call) {
        if call == Call::Commit && self.armed.swap(false, Ordering::SeqCst) {
            self.reached.notify_one();
            self.go.notified().await;
        }
    }
}

/// The race through two async drivers, on one current-thread runtime.
fn race_async(first: First, retries: u32) {
    let w = World::new();
    let (site, id, token) = scene(&w);
    let gate = || AsyncGate {
        armed: AtomicBool::new(true),
        ..AsyncGate::default()
    };
    let (accept_gate, assign_gate) = (gate(), gate());
    let accepting = AsyncDriver::new(
        Hooked::new(&w.store, &accept_gate),
        &w.notifier,
        &w.directory,
    )
    .with_retries(retries);
    let assigning = AsyncDriver::new(
        Hooked::new(&w.store, &assign_gate),
        &w.notifier,
        &w.directory,
    )
    .with_retries(retries);
    let edit = Edit::new(site.clone()).with(Role::Tech, new_tech());
    let why = act("tech contact cannot receive mail");
    let first_done = tokio::sync::Notify::new();
    let (first_gate, second_gate) = match first {
        First::Accept => (&accept_gate, &assign_gate),
        First::Assign => (&assign_gate, &accept_gate),
    };
    let raced = runtime().block_on(async {
        let accept = async {
            let r = accepting
                .accept(id, tech(), &token, minutes(1))
                .await
                .map(|o| o.value)
                .map_err(|e| format!("{e:?}"));
            if first == First::Accept {
                first_done.notify_one();
            }
            r
        };
        let assign = async {
            let r = assigning
                .assign(&edit, &why, minutes(1), &mut rng(8))
                .await
                .map(|o| o.value)
                .map_err(|e| format!("{e:?}"));
            if first == First::Assign {
                first_done.notify_one();
            }
            r
        };
        let referee = async {
            accept_gate.reached.notified().await;
            assign_gate.reached.notified().await;
            first_gate.go.notify_one();
            first_done.notified().await;
            second_gate.go.notify_one();
        };
        let (accepted, assigned, ()) = tokio::join!(accept, assign, referee);
        (accepted, assigned)
    });
    check_race(&w, &site, id, first, retries, raced);
}

#[test]
fn an_assignment_racing_the_last_acceptance_lands_once() {
    // R31: whichever commits first, exactly one of the two conflicting
    // commits lands; with no retry the other meets contention and writes
    // nothing; with retries it decides again on what landed.
    for first in [First::Accept, First::Assign] {
        for retries in [0, 16] {
            race_blocking(first, retries);
            race_async(first, retries);
        }
    }
}

// ----- a service's history (R47) -----

/// The story of `example.com` in the history tests: requests and
/// assignments, some at the same instant. Returns the entries newest first,
/// as the history must list them.
async fn story<D: Drive>(w: &World, d: &D) -> Vec<HistoryEntry> {
    let site = name("example.com");
    d.order_service(&site, admin()).await.unwrap();
    d.order_service(&name("other.example"), tech())
        .await
        .unwrap();
    // A: cancelled by the requester.
    let by_requester = open(d, &site, Role::Tech, tech(), admin(), minutes(1)).await;
    let _ = done(d.cancel(by_requester, admin(), minutes(2)).await);
    // B: applied.
    let applied = open(d, &site, Role::Tech, tech(), admin(), minutes(3)).await;
    accept_all(w, d, applied, minutes(4)).await;
    // X1: billing assigned.
    let billing_moved = done(
        d.assign(
            &Edit::new(site.clone()).with(Role::Billing, billing()),
            &act("billing contact's mailbox is gone"),
            minutes(5),
            &mut rng(51),
        )
        .await,
    );
    // C and D: one edit, two requests opened at the same instant; X2 at
    // that instant too, which overtakes both.
    let edit = Edit::new(site.clone())
        .with(Role::Tech, new_tech())
        .with(Role::Billing, new_admin());
    let both = done(d.submit(&edit, admin(), minutes(6), &mut rng(6)).await);
    assert_eq!(both.len(), 2);
    let admin_moved = done(
        d.assign(
            &Edit::new(site.clone()).with(Role::Admin, new_admin()),
            &act("new owner, papers checked"),
            minutes(6),
            &mut rng(62),
        )
        .await,
    );
    // E: opened by the new admin, cancelled by support.
    let by_support = open(d, &site, Role::Tech, admin(), new_admin(), minutes(7)).await;
    let _ = done(
        d.cancel_by_operator(by_support, &act("opened by mistake"), minutes(8))
            .await,
    );
    let mut entries: Vec<HistoryEntry> = [by_requester, applied, both[0], both[1], by_support]
        .into_iter()
        .map(|id| HistoryEntry::Request(w.request(id)))
        .chain([billing_moved, admin_moved].map(HistoryEntry::Assignment))
        .collect();
    entries.sort_by(|x, y| {
        let (x, y) = (x.key(), y.key());
        y.at.cmp(&x.at).then(x.id.cmp(&y.id))
    });
    entries
}

#[test]
fn the_history_lists_every_request_and_assignment_newest_first() {
    on_both_drivers!(full_history);
}

async fn full_history<D: Drive>(w: &World, d: &D) {
    // R47, R45, R34
    let expected = story(w, d).await;
    let site = name("example.com");
    assert_eq!(expected.len(), 7);
    for per_page in [1, 2, 3, 4, 7, 100] {
        let per_page = PageSize::new(per_page).unwrap();
        let mut after = None;
        let mut rows = Vec::new();
        loop {
            let page = d.history(&site, after.as_ref(), per_page).await.unwrap();
            assert!(!page.items.is_empty(), "an empty page");
            assert!(page.items.len() <= per_page.get());
            if let Some(next) = &page.next {
                assert_eq!(next.listing(), Listing::History);
                assert_eq!(
                    page.items.len(),
                    per_page.get(),
                    "a short page before the end"
                );
            }
            rows.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(rows, expected, "{} a page", per_page.get());
    }
    // Newest first, ties by id; the entries at one instant include an
    // assignment and two requests.
    for pair in expected.windows(2) {
        assert!(pair[0].key().listed_before(&pair[1].key()));
    }
    // R34: all events and actors, operators with their reasons.
    let operator_events = expected
        .iter()
        .filter_map(|e| match e {
            HistoryEntry::Request(r) => Some(r),
            HistoryEntry::Assignment(_) => None,
        })
        .flat_map(ChangeRequest::history)
        .filter(|e| e.operator().is_some())
        .count();
    // E cancelled, C and D failed by X2.
    assert_eq!(operator_events, 3);
    // Another service's history holds none of it.
    let other = history_pages(d, &name("other.example"), PageSize::new(5).unwrap())
        .await
        .unwrap();
    assert!(other.is_empty(), "{other:?}");
}

#[test]
fn history_cursors_stay_stable_while_commits_land() {
    on_both_drivers!(stable_history);
}

async fn stable_history<D: Drive>(w: &World, d: &D) {
    // R47, R45: a page read, then newer entries land; the next page goes
    // on where the last one ended, with no entry twice or missed.
    let expected = story(w, d).await;
    let site = name("example.com");
    let per_page = PageSize::new(2).unwrap();
    let first = d.history(&site, None, per_page).await.unwrap();
    assert_eq!(first.items, expected[..2]);
    let newer = open(d, &site, Role::Billing, tech(), new_admin(), minutes(9)).await;
    let _ = done(
        d.assign(
            &Edit::new(site.clone()).with(Role::Tech, new_tech()),
            &act("the tech contact asked support"),
            minutes(9),
            &mut rng(90),
        )
        .await,
    );
    let mut rows = first.items;
    let mut after = first.next;
    while let Some(cursor) = after {
        let page = d.history(&site, Some(&cursor), per_page).await.unwrap();
        rows.extend(page.items);
        after = page.next;
    }
    assert_eq!(rows, expected);
    // Read again from the start, the new entries come first.
    let all = history_pages(d, &site, PageSize::new(3).unwrap())
        .await
        .unwrap();
    assert_eq!(all.len(), expected.len() + 2);
    assert!(all[..2].iter().all(|e| e.key().at == minutes(9)));
    assert!(
        all[..2]
            .iter()
            .any(|e| matches!(e, HistoryEntry::Request(r) if r.id() == newer))
    );
    assert_eq!(all[2..], expected[..]);
}

#[test]
fn a_history_cursor_of_another_service_or_listing_is_refused() {
    on_both_drivers!(foreign_cursors);
}

async fn foreign_cursors<D: Drive>(w: &World, d: &D) {
    // R47, R45: a cursor pages one listing of one service.
    let _ = story(w, d).await;
    let (site, other) = (name("example.com"), name("other.example"));
    let per_page = PageSize::new(1).unwrap();
    let cursor = d
        .history(&site, None, per_page)
        .await
        .unwrap()
        .next
        .unwrap();
    let err = d
        .history(&other, Some(&cursor), per_page)
        .await
        .unwrap_err();
    assert_eq!(
        err.refusal(),
        Some(&Refusal::Cursor(CursorError::OtherService))
    );
    let contacts = d
        .my_contacts(tech(), None, per_page)
        .await
        .unwrap()
        .next
        .expect("the tech contact holds roles of two services");
    let err = d
        .history(&site, Some(&contacts), per_page)
        .await
        .unwrap_err();
    assert_eq!(
        err.refusal(),
        Some(&Refusal::Cursor(CursorError::WrongListing {
            expected: Listing::History,
            found: Listing::Contacts
        }))
    );
    // And a history cursor is no "my contacts" cursor.
    let err = d
        .my_contacts(tech(), Some(&cursor), per_page)
        .await
        .unwrap_err();
    assert!(matches!(
        err.refusal(),
        Some(Refusal::Cursor(CursorError::WrongListing {
            expected: Listing::Contacts,
            found: Listing::History
        }))
    ));
    // A cursor read back from its text works the same.
    let text = cursor.to_string();
    let back = text.parse().unwrap();
    let page = d.history(&site, Some(&back), per_page).await.unwrap();
    assert_eq!(page.items.len(), 1);
}

#[test]
fn a_removed_service_keeps_its_history() {
    on_both_drivers!(removed_history);
}

async fn removed_history<D: Drive>(w: &World, d: &D) {
    // R47, R44, R30: the history outlives the service.
    let mut expected = story(w, d).await;
    let site = name("example.com");
    let open_one = open(d, &site, Role::Billing, tech(), new_admin(), minutes(9)).await;
    let _ = done(d.remove_service(&site, minutes(10)).await);
    assert_eq!(
        w.request(open_one).state().name(),
        StateName::Error,
        "R30: its live request failed"
    );
    expected.insert(0, HistoryEntry::Request(w.request(open_one)));
    let all = history_pages(d, &site, PageSize::new(2).unwrap())
        .await
        .unwrap();
    assert_eq!(all, expected);
    // The service is gone for every other purpose.
    let err = d
        .proposable(&site, new_admin(), minutes(11))
        .await
        .unwrap_err();
    assert_eq!(err.refusal(), Some(&Refusal::UnknownService(site)));
}
