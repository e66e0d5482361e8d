//! The driver: one call per user action, wiring the pure engine to the host.

use rand_core::TryCryptoRng;
use time::OffsetDateTime;

use crate::host::{CommitError, Directory, Notifier, Store};
use crate::{
    AccountStatus, ActError, ChangeRequest, Changes, Config, CustomerId, Edit, Engine, Message,
    Proposable, Rejection, RequestId, Role, Roles, Service, ServiceName, Snapshot, StateName,
    SubmitError, Transition, Write,
};

/// How many times an action is decided again after a commit conflict, by
/// default.
const DEFAULT_RETRIES: u32 = 16;

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
///
/// ```
/// use service_contacts::{Driver, MemoryDirectory, MemoryNotifier, MemoryStore};
///
/// let directory = MemoryDirectory::new();
/// let owner = "AB12345-OVH".parse()?;
/// directory.add(owner);
/// let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory);
///
/// driver.order_service(&"example.com".parse()?, owner)?;
/// let mine = driver.my_contacts(owner)?;
/// assert_eq!(mine[0].0.as_str(), "example.com");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Driver<S, N, D> {
    store: S,
    notifier: N,
    directory: D,
    engine: Engine,
    retries: u32,
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

/// A message the notifier failed to deliver.
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
    /// The edit was refused.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The action on a request was refused.
    #[error(transparent)]
    Act(#[from] ActError),
}

/// Why a driver action failed: a [`Refusal`] (the user's request cannot be
/// granted) or a host failure.
#[derive(Debug, thiserror::Error)]
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
#[derive(Debug)]
pub struct Sweep<SE, DE> {
    /// The requests this sweep expired, earliest deadline first.
    pub expired: Vec<RequestId>,
    /// The requests it could not expire, with why. They stay due; the next
    /// sweep tries them again.
    pub failed: Vec<(RequestId, DriverError<SE, DE>)>,
}

impl<SE, DE> Sweep<SE, DE> {
    /// Whether every request due was expired.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// One row of "my requests" (R35).
#[derive(Clone, Debug)]
pub struct RequestView {
    /// The request.
    pub request: ChangeRequest,
    /// Its state at the time asked (`expired` past the deadline, R29).
    pub state: StateName,
    /// Whether it waits for this customer's confirmation.
    pub waits_for_me: bool,
}

/// What one attempt decided.
enum Step<T> {
    /// Commit, then deliver and return `value`.
    Commit(Transition, T),
    /// Commit the record of a failed attempt, then report the refusal.
    RecordThenRefuse(Changes, Refusal),
}

impl<S: Store, N: Notifier, D: Directory> Driver<S, N, D> {
    /// A driver with the default [`Config`].
    pub fn new(store: S, notifier: N, directory: D) -> Self {
        Driver::with_config(store, notifier, directory, Config::default())
    }

