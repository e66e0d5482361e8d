//! Change requests: their identity, state and history (R16–R35).

use core::fmt;
use core::str::FromStr;

use rand_core::TryCryptoRng;
use time::OffsetDateTime;

use crate::token::{RandomnessError, TokenDigest, hex_decode};
use crate::{Actor, AssignmentId, CustomerId, OperatorAct, Role, Roles, ServiceName, Version};

#[cfg(feature = "serde")]
mod stored;

/// The identifier of a change request: 128 random bits, written as 32
/// lowercase hex digits.
///
/// Random rather than sequential, so that any host (one database, several
/// shards, an offline test) can make ids without coordination, and so that
/// ids do not tell how many requests exist.
///
/// ```
/// use service_contacts::RequestId;
///
/// let id: RequestId = "0123456789abcdef0123456789abcdef".parse()?;
/// assert_eq!(id.to_string(), "0123456789abcdef0123456789abcdef");
/// assert!("0123".parse::<RequestId>().is_err());
/// # Ok::<(), service_contacts::ParseRequestIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId([u8; 16]);

impl RequestId {
    /// An id from its 16 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> RequestId {
        RequestId(bytes)
    }

    /// The 16 bytes of the id.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Draws a new id from the caller's generator.
    pub(crate) fn generate<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
    ) -> Result<RequestId, RandomnessError> {
        let mut bytes = [0u8; 16];
        rng.try_fill_bytes(&mut bytes)
            .map_err(|err| RandomnessError::new(&err))?;
        Ok(RequestId(bytes))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({self})")
    }
}

impl FromStr for RequestId {
    type Err = ParseRequestIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 16];
        hex_decode(text, &mut bytes).map_err(|()| ParseRequestIdError)?;
        Ok(RequestId(bytes))
    }
}

/// Text that is not a request id (32 hex digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected a request id of 32 hex digits")]
pub struct ParseRequestIdError;

/// The stable text names of request states, as the hosting provider's public
/// API spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateName {
    /// `validatingByCustomers`: waiting for confirmations.
    ValidatingByCustomers,
    /// `done`: applied.
    Done,
    /// `refused`: a confirmer refused.
    Refused,
    /// `aborted`: the requester cancelled.
    Aborted,
    /// `expired`: the deadline passed.
    Expired,
    /// `error`: a check failed when applying, or a change removed a right.
    Error,
}

impl StateName {
    /// The stable text: `validatingByCustomers`, `done`, `refused`, `aborted`,
    /// `expired` or `error`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            StateName::ValidatingByCustomers => "validatingByCustomers",
            StateName::Done => "done",
            StateName::Refused => "refused",
            StateName::Aborted => "aborted",
            StateName::Expired => "expired",
            StateName::Error => "error",
        }
    }
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a change request stands.
///
/// One open state and five terminal ones; a terminal request never changes
/// again. Each variant carries exactly the data of that state: only an
/// awaiting request has confirmers and token digests.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "state", rename_all = "camelCase", deny_unknown_fields)
)]
pub enum RequestState {
    /// Waiting for confirmations (R19).
    #[cfg_attr(feature = "serde", serde(rename = "validatingByCustomers"))]
    Awaiting(Awaiting),
    /// Every confirmer accepted and the change took effect (R20).
    #[cfg_attr(feature = "serde", serde(rename = "done"))]
    Applied {
        /// When it took effect.
        #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
        at: OffsetDateTime,
    },
    /// A confirmer refused (R21).
    Refused {
        /// Who refused.
        by: CustomerId,
        /// When.
        #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
        at: OffsetDateTime,
    },
    /// The requester (R28) or an operator (R46) cancelled.
    #[cfg_attr(feature = "serde", serde(rename = "aborted"))]
    Cancelled {
        /// Who cancelled: the requester, or an operator with their reason.
        by: Actor,
        /// When.
        #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
        at: OffsetDateTime,
    },
    /// The deadline passed before every confirmation arrived (R29).
    Expired {
        /// When the expiry was recorded.
        #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
        at: OffsetDateTime,
    },
    /// A check failed when applying (R30), or an applied change removed a
    /// right this request relied on (R32). Nothing changed.
    #[cfg_attr(feature = "serde", serde(rename = "error"))]
    Failed {
        /// Why.
        reason: FailureReason,
        /// When.
        #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
        at: OffsetDateTime,
    },
}

