//! The one implementation of every driver action, shared by the blocking
//! [`Driver`](super::Driver) and the [`AsyncDriver`](super::AsyncDriver).
//!
//! Each action is an `async fn` over the async host traits. The async driver
//! awaits it on the host's runtime; the blocking driver runs it over its
//! blocking parts seen through [`Blocking`](crate::host::Blocking), whose
//! futures are ready at once, and polls it to its end without a runtime
//! ([`block_on`]). The order of the loads, the decision, the commit, the
//! retry on conflict, the recorded failed attempt and the delivery after the
//! commit are written here, once.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use rand_core::TryCryptoRng;
use time::OffsetDateTime;

use super::{DriverError, Outcome, Refusal, RequestStatus, Sweep, Undelivered};
use crate::host::{AsyncDirectory, AsyncNotifier, AsyncStore, CommitError};
use crate::{
    AccountStatus, ActError, AssignError, Assignment, ChangeRequest, Changes, Contacts, Cursor,
    CustomerId, Edit, Engine, HistoryEntry, Listing, Message, OperatorAct, Page, PageSize,
    Proposable, Rejection, RequestFilter, RequestId, RequestKey, RequestSummary, Role, Roles,
    Service, ServiceError, ServiceName, Snapshot, SubmitError, Transition,
};

/// The error of an action over the parts `S` and `D`.
type Error<S, D> = DriverError<<S as AsyncStore>::Error, <D as AsyncDirectory>::Error>;

/// The result of an action that commits.
type Committed<T, S, N, D> = Result<Outcome<T, <N as AsyncNotifier>::Error>, Error<S, D>>;

/// Decides with `decide` (an async block: one attempt's reads and decision,
/// giving a [`Step`]), commits and delivers, again and again until it lands,
/// is refused, or the retries run out: the driver's loop, which every action
/// that commits runs. Its value is the action's result.
///
/// Dropped at any await point, it leaves the store as before the commit or
/// as after it (the store's commit is atomic, also when dropped), and
/// delivers nothing before the commit returned (R41).
///
/// The loop is written out in the action's own future, not awaited as a
/// future of its own, and it hands its result on with `break` (not `?` nor
/// `return`, which would need a future of its own): a future that an action
/// awaits is made apart and then copied into the action's future whole,
/// and the step and the request it carries were copied again at each
/// level, which made the blocking driver measurably slower.
macro_rules! attempt {
    ($actions:ident, $decide:expr) => {{
        let mut attempts: u32 = 0;
        loop {
            let step: Result<Step<_>, Error<S, D>> = $decide.await;
            let step = match step {
                Ok(step) => step,
                Err(err) => break Err(err),
            };
            attempts = attempts.saturating_add(1);
            super::trace::attempt(attempts);
            if let Some((changes, then)) = step.into_commit() {
                match $actions.store.commit(changes).await {
                    Ok(()) => match then {
                        Ok((value, messages)) => {
                            let undelivered = $actions.deliver(messages).await;
                            break Ok(Outcome { value, undelivered });
                        }
                        Err(refusal) => break Err(refusal.into()),
                    },
                    Err(CommitError::Conflict) => {}
                    Err(CommitError::Store(err)) => break Err(DriverError::Store(err)),
                }
            }
            // A conflict, or reads that disagreed: decide again.
            if let Err(err) = $actions.again(attempts).await {
                break Err(err);
            }
        }
    }};
}

/// An action on the request `$id` that the engine decides from the request
/// alone, refused with an [`ActError`]: read it, decide with `$decide`
/// (`$request` is the request read), commit and deliver, in the loop of
/// [`attempt!`].
macro_rules! on_request {
    ($actions:ident, $id:expr, |$request:ident| $decide:expr) => {
        attempt!($actions, async {
            let $request = &$actions.load_request($id).await?;
            let transition = $decide.map_err(Refusal::Act)?;
            commit_step(transition, $id)
        })
    };
}

/// The host's parts and the engine, as one action sees them.
pub(super) struct Actions<'a, S, N, D> {
    pub(super) store: &'a S,
    pub(super) notifier: &'a N,
    pub(super) directory: &'a D,
    pub(super) engine: &'a Engine,
    pub(super) retries: u32,
}

// An action's future owns its copy, so that the blocking driver can make the
// future in place, inside `block_on` (see there).
impl<S, N, D> Clone for Actions<'_, S, N, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S, N, D> Copy for Actions<'_, S, N, D> {}

