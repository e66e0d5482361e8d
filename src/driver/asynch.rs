//! The async driver: the blocking driver's actions for async hosts.

use rand_core::TryCryptoRng;
use time::OffsetDateTime;

use super::{
    Actions, DEFAULT_RETRIES, DriverError, Outcome, RequestStatus, Sweep, expiry_page, parts, trace,
};
use crate::host::{AsyncDirectory, AsyncNotifier, AsyncStore};
use crate::{
    Assignment, ChangeRequest, Config, Contacts, Cursor, CustomerId, Edit, Engine, HistoryEntry,
    OperatorAct, Page, PageSize, Proposable, RequestFilter, RequestId, RequestSummary, Roles,
    Service, ServiceName,
};

/// Runs user actions against the host's [`AsyncStore`], [`AsyncNotifier`]
/// and [`AsyncDirectory`]: the [`Driver`](crate::Driver) for async hosts.
///
/// Every action of the blocking driver is here, with the same arguments, the
/// same result and the same guarantees, because it is the same code: both
/// drivers run one implementation of each action (load, decide, commit,
/// retry on conflict, record a failed attempt, deliver after the commit).
/// The blocking driver's documentation of each action holds here word for
/// word. The library depends on no runtime: await the actions on any.
///
/// An action's future is `Send` when the parts are `Sync` (and, for
/// [`submit`](AsyncDriver::submit) and [`resend`](AsyncDriver::resend), the
/// generator is `Send`), so it can be spawned on a multi-threaded runtime.
///
/// # Cancellation
///
/// An action may be dropped at any await point (the client hung up).
/// Whatever the point, the store holds the state before the action's commit
/// or the state after it, never half of it (the store's commit is atomic,
/// also when dropped: see [`AsyncStore`]), and no message is delivered for a
/// state that was not committed (R41): delivery starts once the commit has
/// returned. Dropped after its commit, an action may leave some messages
/// undelivered, as a failed delivery does; a confirmer recovers a lost
/// token with [`resend`](AsyncDriver::resend) (R22).
///
/// ```
/// use service_contacts::{AsyncDriver, Edit, MemoryDirectory, MemoryNotifier, MemoryStore, Role, StateName};
/// use time::macros::datetime;
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
///
/// async fn story() -> Result<(), Box<dyn std::error::Error>> {
///     # let mut rng = ChaCha20Rng::seed_from_u64(1); // a host passes `&mut OsRng` or its own generator
///     let (alice, bob) = ("AL1-OVH".parse()?, "BO2-OVH".parse()?);
///     let accounts = MemoryDirectory::new();
///     accounts.add(alice);
///     accounts.add(bob);
///     let driver = AsyncDriver::new(MemoryStore::new(), MemoryNotifier::new(), accounts);
///     let now = datetime!(2026-11-21 10:00 UTC);
///
///     driver.order_service(&"example.com".parse()?, alice).await?;
///     let edit = Edit::new("example.com".parse()?).with(Role::Tech, bob);
///     let id = driver.submit(&edit, alice, now, &mut rng).await?.value[0];
///
///     let mail = driver.notifier().take();
///     let token = |who| mail.iter().find(|m| m.to() == who).and_then(|m| m.token()).map(|t| t.reveal());
///     driver.accept(id, bob, &token(bob).unwrap(), now).await?;
///     let done = driver.accept(id, alice, &token(alice).unwrap(), now).await?;
///     assert_eq!(done.value.state().name(), StateName::Done);
///     Ok(())
/// }
///
/// // Any runtime; here tokio's.
/// tokio::runtime::Runtime::new()?.block_on(story())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AsyncDriver<S, N, D> {
    store: S,
    notifier: N,
    directory: D,
    engine: Engine,
    retries: u32,
}

/// The async driver's error type for a store `S` and a directory `D`.
pub type AsyncDriverErrorFor<S, D> =
    DriverError<<S as AsyncStore>::Error, <D as AsyncDirectory>::Error>;

/// The result of an async expiry sweep for a store `S` and a directory `D`.
pub type AsyncSweepFor<S, D> = Sweep<<S as AsyncStore>::Error, <D as AsyncDirectory>::Error>;

parts!(AsyncDriver, std::convert::identity);