impl RequestState {
    /// The stable name of this state.
    #[must_use]
    pub const fn name(&self) -> StateName {
        match self {
            RequestState::Awaiting(_) => StateName::ValidatingByCustomers,
            RequestState::Applied { .. } => StateName::Done,
            RequestState::Refused { .. } => StateName::Refused,
            RequestState::Cancelled { .. } => StateName::Aborted,
            RequestState::Expired { .. } => StateName::Expired,
            RequestState::Failed { .. } => StateName::Error,
        }
    }

    /// Whether the state is terminal (anything but awaiting).
    #[must_use]
    pub const fn is_terminal(&self) -> bool {
        !matches!(self, RequestState::Awaiting(_))
    }
}

/// The data of an awaiting request: each confirmer's standing, and when
/// tokens were last sent (for the resend interval, R23).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Awaiting {
    confirmers: Vec<Confirmer>,
    #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
    last_sent: OffsetDateTime,
}

impl Awaiting {
    pub(crate) fn new(confirmers: Vec<Confirmer>, last_sent: OffsetDateTime) -> Awaiting {
        Awaiting {
            confirmers,
            last_sent,
        }
    }

    /// The confirmers, the requester first.
    #[must_use]
    pub fn confirmers(&self) -> &[Confirmer] {
        &self.confirmers
    }

    pub(crate) fn confirmers_mut(&mut self) -> &mut [Confirmer] {
        &mut self.confirmers
    }

    /// The confirmers who have not confirmed yet (R19).
    pub fn missing(&self) -> impl Iterator<Item = CustomerId> + '_ {
        self.confirmers
            .iter()
            .filter(|c| !c.has_confirmed())
            .map(Confirmer::customer)
    }

    /// When tokens were last sent, at opening or on a resend.
    #[must_use]
    pub fn last_sent(&self) -> OffsetDateTime {
        self.last_sent
    }

    pub(crate) fn set_last_sent(&mut self, at: OffsetDateTime) {
        self.last_sent = at;
    }
}

/// One confirmer of an awaiting request and where they stand.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Confirmer {
    customer: CustomerId,
    status: ConfirmerStatus,
}

impl Confirmer {
    pub(crate) fn pending(customer: CustomerId, digest: TokenDigest) -> Confirmer {
        Confirmer {
            customer,
            status: ConfirmerStatus::Pending {
                digest: Some(digest),
                failed_attempts: 0,
            },
        }
    }

    /// Who this confirmer is.
    #[must_use]
    pub fn customer(&self) -> CustomerId {
        self.customer
    }

    /// Where they stand.
    #[must_use]
    pub fn status(&self) -> &ConfirmerStatus {
        &self.status
    }

    pub(crate) fn status_mut(&mut self) -> &mut ConfirmerStatus {
        &mut self.status
    }

    /// Whether they have confirmed.
    #[must_use]
    pub fn has_confirmed(&self) -> bool {
        matches!(self.status, ConfirmerStatus::Confirmed { .. })
    }
}

/// Where one confirmer stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "status", rename_all = "camelCase", deny_unknown_fields)
)]
pub enum ConfirmerStatus {
    /// Not confirmed yet.
    Pending {
        /// The digest of their current token; `None` once too many failed
        /// attempts invalidated it (R26) until a resend issues a new one.
        digest: Option<TokenDigest>,
        /// Failed token attempts since their token was issued (R26).
        failed_attempts: u32,
    },
    /// Confirmed.
    Confirmed {
        /// When.
        #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
        at: OffsetDateTime,
    },
}

/// Why a request ended as failed (R30, R32).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(
        tag = "reason",
        rename_all = "camelCase",
        try_from = "stored::RawReason"
    )
)]
#[non_exhaustive]
pub enum FailureReason {
    /// The service no longer exists.
    #[error("the service no longer exists")]
    ServiceGone,
    /// The requester no longer holds a role that gives the right to this
    /// change (R8–R10).
    #[error("the requester no longer has the right to change the {role} contact")]
    RequesterLostRight {
        /// A role of the request the requester may no longer change.
        role: Role,
    },
    /// The outgoing contact no longer holds the role.
    #[error("the {role} contact changed since the request was opened")]
    OutgoingChanged {
        /// The role that changed hands.
        role: Role,
    },
    /// A billing contact, outgoing or incoming, is behind with payments (R14).
    #[error("{customer} is not in good standing for billing")]
    NotInGoodStanding {
        /// Who.
        customer: CustomerId,
    },
    /// The incoming customer's account no longer exists (R13).
    #[error("the incoming customer's account no longer exists")]
    IncomingUnknown,
    /// Another request applied on the same service and removed a right this
    /// one relied on (R32).
    #[error("request {by} changed the contacts and removed the requester's right over {role}")]
    RightRemoved {
        /// A role of this request the requester may no longer change.
        role: Role,
        /// The request whose change removed the right.
        by: RequestId,
    },
    /// An operator assigned the contacts of the service directly (R46): the
    /// assignment changed a role of this request, or removed the
    /// requester's right over it (R32).
    #[error(
        "an operator assigned the contacts ({by}), which changed or removed the right over {role}"
    )]
    Reassigned {
        /// A role of this request the assignment changed, or that the
        /// requester may no longer change.
        role: Role,
        /// The assignment.
        by: AssignmentId,
    },
}

