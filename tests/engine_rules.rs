//! The pure engine against the rules of RULES.md, R8 to R40 (R41 is the
//! driver's). Each test names the rule(s) it checks.
//!
//! The cast: `example.com` (at version 3) has the admin `AD1-OVH`, the tech
//! contact `TE2-OVH` and the billing contact `BI3-OVH`. `NE4-OVH`, `SE5-OVH`
//! and `ST6-OVH` are known customers in good standing with no role,
//! `GH7-OVH` has no account and `DE8-OVH` is behind with payments.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    AccountStatus, Accounts, ActError, Actor, Blocked, ChangeRequest, Config, ConfigError,
    ConfirmerStatus, Contacts, CustomerId, Edit, Engine, EventKind, FailureReason, Message,
    MessageKind, Rejection, RequestId, RequestState, Role, Roles, Service, ServiceName, Snapshot,
    StateName, SubmitError, Token, Transition, Version,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

// ----- the cast -----

const T0: OffsetDateTime = datetime!(2026-11-21 10:00 UTC);

fn at(minutes: i64) -> OffsetDateTime {
    T0 + Duration::minutes(minutes)
}

fn id(text: &str) -> CustomerId {
    text.parse().expect("a valid customer id")
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

/// A known customer in good standing with no role.
fn newcomer() -> CustomerId {
    id("NE4-OVH")
}

/// Another known customer in good standing with no role.
fn second() -> CustomerId {
    id("SE5-OVH")
}

/// A third known customer in good standing with no role.
fn stranger() -> CustomerId {
    id("ST6-OVH")
}

/// No account.
fn ghost() -> CustomerId {
    id("GH7-OVH")
}

/// A known account behind with payments.
fn debtor() -> CustomerId {
    id("DE8-OVH")
}

/// The account directory of the cast.
fn directory(customer: CustomerId) -> AccountStatus {
    if customer == ghost() {
        AccountStatus::Unknown
    } else if customer == debtor() {
        AccountStatus::BehindWithPayments
    } else {
        AccountStatus::GoodStanding
    }
}

fn name(text: &str) -> ServiceName {
    text.parse().expect("a valid service name")
}

/// `example.com` with the given contacts, at version 3.
fn service_with(contacts: Contacts) -> Service {
    Service::new(name("example.com"), contacts, Version::new(3))
}

/// `example.com` with admin, tech and billing held by three customers.
fn example() -> Service {
    service_with(Contacts::new(admin(), tech(), billing()))
}

fn edit_of(service: &Service, proposals: &[(Role, CustomerId)]) -> Edit {
    proposals.iter().fold(
        Edit::new(service.name().clone()),
        |edit, (role, customer)| edit.with(*role, *customer),
    )
}

// ----- the fixture -----

/// An engine, the service as the store holds it, and a seeded generator.
struct Fixture {
    engine: Engine,
    service: Service,
    rng: ChaCha20Rng,
}

/// A request just opened, the tokens its messages carry (by recipient) and
/// the transition that opened it.
struct Opened {
    request: ChangeRequest,
    tokens: HashMap<CustomerId, String>,
    transition: Transition,
}

impl Opened {
    fn token(&self, of: CustomerId) -> &str {
        &self.tokens[&of]
    }
}

/// The fixture's service as the store holds it once `requests` were opened
/// on it, in order (each named as the last request of its roles, R27), with
/// those requests: what a host reads for a decision.
struct Stored {
    service: Service,
    requests: Vec<ChangeRequest>,
}

impl Stored {
    fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            service: &self.service,
            requests: &self.requests,
        }
    }
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(Config::default(), example())
    }

    fn with(config: Config, service: Service) -> Fixture {
        Fixture {
            engine: Engine::new(config),
            service,
            rng: ChaCha20Rng::seed_from_u64(2026),
        }
    }

    /// The service as stored with `requests` opened on it (requests of
    /// other services are kept in the snapshot but not named).
    fn stored(&self, requests: &[ChangeRequest]) -> Stored {
        let last = requests
            .iter()
            .filter(|r| r.service() == self.service.name())
            .flat_map(|r| r.roles().iter().map(move |role| (role, r.id())));
        Stored {
            service: Service::restore(
                self.service.name().clone(),
                *self.service.contacts(),
                self.service.version(),
                last,
                false,
            ),
            requests: requests.to_vec(),
        }
    }

    /// The service removed while `request` waited: its tombstone, still
    /// naming the request (R44).
    fn gone(&self, request: &ChangeRequest) -> Stored {
        let mut stored = self.applying(request, &[]);
        stored.service = Service::restore(
            stored.service.name().clone(),
            *stored.service.contacts(),
            stored.service.version().next(),
            stored.service.last_requests(),
            true,
        );
        stored
    }

    /// The service as stored while `request` waits, after `others`.
    fn applying(&self, request: &ChangeRequest, others: &[ChangeRequest]) -> Stored {
        let mut requests = others.to_vec();
        requests.retain(|r| r.id() != request.id());
        requests.push(request.clone());
        self.stored(&requests)
    }

    fn submit(
        &mut self,
        actor: CustomerId,
        proposals: &[(Role, CustomerId)],
        open: &[ChangeRequest],
        now: OffsetDateTime,
    ) -> Result<Transition, SubmitError> {
        let edit = edit_of(&self.service, proposals);
        let stored = self.stored(open);
        self.engine.submit(
            &edit,
            actor,
            stored.snapshot(),
            &directory,
            now,
            &mut self.rng,
        )
    }

    /// Opens one request at `T0` with no other request open.
    fn open(&mut self, actor: CustomerId, proposals: &[(Role, CustomerId)]) -> Opened {
        self.open_at(actor, proposals, &[], T0)
    }

    fn open_at(
        &mut self,
        actor: CustomerId,
        proposals: &[(Role, CustomerId)],
        open: &[ChangeRequest],
        now: OffsetDateTime,
    ) -> Opened {
        let transition = self
            .submit(actor, proposals, open, now)
            .unwrap_or_else(|err| panic!("submit refused: {err}"));
        assert_eq!(transition.changes.requests.len(), 1, "one request opened");
        let request = transition.requests().next().unwrap().clone();
        let tokens = tokens_of(&transition, request.id());
        Opened {
            request,
            tokens,
            transition,
        }
    }

    /// Accepts against the fixture's service, with no other open request.
    fn accept(
        &self,
        request: &ChangeRequest,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Transition, Rejection> {
        self.engine.accept(
            request,
            actor,
            token,
            now,
            Some(self.applying(request, &[]).snapshot()),
            &directory,
        )
    }

    fn refuse(
        &self,
        request: &ChangeRequest,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Transition, Rejection> {
        self.engine.refuse(request, actor, token, now)
    }

    fn resend(
        &mut self,
        request: &ChangeRequest,
        actor: CustomerId,
        now: OffsetDateTime,
    ) -> Result<Transition, ActError> {
        self.engine.resend(request, actor, now, &mut self.rng)
    }

    /// Every confirmer accepts in turn at `now`; the last transition.
    fn accept_all(&self, opened: &Opened, now: OffsetDateTime) -> Transition {
        let mut request = opened.request.clone();
        let mut last = None;
        for confirmer in request.confirmers() {
            let step = self
                .accept(&request, confirmer, opened.token(confirmer), now)
                .unwrap_or_else(|err| panic!("accept by {confirmer} refused: {err}"));
            request = updated(&step, request.id());
            last = Some(step);
        }
        last.expect("a request has at least one confirmer")
    }
}

// ----- helpers -----

/// The tokens the messages of `transition` carry for `request`, by recipient.
fn tokens_of(transition: &Transition, request: RequestId) -> HashMap<CustomerId, String> {
    let mut tokens = HashMap::new();
    for message in transition
        .messages
        .iter()
        .filter(|m| m.request() == Some(request))
    {
        if let Some(token) = message.token() {
            let previous = tokens.insert(message.to(), token.reveal());
            assert!(previous.is_none(), "one token per recipient");
        }
    }
    tokens
}

/// The request `id` as `transition` writes it.
fn updated(transition: &Transition, id: RequestId) -> ChangeRequest {
    transition
        .request(id)
        .expect("the transition writes the request")
        .clone()
}

/// The request a failed attempt's record writes.
fn recorded(rejection: &Rejection) -> ChangeRequest {
    let record = rejection.record.as_ref().expect("the failure is recorded");
    assert!(record.services.is_empty());
    assert_eq!(record.requests.len(), 1);
    record.requests[0].value.clone()
}

/// The recipients of the messages about `request` that match `kind`.
fn told(
    transition: &Transition,
    request: RequestId,
    kind: impl Fn(&MessageKind) -> bool,
) -> Vec<CustomerId> {
    transition
        .messages
        .iter()
        .filter(|m| m.request() == Some(request) && kind(m.kind()))
        .map(Message::to)
        .collect()
}

fn status_of(request: &ChangeRequest, customer: CustomerId) -> ConfirmerStatus {
    let RequestState::Awaiting(awaiting) = request.state() else {
        panic!("the request is not awaiting: {:?}", request.state());
    };
    awaiting
        .confirmers()
        .iter()
        .find(|c| c.customer() == customer)
        .expect("a confirmer")
        .status()
        .clone()
}

/// The last history entry as (time, actor, kind).
fn last_event(request: &ChangeRequest) -> (OffsetDateTime, Option<CustomerId>, EventKind) {
    let event = request.history().last().expect("a history");
    (event.at(), event.customer(), event.kind().clone())
}

/// A token of the right shape that belongs to nobody.
fn forged() -> String {
    Token::from_bytes([0x5a; 32]).reveal()
}

fn invalid_token(result: Result<Transition, Rejection>) -> Rejection {
    let rejection = result.expect_err("the token must not be accepted");
    assert_eq!(rejection.error, ActError::InvalidToken);
    assert_eq!(rejection.to_string(), "invalid token");
    rejection
}

/// Every operation on `request` is refused as `Closed { state }` at `now` and
/// writes nothing, even with the confirmers' own tokens.
fn assert_frozen(
    fx: &mut Fixture,
    request: &ChangeRequest,
    tokens: &HashMap<CustomerId, String>,
    state: StateName,
    now: OffsetDateTime,
) {
    let closed = ActError::Closed { state };
    let before = request.clone();
    let mut candidates: Vec<(CustomerId, String)> =
        tokens.iter().map(|(c, t)| (*c, t.clone())).collect();
    candidates.push((stranger(), forged()));
    for (actor, token) in &candidates {
        let rejection = fx.accept(request, *actor, token, now).unwrap_err();
        assert_eq!(rejection.error, closed, "accept by {actor}");
        assert!(rejection.record.is_none());
        let rejection = fx.refuse(request, *actor, token, now).unwrap_err();
        assert_eq!(rejection.error, closed, "refuse by {actor}");
        assert!(rejection.record.is_none());
        assert_eq!(fx.resend(request, *actor, now).unwrap_err(), closed);
    }
    assert_eq!(
        fx.engine
            .cancel(request, request.requester(), now)
            .unwrap_err(),
        closed
    );
    assert_eq!(fx.engine.expire(request, now).unwrap_err(), closed);
    assert_eq!(request.state_name_at(now), state);
    assert!(request.missing_at(now).is_empty());
    assert_eq!(*request, before);
}

// ----- R8 to R11: who may ask for what -----

#[test]
fn admin_may_propose_tech_and_billing_for_another() {
    // R8a
    let mut fx = Fixture::new();
    assert_eq!(
        fx.engine
            .proposable(fx.stored(&[]).snapshot(), admin(), &directory, T0)
            .allowed(),
        Roles::ALL
    );
    let opened = fx.open(
        admin(),
        &[(Role::Tech, newcomer()), (Role::Billing, newcomer())],
    );
    let request = &opened.request;
    assert_eq!(request.requester(), admin());
    assert_eq!(request.incoming(), newcomer());
    assert_eq!(request.roles(), Role::Tech | Role::Billing);
    assert_eq!(request.outgoing(Role::Tech), Some(tech()));
    assert_eq!(request.outgoing(Role::Billing), Some(billing()));
    assert_eq!(request.outgoing(Role::Admin), None);
    assert_eq!(request.state().name(), StateName::ValidatingByCustomers);

    let done = fx.accept_all(&opened, at(1));
    let service = &done.changes.services[0].value;
    assert_eq!(
        service.contacts(),
        &Contacts::new(admin(), newcomer(), newcomer())
    );
}

#[test]
fn admin_may_take_tech_and_billing_themselves() {
    // R8b, R16
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, admin()), (Role::Billing, admin())]);
    let request = &opened.request;
    assert_eq!(request.incoming(), admin());
    assert_eq!(request.confirmers(), [admin()]);
    assert_eq!(request.missing_at(T0), [admin()]);
    assert_eq!(opened.transition.messages.len(), 1);
    assert_eq!(opened.transition.messages[0].to(), admin());
    assert_eq!(opened.transition.messages[0].other_party(), None);

    // One accept is enough.
    let done = fx
        .accept(request, admin(), opened.token(admin()), at(1))
        .unwrap();
    assert_eq!(updated(&done, request.id()).state().name(), StateName::Done);
    assert_eq!(done.changes.services.len(), 1);
    assert_eq!(
        done.changes.services[0].value.contacts(),
        &Contacts::new(admin(), admin(), admin())
    );
}

