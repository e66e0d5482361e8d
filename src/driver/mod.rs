//! The drivers: one call per user action, wiring the pure engine to the
//! host, blocking ([`Driver`]) or async ([`AsyncDriver`]), both running the
//! one implementation of each action in `actions`.

use rand_core::TryCryptoRng;
use time::OffsetDateTime;

use crate::host::{Blocking, Directory, Notifier, Store};
use crate::{
    ActError, AssignError, Assignment, ChangeRequest, Config, Contacts, Cursor, CursorError,
    CustomerId, Edit, Engine, HistoryEntry, Message, OperatorAct, Page, PageSize, Proposable,
    RequestFilter, RequestId, RequestSummary, Roles, Service, ServiceError, ServiceName, StateName,
    SubmitError,
};

mod actions;
mod asynch;
mod trace;

use actions::Actions;
pub(crate) use actions::block_on;
pub use asynch::{AsyncDriver, AsyncDriverErrorFor, AsyncSweepFor};

/// How many times an action is decided again after a commit conflict, by
/// default.
const DEFAULT_RETRIES: u32 = 16;

/// How many requests due [`Driver::expire_due`] reads at a time.
pub const EXPIRY_PAGE: usize = 100;

/// Runs user actions against the host's [`Store`], [`Notifier`] and
/// [`Directory`].
///
/// Each method is one user action. It loads what it needs, asks the pure
/// [`Engine`] with the caller's `now` (and generator, where tokens are drawn),
/// commits the writes atomically, and only then delivers the messages (R41).
/// When the commit meets a conflict (someone else wrote first, R31) it reloads
/// and decides again, a bounded number of times.
///
/// The driver holds no state of its own beyond its parts: share one across
/// threads behind `&` if the parts are `Sync` (the in-memory ones are).
/// Its actions are those of the [`AsyncDriver`], the same code run to its
/// end on the calling thread.
///
/// ```
/// use service_contacts::{Driver, MemoryDirectory, MemoryNotifier, MemoryStore, PageSize};
///
/// let directory = MemoryDirectory::new();
/// let owner = "AB12345-OVH".parse()?;
/// directory.add(owner);
/// let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory);
///
/// driver.order_service(&"example.com".parse()?, owner)?;
/// let mine = driver.my_contacts(owner, None, PageSize::default())?;
/// assert_eq!(mine.items[0].0.as_str(), "example.com");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Driver<S, N, D> {
    store: Blocking<S>,
    notifier: Blocking<N>,
    directory: Blocking<D>,
    engine: Engine,
    retries: u32,
}

/// The constructors and accessors of a driver type (the two drivers hold
/// the same parts).
macro_rules! parts {
    ($driver:ident, $wrap:path $(, .$inner:tt)?) => {
        impl<S, N, D> $driver<S, N, D> {
            /// A driver with the default [`Config`].
            pub fn new(store: S, notifier: N, directory: D) -> Self {
                $driver::with_config(store, notifier, directory, Config::default())
            }

            /// A driver with `config`.
            pub fn with_config(store: S, notifier: N, directory: D, config: Config) -> Self {
                $driver {
                    store: $wrap(store),
                    notifier: $wrap(notifier),
                    directory: $wrap(directory),
                    engine: Engine::new(config),
                    retries: DEFAULT_RETRIES,
                }
            }

            /// Sets how many times an action is decided again after a commit
            /// conflict (default 16).
            #[must_use]
            pub fn with_retries(mut self, retries: u32) -> Self {
                self.retries = retries;
                self
            }

            /// The store.
            pub fn store(&self) -> &S {
                &self.store$(.$inner)?
            }

            /// The notifier.
            pub fn notifier(&self) -> &N {
                &self.notifier$(.$inner)?
            }

            /// The directory.
            pub fn directory(&self) -> &D {
                &self.directory$(.$inner)?
            }

            /// The engine.
            pub fn engine(&self) -> &Engine {
                &self.engine
            }
        }
    };
}

use parts;

parts!(Driver, Blocking, .0);

/// The page size of a whole sweep ([`EXPIRY_PAGE`]).
fn expiry_page() -> PageSize {
    PageSize::new(EXPIRY_PAGE).unwrap_or_default()
}

/// The driver's error type for a store `S` and a directory `D`.
pub type DriverErrorFor<S, D> = DriverError<<S as Store>::Error, <D as Directory>::Error>;

/// The result of an expiry sweep for a store `S` and a directory `D`.
pub type SweepFor<S, D> = Sweep<<S as Store>::Error, <D as Directory>::Error>;

