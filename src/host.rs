//! The host boundary: the three traits a host application implements.
//!
//! Each trait is a real boundary, a thing the host owns and the crate must not
//! assume: the database ([`Store`]), the mail system ([`Notifier`]) and the
//! customer accounts ([`Directory`]). Each comes twice, with one contract:
//! blocking ([`Store`], [`Notifier`], [`Directory`]) for the blocking
//! [`Driver`](crate::Driver), and async ([`AsyncStore`], [`AsyncNotifier`],
//! [`AsyncDirectory`]) for the [`AsyncDriver`](crate::AsyncDriver).

use std::future::Future;
use std::ops::Deref;

use time::OffsetDateTime;

use crate::{
    Assignment, ChangeRequest, Changes, CustomerId, HistoryKey, Message, RequestFilter, RequestId,
    RequestKey, Roles, Service, ServiceName,
};

/// Where services and change requests live: a SQL database, a key-value
/// store, or memory ([`MemoryStore`](crate::MemoryStore)).
///
/// # What the crate relies on
///
/// Reads must be current: a value written by a successful commit is seen by
/// every read and listing that starts after the commit returned (strongly
/// consistent reads on a distributed store). Races between writers are
/// settled by [`commit`](Store::commit), whose version checks turn a decision
/// made on data that changed meanwhile into a [`CommitError::Conflict`] that
/// the driver retries.
///
/// The order of reads does not matter (R44). A decision about a service
/// rests on its record ([`Service`]), which names the last request opened on
/// each role, and on those requests; every decision that relies on the
/// service writes the service at its next version, so of two decisions made
/// on the same version at most one commits. The driver reads the service
/// first and then the requests it names (for the last acceptance, the
/// request it read first stands in for itself), but a host may read them in
/// any order or at once: a snapshot that lacks a request its service names
/// is refused as outdated and read again.
///
/// A SQL database implements `commit` as one transaction that checks each
/// expected version (`UPDATE ... WHERE version = $expected`, counting rows, or
/// `SERIALIZABLE`); a distributed store as one conditional multi-key write.
///
/// Facts about what the crate writes, which an implementation may rely on:
///
/// - a request's service and parties ([`ChangeRequest::parties`]) never
///   change after it is created, so party indexes are written once;
/// - a service record is never deleted: removing a service writes it as a
///   tombstone ([`Service::is_removed`]) at its next version, and ordering
///   the name again replaces the tombstone at the version after it, so a
///   name's versions never restart;
/// - every commit but an import touches at most one service, and only
///   requests of that service, so partitioning by service name keeps each
///   such commit in one partition (an import writes new services only);
/// - a batch never writes the same record twice (a store may treat it as a
///   conflict);
/// - times are in UTC.
///
/// Run the conformance suite ([`testing`](crate::testing), feature
/// `testing`) against an implementation to check these contracts.
pub trait Store {
    /// The store's own failures (connection lost, disk full, corrupt row, ...).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The service named `name`, as last committed, removed or not (a
    /// tombstone is returned as written); `None` if there was never one.
    fn service(&self, name: &ServiceName) -> Result<Option<Service>, Self::Error>;

    /// The request `id`, as last committed, with its full state and history;
    /// `None` if there is none.
    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Self::Error>;