    /// A driver with `config`.
    pub fn with_config(store: S, notifier: N, directory: D, config: Config) -> Self {
        Driver {
            store,
            notifier,
            directory,
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
        &self.store
    }

    /// The notifier.
    pub fn notifier(&self) -> &N {
        &self.notifier
    }

    /// The directory.
    pub fn directory(&self) -> &D {
        &self.directory
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    // ----- actions -----

    /// Records a newly ordered service: `customer` holds all three roles (R5).
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
        self.known(customer)?;
        // A conflict means the name is taken, or the store was busy: read
        // back to tell which, and try again in the second case.
        let ordered = self.run(|| {
            if self
                .store
                .service(name)
                .map_err(DriverError::Store)?
                .is_some()
            {
                return Err(Refusal::ServiceExists(name.clone()).into());
            }
            let service = Service::order(name.clone(), customer);
            let changes = Changes {
                services: vec![Write {
                    value: service.clone(),
                    expected: None,
                }],
                requests: Vec::new(),
            };
            let transition = Transition {
                changes,
                messages: Vec::new(),
            };
            Ok(Step::Commit(transition, service))
        });
        ordered.map(|outcome| outcome.value)
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
        self.run(|| {
            let service = self.load_service(edit.service())?;
            let open = self
                .store
                .open_requests(edit.service())
                .map_err(DriverError::Store)?;
            let accounts = self.accounts(&edit.accounts_to_check(&service))?;
            let snapshot = Snapshot {
                service: &service,
                open_requests: &open,
            };
            let transition = self
                .engine
                .submit(edit, actor, snapshot, &accounts, now, rng)
                .map_err(Refusal::Submit)?;
            let ids = transition.requests().map(ChangeRequest::id).collect();
            Ok(Step::Commit(transition, ids))
        })
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
        self.run(|| {
            let request = self.load_request(id)?;
            // Only the last confirmation applies the change (R30–R32), and
            // only then does the engine consult the service, its open
            // requests and the accounts: skip loading them otherwise.
            let last = request.waits_for(actor, now) && request.missing_at(now).len() == 1;
            if !last {
                let nobody: &[(CustomerId, AccountStatus)] = &[];
                let decided = self
                    .engine
                    .accept(&request, actor, token, now, None, nobody);
                return settle(decided, id);
            }
            let service = self
                .store
                .service(request.service())
                .map_err(DriverError::Store)?;
            let open = match &service {
                Some(service) => self
                    .store
                    .open_requests(service.name())
                    .map_err(DriverError::Store)?,
                None => Vec::new(),
            };
            let accounts = self.accounts(&request.accounts_to_check())?;
            let snapshot = service.as_ref().map(|service| Snapshot {
                service,
                open_requests: &open,
            });
            let decided = self
                .engine
                .accept(&request, actor, token, now, snapshot, &accounts);
            settle(decided, id)
        })
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
        self.run(|| {
            let request = self.load_request(id)?;
            settle(self.engine.refuse(&request, actor, token, now), id)
        })
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
        self.run(|| {
            let request = self.load_request(id)?;
            let transition = self
                .engine
                .resend(&request, actor, now, rng)
                .map_err(Refusal::Act)?;
            commit_step(transition, id)
        })
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
        self.run(|| {
            let request = self.load_request(id)?;
            let transition = self
                .engine
                .cancel(&request, actor, now)
                .map_err(Refusal::Act)?;
            commit_step(transition, id)
        })
    }

    /// Records the expiry of every request past its deadline at `now` and
    /// tells their parties (R29, R39).
    ///
    /// Each request is expired in a commit of its own, earliest deadline
    /// first. A request that cannot be expired (a store error, endless
    /// conflicts) does not stop the sweep: it is listed in
    /// [`Sweep::failed`], stays due, and the next sweep tries it again; the
    /// others are expired and their messages delivered or reported in
    /// [`Outcome::undelivered`] (R41).
    ///
    /// # Errors
    ///
    /// A host failure while listing the requests due; nothing was expired.
    #[expect(
        clippy::type_complexity,
        reason = "the sweep's result names the error types of all three host parts"
    )]
    pub fn expire_due(
        &self,
        now: OffsetDateTime,
    ) -> Result<Outcome<SweepFor<S, D>, N::Error>, DriverErrorFor<S, D>> {
        let due = self.store.due_for_expiry(now).map_err(DriverError::Store)?;
        let mut total = Outcome {
            value: Sweep {
                expired: Vec::new(),
                failed: Vec::new(),
            },
            undelivered: Vec::new(),
        };
        for request in due {
            let id = request.id();
            let result = self.run(|| {
                let request = self.load_request(id)?;
                let transition = self.engine.expire(&request, now).map_err(Refusal::Act)?;
                commit_step(transition, id)
            });
            match result {
                Ok(outcome) => {
                    total.value.expired.push(id);
                    total.undelivered.extend(outcome.undelivered);
                }
                // Closed by someone else in the meantime: nothing to do.
                Err(DriverError::Refused(Refusal::Act(
                    ActError::Closed { .. } | ActError::OutOfOrder { .. },
                ))) => {}
                Err(err) => total.value.failed.push((id, err)),
            }
        }
        Ok(total)
    }

    // ----- queries -----