#[test]
fn admin_may_propose_another_admin() {
    // R8c
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Admin, newcomer())]);
    assert_eq!(opened.request.roles(), Roles::from(Role::Admin));
    assert_eq!(opened.request.confirmers(), [admin(), newcomer()]);
    let done = fx.accept_all(&opened, at(1));
    let service = &done.changes.services[0].value;
    assert_eq!(service.holder(Role::Admin), newcomer());
    assert_eq!(service.holder(Role::Tech), tech());
    assert_eq!(service.holder(Role::Billing), billing());
    assert_eq!(service.roles_of(admin()), Roles::EMPTY);
}

#[test]
fn tech_may_only_pass_on_tech() {
    // R9, R11
    let mut fx = Fixture::new();
    let proposable = fx
        .engine
        .proposable(fx.stored(&[]).snapshot(), tech(), &directory, T0);
    assert_eq!(proposable.allowed(), Roles::from(Role::Tech));

    for (role, incoming) in [
        (Role::Admin, newcomer()),
        (Role::Billing, newcomer()),
        // Not even taking the billing role themselves.
        (Role::Billing, tech()),
        (Role::Admin, tech()),
    ] {
        assert_eq!(
            fx.submit(tech(), &[(role, incoming)], &[], T0).unwrap_err(),
            SubmitError::NotPermitted {
                role,
                ask: Role::Admin
            }
        );
    }
    let opened = fx.open(tech(), &[(Role::Tech, newcomer())]);
    assert_eq!(opened.request.requester(), tech());
    assert_eq!(opened.request.outgoing(Role::Tech), Some(tech()));
    assert_eq!(opened.request.confirmers(), [tech(), newcomer()]);
}

#[test]
fn billing_may_only_pass_on_billing() {
    // R10, R11
    let mut fx = Fixture::new();
    let proposable = fx
        .engine
        .proposable(fx.stored(&[]).snapshot(), billing(), &directory, T0);
    assert_eq!(proposable.allowed(), Roles::from(Role::Billing));
    for (role, incoming) in [
        (Role::Admin, newcomer()),
        (Role::Tech, newcomer()),
        (Role::Tech, billing()),
    ] {
        assert_eq!(
            fx.submit(billing(), &[(role, incoming)], &[], T0)
                .unwrap_err(),
            SubmitError::NotPermitted {
                role,
                ask: Role::Admin
            }
        );
    }
    let opened = fx.open(billing(), &[(Role::Billing, newcomer())]);
    assert_eq!(opened.request.roles(), Roles::from(Role::Billing));
    assert_eq!(opened.request.confirmers(), [billing(), newcomer()]);
}

#[test]
fn several_roles_give_the_union_of_their_rights() {
    // R9, R10: one customer holding tech and billing may pass on both.
    let mut fx = Fixture::with(
        Config::default(),
        service_with(Contacts::new(admin(), tech(), tech())),
    );
    let proposable = fx
        .engine
        .proposable(fx.stored(&[]).snapshot(), tech(), &directory, T0);
    assert_eq!(proposable.allowed(), Role::Tech | Role::Billing);
    let opened = fx.open(
        tech(),
        &[(Role::Tech, newcomer()), (Role::Billing, newcomer())],
    );
    assert_eq!(opened.request.roles(), Role::Tech | Role::Billing);
    assert_eq!(
        fx.submit(tech(), &[(Role::Admin, newcomer())], &[], T0)
            .unwrap_err(),
        SubmitError::NotPermitted {
            role: Role::Admin,
            ask: Role::Admin
        }
    );
}

#[test]
fn a_non_contact_is_refused_and_told_to_ask_the_admin() {
    // R11
    let mut fx = Fixture::new();
    let proposable = fx
        .engine
        .proposable(fx.stored(&[]).snapshot(), stranger(), &directory, T0);
    assert_eq!(proposable.allowed(), Roles::EMPTY);
    for role in Role::ALL {
        assert_eq!(
            proposable.check(role),
            Err(Blocked::NotPermitted { ask: Role::Admin })
        );
        for incoming in [newcomer(), stranger()] {
            let err = fx
                .submit(stranger(), &[(role, incoming)], &[], T0)
                .unwrap_err();
            assert_eq!(
                err,
                SubmitError::NotPermitted {
                    role,
                    ask: Role::Admin
                }
            );
            assert!(err.to_string().contains("ask the admin contact"), "{err}");
        }
    }
}

// ----- R12 to R15: what a proposal must satisfy -----

#[test]
fn a_proposal_that_changes_nothing_is_refused() {
    // R12
    let mut fx = Fixture::new();
    let all_current = [
        (Role::Admin, admin()),
        (Role::Tech, tech()),
        (Role::Billing, billing()),
    ];
    for actor in [admin(), tech(), billing(), stranger()] {
        assert_eq!(
            fx.submit(actor, &all_current, &[], T0).unwrap_err(),
            SubmitError::NoChange
        );
        assert_eq!(
            fx.submit(actor, &[(Role::Tech, tech())], &[], T0)
                .unwrap_err(),
            SubmitError::NoChange
        );
    }
    assert_eq!(
        fx.submit(admin(), &[], &[], T0).unwrap_err(),
        SubmitError::EmptyEdit
    );
}

#[test]
fn unchanged_roles_of_a_multi_role_edit_are_dropped() {
    // R12: a form may send all three contacts back.
    let mut fx = Fixture::new();
    // The tech contact may not change the admin or billing roles, but naming
    // their current holders changes nothing.
    let opened = fx.open(
        tech(),
        &[
            (Role::Admin, admin()),
            (Role::Tech, newcomer()),
            (Role::Billing, billing()),
        ],
    );
    assert_eq!(opened.request.roles(), Roles::from(Role::Tech));
    assert_eq!(opened.request.outgoing(Role::Admin), None);
    assert_eq!(opened.request.outgoing(Role::Billing), None);
}

#[test]
fn an_unknown_incoming_customer_is_refused() {
    // R13
    let mut fx = Fixture::new();
    for role in Role::ALL {
        assert_eq!(
            fx.submit(admin(), &[(role, ghost())], &[], T0).unwrap_err(),
            SubmitError::UnknownCustomer { customer: ghost() }
        );
    }
    assert_eq!(
        fx.submit(tech(), &[(Role::Tech, ghost())], &[], T0)
            .unwrap_err(),
        SubmitError::UnknownCustomer { customer: ghost() }
    );
}

#[test]
fn billing_needs_both_billing_contacts_in_good_standing() {
    // R14
    let mut fx = Fixture::new();
    // The incoming billing contact is behind.
    for actor in [admin(), billing()] {
        assert_eq!(
            fx.submit(actor, &[(Role::Billing, debtor())], &[], T0)
                .unwrap_err(),
            SubmitError::NotInGoodStanding { customer: debtor() }
        );
    }
    // The rule does not apply to a tech-only change.
    let opened = fx.open(admin(), &[(Role::Tech, debtor())]);
    assert_eq!(opened.request.incoming(), debtor());

    // The outgoing billing contact is behind.
    let mut fx = Fixture::with(
        Config::default(),
        service_with(Contacts::new(admin(), tech(), debtor())),
    );
    for actor in [admin(), debtor()] {
        assert_eq!(
            fx.submit(actor, &[(Role::Billing, newcomer())], &[], T0)
                .unwrap_err(),
            SubmitError::NotInGoodStanding { customer: debtor() }
        );
    }
    // Still not for tech or admin.
    fx.open(admin(), &[(Role::Tech, newcomer())]);
    fx.open_at(admin(), &[(Role::Admin, second())], &[], T0);
}

