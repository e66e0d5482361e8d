//! The pure core: permissions, edits and the request state machine
//! (R8–R41). No clock, no OS randomness, no I/O.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use rand_core::TryCryptoRng;
use time::{Duration, OffsetDateTime};

use crate::assignment::AssignmentProblem;
use crate::message::About;
use crate::request::{Awaiting, Confirmer, ConfirmerStatus, Event, EventKind, Outgoing};
use crate::{
    Actor, Assignment, AssignmentId, ChangeRequest, Contacts, CustomerId, FailureReason, Message,
    MessageKind, OperatorAct, RandomnessError, Reassignment, RequestId, RequestState, Role, Roles,
    Service, ServiceName, StateName, Token, Version,
};

/// Settings of the engine, with documented defaults. Only valid settings
/// can be built ([`Config::new`]).
///
/// ```
/// use service_contacts::{Config, ConfigError};
/// use time::Duration;
///
/// let config = Config::new(Duration::days(3), Duration::minutes(10), 5)?;
/// assert_eq!(config.request_lifetime(), Duration::days(3));
/// assert_eq!(Config::default().max_failed_attempts(), 5);
///
/// // A resend interval that is not shorter than the lifetime is refused.
/// let err = Config::new(Duration::hours(1), Duration::hours(2), 5).unwrap_err();
/// assert_eq!(err, ConfigError::ResendIntervalNotShorter);
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    request_lifetime: Duration,
    resend_interval: Duration,
    max_failed_attempts: u32,
}

impl Config {
    /// The longest request lifetime allowed: 3,660 days (about ten years).
    pub const MAX_REQUEST_LIFETIME: Duration = Duration::days(3660);

    /// The most failed token attempts a confirmer may be allowed: 1,000.
    pub const MAX_FAILED_ATTEMPTS: u32 = 1000;

    /// Settings, checked.
    ///
    /// - `request_lifetime`: how long a request waits for confirmations
    ///   before it expires (R29); positive, at most
    ///   [`Config::MAX_REQUEST_LIFETIME`].
    /// - `resend_interval`: the least time between two sendings of a
    ///   request's tokens (R23); positive and shorter than the lifetime, so
    ///   that a resend is possible before the deadline.
    /// - `max_failed_attempts`: failed token attempts a confirmer may make
    ///   before their token is invalidated (R26); from 1 to
    ///   [`Config::MAX_FAILED_ATTEMPTS`].
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`] that applies, in the order of the
    /// parameters.
    pub fn new(
        request_lifetime: Duration,
        resend_interval: Duration,
        max_failed_attempts: u32,
    ) -> Result<Config, ConfigError> {
        if !request_lifetime.is_positive() {
            return Err(ConfigError::LifetimeNotPositive);
        }
        if request_lifetime > Config::MAX_REQUEST_LIFETIME {
            return Err(ConfigError::LifetimeTooLong);
        }
        if !resend_interval.is_positive() {
            return Err(ConfigError::ResendIntervalNotPositive);
        }
        if resend_interval >= request_lifetime {
            return Err(ConfigError::ResendIntervalNotShorter);
        }
        if max_failed_attempts == 0 {
            return Err(ConfigError::NoFailedAttempts);
        }
        if max_failed_attempts > Config::MAX_FAILED_ATTEMPTS {
            return Err(ConfigError::TooManyFailedAttempts);
        }
        Ok(Config {
            request_lifetime,
            resend_interval,
            max_failed_attempts,
        })
    }

    /// How long a request waits for confirmations before it expires (R29).
    /// Default: 7 days.
    #[must_use]
    pub fn request_lifetime(&self) -> Duration {
        self.request_lifetime
    }

    /// The least time between two sendings of a request's tokens (R23): a
    /// resend earlier than this after the last one is refused. Default: 5
    /// minutes.
    #[must_use]
    pub fn resend_interval(&self) -> Duration {
        self.resend_interval
    }

    /// Failed token attempts a confirmer may make before their token is
    /// invalidated (R26); a resend issues a new one. Default: 5.
    #[must_use]
    pub fn max_failed_attempts(&self) -> u32 {
        self.max_failed_attempts
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            request_lifetime: Duration::days(7),
            resend_interval: Duration::minutes(5),
            max_failed_attempts: 5,
        }
    }
}

/// Why [`Config::new`] refused a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The request lifetime is zero or negative.
    #[error("the request lifetime must be positive")]
    LifetimeNotPositive,
    /// The request lifetime is longer than [`Config::MAX_REQUEST_LIFETIME`].
    #[error("the request lifetime must be at most 3660 days")]
    LifetimeTooLong,
    /// The resend interval is zero or negative (R23 would not limit anything).
    #[error("the resend interval must be positive")]
    ResendIntervalNotPositive,
    /// The resend interval is not shorter than the request lifetime (no
    /// resend would ever be possible).
    #[error("the resend interval must be shorter than the request lifetime")]
    ResendIntervalNotShorter,
    /// No failed attempt allowed: a token would stop working at the first
    /// typing mistake.
    #[error("at least one failed token attempt must be allowed")]
    NoFailedAttempts,
    /// More failed attempts than [`Config::MAX_FAILED_ATTEMPTS`].
    #[error("at most 1000 failed token attempts may be allowed")]
    TooManyFailedAttempts,
}

/// What the host's account directory says of a customer (R13, R14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    /// No such account.
    Unknown,
    /// A known account, up to date with payments.
    GoodStanding,
    /// A known account, behind with payments.
    BehindWithPayments,
}

impl AccountStatus {
    /// The status from the two questions a directory answers.
    #[must_use]
    pub const fn from_answers(exists: bool, in_good_standing: bool) -> AccountStatus {
        match (exists, in_good_standing) {
            (false, _) => AccountStatus::Unknown,
            (true, true) => AccountStatus::GoodStanding,
            (true, false) => AccountStatus::BehindWithPayments,
        }
    }
}

/// The facts about accounts the engine consults, already at hand.
///
/// The engine asks only about the customers that
/// [`Edit::accounts_to_check`] or [`ChangeRequest::accounts_to_check`] names,
/// so a host (sync or async) can look those up first and pass a map. A
/// closure works too.
///
/// ```
/// use std::collections::{HashMap, HashSet};
/// use service_contacts::{AccountStatus, Accounts, CustomerId};
///
/// let known: CustomerId = "AB1-OVH".parse()?;
/// let map = HashMap::from([(known, AccountStatus::GoodStanding)]);
/// assert_eq!(map.status(known), AccountStatus::GoodStanding);
/// assert_eq!(map.status("ZZ9-OVH".parse()?), AccountStatus::Unknown);
/// # Ok::<(), service_contacts::ParseCustomerIdError>(())
/// ```
pub trait Accounts {
    /// The status of `customer`; [`AccountStatus::Unknown`] for anyone the
    /// host does not know.
    fn status(&self, customer: CustomerId) -> AccountStatus;
}

impl<F: Fn(CustomerId) -> AccountStatus> Accounts for F {
    fn status(&self, customer: CustomerId) -> AccountStatus {
        self(customer)
    }
}

/// A list of customers and their status, such as a host looks up for one
/// action; anyone not listed is [`AccountStatus::Unknown`].
impl Accounts for [(CustomerId, AccountStatus)] {
    fn status(&self, customer: CustomerId) -> AccountStatus {
        self.iter()
            .find(|(c, _)| *c == customer)
            .map_or(AccountStatus::Unknown, |(_, status)| *status)
    }
}

impl Accounts for Vec<(CustomerId, AccountStatus)> {
    fn status(&self, customer: CustomerId) -> AccountStatus {
        self.as_slice().status(customer)
    }
}

impl<S: BuildHasher> Accounts for HashMap<CustomerId, AccountStatus, S> {
    fn status(&self, customer: CustomerId) -> AccountStatus {
        self.get(&customer)
            .copied()
            .unwrap_or(AccountStatus::Unknown)
    }
}

/// One submitted edit of a service's contacts: a new holder for one or more
/// roles (R33).
///
/// A role named with its current holder is left out as unchanged, so a form
/// may send all three contacts back. What remains becomes one request per
/// distinct incoming customer.
///
/// ```
/// use service_contacts::{Edit, Role};
///
/// let edit = Edit::new("example.com".parse()?)
///     .with(Role::Tech, "TE1-OVH".parse()?)
///     .with(Role::Billing, "TE1-OVH".parse()?);
/// assert_eq!(edit.proposed(Role::Tech), Some("TE1-OVH".parse()?));
/// assert_eq!(edit.proposed(Role::Admin), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    service: ServiceName,
    proposed: [Option<CustomerId>; 3],
}

