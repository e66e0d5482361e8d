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
    Assignment, AsyncDirectory, AsyncDriver, AsyncNotifier, AsyncStore, ChangeRequest, Contacts,
    Cursor, CustomerId, Directory, Driver, DriverError, Edit, HistoryEntry, Notifier, OperatorAct,
    Outcome, Page, PageSize, Proposable, RequestFilter, RequestId, RequestStatus, RequestSummary,
    Roles, Service, ServiceName, Store, Sweep,
};
use time::OffsetDateTime;

/// The error of a driver `D`'s actions.
pub(crate) type DriveError<D> = DriverError<<D as Drive>::StoreError, <D as Drive>::DirectoryError>;

/// The result of an action of a driver `D` that commits.
pub(crate) type Answer<T, D> = Result<Outcome<T, <D as Drive>::NotifierError>, DriveError<D>>;

/// The result of a driver `D`'s expiry sweep.
pub(crate) type SweepOf<D> = Sweep<<D as Drive>::StoreError, <D as Drive>::DirectoryError>;

/// The blocking driver's call, made.
macro_rules! made {
    ($call:expr) => {
        $call
    };
}

/// The async driver's call, awaited.
macro_rules! awaited {
    ($call:expr) => {
        $call.await
    };
}

/// Declares [`Drive`] with the actions listed, and implements it for the
/// blocking driver (each method makes the blocking call in an async block)
/// and the async one (each method awaits the driver's own): each signature
/// written once.
macro_rules! drive {
    ($(fn $action:ident(&self $(, $arg:ident: $ty:ty)*) -> $output:ty;)*) => {
        /// A driver, blocking or async, as the tests drive it.
        pub(crate) trait Drive: Sync {
            /// The store's error.
            type StoreError: std::error::Error + Send + Sync + 'static;
            /// The notifier's error.
            type NotifierError: std::error::Error + Send + Sync + 'static;
            /// The directory's error.
            type DirectoryError: std::error::Error + Send + Sync + 'static;

            $(fn $action(&self $(, $arg: $ty)*) -> impl Future<Output = $output> + Send;)*
        }

        drive!(@impl Driver, Store, Notifier, Directory, made; $($action($($arg: $ty),*) -> $output;)*);
        drive!(
            @impl AsyncDriver, AsyncStore, AsyncNotifier, AsyncDirectory, awaited;
            $($action($($arg: $ty),*) -> $output;)*
        );
    };
    (@impl $driver:ident, $store:ident, $notifier:ident, $directory:ident, $finish:ident;
        $($action:ident($($arg:ident: $ty:ty),*) -> $output:ty;)*) => {
        impl<S, N, D> Drive for $driver<S, N, D>
        where
            S: $store + Sync,
            N: $notifier + Sync,
            D: $directory + Sync,
        {
            type StoreError = <S as $store>::Error;
            type NotifierError = <N as $notifier>::Error;
            type DirectoryError = <D as $directory>::Error;

            $(fn $action(&self $(, $arg: $ty)*) -> impl Future<Output = $output> + Send {
                async move { $finish!($driver::$action(self $(, $arg)*)) }
            })*
        }
    };
}

drive! {
    fn order_service(&self, name: &ServiceName, customer: CustomerId)
        -> Result<Service, DriveError<Self>>;
    fn import_services(&self, services: Vec<(ServiceName, Contacts)>)
        -> Result<Vec<Service>, DriveError<Self>>;
    fn remove_service(&self, name: &ServiceName, now: OffsetDateTime) -> Answer<Service, Self>;
    fn submit(&self, edit: &Edit, actor: CustomerId, now: OffsetDateTime, rng: &mut ChaCha20Rng)
        -> Answer<Vec<RequestId>, Self>;
    fn accept(&self, id: RequestId, actor: CustomerId, token: &str, now: OffsetDateTime)
        -> Answer<ChangeRequest, Self>;
    fn refuse(&self, id: RequestId, actor: CustomerId, token: &str, now: OffsetDateTime)
        -> Answer<ChangeRequest, Self>;
    fn resend(&self, id: RequestId, actor: CustomerId, now: OffsetDateTime, rng: &mut ChaCha20Rng)
        -> Answer<ChangeRequest, Self>;
    fn cancel(&self, id: RequestId, actor: CustomerId, now: OffsetDateTime)
        -> Answer<ChangeRequest, Self>;
    fn expire_due(&self, now: OffsetDateTime) -> Answer<SweepOf<Self>, Self>;
    fn expire_due_page(&self, now: OffsetDateTime, after: Option<&Cursor>, size: PageSize)
        -> Answer<SweepOf<Self>, Self>;
    fn my_contacts(&self, customer: CustomerId, after: Option<&Cursor>, size: PageSize)
        -> Result<Page<(ServiceName, Roles)>, DriveError<Self>>;
    fn my_requests(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<&Cursor>,
        size: PageSize
    ) -> Result<Page<RequestSummary>, DriveError<Self>>;
    fn proposable(&self, service: &ServiceName, actor: CustomerId, now: OffsetDateTime)
        -> Result<Proposable, DriveError<Self>>;
    fn cancel_by_operator(&self, id: RequestId, act: &OperatorAct, now: OffsetDateTime)
        -> Answer<ChangeRequest, Self>;
    fn resend_by_operator(
        &self,
        id: RequestId,
        act: &OperatorAct,
        now: OffsetDateTime,
        rng: &mut ChaCha20Rng
    ) -> Answer<ChangeRequest, Self>;
    fn assign(&self, edit: &Edit, act: &OperatorAct, now: OffsetDateTime, rng: &mut ChaCha20Rng)
        -> Answer<Assignment, Self>;
    fn history(&self, name: &ServiceName, after: Option<&Cursor>, size: PageSize)
        -> Result<Page<HistoryEntry>, DriveError<Self>>;
    fn service(&self, name: &ServiceName) -> Result<Service, DriveError<Self>>;
    fn request(&self, id: RequestId, now: OffsetDateTime) -> Result<RequestStatus, DriveError<Self>>;
}

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

/// Every page of the history of the service `name` (R47), `size` entries a
/// page, newest first.
pub(crate) async fn history_pages<D: Drive>(
    driver: &D,
    name: &ServiceName,
    size: PageSize,
) -> Result<Vec<HistoryEntry>, DriveError<D>> {
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = driver.history(name, after.as_ref(), size).await?;
        rows.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(rows),
        }
    }
}