#[test]
fn proposable_agrees_with_submit() {
    // R15, R11, R27: for every actor and role, unlocked and locked.
    let mut fx = Fixture::new();
    let tech_request = fx.open(admin(), &[(Role::Tech, newcomer())]).request;
    for open in [Vec::new(), vec![tech_request.clone()]] {
        for actor in [admin(), tech(), billing(), stranger(), newcomer()] {
            let proposable =
                fx.engine
                    .proposable(fx.stored(&open).snapshot(), actor, &directory, at(1));
            for role in Role::ALL {
                let submitted = fx.submit(actor, &[(role, second())], &open, at(1));
                match proposable.check(role) {
                    Ok(()) => assert!(submitted.is_ok(), "{actor} {role}: {submitted:?}"),
                    Err(blocked) => {
                        assert_eq!(submitted.unwrap_err(), SubmitError::from((role, blocked)));
                    }
                }
            }
        }
    }
    // The answers themselves.
    let open = [tech_request.clone()];
    let by_admin = fx
        .engine
        .proposable(fx.stored(&open).snapshot(), admin(), &directory, at(1));
    assert_eq!(
        by_admin.check(Role::Tech),
        Err(Blocked::Locked {
            open: tech_request.id()
        })
    );
    assert_eq!(by_admin.allowed(), Role::Admin | Role::Billing);
    let by_tech = fx
        .engine
        .proposable(fx.stored(&open).snapshot(), tech(), &directory, at(1));
    assert_eq!(
        by_tech.check(Role::Tech),
        Err(Blocked::Locked {
            open: tech_request.id()
        })
    );
    assert_eq!(
        by_tech.check(Role::Admin),
        Err(Blocked::NotPermitted { ask: Role::Admin })
    );
}

#[test]
fn proposable_greys_out_billing_when_the_billing_contact_is_behind() {
    // R15, R14: the billing role cannot change hands while its holder is
    // behind with payments, and `proposable` says so before anyone is named.
    let fx = Fixture::with(
        Config::default(),
        Service::new(
            name("example.com"),
            Contacts::new(admin(), tech(), debtor()),
            Version::new(3),
        ),
    );
    let proposable = fx
        .engine
        .proposable(fx.stored(&[]).snapshot(), admin(), &directory, T0);
    assert_eq!(
        proposable.check(Role::Billing),
        Err(Blocked::NotInGoodStanding { customer: debtor() })
    );
    assert_eq!(proposable.allowed(), Role::Admin | Role::Tech);
    let mut fx = fx;
    let submitted = fx.submit(admin(), &[(Role::Billing, second())], &[], T0);
    assert_eq!(
        submitted.unwrap_err(),
        SubmitError::NotInGoodStanding { customer: debtor() }
    );
}

#[test]
fn the_engine_asks_only_about_the_accounts_it_names() {
    // R13, R14, R30: a host may look up `accounts_to_check` first and pass a map.
    let mut fx = Fixture::new();
    let edit = edit_of(
        &fx.service,
        &[
            (Role::Admin, second()),
            (Role::Tech, newcomer()),
            (Role::Billing, newcomer()),
        ],
    );
    let named = edit.accounts_to_check(&fx.service);
    assert_eq!(named, [second(), newcomer(), billing()]);
    let asked = RefCell::new(Vec::new());
    let spy = |customer: CustomerId| {
        asked.borrow_mut().push(customer);
        directory(customer)
    };
    let snapshot = Snapshot {
        service: &fx.service,
        requests: &[],
    };
    let opened = fx
        .engine
        .submit(&edit, admin(), snapshot, &spy, T0, &mut fx.rng)
        .unwrap();
    assert!(!asked.borrow().is_empty());
    assert!(
        asked.borrow().iter().all(|c| named.contains(c)),
        "{asked:?}"
    );

    // The billing request, applied with a map of just the accounts it names.
    let request = opened
        .requests()
        .find(|r| r.roles().contains(Role::Billing))
        .unwrap()
        .clone();
    let named = request.accounts_to_check();
    assert_eq!(named, [newcomer(), billing()]);
    let map: HashMap<CustomerId, AccountStatus> =
        named.iter().map(|c| (*c, directory(*c))).collect();
    let tokens = tokens_of(&opened, request.id());
    let step = fx
        .engine
        .accept(
            &request,
            admin(),
            &tokens[&admin()],
            at(1),
            Some(fx.applying(&request, &[]).snapshot()),
            &map,
        )
        .unwrap();
    let request = updated(&step, request.id());
    asked.borrow_mut().clear();
    let done = fx
        .engine
        .accept(
            &request,
            newcomer(),
            &tokens[&newcomer()],
            at(2),
            Some(fx.applying(&request, &[]).snapshot()),
            &spy,
        )
        .unwrap();
    assert!(
        asked.borrow().iter().all(|c| named.contains(c)),
        "{asked:?}"
    );
    assert_eq!(updated(&done, request.id()).state().name(), StateName::Done);
}

// ----- R16 to R21: confirmation -----

#[test]
fn a_request_needs_the_requester_and_the_incoming_contact() {
    // R16
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let request = &opened.request;
    assert_eq!(request.confirmers(), [admin(), newcomer()]);
    assert_eq!(request.missing_at(T0), [admin(), newcomer()]);
    let recipients: HashSet<CustomerId> =
        opened.transition.messages.iter().map(Message::to).collect();
    assert_eq!(recipients, HashSet::from([admin(), newcomer()]));

    // One accept does not apply.
    let step = fx
        .accept(request, newcomer(), opened.token(newcomer()), at(1))
        .unwrap();
    assert!(step.changes.services.is_empty());
    assert!(step.messages.is_empty());
    assert_eq!(
        updated(&step, request.id()).state().name(),
        StateName::ValidatingByCustomers
    );
}

#[test]
fn the_outgoing_contact_is_not_asked_and_is_told_once_replaced() {
    // R17, R38
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let request = &opened.request;
    assert!(!request.confirmers().contains(&tech()));
    assert!(opened.transition.messages.iter().all(|m| m.to() != tech()));
    // Not asked: they cannot accept, refuse or have it sent again.
    invalid_token(fx.accept(request, tech(), opened.token(admin()), at(1)));
    invalid_token(fx.refuse(request, tech(), opened.token(newcomer()), at(1)));
    assert_eq!(
        fx.resend(request, tech(), at(10)).unwrap_err(),
        ActError::NotAConfirmer
    );

    let done = fx.accept_all(&opened, at(1));
    let applied = told(&done, request.id(), |k| matches!(k, MessageKind::Applied));
    assert_eq!(applied, [admin(), newcomer()]);
    let replaced: Vec<&Message> = done
        .messages
        .iter()
        .filter(|m| matches!(m.kind(), MessageKind::Replaced))
        .collect();
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0].to(), tech());
    assert_eq!(replaced[0].roles(), Roles::from(Role::Tech));
    assert_eq!(replaced[0].service(), &name("example.com"));
    assert_eq!(replaced[0].incoming(), Some(newcomer()));
    assert_eq!(done.messages.len(), 3);
}

#[test]
fn an_outgoing_contact_is_told_once_with_every_role_lost() {
    // R38
    let mut fx = Fixture::with(
        Config::default(),
        service_with(Contacts::new(admin(), tech(), tech())),
    );
    let opened = fx.open(
        admin(),
        &[(Role::Tech, newcomer()), (Role::Billing, newcomer())],
    );
    let done = fx.accept_all(&opened, at(1));
    let replaced: Vec<&Message> = done
        .messages
        .iter()
        .filter(|m| matches!(m.kind(), MessageKind::Replaced))
        .collect();
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0].to(), tech());
    assert_eq!(replaced[0].roles(), Role::Tech | Role::Billing);

    // An outgoing contact who is a confirmer is told "applied", not "replaced".
    let mut fx = Fixture::new();
    let opened = fx.open(tech(), &[(Role::Tech, newcomer())]);
    let done = fx.accept_all(&opened, at(1));
    assert!(
        done.messages
            .iter()
            .all(|m| matches!(m.kind(), MessageKind::Applied))
    );
    assert_eq!(
        told(&done, opened.request.id(), |_| true),
        [tech(), newcomer()]
    );
}

#[test]
fn each_confirmer_gets_their_own_token() {
    // R18, R36, R40
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let request = &opened.request;
    let messages = &opened.transition.messages;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].to(), admin());
    assert_eq!(messages[1].to(), newcomer());
    let mine = opened.token(admin());
    let theirs = opened.token(newcomer());
    assert_ne!(mine, theirs);
    for message in messages {
        // Everything a host needs for a pre-filling link.
        assert_eq!(message.request(), Some(request.id()));
        let token = message.token().expect("a confirmation request").reveal();
        assert_eq!(token.len(), 43);
        assert!(
            token
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        // The stored digest is the recipient's token and no one else's.
        let ConfirmerStatus::Pending {
            digest: Some(digest),
            failed_attempts: 0,
        } = status_of(request, message.to())
        else {
            panic!("a fresh pending confirmer");
        };
        assert!(digest.verify(&token));
        let other = if message.to() == admin() {
            theirs
        } else {
            mine
        };
        assert!(!digest.verify(other));
    }
    // Single use: the requester's token works once.
    let step = fx.accept(request, admin(), mine, at(1)).unwrap();
    let request = updated(&step, request.id());
    invalid_token(fx.accept(&request, admin(), mine, at(2)));
}

#[test]
fn the_request_shows_who_is_still_missing() {
    // R19
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    assert_eq!(opened.request.missing_at(T0), [admin(), newcomer()]);
    let step = fx
        .accept(&opened.request, admin(), opened.token(admin()), at(1))
        .unwrap();
    let request = updated(&step, opened.request.id());
    assert_eq!(request.missing_at(at(1)), [newcomer()]);
    assert!(matches!(
        status_of(&request, admin()),
        ConfirmerStatus::Confirmed { at: when } if when == at(1)
    ));

    // The other order.
    let step = fx
        .accept(&opened.request, newcomer(), opened.token(newcomer()), at(1))
        .unwrap();
    assert_eq!(
        updated(&step, opened.request.id()).missing_at(at(1)),
        [admin()]
    );
}

#[test]
fn the_last_accept_applies_the_change() {
    // R20, R31
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let id = opened.request.id();
    let step = fx
        .accept(&opened.request, newcomer(), opened.token(newcomer()), at(1))
        .unwrap();
    let request = updated(&step, id);
    let done = fx
        .accept(&request, admin(), opened.token(admin()), at(2))
        .unwrap();

    assert_eq!(done.changes.services.len(), 1);
    let write = &done.changes.services[0];
    assert_eq!(write.expected, Some(Version::new(3)));
    assert_eq!(write.value.version(), Version::new(4));
    assert_eq!(write.value.name(), &name("example.com"));
    assert_eq!(
        write.value.contacts(),
        &Contacts::new(admin(), newcomer(), billing())
    );

    assert_eq!(done.changes.requests.len(), 1);
    let applied = updated(&done, id);
    assert_eq!(applied.state(), &RequestState::Applied { at: at(2) });
    assert_eq!(applied.state().name(), StateName::Done);
    assert_eq!(applied.state().name().as_str(), "done");
    assert!(applied.missing_at(at(2)).is_empty());
    assert_eq!(
        told(&done, id, |k| matches!(k, MessageKind::Applied)),
        [admin(), newcomer()]
    );
}