impl Edit {
    /// An empty edit of `service`.
    #[must_use]
    pub fn new(service: ServiceName) -> Edit {
        Edit {
            service,
            proposed: [None; 3],
        }
    }

    /// The edit with `customer` proposed for `role` (replacing an earlier
    /// proposal for the same role).
    #[must_use]
    pub fn with(mut self, role: Role, customer: CustomerId) -> Edit {
        self.set(role, customer);
        self
    }

    /// Proposes `customer` for `role`.
    pub fn set(&mut self, role: Role, customer: CustomerId) {
        self.proposed[slot(role)] = Some(customer);
    }

    /// The service edited.
    #[must_use]
    pub fn service(&self) -> &ServiceName {
        &self.service
    }

    /// Who is proposed for `role`, if anyone.
    #[must_use]
    pub fn proposed(&self, role: Role) -> Option<CustomerId> {
        self.proposed[slot(role)]
    }

    /// Each proposed role with its customer, in role order.
    pub fn iter(&self) -> impl Iterator<Item = (Role, CustomerId)> + '_ {
        Role::ALL
            .into_iter()
            .filter_map(|role| self.proposed(role).map(|c| (role, c)))
    }

    /// The accounts [`Engine::submit`] consults for this edit: every proposed
    /// customer and, if billing is proposed, the current billing contact.
    #[must_use]
    pub fn accounts_to_check(&self, service: &Service) -> Vec<CustomerId> {
        let mut out: Vec<CustomerId> = Vec::with_capacity(4);
        let billing = self
            .proposed(Role::Billing)
            .map(|_| service.holder(Role::Billing));
        for customer in self.iter().map(|(_, c)| c).chain(billing) {
            if !out.contains(&customer) {
                out.push(customer);
            }
        }
        out
    }
}

fn slot(role: Role) -> usize {
    match role {
        Role::Admin => 0,
        Role::Tech => 1,
        Role::Billing => 2,
    }
}

/// Why one role cannot be proposed right now (R11, R27).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Blocked {
    /// The customer has no right over the role; `ask` says which contact does.
    #[error("not permitted: ask the {ask} contact")]
    NotPermitted {
        /// The contact who can make this change (in practice the admin).
        ask: Role,
    },
    /// An open request already covers the role.
    #[error("request {open} is already open for this role")]
    Locked {
        /// The open request.
        open: RequestId,
    },
    /// The service was removed.
    #[error("the service was removed")]
    Removed,
    /// The current billing contact is behind with payments, so the billing
    /// role cannot change hands (R14).
    #[error("{customer} is behind with payments and cannot give the billing role")]
    NotInGoodStanding {
        /// The current billing contact.
        customer: CustomerId,
    },
}

/// What a customer may propose on a service right now (R15): for each role,
/// either allowed or the reason it is not. [`Engine::submit`] decides each
/// role with the same function, so the two never disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposable {
    roles: [Result<(), Blocked>; 3],
}

impl Proposable {
    /// Whether `role` can be proposed, or why not.
    ///
    /// # Errors
    ///
    /// The [`Blocked`] reason for that role.
    pub fn check(&self, role: Role) -> Result<(), Blocked> {
        self.roles[slot(role)]
    }

    /// The roles that can be proposed.
    #[must_use]
    pub fn allowed(&self) -> Roles {
        Role::ALL
            .into_iter()
            .filter(|role| self.check(*role).is_ok())
            .collect()
    }
}

/// What the store holds about one service right now: the service record,
/// and the requests it names as the last of its roles
/// ([`Service::requests_to_load`]), whatever their state.
///
/// The two may be read in either order, or at once (R44). The service
/// record decides which requests matter: requests it does not name are
/// ignored, and a request it names that is missing here makes the snapshot
/// *outdated* (it was read before that request was opened): a decision that
/// needs it is refused with [`SubmitError::SnapshotOutdated`],
/// [`ActError::SnapshotOutdated`] or [`ServiceError::SnapshotOutdated`], and
/// the host reads again. Every
/// decision that relies on the service writes it at its next version, so a
/// decision made on a record that changed meanwhile cannot commit (R31).
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    /// The service.
    pub service: &'a Service,
    /// The requests named by [`Service::requests_to_load`], as stored now.
    pub requests: &'a [ChangeRequest],
}

impl<'a> Snapshot<'a> {
    /// The request `id` of this service, if the snapshot holds it.
    fn find(&self, id: RequestId) -> Option<&'a ChangeRequest> {
        self.requests
            .iter()
            .find(|r| r.id() == id && r.service() == self.service.name())
    }

    /// Who holds the lock on `role` at `now` (R27).
    fn lock(&self, role: Role, now: OffsetDateTime) -> Lock {
        let Some(id) = self.service.last_request(role) else {
            return Lock::Free;
        };
        match self.find(id) {
            // Named by the service but not read: the requests were read
            // before it opened.
            None => Lock::Missing(id),
            Some(r) if r.is_live(now) => Lock::Held(id),
            // Past its deadline (its expiry is recorded with the next write
            // of the service), or closed.
            Some(_) => Lock::Free,
        }
    }

    /// The requests the service names other than `except`, each of which
    /// must be here.
    fn others(
        &self,
        except: Option<RequestId>,
    ) -> Result<impl Iterator<Item = &'a ChangeRequest> + use<'a>, Outdated> {
        let snapshot = *self;
        let named = move || {
            snapshot
                .service
                .requests_to_load()
                .filter(move |id| Some(*id) != except)
        };
        if named().any(|id| snapshot.find(id).is_none()) {
            return Err(Outdated);
        }
        Ok(named().filter_map(move |id| snapshot.find(id)))
    }
}

/// The state of the lock on one role (R27).
enum Lock {
    /// No live request covers the role.
    Free,
    /// The live request `id` covers it.
    Held(RequestId),
    /// The service names request `id`, which the snapshot lacks.
    Missing(RequestId),
}

/// A snapshot that lacks a request its service names.
struct Outdated;

/// A write for the store to make: `value` replaces the record at version
/// `expected`, or is created if `expected` is `None` (R31).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write<T> {
    /// The new record (carrying its new version).
    pub value: T,
    /// The version it replaces; `None` for a new record.
    pub expected: Option<Version>,
}

/// The writes of one transition, to be committed together or not at all (R31).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Services whose contacts change (at most one per transition).
    pub services: Vec<Write<Service>>,
    /// Requests created or updated.
    pub requests: Vec<Write<ChangeRequest>>,
    /// Operators' direct assignments (R46), each new: a record with its id
    /// must not exist yet. Never updated once written.
    pub assignments: Vec<Assignment>,
}

impl Changes {
    /// Whether there is nothing to write.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.requests.is_empty() && self.assignments.is_empty()
    }
}

/// The result of an operation: what to save, then what to send (R41).
#[derive(Clone, Debug, Default)]
pub struct Transition {
    /// Writes to commit atomically.
    pub changes: Changes,
    /// Messages to deliver once the writes are committed.
    pub messages: Vec<Message>,
}

impl Transition {
    /// Adds the writes and messages of `other`, a transition on other
    /// records.
    fn merge(&mut self, other: Transition) {
        self.changes.services.extend(other.changes.services);
        self.changes.requests.extend(other.changes.requests);
        self.changes.assignments.extend(other.changes.assignments);
        self.messages.extend(other.messages);
    }

    /// The requests this transition writes, in their new state.
    pub fn requests(&self) -> impl Iterator<Item = &ChangeRequest> {
        self.changes.requests.iter().map(|w| &w.value)
    }

