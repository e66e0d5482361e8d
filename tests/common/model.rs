//! The reference model shared by the model-based tests of the engine
//! (`engine_model.rs`) and of the driver (`driver_model.rs`).
//!
//! - the operations of a random sequence and their generators;
//! - a naive model of RULES.md: per request its roles, requester, incoming
//!   customer, confirmers, who confirmed with which token and whether it
//!   ended; the service's holders; which token is valid for whom;
//! - the checks that compare what the crate stored and sent with the model
//!   (R5–R40), whatever stored and sent it: the engine with a map as its
//!   store, or the driver with the in-memory host;
//! - [`Subject`]: how an operation picks its request, customer and token and
//!   becomes a call, the same for both tests;
//! - [`reach_every_outcome`], the runner of both tests'
//!   `generator_reaches_every_outcome`;
//! - operators (R46): their cancel, resend and direct assignment as
//!   operations ([`op_with_operators`]), what the rules predict for each,
//!   and [`explain_changes`], the check that every change of the contacts
//!   is explained by the service's history (R47): a request every confirmer
//!   confirmed, or an assignment with its operator and reason.
#![allow(dead_code, reason = "each model test uses a part of the model")]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use proptest::prelude::*;
use proptest::sample::Index;
use service_contacts::{
    AccountStatus, ActError, Actor, AssignError, Assignment, Blocked, ChangeRequest, Config,
    ConfirmerStatus, Contacts, CustomerId, Edit, Event, EventKind, FailureReason, HistoryEntry,
    Message, MessageKind, OperatorAct, Proposable, Reassignment, RequestId, RequestState, Role,
    Roles, Service, StateName, SubmitError, Token, TokenDigest, Version,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// How many customers take part (`AA1-OVH` .. `AA4-OVH`); all have accounts.
pub(crate) const POOL: usize = 4;
/// The fixed start of time; it only moves forward through [`Op::Advance`].
pub(crate) const START: OffsetDateTime = datetime!(2026-11-21 10:00 UTC);
/// Length of a token's text (RULES.md section 8: 256 bits in base64url).
pub(crate) const TOKEN_LEN: usize = 43;

// ----- operations -----

/// A customer chosen for an operation.
#[derive(Clone, Debug)]
pub(crate) enum Who {
    /// One of the customers involved: a holder of the service for an edit, a
    /// confirmer still missing to accept or refuse, a confirmer otherwise.
    Involved(Index),
    /// Any customer of the pool.
    Anyone(usize),
}

/// The roles an edit proposes.
#[derive(Clone, Debug)]
pub(crate) enum RolePick {
    /// One role the actor may change and no live request covers (else any one role).
    Free(Index),
    /// The roles of the mask: bit 0 admin, 1 tech, 2 billing.
    Mask(u8),
}

pub(crate) fn role_pick() -> impl Strategy<Value = RolePick> {
    prop_oneof![
        3 => any::<Index>().prop_map(RolePick::Free),
        2 => (1u8..=7).prop_map(RolePick::Mask),
    ]
}

/// The customer an edit proposes.
#[derive(Clone, Debug)]
pub(crate) enum Incoming {
    /// A customer other than the actor.
    Other(Index),
    /// The actor themself (R8b).
    Actor,
    /// Any customer of the pool.
    Pool(usize),
    /// A customer with no account (R13).
    Unknown,
}

pub(crate) fn incoming() -> impl Strategy<Value = Incoming> {
    prop_oneof![
        12 => any::<Index>().prop_map(Incoming::Other),
        2 => Just(Incoming::Actor),
        2 => (0..POOL).prop_map(Incoming::Pool),
        1 => Just(Incoming::Unknown),
    ]
}

/// A request chosen for an operation.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// One still live, else one recorded as awaiting, else any request.
    Open(Index),
    /// Any request ever opened.
    Any(Index),
}

/// The token presented to accept or refuse.
#[derive(Clone, Debug)]
pub(crate) enum TokenPick {
    /// (i) The actor's own current token for the request.
    Own,
    /// (ii) A well-formed random token nobody was given.
    Wrong(u64),
    /// (ii) The actor's own token with one character changed.
    NearMiss(Index),
    /// (iii) A token of another party.
    OtherParty(Index),
    /// (iv) An old token of the actor, rotated by a resend or invalidated.
    Rotated(Index),
    /// (v) A token that was already used.
    Used(Index),
    /// A token of the actor for another request (R24: bound to its request).
    OtherRequest(Index),
}

#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// R8–R14, R27, R33: an edit naming `incoming` for some roles, and maybe
    /// a second customer (by pool index) for one role.
    Submit {
        actor: Who,
        roles: RolePick,
        incoming: Incoming,
        second: Option<(usize, usize)>,
    },
    /// R16, R20, R24–R26, R30–R32.
    Accept {
        target: Target,
        actor: Who,
        token: TokenPick,
    },
    /// R19, R20: each confirmer still missing accepts with their own token,
    /// one after the other (a shortcut to longer histories).
    AcceptAll { target: Target },
    /// R21, R24–R26.
    Refuse {
        target: Target,
        actor: Who,
        token: TokenPick,
    },
    /// R22, R23, R37.
    Resend { target: Target, actor: Who },
    /// R28.
    Cancel { target: Target, actor: Who },
    /// R29.
    Expire { target: Target },
    /// Time moves forward by this many minutes (R29).
    Advance { minutes: i64 },
    /// Time moves forward to a minute before, exactly at or a minute after
    /// a request's deadline (R29), if that is not in the past.
    AdvanceToDeadline { target: Target, offset: i64 },
    /// A customer falls behind with payments or catches up (R14, R30).
    ToggleStanding { customer: usize },
    /// R46, R39: an operator (one of [`operator_acts`]) cancels.
    OperatorCancel { target: Target, act: usize },
    /// R46, R22, R23, R37: an operator sends the request again.
    OperatorResend { target: Target, act: usize },
    /// R46, R13, R14, R31, R32: an operator assigns the roles of the mask
    /// (bit 0 admin, 1 tech, 2 billing; none: an empty edit) to `incoming`,
    /// and maybe a second customer (by pool index) one role.
    Assign {
        roles: u8,
        incoming: Incoming,
        second: Option<(usize, usize)>,
        act: usize,
    },
}

/// The operators' acts the operations pick from (R46): who acts and why.
pub(crate) fn operator_acts() -> [OperatorAct; 3] {
    [
        (
            "jane.doe@support",
            "customer called, identity checked by phone",
        ),
        ("ops-42", "mail to the tech contact bounced; address fixed"),
        (
            "night_shift@support.example",
            "le client a perdu l'accès à sa boîte aux lettres",
        ),
    ]
    .map(|(operator, reason)| {
        OperatorAct::new(
            operator.parse().expect("a valid operator"),
            reason.parse().expect("a valid reason"),
        )
    })
}

/// The operators' operations alone (R46).
pub(crate) fn operator_op() -> impl Strategy<Value = Op> {
    let act = 0..3usize;
    prop_oneof![
        1 => (target(), act.clone()).prop_map(|(target, act)| Op::OperatorCancel { target, act }),
        1 => (target(), act.clone()).prop_map(|(target, act)| Op::OperatorResend { target, act }),
        2 => (
            prop_oneof![1 => Just(0u8), 12 => 1u8..=7],
            incoming(),
            proptest::option::weighted(0.2, (0..3usize, 0..POOL)),
            act,
        )
            .prop_map(|(roles, incoming, second, act)| Op::Assign { roles, incoming, second, act }),
    ]
}

/// The customers' operations of [`op`] and the operators' of
/// [`operator_op`], in the proportions of each.
pub(crate) fn op_with_operators() -> impl Strategy<Value = Op> {
    prop_oneof![
        27 => op(),
        4 => operator_op(),
    ]
}

pub(crate) fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        4 => any::<Index>().prop_map(Who::Involved),
        1 => (0..POOL).prop_map(Who::Anyone),
    ]
}

pub(crate) fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        4 => any::<Index>().prop_map(Target::Open),
        1 => any::<Index>().prop_map(Target::Any),
    ]
}

pub(crate) fn token_pick() -> impl Strategy<Value = TokenPick> {
    prop_oneof![
        12 => Just(TokenPick::Own),
        1 => any::<u64>().prop_map(TokenPick::Wrong),
        1 => any::<Index>().prop_map(TokenPick::NearMiss),
        1 => any::<Index>().prop_map(TokenPick::OtherParty),
        1 => any::<Index>().prop_map(TokenPick::Rotated),
        1 => any::<Index>().prop_map(TokenPick::Used),
        1 => any::<Index>().prop_map(TokenPick::OtherRequest),
    ]
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            who(),
            role_pick(),
            incoming(),
            proptest::option::weighted(0.2, (0..3usize, 0..POOL)),
        )
            .prop_map(|(actor, roles, incoming, second)| Op::Submit { actor, roles, incoming, second }),
        8 => (target(), who(), token_pick())
            .prop_map(|(target, actor, token)| Op::Accept { target, actor, token }),
        2 => target().prop_map(|target| Op::AcceptAll { target }),
        1 => (target(), who(), token_pick())
            .prop_map(|(target, actor, token)| Op::Refuse { target, actor, token }),
        2 => (target(), who()).prop_map(|(target, actor)| Op::Resend { target, actor }),
        1 => (target(), who()).prop_map(|(target, actor)| Op::Cancel { target, actor }),
        2 => target().prop_map(|target| Op::Expire { target }),
        // Mostly minutes (around the 5-minute resend interval), sometimes
        // hours, sometimes days past the 7-day deadline.
        3 => prop_oneof![
            6 => 0..=90i64,
            2 => 91..=1440i64,
            1 => 6 * 1440..=9 * 1440i64,
        ]
        .prop_map(|minutes| Op::Advance { minutes }),
        1 => (target(), -1..=1i64).prop_map(|(target, offset)| Op::AdvanceToDeadline { target, offset }),
        1 => (0..POOL).prop_map(|customer| Op::ToggleStanding { customer }),
    ]
}

// ----- the reference model -----