#[test]
fn a_refusal_ends_the_request_and_changes_nothing() {
    // R21, R39, R34
    let mut fx = Fixture::new();
    for refuser in [admin(), newcomer()] {
        let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
        let id = opened.request.id();
        let refused = fx
            .refuse(&opened.request, refuser, opened.token(refuser), at(1))
            .unwrap();
        assert!(refused.changes.services.is_empty());
        assert_eq!(refused.changes.requests.len(), 1);
        let request = updated(&refused, id);
        assert_eq!(
            request.state(),
            &RequestState::Refused {
                by: refuser,
                at: at(1)
            }
        );
        assert_eq!(request.state().name(), StateName::Refused);
        assert_eq!(
            last_event(&request),
            (at(1), Some(refuser), EventKind::Refused)
        );
        assert_eq!(
            told(
                &refused,
                id,
                |k| matches!(k, MessageKind::Refused { by } if *by == refuser)
            ),
            [admin(), newcomer()]
        );
        assert_eq!(refused.messages.len(), 2);
    }

    // The other confirmer may refuse after one has accepted.
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let step = fx
        .accept(&opened.request, admin(), opened.token(admin()), at(1))
        .unwrap();
    let request = updated(&step, opened.request.id());
    let refused = fx
        .refuse(&request, newcomer(), opened.token(newcomer()), at(2))
        .unwrap();
    assert!(refused.changes.services.is_empty());
    assert_eq!(
        updated(&refused, request.id()).state().name(),
        StateName::Refused
    );
}

// ----- R22 to R26: resending and tokens -----

#[test]
fn a_resend_gives_new_tokens_to_the_missing_confirmers_only() {
    // R22, R23, R37
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let id = opened.request.id();
    let step = fx
        .accept(&opened.request, admin(), opened.token(admin()), at(1))
        .unwrap();
    let request = updated(&step, id);

    // The admin, who has confirmed, may ask for it: it goes to the newcomer.
    let resent = fx.resend(&request, admin(), at(10)).unwrap();
    assert_eq!(resent.messages.len(), 1);
    let message = &resent.messages[0];
    assert_eq!(message.to(), newcomer());
    assert!(matches!(
        message.kind(),
        MessageKind::ConfirmationRequested { resent: true, deadline, .. }
            if *deadline == request.deadline()
    ));
    assert!(resent.changes.services.is_empty());
    let fresh = tokens_of(&resent, id)[&newcomer()].clone();
    assert_ne!(fresh, opened.token(newcomer()));
    let request = updated(&resent, id);
    assert!(matches!(
        status_of(&request, admin()),
        ConfirmerStatus::Confirmed { .. }
    ));

    // The old token no longer works; the new one does.
    let rejection =
        invalid_token(fx.accept(&request, newcomer(), opened.token(newcomer()), at(11)));
    let request = recorded(&rejection);
    let done = fx.accept(&request, newcomer(), &fresh, at(12)).unwrap();
    assert_eq!(updated(&done, id).state().name(), StateName::Done);
}

#[test]
fn a_resend_to_both_confirmers_rotates_both_tokens() {
    // R23, R37
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let id = opened.request.id();
    let resent = fx.resend(&opened.request, newcomer(), at(5)).unwrap();
    let fresh = tokens_of(&resent, id);
    assert_eq!(fresh.len(), 2);
    assert_ne!(fresh[&admin()], fresh[&newcomer()]);
    for who in [admin(), newcomer()] {
        assert_ne!(fresh[&who], opened.token(who));
    }
    let request = updated(&resent, id);
    if let RequestState::Awaiting(awaiting) = request.state() {
        assert_eq!(awaiting.last_sent(), at(5));
    } else {
        panic!("still awaiting");
    }
    invalid_token(fx.refuse(&request, admin(), opened.token(admin()), at(6)));
    let refused = fx
        .refuse(&request, admin(), &fresh[&admin()], at(6))
        .unwrap();
    assert_eq!(updated(&refused, id).state().name(), StateName::Refused);
}

#[test]
fn resends_are_rate_limited() {
    // R23
    let mut fx = Fixture::new();
    let interval = fx.engine.config().resend_interval();
    assert_eq!(interval, Duration::minutes(5));
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let request = opened.request.clone();
    assert_eq!(
        fx.resend(&request, admin(), T0).unwrap_err(),
        ActError::TooSoon { retry_at: at(5) }
    );
    assert_eq!(
        fx.resend(&request, newcomer(), at(4)).unwrap_err(),
        ActError::TooSoon { retry_at: at(5) }
    );
    let resent = fx.resend(&request, newcomer(), at(5)).unwrap();
    let request = updated(&resent, request.id());
    // The interval counts from the last sending, whoever asks.
    assert_eq!(
        fx.resend(&request, admin(), at(6)).unwrap_err(),
        ActError::TooSoon { retry_at: at(10) }
    );
    assert!(fx.resend(&request, admin(), at(10)).is_ok());

    // The interval is configurable.
    let mut fx = Fixture::with(
        Config::new(Duration::days(7), Duration::hours(1), 5).unwrap(),
        example(),
    );
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    assert_eq!(
        fx.resend(&opened.request, admin(), at(59)).unwrap_err(),
        ActError::TooSoon { retry_at: at(60) }
    );
    assert!(fx.resend(&opened.request, admin(), at(60)).is_ok());
}

#[test]
fn only_a_confirmer_may_ask_for_a_resend() {
    // R22
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    for actor in [tech(), billing(), stranger()] {
        assert_eq!(
            fx.resend(&opened.request, actor, at(10)).unwrap_err(),
            ActError::NotAConfirmer
        );
    }
}

#[test]
fn a_token_works_only_for_its_own_customer() {
    // R24
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let leaked = opened.token(newcomer());
    for actor in [admin(), tech(), billing(), stranger()] {
        invalid_token(fx.accept(&opened.request, actor, leaked, at(1)));
        invalid_token(fx.refuse(&opened.request, actor, leaked, at(1)));
    }
    // The owner can still use it.
    assert!(
        fx.accept(&opened.request, newcomer(), leaked, at(1))
            .is_ok()
    );
}

#[test]
fn every_token_failure_is_the_same_error() {
    // R25
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let id = opened.request.id();
    let admins = opened.token(admin()).to_owned();
    let newcomers = opened.token(newcomer()).to_owned();

    // The admin has used their token; a resend rotated the newcomer's.
    let step = fx.accept(&opened.request, admin(), &admins, at(1)).unwrap();
    let request = updated(&step, id);
    let resent = fx.resend(&request, newcomer(), at(10)).unwrap();
    let request = updated(&resent, id);

    let mut last_char_changed = newcomers.clone();
    last_char_changed.pop();
    last_char_changed.push(if newcomers.ends_with('A') { 'B' } else { 'A' });
    let cases: Vec<(&str, CustomerId, String)> = vec![
        ("wrong", newcomer(), forged()),
        ("used", admin(), admins.clone()),
        ("rotated", newcomer(), newcomers.clone()),
        (
            "other party's",
            admin(),
            tokens_of(&resent, id)[&newcomer()].clone(),
        ),
        (
            "actor not a party",
            stranger(),
            tokens_of(&resent, id)[&newcomer()].clone(),
        ),
        (
            "outgoing, not a confirmer",
            tech(),
            tokens_of(&resent, id)[&newcomer()].clone(),
        ),
        ("empty", newcomer(), String::new()),
        ("one character", newcomer(), "x".to_owned()),
        ("one short", newcomer(), newcomers[..42].to_owned()),
        ("one long", newcomer(), format!("{newcomers}A")),
        ("trailing space", newcomer(), format!("{newcomers} ")),
        ("last character changed", newcomer(), last_char_changed),
        ("upper case", newcomer(), newcomers.to_uppercase()),
        ("non-ASCII", newcomer(), "é".repeat(43)),
        (
            "non-ASCII, 43 bytes",
            newcomer(),
            format!("{}é", &newcomers[..41]),
        ),
        ("emoji", newcomer(), "🔑".repeat(11)),
        ("NUL bytes", newcomer(), "\0".repeat(43)),
        ("very long", newcomer(), "A".repeat(100_000)),
        ("padding", newcomer(), format!("{newcomers}=")),
    ];
    for (case, actor, token) in &cases {
        let accepted = fx.accept(&request, *actor, token, at(11));
        let refused = fx.refuse(&request, *actor, token, at(11));
        for result in [accepted, refused] {
            let rejection = result.expect_err(case);
            assert_eq!(rejection.error, ActError::InvalidToken, "{case}");
            assert_eq!(rejection.to_string(), "invalid token", "{case}");
        }
    }
}

#[test]
fn too_many_failed_attempts_invalidate_the_token() {
    // R26, R34, R31
    let config = Config::new(Duration::days(7), Duration::minutes(5), 3).unwrap();
    let mut fx = Fixture::with(config, example());
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let id = opened.request.id();
    let right = opened.token(newcomer()).to_owned();
    let mut request = opened.request.clone();
    for attempt in 1..=3_u32 {
        let now = at(i64::from(attempt));
        let rejection = invalid_token(fx.accept(&request, newcomer(), "guess", now));
        let write = &rejection.record.as_ref().unwrap().requests[0];
        assert_eq!(write.expected, Some(request.version()));
        let next = recorded(&rejection);
        assert!(next.version() > request.version());
        assert_eq!(next.state().name(), StateName::ValidatingByCustomers);
        let expected_digest = attempt < 3;
        match status_of(&next, newcomer()) {
            ConfirmerStatus::Pending {
                digest,
                failed_attempts,
            } => {
                assert_eq!(failed_attempts, attempt);
                assert_eq!(digest.is_some(), expected_digest, "attempt {attempt}");
            }
            ConfirmerStatus::Confirmed { .. } => panic!("not confirmed"),
        }
        let new_events: Vec<_> = next.history()[request.history().len()..]
            .iter()
            .map(|e| (e.at(), e.customer(), e.kind().clone()))
            .collect();
        let mut expected = vec![(now, Some(newcomer()), EventKind::FailedAttempt)];
        if attempt == 3 {
            expected.push((
                now,
                Some(newcomer()),
                EventKind::TokenInvalidated { of: newcomer() },
            ));
        }
        assert_eq!(new_events, expected);
        request = next;
    }

    // Even the right token fails now, for accepting and refusing.
    invalid_token(fx.accept(&request, newcomer(), &right, at(4)));
    invalid_token(fx.refuse(&request, newcomer(), &right, at(4)));
    // The request is not destroyed: the admin can still confirm.
    let step = fx
        .accept(&request, admin(), opened.token(admin()), at(4))
        .unwrap();
    let request = updated(&step, id);
    // A resend restores the newcomer's confirmation.
    let resent = fx.resend(&request, newcomer(), at(10)).unwrap();
    let fresh = tokens_of(&resent, id)[&newcomer()].clone();
    let request = updated(&resent, id);
    assert!(matches!(
        status_of(&request, newcomer()),
        ConfirmerStatus::Pending {
            digest: Some(_),
            failed_attempts: 0
        }
    ));
    let done = fx.accept(&request, newcomer(), &fresh, at(11)).unwrap();
    assert_eq!(updated(&done, id).state().name(), StateName::Done);
}