    /// The request with `id` among the writes, if any.
    #[must_use]
    pub fn request(&self, id: RequestId) -> Option<&ChangeRequest> {
        self.requests().find(|r| r.id() == id)
    }
}

/// Why an edit was refused (R11–R14, R27, R33). Nothing was opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The edit is for another service than the one given.
    #[error("the edit is for service {edit}, not {given}")]
    ServiceMismatch {
        /// The edit's service.
        edit: ServiceName,
        /// The service given.
        given: ServiceName,
    },
    /// The edit proposes nobody.
    #[error("the edit proposes no new contact")]
    EmptyEdit,
    /// Every proposed customer already holds the role (R12).
    #[error("nothing to change: every proposed contact already holds the role")]
    NoChange,
    /// The customer has no right to change this role (R11).
    #[error("not permitted to change the {role} contact: ask the {ask} contact")]
    NotPermitted {
        /// The role.
        role: Role,
        /// Who can make the change.
        ask: Role,
    },
    /// An open request already covers the role (R27).
    #[error("request {open} is already open for the {role} contact")]
    Conflict {
        /// The role.
        role: Role,
        /// The open request.
        open: RequestId,
    },
    /// The proposed customer has no account (R13).
    #[error("no customer account {customer}")]
    UnknownCustomer {
        /// The proposed customer.
        customer: CustomerId,
    },
    /// A billing contact, outgoing or incoming, is behind with payments (R14).
    #[error("{customer} is behind with payments and cannot give or take the billing role")]
    NotInGoodStanding {
        /// Who.
        customer: CustomerId,
    },
    /// The service was removed (R44): a host that reads it as a tombstone
    /// reports it as unknown.
    #[error("the service was removed")]
    ServiceRemoved,
    /// The service names a request the snapshot lacks: the requests were
    /// read before it opened. Read again and decide again (R44; the driver
    /// does).
    #[error("the service changed while it was read: read it again")]
    SnapshotOutdated,
    /// The configured request lifetime gives no deadline after `now` (it is
    /// not positive, or the deadline would be past the year 9999).
    #[error("the configured request lifetime gives no valid deadline")]
    InvalidLifetime,
    /// The caller's generator failed.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
}

impl From<(Role, Blocked)> for SubmitError {
    fn from((role, blocked): (Role, Blocked)) -> Self {
        match blocked {
            Blocked::NotPermitted { ask } => SubmitError::NotPermitted { role, ask },
            Blocked::Locked { open } => SubmitError::Conflict { role, open },
            Blocked::NotInGoodStanding { customer } => SubmitError::NotInGoodStanding { customer },
            Blocked::Removed => SubmitError::ServiceRemoved,
        }
    }
}

/// Why an operation on an existing request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActError {
    /// The token was not accepted (R24, R25). One error for every case: a
    /// wrong, used, rotated or invalidated token, another party's token, or an
    /// actor who is not a confirmer.
    #[error("invalid token")]
    InvalidToken,
    /// The request is no longer awaiting (R29: past its deadline it is
    /// `expired`).
    #[error("the request is {state}")]
    Closed {
        /// Its state.
        state: StateName,
    },
    /// `now` is earlier than the request's last event.
    #[error("the time given is before the request's last event at {last}")]
    OutOfOrder {
        /// When the last event happened.
        last: OffsetDateTime,
    },
    /// Only a confirmer may have the request sent again (R22).
    #[error("only a confirmer of the request may have it sent again")]
    NotAConfirmer,
    /// Only the requester may cancel (R28).
    #[error("only the requester may cancel the request")]
    NotRequester,
    /// A resend comes too soon after the last sending (R23).
    #[error("the request was sent recently; it can be sent again from {retry_at}")]
    TooSoon {
        /// The earliest time for the next resend.
        retry_at: OffsetDateTime,
    },
    /// Expiry asked before the deadline (R29).
    #[error("the request does not expire before {deadline}")]
    NotDue {
        /// The deadline.
        deadline: OffsetDateTime,
    },
    /// The snapshot given to [`Engine::accept`] is of another service than
    /// the request's: a mistake of the host, refused before anything is
    /// decided.
    #[error("the snapshot is of service {given}, the request is on {expected}")]
    WrongSnapshot {
        /// The request's service.
        expected: ServiceName,
        /// The snapshot's service.
        given: ServiceName,
    },
    /// The snapshot given to [`Engine::accept`] for a last confirmation
    /// disagrees with its service record: the service does not name this
    /// request on its roles, or names a request the snapshot lacks. The
    /// service and the requests were read at different moments (R44): read
    /// them again and decide again (the driver does, as after a commit
    /// conflict).
    #[error("the service changed while it was read: read it again")]
    SnapshotOutdated,
    /// The caller's generator failed.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
}

/// Why creating ([`Engine::import`]) or removing ([`Engine::remove`])
/// services was refused. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A live service by that name exists already (R42).
    #[error("a service named {0} exists already")]
    Exists(ServiceName),
    /// The batch names the same service twice (R42).
    #[error("the batch names the service {0} twice")]
    Duplicate(ServiceName),
    /// The batch is empty.
    #[error("the batch imports no service")]
    EmptyBatch,
    /// The service was removed already.
    #[error("the service {0} was removed")]
    Removed(ServiceName),
    /// The records given for the services are not the ones they stand for:
    /// an existing record of another name, or (for a removal) a snapshot
    /// that lacks a request its service names. Read again (R44).
    #[error("the records given are not the current ones: read them again")]
    SnapshotOutdated,
}

/// Why an operator's direct assignment ([`Engine::assign`]) was refused
/// (R13, R14, R46). Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssignError {
    /// The edit is for another service than the one given.
    #[error("the edit is for service {edit}, not {given}")]
    ServiceMismatch {
        /// The edit's service.
        edit: ServiceName,
        /// The service given.
        given: ServiceName,
    },
    /// The edit names nobody.
    #[error("the assignment names no contact")]
    EmptyEdit,
    /// Every customer named already holds the role.
    #[error("nothing to change: every contact named already holds the role")]
    NoChange,
    /// A customer named has no account (R13).
    #[error("no customer account {customer}")]
    UnknownCustomer {
        /// The customer named.
        customer: CustomerId,
    },
    /// A billing contact, outgoing or incoming, is behind with payments (R14).
    #[error("{customer} is behind with payments and cannot give or take the billing role")]
    NotInGoodStanding {
        /// Who.
        customer: CustomerId,
    },
    /// The service was removed (R44).
    #[error("the service was removed")]
    ServiceRemoved,
    /// The service names a request the snapshot lacks: read again (R44; the
    /// driver does).
    #[error("the service changed while it was read: read it again")]
    SnapshotOutdated,
    /// The caller's generator failed.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
}

/// A refused accept or refuse (R24–R26).
///
/// The refusal leaves the request as it was, except that a wrong token
/// presented by a confirmer is counted and written to the history (R26, R34):
/// `record` then holds that write, which the host commits before answering.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{error}")]
pub struct Rejection {
    /// The error to report.
    pub error: ActError,
    /// The failed attempt to save, if one was counted.
    pub record: Option<Changes>,
}

impl From<ActError> for Rejection {
    fn from(error: ActError) -> Self {
        Rejection {
            error,
            record: None,
        }
    }
}