/// What became of a token the engine issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenStatus {
    /// The one token that works for its owner now.
    Current,
    /// Replaced by a resend (R23).
    Rotated,
    /// Accepted or refused with (single use, R18).
    Used,
    /// Too many failed attempts (R26).
    Invalidated,
    /// Its request ended.
    Dead,
}

/// Every token ever issued, kept to be replayed.
#[derive(Clone, Debug)]
pub(crate) struct Issued {
    pub(crate) text: String,
    pub(crate) owner: CustomerId,
    pub(crate) request: RequestId,
    pub(crate) status: TokenStatus,
}

#[derive(Clone, Debug)]
pub(crate) struct MConfirmer {
    pub(crate) customer: CustomerId,
    /// The token that works for them now (`None` once used or invalidated).
    pub(crate) current: Option<String>,
    /// The token they confirmed with.
    pub(crate) confirmed_with: Option<String>,
    /// Failed attempts since their token was issued (R26).
    pub(crate) failed: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MState {
    Awaiting,
    Applied,
    Refused(CustomerId),
    Cancelled(CustomerId),
    /// Cancelled by an operator, with their reason (R46).
    CancelledByOperator(OperatorAct),
    Expired,
    /// Failed, for one of these reasons.
    Failed(Vec<FailureReason>),
}

impl MState {
    pub(crate) fn name(&self) -> StateName {
        match self {
            MState::Awaiting => StateName::ValidatingByCustomers,
            MState::Applied => StateName::Done,
            MState::Refused(_) => StateName::Refused,
            MState::Cancelled(_) | MState::CancelledByOperator(_) => StateName::Aborted,
            MState::Expired => StateName::Expired,
            MState::Failed(_) => StateName::Error,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct MRequest {
    pub(crate) id: RequestId,
    pub(crate) requester: CustomerId,
    pub(crate) incoming: CustomerId,
    pub(crate) roles: Roles,
    pub(crate) outgoing: Vec<(Role, CustomerId)>,
    pub(crate) confirmers: Vec<MConfirmer>,
    pub(crate) deadline: OffsetDateTime,
    pub(crate) last_sent: OffsetDateTime,
    pub(crate) state: MState,
}

impl MRequest {
    /// R29: awaiting and before its deadline.
    pub(crate) fn live(&self, now: OffsetDateTime) -> bool {
        self.state == MState::Awaiting && now < self.deadline
    }

    /// R29: past its deadline an awaiting request behaves as expired.
    pub(crate) fn state_at(&self, now: OffsetDateTime) -> StateName {
        if self.state == MState::Awaiting && now >= self.deadline {
            StateName::Expired
        } else {
            self.state.name()
        }
    }

    /// R19: the confirmers still missing.
    pub(crate) fn missing(&self) -> Vec<CustomerId> {
        self.confirmers
            .iter()
            .filter(|c| c.confirmed_with.is_none())
            .map(|c| c.customer)
            .collect()
    }

    pub(crate) fn confirmer(&self, customer: CustomerId) -> Option<&MConfirmer> {
        self.confirmers.iter().find(|c| c.customer == customer)
    }

    pub(crate) fn confirmer_mut(&mut self, customer: CustomerId) -> Option<&mut MConfirmer> {
        self.confirmers.iter_mut().find(|c| c.customer == customer)
    }

    /// The same news for every confirmer (R20, R39).
    pub(crate) fn to_confirmers(&self, tag: &Tag) -> Vec<Expected> {
        self.confirmers
            .iter()
            .map(|c| (self.id, c.customer, tag.clone()))
            .collect()
    }
}

/// What the model says a token presented to accept or refuse does.
#[derive(Clone, Debug)]
pub(crate) enum TokenCheck {
    /// R25, R29: the request's own state is reported.
    Closed(StateName),
    /// R24, R25: the one error for every bad token.
    Invalid(Counted),
    /// The actor's own current token.
    Valid,
}

/// Whether a refused token attempt must be recorded (R26).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counted {
    /// A confirmer with a live token guessed wrong: counted, and past the
    /// limit their token is invalidated.
    Yes { invalidates: bool },
    /// Not a confirmer, already confirmed, or token already invalidated: the
    /// rules do not say whether such an attempt is recorded.
    Either,
}

/// The holder of each role (admin, tech, billing): one per role by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Holders(pub(crate) [CustomerId; 3]);

impl Holders {
    pub(crate) fn slot(role: Role) -> usize {
        match role {
            Role::Admin => 0,
            Role::Tech => 1,
            Role::Billing => 2,
        }
    }

    pub(crate) fn holder(&self, role: Role) -> CustomerId {
        self.0[Self::slot(role)]
    }

    pub(crate) fn set(&mut self, role: Role, customer: CustomerId) {
        self.0[Self::slot(role)] = customer;
    }

    /// R8–R10: the admin may change every role; anyone else only the roles
    /// they hold, each in their own place.
    pub(crate) fn rights_of(&self, customer: CustomerId) -> Roles {
        if self.holder(Role::Admin) == customer {
            return Roles::ALL;
        }
        Role::ALL
            .into_iter()
            .filter(|role| self.holder(*role) == customer)
            .collect()
    }

    pub(crate) fn matches(&self, contacts: &Contacts) -> bool {
        Role::ALL
            .into_iter()
            .all(|role| contacts.holder(role) == self.holder(role))
    }
}

pub(crate) struct Model {
    pub(crate) now: OffsetDateTime,
    pub(crate) contacts: Holders,
    pub(crate) standing: HashMap<CustomerId, AccountStatus>,
    /// In opening order.
    pub(crate) requests: Vec<MRequest>,
    pub(crate) tokens: Vec<Issued>,
    pub(crate) config: Config,
}

impl Model {
    pub(crate) fn live_with(&self, role: Role) -> Option<RequestId> {
        self.requests
            .iter()
            .find(|r| r.live(self.now) && r.roles.contains(role))
            .map(|r| r.id)
    }

    /// R27, R29, R44: the requests a decision that writes the service
    /// records as expired with it: the last request opened on each role, if
    /// it is recorded as awaiting but past its deadline.
    pub(crate) fn due_named(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for role in Role::ALL {
            let last = (0..self.requests.len())
                .rev()
                .find(|&i| self.requests[i].roles.contains(role));
            if let Some(i) = last {
                let r = &self.requests[i];
                if r.state == MState::Awaiting && !r.live(self.now) && !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out
    }

    /// Ends the requests of `due` as expired, once their expiry is
    /// committed, and checks the event each got (R29, R34).
    pub(crate) fn expired_with(
        &mut self,
        due: &[usize],
        added: &HashMap<RequestId, Vec<Event>>,
    ) -> Result<(), TestCaseError> {
        for &idx in due {
            self.end(idx, MState::Expired);
            expect_events(added, self.requests[idx].id, &[(EventKind::Expired, None)])?;
        }
        Ok(())
    }

    pub(crate) fn good(&self, customer: CustomerId) -> bool {
        self.standing.get(&customer) == Some(&AccountStatus::GoodStanding)
    }

    pub(crate) fn pick(&self, target: &Target) -> Option<usize> {
        let live: Vec<usize> = (0..self.requests.len())
            .filter(|&i| self.requests[i].live(self.now))
            .collect();
        let open: Vec<usize> = (0..self.requests.len())
            .filter(|&i| self.requests[i].state == MState::Awaiting)
            .collect();
        match target {
            Target::Open(i) if !live.is_empty() => Some(*i.get(&live)),
            Target::Open(i) if !open.is_empty() => Some(*i.get(&open)),
            Target::Open(i) | Target::Any(i) if !self.requests.is_empty() => {
                Some(i.index(self.requests.len()))
            }
            _ => None,
        }
    }

    /// The outcome of an edit by the rules: the requests to open, one per
    /// distinct incoming customer (R33), or every error that applies.
    pub(crate) fn predict_submit(
        &self,
        edit: &Edit,
        actor: CustomerId,
    ) -> Result<Vec<(CustomerId, Roles)>, Vec<SubmitError>> {
        // R12: a role named with its current holder changes nothing.
        let changes: Vec<(Role, CustomerId)> = edit
            .iter()
            .filter(|(role, customer)| self.contacts.holder(*role) != *customer)
            .collect();
        if changes.is_empty() {
            return Err(vec![SubmitError::NoChange]);
        }
        let mut errors = Vec::new();
        let rights = self.contacts.rights_of(actor);
        for (role, _) in &changes {
            // R8–R11: the refusal says to ask the admin contact.
            if !rights.contains(*role) {
                errors.push(SubmitError::NotPermitted {
                    role: *role,
                    ask: Role::Admin,
                });
            }
            // R27: at most one open request per role.
            if let Some(open) = self.live_with(*role) {
                errors.push(SubmitError::Conflict { role: *role, open });
            }
        }
        // R33: one request per distinct incoming customer.
        let mut groups: Vec<(CustomerId, Roles)> = Vec::new();
        for (role, customer) in changes {
            match groups.iter_mut().find(|(c, _)| *c == customer) {
                Some((_, roles)) => *roles |= role,
                None => groups.push((customer, Roles::from(role))),
            }
        }
        for (incoming, roles) in &groups {
            // R13: the incoming customer has an account.
            let known = self.standing.contains_key(incoming);
            if !known {
                errors.push(SubmitError::UnknownCustomer {
                    customer: *incoming,
                });
            }
            // R14: both billing contacts in good standing.
            if roles.contains(Role::Billing) {
                let billing = self.contacts.holder(Role::Billing);
                if !self.good(billing) {
                    errors.push(SubmitError::NotInGoodStanding { customer: billing });
                }
                if known && !self.good(*incoming) {
                    errors.push(SubmitError::NotInGoodStanding {
                        customer: *incoming,
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(groups)
        } else {
            Err(errors)
        }
    }

    /// R24–R26, R29: what `text` presented by `actor` does.
    pub(crate) fn check_token(&self, idx: usize, actor: CustomerId, text: &str) -> TokenCheck {
        let r = &self.requests[idx];
        if !r.live(self.now) {
            return TokenCheck::Closed(r.state_at(self.now));
        }
        match r.confirmer(actor) {
            Some(MConfirmer {
                current: Some(current),
                failed,
                ..
            }) => {
                if current == text {
                    TokenCheck::Valid
                } else {
                    TokenCheck::Invalid(Counted::Yes {
                        invalidates: failed + 1 >= self.config.max_failed_attempts(),
                    })
                }
            }
            _ => TokenCheck::Invalid(Counted::Either),
        }
    }

    /// R30: the reasons the request would fail if applied now (empty: it applies).
    pub(crate) fn recheck(&self, idx: usize) -> Vec<FailureReason> {
        let r = &self.requests[idx];
        let mut reasons = Vec::new();
        let rights = self.contacts.rights_of(r.requester);
        for role in r.roles {
            if !rights.contains(role) {
                reasons.push(FailureReason::RequesterLostRight { role });
            }
        }
        for (role, holder) in &r.outgoing {
            if self.contacts.holder(*role) != *holder {
                reasons.push(FailureReason::OutgoingChanged { role: *role });
            }
        }
        if r.roles.contains(Role::Billing) {
            for customer in [self.contacts.holder(Role::Billing), r.incoming] {
                if !self.good(customer) {
                    reasons.push(FailureReason::NotInGoodStanding { customer });
                }
            }
        }
        reasons
    }

    /// A token to present, chosen by `pick` among the issued ones.
    pub(crate) fn pick_token(&self, pick: &TokenPick, idx: usize, actor: CustomerId) -> String {
        let r = &self.requests[idx];
        let own = || {
            r.confirmer(actor)
                .and_then(|c| c.current.clone())
                .or_else(|| {
                    self.tokens
                        .iter()
                        .rev()
                        .find(|t| t.owner == actor && t.request == r.id)
                        .map(|t| t.text.clone())
                })
        };
        let choose =
            |i: &Index, filters: &[&dyn Fn(&Issued) -> bool]| choose(&self.tokens, *i, filters);
        let old = |t: &Issued| matches!(t.status, TokenStatus::Rotated | TokenStatus::Invalidated);
        let text = match pick {
            TokenPick::Own => own(),
            TokenPick::Wrong(seed) => Some(wrong_token(*seed)),
            TokenPick::NearMiss(i) => own().map(|text| near_miss(text, *i)),
            TokenPick::OtherParty(i) => choose(
                i,
                &[
                    &|t: &Issued| t.owner != actor && t.request == r.id,
                    &|t: &Issued| t.owner != actor,
                ],
            ),
            TokenPick::Rotated(i) => choose(
                i,
                &[
                    &|t: &Issued| t.owner == actor && t.request == r.id && old(t),
                    &|t: &Issued| t.owner == actor && old(t),
                ],
            ),
            TokenPick::Used(i) => choose(
                i,
                &[
                    &|t: &Issued| t.owner == actor && t.status == TokenStatus::Used,
                    &|t: &Issued| t.status == TokenStatus::Used,
                ],
            ),
            TokenPick::OtherRequest(i) => {
                choose(i, &[&|t: &Issued| t.owner == actor && t.request != r.id])
            }
        };
        text.unwrap_or_else(|| wrong_token(u64::MAX))
    }

    pub(crate) fn issue(&mut self, text: String, owner: CustomerId, request: RequestId) {
        self.tokens.push(Issued {
            text,
            owner,
            request,
            status: TokenStatus::Current,
        });
    }

    pub(crate) fn set_status(&mut self, text: &str, status: TokenStatus) {
        if let Some(t) = self.tokens.iter_mut().find(|t| t.text == text) {
            t.status = status;
        }
    }

    /// The request ended: its tokens stop working.
    pub(crate) fn end(&mut self, idx: usize, state: MState) {
        let r = &mut self.requests[idx];
        r.state = state;
        let id = r.id;
        for c in &mut r.confirmers {
            c.current = None;
        }
        for t in &mut self.tokens {
            if t.request == id && t.status == TokenStatus::Current {
                t.status = TokenStatus::Dead;
            }
        }
    }

    pub(crate) fn owner_of(&self, text: &str) -> String {
        self.tokens.iter().find(|t| t.text == text).map_or_else(
            || "an unknown token".to_owned(),
            |t| format!("a {:?} token of {} for {}", t.status, t.owner, t.request),
        )
    }
}

/// The token `i` picks among those the first filter that keeps any keeps.
pub(crate) fn choose(
    tokens: &[Issued],
    i: Index,
    filters: &[&dyn Fn(&Issued) -> bool],
) -> Option<String> {
    filters.iter().find_map(|keep| {
        let list: Vec<&Issued> = tokens.iter().filter(|t| keep(t)).collect();
        (!list.is_empty()).then(|| i.get(&list).text.clone())
    })
}

/// A well-formed token nobody was given.
pub(crate) fn wrong_token(seed: u64) -> String {
    let mut bytes = [0u8; 32];
    let mut x = seed;
    for chunk in bytes.chunks_mut(8) {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    Token::from_bytes(bytes).reveal()
}

/// `text` with one character changed.
pub(crate) fn near_miss(text: String, at: Index) -> String {
    let mut bytes = text.into_bytes();
    let at = at.index(bytes.len());
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

// ----- messages -----

/// The kind of a message, for comparing sets of messages.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tag {
    Confirm { resent: bool },
    Applied,
    Replaced(Roles),
    Refused(CustomerId),
    Cancelled,
    Expired,
    Failed,
    Assigned,
}

pub(crate) type Expected = (RequestId, CustomerId, Tag);

pub(crate) fn tag(m: &Message) -> Tag {
    match m.kind() {
        MessageKind::ConfirmationRequested { resent, .. } => Tag::Confirm { resent: *resent },
        MessageKind::Applied => Tag::Applied,
        MessageKind::Replaced => Tag::Replaced(m.roles()),
        MessageKind::Refused { by } => Tag::Refused(*by),
        MessageKind::Cancelled { .. } => Tag::Cancelled,
        MessageKind::Assigned { .. } => Tag::Assigned,
        MessageKind::Expired => Tag::Expired,
        MessageKind::Failed { .. } => Tag::Failed,
    }
}

/// R40: where an issued token's text occurs in `text`, if anywhere. Tokens
/// are 43 base64url characters, so only runs of such characters can hold one;
/// every 43-character window of those runs is looked up.
pub(crate) fn find_token<'a>(secrets: &'a HashSet<String>, text: &str) -> Option<&'a String> {
    let bytes = text.as_bytes();
    let b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut start = 0;
    for end in 0..=bytes.len() {
        if end < bytes.len() && b64(bytes[end]) {
            continue;
        }
        if end - start >= TOKEN_LEN {
            for from in start..=end - TOKEN_LEN {
                if let Some(found) = secrets.get(&text[from..from + TOKEN_LEN]) {
                    return Some(found);
                }
            }
        }
        start = end + 1;
    }
    None
}

/// R40: the text of every token ever issued, looked for in every output.
#[derive(Debug, Default)]
pub(crate) struct Secrets(HashSet<String>);

impl Secrets {
    /// Remembers the token `m` carries, if any.
    pub(crate) fn learn(&mut self, m: &Message) {
        if let Some(token) = m.token() {
            self.0.insert(token.reveal());
        }
    }

    /// Fails if `text` (`what` was shown) contains a token, saying whose
    /// `model` knows it to be.
    pub(crate) fn leak(&self, model: &Model, what: &str, text: &str) -> Result<(), TestCaseError> {
        match find_token(&self.0, text) {
            Some(token) => Err(fail(format!(
                "R40: {what} contains {}",
                model.owner_of(token)
            ))),
            None => Ok(()),
        }
    }

    /// A message's `Debug`, its kind's and (feature `serde`) its JSON.
    pub(crate) fn scan_message(&self, model: &Model, m: &Message) -> Result<(), TestCaseError> {
        self.leak(model, "a message's Debug", &format!("{m:?}"))?;
        self.leak(model, "a message's kind", &format!("{:?}", m.kind()))?;
        #[cfg(feature = "serde")]
        {
            let json = serde_json::to_string(m).map_err(fail)?;
            self.leak(model, "a serialized message", &json)?;
        }
        Ok(())
    }

    /// A request's `Debug` and (feature `serde`) its JSON, which reads back
    /// equal.
    pub(crate) fn scan_request(
        &self,
        model: &Model,
        r: &ChangeRequest,
    ) -> Result<(), TestCaseError> {
        self.leak(model, "a request's Debug", &format!("{r:?}"))?;
        #[cfg(feature = "serde")]
        {
            let json = serde_json::to_string(r).map_err(fail)?;
            self.leak(model, "a serialized request", &json)?;
            let back: ChangeRequest = serde_json::from_str(&json).map_err(fail)?;
            prop_assert_eq!(&back, r, "a request round-trips through serde");
        }
        Ok(())
    }
}

pub(crate) fn fail(message: impl fmt::Display) -> TestCaseError {
    TestCaseError::fail(message.to_string())
}

/// `err` with the steps that led to it, for the failure report.
pub(crate) fn with_trace(err: &TestCaseError, trace: &[String]) -> TestCaseError {
    fail(format!(
        "{err}\nsteps (the last one failed):\n  {}",
        trace.join("\n  ")
    ))
}

impl Model {
    /// The model at the start: `pool[0]` has ordered the service and holds
    /// every role (R5); every customer of the pool has an account in good
    /// standing.
    pub(crate) fn new(pool: &[CustomerId; POOL], config: Config) -> Model {
        Model {
            now: START,
            // R5: the customer who orders the service holds all three roles.
            contacts: Holders([pool[0]; 3]),
            standing: pool
                .iter()
                .map(|c| (*c, AccountStatus::GoodStanding))
                .collect(),
            requests: Vec::new(),
            tokens: Vec::new(),
            config,
        }
    }
}

/// The configuration of a sequence: the default one but for
/// `max_failed_attempts` (R26).
pub(crate) fn config(max_failed_attempts: u32) -> Config {
    Config::new(Duration::days(7), Duration::minutes(5), max_failed_attempts)
        .expect("a valid setting")
}

/// The customers taking part: `AA1-OVH` .. `AA4-OVH`.
pub(crate) fn pool() -> [CustomerId; POOL] {
    [1, 2, 3, 4].map(|i| {
        format!("AA{i}-OVH")
            .parse::<CustomerId>()
            .expect("pool identifier")
    })
}

// ----- choosing the operands of an operation -----

/// The edit an [`Op::Submit`] makes on `service`, and who submits it.
pub(crate) fn make_edit(
    model: &Model,
    pool: &[CustomerId; POOL],
    service: &Service,
    actor: &Who,
    roles: &RolePick,
    incoming: &Incoming,
    second: Option<(usize, usize)>,
) -> (CustomerId, Edit) {
    let actor = match actor {
        Who::Involved(i) => *i.get(&service.contacts().holders()),
        Who::Anyone(n) => pool[*n],
    };
    let incoming = match incoming {
        Incoming::Other(i) => {
            let others: Vec<CustomerId> = pool.iter().copied().filter(|c| *c != actor).collect();
            *i.get(&others)
        }
        Incoming::Actor => actor,
        Incoming::Pool(n) => pool[*n],
        Incoming::Unknown => "ZZ9-OVH".parse().expect("valid identifier"),
    };
    let roles: Roles = match roles {
        RolePick::Free(i) => {
            let rights = model.contacts.rights_of(actor);
            let free: Vec<Role> = Role::ALL
                .into_iter()
                .filter(|r| rights.contains(*r) && model.live_with(*r).is_none())
                .collect();
            Roles::from(if free.is_empty() {
                *i.get(&Role::ALL)
            } else {
                *i.get(&free)
            })
        }
        RolePick::Mask(mask) => Role::ALL
            .into_iter()
            .enumerate()
            .filter(|(bit, _)| mask & (1 << bit) != 0)
            .map(|(_, role)| role)
            .collect(),
    };
    let mut edit = Edit::new(service.name().clone());
    for role in roles {
        edit.set(role, incoming);
    }
    if let Some((role, customer)) = second {
        edit.set(Role::ALL[role], pool[customer]);
    }
    (actor, edit)
}

/// The edit an [`Op::Assign`] makes on `service`: the roles of `mask` to
/// the customer `incoming` picks (`Other`: someone other than the holder of
/// the first of them; `Actor`: the admin), and maybe a second customer for
/// one role.
pub(crate) fn make_assignment(
    model: &Model,
    pool: &[CustomerId; POOL],
    service: &Service,
    mask: u8,
    incoming: &Incoming,
    second: Option<(usize, usize)>,
) -> Edit {
    let roles: Vec<Role> = Role::ALL
        .into_iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, role)| role)
        .collect();
    let first_holder = model
        .contacts
        .holder(roles.first().copied().unwrap_or(Role::Admin));
    let incoming = match incoming {
        Incoming::Other(i) => {
            let others: Vec<CustomerId> = pool
                .iter()
                .copied()
                .filter(|c| *c != first_holder)
                .collect();
            *i.get(&others)
        }
        Incoming::Actor => model.contacts.holder(Role::Admin),
        Incoming::Pool(n) => pool[*n],
        Incoming::Unknown => "ZZ9-OVH".parse().expect("valid identifier"),
    };
    let mut edit = Edit::new(service.name().clone());
    for role in roles {
        edit.set(role, incoming);
    }
    if let Some((role, customer)) = second {
        edit.set(Role::ALL[role], pool[customer]);
    }
    edit
}

/// A customer for an operation on request `idx`: with `missing_first`
/// a confirmer still missing if there is one.
pub(crate) fn pick_actor(
    model: &Model,
    pool: &[CustomerId; POOL],
    who: &Who,
    idx: usize,
    missing_first: bool,
) -> CustomerId {
    let r = &model.requests[idx];
    match who {
        Who::Involved(i) => {
            let missing = r.missing();
            if missing_first && r.state == MState::Awaiting && !missing.is_empty() {
                *i.get(&missing)
            } else {
                let confirmers: Vec<CustomerId> = r.confirmers.iter().map(|c| c.customer).collect();
                *i.get(&confirmers)
            }
        }
        Who::Anyone(n) => pool[*n],
    }
}

/// R34: the events the last commit added to request `id`'s history (in
/// `added`), in any order, each with the customer who acted (`None`: not
/// checked).
pub(crate) fn expect_events(
    added: &HashMap<RequestId, Vec<Event>>,
    id: RequestId,
    expected: &[(EventKind, Option<CustomerId>)],
) -> Result<(), TestCaseError> {
    let mut added: Vec<&Event> = added.get(&id).into_iter().flatten().collect();
    for (kind, actor) in expected {
        let found = added
            .iter()
            .position(|e| e.kind() == kind && actor.is_none_or(|a| e.customer() == Some(a)));
        let Some(at) = found else {
            return Err(fail(format!(
                "R34: no {kind:?} event by {actor:?} among {added:?}"
            )));
        };
        added.remove(at);
    }
    prop_assert!(added.is_empty(), "R34: unexpected events {:?}", added);
    Ok(())
}

/// R34, R46: the events the last commit added to request `id`'s history
/// (in `added`), in any order, each by exactly the actor given (`None`: the
/// system).
pub(crate) fn expect_acted(
    added: &HashMap<RequestId, Vec<Event>>,
    id: RequestId,
    expected: &[(EventKind, Option<Actor>)],
) -> Result<(), TestCaseError> {
    let mut added: Vec<&Event> = added.get(&id).into_iter().flatten().collect();
    for (kind, actor) in expected {
        let found = added
            .iter()
            .position(|e| e.kind() == kind && e.actor() == actor.as_ref());
        let Some(at) = found else {
            return Err(fail(format!(
                "R34, R46: no {kind:?} event by {actor:?} among {added:?}"
            )));
        };
        added.remove(at);
    }
    prop_assert!(added.is_empty(), "R34: unexpected events {:?}", added);
    Ok(())
}

/// The reason a request failed for, as the store has it.
pub(crate) fn failed_event(stored: &ChangeRequest) -> (EventKind, Option<CustomerId>) {
    match stored.state() {
        RequestState::Failed { reason, .. } => (
            EventKind::Failed {
                reason: reason.clone(),
            },
            None,
        ),
        _ => (EventKind::Applied, None),
    }
}

/// The model's request `idx` against the store's `s`, field by field.
pub(crate) fn compare_request(
    model: &Model,
    idx: usize,
    s: &ChangeRequest,
) -> Result<(), TestCaseError> {
    let m = &model.requests[idx];
    prop_assert_eq!(s.id(), m.id);
    prop_assert_eq!(s.requester(), m.requester);
    prop_assert_eq!(s.incoming(), m.incoming);
    prop_assert_eq!(s.roles(), m.roles);
    prop_assert_eq!(s.deadline(), m.deadline);
    prop_assert_eq!(s.outgoing_holders().collect::<Vec<_>>(), m.outgoing.clone());
    let confirmers: Vec<CustomerId> = m.confirmers.iter().map(|c| c.customer).collect();
    prop_assert_eq!(s.confirmers(), confirmers, "R16");
    match (&m.state, s.state()) {
        (MState::Awaiting, RequestState::Awaiting(a)) => {
            prop_assert_eq!(a.last_sent(), m.last_sent, "R23");
            prop_assert_eq!(a.confirmers().len(), m.confirmers.len());
            let mut digests: Vec<TokenDigest> = Vec::new();
            for (mc, sc) in m.confirmers.iter().zip(a.confirmers()) {
                prop_assert_eq!(sc.customer(), mc.customer);
                match (sc.status(), &mc.confirmed_with, &mc.current) {
                    (ConfirmerStatus::Confirmed { .. }, Some(_), None)
                    | (ConfirmerStatus::Pending { digest: None, .. }, None, None) => {}
                    (
                        ConfirmerStatus::Pending {
                            digest: Some(digest),
                            failed_attempts,
                        },
                        None,
                        Some(text),
                    ) => {
                        // R18: their current token, and no other, works.
                        prop_assert!(digest.verify(text));
                        prop_assert_eq!(*failed_attempts, mc.failed, "R26");
                        digests.push(*digest);
                    }
                    (status, confirmed, current) => {
                        return Err(fail(format!(
                            "{} of {}: engine {status:?}, model confirmed: {}, token: {}",
                            mc.customer,
                            m.id,
                            confirmed.is_some(),
                            current.is_some()
                        )));
                    }
                }
            }
            // R23, R26: rotated, used and invalidated tokens no longer verify.
            for t in &model.tokens {
                if t.request == m.id && t.status != TokenStatus::Current {
                    prop_assert!(digests.iter().all(|d| !d.verify(&t.text)));
                }
            }
        }
        (MState::Applied, RequestState::Applied { .. })
        | (MState::Expired, RequestState::Expired { .. }) => {}
        (MState::Refused(by), RequestState::Refused { by: b, .. }) => {
            prop_assert_eq!(by, b);
        }
        (MState::Cancelled(by), RequestState::Cancelled { by: b, .. }) => {
            prop_assert_eq!(Some(*by), b.customer());
        }
        (MState::CancelledByOperator(act), RequestState::Cancelled { by: b, .. }) => {
            prop_assert_eq!(b.operator(), Some(act), "R46: cancelled by the operator");
        }
        (MState::Failed(reasons), RequestState::Failed { reason, .. }) => {
            prop_assert!(
                reasons.contains(reason),
                "failed for {:?}, expected one of {:?}",
                reason,
                reasons
            );
        }
        (model, engine) => {
            return Err(fail(format!(
                "request {}: model {model:?}, engine {:?}",
                m.id,
                engine.name()
            )));
        }
    }
    Ok(())
}

/// A request written for the first time, at `now`.
pub(crate) fn check_first_write(
    r: &ChangeRequest,
    now: OffsetDateTime,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(r.version(), Version::FIRST);
    prop_assert!(r.history().iter().all(|e| e.at() == now));
    prop_assert_eq!(r.history()[0].kind(), &EventKind::Opened);
    Ok(())
}

/// Request `old` written again as `r`, at `now`: at its next version (R31),
/// never once terminal, about the same change, its history only growing.
pub(crate) fn check_rewrite(
    old: &ChangeRequest,
    r: &ChangeRequest,
    now: OffsetDateTime,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(r.version(), old.version().next(), "R31");
    prop_assert!(
        !old.state().is_terminal(),
        "a terminal request is written again"
    );
    prop_assert_eq!(r.requester(), old.requester());
    prop_assert_eq!(r.incoming(), old.incoming());
    prop_assert_eq!(r.roles(), old.roles());
    prop_assert_eq!(r.opened_at(), old.opened_at());
    prop_assert_eq!(r.deadline(), old.deadline());
    prop_assert!(r.outgoing_holders().eq(old.outgoing_holders()));
    // R34: the history only grows, with what happened now.
    let old_len = old.history().len();
    prop_assert!(r.history().len() > old_len);
    prop_assert!(r.history().starts_with(old.history()));
    prop_assert!(r.history()[old_len..].iter().all(|e| e.at() == now));
    Ok(())
}

/// R20, R24: contacts change only when a request's last confirmation
/// arrives, every confirmer having accepted with their own token.
pub(crate) fn check_contacts(
    model: &Model,
    before: Contacts,
    after: Contacts,
    applied: Option<usize>,
) -> Result<(), TestCaseError> {
    match applied {
        None => prop_assert_eq!(after, before, "contacts changed without an applied request"),
        Some(idx) => {
            let r = &model.requests[idx];
            prop_assert_eq!(&r.state, &MState::Applied);
            for c in &r.confirmers {
                let Some(text) = &c.confirmed_with else {
                    return Err(fail(format!("{} never confirmed", c.customer)));
                };
                let issued = model.tokens.iter().find(|t| &t.text == text);
                prop_assert!(issued.is_some_and(|t| t.owner == c.customer
                    && t.request == r.id
                    && t.status == TokenStatus::Used));
            }
            for role in Role::ALL {
                let holder = if r.roles.contains(role) {
                    r.incoming
                } else {
                    before.holder(role)
                };
                prop_assert_eq!(after.holder(role), holder);
            }
        }
    }
    Ok(())
}

/// Checked after every step: the stored `service` and requests (`store`)
/// against the model, terminal requests against their `frozen` copies, and
/// what each customer may propose (`proposable`, R15).
pub(crate) fn check_state(
    model: &Model,
    pool: &[CustomerId; POOL],
    service: &Service,
    store: &HashMap<RequestId, ChangeRequest>,
    frozen: &HashMap<RequestId, ChangeRequest>,
    proposable: impl Fn(CustomerId) -> Result<Proposable, TestCaseError>,
) -> Result<(), TestCaseError> {
    let now = model.now;
    // R5, R20: one holder per role, the one the model says.
    let contacts = service.contacts();
    prop_assert!(
        model.contacts.matches(contacts),
        "contacts {:?}, model {:?}",
        contacts,
        model.contacts
    );
    for (_, holder) in contacts.iter() {
        prop_assert!(pool.contains(&holder));
    }
    for customer in *pool {
        // R6: the roles each customer holds ("my contacts").
        let held: Roles = Role::ALL
            .into_iter()
            .filter(|role| model.contacts.holder(*role) == customer)
            .collect();
        prop_assert_eq!(service.roles_of(customer), held);
        // R8–R10: the engine's rights are the rules'.
        prop_assert_eq!(
            contacts.rights_of(customer),
            model.contacts.rights_of(customer)
        );
    }
    // A terminal request never changes again.
    for (id, frozen) in frozen {
        prop_assert_eq!(&store[id], frozen, "a terminal request changed");
    }
    prop_assert_eq!(store.len(), model.requests.len());
    let mut locked = Roles::EMPTY;
    for r in &model.requests {
        let s = &store[&r.id];
        prop_assert_eq!(s.state().name(), r.state.name());
        // R29: past its deadline an awaiting request is expired.
        prop_assert_eq!(s.state_name_at(now), r.state_at(now));
        prop_assert_eq!(s.is_live(now), r.live(now));
        // R29: the requests due to be recorded as expired.
        prop_assert_eq!(
            s.is_due(now),
            r.state == MState::Awaiting && now >= r.deadline
        );
        // R35: the parties, who see the request in "my requests".
        for c in *pool {
            let party = c == r.requester
                || c == r.incoming
                || r.outgoing.iter().any(|(_, holder)| *holder == c);
            prop_assert_eq!(s.is_party(c), party);
        }
        // R19, R35: whom it waits for.
        let missing = if r.live(now) { r.missing() } else { Vec::new() };
        prop_assert_eq!(s.missing_at(now), missing.clone());
        for c in *pool {
            prop_assert_eq!(s.waits_for(c, now), missing.contains(&c));
        }
        if r.live(now) {
            // R27: at most one live request per role.
            prop_assert!(
                (locked & r.roles).is_empty(),
                "R27: two live requests on a role"
            );
            locked |= r.roles;
        }
    }
    // R15: what each customer may propose matches the rules.
    for customer in *pool {
        let proposable = proposable(customer)?;
        let rights = model.contacts.rights_of(customer);
        for role in Role::ALL {
            let expected = if !rights.contains(role) {
                Err(Blocked::NotPermitted { ask: Role::Admin })
            } else if let Some(open) = model.live_with(role) {
                Err(Blocked::Locked { open })
            } else if role == Role::Billing && !model.good(model.contacts.holder(Role::Billing)) {
                // R14: a billing contact behind with payments cannot give
                // the role.
                Err(Blocked::NotInGoodStanding {
                    customer: model.contacts.holder(Role::Billing),
                })
            } else {
                Ok(())
            };
            prop_assert_eq!(proposable.check(role), expected, "R15");
        }
    }
    Ok(())
}

/// R18, R36–R40: each message against the request it is about, as
/// `request` finds it (written by the transition, or committed), then
/// exactly the expected set.
pub(crate) fn check_messages<'a>(
    messages: &[Message],
    request: impl Fn(RequestId) -> Option<&'a ChangeRequest>,
    mut expected: Vec<Expected>,
) -> Result<(), TestCaseError> {
    let mut texts = HashSet::new();
    for m in messages {
        let Some(r) = m.request().and_then(&request) else {
            return Err(fail("a message about a request not written"));
        };
        prop_assert_eq!(m.service(), r.service());
        prop_assert_eq!(m.requester(), Some(r.requester()));
        prop_assert_eq!(m.incoming(), Some(r.incoming()));
        prop_assert!(r.is_party(m.to()), "R39: a message to a non-party");
        if matches!(m.kind(), MessageKind::Replaced) {
            // R38: the roles the recipient lost.
            for role in m.roles() {
                prop_assert_eq!(r.outgoing(role), Some(m.to()));
            }
        } else {
            prop_assert_eq!(m.roles(), r.roles());
        }
        // R40: messages to non-confirmers never carry a token.
        if !r.confirmers().contains(&m.to()) {
            prop_assert!(m.token().is_none(), "R40: a token to a non-confirmer");
        }
        match m.kind() {
            MessageKind::ConfirmationRequested {
                token, deadline, ..
            } => {
                // R18: the token is its recipient's, and no one else's.
                let RequestState::Awaiting(a) = r.state() else {
                    return Err(fail("a token for a request not awaiting"));
                };
                let text = token.reveal();
                // Section 8: 256 bits as URL-safe text.
                prop_assert!(
                    text.len() == TOKEN_LEN
                        && text
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "a token is 43 URL-safe characters"
                );
                prop_assert!(texts.insert(text.clone()), "R18: one token for two parties");
                // R36: the other party, seen from the recipient.
                let other = if r.requester() == r.incoming() {
                    None
                } else if m.to() == r.requester() {
                    Some(r.incoming())
                } else {
                    Some(r.requester())
                };
                prop_assert_eq!(m.other_party(), other, "R36");
                prop_assert_eq!(*deadline, r.deadline());
                for c in a.confirmers() {
                    let verifies = match c.status() {
                        ConfirmerStatus::Pending {
                            digest: Some(d), ..
                        } => d.verify(&text),
                        _ => false,
                    };
                    prop_assert_eq!(
                        verifies,
                        c.customer() == m.to(),
                        "R18, R40: the token of {} sent to {}",
                        c.customer(),
                        m.to()
                    );
                }
            }
            MessageKind::Failed { reason } => {
                let same =
                    matches!(r.state(), RequestState::Failed { reason: why, .. } if why == reason);
                prop_assert!(same, "R39: the reason told is the request's");
            }
            _ => {}
        }
    }
    let mut actual: Vec<Expected> = messages
        .iter()
        .filter_map(|m| Some((m.request()?, m.to(), tag(m))))
        .collect();
    actual.sort();
    expected.sort();
    prop_assert_eq!(actual, expected, "messages");
    Ok(())
}

// ----- what an operation does to the model -----

/// What applying a request does (R20, R32, R38).
#[derive(Debug)]
pub(crate) struct Application {
    /// The holders once it is applied.
    pub(crate) contacts: Holders,
    /// The messages it sends.
    pub(crate) expected: Vec<Expected>,
    /// Whether an outgoing contact who is not a confirmer is told (R38).
    pub(crate) replaced: bool,
    /// The other live requests that fail, with their reasons (R32).
    pub(crate) victims: Vec<(usize, Vec<FailureReason>)>,
    /// The requests past their deadline recorded as expired with it (R29).
    pub(crate) due: Vec<usize>,
    /// The requests written, sorted: the one applied, the victims and the
    /// expired.
    pub(crate) written: Vec<RequestId>,
}

impl Model {
    /// The request the store holds as `r`, just opened by `actor` with
    /// the edit the model grouped into `groups` (R33), checked against
    /// them; not yet added.
    pub(crate) fn opening(
        &self,
        r: &ChangeRequest,
        actor: CustomerId,
        groups: &[(CustomerId, Roles)],
    ) -> Result<MRequest, TestCaseError> {
        let now = self.now;
        let Some((incoming, roles)) = groups.iter().find(|(c, _)| *c == r.incoming()) else {
            return Err(fail(format!("unexpected request for {}", r.incoming())));
        };
        prop_assert_eq!(r.requester(), actor);
        prop_assert_eq!(r.roles(), *roles);
        prop_assert_eq!(r.opened_at(), now);
        // R29: the default lifetime of 7 days.
        prop_assert_eq!(r.deadline(), now + Duration::days(7));
        // R16: the requester and the incoming customer confirm; only
        // the requester when they take the roles themselves (R8b).
        let confirmers = if *incoming == actor {
            vec![actor]
        } else {
            vec![actor, *incoming]
        };
        Ok(MRequest {
            id: r.id(),
            requester: actor,
            incoming: *incoming,
            roles: *roles,
            outgoing: roles
                .iter()
                .map(|role| (role, self.contacts.holder(role)))
                .collect(),
            confirmers: confirmers
                .iter()
                .map(|c| MConfirmer {
                    customer: *c,
                    current: None,
                    confirmed_with: None,
                    failed: 0,
                })
                .collect(),
            deadline: now + Duration::days(7),
            last_sent: now,
            state: MState::Awaiting,
        })
    }

    /// Adds `m`, opened by `actor`, once committed: the events its opening
    /// added (in `added`, R34), and the token each confirmer was sent in
    /// `messages`. Returns its index.
    pub(crate) fn opened(
        &mut self,
        added: &HashMap<RequestId, Vec<Event>>,
        actor: CustomerId,
        mut m: MRequest,
        messages: &[Message],
    ) -> Result<usize, TestCaseError> {
        let id = m.id;
        let mut events = vec![(EventKind::Opened, Some(actor))];
        events.extend(
            m.confirmers
                .iter()
                .map(|c| (EventKind::TokenIssued { to: c.customer }, Some(actor))),
        );
        expect_events(added, id, &events)?;
        for msg in messages.iter().filter(|msg| msg.request() == Some(id)) {
            let text = msg.token().expect("checked").reveal();
            let c = m.confirmer_mut(msg.to()).expect("checked");
            c.current = Some(text.clone());
            self.issue(text, msg.to(), id);
        }
        self.requests.push(m);
        Ok(self.requests.len() - 1)
    }

    /// `text` worked for `actor` on request `idx`: it is used up, and
    /// `actor` has confirmed.
    pub(crate) fn use_token(
        &mut self,
        idx: usize,
        actor: CustomerId,
        text: &str,
    ) -> Result<(), TestCaseError> {
        let id = self.requests[idx].id;
        // R18, R24: a token that works is the actor's own current one for this
        // request; it works once.
        let Some(issued) = self.tokens.iter().find(|i| i.text == text) else {
            return Err(fail("an accepted token was never issued"));
        };
        prop_assert_eq!(issued.owner, actor);
        prop_assert_eq!(issued.request, id);
        prop_assert_eq!(issued.status, TokenStatus::Current);
        self.set_status(text, TokenStatus::Used);
        let c = self.requests[idx]
            .confirmer_mut(actor)
            .expect("a confirmer");
        c.current = None;
        c.confirmed_with = Some(text.to_owned());
        Ok(())
    }

    /// R20, R32, R38: what applying request `idx` now does.
    pub(crate) fn application(&self, idx: usize) -> Application {
        let now = self.now;
        let r = &self.requests[idx];
        let mut contacts = self.contacts;
        for role in r.roles {
            contacts.set(role, r.incoming);
        }
        // R20: the confirmers are told; R38: each outgoing contact who is not
        // a confirmer learns which roles they lost.
        let mut expected = r.to_confirmers(&Tag::Applied);
        let confirmers: Vec<CustomerId> = r.confirmers.iter().map(|c| c.customer).collect();
        let mut replaced: Vec<(CustomerId, Roles)> = Vec::new();
        for (role, holder) in &r.outgoing {
            if confirmers.contains(holder) {
                continue;
            }
            match replaced.iter_mut().find(|(c, _)| c == holder) {
                Some((_, roles)) => *roles |= *role,
                None => replaced.push((*holder, Roles::from(*role))),
            }
        }
        let told = !replaced.is_empty();
        expected.extend(
            replaced
                .into_iter()
                .map(|(to, roles)| (r.id, to, Tag::Replaced(roles))),
        );
        // R32: other live requests whose requester lost a right they relied on fail.
        let mut victims = Vec::new();
        for (j, other) in self.requests.iter().enumerate() {
            if j == idx || !other.live(now) {
                continue;
            }
            let lost = other.roles - contacts.rights_of(other.requester);
            if !lost.is_empty() {
                let reasons = lost
                    .iter()
                    .map(|role| FailureReason::RightRemoved { role, by: r.id })
                    .collect();
                expected.extend(other.to_confirmers(&Tag::Failed));
                victims.push((j, reasons));
            }
        }
        // R29: the requests past their deadline it names are expired with it.
        let due = self.due_named();
        for &j in &due {
            expected.extend(self.requests[j].to_confirmers(&Tag::Expired));
        }
        let mut written: Vec<RequestId> = victims
            .iter()
            .map(|(j, _)| self.requests[*j].id)
            .chain(due.iter().map(|&j| self.requests[j].id))
            .chain([r.id])
            .collect();
        written.sort();
        Application {
            contacts,
            expected,
            replaced: told,
            victims,
            due,
            written,
        }
    }

    /// R22, R23, R29: the errors the rules allow when `actor` asks to resend
    /// request `idx` (none: it is resent).
    pub(crate) fn resend_errors(&self, idx: usize, actor: CustomerId) -> Vec<ActError> {
        let now = self.now;
        let r = &self.requests[idx];
        let mut errors = Vec::new();
        if r.live(now) {
            if r.confirmer(actor).is_none() {
                errors.push(ActError::NotAConfirmer);
            }
            let retry_at = r.last_sent + Duration::minutes(5);
            if now < retry_at {
                errors.push(ActError::TooSoon { retry_at });
            }
        } else {
            errors.push(ActError::Closed {
                state: r.state_at(now),
            });
        }
        errors
    }

    /// R23, R37: what resending request `idx` as `actor` sends (a new token
    /// for each confirmer still missing) and the events it records.
    pub(crate) fn resending(
        &self,
        idx: usize,
        actor: CustomerId,
    ) -> (Vec<Expected>, Vec<(EventKind, Option<CustomerId>)>) {
        let r = &self.requests[idx];
        let expected = r
            .missing()
            .into_iter()
            .map(|c| (r.id, c, Tag::Confirm { resent: true }))
            .collect();
        let events = r
            .missing()
            .into_iter()
            .map(|to| (EventKind::TokenReissued { to }, Some(actor)))
            .collect();
        (expected, events)
    }

    /// R23: request `idx` was resent, once committed: the tokens `messages`
    /// carry replace their recipients' (which count as rotated) with no
    /// failed attempt yet (R26).
    pub(crate) fn resent(&mut self, idx: usize, messages: &[Message]) {
        let id = self.requests[idx].id;
        for m in messages {
            let text = m.token().expect("checked").reveal();
            let c = self.requests[idx].confirmer_mut(m.to()).expect("checked");
            let old = c.current.replace(text.clone());
            c.failed = 0;
            if let Some(old) = old {
                self.set_status(&old, TokenStatus::Rotated);
            }
            self.issue(text, m.to(), id);
        }
        self.requests[idx].last_sent = self.now;
    }

    /// R28, R29: the errors the rules allow when `actor` asks to cancel
    /// request `idx` (none: it is cancelled).
    pub(crate) fn cancel_errors(&self, idx: usize, actor: CustomerId) -> Vec<ActError> {
        let r = &self.requests[idx];
        let mut errors = Vec::new();
        if !r.live(self.now) {
            errors.push(ActError::Closed {
                state: r.state_at(self.now),
            });
        } else if actor != r.requester {
            errors.push(ActError::NotRequester);
        }
        errors
    }
}

// ----- operators (R46) -----

/// What an operator's assignment does, by the rules (R46, R31, R32, R29).
#[derive(Debug)]
pub(crate) struct Assigning {
    /// Each role that changes hands, in role order.
    pub(crate) changes: Vec<Reassignment>,
    /// The holders once it is made.
    pub(crate) contacts: Holders,
    /// The live requests it overtakes, each with the role its failure names
    /// (R32).
    pub(crate) victims: Vec<(usize, Role)>,
    /// The requests past their deadline recorded as expired with it (R29).
    pub(crate) due: Vec<usize>,
    /// Every old and new holder, once, with the roles they gave or took.
    pub(crate) told: Vec<(CustomerId, Roles)>,
    /// The requests written, sorted: the victims and the expired.
    pub(crate) written: Vec<RequestId>,
    /// The news of the requests it ends: failed or expired.
    pub(crate) expected: Vec<Expected>,
}

impl Model {
    /// R46, R29: the errors the rules allow when an operator cancels or
    /// sends again request `idx` (none: it is done). Only a live request;
    /// anyone may be the party concerned, so no `NotRequester` or
    /// `NotAConfirmer`; R23's interval holds for a resend.
    pub(crate) fn operator_errors(&self, idx: usize, resend: bool) -> Vec<ActError> {
        let r = &self.requests[idx];
        if !r.live(self.now) {
            return vec![ActError::Closed {
                state: r.state_at(self.now),
            }];
        }
        let retry_at = r.last_sent + Duration::minutes(5);
        if resend && self.now < retry_at {
            return vec![ActError::TooSoon { retry_at }];
        }
        Vec::new()
    }

    /// R46, R23, R34: the events an operator's resend of request `idx`
    /// records: a new token for each confirmer still missing, by the
    /// operator.
    pub(crate) fn operator_resending(
        &self,
        idx: usize,
        act: &OperatorAct,
    ) -> Vec<(EventKind, Option<Actor>)> {
        self.requests[idx]
            .missing()
            .into_iter()
            .map(|to| {
                (
                    EventKind::TokenReissued { to },
                    Some(Actor::Operator(act.clone())),
                )
            })
            .collect()
    }

    /// What an operator's assignment of `edit` does now, or the one error
    /// the rules give (R13, R14, R46): checked per incoming customer, in the
    /// order of the first role each takes; for each, existence first, then
    /// the outgoing and the incoming billing contact's standing.
    pub(crate) fn predict_assign(&self, edit: &Edit) -> Result<Assigning, AssignError> {
        let now = self.now;
        if edit.iter().next().is_none() {
            return Err(AssignError::EmptyEdit);
        }
        let changes: Vec<Reassignment> = edit
            .iter()
            .filter(|(role, to)| self.contacts.holder(*role) != *to)
            .map(|(role, to)| Reassignment {
                role,
                from: self.contacts.holder(role),
                to,
            })
            .collect();
        if changes.is_empty() {
            return Err(AssignError::NoChange);
        }
        let mut groups: Vec<(CustomerId, Roles)> = Vec::new();
        for c in &changes {
            match groups.iter_mut().find(|(who, _)| *who == c.to) {
                Some((_, roles)) => *roles |= c.role,
                None => groups.push((c.to, Roles::from(c.role))),
            }
        }
        for (customer, roles) in &groups {
            // R13: an account.
            if !self.standing.contains_key(customer) {
                return Err(AssignError::UnknownCustomer {
                    customer: *customer,
                });
            }
            // R14: both billing contacts in good standing.
            if roles.contains(Role::Billing) {
                let outgoing = self.contacts.holder(Role::Billing);
                for who in [outgoing, *customer] {
                    if !self.good(who) {
                        return Err(AssignError::NotInGoodStanding { customer: who });
                    }
                }
            }
        }
        let mut contacts = self.contacts;
        for c in &changes {
            contacts.set(c.role, c.to);
        }
        let moved: Roles = changes.iter().map(|c| c.role).collect();
        // R32: every live request on a moved role, or whose requester lost
        // a right over one of its roles, fails; the role it names is the
        // first moved one, else the first lost.
        let mut victims = Vec::new();
        let mut expected = Vec::new();
        for (j, r) in self.requests.iter().enumerate() {
            if !r.live(now) {
                continue;
            }
            let lost = r.roles - contacts.rights_of(r.requester);
            if let Some(role) = (r.roles & moved).first().or(lost.first()) {
                victims.push((j, role));
                expected.extend(r.to_confirmers(&Tag::Failed));
            }
        }
        // R29: those past their deadline are recorded as expired.
        let due = self.due_named();
        for &j in &due {
            expected.extend(self.requests[j].to_confirmers(&Tag::Expired));
        }
        // R46: every old and new holder, once each.
        let mut told: Vec<(CustomerId, Roles)> = Vec::new();
        for c in &changes {
            for who in [c.from, c.to] {
                match told.iter_mut().find(|(t, _)| *t == who) {
                    Some((_, roles)) => *roles |= c.role,
                    None => told.push((who, Roles::from(c.role))),
                }
            }
        }
        told.sort();
        let mut written: Vec<RequestId> = victims
            .iter()
            .map(|(j, _)| self.requests[*j].id)
            .chain(due.iter().map(|&j| self.requests[j].id))
            .collect();
        written.sort();
        Ok(Assigning {
            changes,
            contacts,
            victims,
            due,
            told,
            written,
            expected,
        })
    }
}

/// R46, R40: the news of assignment `record`: each of `told` (sorted) gets
/// one message about it, with the roles they gave or took, who changed
/// what and why, and no token.
pub(crate) fn check_assigned_messages(
    messages: &[&Message],
    record: &Assignment,
    told: &[(CustomerId, Roles)],
) -> Result<(), TestCaseError> {
    let mut actual: Vec<(CustomerId, Roles)> = Vec::with_capacity(messages.len());
    for m in messages {
        prop_assert_eq!(m.assignment(), Some(record.id()));
        prop_assert_eq!(
            (m.request(), m.requester(), m.incoming()),
            (None, None, None)
        );
        prop_assert_eq!(m.other_party(), None);
        prop_assert_eq!(m.service(), record.service());
        prop_assert!(m.token().is_none(), "R40: a token in an assignment's news");
        let MessageKind::Assigned { by, changes } = m.kind() else {
            return Err(fail(format!("R46: {:?} about an assignment", tag(m))));
        };
        prop_assert_eq!(by, record.by(), "R46: who and why");
        prop_assert_eq!(changes.as_slice(), record.changes(), "R46: what changed");
        actual.push((m.to(), m.roles()));
    }
    actual.sort();
    prop_assert_eq!(
        actual.as_slice(),
        told,
        "R46: every old and new holder, once"
    );
    Ok(())
}

/// R47, R20, R46: the history of a service, `entries` as the driver lists
/// it, against what was `seen` at the last check, when the service showed
/// `before`; it now shows `after`.
///
/// The history is newest first (ties by id). Whatever it held before it
/// still holds (requests may move on, assignments never change). And every
/// change of the contacts since is explained by one entry new to it: a
/// request now applied, every confirmer of which confirmed (a customer's
/// `confirmed` event each, and the `applied` event by one of them), that
/// took exactly its roles from their outgoing holders to its incoming
/// customer; or an assignment, with its operator and a reason that says
/// something, that moved exactly its roles from the holder it names to the
/// new one. With no such entry, the contacts did not change.
pub(crate) fn explain_changes(
    seen: &[HistoryEntry],
    entries: &[HistoryEntry],
    before: &Contacts,
    after: &Contacts,
) -> Result<(), TestCaseError> {
    for pair in entries.windows(2) {
        prop_assert!(
            pair[0].key().listed_before(&pair[1].key()),
            "R47: the history is not newest first"
        );
    }
    let applied = |e: &HistoryEntry| -> Option<RequestId> {
        match e {
            HistoryEntry::Request(r) if matches!(r.state(), RequestState::Applied { .. }) => {
                Some(r.id())
            }
            _ => None,
        }
    };
    let was_applied: HashSet<RequestId> = seen.iter().filter_map(applied).collect();
    let mut explanations = Vec::new();
    for old in seen {
        match old {
            HistoryEntry::Assignment(a) => prop_assert!(
                entries.contains(old),
                "R47: assignment {} left the history or changed",
                a.id()
            ),
            HistoryEntry::Request(r) => prop_assert!(
                entries
                    .iter()
                    .any(|e| matches!(e, HistoryEntry::Request(n) if n.id() == r.id())),
                "R47: request {} left the history",
                r.id()
            ),
        }
    }
    for entry in entries {
        let new = match entry {
            HistoryEntry::Request(_) => applied(entry).is_some_and(|id| !was_applied.contains(&id)),
            HistoryEntry::Assignment(_) => !seen.contains(entry),
        };
        if new {
            explanations.push(entry);
        }
    }
    let explanation = match explanations.as_slice() {
        [] => {
            prop_assert_eq!(
                after,
                before,
                "R20, R46: the contacts changed and the history explains nothing"
            );
            return Ok(());
        }
        [one] => *one,
        many => {
            return Err(fail(format!(
                "one step changed the contacts {} times: {many:?}",
                many.len()
            )));
        }
    };
    check_moves(&explained_moves(explanation)?, before, after)
}

/// What the entry that explains a change of contacts moved, as (role,
/// from, to), once it is checked that it may: a request every confirmer
/// confirmed and one of them applied (R16, R20), or an assignment with its
/// operator and a reason that says something (R46).
fn explained_moves(
    entry: &HistoryEntry,
) -> Result<Vec<(Role, CustomerId, CustomerId)>, TestCaseError> {
    match entry {
        HistoryEntry::Request(r) => {
            for c in r.confirmers() {
                prop_assert!(
                    r.history()
                        .iter()
                        .any(|e| *e.kind() == EventKind::Confirmed && e.customer() == Some(c)),
                    "R16, R20: request {} applied without {}'s confirmation",
                    r.id(),
                    c
                );
            }
            let last = r.history().last().expect("a history");
            prop_assert!(
                *last.kind() == EventKind::Applied
                    && last.customer().is_some_and(|c| r.confirmers().contains(&c)),
                "R20: request {} applied by {:?}",
                r.id(),
                last.actor()
            );
            Ok(r.outgoing_holders()
                .map(|(role, from)| (role, from, r.incoming()))
                .collect())
        }
        HistoryEntry::Assignment(a) => {
            prop_assert!(!a.by().operator().as_str().is_empty());
            prop_assert!(
                !a.by().reason().as_str().trim().is_empty(),
                "R46: an assignment without a reason"
            );
            Ok(a.changes().iter().map(|c| (c.role, c.from, c.to)).collect())
        }
    }
}

/// The contacts went from `before` to `after` by exactly `moves`: each
/// (role, from, to) took the role from its holder to another, and no other
/// role changed.
pub(crate) fn check_moves(
    moves: &[(Role, CustomerId, CustomerId)],
    before: &Contacts,
    after: &Contacts,
) -> Result<(), TestCaseError> {
    for role in Role::ALL {
        if let Some((_, from, to)) = moves.iter().find(|(r, _, _)| *r == role) {
            prop_assert_eq!(before.holder(role), *from, "the {} contact it took", role);
            prop_assert_eq!(after.holder(role), *to, "the {} contact it gave", role);
        } else {
            prop_assert_eq!(
                after.holder(role),
                before.holder(role),
                "the {} contact changed with nothing to explain it",
                role
            );
        }
    }
    Ok(())
}

// ----- running the operations -----

/// How often each outcome happened (see `generator_reaches_every_outcome`).
pub(crate) type Outcomes = BTreeMap<&'static str, usize>;

/// What the operations run against: the engine with its store
/// (`engine_model.rs`), or the driver with the in-memory host
/// (`driver_model.rs`). [`Subject::perform`] picks the request, customer and
/// token an [`Op`] names and calls the subject's method for it, the same for
/// both; each method checks the outcome against the model and updates it.
pub(crate) trait Subject {
    fn model(&self) -> &Model;
    fn model_mut(&mut self) -> &mut Model;
    fn pool(&self) -> [CustomerId; POOL];
    /// The service the operations edit, as it stands.
    fn service(&self) -> Service;
    /// Adds a line to what happened, for the failure report.
    fn trace(&mut self, line: String);
    /// Counts an outcome.
    fn note(&mut self, outcome: &'static str);
    /// The history events the last commit added, per request (R34).
    fn added(&self) -> &HashMap<RequestId, Vec<Event>>;
    /// Checked after every step.
    fn check_all(&mut self) -> Result<(), TestCaseError>;

    /// R8–R14, R16, R27, R33, R36.
    fn submit(&mut self, edit: &Edit, actor: CustomerId) -> Result<(), TestCaseError>;
    /// Accept or refuse request `idx` as `actor` with the token `pick`
    /// chooses (R16, R20, R21, R24–R26, R30–R32, R38, R39); returns `idx` if
    /// the request applied.
    fn confirm_at(
        &mut self,
        idx: usize,
        actor: CustomerId,
        pick: &TokenPick,
        accept: bool,
    ) -> Result<Option<usize>, TestCaseError>;
    /// R22, R23, R37.
    fn resend(&mut self, idx: usize, actor: CustomerId) -> Result<(), TestCaseError>;
    /// R28, R39.
    fn cancel(&mut self, idx: usize, actor: CustomerId) -> Result<(), TestCaseError>;
    /// R29, R39.
    fn expire(&mut self, target: &Target) -> Result<(), TestCaseError>;
    /// A customer fell behind with payments or caught up (`good`) in the
    /// model (R14, R30); for a subject with its own record of it.
    fn standing_changed(&mut self, _customer: CustomerId, _good: bool) {}
    /// R46, R39: an operator cancels request `idx`. Only for a subject that
    /// runs [`operator_op`]s.
    fn operator_cancel(&mut self, _idx: usize, _act: &OperatorAct) -> Result<(), TestCaseError> {
        Err(fail("this subject runs no operator's operation"))
    }
    /// R46, R22, R23, R37: an operator sends request `idx` again.
    fn operator_resend(&mut self, _idx: usize, _act: &OperatorAct) -> Result<(), TestCaseError> {
        Err(fail("this subject runs no operator's operation"))
    }
    /// R46, R13, R14, R31, R32: an operator assigns as `edit` says.
    fn assign(&mut self, _edit: &Edit, _act: &OperatorAct) -> Result<(), TestCaseError> {
        Err(fail("this subject runs no operator's operation"))
    }

    /// Runs one operation; returns the model index of the request applied,
    /// if any.
    fn perform(&mut self, op: &Op) -> Result<Option<usize>, TestCaseError> {
        let pool = self.pool();
        match op {
            Op::Submit {
                actor,
                roles,
                incoming,
                second,
            } => {
                let (actor, edit) = make_edit(
                    self.model(),
                    &pool,
                    &self.service(),
                    actor,
                    roles,
                    incoming,
                    *second,
                );
                self.submit(&edit, actor).map(|()| None)
            }
            Op::Accept {
                target,
                actor,
                token,
            } => self.confirm(target, actor, token, true),
            Op::AcceptAll { target } => {
                let Some(idx) = self.model().pick(target) else {
                    return Ok(None);
                };
                for actor in self.model().requests[idx].missing() {
                    let applied = self.confirm_at(idx, actor, &TokenPick::Own, true)?;
                    if applied.is_some() {
                        return Ok(applied);
                    }
                    self.check_all()?;
                }
                Ok(None)
            }
            Op::Refuse {
                target,
                actor,
                token,
            } => self.confirm(target, actor, token, false),
            Op::Resend { target, actor } => match self.operands(target, actor, false) {
                Some((idx, actor)) => self.resend(idx, actor).map(|()| None),
                None => Ok(None),
            },
            Op::Cancel { target, actor } => match self.operands(target, actor, false) {
                Some((idx, actor)) => self.cancel(idx, actor).map(|()| None),
                None => Ok(None),
            },
            Op::Expire { target } => self.expire(target).map(|()| None),
            Op::Advance { minutes } => {
                // Time only moves forward (R29).
                let model = self.model_mut();
                model.now += Duration::minutes(*minutes);
                let line = format!("advance {minutes} min to {}", model.now);
                self.trace(line);
                Ok(None)
            }
            Op::AdvanceToDeadline { target, offset } => {
                let model = self.model_mut();
                let Some(idx) = model.pick(target) else {
                    return Ok(None);
                };
                let to = model.requests[idx].deadline + Duration::minutes(*offset);
                if to > model.now {
                    model.now = to;
                    self.trace(format!("advance to {to}"));
                }
                Ok(None)
            }
            Op::ToggleStanding { customer } => {
                let customer = pool[*customer];
                let status = self.model_mut().standing.get_mut(&customer).expect("pool");
                *status = match status {
                    AccountStatus::GoodStanding => AccountStatus::BehindWithPayments,
                    _ => AccountStatus::GoodStanding,
                };
                let status = *status;
                self.standing_changed(customer, status == AccountStatus::GoodStanding);
                self.trace(format!("{customer} is now {status:?}"));
                Ok(None)
            }
            Op::OperatorCancel { .. } | Op::OperatorResend { .. } | Op::Assign { .. } => {
                self.perform_operator(op)
            }
        }
    }

    /// Runs an operator's operation (R46).
    fn perform_operator(&mut self, op: &Op) -> Result<Option<usize>, TestCaseError> {
        let pool = self.pool();
        match op {
            Op::OperatorCancel { target, act } => match self.model().pick(target) {
                Some(idx) => self
                    .operator_cancel(idx, &operator_acts()[*act])
                    .map(|()| None),
                None => Ok(None),
            },
            Op::OperatorResend { target, act } => match self.model().pick(target) {
                Some(idx) => self
                    .operator_resend(idx, &operator_acts()[*act])
                    .map(|()| None),
                None => Ok(None),
            },
            Op::Assign {
                roles,
                incoming,
                second,
                act,
            } => {
                let edit = make_assignment(
                    self.model(),
                    &pool,
                    &self.service(),
                    *roles,
                    incoming,
                    *second,
                );
                self.assign(&edit, &operator_acts()[*act]).map(|()| None)
            }
            _ => Err(fail(format!("{op:?} is a customer's operation"))),
        }
    }

    /// The request `target` picks and the customer `who` picks for it: with
    /// `missing_first` a confirmer still missing if there is one.
    fn operands(
        &self,
        target: &Target,
        who: &Who,
        missing_first: bool,
    ) -> Option<(usize, CustomerId)> {
        let idx = self.model().pick(target)?;
        let actor = pick_actor(self.model(), &self.pool(), who, idx, missing_first);
        Some((idx, actor))
    }

    /// Accept or refuse (R16, R20, R21, R24–R26, R30–R32, R38, R39).
    fn confirm(
        &mut self,
        target: &Target,
        who: &Who,
        pick: &TokenPick,
        accept: bool,
    ) -> Result<Option<usize>, TestCaseError> {
        match self.operands(target, who, true) {
            Some((idx, actor)) => self.confirm_at(idx, actor, pick, accept),
            None => Ok(None),
        }
    }

    /// R26, R34: the wrong token `actor` presented for request `idx` was
    /// recorded. For a confirmer with a live token (`counted`), the events
    /// recorded, then their count, and past the limit their token
    /// invalidated.
    fn failed_attempt_recorded(
        &mut self,
        idx: usize,
        actor: CustomerId,
        counted: Counted,
    ) -> Result<(), TestCaseError> {
        let Counted::Yes { invalidates } = counted else {
            return Ok(());
        };
        let id = self.model().requests[idx].id;
        let mut events = vec![(EventKind::FailedAttempt, Some(actor))];
        if invalidates {
            events.push((EventKind::TokenInvalidated { of: actor }, None));
        }
        expect_events(self.added(), id, &events)?;
        self.note(if invalidates {
            "failed attempt: token invalidated (R26)"
        } else {
            "failed attempt: counted (R26)"
        });
        let model = self.model_mut();
        let c = model.requests[idx]
            .confirmer_mut(actor)
            .expect("a confirmer");
        c.failed += 1;
        if invalidates {
            let old = c.current.take().expect("a live token");
            model.set_status(&old, TokenStatus::Invalidated);
        }
        Ok(())
    }
}

/// Sequences of `steps`: the generator's seed, the failed attempts allowed
/// (R26), and 1 to 30 steps.
pub(crate) fn sequences<S: Strategy>(steps: S) -> impl Strategy<Value = (u64, u32, Vec<S::Value>)> {
    (
        any::<u64>(),
        1u32..=5,
        proptest::collection::vec(steps, 1..=30),
    )
}

/// Runs 1,000 sequences of 1 to 30 `steps` (with a seed and a limit of
/// failed attempts, as the main test draws them) from a fixed seed through
/// `run`, which says how each went and which outcomes it noted, and fails
/// unless every one of `expected` happened, so a change to the generator
/// cannot quietly stop testing one of them. With `stats_var` set in the
/// environment it prints how often each outcome happened.
pub(crate) fn reach_every_outcome<S: Strategy>(
    subject: &str,
    steps: S,
    run: impl Fn(u64, u32, &[S::Value]) -> (Result<(), TestCaseError>, Outcomes),
    expected: &[&str],
    stats_var: &str,
) {
    use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

    let strategy = sequences(steps);
    let mut runner = TestRunner::new_with_rng(
        RunnerConfig {
            cases: 1000,
            failure_persistence: None,
            ..RunnerConfig::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let seen = RefCell::new(Outcomes::new());
    runner
        .run(&strategy, |(seed, max_failed_attempts, steps)| {
            let (result, outcomes) = run(seed, max_failed_attempts, &steps);
            for (outcome, n) in outcomes {
                *seen.borrow_mut().entry(outcome).or_default() += n;
            }
            result
        })
        .unwrap_or_else(|e| panic!("{subject} follows the rules: {e:?}"));
    let seen = seen.into_inner();
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|outcome| !seen.contains_key(outcome))
        .collect();
    assert!(
        missing.is_empty(),
        "never happened: {missing:?}\nseen: {seen:#?}"
    );
    if std::env::var_os(stats_var).is_some() {
        eprintln!("{seen:#?}");
    }
}