/// One entry of a request's history (R34): what happened, when, and who acted.
///
/// Entries never contain a token's text (R40).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "stored::RawEvent"))]
pub struct Event {
    #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
    at: OffsetDateTime,
    actor: Option<Actor>,
    #[cfg_attr(feature = "serde", serde(flatten))]
    kind: EventKind,
}

impl Event {
    pub(crate) fn new(at: OffsetDateTime, actor: Option<Actor>, kind: EventKind) -> Event {
        Event { at, actor, kind }
    }

    /// An event of `customer`'s doing.
    pub(crate) fn by(at: OffsetDateTime, customer: CustomerId, kind: EventKind) -> Event {
        Event::new(at, Some(Actor::Customer(customer)), kind)
    }

    /// When it happened.
    #[must_use]
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }

    /// Who acted: a customer, or an operator with their reason (R46);
    /// `None` for what the system did on its own (expiry, a failure found
    /// when another request applied).
    #[must_use]
    pub fn actor(&self) -> Option<&Actor> {
        self.actor.as_ref()
    }

    /// The customer who acted, if a customer did.
    #[must_use]
    pub fn customer(&self) -> Option<CustomerId> {
        self.actor.as_ref().and_then(Actor::customer)
    }

    /// The operator's act (who and why), if an operator acted (R46).
    #[must_use]
    pub fn operator(&self) -> Option<&OperatorAct> {
        self.actor.as_ref().and_then(Actor::operator)
    }

    /// What happened.
    #[must_use]
    pub fn kind(&self) -> &EventKind {
        &self.kind
    }
}

/// What happened in one history entry (R34).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "event", rename_all = "camelCase"))]
#[non_exhaustive]
pub enum EventKind {
    /// The request was opened by the actor.
    Opened,
    /// A token was issued to a confirmer.
    TokenIssued {
        /// The confirmer.
        to: CustomerId,
    },
    /// A new token replaced a confirmer's old one (R23).
    TokenReissued {
        /// The confirmer.
        to: CustomerId,
    },
    /// The actor confirmed.
    Confirmed,
    /// The actor presented a token that did not match (R26).
    FailedAttempt,
    /// A confirmer's token was invalidated after too many failed attempts (R26).
    TokenInvalidated {
        /// The confirmer.
        of: CustomerId,
    },
    /// The actor refused.
    Refused,
    /// The actor (the requester, or an operator) cancelled.
    Cancelled,
    /// The deadline passed.
    Expired,
    /// The change took effect.
    Applied,
    /// The request failed.
    Failed {
        /// Why.
        reason: FailureReason,
    },
}

/// Who held each role of a request when it was opened: one optional holder
/// per role, inline (no allocation). Serialized as a map from role to
/// customer, such as `{"tech": "AB1-OVH"}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub(crate) struct Outgoing {
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    admin: Option<CustomerId>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    tech: Option<CustomerId>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    billing: Option<CustomerId>,
}

impl Outgoing {
    fn slot(&mut self, role: Role) -> &mut Option<CustomerId> {
        match role {
            Role::Admin => &mut self.admin,
            Role::Tech => &mut self.tech,
            Role::Billing => &mut self.billing,
        }
    }

    pub(crate) fn get(&self, role: Role) -> Option<CustomerId> {
        match role {
            Role::Admin => self.admin,
            Role::Tech => self.tech,
            Role::Billing => self.billing,
        }
    }

    /// Each role with a holder and the holder, in role order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Role, CustomerId)> + '_ {
        Role::ALL
            .into_iter()
            .filter_map(|role| self.get(role).map(|c| (role, c)))
    }

    #[cfg(feature = "serde")]
    fn roles(&self) -> Roles {
        self.iter().map(|(role, _)| role).collect()
    }
}