/// The pure change-request engine.
///
/// Each operation takes the current state, the facts it needs, `now` and
/// (where it draws tokens) the caller's cryptographic generator, and returns a
/// [`Transition`] (writes to commit, then messages to deliver) or an error
/// that changes nothing, with one exception: a wrong token presented by a
/// confirmer comes back as a [`Rejection`] whose `record` the host must
/// commit, or the limit on failed attempts (R26) never takes effect. It reads
/// no clock, no OS randomness, and does no I/O, so a sync driver or an async
/// host can drive it.
///
/// ```
/// use service_contacts::{AccountStatus, Edit, Engine, Role, Service, Snapshot, StateName};
/// use time::macros::datetime;
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// # let mut rng = ChaCha20Rng::seed_from_u64(7);
///
/// let engine = Engine::default();
/// let (admin, tech) = ("AD1-OVH".parse()?, "TE2-OVH".parse()?);
/// let service = Service::order("example.com".parse()?, admin);
/// let everyone_ok = |_| AccountStatus::GoodStanding;
/// let now = datetime!(2026-11-21 10:00 UTC);
///
/// // The admin proposes a new tech contact (R8a).
/// let edit = Edit::new(service.name().clone()).with(Role::Tech, tech);
/// let snapshot = Snapshot { service: &service, requests: &[] };
/// let opened = engine.submit(&edit, admin, snapshot, &everyone_ok, now, &mut rng)?;
/// let request = opened.requests().next().unwrap().clone();
/// assert_eq!(request.missing_at(now), [admin, tech]);
///
/// // Each confirmer got their own token (R18).
/// let token_of = |who| opened.messages.iter().find(|m| m.to() == who).unwrap().token().unwrap().reveal();
///
/// // The service as stored now names the request on the tech role (R27).
/// let service = opened.changes.services[0].value.clone();
/// assert_eq!(service.last_request(Role::Tech), Some(request.id()));
///
/// let step = engine.accept(&request, admin, &token_of(admin), now, None, &everyone_ok)?;
/// let request = step.request(request.id()).unwrap().clone();
/// // The last confirmation applies: it needs the service and the requests it names.
/// let requests = [request.clone()];
/// let snapshot = Snapshot { service: &service, requests: &requests };
/// let done = engine.accept(&request, tech, &token_of(tech), now, Some(snapshot), &everyone_ok)?;
/// assert_eq!(done.request(request.id()).unwrap().state().name(), StateName::Done);
/// assert_eq!(done.changes.services[0].value.holder(Role::Tech), tech); // R20
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Engine {
    config: Config,
}