/// What a driver action returns on success: its value, and the messages that
/// could not be delivered.
///
/// The state was committed either way (R41): a failed delivery loses nothing,
/// and the resend path recovers a missing confirmation request (R22).
#[derive(Debug)]
#[must_use = "some messages may not have been delivered"]
pub struct Outcome<T, E> {
    /// The action's result.
    pub value: T,
    /// Messages whose delivery failed, with the notifier's error.
    pub undelivered: Vec<Undelivered<E>>,
}

impl<T, E> Outcome<T, E> {
    /// Whether every message was delivered.
    #[must_use]
    pub fn all_delivered(&self) -> bool {
        self.undelivered.is_empty()
    }
}

/// A message the notifier failed to deliver. (No `PartialEq`: a message may
/// carry a token, which is never compared but in constant time.)
#[derive(Debug)]
pub struct Undelivered<E> {
    /// The message (its token, if any, is redacted in `Debug`).
    pub message: Message,
    /// Why delivery failed.
    pub error: E,
}

/// A domain refusal: the action is not possible as asked, and nothing changed
/// (except a counted failed token attempt, R26).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No service by that name.
    #[error("no service named {0}")]
    UnknownService(ServiceName),
    /// No request with that id.
    #[error("no request {0}")]
    UnknownRequest(RequestId),
    /// No account for that customer (R13).
    #[error("no customer account {0}")]
    UnknownCustomer(CustomerId),
    /// A service by that name exists already.
    #[error("a service named {0} exists already")]
    ServiceExists(ServiceName),
    /// An import was refused: the same name twice, or nothing to import.
    #[error(transparent)]
    Import(ServiceError),
    /// A listing's cursor was refused (R45).
    #[error(transparent)]
    Cursor(#[from] CursorError),
    /// The edit was refused.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The action on a request was refused.
    #[error(transparent)]
    Act(#[from] ActError),
    /// An operator's direct assignment was refused (R46).
    #[error(transparent)]
    Assign(#[from] AssignError),
}

impl From<ServiceError> for Refusal {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Exists(name) => Refusal::ServiceExists(name),
            ServiceError::Removed(name) => Refusal::UnknownService(name),
            other => Refusal::Import(other),
        }
    }
}

/// Why a driver action failed: a [`Refusal`] (the user's request cannot be
/// granted) or a host failure.
///
/// It compares with `==` when the store's and the directory's errors do, so
/// a host's test can check an error whole:
///
/// ```
/// use service_contacts::{Driver, DriverError, MemoryDirectory, MemoryNotifier, MemoryStore, Refusal};
///
/// let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), MemoryDirectory::new());
/// let name = "nowhere.example".parse()?;
/// assert_eq!(driver.service(&name).unwrap_err(), DriverError::Refused(Refusal::UnknownService(name)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError<SE, DE> {
    /// The action was refused; nothing changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The store failed.
    #[error("store error: {0}")]
    Store(#[source] SE),
    /// The directory failed.
    #[error("directory error: {0}")]
    Directory(#[source] DE),
    /// Every attempt met a commit conflict; nothing changed. Try again.
    #[error("the records kept changing: gave up after {attempts} attempts")]
    Contention {
        /// How many times the action was decided.
        attempts: u32,
    },
}

impl<SE, DE> DriverError<SE, DE> {
    /// The refusal, if the action was refused.
    #[must_use]
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            DriverError::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }
}

/// What one [`Driver::expire_due`] sweep did.
#[derive(Debug, PartialEq, Eq)]
pub struct Sweep<SE, DE> {
    /// The requests this sweep expired, earliest deadline first.
    pub expired: Vec<RequestId>,
    /// The requests it could not expire, with why. They stay due; the next
    /// sweep tries them again.
    pub failed: Vec<(RequestId, DriverError<SE, DE>)>,
    /// Where the next page of requests due starts
    /// ([`Driver::expire_due_page`]); `None` once every request due at the
    /// time was read.
    pub next: Option<Cursor>,
}

impl<SE, DE> Sweep<SE, DE> {
    /// Whether every request due was expired.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// A request as it stands at a given time: what a request's page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestStatus {
    /// The request, whole.
    pub request: ChangeRequest,
    /// Its state at the time asked (`expired` past the deadline, R29).
    pub state: StateName,
    /// The confirmers it still waits for (R19); empty unless live.
    pub waiting_for: Vec<CustomerId>,
}

