//! Either driver, seen through one interface, so one test runs through both.
//!
//! [`Drive`] has one method per action a test makes, each returning a future:
//! the [`AsyncDriver`]'s own, or, for the blocking [`Driver`], a future that
//! makes the blocking call when first polled (so it is ready at once, see
//! [`now`]).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use rand_chacha::ChaCha20Rng;
use service_contacts::{
    AsyncDirectory, AsyncDriver, AsyncNotifier, AsyncStore, ChangeRequest, Cursor, CustomerId,
    Directory, Driver, DriverError, Edit, Notifier, Outcome, Page, PageSize, Proposable,
    RequestFilter, RequestId, RequestSummary, Roles, Service, ServiceName, Store, Sweep,
};
use time::OffsetDateTime;

/// The error of a driver `D`'s actions.
pub(crate) type DriveError<D> = DriverError<<D as Drive>::StoreError, <D as Drive>::DirectoryError>;

/// The result of an action of a driver `D` that commits.
pub(crate) type Answer<T, D> = Result<Outcome<T, <D as Drive>::NotifierError>, DriveError<D>>;

/// The result of a driver `D`'s expiry sweep.
pub(crate) type SweepOf<D> = Sweep<<D as Drive>::StoreError, <D as Drive>::DirectoryError>;

/// A driver, blocking or async, as the tests drive it.
pub(crate) trait Drive: Sync {
    /// The store's error.
    type StoreError: std::error::Error + Send + Sync + 'static;
    /// The notifier's error.
    type NotifierError: std::error::Error + Send + Sync + 'static;
    /// The directory's error.
    type DirectoryError: std::error::Error + Send + Sync + 'static;

    fn order_service(
        &self,
        name: &ServiceName,
        customer: CustomerId,
    ) -> impl Future<Output = Result<Service, DriveError<Self>>> + Send;

    fn submit(
        &self,
        edit: &Edit,
        actor: CustomerId,
        now: OffsetDateTime,
        rng: &mut ChaCha20Rng,
    ) -> impl Future<Output = Answer<Vec<RequestId>, Self>> + Send;