#[test]
fn failed_attempts_below_the_limit_leave_the_token_working() {
    // R26
    let mut fx = Fixture::new();
    assert_eq!(fx.engine.config().max_failed_attempts(), 5);
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let mut request = opened.request.clone();
    // Wrong tokens count whether they come to accept or to refuse.
    for minute in 1..=4 {
        let result = if minute % 2 == 0 {
            fx.refuse(&request, newcomer(), &forged(), at(minute))
        } else {
            fx.accept(&request, newcomer(), &forged(), at(minute))
        };
        request = recorded(&invalid_token(result));
    }
    assert!(matches!(
        status_of(&request, newcomer()),
        ConfirmerStatus::Pending {
            digest: Some(_),
            failed_attempts: 4
        }
    ));
    // Failures of one confirmer do not count against the other.
    assert!(matches!(
        status_of(&request, admin()),
        ConfirmerStatus::Pending {
            digest: Some(_),
            failed_attempts: 0
        }
    ));
    assert!(
        fx.accept(&request, newcomer(), opened.token(newcomer()), at(5))
            .is_ok()
    );
    // Someone who is not a confirmer is not counted (nothing to record).
    let rejection = invalid_token(fx.accept(&request, stranger(), &forged(), at(5)));
    assert!(rejection.record.is_none());
}

// ----- R27 to R35: life of a request -----

#[test]
fn a_second_request_on_a_role_with_an_open_request_names_it() {
    // R27
    let mut fx = Fixture::new();
    let open = [fx.open(admin(), &[(Role::Tech, newcomer())]).request];
    let conflict = SubmitError::Conflict {
        role: Role::Tech,
        open: open[0].id(),
    };
    assert_eq!(
        fx.submit(admin(), &[(Role::Tech, second())], &open, at(1))
            .unwrap_err(),
        conflict
    );
    assert_eq!(
        fx.submit(tech(), &[(Role::Tech, second())], &open, at(1))
            .unwrap_err(),
        conflict
    );
    assert_eq!(
        fx.submit(
            admin(),
            &[(Role::Admin, second()), (Role::Tech, second())],
            &open,
            at(1)
        )
        .unwrap_err(),
        conflict
    );
    assert!(conflict.to_string().contains(&open[0].id().to_string()));
    // Other roles are free.
    let billing_request = fx.open_at(admin(), &[(Role::Billing, second())], &open, at(1));
    assert_eq!(billing_request.request.roles(), Roles::from(Role::Billing));
}

#[test]
fn a_request_past_its_deadline_does_not_block() {
    // R27, R29
    let mut fx = Fixture::new();
    let open = [fx.open(admin(), &[(Role::Tech, newcomer())]).request];
    let deadline = open[0].deadline();
    let proposable =
        fx.engine
            .proposable(fx.stored(&open).snapshot(), admin(), &directory, deadline);
    assert_eq!(proposable.check(Role::Tech), Ok(()));
    // Taking the role records the due request's expiry in the same
    // transition, with the news to its confirmers (R29, R39).
    let taken = fx
        .submit(admin(), &[(Role::Tech, second())], &open, deadline)
        .unwrap();
    assert_eq!(taken.changes.requests.len(), 2);
    let expired = updated(&taken, open[0].id());
    assert_eq!(expired.state(), &RequestState::Expired { at: deadline });
    assert_eq!(taken.changes.requests[1].expected, Some(open[0].version()));
    assert_eq!(
        told(&taken, open[0].id(), |k| matches!(k, MessageKind::Expired)),
        [admin(), newcomer()]
    );
    let opened = taken.changes.requests[0].value.clone();
    assert_eq!(opened.incoming(), second());
    let service = &taken.changes.services[0].value;
    assert_eq!(service.last_request(Role::Tech), Some(opened.id()));
    // One second earlier it still blocks.
    let just_before = deadline - Duration::seconds(1);
    assert!(matches!(
        fx.submit(admin(), &[(Role::Tech, second())], &open, just_before),
        Err(SubmitError::Conflict { .. })
    ));
}

#[test]
fn the_requester_may_cancel() {
    // R28, R39, R34
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let request = &opened.request;
    for actor in [newcomer(), tech(), stranger()] {
        assert_eq!(
            fx.engine.cancel(request, actor, at(1)).unwrap_err(),
            ActError::NotRequester
        );
    }
    let cancelled = fx.engine.cancel(request, admin(), at(1)).unwrap();
    assert!(cancelled.changes.services.is_empty());
    let after = updated(&cancelled, request.id());
    assert_eq!(
        after.state(),
        &RequestState::Cancelled {
            by: Actor::Customer(admin()),
            at: at(1)
        }
    );
    assert_eq!(after.state().name(), StateName::Aborted);
    assert_eq!(after.state().name().as_str(), "aborted");
    assert_eq!(
        last_event(&after),
        (at(1), Some(admin()), EventKind::Cancelled)
    );
    assert_eq!(
        told(&cancelled, request.id(), |k| matches!(
            k,
            MessageKind::Cancelled { by } if *by == Actor::Customer(admin())
        )),
        [admin(), newcomer()]
    );
    assert_eq!(cancelled.messages.len(), 2);
}

#[test]
fn a_request_expires_seven_days_after_it_was_opened() {
    // R29, R39, R34
    let mut fx = Fixture::new();
    assert_eq!(Config::default().request_lifetime(), Duration::days(7));
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let request = &opened.request;
    let deadline = request.deadline();
    assert_eq!(deadline, T0 + Duration::days(7));
    let just_before = deadline - Duration::seconds(1);

    assert!(!request.is_due(just_before));
    assert_eq!(
        request.state_name_at(just_before),
        StateName::ValidatingByCustomers
    );
    assert!(
        fx.accept(request, admin(), opened.token(admin()), just_before)
            .is_ok()
    );
    assert_eq!(
        fx.engine.expire(request, just_before).unwrap_err(),
        ActError::NotDue { deadline }
    );

    // From the deadline on, every operation says expired.
    let expired = ActError::Closed {
        state: StateName::Expired,
    };
    assert!(request.is_due(deadline));
    assert_eq!(request.state_name_at(deadline), StateName::Expired);
    assert!(request.missing_at(deadline).is_empty());
    for who in [admin(), newcomer()] {
        let rejection = fx
            .accept(request, who, opened.token(who), deadline)
            .unwrap_err();
        assert_eq!(rejection.error, expired);
        assert!(rejection.record.is_none());
        let rejection = fx
            .refuse(request, who, opened.token(who), deadline)
            .unwrap_err();
        assert_eq!(rejection.error, expired);
        assert_eq!(fx.resend(request, who, deadline).unwrap_err(), expired);
    }
    assert_eq!(
        fx.engine.cancel(request, admin(), deadline).unwrap_err(),
        expired
    );

    // The host records it.
    let later = deadline + Duration::hours(1);
    let recorded = fx.engine.expire(request, later).unwrap();
    assert!(recorded.changes.services.is_empty());
    assert_eq!(
        recorded.changes.requests[0].expected,
        Some(request.version())
    );
    let after = updated(&recorded, request.id());
    assert_eq!(after.state(), &RequestState::Expired { at: later });
    assert_eq!(after.state().name().as_str(), "expired");
    assert!(!after.is_due(later));
    assert_eq!(last_event(&after), (later, None, EventKind::Expired));
    assert_eq!(
        told(&recorded, request.id(), |k| matches!(
            k,
            MessageKind::Expired
        )),
        [admin(), newcomer()]
    );
    assert_eq!(recorded.messages.len(), 2);
}

#[test]
fn the_request_lifetime_is_configurable() {
    // R29
    let mut fx = Fixture::with(
        Config::new(Duration::hours(2), Duration::minutes(5), 5).unwrap(),
        example(),
    );
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    assert_eq!(opened.request.deadline(), at(120));
    assert!(matches!(
        opened.transition.messages[0].kind(),
        MessageKind::ConfirmationRequested { deadline, .. } if *deadline == at(120)
    ));
    let rejection = fx
        .accept(&opened.request, admin(), opened.token(admin()), at(120))
        .unwrap_err();
    assert_eq!(
        rejection.error,
        ActError::Closed {
            state: StateName::Expired
        }
    );
    assert!(fx.engine.expire(&opened.request, at(120)).is_ok());
}