impl FromIterator<(Role, CustomerId)> for Outgoing {
    fn from_iter<I: IntoIterator<Item = (Role, CustomerId)>>(iter: I) -> Self {
        let mut out = Outgoing::default();
        for (role, customer) in iter {
            *out.slot(role) = Some(customer);
        }
        out
    }
}

/// A change request: a proposal to give one or more roles of one service to
/// another customer, which takes effect once its confirmers accept.
///
/// Requests are made and changed only by the [`Engine`](crate::Engine); hosts
/// store and load them whole (with the `serde` feature, as one document whose
/// consistency is checked when it is read back).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "stored::RawRequest"))]
pub struct ChangeRequest {
    pub(crate) id: RequestId,
    pub(crate) service: ServiceName,
    pub(crate) requester: CustomerId,
    pub(crate) incoming: CustomerId,
    pub(crate) roles: Roles,
    pub(crate) outgoing: Outgoing,
    #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
    pub(crate) opened_at: OffsetDateTime,
    #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
    pub(crate) deadline: OffsetDateTime,
    pub(crate) version: Version,
    pub(crate) state: RequestState,
    pub(crate) history: Vec<Event>,
}

impl ChangeRequest {
    /// The request's id.
    #[must_use]
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The service it changes.
    #[must_use]
    pub fn service(&self) -> &ServiceName {
        &self.service
    }

    /// Who asked.
    #[must_use]
    pub fn requester(&self) -> CustomerId {
        self.requester
    }

    /// Who receives the roles.
    #[must_use]
    pub fn incoming(&self) -> CustomerId {
        self.incoming
    }

    /// The roles that change hands.
    #[must_use]
    pub fn roles(&self) -> Roles {
        self.roles
    }

    /// Who held `role` when the request was opened, if the request covers it.
    #[must_use]
    pub fn outgoing(&self, role: Role) -> Option<CustomerId> {
        self.outgoing.get(role)
    }