/// What follows a commit that landed: the value and the messages to
/// deliver, or the refusal to report.
type Then<T> = Result<(T, Vec<Message>), Refusal>;

/// What one attempt decided.
enum Step<T> {
    /// Commit, then deliver and return `value`.
    Commit(Transition, T),
    /// Commit the record of a failed attempt, then report the refusal.
    RecordThenRefuse(Changes, Refusal),
    /// The reads disagreed with each other (R44): read and decide again, as
    /// after a commit conflict.
    Retry,
}

impl<T> Step<T> {
    /// What to commit, and what follows once it landed; `None` to decide
    /// again.
    fn into_commit(self) -> Option<(Changes, Then<T>)> {
        match self {
            Step::Commit(transition, value) => {
                Some((transition.changes, Ok((value, transition.messages))))
            }
            Step::RecordThenRefuse(changes, refusal) => Some((changes, Err(refusal))),
            Step::Retry => None,
        }
    }
}

/// A service as the store holds it, with the requests it names (see
/// [`Snapshot`]).
struct Loaded {
    service: Service,
    requests: Vec<ChangeRequest>,
}

impl Loaded {
    fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            service: &self.service,
            requests: &self.requests,
        }
    }
}

/// What the last confirmation of a request decides on: the request, read
/// first, and its service as stored then (`None` if there never was one)
/// with the requests the service names.
///
/// The request is not read a second time among the service's requests: the
/// copy in hand stands in for it, first in `requests`. That copy was read
/// *before* the service, where a second read would come after it; it is
/// sound all the same (R31, R44):
///
/// - The engine decides on the request in hand whatever the snapshot holds
///   under its id: [`Engine::accept`] takes the token from it and writes
///   its next version expecting its version, and applying reads from the
///   snapshot only the service and the *other* requests the service names.
///   A second copy was never consulted, so no decision changes.
/// - A copy gone stale between the two reads (a cancel, a resend, a failed
///   attempt, an expiry, an operator's cancel or assignment, the same
///   confirmation racing itself) was written at its next version by that
///   change; the commit expects the version in hand, so it conflicts, and
///   the driver reads again, the request first. A change of the service
///   (an apply, an assignment, a removal, a request opened) writes the
///   service at its next version, which the commit checks too.
/// - The snapshot is still the service and every request it names (R44
///   allows any order of reads): the engine refuses to decide unless the
///   service names this request on each of its roles and the snapshot holds
///   every other request it names, read after the service as before
///   (otherwise `SnapshotOutdated`, and the driver reads again). A service
///   that does not name the request leaves it in the snapshot, where the
///   engine ignores it, as it ignores any request the service does not name.
///
/// So a decision commits only if the request and the service (and every
/// other request it writes) are still at the versions read: what it decided
/// on is what the store held at the commit, as with a second read.
struct Applying {
    service: Option<Service>,
    /// The request in hand, then the other requests the service names.
    requests: Vec<ChangeRequest>,
}

impl Applying {
    /// `request`, read first, and its `service` as read after it; the other
    /// requests the service names are still to be read.
    fn new(request: ChangeRequest, service: Option<Service>) -> Applying {
        let named = service.as_ref().map_or(0, |s| s.requests_to_load().count());
        let mut requests = Vec::with_capacity(named.max(1));
        requests.push(request);
        Applying { service, requests }
    }

    /// The request being confirmed, as read first.
    fn request(&self) -> &ChangeRequest {
        &self.requests[0]
    }

    fn snapshot(&self) -> Option<Snapshot<'_>> {
        self.service.as_ref().map(|service| Snapshot {
            service,
            requests: &self.requests,
        })
    }
}