/// Opens a billing change by the admin, has the admin confirm, then the
/// newcomer confirm against `service_now` and `accounts`: the check made again
/// at apply (R30) must fail it with `reason`.
fn assert_fails_at_apply(
    service_now: Option<&Service>,
    accounts: &impl Accounts,
    reason: &FailureReason,
) {
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Billing, newcomer())]);
    let id = opened.request.id();
    let step = fx
        .accept(&opened.request, admin(), opened.token(admin()), at(1))
        .unwrap();
    let request = updated(&step, id);
    // The service as it is now, naming the request as it does since it
    // was opened (R27); `None`: removed, read as its tombstone (R44).
    let service_now = match service_now {
        Some(service) => Service::restore(
            service.name().clone(),
            *service.contacts(),
            service.version(),
            [(Role::Billing, id)],
            false,
        ),
        None => fx.gone(&request).service,
    };
    let requests = [request.clone()];
    let snapshot = Some(Snapshot {
        service: &service_now,
        requests: &requests,
    });
    let failed = fx
        .engine
        .accept(
            &request,
            newcomer(),
            opened.token(newcomer()),
            at(2),
            snapshot,
            accounts,
        )
        .unwrap();
    // R30, R44: the contacts stay; the verdict writes the service at its
    // next version, so it cannot commit if the service changed meanwhile.
    assert_eq!(failed.changes.services.len(), 1, "{reason}");
    let write = &failed.changes.services[0];
    assert_eq!(write.expected, Some(service_now.version()));
    assert_eq!(write.value.contacts(), service_now.contacts(), "{reason}");
    assert_eq!(write.value.version(), service_now.version().next());
    assert_eq!(write.value.is_removed(), service_now.is_removed());
    assert_eq!(failed.changes.requests.len(), 1);
    assert_eq!(failed.changes.requests[0].expected, Some(request.version()));
    let after = updated(&failed, id);
    assert_eq!(
        after.state(),
        &RequestState::Failed {
            reason: reason.clone(),
            at: at(2)
        }
    );
    assert_eq!(after.state().name(), StateName::Error);
    assert_eq!(after.state().name().as_str(), "error");
    let events: Vec<_> = after.history()[request.history().len()..]
        .iter()
        .map(|e| (e.at(), e.customer(), e.kind().clone()))
        .collect();
    assert_eq!(
        events,
        [
            (at(2), Some(newcomer()), EventKind::Confirmed),
            (
                at(2),
                None,
                EventKind::Failed {
                    reason: reason.clone()
                }
            ),
        ]
    );
    assert_eq!(
        told(
            &failed,
            id,
            |k| matches!(k, MessageKind::Failed { reason: r } if r == reason)
        ),
        [admin(), newcomer()]
    );
    assert_eq!(failed.messages.len(), 2, "{reason}");
}

#[test]
fn apply_fails_when_the_requester_lost_the_right() {
    // R30, R39
    let service = service_with(Contacts::new(second(), tech(), billing()));
    assert_fails_at_apply(
        Some(&service),
        &directory,
        &FailureReason::RequesterLostRight {
            role: Role::Billing,
        },
    );
}

#[test]
fn apply_fails_when_the_outgoing_contact_changed() {
    // R30, R39
    let service = service_with(Contacts::new(admin(), tech(), second()));
    assert_fails_at_apply(
        Some(&service),
        &directory,
        &FailureReason::OutgoingChanged {
            role: Role::Billing,
        },
    );
}

#[test]
fn apply_fails_when_a_billing_contact_fell_behind() {
    // R30, R14, R39
    let outgoing_behind = |c: CustomerId| {
        if c == billing() {
            AccountStatus::BehindWithPayments
        } else {
            directory(c)
        }
    };
    assert_fails_at_apply(
        Some(&example()),
        &outgoing_behind,
        &FailureReason::NotInGoodStanding {
            customer: billing(),
        },
    );
    let incoming_behind = HashMap::from([
        (admin(), AccountStatus::GoodStanding),
        (billing(), AccountStatus::GoodStanding),
        (newcomer(), AccountStatus::BehindWithPayments),
    ]);
    assert_fails_at_apply(
        Some(&example()),
        &incoming_behind,
        &FailureReason::NotInGoodStanding {
            customer: newcomer(),
        },
    );
}

#[test]
fn apply_fails_when_the_service_is_gone() {
    // R30, R39, R44: read as its tombstone, which the verdict writes at its
    // next version.
    assert_fails_at_apply(None, &directory, &FailureReason::ServiceGone);
}

#[test]
fn a_service_read_as_missing_is_an_outdated_snapshot() {
    // R44: services are never deleted, so a request whose service reads as
    // missing was read after it: the last confirmation is not decided.
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let step = fx
        .accept(&opened.request, admin(), opened.token(admin()), at(1))
        .unwrap();
    let request = updated(&step, opened.request.id());
    let rejection = fx
        .engine
        .accept(
            &request,
            newcomer(),
            opened.token(newcomer()),
            at(2),
            None,
            &directory,
        )
        .unwrap_err();
    assert_eq!(rejection.error, ActError::SnapshotOutdated);
    assert!(rejection.record.is_none());
}

#[test]
fn apply_fails_when_the_incoming_account_is_gone() {
    // R30, R13, R39
    let gone = |c: CustomerId| {
        if c == newcomer() {
            AccountStatus::Unknown
        } else {
            directory(c)
        }
    };
    assert_fails_at_apply(Some(&example()), &gone, &FailureReason::IncomingUnknown);
}

#[test]
fn every_write_names_the_version_it_replaces() {
    // R31
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let id = opened.request.id();
    let created = &opened.transition.changes.requests[0];
    assert_eq!(created.expected, None);
    assert_eq!(created.value.version(), Version::FIRST);
    // Opening writes the service at its next version, so racing edits of
    // one service conflict in the store (R27).
    assert_eq!(
        opened.transition.changes.services[0].expected,
        Some(fx.service.version())
    );
    assert_eq!(
        opened.transition.changes.services[0].value.version(),
        fx.service.version().next()
    );

    let mut versions = vec![opened.request.version()];
    let step = fx
        .accept(&opened.request, admin(), opened.token(admin()), at(1))
        .unwrap();
    assert_eq!(step.changes.requests[0].expected, Some(Version::FIRST));
    let request = updated(&step, id);
    versions.push(request.version());

    let rejection = invalid_token(fx.accept(&request, newcomer(), "nope", at(2)));
    assert_eq!(
        rejection.record.as_ref().unwrap().requests[0].expected,
        Some(request.version())
    );
    let request = recorded(&rejection);
    versions.push(request.version());

    let done = fx
        .accept(&request, newcomer(), opened.token(newcomer()), at(3))
        .unwrap();
    assert_eq!(done.changes.requests[0].expected, Some(request.version()));
    versions.push(updated(&done, id).version());
    assert_eq!(
        done.changes.services[0].expected,
        Some(fx.service.version())
    );
    assert_eq!(
        done.changes.services[0].value.version(),
        fx.service.version().next()
    );
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert_eq!(versions.last(), Some(&Version::new(4)));
}

#[test]
fn an_admin_change_fails_the_old_admins_pending_requests() {
    // R32, R39: the old admin keeps the billing role, so only the request
    // that relied on the admin right fails.
    let mut fx = Fixture::with(
        Config::default(),
        service_with(Contacts::new(admin(), tech(), admin())),
    );
    let tech_request = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let billing_request = fx.open_at(
        admin(),
        &[(Role::Billing, stranger())],
        std::slice::from_ref(&tech_request.request),
        T0,
    );
    let mut open = vec![
        tech_request.request.clone(),
        billing_request.request.clone(),
    ];
    let admin_request = fx.open_at(admin(), &[(Role::Admin, second())], &open, T0);
    let id = admin_request.request.id();
    open.push(admin_request.request.clone());

    let step = fx
        .engine
        .accept(
            &admin_request.request,
            admin(),
            admin_request.token(admin()),
            at(1),
            Some(fx.stored(&open).snapshot()),
            &directory,
        )
        .unwrap();
    open[2] = updated(&step, id);
    let done = fx
        .engine
        .accept(
            &open[2],
            second(),
            admin_request.token(second()),
            at(2),
            Some(fx.stored(&open).snapshot()),
            &directory,
        )
        .unwrap();

    assert_eq!(done.changes.services.len(), 1);
    assert_eq!(done.changes.services[0].value.holder(Role::Admin), second());
    assert_eq!(updated(&done, id).state().name(), StateName::Done);
    assert_eq!(done.changes.requests.len(), 2);
    let reason = FailureReason::RightRemoved {
        role: Role::Tech,
        by: id,
    };
    let tech_id = tech_request.request.id();
    let write = done
        .changes
        .requests
        .iter()
        .find(|w| w.value.id() == tech_id)
        .expect("the old admin's tech request is written");
    assert_eq!(write.expected, Some(tech_request.request.version()));
    assert_eq!(
        write.value.state(),
        &RequestState::Failed {
            reason: reason.clone(),
            at: at(2)
        }
    );
    assert_eq!(
        last_event(&write.value),
        (
            at(2),
            None,
            EventKind::Failed {
                reason: reason.clone()
            }
        )
    );
    assert_eq!(
        told(
            &done,
            tech_id,
            |k| matches!(k, MessageKind::Failed { reason: r } if *r == reason)
        ),
        [admin(), newcomer()]
    );
    // The billing request still stands: its requester kept that right.
    assert!(done.request(billing_request.request.id()).is_none());
    assert!(told(&done, billing_request.request.id(), |_| true).is_empty());
}

#[test]
fn an_edit_with_two_incoming_customers_opens_two_requests() {
    // R33, R36
    let mut fx = Fixture::new();
    let opened = fx
        .submit(
            admin(),
            &[
                (Role::Tech, newcomer()),
                (Role::Billing, second()),
                (Role::Admin, newcomer()),
            ],
            &[],
            T0,
        )
        .unwrap();
    let requests: Vec<&ChangeRequest> = opened.requests().collect();
    assert_eq!(requests.len(), 2);
    assert!(opened.changes.requests.iter().all(|w| w.expected.is_none()));
    assert_ne!(requests[0].id(), requests[1].id());
    assert_eq!(requests[0].incoming(), newcomer());
    assert_eq!(requests[0].roles(), Role::Admin | Role::Tech);
    assert_eq!(requests[1].incoming(), second());
    assert_eq!(requests[1].roles(), Roles::from(Role::Billing));
    assert_eq!(opened.messages.len(), 4);
    let mut all_tokens = HashSet::new();
    for request in &requests {
        let tokens = tokens_of(&opened, request.id());
        assert_eq!(
            tokens.keys().copied().collect::<HashSet<_>>(),
            request.confirmers().into_iter().collect::<HashSet<_>>()
        );
        all_tokens.extend(tokens.into_values());
    }
    assert_eq!(all_tokens.len(), 4, "every token differs");
    // One customer for two roles: one request.
    let same = fx
        .submit(
            admin(),
            &[(Role::Tech, newcomer()), (Role::Billing, newcomer())],
            &[],
            T0,
        )
        .unwrap();
    assert_eq!(same.changes.requests.len(), 1);
}