impl Engine {
    /// An engine with `config`.
    #[must_use]
    pub fn new(config: Config) -> Engine {
        Engine { config }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- getters -----

    /// What `actor` may propose on the service right now (R15): each role is
    /// allowed, not permitted (R8–R11), locked by an open request (R27), or,
    /// for billing, blocked because the current billing contact is behind
    /// with payments (R14). `accounts` is consulted for the current billing
    /// contact only; what depends on the customer proposed (R13, R14) is
    /// decided by [`Engine::submit`] once that customer is named.
    #[must_use]
    pub fn proposable(
        &self,
        snapshot: Snapshot<'_>,
        actor: CustomerId,
        accounts: &(impl Accounts + ?Sized),
        now: OffsetDateTime,
    ) -> Proposable {
        let rights = snapshot.service.contacts().rights_of(actor);
        let check = |role: Role| {
            if !rights.contains(role) {
                return Err(Blocked::NotPermitted { ask: Role::Admin });
            }
            if snapshot.service.is_removed() {
                return Err(Blocked::Removed);
            }
            // A request named but not read counts as open: the answer
            // stands as of the moment the service was read.
            if let Lock::Held(open) | Lock::Missing(open) = snapshot.lock(role, now) {
                return Err(Blocked::Locked { open });
            }
            let billing = snapshot.service.holder(Role::Billing);
            if role == Role::Billing && accounts.status(billing) != AccountStatus::GoodStanding {
                return Err(Blocked::NotInGoodStanding { customer: billing });
            }
            Ok(())
        };
        Proposable {
            roles: Role::ALL.map(check),
        }
    }

    // ----- handlers -----

    /// Opens the requests of an edit (R12–R14, R16, R27, R33, R36): one per
    /// distinct incoming customer, all or none.
    ///
    /// # Errors
    ///
    /// A [`SubmitError`] if any part of the edit is refused; nothing is opened.
    pub fn submit<R: TryCryptoRng + ?Sized>(
        &self,
        edit: &Edit,
        actor: CustomerId,
        snapshot: Snapshot<'_>,
        accounts: &(impl Accounts + ?Sized),
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Transition, SubmitError> {
        let now = utc(now);
        let service = snapshot.service;
        if service.is_removed() {
            return Err(SubmitError::ServiceRemoved);
        }
        if edit.service() != service.name() {
            return Err(SubmitError::ServiceMismatch {
                edit: edit.service().clone(),
                given: service.name().clone(),
            });
        }
        if edit.iter().next().is_none() {
            return Err(SubmitError::EmptyEdit);
        }
        // R12: roles named with their current holder are unchanged.
        let changes: Vec<(Role, CustomerId)> = edit
            .iter()
            .filter(|(role, customer)| service.holder(*role) != *customer)
            .collect();
        if changes.is_empty() {
            return Err(SubmitError::NoChange);
        }
        // R44: a decision needs every request the service names.
        if snapshot.others(None).is_err() {
            return Err(SubmitError::SnapshotOutdated);
        }
        // R8–R11, R14, R15, R27: the same decision as `proposable`.
        let proposable = self.proposable(snapshot, actor, accounts, now);
        for (role, _) in &changes {
            proposable
                .check(*role)
                .map_err(|b| SubmitError::from((*role, b)))?;
        }
        // R33: one request per distinct incoming customer, in role order.
        let mut groups: Vec<(CustomerId, Roles)> = Vec::with_capacity(changes.len());
        for (role, customer) in changes {
            if let Some((_, roles)) = groups.iter_mut().find(|(c, _)| *c == customer) {
                roles.insert(role);
            } else {
                groups.push((customer, Roles::from(role)));
            }
        }
        for (incoming, roles) in &groups {
            check_accounts(service, *incoming, *roles, accounts).map_err(
                |problem| match problem {
                    AccountProblem::Unknown(customer) => SubmitError::UnknownCustomer { customer },
                    AccountProblem::Standing(customer) => {
                        SubmitError::NotInGoodStanding { customer }
                    }
                },
            )?;
        }
        // R29: the deadline, which must lie after `now` and within the
        // range of dates.
        let deadline = now
            .checked_add(self.config.request_lifetime)
            .filter(|deadline| *deadline > now)
            .ok_or(SubmitError::InvalidLifetime)?;
        // Everything is decided; only the generator can fail from here, and
        // then nothing is returned.
        let mut transition = Transition::default();
        // R27, R31, R44: the service names each new request as the last of
        // its roles, at its next version, so two decisions made on the same
        // version of the service conflict in the store, whatever order the
        // host read the service and its requests in.
        let mut next = service.next_version();
        for (incoming, roles) in groups {
            let id = Self::open(
                &mut transition,
                service,
                actor,
                incoming,
                roles,
                now,
                deadline,
                rng,
            )?;
            next.set_last_request(roles, id);
        }
        // R29: requests past their deadline that the service names (a role
        // taken from one among them) are recorded as expired with it.
        expire_due_named(snapshot, None, now, &mut transition)
            .map_err(|Outdated| SubmitError::SnapshotOutdated)?;
        transition.changes.services.push(Write {
            value: next,
            expected: Some(service.version()),
        });
        Ok(transition)
    }

    /// Creates services: ordered ones (R5, [`Service::order`]) or existing
    /// ones brought in with their holders (R42, [`Service::import`]), all in
    /// one commit or none.
    ///
    /// `existing` holds the records the store has for any of these names
    /// (read with [`Store::service`](crate::Store::service)): a live one
    /// refuses the batch; a removed one (a tombstone) is replaced, and the
    /// name's versions go on after it, so that no decision made about the
    /// old service can commit onto the new one (R44). Checking that the
    /// holders have accounts (R13) is the caller's: the driver does it.
    ///
    /// ```
    /// use service_contacts::{Contacts, Engine, ServiceError};
    ///
    /// let (a, b) = ("AD1-OVH".parse()?, "TE2-OVH".parse()?);
    /// let batch = [
    ///     ("one.example".parse()?, Contacts::new(a, b, a)),
    ///     ("two.example".parse()?, Contacts::all(b)),
    /// ];
    /// let transition = Engine::default().import(batch.clone(), &[])?;
    /// assert_eq!(transition.changes.services.len(), 2);
    /// assert!(transition.changes.services.iter().all(|w| w.expected.is_none()));
    ///
    /// let twice = [batch[0].clone(), batch[0].clone()];
    /// let err = Engine::default().import(twice, &[]).unwrap_err();
    /// assert_eq!(err, ServiceError::Duplicate("one.example".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ServiceError::EmptyBatch`], [`ServiceError::Duplicate`],
    /// [`ServiceError::Exists`], or [`ServiceError::SnapshotOutdated`] when
    /// `existing` holds a record of a name outside the batch.
    pub fn import(
        &self,
        services: impl IntoIterator<Item = (ServiceName, Contacts)>,
        existing: &[Service],
    ) -> Result<Transition, ServiceError> {
        let mut writes: Vec<Write<Service>> = Vec::new();
        let mut names: HashSet<ServiceName> = HashSet::new();
        for (name, contacts) in services {
            if !names.insert(name.clone()) {
                return Err(ServiceError::Duplicate(name));
            }
            let fresh = Service::import(name, contacts);
            let write = match existing.iter().find(|s| s.name() == fresh.name()) {
                None => Write {
                    value: fresh,
                    expected: None,
                },
                Some(old) if old.is_removed() => Write {
                    value: fresh.after(old),
                    expected: Some(old.version()),
                },
                Some(old) => return Err(ServiceError::Exists(old.name().clone())),
            };
            writes.push(write);
        }
        if writes.is_empty() {
            return Err(ServiceError::EmptyBatch);
        }
        if existing.iter().any(|s| !names.contains(s.name())) {
            return Err(ServiceError::SnapshotOutdated);
        }
        Ok(Transition {
            changes: Changes {
                services: writes,
                requests: Vec::new(),
                assignments: Vec::new(),
            },
            messages: Vec::new(),
        })
    }

    /// Removes a service, as a host does when it is terminated: its record
    /// becomes a tombstone at its next version (never deleted, so the name's
    /// versions never restart, R44), and every live request on it fails
    /// because the service is gone (R30, R39), in the same commit.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Removed`] if it was removed already,
    /// [`ServiceError::SnapshotOutdated`] if the snapshot lacks a request the
    /// service names.
    pub fn remove(
        &self,
        snapshot: Snapshot<'_>,
        now: OffsetDateTime,
    ) -> Result<Transition, ServiceError> {
        let now = utc(now);
        let service = snapshot.service;
        if service.is_removed() {
            return Err(ServiceError::Removed(service.name().clone()));
        }
        let others = snapshot
            .others(None)
            .map_err(|Outdated| ServiceError::SnapshotOutdated)?;
        let mut transition = Transition {
            changes: Changes {
                services: vec![Write {
                    value: service.removal(),
                    expected: Some(service.version()),
                }],
                requests: Vec::new(),
                assignments: Vec::new(),
            },
            messages: Vec::new(),
        };
        // Every open request it names ends with it: the live ones fail, those
        // past their deadline expire (R29), so none outlives the service.
        for request in others.filter(|r| r.is_open()) {
            let ended = if request.is_live(now) {
                Self::fail_with(
                    request,
                    bumped(request),
                    FailureReason::ServiceGone,
                    now,
                    None,
                )
            } else {
                record_expiry(request, now)
            };
            transition.merge(ended);
        }
        Ok(transition)
    }

    /// Assigns contacts directly at an operator's hand, without
    /// confirmations (R46): for a customer who cannot receive mail, once
    /// support checked who they are outside the system.
    ///
    /// `edit` names the new holder of each role to assign; roles it names
    /// with their current holder are left as they are. The rules of a
    /// confirmed change still hold: every incoming customer exists (R13);
    /// for a billing change both billing contacts are in good standing
    /// (R14); the service changes at its next version, in one commit with
    /// everything else (R31); every live request of the service that covers
    /// a changed role, or whose requester loses a right it relied on, ends
    /// as failed ([`FailureReason::Reassigned`], the operator as its actor,
    /// R32), and those past their deadline are recorded as expired (R29).
    /// The [`Assignment`] record keeps who changed what, when and why (R34,
    /// R47), and every old and new holder of a changed role is told
    /// ([`MessageKind::Assigned`]). `accounts` answers for the customers of
    /// [`Edit::accounts_to_check`].
    ///
    /// # Errors
    ///
    /// [`AssignError::ServiceMismatch`], [`AssignError::EmptyEdit`],
    /// [`AssignError::NoChange`], [`AssignError::UnknownCustomer`] (R13),
    /// [`AssignError::NotInGoodStanding`] (R14),
    /// [`AssignError::ServiceRemoved`], [`AssignError::SnapshotOutdated`],
    /// or the generator's failure.
    pub fn assign<R: TryCryptoRng + ?Sized>(
        &self,
        snapshot: Snapshot<'_>,
        edit: &Edit,
        act: &OperatorAct,
        accounts: &(impl Accounts + ?Sized),
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Transition, AssignError> {
        let now = utc(now);
        let service = snapshot.service;
        if edit.service() != service.name() {
            return Err(AssignError::ServiceMismatch {
                edit: edit.service().clone(),
                given: service.name().clone(),
            });
        }
        if edit.iter().next().is_none() {
            return Err(AssignError::EmptyEdit);
        }
        if service.is_removed() {
            return Err(AssignError::ServiceRemoved);
        }
        let others = snapshot
            .others(None)
            .map_err(|Outdated| AssignError::SnapshotOutdated)?;
        let changes: Vec<Reassignment> = edit
            .iter()
            .filter(|(role, to)| service.holder(*role) != *to)
            .map(|(role, to)| Reassignment {
                role,
                from: service.holder(role),
                to,
            })
            .collect();
        if changes.is_empty() {
            return Err(AssignError::NoChange);
        }
        // R13, R14: per incoming customer, with the roles they take.
        let mut incoming: Vec<(CustomerId, Roles)> = Vec::with_capacity(changes.len());
        for change in &changes {
            match incoming.iter_mut().find(|(c, _)| *c == change.to) {
                Some((_, roles)) => *roles |= change.role,
                None => incoming.push((change.to, Roles::from(change.role))),
            }
        }
        for (customer, roles) in &incoming {
            check_accounts(service, *customer, *roles, accounts).map_err(
                |problem| match problem {
                    AccountProblem::Unknown(customer) => AssignError::UnknownCustomer { customer },
                    AccountProblem::Standing(customer) => {
                        AssignError::NotInGoodStanding { customer }
                    }
                },
            )?;
        }
        let id = AssignmentId::generate(rng)?;
        let moved: Roles = changes.iter().map(|c| c.role).collect();
        let after = service.with_holders(changes.iter().map(|c| (c.role, c.to)));
        let record = Assignment::new(id, service.name().clone(), now, act.clone(), changes)
            .map_err(|problem| match problem {
                // `changes` is made above in role order, each a real change.
                AssignmentProblem::NoChange
                | AssignmentProblem::SameHolder { .. }
                | AssignmentProblem::Order { .. } => AssignError::NoChange,
            })?;
        let mut transition = Transition {
            changes: Changes {
                services: vec![Write {
                    value: after.clone(),
                    expected: Some(service.version()),
                }],
                requests: Vec::new(),
                assignments: Vec::new(),
            },
            messages: assigned_messages(&record),
        };
        transition.changes.assignments.push(record);
        // R32: the live requests that cover a changed role, or whose
        // requester lost a right, fail; R29: those past their deadline are
        // recorded as expired.
        let operator = Actor::Operator(act.clone());
        for other in others {
            if other.is_live(now) {
                let lost = other.roles() - after.contacts().rights_of(other.requester());
                if let Some(role) = (other.roles() & moved).first().or(lost.first()) {
                    let reason = FailureReason::Reassigned { role, by: id };
                    transition.merge(Self::fail_by(other, reason, now, Some(operator.clone())));
                }
            } else if other.is_open() {
                transition.merge(record_expiry(other, now));
            }
        }
        Ok(transition)
    }

    /// Accepts the request as `actor` with their `token` (R16, R20, R24–R26).
    /// When this is the last confirmation the change is checked again and
    /// applied (R30–R32, R38); `snapshot` is the service as it is now (`None`
    /// if it no longer exists) with the requests it names; it is not
    /// consulted otherwise (pass `None`).
    ///
    /// A last confirmation refuses a snapshot whose service does not name
    /// this request on each of its roles, or names a request the snapshot
    /// lacks: [`ActError::SnapshotOutdated`], read again (R44).
    ///
    /// The snapshot's copy of `request` itself is never consulted: `request`
    /// decides, and the writes expect its version, so a copy that changed
    /// meanwhile makes the commit conflict. A host may put the `request` it
    /// read first in the snapshot rather than read it again with the
    /// service (the drivers do).
    ///
    /// # Errors
    ///
    /// A [`Rejection`]; see there for the failed attempt it may carry.
    pub fn accept(
        &self,
        request: &ChangeRequest,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
        snapshot: Option<Snapshot<'_>>,
        accounts: &(impl Accounts + ?Sized),
    ) -> Result<Transition, Rejection> {
        let now = utc(now);
        if let Some(snapshot) = snapshot
            && snapshot.service.name() != request.service()
        {
            return Err(ActError::WrongSnapshot {
                expected: request.service().clone(),
                given: snapshot.service.name().clone(),
            }
            .into());
        }
        let mut next = self.take_token(request, actor, token, now)?;
        next.history
            .push(Event::by(now, actor, EventKind::Confirmed));
        let done = match &next.state {
            RequestState::Awaiting(awaiting) => awaiting.missing().next().is_none(),
            _ => false,
        };
        if !done {
            return Ok(single(request, next, Vec::new()));
        }
        Self::apply(request, next, actor, now, snapshot, accounts).map_err(Rejection::from)
    }

    /// Refuses the request as `actor` with their `token` (R21, R24–R26, R39).
    ///
    /// # Errors
    ///
    /// A [`Rejection`]; see there for the failed attempt it may carry.
    pub fn refuse(
        &self,
        request: &ChangeRequest,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Transition, Rejection> {
        let now = utc(now);
        let mut next = self.take_token(request, actor, token, now)?;
        next.state = RequestState::Refused { by: actor, at: now };
        next.history.push(Event::by(now, actor, EventKind::Refused));
        let messages = to_confirmers(&next, &MessageKind::Refused { by: actor });
        Ok(single(request, next, messages))
    }

    /// Sends the request again at `actor`'s demand (R22, R23, R37): a new
    /// token for every confirmer who has not confirmed, the old ones stop
    /// working.
    ///
    /// # Errors
    ///
    /// [`ActError::NotAConfirmer`], [`ActError::TooSoon`] within the resend
    /// interval, [`ActError::Closed`], [`ActError::OutOfOrder`], or the
    /// generator's failure.
    pub fn resend<R: TryCryptoRng + ?Sized>(
        &self,
        request: &ChangeRequest,
        actor: CustomerId,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Transition, ActError> {
        let now = utc(now);
        let awaiting = check_live(request, now)?;
        if !request.confirmer_ids().any(|c| c == actor) {
            return Err(ActError::NotAConfirmer);
        }
        self.reissue(request, awaiting, &Actor::Customer(actor), now, rng)
    }

    /// Sends the request again at an operator's hand (R46, R22, R23, R37),
    /// for a party whose address support fixed: as [`Engine::resend`], a
    /// new token for every confirmer who has not confirmed, within the same
    /// resend interval; the history records the operator and their reason.
    ///
    /// # Errors
    ///
    /// [`ActError::TooSoon`] within the resend interval (R23 holds for
    /// operators too), [`ActError::Closed`] for a request that is not live,
    /// [`ActError::OutOfOrder`], or the generator's failure.
    pub fn resend_by_operator<R: TryCryptoRng + ?Sized>(
        &self,
        request: &ChangeRequest,
        act: &OperatorAct,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Transition, ActError> {
        let now = utc(now);
        let awaiting = check_live(request, now)?;
        self.reissue(request, awaiting, &Actor::Operator(act.clone()), now, rng)
    }

    /// Cancels the request at the requester's demand (R28, R39).
    ///
    /// # Errors
    ///
    /// [`ActError::NotRequester`], [`ActError::Closed`] or
    /// [`ActError::OutOfOrder`].
    pub fn cancel(
        &self,
        request: &ChangeRequest,
        actor: CustomerId,
        now: OffsetDateTime,
    ) -> Result<Transition, ActError> {
        let now = utc(now);
        check_live(request, now)?;
        if actor != request.requester() {
            return Err(ActError::NotRequester);
        }
        Ok(cancelled(request, Actor::Customer(actor), now))
    }

    /// Cancels an open request at an operator's hand (R46, R39): every
    /// party still involved is told who cancelled and why, and the history
    /// keeps the operator and their reason. A terminal request stays as it
    /// is.
    ///
    /// # Errors
    ///
    /// [`ActError::Closed`] for a request that is not live (a terminal one,
    /// or one past its deadline), [`ActError::OutOfOrder`].
    pub fn cancel_by_operator(
        &self,
        request: &ChangeRequest,
        act: &OperatorAct,
        now: OffsetDateTime,
    ) -> Result<Transition, ActError> {
        let now = utc(now);
        check_live(request, now)?;
        Ok(cancelled(request, Actor::Operator(act.clone()), now))
    }

    /// Records the expiry of a request past its deadline (R29, R39).
    ///
    /// # Errors
    ///
    /// [`ActError::NotDue`] before the deadline, [`ActError::Closed`] for a
    /// request no longer awaiting, [`ActError::OutOfOrder`].
    pub fn expire(
        &self,
        request: &ChangeRequest,
        now: OffsetDateTime,
    ) -> Result<Transition, ActError> {
        let now = utc(now);
        check_time(request, now)?;
        if request.state().is_terminal() {
            return Err(ActError::Closed {
                state: request.state().name(),
            });
        }
        if now < request.deadline() {
            return Err(ActError::NotDue {
                deadline: request.deadline(),
            });
        }
        Ok(record_expiry(request, now))
    }

    // ----- internals -----

    /// A new token for every confirmer of the live `request` who has not
    /// confirmed, at `actor`'s demand, once the resend interval passed (R23,
    /// R37).
    fn reissue<R: TryCryptoRng + ?Sized>(
        &self,
        request: &ChangeRequest,
        awaiting: &Awaiting,
        actor: &Actor,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Transition, ActError> {
        // An interval too long to add means never again before the deadline.
        let retry_at = awaiting
            .last_sent()
            .checked_add(self.config.resend_interval)
            .unwrap_or(request.deadline());
        if now < retry_at {
            return Err(ActError::TooSoon { retry_at });
        }
        let mut next = bumped(request);
        let mut messages = Vec::new();
        let mut events = Vec::new();
        if let RequestState::Awaiting(awaiting) = &mut next.state {
            for confirmer in awaiting.confirmers_mut() {
                if confirmer.has_confirmed() {
                    continue;
                }
                let token = Token::generate(rng)?;
                *confirmer.status_mut() = ConfirmerStatus::Pending {
                    digest: Some(token.digest()),
                    failed_attempts: 0,
                };
                events.push(Event::new(
                    now,
                    Some(actor.clone()),
                    EventKind::TokenReissued {
                        to: confirmer.customer(),
                    },
                ));
                messages.push((confirmer.customer(), token));
            }
            awaiting.set_last_sent(now);
        }
        next.history.extend(events);
        let messages = messages
            .into_iter()
            .map(|(to, token)| {
                message(
                    &next,
                    to,
                    MessageKind::ConfirmationRequested {
                        token,
                        resent: true,
                        deadline: next.deadline,
                    },
                )
            })
            .collect();
        Ok(single(request, next, messages))
    }

    /// Builds one new request and its confirmation messages (R16, R18, R36);
    /// returns its id.
    #[expect(clippy::too_many_arguments, reason = "private step of `submit`")]
    fn open<R: TryCryptoRng + ?Sized>(
        transition: &mut Transition,
        service: &Service,
        requester: CustomerId,
        incoming: CustomerId,
        roles: Roles,
        now: OffsetDateTime,
        deadline: OffsetDateTime,
        rng: &mut R,
    ) -> Result<RequestId, RandomnessError> {
        let id = RequestId::generate(rng)?;
        let confirmer_ids: &[CustomerId] = if requester == incoming {
            &[requester]
        } else {
            &[requester, incoming]
        };
        let mut confirmers = Vec::with_capacity(confirmer_ids.len());
        let mut tokens = Vec::with_capacity(confirmer_ids.len());
        // Room for the opening, the tokens, confirmations and the end.
        let mut history = Vec::with_capacity(8);
        history.push(Event::by(now, requester, EventKind::Opened));
        for customer in confirmer_ids {
            // Each party's token is drawn independently (section 8).
            let token = Token::generate(rng)?;
            confirmers.push(Confirmer::pending(*customer, token.digest()));
            history.push(Event::by(
                now,
                requester,
                EventKind::TokenIssued { to: *customer },
            ));
            tokens.push((*customer, token));
        }
        let request = ChangeRequest {
            id,
            service: service.name().clone(),
            requester,
            incoming,
            roles,
            outgoing: roles
                .iter()
                .map(|r| (r, service.holder(r)))
                .collect::<Outgoing>(),
            opened_at: now,
            deadline,
            version: Version::FIRST,
            state: RequestState::Awaiting(Awaiting::new(confirmers, now)),
            history,
        };
        for (to, token) in tokens {
            transition.messages.push(message(
                &request,
                to,
                MessageKind::ConfirmationRequested {
                    token,
                    resent: false,
                    deadline: request.deadline,
                },
            ));
        }
        transition.changes.requests.push(Write {
            value: request,
            expected: None,
        });
        Ok(id)
    }

    /// Checks `token` for `actor` and marks them confirmed in a bumped copy
    /// of the request (R24–R26).
    fn take_token(
        &self,
        request: &ChangeRequest,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<ChangeRequest, Rejection> {
        check_live(request, now)?;
        let mut next = bumped(request);
        let RequestState::Awaiting(awaiting) = &mut next.state else {
            return Err(ActError::InvalidToken.into());
        };
        // Not a confirmer, already confirmed, or token invalidated: the same
        // error, and nothing to count (R25).
        let Some(confirmer) = awaiting
            .confirmers_mut()
            .iter_mut()
            .find(|c| c.customer() == actor)
        else {
            return Err(ActError::InvalidToken.into());
        };
        let status = confirmer.status_mut();
        let ConfirmerStatus::Pending {
            digest: Some(digest),
            failed_attempts,
        } = status
        else {
            return Err(ActError::InvalidToken.into());
        };
        if digest.verify(token) {
            *status = ConfirmerStatus::Confirmed { at: now };
            return Ok(next);
        }
        // R26: count the failure; past the limit the token stops working.
        let failed = failed_attempts.saturating_add(1);
        let invalidated = failed >= self.config.max_failed_attempts;
        *status = ConfirmerStatus::Pending {
            digest: if invalidated { None } else { Some(*digest) },
            failed_attempts: failed,
        };
        next.history
            .push(Event::by(now, actor, EventKind::FailedAttempt));
        if invalidated {
            next.history.push(Event::by(
                now,
                actor,
                EventKind::TokenInvalidated { of: actor },
            ));
        }
        Err(Rejection {
            error: ActError::InvalidToken,
            record: Some(single(request, next, Vec::new()).changes),
        })
    }

    /// The last confirmation is in: check again (R30), then apply (R20,
    /// R31, R38) and fail the requests that relied on a removed right (R32).
    ///
    /// Either way the service is written at its next version, so the
    /// verdict cannot commit if the service changed since it was read.
    fn apply(
        request: &ChangeRequest,
        mut next: ChangeRequest,
        actor: CustomerId,
        now: OffsetDateTime,
        snapshot: Option<Snapshot<'_>>,
        accounts: &(impl Accounts + ?Sized),
    ) -> Result<Transition, ActError> {
        // Services are never deleted: a request whose service reads as
        // missing was read after it (R44).
        let snapshot = snapshot.ok_or(ActError::SnapshotOutdated)?;
        // R44: the service (or its tombstone) must name this request on each
        // of its roles, and the snapshot must hold every other request it
        // names.
        if request
            .roles()
            .iter()
            .any(|role| snapshot.service.last_request(role) != Some(request.id()))
        {
            return Err(ActError::SnapshotOutdated);
        }
        let others = snapshot
            .others(Some(request.id()))
            .map_err(|Outdated| ActError::SnapshotOutdated)?;
        let verdict = if snapshot.service.is_removed() {
            Err(FailureReason::ServiceGone)
        } else {
            recheck(&next, snapshot.service, accounts)
        };
        if let Err(reason) = verdict {
            let mut failed = Self::fail_with(request, next, reason, now, Some(snapshot.service));
            expire_due(others, now, &mut failed);
            return Ok(failed);
        }
        let service = snapshot.service.with_holder(next.roles, next.incoming);
        next.state = RequestState::Applied { at: now };
        next.history.push(Event::by(now, actor, EventKind::Applied));

        let mut messages = to_confirmers(&next, &MessageKind::Applied);
        // R38: each outgoing contact who is not a confirmer, once, with the
        // roles they lost.
        let mut replaced: Vec<(CustomerId, Roles)> = Vec::new();
        for (role, holder) in next.outgoing_holders() {
            if next.confirmer_ids().any(|c| c == holder) {
                continue;
            }
            match replaced.iter_mut().find(|(c, _)| *c == holder) {
                Some((_, roles)) => *roles |= role,
                None => replaced.push((holder, Roles::from(role))),
            }
        }
        for (to, roles) in replaced {
            let mut m = message(&next, to, MessageKind::Replaced);
            m.roles = roles;
            messages.push(m);
        }

        let mut transition = Transition {
            changes: Changes {
                services: vec![Write {
                    value: service.clone(),
                    expected: Some(snapshot.service.version()),
                }],
                requests: vec![Write {
                    value: next,
                    expected: Some(request.version()),
                }],
                assignments: Vec::new(),
            },
            messages,
        };
        // R32: the other live requests of the service (the service names
        // every one) whose requester lost a right they relied on fail; R29:
        // those past their deadline are recorded as expired.
        for other in others {
            if other.is_live(now) {
                let rights = service.contacts().rights_of(other.requester());
                if let Some(role) = (other.roles() - rights).first() {
                    let reason = FailureReason::RightRemoved {
                        role,
                        by: request.id(),
                    };
                    transition.merge(Self::fail_with(other, bumped(other), reason, now, None));
                }
            } else if other.is_open() {
                transition.merge(record_expiry(other, now));
            }
        }
        Ok(transition)
    }

    /// `request` ends as failed for `reason` at `actor`'s hand (an operator's
    /// assignment, R32, R46).
    fn fail_by(
        request: &ChangeRequest,
        reason: FailureReason,
        now: OffsetDateTime,
        actor: Option<Actor>,
    ) -> Transition {
        Self::failed(request, bumped(request), reason, now, actor)
    }

    /// `next`, the next version of `request`, ends as failed for `reason`
    /// (R30, R32, R39) by `actor` (`None`: the system).
    fn failed(
        request: &ChangeRequest,
        mut next: ChangeRequest,
        reason: FailureReason,
        now: OffsetDateTime,
        actor: Option<Actor>,
    ) -> Transition {
        // Never before the request's own last event, so its history stays
        // in order even if hosts' clocks disagree.
        fail(
            &mut next,
            reason.clone(),
            now.max(request.last_event_at()),
            actor,
        );
        let messages = to_confirmers(&next, &MessageKind::Failed { reason });
        single(request, next, messages)
    }

    /// `next`, the next version of `request`, ends as failed for `reason`
    /// (R30, R32, R39); `service`, if given, is written at its next version
    /// with the verdict.
    fn fail_with(
        request: &ChangeRequest,
        next: ChangeRequest,
        reason: FailureReason,
        now: OffsetDateTime,
        service: Option<&Service>,
    ) -> Transition {
        let mut transition = Self::failed(request, next, reason, now, None);
        if let Some(service) = service {
            transition.changes.services.push(Write {
                value: service.next_version(),
                expected: Some(service.version()),
            });
        }
        transition
    }
}

/// R30: the checks made again just before applying.
fn recheck(
    request: &ChangeRequest,
    service: &Service,
    accounts: &(impl Accounts + ?Sized),
) -> Result<(), FailureReason> {
    if let Some(role) =
        (request.roles() - service.contacts().rights_of(request.requester())).first()
    {
        return Err(FailureReason::RequesterLostRight { role });
    }
    for (role, holder) in request.outgoing_holders() {
        if service.holder(role) != holder {
            return Err(FailureReason::OutgoingChanged { role });
        }
    }
    check_accounts(service, request.incoming(), request.roles(), accounts).map_err(|problem| {
        match problem {
            AccountProblem::Unknown(_) => FailureReason::IncomingUnknown,
            AccountProblem::Standing(customer) => FailureReason::NotInGoodStanding { customer },
        }
    })
}

/// What [`check_accounts`] found wrong.
enum AccountProblem {
    /// The incoming customer has no account (R13).
    Unknown(CustomerId),
    /// This billing contact is not in good standing (R14).
    Standing(CustomerId),
}

/// R13, R14: the incoming customer exists; for a billing change both billing
/// contacts are in good standing.
fn check_accounts(
    service: &Service,
    incoming: CustomerId,
    roles: Roles,
    accounts: &(impl Accounts + ?Sized),
) -> Result<(), AccountProblem> {
    let incoming_status = accounts.status(incoming);
    if incoming_status == AccountStatus::Unknown {
        return Err(AccountProblem::Unknown(incoming));
    }
    if roles.contains(Role::Billing) {
        let outgoing = service.holder(Role::Billing);
        if accounts.status(outgoing) != AccountStatus::GoodStanding {
            return Err(AccountProblem::Standing(outgoing));
        }
        if incoming_status != AccountStatus::GoodStanding {
            return Err(AccountProblem::Standing(incoming));
        }
    }
    Ok(())
}

/// `now` in UTC: what the engine records, whatever offset the host used, so
/// that every stored time has the same form.
fn utc(now: OffsetDateTime) -> OffsetDateTime {
    // A time at the very edge of the range has no UTC form: keep it as given.
    now.checked_to_offset(time::UtcOffset::UTC).unwrap_or(now)
}

/// Refuses times before the request's last event.
fn check_time(request: &ChangeRequest, now: OffsetDateTime) -> Result<(), ActError> {
    let last = request.last_event_at();
    if now < last {
        return Err(ActError::OutOfOrder { last });
    }
    Ok(())
}

/// The request's awaiting data, if it is live at `now`.
fn check_live(request: &ChangeRequest, now: OffsetDateTime) -> Result<&Awaiting, ActError> {
    check_time(request, now)?;
    match request.state() {
        RequestState::Awaiting(awaiting) if now < request.deadline() => Ok(awaiting),
        _ => Err(ActError::Closed {
            state: request.state_name_at(now),
        }),
    }
}

/// Records the expiry of `request`, open and past its deadline at `now`
/// (R29, R39): at `now`, or at its last event if a host's clock is behind.
fn record_expiry(request: &ChangeRequest, now: OffsetDateTime) -> Transition {
    let at = now.max(request.last_event_at());
    let mut next = bumped(request);
    next.state = RequestState::Expired { at };
    next.history.push(Event::new(at, None, EventKind::Expired));
    let messages = to_confirmers(&next, &MessageKind::Expired);
    single(request, next, messages)
}

/// Adds to `transition` the expiry of every request of `requests` that is
/// open and past its deadline at `now` (R29): a decision that writes the
/// service closes the requests it names that can no longer apply, so none
/// outlives the state it was opened on.
fn expire_due<'a>(
    requests: impl Iterator<Item = &'a ChangeRequest>,
    now: OffsetDateTime,
    transition: &mut Transition,
) {
    for request in requests.filter(|r| r.is_open() && !r.is_live(now)) {
        transition.merge(record_expiry(request, now));
    }
}

/// [`expire_due`] over the requests the snapshot's service names, but
/// `except`.
fn expire_due_named(
    snapshot: Snapshot<'_>,
    except: Option<RequestId>,
    now: OffsetDateTime,
    transition: &mut Transition,
) -> Result<(), Outdated> {
    expire_due(snapshot.others(except)?, now, transition);
    Ok(())
}

/// A copy of `request` at its next version.
///
/// Its history has room for the two events an action adds at most (a
/// confirmation and the change applied): a clone's history is exactly full,
/// and the first push would copy it again.
fn bumped(request: &ChangeRequest) -> ChangeRequest {
    let ChangeRequest {
        id,
        service,
        requester,
        incoming,
        roles,
        outgoing,
        opened_at,
        deadline,
        version,
        state,
        history,
    } = request;
    let mut events = Vec::with_capacity(history.len() + 2);
    events.extend_from_slice(history);
    ChangeRequest {
        id: *id,
        service: service.clone(),
        requester: *requester,
        incoming: *incoming,
        roles: *roles,
        outgoing: *outgoing,
        opened_at: *opened_at,
        deadline: *deadline,
        version: version.next(),
        state: state.clone(),
        history: events,
    }
}

fn fail(
    request: &mut ChangeRequest,
    reason: FailureReason,
    now: OffsetDateTime,
    actor: Option<Actor>,
) {
    request.state = RequestState::Failed {
        reason: reason.clone(),
        at: now,
    };
    request
        .history
        .push(Event::new(now, actor, EventKind::Failed { reason }));
}

/// The news of an assignment for every old and new holder of a changed
/// role, once each, with the roles they gave or took (R46).
fn assigned_messages(record: &Assignment) -> Vec<Message> {
    let mut told: Vec<(CustomerId, Roles)> = Vec::with_capacity(4);
    for change in record.changes() {
        for who in [change.from, change.to] {
            match told.iter_mut().find(|(c, _)| *c == who) {
                Some((_, roles)) => *roles |= change.role,
                None => told.push((who, Roles::from(change.role))),
            }
        }
    }
    told.into_iter()
        .map(|(to, roles)| Message {
            to,
            about: About::Assignment {
                assignment: record.id(),
            },
            service: record.service().clone(),
            roles,
            kind: MessageKind::Assigned {
                by: record.by().clone(),
                changes: record.changes().to_vec(),
            },
        })
        .collect()
}

/// The live `request` cancelled by `by` at `now` (R28, R46), and the news
/// for every confirmer (R39).
fn cancelled(request: &ChangeRequest, by: Actor, now: OffsetDateTime) -> Transition {
    let mut next = bumped(request);
    next.state = RequestState::Cancelled {
        by: by.clone(),
        at: now,
    };
    next.history
        .push(Event::new(now, Some(by.clone()), EventKind::Cancelled));
    let messages = to_confirmers(&next, &MessageKind::Cancelled { by });
    single(request, next, messages)
}

/// A transition that updates one request.
fn single(before: &ChangeRequest, next: ChangeRequest, messages: Vec<Message>) -> Transition {
    Transition {
        changes: Changes {
            services: Vec::new(),
            requests: vec![Write {
                value: next,
                expected: Some(before.version()),
            }],
            assignments: Vec::new(),
        },
        messages,
    }
}

fn message(request: &ChangeRequest, to: CustomerId, kind: MessageKind) -> Message {
    Message {
        to,
        about: About::Request {
            request: request.id(),
            requester: request.requester(),
            incoming: request.incoming(),
        },
        service: request.service().clone(),
        roles: request.roles(),
        kind,
    }
}

/// The same news for every confirmer: the parties still involved (R39).
fn to_confirmers(request: &ChangeRequest, kind: &MessageKind) -> Vec<Message> {
    request
        .confirmer_ids()
        .map(|to| message(request, to, kind.clone()))
        .collect()
}