impl<S: AsyncStore, N: AsyncNotifier, D: AsyncDirectory> Actions<'_, S, N, D> {
    pub(super) async fn import_services(
        self,
        services: Vec<(ServiceName, Contacts)>,
    ) -> Result<Vec<Service>, Error<S, D>> {
        let mut holders: Vec<CustomerId> = services
            .iter()
            .flat_map(|(_, contacts)| contacts.iter().map(|(_, holder)| holder))
            .collect();
        holders.sort_unstable();
        holders.dedup();
        for holder in holders {
            self.known(holder).await?;
        }
        // A conflict means a name was taken meanwhile, or the store was
        // busy: read again to tell which.
        let imported = attempt!(self, async {
            let mut existing = Vec::new();
            for (name, _) in &services {
                if let Some(service) = self.store.service(name).await.map_err(DriverError::Store)? {
                    existing.push(service);
                }
            }
            let transition = match self.engine.import(services.iter().cloned(), &existing) {
                Ok(transition) => transition,
                Err(ServiceError::SnapshotOutdated) => return Ok(Step::Retry),
                Err(err) => return Err(Refusal::from(err).into()),
            };
            let stored = transition
                .changes
                .services
                .iter()
                .map(|w| w.value.clone())
                .collect();
            Ok(Step::Commit(transition, stored))
        });
        imported.map(|outcome| outcome.value)
    }

    pub(super) async fn order_service(
        self,
        name: &ServiceName,
        customer: CustomerId,
    ) -> Result<Service, Error<S, D>> {
        let services = vec![(name.clone(), Contacts::all(customer))];
        let mut stored = self.import_services(services).await?;
        Ok(stored.remove(0))
    }

    pub(super) async fn remove_service(
        self,
        name: &ServiceName,
        now: OffsetDateTime,
    ) -> Committed<Service, S, N, D> {
        attempt!(self, async {
            let loaded = self.load_live(name).await?;
            match self.engine.remove(loaded.snapshot(), now) {
                Ok(transition) => {
                    let tombstone = transition.changes.services[0].value.clone();
                    Ok(Step::Commit(transition, tombstone))
                }
                Err(ServiceError::SnapshotOutdated) => Ok(Step::Retry),
                Err(_) => Err(Refusal::UnknownService(name.clone()).into()),
            }
        })
    }

    pub(super) async fn submit<R: TryCryptoRng + ?Sized>(
        self,
        edit: &Edit,
        actor: CustomerId,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Committed<Vec<RequestId>, S, N, D> {
        attempt!(self, async {
            let loaded = self.load_live(edit.service()).await?;
            let accounts = self
                .accounts(&edit.accounts_to_check(&loaded.service))
                .await?;
            let transition =
                match self
                    .engine
                    .submit(edit, actor, loaded.snapshot(), &accounts, now, rng)
                {
                    Ok(transition) => transition,
                    Err(SubmitError::SnapshotOutdated) => return Ok(Step::Retry),
                    Err(err) => return Err(Refusal::Submit(err).into()),
                };
            // The requests opened (requests past their deadline that the
            // service names are written too, as expired).
            let ids = transition
                .changes
                .requests
                .iter()
                .filter(|w| w.expected.is_none())
                .map(|w| w.value.id())
                .collect();
            Ok(Step::Commit(transition, ids))
        })
    }

    pub(super) async fn accept(
        self,
        id: RequestId,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> Committed<ChangeRequest, S, N, D> {
        attempt!(self, async {
            let request = self.load_request(id).await?;
            // Only the last confirmation applies the change (R30–R32), and
            // only then does the engine consult the service, its open
            // requests and the accounts: skip loading them otherwise.
            let last = request.waits_only_for(actor, now);
            if !last {
                let nobody: &[(CustomerId, AccountStatus)] = &[];
                let decided = self
                    .engine
                    .accept(&request, actor, token, now, None, nobody);
                return settle(decided, id);
            }
            // The service and the requests it names, the request in hand
            // standing in for its own read (see `Applying`): one read fewer
            // than `load`. Read here, not in an async fn taking the request:
            // such a future holds its arguments twice (accept's future grew
            // from 2.1 to 2.7 KB), and a nested one adds its own state.
            let service = self
                .store
                .service(request.service())
                .await
                .map_err(DriverError::Store)?;
            let mut applying = Applying::new(request, service);
            if let Some(service) = &applying.service {
                for id in service.requests_to_load() {
                    if applying.requests.iter().any(|r| r.id() == id) {
                        continue;
                    }
                    // Named but not found: the snapshot is short, and the
                    // engine asks for a new read.
                    if let Some(other) = self.store.request(id).await.map_err(DriverError::Store)? {
                        applying.requests.push(other);
                    }
                }
            }
            let request = applying.request();
            let accounts = self.accounts(&request.accounts_to_check()).await?;
            let decided =
                self.engine
                    .accept(request, actor, token, now, applying.snapshot(), &accounts);
            settle(decided, id)
        })
    }

    pub(super) async fn refuse(
        self,
        id: RequestId,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> Committed<ChangeRequest, S, N, D> {
        attempt!(self, async {
            let request = self.load_request(id).await?;
            settle(self.engine.refuse(&request, actor, token, now), id)
        })
    }

    pub(super) async fn resend<R: TryCryptoRng + ?Sized>(
        self,
        id: RequestId,
        actor: CustomerId,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Committed<ChangeRequest, S, N, D> {
        on_request!(self, id, |request| self
            .engine
            .resend(request, actor, now, rng))
    }

    pub(super) async fn cancel(
        self,
        id: RequestId,
        actor: CustomerId,
        now: OffsetDateTime,
    ) -> Committed<ChangeRequest, S, N, D> {
        on_request!(self, id, |request| self.engine.cancel(request, actor, now))
    }

    pub(super) async fn cancel_by_operator(
        self,
        id: RequestId,
        act: &OperatorAct,
        now: OffsetDateTime,
    ) -> Committed<ChangeRequest, S, N, D> {
        on_request!(self, id, |request| self
            .engine
            .cancel_by_operator(request, act, now))
    }

    pub(super) async fn resend_by_operator<R: TryCryptoRng + ?Sized>(
        self,
        id: RequestId,
        act: &OperatorAct,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Committed<ChangeRequest, S, N, D> {
        on_request!(self, id, |request| self
            .engine
            .resend_by_operator(request, act, now, rng))
    }

    pub(super) async fn assign<R: TryCryptoRng + ?Sized>(
        self,
        edit: &Edit,
        act: &OperatorAct,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Committed<Assignment, S, N, D> {
        attempt!(self, async {
            let loaded = self.load_live(edit.service()).await?;
            let accounts = self
                .accounts(&edit.accounts_to_check(&loaded.service))
                .await?;
            let mut transition =
                match self
                    .engine
                    .assign(loaded.snapshot(), edit, act, &accounts, now, rng)
                {
                    Ok(transition) => transition,
                    Err(AssignError::SnapshotOutdated) => return Ok(Step::Retry),
                    Err(err) => return Err(Refusal::Assign(err).into()),
                };
            let Some(record) = transition.changes.assignments.first().cloned() else {
                // The engine records every assignment it makes.
                return Err(Refusal::Assign(AssignError::NoChange).into());
            };
            transition.changes.assignments.truncate(1);
            Ok(Step::Commit(transition, record))
        })
    }

    pub(super) async fn history(
        self,
        name: &ServiceName,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Page<HistoryEntry>, Error<S, D>> {
        // A removed service keeps its history (R47): only a name that never
        // was is unknown.
        if self
            .store
            .service(name)
            .await
            .map_err(DriverError::Store)?
            .is_none()
        {
            return Err(Refusal::UnknownService(name.clone()).into());
        }
        let after = after
            .map(|c| c.entry_for(name))
            .transpose()
            .map_err(Refusal::Cursor)?;
        let limit = size.get() + 1;
        let requests = self
            .store
            .requests_on(name, after, limit)
            .await
            .map_err(DriverError::Store)?;
        let assignments = self
            .store
            .assignments_on(name, after, limit)
            .await
            .map_err(DriverError::Store)?;
        // Two lists in the history's order, merged; rows of another
        // service, or not after the cursor, are not this page's.
        let mine = |entry: &HistoryEntry| {
            entry.service() == name && after.is_none_or(|a| a.listed_before(&entry.key()))
        };
        let mut requests = requests
            .into_iter()
            .map(HistoryEntry::Request)
            .filter(mine)
            .peekable();
        let mut assignments = assignments
            .into_iter()
            .map(HistoryEntry::Assignment)
            .filter(mine)
            .peekable();
        let mut rows = Vec::with_capacity(limit);
        while rows.len() < limit {
            let take_request = match (requests.peek(), assignments.peek()) {
                (Some(r), Some(a)) => r.key().listed_before(&a.key()),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_request {
                requests.next()
            } else {
                assignments.next()
            };
            rows.extend(next);
        }
        Ok(paged(rows, size, |entry: &HistoryEntry| {
            Cursor::after_entry(name.clone(), entry.key())
        }))
    }

    pub(super) async fn expire_due(
        self,
        now: OffsetDateTime,
        page_size: PageSize,
    ) -> Committed<Sweep<S::Error, D::Error>, S, N, D> {
        let mut total = empty_sweep(None);
        let mut after: Option<Cursor> = None;
        loop {
            let page = self.expire_due_page(now, after.as_ref(), page_size).await?;
            total.value.expired.extend(page.value.expired);
            total.value.failed.extend(page.value.failed);
            total.undelivered.extend(page.undelivered);
            match page.value.next {
                Some(next) => after = Some(next),
                None => return Ok(total),
            }
        }
    }

    pub(super) async fn expire_due_page(
        self,
        now: OffsetDateTime,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Committed<Sweep<S::Error, D::Error>, S, N, D> {
        let after = after
            .map(|c| c.request_for(Listing::DueForExpiry, None))
            .transpose()
            .map_err(Refusal::Cursor)?;
        let due = self
            .store
            .due_for_expiry(now, after, size.get() + 1)
            .await
            .map_err(DriverError::Store)?;
        let page = paged(due, size, |r: &ChangeRequest| {
            Cursor::after_request(
                Listing::DueForExpiry,
                None,
                RequestKey {
                    at: r.deadline(),
                    id: r.id(),
                },
            )
        });
        let mut total = empty_sweep(page.next);
        for request in page.items {
            let id = request.id();
            let result = attempt!(self, async {
                let request = self.load_request(id).await?;
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

    pub(super) async fn my_contacts(
        self,
        customer: CustomerId,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Page<(ServiceName, Roles)>, Error<S, D>> {
        self.known(customer).await?;
        let after = after
            .map(|c| c.service_for(customer))
            .transpose()
            .map_err(Refusal::Cursor)?;
        let rows = self
            .store
            .contacts_of(customer, after, size.get() + 1)
            .await
            .map_err(DriverError::Store)?;
        Ok(paged(rows, size, |(name, _): &(ServiceName, Roles)| {
            Cursor::after_service(customer, name.clone())
        }))
    }

    pub(super) async fn my_requests(
        self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Page<RequestSummary>, Error<S, D>> {
        self.known(customer).await?;
        let after = after
            .map(|c| c.request_for(Listing::Requests, Some(customer)))
            .transpose()
            .map_err(Refusal::Cursor)?;
        let rows = self
            .store
            .requests_of(customer, filter, now, after, size.get() + 1)
            .await
            .map_err(DriverError::Store)?;
        let page = paged(rows, size, |r: &ChangeRequest| {
            Cursor::after_request(
                Listing::Requests,
                Some(customer),
                RequestKey {
                    at: r.opened_at(),
                    id: r.id(),
                },
            )
        });
        Ok(Page {
            items: page
                .items
                .iter()
                .map(|r| RequestSummary::of(r, customer, now))
                .collect(),
            next: page.next,
        })
    }

    pub(super) async fn service(self, name: &ServiceName) -> Result<Service, Error<S, D>> {
        self.store
            .service(name)
            .await
            .map_err(DriverError::Store)?
            .filter(|service| !service.is_removed())
            .ok_or_else(|| Refusal::UnknownService(name.clone()).into())
    }

    pub(super) async fn request(
        self,
        id: RequestId,
        now: OffsetDateTime,
    ) -> Result<RequestStatus, Error<S, D>> {
        let request = self.load_request(id).await?;
        Ok(RequestStatus {
            state: request.state_name_at(now),
            waiting_for: request.missing_at(now),
            request,
        })
    }

    pub(super) async fn proposable(
        self,
        service: &ServiceName,
        actor: CustomerId,
        now: OffsetDateTime,
    ) -> Result<Proposable, Error<S, D>> {
        let loaded = self.load_live(service).await?;
        let accounts = self
            .accounts(&[loaded.service.holder(Role::Billing)])
            .await?;
        Ok(self
            .engine
            .proposable(loaded.snapshot(), actor, &accounts, now))
    }

    // ----- the loop -----

    /// After `attempts` attempts that did not land: gives the others a turn
    /// before the next, or gives up once `retries` retries were made.
    async fn again(&self, attempts: u32) -> Result<(), Error<S, D>> {
        if attempts > self.retries {
            return Err(DriverError::Contention { attempts });
        }
        super::trace::retry(attempts);
        YieldNow::default().await;
        Ok(())
    }

    /// Delivers every message; failures are collected, not fatal (R41).
    async fn deliver(&self, messages: Vec<Message>) -> Vec<Undelivered<N::Error>> {
        let mut undelivered = Vec::new();
        for message in messages {
            if let Err(error) = self.notifier.deliver(&message).await {
                undelivered.push(Undelivered { message, error });
            }
        }
        undelivered
    }

    /// The service `name` as stored (removed or not) and the requests it
    /// names; `None` if there never was one.
    async fn load(&self, name: &ServiceName) -> Result<Option<Loaded>, Error<S, D>> {
        let Some(service) = self.store.service(name).await.map_err(DriverError::Store)? else {
            return Ok(None);
        };
        let mut requests = Vec::with_capacity(service.requests_to_load().count());
        for id in service.requests_to_load() {
            // A request named but not found leaves the snapshot short: the
            // engine then asks for a new read, or treats the role as locked.
            if let Some(request) = self.store.request(id).await.map_err(DriverError::Store)? {
                requests.push(request);
            }
        }
        Ok(Some(Loaded { service, requests }))
    }

    /// The live service `name` and the requests it names.
    async fn load_live(&self, name: &ServiceName) -> Result<Loaded, Error<S, D>> {
        self.load(name)
            .await?
            .filter(|loaded| !loaded.service.is_removed())
            .ok_or_else(|| Refusal::UnknownService(name.clone()).into())
    }

    async fn load_request(&self, id: RequestId) -> Result<ChangeRequest, Error<S, D>> {
        self.store
            .request(id)
            .await
            .map_err(DriverError::Store)?
            // A store that answers with another record has no request `id`.
            .filter(|request| request.id() == id)
            .ok_or_else(|| Refusal::UnknownRequest(id).into())
    }

    async fn known(&self, customer: CustomerId) -> Result<(), Error<S, D>> {
        if self
            .directory
            .exists(customer)
            .await
            .map_err(DriverError::Directory)?
        {
            Ok(())
        } else {
            Err(Refusal::UnknownCustomer(customer).into())
        }
    }

    /// Looks up the accounts the engine will consult (R13, R14).
    async fn accounts(
        &self,
        customers: &[CustomerId],
    ) -> Result<Vec<(CustomerId, AccountStatus)>, Error<S, D>> {
        let mut out = Vec::with_capacity(customers.len());
        for &customer in customers {
            let exists = self
                .directory
                .exists(customer)
                .await
                .map_err(DriverError::Directory)?;
            let good = exists
                && self
                    .directory
                    .in_good_standing(customer)
                    .await
                    .map_err(DriverError::Directory)?;
            out.push((customer, AccountStatus::from_answers(exists, good)));
        }
        Ok(out)
    }
}

/// A sweep that expired nothing yet, whose next page starts at `next`.
fn empty_sweep<T, SE, DE>(next: Option<Cursor>) -> Outcome<Sweep<SE, DE>, T> {
    Outcome {
        value: Sweep {
            expired: Vec::new(),
            failed: Vec::new(),
            next,
        },
        undelivered: Vec::new(),
    }
}

/// The page of `size` rows among `rows` (read with a limit of `size + 1`),
/// with the cursor after its last row if more follow.
fn paged<T>(mut rows: Vec<T>, size: PageSize, cursor_after: impl Fn(&T) -> Cursor) -> Page<T> {
    let next = if rows.len() > size.get() {
        rows.truncate(size.get());
        rows.last().map(cursor_after)
    } else {
        None
    };
    Page { items: rows, next }
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
            error: ActError::SnapshotOutdated,
            record: None,
        }) => Ok(Step::Retry),
        Err(Rejection {
            error,
            record: None,
        }) => Err(Refusal::Act(error).into()),
    }
}

/// Gives the other tasks (or threads) a turn before deciding again: pending
/// once, having asked to be polled again at once.
#[derive(Default)]
struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            Poll::Ready(())
        } else {
            self.yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Runs an action of the blocking driver to its end on this thread (and the
/// cases of the blocking conformance suite, feature `testing`).
///
/// The blocking driver's parts answer at once ([`Blocking`](crate::host::Blocking)),
/// so the only pending point is [`YieldNow`] after a conflict: the thread
/// yields, as the blocking driver always did, and polls again. The suite's
/// cases never wait over such parts.
///
/// The future is made by `make` right where it is pinned: a future passed by
/// value is copied whole (accept's is about 2 KB) before its first poll.
pub(crate) fn block_on<F: Future>(make: impl FnOnce() -> F) -> F::Output {
    let mut future = pin!(make());
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}