    /// The services where `customer` is a contact, with their roles (R6),
    /// sorted by service name.
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownCustomer`] or a host failure.
    pub fn my_contacts(
        &self,
        customer: CustomerId,
    ) -> Result<Vec<(ServiceName, Roles)>, DriverErrorFor<S, D>> {
        self.known(customer)?;
        self.store.contacts_of(customer).map_err(DriverError::Store)
    }

    /// The requests where `customer` is a party, most recent first, each with
    /// its state at `now` and whether it waits for `customer` (R35).
    ///
    /// # Errors
    ///
    /// [`Refusal::UnknownCustomer`] or a host failure.
    pub fn my_requests(
        &self,
        customer: CustomerId,
        now: OffsetDateTime,
    ) -> Result<Vec<RequestView>, DriverErrorFor<S, D>> {
        self.known(customer)?;
        let requests = self
            .store
            .requests_of(customer)
            .map_err(DriverError::Store)?;
        Ok(requests
            .into_iter()
            .map(|request| RequestView {
                state: request.state_name_at(now),
                waits_for_me: request.waits_for(customer, now),
                request,
            })
            .collect())
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
        let loaded = self.load_service(service)?;
        let open = self
            .store
            .open_requests(service)
            .map_err(DriverError::Store)?;
        let snapshot = Snapshot {
            service: &loaded,
            open_requests: &open,
        };
        let accounts = self.accounts(&[loaded.holder(Role::Billing)])?;
        Ok(self.engine.proposable(snapshot, actor, &accounts, now))
    }

    // ----- internals -----

    /// Decides, commits and delivers, retrying on conflicts.
    fn run<T>(
        &self,
        mut decide: impl FnMut() -> Result<Step<T>, DriverErrorFor<S, D>>,
    ) -> Result<Outcome<T, N::Error>, DriverErrorFor<S, D>> {
        for _ in 0..=self.retries {
            let (changes, then) = match decide()? {
                Step::Commit(transition, value) => {
                    (transition.changes, Ok((value, transition.messages)))
                }
                Step::RecordThenRefuse(changes, refusal) => (changes, Err(refusal)),
            };
            match self.store.commit(changes) {
                Ok(()) => {
                    let (value, messages) = then?;
                    return Ok(self.deliver(value, messages));
                }
                Err(CommitError::Conflict) => std::thread::yield_now(),
                Err(CommitError::Store(err)) => return Err(DriverError::Store(err)),
            }
        }
        Err(DriverError::Contention {
            attempts: self.retries.saturating_add(1),
        })
    }

    /// Delivers every message; failures are collected, not fatal (R41).
    fn deliver<T>(&self, value: T, messages: Vec<Message>) -> Outcome<T, N::Error> {
        let mut undelivered = Vec::new();
        for message in messages {
            if let Err(error) = self.notifier.deliver(&message) {
                undelivered.push(Undelivered { message, error });
            }
        }
        Outcome { value, undelivered }
    }

    fn load_service(&self, name: &ServiceName) -> Result<Service, DriverErrorFor<S, D>> {
        self.store
            .service(name)
            .map_err(DriverError::Store)?
            .ok_or_else(|| Refusal::UnknownService(name.clone()).into())
    }

    fn load_request(&self, id: RequestId) -> Result<ChangeRequest, DriverErrorFor<S, D>> {
        self.store
            .request(id)
            .map_err(DriverError::Store)?
            // A store that answers with another record has no request `id`.
            .filter(|request| request.id() == id)
            .ok_or_else(|| Refusal::UnknownRequest(id).into())
    }

    fn known(&self, customer: CustomerId) -> Result<(), DriverErrorFor<S, D>> {
        if self
            .directory
            .exists(customer)
            .map_err(DriverError::Directory)?
        {
            Ok(())
        } else {
            Err(Refusal::UnknownCustomer(customer).into())
        }
    }

    /// Looks up the accounts the engine will consult (R13, R14).
    fn accounts(
        &self,
        customers: &[CustomerId],
    ) -> Result<Vec<(CustomerId, AccountStatus)>, DriverErrorFor<S, D>> {
        let mut out = Vec::with_capacity(customers.len());
        for &customer in customers {
            let exists = self
                .directory
                .exists(customer)
                .map_err(DriverError::Directory)?;
            let good = exists
                && self
                    .directory
                    .in_good_standing(customer)
                    .map_err(DriverError::Directory)?;
            out.push((customer, AccountStatus::from_answers(exists, good)));
        }
        Ok(out)
    }
}

/// The step for a transition that updates request `id`.
fn commit_step<SE, DE>(
    transition: Transition,
    id: RequestId,
) -> Result<Step<ChangeRequest>, DriverError<SE, DE>> {
    // The engine writes the request it acted on; `load_request` made sure
    // that is request `id`.
    match transition.request(id).cloned() {
        Some(request) => Ok(Step::Commit(transition, request)),
        None => Err(Refusal::UnknownRequest(id).into()),
    }
}

/// The step for an accept or refuse: commit, or record a failed attempt and
/// refuse, or refuse outright.
fn settle<SE, DE>(
    decided: Result<Transition, Rejection>,
    id: RequestId,
) -> Result<Step<ChangeRequest>, DriverError<SE, DE>> {
    match decided {
        Ok(transition) => commit_step(transition, id),
        Err(Rejection {
            error,
            record: Some(changes),
        }) => Ok(Step::RecordThenRefuse(changes, Refusal::Act(error))),
        Err(Rejection {
            error,
            record: None,
        }) => Err(Refusal::Act(error).into()),
    }
}