#[test]
fn one_refused_part_opens_nothing() {
    // R33
    let mut fx = Fixture::new();
    assert_eq!(
        fx.submit(
            admin(),
            &[(Role::Tech, newcomer()), (Role::Billing, ghost())],
            &[],
            T0
        )
        .unwrap_err(),
        SubmitError::UnknownCustomer { customer: ghost() }
    );
    assert_eq!(
        fx.submit(
            admin(),
            &[(Role::Tech, newcomer()), (Role::Billing, debtor())],
            &[],
            T0
        )
        .unwrap_err(),
        SubmitError::NotInGoodStanding { customer: debtor() }
    );
    assert_eq!(
        fx.submit(
            tech(),
            &[(Role::Tech, newcomer()), (Role::Billing, second())],
            &[],
            T0
        )
        .unwrap_err(),
        SubmitError::NotPermitted {
            role: Role::Billing,
            ask: Role::Admin
        }
    );
    let open = [fx.open(admin(), &[(Role::Billing, stranger())]).request];
    assert_eq!(
        fx.submit(
            admin(),
            &[(Role::Tech, newcomer()), (Role::Billing, second())],
            &open,
            at(1)
        )
        .unwrap_err(),
        SubmitError::Conflict {
            role: Role::Billing,
            open: open[0].id()
        }
    );
}

#[test]
fn the_history_records_each_step_with_its_time_and_actor() {
    // R34
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let id = opened.request.id();
    let rejection = invalid_token(fx.accept(&opened.request, newcomer(), &forged(), at(1)));
    let request = recorded(&rejection);
    let resent = fx.resend(&request, newcomer(), at(10)).unwrap();
    let fresh = tokens_of(&resent, id);
    let request = updated(&resent, id);
    let step = fx
        .accept(&request, admin(), &fresh[&admin()], at(11))
        .unwrap();
    let request = updated(&step, id);
    let done = fx
        .accept(&request, newcomer(), &fresh[&newcomer()], at(12))
        .unwrap();
    let request = updated(&done, id);

    let history: Vec<_> = request
        .history()
        .iter()
        .map(|e| (e.at(), e.customer(), e.kind().clone()))
        .collect();
    assert_eq!(
        history,
        [
            (T0, Some(admin()), EventKind::Opened),
            (T0, Some(admin()), EventKind::TokenIssued { to: admin() }),
            (T0, Some(admin()), EventKind::TokenIssued { to: newcomer() }),
            (at(1), Some(newcomer()), EventKind::FailedAttempt),
            (
                at(10),
                Some(newcomer()),
                EventKind::TokenReissued { to: admin() }
            ),
            (
                at(10),
                Some(newcomer()),
                EventKind::TokenReissued { to: newcomer() }
            ),
            (at(11), Some(admin()), EventKind::Confirmed),
            (at(12), Some(newcomer()), EventKind::Confirmed),
            (at(12), Some(newcomer()), EventKind::Applied),
        ]
    );
    assert_eq!(request.last_event_at(), at(12));
}

#[test]
fn parties_and_whom_a_request_waits_for() {
    // R35
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let request = &opened.request;
    assert_eq!(request.parties(), [admin(), newcomer(), tech()]);
    for party in [admin(), newcomer(), tech()] {
        assert!(request.is_party(party), "{party}");
    }
    for outsider in [billing(), stranger()] {
        assert!(!request.is_party(outsider), "{outsider}");
    }
    assert!(request.waits_for(admin(), T0));
    assert!(request.waits_for(newcomer(), T0));
    assert!(!request.waits_for(tech(), T0));
    assert!(!request.waits_for(stranger(), T0));

    let step = fx
        .accept(request, admin(), opened.token(admin()), at(1))
        .unwrap();
    let after = updated(&step, request.id());
    assert!(!after.waits_for(admin(), at(1)));
    assert!(after.waits_for(newcomer(), at(1)));
    // Past the deadline it waits for no one.
    assert!(!after.waits_for(newcomer(), after.deadline()));

    let done = fx.accept_all(&opened, at(2));
    let applied = updated(&done, request.id());
    assert!(applied.is_party(tech()));
    assert!(!applied.waits_for(newcomer(), at(2)));
    assert!(!applied.waits_for(admin(), at(2)));
}

// ----- R36 to R40: messages -----

#[test]
fn a_confirmation_request_names_the_service_the_roles_and_the_other_party() {
    // R36
    let mut fx = Fixture::new();
    let opened = fx.open(
        admin(),
        &[(Role::Tech, newcomer()), (Role::Billing, newcomer())],
    );
    for message in &opened.transition.messages {
        assert_eq!(message.service(), &name("example.com"));
        assert_eq!(message.roles(), Role::Tech | Role::Billing);
        assert_eq!(message.request(), Some(opened.request.id()));
        assert_eq!(message.requester(), Some(admin()));
        assert_eq!(message.incoming(), Some(newcomer()));
        let other = if message.to() == admin() {
            newcomer()
        } else {
            admin()
        };
        assert_eq!(message.other_party(), Some(other));
        assert!(matches!(
            message.kind(),
            MessageKind::ConfirmationRequested { resent: false, deadline, .. }
                if *deadline == opened.request.deadline()
        ));
    }
}

#[test]
fn messages_go_to_the_right_people_for_each_outcome() {
    // R36, R37, R38, R39: kinds and recipients, tech contact passing tech on.
    let mut fx = Fixture::new();
    let opened = fx.open(tech(), &[(Role::Tech, newcomer())]);
    let id = opened.request.id();
    let is_request = |k: &MessageKind| matches!(k, MessageKind::ConfirmationRequested { .. });
    assert_eq!(
        told(&opened.transition, id, is_request),
        [tech(), newcomer()]
    );
    // Nobody but the confirmers hears of it while it waits or when it ends
    // without taking effect.
    let resent = fx.resend(&opened.request, tech(), at(5)).unwrap();
    assert_eq!(told(&resent, id, is_request), [tech(), newcomer()]);
    let request = updated(&resent, id);
    let cancelled = fx.engine.cancel(&request, tech(), at(6)).unwrap();
    assert_eq!(told(&cancelled, id, |_| true), [tech(), newcomer()]);
    let expired = fx.engine.expire(&request, request.deadline()).unwrap();
    assert_eq!(told(&expired, id, |_| true), [tech(), newcomer()]);
    // On apply the admin and billing contacts, untouched, hear nothing.
    let done = fx.accept_all(&opened, at(1));
    let recipients: HashSet<CustomerId> = done.messages.iter().map(Message::to).collect();
    assert_eq!(recipients, HashSet::from([tech(), newcomer()]));
}

#[test]
fn no_debug_output_or_error_reveals_a_token() {
    // R40
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let id = opened.request.id();
    let mut tokens: Vec<String> = opened.tokens.values().cloned().collect();
    let mut outputs = vec![
        format!("{:?}", opened.transition),
        format!("{:#?}", opened.transition),
        format!("{:?}", opened.request),
    ];
    for message in &opened.transition.messages {
        outputs.push(format!("{message:?} {:?}", message.kind()));
        outputs.push(format!("{:?}", message.token()));
    }
    // A failed attempt with the other party's token, and its record.
    let rejection =
        invalid_token(fx.accept(&opened.request, admin(), opened.token(newcomer()), at(1)));
    outputs.push(format!("{rejection:?} {rejection} {:?}", rejection.error));
    let request = recorded(&rejection);
    let resent = fx.resend(&request, admin(), at(10)).unwrap();
    tokens.extend(tokens_of(&resent, id).into_values());
    outputs.push(format!("{resent:#?}"));
    let request = updated(&resent, id);
    let fresh = tokens_of(&resent, id);
    let step = fx
        .accept(&request, admin(), &fresh[&admin()], at(11))
        .unwrap();
    outputs.push(format!("{step:?}"));
    let request = updated(&step, id);
    let done = fx
        .accept(&request, newcomer(), &fresh[&newcomer()], at(12))
        .unwrap();
    outputs.push(format!("{done:#?}"));
    let applied = updated(&done, id);
    outputs.push(format!("{:?} {:?}", applied.history(), applied.state()));
    for event in applied.history() {
        outputs.push(format!("{event:?} {:?}", event.kind()));
    }
    let closed = fx
        .accept(&applied, newcomer(), &fresh[&newcomer()], at(13))
        .unwrap_err();
    outputs.push(format!("{closed:?} {closed}"));

    assert_eq!(tokens.len(), 4);
    for output in &outputs {
        for token in &tokens {
            assert!(!output.contains(token.as_str()), "a token in {output}");
        }
    }
    assert!(outputs[0].contains("<redacted>"));
}

#[cfg(feature = "serde")]
#[test]
fn serialized_requests_and_messages_hide_tokens() {
    // R40
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let id = opened.request.id();
    let resent = fx.resend(&opened.request, admin(), at(10)).unwrap();
    let mut tokens: Vec<String> = opened.tokens.values().cloned().collect();
    tokens.extend(tokens_of(&resent, id).into_values());
    assert_eq!(tokens.len(), 4);

    let mut json = Vec::new();
    for transition in [&opened.transition, &resent] {
        for request in transition.requests() {
            json.push(serde_json::to_string(request).unwrap());
            json.push(serde_json::to_string(request.history()).unwrap());
        }
        for message in &transition.messages {
            let text = serde_json::to_string(message).unwrap();
            assert!(text.contains(&id.to_string()), "{text}");
            json.push(text);
        }
    }
    for text in &json {
        for token in &tokens {
            assert!(!text.contains(token.as_str()), "a token in {text}");
        }
    }
}

// ----- terminal states, time and errors -----

#[test]
fn terminal_requests_never_change() {
    // R20, R21, R28, R29, R30: done, refused, aborted, expired, error.
    let mut fx = Fixture::new();
    let mut ended: Vec<(ChangeRequest, HashMap<CustomerId, String>, StateName)> = Vec::new();

    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let done = fx.accept_all(&opened, at(1));
    ended.push((
        updated(&done, opened.request.id()),
        opened.tokens,
        StateName::Done,
    ));

    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let refused = fx
        .refuse(&opened.request, newcomer(), opened.token(newcomer()), at(1))
        .unwrap();
    ended.push((
        updated(&refused, opened.request.id()),
        opened.tokens,
        StateName::Refused,
    ));

    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let cancelled = fx.engine.cancel(&opened.request, admin(), at(1)).unwrap();
    ended.push((
        updated(&cancelled, opened.request.id()),
        opened.tokens,
        StateName::Aborted,
    ));

    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let expired = fx
        .engine
        .expire(&opened.request, opened.request.deadline())
        .unwrap();
    ended.push((
        updated(&expired, opened.request.id()),
        opened.tokens,
        StateName::Expired,
    ));

    let opened = fx.open(admin(), &[(Role::Tech, admin())]);
    let failed = fx
        .engine
        .accept(
            &opened.request,
            admin(),
            opened.token(admin()),
            at(1),
            Some(fx.gone(&opened.request).snapshot()),
            &directory,
        )
        .unwrap();
    ended.push((
        updated(&failed, opened.request.id()),
        opened.tokens,
        StateName::Error,
    ));

    for (request, tokens, state) in &ended {
        assert_eq!(request.state().name(), *state);
        assert!(request.state().is_terminal());
        assert!(!request.is_open());
        let last = request.last_event_at();
        // Right after, and long after the deadline: the state stays.
        for now in [last, request.deadline() + Duration::days(30)] {
            assert_frozen(&mut fx, request, tokens, *state, now);
        }
    }
}