impl<S: Store, N: Notifier, D: Directory> Driver<S, N, D> {
    /// The shared actions over this driver's parts, which answer at once.
    fn actions(&self) -> trace::Traced<Actions<'_, Blocking<S>, Blocking<N>, Blocking<D>>> {
        trace::traced(Actions {
            store: &self.store,
            notifier: &self.notifier,
            directory: &self.directory,
            engine: &self.engine,
            retries: self.retries,
        })
    }

    // ----- actions -----

    /// Records a newly ordered service: `customer` holds all three roles (R5).
    ///
    /// A name whose service was removed can be ordered again: the new
    /// service continues the old one's versions (R44).
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownCustomer`], [`Refusal::ServiceExists`], or a host
    /// failure.
    pub fn order_service(
        &self,
        name: &ServiceName,
        customer: CustomerId,
    ) -> Result<Service, DriverErrorFor<S, D>> {
        block_on(|| self.actions().order_service(name, customer))
    }

    /// Brings existing services in with their three holders (R42), all in
    /// one commit or none, and returns them as stored, in the order given.
    /// Every holder must have an account (R13). Once imported, a service
    /// behaves exactly like an ordered one.
    ///
    /// ```
    /// use service_contacts::{Contacts, Driver, MemoryDirectory, MemoryNotifier, MemoryStore, Refusal, Role};
    ///
    /// let (a, b) = ("AD1-OVH".parse()?, "TE2-OVH".parse()?);
    /// let accounts = MemoryDirectory::new();
    /// accounts.add(a);
    /// accounts.add(b);
    /// let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), accounts);
    ///
    /// let imported = driver.import_services([
    ///     ("one.example".parse()?, Contacts::new(a, b, a)),
    ///     ("two.example".parse()?, Contacts::all(b)),
    /// ])?;
    /// assert_eq!(imported[0].holder(Role::Tech), b);
    ///
    /// // A batch naming an existing service is refused whole.
    /// let err = driver
    ///     .import_services([
    ///         ("three.example".parse()?, Contacts::all(a)),
    ///         ("one.example".parse()?, Contacts::all(a)),
    ///     ])
    ///     .unwrap_err();
    /// assert_eq!(err.refusal(), Some(&Refusal::ServiceExists("one.example".parse()?)));
    /// assert!(driver.service(&"three.example".parse()?).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownCustomer`] for a holder without an account,
    /// [`Refusal::ServiceExists`], [`Refusal::Import`] (the same name twice,
    /// an empty batch), or a host failure. Nothing is written.
    pub fn import_services(
        &self,
        services: impl IntoIterator<Item = (ServiceName, Contacts)>,
    ) -> Result<Vec<Service>, DriverErrorFor<S, D>> {
        block_on(|| {
            self.actions()
                .import_services(services.into_iter().collect())
        })
    }

    /// Removes a service, as a host does when the service is terminated:
    /// the record stays as a tombstone, so the name's versions never restart
    /// (R44), and every live request on it fails in the same commit, its
    /// parties told why (R30, R39). Returns the tombstone.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownService`] (also for a service removed already), or
    /// a host failure.
    pub fn remove_service(
        &self,
        name: &ServiceName,
        now: OffsetDateTime,
    ) -> Result<Outcome<Service, N::Error>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().remove_service(name, now))
    }

    /// Submits an edit of a service's contacts by `actor` (R8–R16, R27, R33,
    /// R36) and returns the ids of the requests opened, one per incoming
    /// customer.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownService`], [`Refusal::Submit`], or a host failure.
    pub fn submit<R: TryCryptoRng + ?Sized>(
        &self,
        edit: &Edit,
        actor: CustomerId,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Outcome<Vec<RequestId>, N::Error>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().submit(edit, actor, now, rng))
    }

    /// Accepts a request as `actor` with their token (R16, R20, R24–R26); the
    /// last acceptance applies the change (R30–R32, R38). Returns the request
    /// as it now stands.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownRequest`], [`Refusal::Act`] (one
    /// [`ActError::InvalidToken`] for every token problem, R25), or a host
    /// failure.
    pub fn accept(
        &self,
        id: RequestId,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Outcome<ChangeRequest, N::Error>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().accept(id, actor, token, now))
    }

    /// Refuses a request as `actor` with their token (R21, R24–R26, R39).
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownRequest`], [`Refusal::Act`], or a host failure.
    pub fn refuse(
        &self,
        id: RequestId,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Outcome<ChangeRequest, N::Error>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().refuse(id, actor, token, now))
    }

    /// Sends a request again with new tokens, at a confirmer's demand (R22,
    /// R23, R37).
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownRequest`], [`Refusal::Act`] (not a confirmer, too
    /// soon, closed), or a host failure.
    pub fn resend<R: TryCryptoRng + ?Sized>(
        &self,
        id: RequestId,
        actor: CustomerId,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Outcome<ChangeRequest, N::Error>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().resend(id, actor, now, rng))
    }

    /// Cancels a request at the requester's demand (R28, R39).
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownRequest`], [`Refusal::Act`] (not the requester,
    /// closed), or a host failure.
    pub fn cancel(
        &self,
        id: RequestId,
        actor: CustomerId,
        now: OffsetDateTime,
    ) -> Result<Outcome<ChangeRequest, N::Error>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().cancel(id, actor, now))
    }

    /// Cancels an open request at an operator's hand (R46, R39): the
    /// parties are told who cancelled and why, and the history keeps the
    /// operator and their reason. The host authenticates the operator; the
    /// crate records who acted.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownRequest`], [`Refusal::Act`] (closed: a terminal
    /// request never changes), or a host failure.
    pub fn cancel_by_operator(
        &self,
        id: RequestId,
        act: &OperatorAct,
        now: OffsetDateTime,
    ) -> Result<Outcome<ChangeRequest, N::Error>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().cancel_by_operator(id, act, now))
    }

    /// Sends a request again at an operator's hand, once support fixed a
    /// party's address (R46, R22): a new token for every confirmer still
    /// missing, within the same resend interval as customers (R23); the
    /// history keeps the operator and their reason.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownRequest`], [`Refusal::Act`] (too soon, closed), or
    /// a host failure.
    pub fn resend_by_operator<R: TryCryptoRng + ?Sized>(
        &self,
        id: RequestId,
        act: &OperatorAct,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Outcome<ChangeRequest, N::Error>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().resend_by_operator(id, act, now, rng))
    }

    /// Assigns contacts directly at an operator's hand, without
    /// confirmations, for a customer who cannot receive mail (R46); see
    /// [`Engine::assign`] for the rules that still hold (R13, R14, R31,
    /// R32). Returns the [`Assignment`] recorded.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownService`], [`Refusal::Assign`] (no change, an
    /// unknown customer, a billing contact behind with payments), or a host
    /// failure.
    pub fn assign<R: TryCryptoRng + ?Sized>(
        &self,
        edit: &Edit,
        act: &OperatorAct,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Outcome<Assignment, N::Error>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().assign(edit, act, now, rng))
    }

    /// One page of the full history of the service `name` (R47): every
    /// request ever made on it, with all its events and actors, and every
    /// operator's assignment, newest first. A removed service keeps its
    /// history. Pass the page's [`Page::next`] back as `after` for the next
    /// page. The host decides who may read it: it is the history of the
    /// *name*, so for a name removed and ordered again it holds the earlier
    /// owners' entries too (show a service's admin only the entries from
    /// when their customer took the service, or keep it to support). With
    /// feature `serde`, each [`HistoryEntry`] serializes for an export.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownService`] for a name that never was,
    /// [`Refusal::Cursor`] for a cursor of another listing or service, or a
    /// store failure.
    pub fn history(
        &self,
        name: &ServiceName,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Page<HistoryEntry>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().history(name, after, size))
    }

    /// Records the expiry of every request past its deadline at `now` and
    /// tells their parties (R29, R39).
    ///
    /// The sweep reads the requests due a page at a time (at most
    /// [`EXPIRY_PAGE`] rows a read, R45), so a backlog of any size is swept
    /// without loading it whole; [`Driver::expire_due_page`] sweeps one page.
    /// Each request is expired in a commit of its own, earliest deadline
    /// first. A request that cannot be expired (a store error, endless
    /// conflicts) does not stop the sweep: it is listed in
    /// [`Sweep::failed`], stays due, and the next sweep tries it again; the
    /// others are expired and their messages delivered or reported in
    /// [`Outcome::undelivered`] (R41).
    ///
    /// # Errors
    ///
    /// A host failure while listing the requests due; what was expired
    /// before it stays expired, its messages delivered.
    #[expect(
        clippy::type_complexity,
        reason = "the sweep's result names the error types of all three host parts"
    )]
    pub fn expire_due(
        &self,
        now: OffsetDateTime,
    ) -> Result<Outcome<SweepFor<S, D>, N::Error>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().expire_due(now, expiry_page()))
    }

    /// Sweeps one page of the requests due at `now` (R29, R45): those after
    /// `after` (the [`Sweep::next`] of the page before), at most `size` of
    /// them, each expired in a commit of its own as in
    /// [`Driver::expire_due`]. [`Sweep::next`] is where the next page starts,
    /// `None` once every request due was read.
    ///
    /// # Errors
    ///
    /// [`Refusal::Cursor`] for a cursor that is not of this listing, or a
    /// host failure while listing the requests due.
    #[expect(
        clippy::type_complexity,
        reason = "the sweep's result names the error types of all three host parts"
    )]
    pub fn expire_due_page(
        &self,
        now: OffsetDateTime,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Outcome<SweepFor<S, D>, N::Error>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().expire_due_page(now, after, size))
    }

    // ----- queries -----

    /// One page of the services where `customer` is a contact, with their
    /// roles (R6, R45): sorted by service name, starting after `after` (the
    /// [`Page::next`] of the page before; `None` for the first page).
    ///
    /// ```
    /// use service_contacts::{Contacts, Driver, MemoryDirectory, MemoryNotifier, MemoryStore, PageSize};
    ///
    /// let owner = "AB1-OVH".parse()?;
    /// let accounts = MemoryDirectory::new();
    /// accounts.add(owner);
    /// let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), accounts);
    /// driver.import_services(["c.example", "a.example", "b.example"].map(|n| (n.parse().unwrap(), Contacts::all(owner))))?;
    ///
    /// let first = driver.my_contacts(owner, None, PageSize::new(2)?)?;
    /// assert_eq!(first.items.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["a.example", "b.example"]);
    /// let second = driver.my_contacts(owner, first.next.as_ref(), PageSize::new(2)?)?;
    /// assert_eq!(second.items[0].0.as_str(), "c.example");
    /// assert_eq!(second.next, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownCustomer`], [`Refusal::Cursor`] (a cursor of another
    /// listing or another customer), or a host failure.
    pub fn my_contacts(
        &self,
        customer: CustomerId,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Page<(ServiceName, Roles)>, DriverErrorFor<S, D>> {
        block_on(|| self.actions().my_contacts(customer, after, size))
    }

    /// One page of the requests where `customer` is a party that `filter`
    /// lists at `now` (R35, R45): most recently opened first, starting after
    /// `after` (the [`Page::next`] of the page before), each as a
    /// [`RequestSummary`] with its state at `now` and whether it waits for
    /// `customer`.
    ///
    /// A cursor keeps its position whatever the filter: changing the filter
    /// between pages goes on from the same point in time.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownCustomer`], [`Refusal::Cursor`], or a host failure.
    pub fn my_requests(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Page<RequestSummary>, DriverErrorFor<S, D>> {
        block_on(|| {
            self.actions()
                .my_requests(customer, filter, now, after, size)
        })
    }

    /// The service `name` as stored now, with its contacts.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownService`] (also for a removed service) or a host
    /// failure.
    pub fn service(&self, name: &ServiceName) -> Result<Service, DriverErrorFor<S, D>> {
        block_on(|| self.actions().service(name))
    }

    /// The request `id` as it stands at `now`: its state (`expired` past the
    /// deadline, R29) and whom it still waits for (R19).
    ///
    /// ```
    /// use service_contacts::{Driver, Edit, MemoryDirectory, MemoryNotifier, MemoryStore, Role, StateName};
    /// use time::macros::datetime;
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// # let mut rng = ChaCha20Rng::seed_from_u64(1);
    ///
    /// let (alice, bob) = ("AL1-OVH".parse()?, "BO2-OVH".parse()?);
    /// let accounts = MemoryDirectory::new();
    /// accounts.add(alice);
    /// accounts.add(bob);
    /// let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), accounts);
    /// let now = datetime!(2026-11-21 10:00 UTC);
    /// driver.order_service(&"example.com".parse()?, alice)?;
    /// let edit = Edit::new("example.com".parse()?).with(Role::Tech, bob);
    /// let id = driver.submit(&edit, alice, now, &mut rng)?.value[0];
    ///
    /// let status = driver.request(id, now)?;
    /// assert_eq!(status.state, StateName::ValidatingByCustomers);
    /// assert_eq!(status.waiting_for, [alice, bob]);
    /// assert_eq!(driver.request(id, now + time::Duration::days(8))?.state, StateName::Expired);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownRequest`] or a host failure.
    pub fn request(
        &self,
        id: RequestId,
        now: OffsetDateTime,
    ) -> Result<RequestStatus, DriverErrorFor<S, D>> {
        block_on(|| self.actions().request(id, now))
    }

    /// What `actor` may propose on the service right now (R15): the same
    /// decision [`Driver::submit`] makes.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownService`] or a host failure.
    pub fn proposable(
        &self,
        service: &ServiceName,
        actor: CustomerId,
        now: OffsetDateTime,
    ) -> Result<Proposable, DriverErrorFor<S, D>> {
        block_on(|| self.actions().proposable(service, actor, now))
    }
}