    /// Each role of the request with its outgoing holder, in role order.
    pub fn outgoing_holders(&self) -> impl Iterator<Item = (Role, CustomerId)> + '_ {
        self.outgoing.iter()
    }

    /// The customers whose confirmation is required: the requester, and the
    /// incoming customer if it is someone else (R16).
    #[must_use]
    pub fn confirmers(&self) -> Vec<CustomerId> {
        self.confirmer_ids().collect()
    }

    /// [`ChangeRequest::confirmers`], without a vector.
    pub(crate) fn confirmer_ids(&self) -> impl Iterator<Item = CustomerId> + use<> {
        let incoming = (self.incoming != self.requester).then_some(self.incoming);
        std::iter::once(self.requester).chain(incoming)
    }

    /// Every party: the confirmers, then the outgoing contacts who are not
    /// confirmers, without repetition.
    #[must_use]
    pub fn parties(&self) -> Vec<CustomerId> {
        let mut parties = self.confirmers();
        for (_, holder) in self.outgoing_holders() {
            if !parties.contains(&holder) {
                parties.push(holder);
            }
        }
        parties
    }

    /// Whether `customer` is a party of the request (R35).
    #[must_use]
    pub fn is_party(&self, customer: CustomerId) -> bool {
        self.requester == customer
            || self.incoming == customer
            || self.outgoing.iter().any(|(_, c)| c == customer)
    }

    /// When it was opened.
    #[must_use]
    pub fn opened_at(&self) -> OffsetDateTime {
        self.opened_at
    }

    /// When it expires if still awaiting (R29).
    #[must_use]
    pub fn deadline(&self) -> OffsetDateTime {
        self.deadline
    }

    /// The version in the store (R31).
    #[must_use]
    pub fn version(&self) -> Version {
        self.version
    }

    /// The recorded state. A request still awaiting after its deadline
    /// behaves as expired: see [`ChangeRequest::state_name_at`].
    #[must_use]
    pub fn state(&self) -> &RequestState {
        &self.state
    }

    /// The history, oldest first (R34).
    #[must_use]
    pub fn history(&self) -> &[Event] {
        &self.history
    }

    /// Whether the recorded state is awaiting confirmation (whatever the time).
    #[must_use]
    pub fn is_open(&self) -> bool {
        !self.state.is_terminal()
    }

    /// Whether the request is awaiting and its deadline has passed at `now`:
    /// it behaves as expired and is due to be recorded so (R29).
    #[must_use]
    pub fn is_due(&self, now: OffsetDateTime) -> bool {
        self.is_open() && now >= self.deadline
    }

    /// Whether the request is awaiting at `now` (open and not past its deadline).
    #[must_use]
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.is_open() && now < self.deadline
    }

    /// The state as it stands at `now`: `expired` for an awaiting request past
    /// its deadline (R29), the recorded state otherwise.
    #[must_use]
    pub fn state_name_at(&self, now: OffsetDateTime) -> StateName {
        if self.is_due(now) {
            StateName::Expired
        } else {
            self.state.name()
        }
    }

    /// The confirmers still missing at `now` (R19); empty unless live.
    #[must_use]
    pub fn missing_at(&self, now: OffsetDateTime) -> Vec<CustomerId> {
        self.missing_ids_at(now).collect()
    }

    /// [`ChangeRequest::missing_at`], without a vector.
    fn missing_ids_at(&self, now: OffsetDateTime) -> impl Iterator<Item = CustomerId> + '_ {
        let awaiting = match &self.state {
            RequestState::Awaiting(awaiting) if self.is_live(now) => Some(awaiting),
            _ => None,
        };
        awaiting.into_iter().flat_map(Awaiting::missing)
    }

    /// Whether the request waits for `customer`'s confirmation at `now` (R35).
    #[must_use]
    pub fn waits_for(&self, customer: CustomerId, now: OffsetDateTime) -> bool {
        self.missing_ids_at(now).any(|missing| missing == customer)
    }

    /// Whether the request waits for `customer`'s confirmation at `now`, and
    /// for no one else's: theirs is the last one.
    pub(crate) fn waits_only_for(&self, customer: CustomerId, now: OffsetDateTime) -> bool {
        let mut missing = self.missing_ids_at(now);
        missing.next() == Some(customer) && missing.next().is_none()
    }

    /// The failed token attempts `customer` has made since their current
    /// token was issued (R26): counted while the request is recorded as
    /// awaiting and `customer` is a confirmer who has not confirmed; 0 in
    /// every other case. A resend starts the count again (R23).
    ///
    /// ```
    /// use service_contacts::{AccountStatus, ActError, Edit, Engine, Role, Service, Snapshot};
    /// use time::macros::datetime;
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// # let mut rng = ChaCha20Rng::seed_from_u64(7);
    ///
    /// let engine = Engine::default();
    /// let (admin, tech) = ("AD1-OVH".parse()?, "TE2-OVH".parse()?);
    /// let service = Service::order("example.com".parse()?, admin);
    /// let snapshot = Snapshot { service: &service, requests: &[] };
    /// let now = datetime!(2026-11-21 10:00 UTC);
    /// let edit = Edit::new(service.name().clone()).with(Role::Tech, tech);
    /// let opened = engine.submit(&edit, admin, snapshot, &|_| AccountStatus::GoodStanding, now, &mut rng)?;
    /// let request = opened.requests().next().unwrap();
    /// assert_eq!(request.failed_attempts(tech), 0);
    ///
    /// // A wrong token is refused and counted; the host saves the count.
    /// let rejection = engine.refuse(request, tech, "not-the-token", now).unwrap_err();
    /// assert_eq!(rejection.error, ActError::InvalidToken);
    /// let counted = &rejection.record.unwrap().requests[0].value;
    /// assert_eq!(counted.failed_attempts(tech), 1);
    /// assert_eq!(counted.failed_attempts(admin), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn failed_attempts(&self, customer: CustomerId) -> u32 {
        let RequestState::Awaiting(awaiting) = &self.state else {
            return 0;
        };
        awaiting
            .confirmers
            .iter()
            .find(|c| c.customer == customer)
            .map_or(0, |c| match c.status {
                ConfirmerStatus::Pending {
                    failed_attempts, ..
                } => failed_attempts,
                ConfirmerStatus::Confirmed { .. } => 0,
            })
    }

    /// When the last event happened; operations refuse earlier times.
    #[must_use]
    pub fn last_event_at(&self) -> OffsetDateTime {
        self.history.last().map_or(self.opened_at, Event::at)
    }

    /// The accounts whose standing decides this request when it applies: the
    /// incoming customer and, for a billing change, the outgoing billing
    /// contact (R13, R14, R30).
    #[must_use]
    pub fn accounts_to_check(&self) -> Vec<CustomerId> {
        let mut out = vec![self.incoming];
        if let Some(billing) = self.outgoing(Role::Billing)
            && billing != self.incoming
        {
            out.push(billing);
        }
        out
    }
}
