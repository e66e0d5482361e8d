//! Blocking host parts seen through the async traits, each call passing a
//! [`Hook`] first: the test's hand on every await point of an async action.

use std::future::Future;
use std::sync::Arc;

use service_contacts::{
    Assignment, AsyncDirectory, AsyncNotifier, AsyncStore, ChangeRequest, Changes, CommitError,
    CustomerId, Directory, HistoryKey, Message, Notifier, RequestFilter, RequestId, RequestKey,
    Roles, Service, ServiceName, Store,
};
use time::OffsetDateTime;

/// A call to a host part: one await point of an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Service,
    Request,
    ContactsOf,
    RequestsOf,
    DueForExpiry,
    RequestsOn,
    AssignmentsOn,
    Commit,
    Deliver,
    Exists,
    InGoodStanding,
}

/// What happens before each call of a [`Hooked`] part.
pub(crate) trait Hook: Sync {
    /// Runs before `call`, which is made when this future completes: a call
    /// dropped before then is not made at all (a commit writes nothing).
    fn before(&self, call: Call) -> impl Future<Output = ()> + Send;
}

/// Nothing: every call is made at once.
impl Hook for () {
    fn before(&self, _: Call) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

impl<H: Hook + ?Sized> Hook for &H {
    fn before(&self, call: Call) -> impl Future<Output = ()> + Send {
        (**self).before(call)
    }
}

impl<H: Hook + Send + ?Sized> Hook for Arc<H> {
    fn before(&self, call: Call) -> impl Future<Output = ()> + Send {
        (**self).before(call)
    }
}

/// A blocking part (store, notifier or directory) seen through the async
/// trait, each call made once `hook` let it through.
#[derive(Debug, Default)]
pub(crate) struct Hooked<T, H = ()> {
    pub(crate) part: T,
    pub(crate) hook: H,
}

impl<T: Sync, H: Hook> Hooked<T, H> {
    pub(crate) fn new(part: T, hook: H) -> Self {
        Hooked { part, hook }
    }

    /// `run` on the part, once the hook let `call` through.
    async fn call<R>(&self, call: Call, run: impl FnOnce(&T) -> R + Send) -> R {
        self.hook.before(call).await;
        run(&self.part)
    }
}

impl<T: Store + Sync, H: Hook> AsyncStore for Hooked<T, H> {
    type Error = T::Error;

    fn service(
        &self,
        name: &ServiceName,
    ) -> impl Future<Output = Result<Option<Service>, Self::Error>> + Send {
        self.call(Call::Service, move |s| s.service(name))
    }

    fn request(
        &self,
        id: RequestId,
    ) -> impl Future<Output = Result<Option<ChangeRequest>, Self::Error>> + Send {
        self.call(Call::Request, move |s| s.request(id))
    }

    fn contacts_of(
        &self,
        customer: CustomerId,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(ServiceName, Roles)>, Self::Error>> + Send {
        self.call(Call::ContactsOf, move |s| {
            s.contacts_of(customer, after, limit)
        })
    }

    fn requests_of(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ChangeRequest>, Self::Error>> + Send {
        self.call(Call::RequestsOf, move |s| {
            s.requests_of(customer, filter, now, after, limit)
        })
    }

    fn due_for_expiry(
        &self,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ChangeRequest>, Self::Error>> + Send {
        self.call(Call::DueForExpiry, move |s| {
            s.due_for_expiry(now, after, limit)
        })
    }

    fn requests_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ChangeRequest>, Self::Error>> + Send {
        self.call(Call::RequestsOn, move |s| s.requests_on(name, after, limit))
    }

    fn assignments_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Assignment>, Self::Error>> + Send {
        self.call(Call::AssignmentsOn, move |s| {
            s.assignments_on(name, after, limit)
        })
    }

    fn commit(
        &self,
        changes: Changes,
    ) -> impl Future<Output = Result<(), CommitError<Self::Error>>> + Send {
        self.call(Call::Commit, move |s| s.commit(changes))
    }
}

impl<T: Notifier + Sync, H: Hook> AsyncNotifier for Hooked<T, H> {
    type Error = T::Error;

    fn deliver(&self, message: &Message) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.call(Call::Deliver, move |n| n.deliver(message))
    }
}

impl<T: Directory + Sync, H: Hook> AsyncDirectory for Hooked<T, H> {
    type Error = T::Error;

    fn exists(
        &self,
        customer: CustomerId,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        self.call(Call::Exists, move |d| d.exists(customer))
    }

    fn in_good_standing(
        &self,
        customer: CustomerId,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        self.call(Call::InGoodStanding, move |d| d.in_good_standing(customer))
    }
}