#[test]
fn a_time_before_the_last_event_is_out_of_order() {
    // R29, R34: time only moves forward.
    let mut fx = Fixture::new();
    let opened = fx.open_at(admin(), &[(Role::Tech, newcomer())], &[], at(60));
    let request = &opened.request;
    let out_of_order = ActError::OutOfOrder { last: at(60) };
    let rejection = fx
        .accept(request, admin(), opened.token(admin()), T0)
        .unwrap_err();
    assert_eq!(rejection.error, out_of_order);
    assert!(rejection.record.is_none());
    let rejection = fx
        .refuse(request, newcomer(), opened.token(newcomer()), T0)
        .unwrap_err();
    assert_eq!(rejection.error, out_of_order);
    assert_eq!(fx.resend(request, admin(), T0).unwrap_err(), out_of_order);
    assert_eq!(
        fx.engine.cancel(request, admin(), T0).unwrap_err(),
        out_of_order
    );
    assert_eq!(fx.engine.expire(request, T0).unwrap_err(), out_of_order);

    // The last event moves with each step, failed attempts included.
    let rejection = invalid_token(fx.accept(request, newcomer(), &forged(), at(120)));
    let request = recorded(&rejection);
    assert_eq!(request.last_event_at(), at(120));
    let rejection = fx
        .accept(&request, newcomer(), opened.token(newcomer()), at(90))
        .unwrap_err();
    assert_eq!(rejection.error, ActError::OutOfOrder { last: at(120) });
    // The same instant is fine.
    assert!(
        fx.accept(&request, newcomer(), opened.token(newcomer()), at(120))
            .is_ok()
    );
}

#[test]
fn errors_leave_the_request_unchanged() {
    // R21, R25, R26, R28, R29: the input is never altered, whatever fails.
    let mut fx = Fixture::with(
        Config::new(Duration::days(7), Duration::minutes(5), 1).unwrap(),
        example(),
    );
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let request = opened.request.clone();
    let before = request.clone();

    let rejection = invalid_token(fx.accept(&request, newcomer(), &forged(), at(1)));
    assert!(rejection.record.is_some());
    invalid_token(fx.refuse(&request, stranger(), opened.token(newcomer()), at(1)));
    assert!(fx.resend(&request, admin(), at(1)).is_err());
    assert!(fx.resend(&request, tech(), at(10)).is_err());
    assert!(fx.engine.cancel(&request, newcomer(), at(1)).is_err());
    assert!(fx.engine.expire(&request, at(1)).is_err());
    assert!(
        fx.accept(
            &request,
            admin(),
            opened.token(admin()),
            T0 - Duration::seconds(1)
        )
        .is_err()
    );
    let deadline = request.deadline();
    assert!(
        fx.accept(&request, admin(), opened.token(admin()), deadline)
            .is_err()
    );
    assert_eq!(request, before);
    // Nor does success: the engine returns a new version.
    let step = fx
        .accept(&request, admin(), opened.token(admin()), at(1))
        .unwrap();
    assert_ne!(updated(&step, request.id()), before);
    assert_eq!(request, before);
}

#[test]
fn an_edit_of_another_service_is_refused() {
    // R33: the edit and the service must match.
    let mut fx = Fixture::new();
    let edit = Edit::new(name("other.com")).with(Role::Tech, newcomer());
    let snapshot = Snapshot {
        service: &fx.service,
        requests: &[],
    };
    let err = fx
        .engine
        .submit(&edit, admin(), snapshot, &directory, T0, &mut fx.rng)
        .unwrap_err();
    assert_eq!(
        err,
        SubmitError::ServiceMismatch {
            edit: name("other.com"),
            given: name("example.com"),
        }
    );
}

// ----- doubts: what the host passes in -----

#[test]
fn accept_never_writes_another_service() {
    // R30, R31: a request on example.com must not change other.com.
    let mut fx = Fixture::new();
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let step = fx
        .accept(&opened.request, admin(), opened.token(admin()), at(1))
        .unwrap();
    let request = updated(&step, opened.request.id());
    let other = Service::new(
        name("other.com"),
        Contacts::new(admin(), tech(), billing()),
        Version::new(9),
    );
    let snapshot = Snapshot {
        service: &other,
        requests: &[],
    };
    let result = fx.engine.accept(
        &request,
        newcomer(),
        opened.token(newcomer()),
        at(2),
        Some(snapshot),
        &directory,
    );
    let rejection = result.expect_err("a snapshot of another service is refused");
    assert_eq!(
        rejection.error,
        ActError::WrongSnapshot {
            expected: request.service().clone(),
            given: other.name().clone(),
        }
    );
    assert!(rejection.record.is_none(), "nothing is written");
}

#[test]
fn applying_leaves_requests_of_other_services_alone() {
    // R32: only requests "on the same service" may fail.
    let mut elsewhere = Fixture::with(
        Config::default(),
        Service::new(
            name("other.com"),
            Contacts::new(admin(), tech(), billing()),
            Version::new(1),
        ),
    );
    // Another seed, so the two requests' ids differ.
    elsewhere.rng = ChaCha20Rng::seed_from_u64(77);
    let foreign = elsewhere.open(admin(), &[(Role::Tech, newcomer())]).request;
    // `proposable` ignores it...
    let mut fx = Fixture::new();
    let open = [foreign.clone()];
    assert_eq!(
        fx.engine
            .proposable(fx.stored(&open).snapshot(), admin(), &directory, T0)
            .allowed(),
        Roles::ALL
    );
    // ...but applying an admin change on example.com must leave it alone too.
    let opened = fx.open_at(admin(), &[(Role::Admin, second())], &open, T0);
    let step = fx
        .engine
        .accept(
            &opened.request,
            admin(),
            opened.token(admin()),
            at(1),
            Some(fx.applying(&opened.request, &open).snapshot()),
            &directory,
        )
        .unwrap();
    let request = updated(&step, opened.request.id());
    let done = fx
        .engine
        .accept(
            &request,
            second(),
            opened.token(second()),
            at(2),
            Some(fx.applying(&request, &open).snapshot()),
            &directory,
        )
        .unwrap();
    assert_eq!(updated(&done, request.id()).state().name(), StateName::Done);
    assert_ne!(foreign.id(), request.id());
    assert!(done.request(foreign.id()).is_none(), "{done:#?}");
}

// ----- configuration at its edges -----

#[test]
fn only_valid_settings_can_be_built() {
    // R23, R26, R29: every setting that would remove a limit or make it
    // unreachable is refused at construction, with its own error.
    let (day, minute) = (Duration::days(1), Duration::minutes(1));
    let cases = [
        (Duration::ZERO, minute, 5, ConfigError::LifetimeNotPositive),
        (
            Duration::days(-1),
            minute,
            5,
            ConfigError::LifetimeNotPositive,
        ),
        (Duration::MAX, minute, 5, ConfigError::LifetimeTooLong),
        (
            Duration::days(3661),
            minute,
            5,
            ConfigError::LifetimeTooLong,
        ),
        (
            day,
            Duration::ZERO,
            5,
            ConfigError::ResendIntervalNotPositive,
        ),
        (day, -minute, 5, ConfigError::ResendIntervalNotPositive),
        (
            day,
            Duration::MIN,
            5,
            ConfigError::ResendIntervalNotPositive,
        ),
        (day, day, 5, ConfigError::ResendIntervalNotShorter),
        (day, Duration::MAX, 5, ConfigError::ResendIntervalNotShorter),
        (day, minute, 0, ConfigError::NoFailedAttempts),
        (day, minute, 1001, ConfigError::TooManyFailedAttempts),
    ];
    for (lifetime, interval, attempts, expected) in cases {
        assert_eq!(
            Config::new(lifetime, interval, attempts),
            Err(expected),
            "{lifetime} {interval} {attempts}"
        );
    }
    assert_eq!(
        ConfigError::ResendIntervalNotShorter.to_string(),
        "the resend interval must be shorter than the request lifetime"
    );
    // The bounds themselves are allowed.
    let edge = Config::new(Config::MAX_REQUEST_LIFETIME, Duration::nanoseconds(1), 1).unwrap();
    assert_eq!(edge.max_failed_attempts(), 1);
    Config::new(
        Duration::seconds(2),
        Duration::seconds(1),
        Config::MAX_FAILED_ATTEMPTS,
    )
    .unwrap();
    assert_eq!(
        Config::new(Duration::days(7), Duration::minutes(5), 5).unwrap(),
        Config::default()
    );
}

#[test]
fn a_deadline_past_the_last_date_opens_nothing() {
    // R29: a valid lifetime that runs past the last representable date from
    // `now` is refused before anything is drawn or opened.
    let mut fx = Fixture::new();
    let end = time::PrimitiveDateTime::MAX.assume_utc() - Duration::days(1);
    let result = fx.submit(admin(), &[(Role::Tech, newcomer())], &[], end);
    assert_eq!(result.unwrap_err(), SubmitError::InvalidLifetime);
}

#[test]
fn the_longest_resend_interval_still_allows_one_resend() {
    // R23: the interval is shorter than the lifetime, so a resend is
    // possible before the deadline.
    let config = Config::new(
        Duration::days(7),
        Duration::days(7) - Duration::seconds(1),
        5,
    )
    .unwrap();
    let mut fx = Fixture::with(config, example());
    let opened = fx.open(admin(), &[(Role::Tech, newcomer())]);
    let err = fx.resend(&opened.request, admin(), at(60)).unwrap_err();
    let retry_at = opened.request.deadline() - Duration::seconds(1);
    assert_eq!(err, ActError::TooSoon { retry_at });
    assert!(fx.resend(&opened.request, admin(), retry_at).is_ok());
}

#[test]
fn times_are_recorded_in_utc() {
    // R34: whatever offset the host passes, the engine records UTC.
    let mut fx = Fixture::new();
    let paris = datetime!(2026-11-21 11:00 +01:00);
    let opened = fx.open_at(admin(), &[(Role::Tech, newcomer())], &[], paris);
    assert_eq!(opened.request.opened_at(), paris);
    assert_eq!(opened.request.opened_at().offset(), time::UtcOffset::UTC);
    assert!(
        opened
            .request
            .history()
            .iter()
            .all(|e| e.at().offset() == time::UtcOffset::UTC)
    );
}