impl<S: AsyncStore + Sync, N: AsyncNotifier + Sync, D: AsyncDirectory + Sync> AsyncDriver<S, N, D> {
    /// The shared actions over this driver's parts.
    fn actions(&self) -> trace::Traced<Actions<'_, S, N, D>> {
        trace::traced(Actions {
            store: &self.store,
            notifier: &self.notifier,
            directory: &self.directory,
            engine: &self.engine,
            retries: self.retries,
        })
    }

    /// As [`Driver::order_service`](crate::Driver::order_service).
    ///
    /// # Errors
    ///
    /// As [`Driver::order_service`](crate::Driver::order_service).
    pub async fn order_service(
        &self,
        name: &ServiceName,
        customer: CustomerId,
    ) -> Result<Service, AsyncDriverErrorFor<S, D>> {
        self.actions().order_service(name, customer).await
    }

    /// As [`Driver::import_services`](crate::Driver::import_services).
    ///
    /// # Errors
    ///
    /// As [`Driver::import_services`](crate::Driver::import_services).
    pub async fn import_services(
        &self,
        services: impl IntoIterator<Item = (ServiceName, Contacts)>,
    ) -> Result<Vec<Service>, AsyncDriverErrorFor<S, D>> {
        let services = services.into_iter().collect();
        self.actions().import_services(services).await
    }

    /// As [`Driver::remove_service`](crate::Driver::remove_service).
    ///
    /// # Errors
    ///
    /// As [`Driver::remove_service`](crate::Driver::remove_service).
    pub async fn remove_service(
        &self,
        name: &ServiceName,
        now: OffsetDateTime,
    ) -> Result<Outcome<Service, N::Error>, AsyncDriverErrorFor<S, D>> {
        self.actions().remove_service(name, now).await
    }

    /// As [`Driver::submit`](crate::Driver::submit).
    ///
    /// # Errors
    ///
    /// As [`Driver::submit`](crate::Driver::submit).
    pub async fn submit<R: TryCryptoRng + ?Sized>(
        &self,
        edit: &Edit,
        actor: CustomerId,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Outcome<Vec<RequestId>, N::Error>, AsyncDriverErrorFor<S, D>> {
        self.actions().submit(edit, actor, now, rng).await
    }

    /// As [`Driver::accept`](crate::Driver::accept).
    ///
    /// # Errors
    ///
    /// As [`Driver::accept`](crate::Driver::accept).
    pub async fn accept(
        &self,
        id: RequestId,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Outcome<ChangeRequest, N::Error>, AsyncDriverErrorFor<S, D>> {
        self.actions().accept(id, actor, token, now).await
    }

    /// As [`Driver::refuse`](crate::Driver::refuse).
    ///
    /// # Errors
    ///
    /// As [`Driver::refuse`](crate::Driver::refuse).
    pub async fn refuse(
        &self,
        id: RequestId,
        actor: CustomerId,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Outcome<ChangeRequest, N::Error>, AsyncDriverErrorFor<S, D>> {
        self.actions().refuse(id, actor, token, now).await
    }

    /// As [`Driver::resend`](crate::Driver::resend).
    ///
    /// # Errors
    ///
    /// As [`Driver::resend`](crate::Driver::resend).
    pub async fn resend<R: TryCryptoRng + ?Sized>(
        &self,
        id: RequestId,
        actor: CustomerId,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Outcome<ChangeRequest, N::Error>, AsyncDriverErrorFor<S, D>> {
        self.actions().resend(id, actor, now, rng).await
    }

    /// As [`Driver::cancel`](crate::Driver::cancel).
    ///
    /// # Errors
    ///
    /// As [`Driver::cancel`](crate::Driver::cancel).
    pub async fn cancel(
        &self,
        id: RequestId,
        actor: CustomerId,
        now: OffsetDateTime,
    ) -> Result<Outcome<ChangeRequest, N::Error>, AsyncDriverErrorFor<S, D>> {
        self.actions().cancel(id, actor, now).await
    }

    /// As [`Driver::cancel_by_operator`](crate::Driver::cancel_by_operator).
    ///
    /// # Errors
    ///
    /// As [`Driver::cancel_by_operator`](crate::Driver::cancel_by_operator).
    pub async fn cancel_by_operator(
        &self,
        id: RequestId,
        act: &OperatorAct,
        now: OffsetDateTime,
    ) -> Result<Outcome<ChangeRequest, N::Error>, AsyncDriverErrorFor<S, D>> {
        self.actions().cancel_by_operator(id, act, now).await
    }

    /// As [`Driver::resend_by_operator`](crate::Driver::resend_by_operator).
    ///
    /// # Errors
    ///
    /// As [`Driver::resend_by_operator`](crate::Driver::resend_by_operator).
    pub async fn resend_by_operator<R: TryCryptoRng + ?Sized>(
        &self,
        id: RequestId,
        act: &OperatorAct,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Outcome<ChangeRequest, N::Error>, AsyncDriverErrorFor<S, D>> {
        self.actions().resend_by_operator(id, act, now, rng).await
    }

    /// As [`Driver::assign`](crate::Driver::assign).
    ///
    /// # Errors
    ///
    /// As [`Driver::assign`](crate::Driver::assign).
    pub async fn assign<R: TryCryptoRng + ?Sized>(
        &self,
        edit: &Edit,
        act: &OperatorAct,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<Outcome<Assignment, N::Error>, AsyncDriverErrorFor<S, D>> {
        self.actions().assign(edit, act, now, rng).await
    }

    /// As [`Driver::history`](crate::Driver::history).
    ///
    /// # Errors
    ///
    /// As [`Driver::history`](crate::Driver::history).
    pub async fn history(
        &self,
        name: &ServiceName,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Page<HistoryEntry>, AsyncDriverErrorFor<S, D>> {
        self.actions().history(name, after, size).await
    }

    /// As [`Driver::expire_due`](crate::Driver::expire_due).
    ///
    /// # Errors
    ///
    /// As [`Driver::expire_due`](crate::Driver::expire_due).
    pub async fn expire_due(
        &self,
        now: OffsetDateTime,
    ) -> Result<Outcome<AsyncSweepFor<S, D>, N::Error>, AsyncDriverErrorFor<S, D>> {
        self.actions().expire_due(now, expiry_page()).await
    }

    /// As [`Driver::expire_due_page`](crate::Driver::expire_due_page).
    ///
    /// # Errors
    ///
    /// As [`Driver::expire_due_page`](crate::Driver::expire_due_page).
    pub async fn expire_due_page(
        &self,
        now: OffsetDateTime,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Outcome<AsyncSweepFor<S, D>, N::Error>, AsyncDriverErrorFor<S, D>> {
        self.actions().expire_due_page(now, after, size).await
    }

    /// As [`Driver::my_contacts`](crate::Driver::my_contacts).
    ///
    /// # Errors
    ///
    /// As [`Driver::my_contacts`](crate::Driver::my_contacts).
    pub async fn my_contacts(
        &self,
        customer: CustomerId,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Page<(ServiceName, Roles)>, AsyncDriverErrorFor<S, D>> {
        self.actions().my_contacts(customer, after, size).await
    }

    /// As [`Driver::my_requests`](crate::Driver::my_requests).
    ///
    /// # Errors
    ///
    /// As [`Driver::my_requests`](crate::Driver::my_requests).
    pub async fn my_requests(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Page<RequestSummary>, AsyncDriverErrorFor<S, D>> {
        self.actions()
            .my_requests(customer, filter, now, after, size)
            .await
    }

    /// As [`Driver::service`](crate::Driver::service).
    ///
    /// # Errors
    ///
    /// As [`Driver::service`](crate::Driver::service).
    pub async fn service(&self, name: &ServiceName) -> Result<Service, AsyncDriverErrorFor<S, D>> {
        self.actions().service(name).await
    }

    /// As [`Driver::request`](crate::Driver::request).
    ///
    /// # Errors
    ///
    /// As [`Driver::request`](crate::Driver::request).
    pub async fn request(
        &self,
        id: RequestId,
        now: OffsetDateTime,
    ) -> Result<RequestStatus, AsyncDriverErrorFor<S, D>> {
        self.actions().request(id, now).await
    }

    /// As [`Driver::proposable`](crate::Driver::proposable).
    ///
    /// # Errors
    ///
    /// As [`Driver::proposable`](crate::Driver::proposable).
    pub async fn proposable(
        &self,
        service: &ServiceName,
        actor: CustomerId,
        now: OffsetDateTime,
    ) -> Result<Proposable, AsyncDriverErrorFor<S, D>> {
        self.actions().proposable(service, actor, now).await
    }
}