    /// The services where `customer` holds at least one role, with the
    /// roles (R6): sorted by service name, those whose name comes after
    /// `after` (all if `None`), at most `limit` of them. Removed services are
    /// not listed. Must cost in proportion to `limit`, not to the number of
    /// services or of the customer's services (an index on each role's
    /// holder, ordered by name, read from `after` on).
    fn contacts_of(
        &self,
        customer: CustomerId,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<(ServiceName, Roles)>, Self::Error>;

    /// The requests in which `customer` is a party (requester, incoming or
    /// outgoing contact, see [`ChangeRequest::is_party`]) that `filter`
    /// lists at `now` ([`RequestFilter::matches`], R35, R45): most recently
    /// opened first, ties by request id, those after `after` in that order
    /// (a [`RequestKey`] of the opening time and id; all if `None`), at most
    /// `limit` of them.
    ///
    /// Must cost in proportion to `limit` plus the rows the filter passes
    /// over that an index cannot tell apart because they depend on `now`:
    /// requests past their deadline not yet recorded as expired, and, for a
    /// filter on `expired`, the awaiting requests still before their
    /// deadline; with a service in the filter, also that service's other
    /// requests. In practice: an index on (customer, part, recorded state,
    /// opening time) holding [`ChangeRequest::party_entries`] (the part
    /// "waiting for me" kept up to date as confirmations land), searched in
    /// the ranges [`RequestFilter::index_ranges`] names, or on the service's
    /// requests when the filter names one.
    fn requests_of(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Self::Error>;

    /// The requests whose recorded state is awaiting and whose deadline is
    /// at or before `now` (R29): earliest deadline first, ties by request
    /// id, those after `after` in that order (a [`RequestKey`] of the
    /// deadline and id; all if `None`), at most `limit` of them. Must cost in
    /// proportion to `limit` (an index on the deadline of open requests).
    fn due_for_expiry(
        &self,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Self::Error>;

    /// Every request ever opened on the service `name` (R47), whatever its
    /// state: most recently opened first, ties by request id (as
    /// [`Store::requests_of`]), those strictly after `after` (a
    /// [`HistoryKey`] of the opening time and the id's bytes) in that order
    /// (all if `None`), at most `limit` of them.
    /// Must cost in proportion to `limit` (an index on the service, the
    /// opening time and the id).
    fn requests_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Self::Error>;

    /// Every operator's assignment on the service `name` (R46, R47): newest
    /// first, ties by assignment id, those strictly after `after` (a
    /// [`HistoryKey`] of the time and the id's bytes) in that order (all if
    /// `None`), at most `limit` of them. Must cost in
    /// proportion to `limit` (an index on the service, the time and the id).
    fn assignments_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<Assignment>, Self::Error>;

    /// Writes every record of `changes`, all or nothing (R31).
    ///
    /// Each assignment of [`Changes::assignments`] is new: if one with its
    /// id exists already, nothing is written and the result is
    /// [`CommitError::Conflict`]. Each other write names the version it
    /// expects to replace
    /// ([`Write::expected`](crate::Write)): `None` means the record must not
    /// exist yet; `Some(v)` means the stored record must be at version `v`
    /// (and the new record's version is greater than `v`: a store may refuse
    /// one that is not, as [`MemoryStore`](crate::MemoryStore) does).
    /// If any expectation fails, nothing is written and the result is
    /// [`CommitError::Conflict`]. Of two commits expecting the same version of
    /// a record, at most one succeeds. After success every read and listing
    /// reflects all the writes (indexes included).
    ///
    /// A database that is busy (locked by another writer) should wait a
    /// moment (a busy timeout) before it reports [`CommitError::Conflict`]:
    /// the driver decides again at once, a bounded number of times.
    ///
    /// An implementation that cannot tell whether the commit happened (a
    /// connection lost mid-way) returns [`CommitError::Store`]; the host then
    /// reads the state back before acting again.
    fn commit(&self, changes: Changes) -> Result<(), CommitError<Self::Error>>;
}

/// Why a [`Store::commit`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CommitError<E> {
    /// A record was not at the expected version (or existed when it should
    /// not, or was missing): someone else wrote first. Retryable: reload and
    /// decide again. Also what a busy or locked database should report.
    #[error("a record changed since it was read")]
    Conflict,
    /// The store failed.
    #[error("store error: {0}")]
    Store(#[source] E),
}

/// Delivers messages to customers: e-mail, a queue, a log in tests
/// ([`MemoryNotifier`](crate::MemoryNotifier)).
///
/// # What the crate relies on
///
/// `deliver` is called only after the state the message announces was
/// committed (R41), once per message. A failure concerns that message alone;
/// the driver reports it and goes on with the others. Delivering the same
/// message twice must be harmless to the crate (a host that retries on its
/// own may do so). A [`MessageKind::ConfirmationRequested`](crate::MessageKind)
/// message carries its recipient's token: it goes to that recipient and is
/// not logged (R40).
pub trait Notifier {
    /// Why one message could not be delivered.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Delivers one message to its recipient ([`Message::to`]).
    fn deliver(&self, message: &Message) -> Result<(), Self::Error>;
}

/// The host's customer accounts ([`MemoryDirectory`](crate::MemoryDirectory)
/// in memory).
///
/// # What the crate relies on
///
/// Answers reflect the accounts at the time of the call; the crate asks again
/// before applying a change (R30). Unknown customers are not an error:
/// `exists` answers `false`.
pub trait Directory {
    /// The directory's own failures.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Whether `customer` has an account (R13).
    fn exists(&self, customer: CustomerId) -> Result<bool, Self::Error>;

    /// Whether `customer` is up to date with payments, so that they may give
    /// or take a billing role (R14). `false` for an unknown customer.
    fn in_good_standing(&self, customer: CustomerId) -> Result<bool, Self::Error>;
}

/// Forwards the three traits through a pointer type (`&T`, `Arc<T>`), so a
/// driver can share a store with other threads or with the host.
macro_rules! forward {
    ($($ptr:ty),*) => {$(
        impl<T: Store + ?Sized> Store for $ptr {
            type Error = T::Error;
            fn service(&self, name: &ServiceName) -> Result<Option<Service>, Self::Error> {
                (**self).service(name)
            }
            fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Self::Error> {
                (**self).request(id)
            }
            fn contacts_of(
                &self,
                customer: CustomerId,
                after: Option<&ServiceName>,
                limit: usize,
            ) -> Result<Vec<(ServiceName, Roles)>, Self::Error> {
                (**self).contacts_of(customer, after, limit)
            }
            fn requests_of(
                &self,
                customer: CustomerId,
                filter: &RequestFilter,
                now: OffsetDateTime,
                after: Option<RequestKey>,
                limit: usize,
            ) -> Result<Vec<ChangeRequest>, Self::Error> {
                (**self).requests_of(customer, filter, now, after, limit)
            }
            fn due_for_expiry(
                &self,
                now: OffsetDateTime,
                after: Option<RequestKey>,
                limit: usize,
            ) -> Result<Vec<ChangeRequest>, Self::Error> {
                (**self).due_for_expiry(now, after, limit)
            }
            fn requests_on(
                &self,
                name: &ServiceName,
                after: Option<HistoryKey>,
                limit: usize,
            ) -> Result<Vec<ChangeRequest>, Self::Error> {
                (**self).requests_on(name, after, limit)
            }
            fn assignments_on(
                &self,
                name: &ServiceName,
                after: Option<HistoryKey>,
                limit: usize,
            ) -> Result<Vec<Assignment>, Self::Error> {
                (**self).assignments_on(name, after, limit)
            }
            fn commit(&self, changes: Changes) -> Result<(), CommitError<Self::Error>> {
                (**self).commit(changes)
            }
        }

        impl<T: Notifier + ?Sized> Notifier for $ptr {
            type Error = T::Error;
            fn deliver(&self, message: &Message) -> Result<(), Self::Error> {
                (**self).deliver(message)
            }
        }

        impl<T: Directory + ?Sized> Directory for $ptr {
            type Error = T::Error;
            fn exists(&self, customer: CustomerId) -> Result<bool, Self::Error> {
                (**self).exists(customer)
            }
            fn in_good_standing(&self, customer: CustomerId) -> Result<bool, Self::Error> {
                (**self).in_good_standing(customer)
            }
        }
    )*};
}

forward!(&T, std::sync::Arc<T>);

/// The async twin of [`Store`], for hosts whose database client is async.
///
/// **The contract is [`Store`]'s, method for method**: the same reads, the
/// same listings with the same order and cost, the same atomic,
/// version-checked [`commit`](AsyncStore::commit). Only the calling
/// convention differs: each method returns a future, which is `Send` so that
/// an action can be spawned on a multi-threaded runtime. Implement it with
/// `async fn` in the `impl` block:
///
/// ```
/// use service_contacts::{Assignment, AsyncStore, ChangeRequest, Changes, CommitError, CustomerId};
/// use service_contacts::{HistoryKey, MemoryStore, RequestFilter, RequestId, RequestKey, Roles};
/// use service_contacts::{Service, ServiceName};
/// use time::OffsetDateTime;
///
/// /// A store behind an async client; here it forwards to memory.
/// struct Remote(MemoryStore);
///
/// impl AsyncStore for Remote {
///     type Error = std::convert::Infallible;
///     async fn service(&self, name: &ServiceName) -> Result<Option<Service>, Self::Error> {
///         AsyncStore::service(&self.0, name).await // a real host awaits its client here
///     }
///     async fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Self::Error> {
///         AsyncStore::request(&self.0, id).await
///     }
///     async fn contacts_of(&self, customer: CustomerId, after: Option<&ServiceName>, limit: usize)
///         -> Result<Vec<(ServiceName, Roles)>, Self::Error> {
///         AsyncStore::contacts_of(&self.0, customer, after, limit).await
///     }
///     async fn requests_of(&self, customer: CustomerId, filter: &RequestFilter, now: OffsetDateTime,
///         after: Option<RequestKey>, limit: usize) -> Result<Vec<ChangeRequest>, Self::Error> {
///         AsyncStore::requests_of(&self.0, customer, filter, now, after, limit).await
///     }
///     async fn due_for_expiry(&self, now: OffsetDateTime, after: Option<RequestKey>, limit: usize)
///         -> Result<Vec<ChangeRequest>, Self::Error> {
///         AsyncStore::due_for_expiry(&self.0, now, after, limit).await
///     }
///     async fn requests_on(&self, name: &ServiceName, after: Option<HistoryKey>, limit: usize)
///         -> Result<Vec<ChangeRequest>, Self::Error> {
///         AsyncStore::requests_on(&self.0, name, after, limit).await
///     }
///     async fn assignments_on(&self, name: &ServiceName, after: Option<HistoryKey>, limit: usize)
///         -> Result<Vec<Assignment>, Self::Error> {
///         AsyncStore::assignments_on(&self.0, name, after, limit).await
///     }
///     async fn commit(&self, changes: Changes) -> Result<(), CommitError<Self::Error>> {
///         AsyncStore::commit(&self.0, changes).await
///     }
/// }
/// ```
///
/// # Cancellation
///
/// The [`AsyncDriver`](crate::AsyncDriver) may be dropped at any await point
/// (the client hung up), so each future may be dropped before it completes.
/// A dropped [`commit`](AsyncStore::commit) must leave the store as before
/// the commit or as after it, never half: a database transaction that is
/// not committed when its future is dropped rolls back, which is what the
/// async database clients do.
pub trait AsyncStore {
    /// The store's own failures, as [`Store::Error`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// As [`Store::service`].
    fn service(
        &self,
        name: &ServiceName,
    ) -> impl Future<Output = Result<Option<Service>, Self::Error>> + Send;

    /// As [`Store::request`].
    fn request(
        &self,
        id: RequestId,
    ) -> impl Future<Output = Result<Option<ChangeRequest>, Self::Error>> + Send;

    /// As [`Store::contacts_of`].
    fn contacts_of(
        &self,
        customer: CustomerId,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(ServiceName, Roles)>, Self::Error>> + Send;

    /// As [`Store::requests_of`].
    fn requests_of(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ChangeRequest>, Self::Error>> + Send;

    /// As [`Store::due_for_expiry`].
    fn due_for_expiry(
        &self,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ChangeRequest>, Self::Error>> + Send;

    /// As [`Store::requests_on`].
    fn requests_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ChangeRequest>, Self::Error>> + Send;

    /// As [`Store::assignments_on`].
    fn assignments_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Assignment>, Self::Error>> + Send;

    /// As [`Store::commit`]: all or nothing, also when the future is dropped
    /// before it completes.
    fn commit(
        &self,
        changes: Changes,
    ) -> impl Future<Output = Result<(), CommitError<Self::Error>>> + Send;
}

/// The async twin of [`Notifier`]: the same contract, each method returning
/// a `Send` future. A delivery whose future is dropped before it completes
/// may or may not have reached its recipient; the state it announces was
/// committed either way (R41).
pub trait AsyncNotifier {
    /// As [`Notifier::Error`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// As [`Notifier::deliver`].
    fn deliver(&self, message: &Message) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The async twin of [`Directory`]: the same contract, each method
/// returning a `Send` future.
pub trait AsyncDirectory {
    /// As [`Directory::Error`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// As [`Directory::exists`].
    fn exists(
        &self,
        customer: CustomerId,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// As [`Directory::in_good_standing`].
    fn in_good_standing(
        &self,
        customer: CustomerId,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

/// Implements an async trait for a type, each method's body made by `$how`:
/// `forwarded` (to the pointee of `&T`, `Arc<T>`) or `ready` (the blocking
/// twin's answer, in a future ready at once: for parts that never wait long,
/// such as memory and [`Blocking`]).
macro_rules! async_impl {
    (Store for [$($generics:tt)*] $part:ty, $error:ty, $how:ident) => {
        impl<$($generics)*> AsyncStore for $part {
            type Error = $error;
            fn service(
                &self,
                name: &ServiceName,
            ) -> impl Future<Output = Result<Option<Service>, Self::Error>> + Send {
                $how!(self, Store::service(name))
            }
            fn request(
                &self,
                id: RequestId,
            ) -> impl Future<Output = Result<Option<ChangeRequest>, Self::Error>> + Send {
                $how!(self, Store::request(id))
            }
            fn contacts_of(
                &self,
                customer: CustomerId,
                after: Option<&ServiceName>,
                limit: usize,
            ) -> impl Future<Output = Result<Vec<(ServiceName, Roles)>, Self::Error>> + Send {
                $how!(self, Store::contacts_of(customer, after, limit))
            }
            fn requests_of(
                &self,
                customer: CustomerId,
                filter: &RequestFilter,
                now: OffsetDateTime,
                after: Option<RequestKey>,
                limit: usize,
            ) -> impl Future<Output = Result<Vec<ChangeRequest>, Self::Error>> + Send {
                $how!(self, Store::requests_of(customer, filter, now, after, limit))
            }
            fn due_for_expiry(
                &self,
                now: OffsetDateTime,
                after: Option<RequestKey>,
                limit: usize,
            ) -> impl Future<Output = Result<Vec<ChangeRequest>, Self::Error>> + Send {
                $how!(self, Store::due_for_expiry(now, after, limit))
            }
            fn requests_on(
                &self,
                name: &ServiceName,
                after: Option<$crate::HistoryKey>,
                limit: usize,
            ) -> impl Future<Output = Result<Vec<ChangeRequest>, Self::Error>> + Send {
                $how!(self, Store::requests_on(name, after, limit))
            }
            fn assignments_on(
                &self,
                name: &ServiceName,
                after: Option<$crate::HistoryKey>,
                limit: usize,
            ) -> impl Future<Output = Result<Vec<$crate::Assignment>, Self::Error>> + Send {
                $how!(self, Store::assignments_on(name, after, limit))
            }
            fn commit(
                &self,
                changes: Changes,
            ) -> impl Future<Output = Result<(), CommitError<Self::Error>>> + Send {
                $how!(self, Store::commit(changes))
            }
        }
    };
    (Notifier for [$($generics:tt)*] $part:ty, $error:ty, $how:ident) => {
        impl<$($generics)*> AsyncNotifier for $part {
            type Error = $error;
            fn deliver(
                &self,
                message: &Message,
            ) -> impl Future<Output = Result<(), Self::Error>> + Send {
                $how!(self, Notifier::deliver(message))
            }
        }
    };
    (Directory for [$($generics:tt)*] $part:ty, $error:ty, $how:ident) => {
        impl<$($generics)*> AsyncDirectory for $part {
            type Error = $error;
            fn exists(
                &self,
                customer: CustomerId,
            ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
                $how!(self, Directory::exists(customer))
            }
            fn in_good_standing(
                &self,
                customer: CustomerId,
            ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
                $how!(self, Directory::in_good_standing(customer))
            }
        }
    };
}

/// The body of a forwarded async method: the pointee's own future.
macro_rules! forwarded {
    ($this:ident, $trait:ident :: $method:ident ($($arg:ident),*)) => {
        (**$this).$method($($arg),*)
    };
}

/// The body of an async method answered by the blocking twin, at once.
macro_rules! ready {
    ($this:ident, $trait:ident :: $method:ident ($($arg:ident),*)) => {
        std::future::ready($trait::$method($this, $($arg),*))
    };
}

async_impl!(Store for [T: AsyncStore + Sync + ?Sized] &T, T::Error, forwarded);
async_impl!(Notifier for [T: AsyncNotifier + Sync + ?Sized] &T, T::Error, forwarded);
async_impl!(Directory for [T: AsyncDirectory + Sync + ?Sized] &T, T::Error, forwarded);
async_impl!(Store for [T: AsyncStore + Sync + ?Sized] std::sync::Arc<T>, T::Error, forwarded);
async_impl!(Notifier for [T: AsyncNotifier + Sync + ?Sized] std::sync::Arc<T>, T::Error, forwarded);
async_impl!(Directory for [T: AsyncDirectory + Sync + ?Sized] std::sync::Arc<T>, T::Error, forwarded);

/// A blocking host part seen through the async traits: each call runs to its
/// end on the calling thread and returns a future that is ready at once.
///
/// This is how the blocking [`Driver`](crate::Driver) runs the one loop the
/// two drivers share (see `driver::actions`): it polls that loop to its end
/// without a runtime, since nothing in it ever waits.
pub(crate) struct Blocking<T: ?Sized>(pub(crate) T);

impl<T: ?Sized> Deref for Blocking<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Shows the part itself: the wrapper is an implementation detail.
impl<T: std::fmt::Debug + ?Sized> std::fmt::Debug for Blocking<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

forward!(Blocking<T>);

/// The conformance suite forwards a wrapper of the host's store.
#[cfg(feature = "testing")]
pub(crate) use forwarded;
pub(crate) use {async_impl, ready};

async_impl!(Store for [T: Store + ?Sized] Blocking<T>, T::Error, ready);
async_impl!(Notifier for [T: Notifier + ?Sized] Blocking<T>, T::Error, ready);
async_impl!(Directory for [T: Directory + ?Sized] Blocking<T>, T::Error, ready);