    fn accept(
        &self,
        id: RequestId,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Answer<ChangeRequest, Self>> + Send;

    fn refuse(
        &self,
        id: RequestId,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Answer<ChangeRequest, Self>> + Send;

    fn resend(
        &self,
        id: RequestId,
        actor: CustomerId,
        now: OffsetDateTime,
        rng: &mut ChaCha20Rng,
    ) -> impl Future<Output = Answer<ChangeRequest, Self>> + Send;

    fn cancel(
        &self,
        id: RequestId,
        actor: CustomerId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Answer<ChangeRequest, Self>> + Send;

    fn expire_due(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Answer<SweepOf<Self>, Self>> + Send;

    fn my_contacts(
        &self,
        customer: CustomerId,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> impl Future<Output = Result<Page<(ServiceName, Roles)>, DriveError<Self>>> + Send;

    fn my_requests(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> impl Future<Output = Result<Page<RequestSummary>, DriveError<Self>>> + Send;

    fn proposable(
        &self,
        service: &ServiceName,
        actor: CustomerId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Proposable, DriveError<Self>>> + Send;
}

/// Implements [`Drive`] for a driver type, each method calling the driver's
/// own in an async block (awaited with `await` for the async driver).
macro_rules! drive {
    ($driver:ident, $store:ident, $notifier:ident, $directory:ident $(, $await:tt)?) => {
        impl<S, N, D> Drive for $driver<S, N, D>
        where
            S: $store + Sync,
            N: $notifier + Sync,
            D: $directory + Sync,
        {
            type StoreError = <S as $store>::Error;
            type NotifierError = <N as $notifier>::Error;
            type DirectoryError = <D as $directory>::Error;

            fn order_service(
                &self,
                name: &ServiceName,
                customer: CustomerId,
            ) -> impl Future<Output = Result<Service, DriveError<Self>>> + Send {
                async move { $driver::order_service(self, name, customer)$(.$await)? }
            }

            fn submit(
                &self,
                edit: &Edit,
                actor: CustomerId,
                now: OffsetDateTime,
                rng: &mut ChaCha20Rng,
            ) -> impl Future<Output = Answer<Vec<RequestId>, Self>> + Send {
                async move { $driver::submit(self, edit, actor, now, rng)$(.$await)? }
            }

            fn accept(
                &self,
                id: RequestId,
                actor: CustomerId,
                token: &str,
                now: OffsetDateTime,
            ) -> impl Future<Output = Answer<ChangeRequest, Self>> + Send {
                async move { $driver::accept(self, id, actor, token, now)$(.$await)? }
            }

            fn refuse(
                &self,
                id: RequestId,
                actor: CustomerId,
                token: &str,
                now: OffsetDateTime,
            ) -> impl Future<Output = Answer<ChangeRequest, Self>> + Send {
                async move { $driver::refuse(self, id, actor, token, now)$(.$await)? }
            }

            fn resend(
                &self,
                id: RequestId,
                actor: CustomerId,
                now: OffsetDateTime,
                rng: &mut ChaCha20Rng,
            ) -> impl Future<Output = Answer<ChangeRequest, Self>> + Send {
                async move { $driver::resend(self, id, actor, now, rng)$(.$await)? }
            }

            fn cancel(
                &self,
                id: RequestId,
                actor: CustomerId,
                now: OffsetDateTime,
            ) -> impl Future<Output = Answer<ChangeRequest, Self>> + Send {
                async move { $driver::cancel(self, id, actor, now)$(.$await)? }
            }

            fn expire_due(
                &self,
                now: OffsetDateTime,
            ) -> impl Future<Output = Answer<SweepOf<Self>, Self>> + Send {
                async move { $driver::expire_due(self, now)$(.$await)? }
            }

            fn my_contacts(
                &self,
                customer: CustomerId,
                after: Option<&Cursor>,
                size: PageSize,
            ) -> impl Future<Output = Result<Page<(ServiceName, Roles)>, DriveError<Self>>> + Send
            {
                async move { $driver::my_contacts(self, customer, after, size)$(.$await)? }
            }

            fn my_requests(
                &self,
                customer: CustomerId,
                filter: &RequestFilter,
                now: OffsetDateTime,
                after: Option<&Cursor>,
                size: PageSize,
            ) -> impl Future<Output = Result<Page<RequestSummary>, DriveError<Self>>> + Send {
                async move {
                    $driver::my_requests(self, customer, filter, now, after, size)$(.$await)?
                }
            }

            fn proposable(
                &self,
                service: &ServiceName,
                actor: CustomerId,
                now: OffsetDateTime,
            ) -> impl Future<Output = Result<Proposable, DriveError<Self>>> + Send {
                async move { $driver::proposable(self, service, actor, now)$(.$await)? }
            }
        }
    };
}

drive!(Driver, Store, Notifier, Directory);
drive!(
    AsyncDriver,
    AsyncStore,
    AsyncNotifier,
    AsyncDirectory,
    await
);

/// The output of a future that is ready at once, as a blocking driver's
/// are.
///
/// # Panics
///
/// If the future is pending on its first poll.
pub(crate) fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a blocking call's future is ready at once"),
    }
}

/// Every page of `customer`'s contacts (R6, R45), `size` rows a page.
pub(crate) async fn contacts_pages<D: Drive>(
    driver: &D,
    customer: CustomerId,
    size: PageSize,
) -> Result<Vec<(ServiceName, Roles)>, DriveError<D>> {
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = driver.my_contacts(customer, after.as_ref(), size).await?;
        rows.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(rows),
        }
    }
}

/// Every page of `customer`'s requests that `filter` lists at `now` (R35,
/// R45), `size` rows a page.
pub(crate) async fn requests_pages<D: Drive>(
    driver: &D,
    customer: CustomerId,
    filter: &RequestFilter,
    now: OffsetDateTime,
    size: PageSize,
) -> Result<Vec<RequestSummary>, DriveError<D>> {
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = driver
            .my_requests(customer, filter, now, after.as_ref(), size)
            .await?;
        rows.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(rows),
        }
    }
}
