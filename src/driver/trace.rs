//! Tracing (feature `tracing`): a span around each driver action, and the
//! events an operator acts on (see "Tracing" in the crate docs for the
//! list).
//!
//! Both drivers reach the actions through their `actions()`, which hands out
//! [`Traced`] actions: with the feature, a twin of each action of
//! [`Actions`] with the same signature, whose future is the action's in its
//! span (`InSpan`, which enters the span at each poll as
//! `tracing::Instrument` does, so the span is right across awaits, on any
//! thread; the blocking driver's `block_on` polls the very same future), and
//! which records and reports the outcome from the action's result. Without
//! the feature, `Traced<A>` is `A` and the two hooks that the shared loop
//! calls (`attempt`, `retry`) are empty: the same machine code as without
//! this module.
//!
//! An action added to [`Actions`] and called by the drivers does not build
//! with the feature until it has its twin here, so none goes untraced.
//!
//! No field carries a token or a digest (R48): values are written with
//! `Display` of identifiers, names and refusals (none holds a secret, R40),
//! a message by its kind's name, and a host failure by which part failed,
//! never by its text, which the crate cannot vouch for (a database error may
//! echo a row, digests included).

#[cfg(not(feature = "tracing"))]
pub(super) use off::*;
#[cfg(feature = "tracing")]
pub(super) use on::*;

#[cfg(not(feature = "tracing"))]
mod off {
    /// The actions themselves: nothing to trace.
    pub(in crate::driver) type Traced<A> = A;

    /// The actions themselves.
    #[inline]
    pub(in crate::driver) fn traced<A>(actions: A) -> A {
        actions
    }

    /// Nothing. (`#[inline]`: inlined into every codegen unit, so the call
    /// disappears.)
    #[inline]
    pub(in crate::driver) fn attempt(_attempts: u32) {}

    /// Nothing.
    #[inline]
    pub(in crate::driver) fn retry(_attempt: u32) {}
}

#[cfg(feature = "tracing")]
mod on {
    use std::fmt;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, ready};

    use rand_core::TryCryptoRng;
    use time::OffsetDateTime;
    use tracing::field::{Empty, display};
    use tracing::{Level, Span};

    use super::super::actions::Actions;
    use super::super::{DriverError, Outcome, RequestStatus, Sweep};
    use crate::host::{AsyncDirectory, AsyncNotifier, AsyncStore};
    use crate::{
        Assignment, ChangeRequest, Contacts, Cursor, CustomerId, Edit, HistoryEntry, Message,
        MessageKind, OperatorAct, Page, PageSize, Proposable, RequestFilter, RequestId,
        RequestSummary, Roles, Service, ServiceName,
    };

    /// The target of every span and event here.
    const TARGET: &str = "service_contacts::driver";

    /// The error of an action over the parts `S` and `D`.
    type Error<S, D> = DriverError<<S as AsyncStore>::Error, <D as AsyncDirectory>::Error>;

    /// The result of an action that commits.
    type Committed<T, S, N, D> = Result<Outcome<T, <N as AsyncNotifier>::Error>, Error<S, D>>;

    /// The result of a sweep.
    type Swept<S, N, D> =
        Committed<Sweep<<S as AsyncStore>::Error, <D as AsyncDirectory>::Error>, S, N, D>;

    /// The actions, each run in its span.
    pub(in crate::driver) struct Traced<A>(A);

    /// The actions `actions`, each run in its span.
    pub(in crate::driver) fn traced<A>(actions: A) -> Traced<A> {
        Traced(actions)
    }

    /// Records on the action's span that `attempts` decisions were made so
    /// far (the shared loop calls it at each).
    pub(in crate::driver) fn attempt(attempts: u32) {
        // Actions that count attempts have spans at `INFO`.
        if !tracing::level_enabled!(Level::INFO) {
            return;
        }
        // Only on an action's span: when the action's span is not enabled,
        // the current one may be the host's.
        let span = Span::current();
        if span.metadata().is_some_and(|m| m.target() == TARGET) {
            span.record("attempts", attempts);
        }
    }

    /// A commit conflict (or reads that disagreed) after `attempt` attempts:
    /// the action decides again.
    pub(in crate::driver) fn retry(attempt: u32) {
        tracing::debug!(
            target: TARGET,
            attempt,
            "deciding again: the records changed meanwhile"
        );
    }

    /// An action's span: every action's spans have the same fields, those
    /// not known at the start recorded when they are. An action that may
    /// change the state is at `INFO`, a read at `DEBUG`.
    macro_rules! span {
        (change $action:literal) => {
            span!(INFO, true, $action)
        };
        (read $action:literal) => {
            span!(DEBUG, false, $action)
        };
        ($level:ident, $changes:literal, $action:literal) => {
            Action {
                span: tracing::span!(
                    target: TARGET,
                    Level::$level,
                    $action,
                    action = $action,
                    service = Empty,
                    request = Empty,
                    assignment = Empty,
                    actor.kind = Empty,
                    actor.id = Empty,
                    outcome = Empty,
                    attempts = Empty,
                ),
                changes: $changes,
            }
        };
    }

    /// An expiry sweep's span (`INFO`): no actor, and many requests, each
    /// decided on its own (so no one count of attempts).
    macro_rules! sweep_span {
        ($action:literal) => {
            Action {
                span: tracing::span!(
                    target: TARGET,
                    Level::INFO,
                    $action,
                    action = $action,
                    outcome = Empty,
                ),
                changes: true,
            }
        };
    }

    /// An action's span as it is being filled in.
    struct Action {
        span: Span,
        /// Whether the action may change the state (`committed` when it
        /// succeeds; a read is `ok`).
        changes: bool,
    }

    impl Action {
        /// Records `value` as `field`, unless no subscriber wants the span
        /// (finding a field by its name is most of the cost).
        fn record(&self, field: &str, value: impl tracing::Value) {
            if !self.span.is_disabled() {
                self.span.record(field, value);
            }
        }

        /// The service the action is on.
        fn service(self, name: &ServiceName) -> Action {
            self.record("service", name.as_str());
            self
        }

        /// The request the action is on.
        fn request(self, id: RequestId) -> Action {
            self.record("request", display(id));
            self
        }

        /// Who acts: `kind` says what kind of actor (`"customer"`), `id` is
        /// their identifier.
        fn actor(self, kind: &'static str, id: &str) -> Action {
            self.record("actor.kind", kind);
            self.record("actor.id", id);
            self
        }

        /// A customer acts.
        fn customer(self, customer: CustomerId) -> Action {
            if self.span.is_disabled() {
                return self;
            }
            self.actor("customer", customer.as_str())
        }

        /// An operator acts (R46): their identity, never their reason (free
        /// text, which the history keeps).
        fn operator(self, act: &OperatorAct) -> Action {
            if self.span.is_disabled() {
                return self;
            }
            self.actor("operator", act.operator().as_str())
        }

        /// `future`, the action, in this span.
        fn run<F>(self, future: F) -> InSpan<F> {
            InSpan {
                future,
                action: self,
            }
        }
    }

    pin_project_lite::pin_project! {
        /// An action's future in its span: the span is entered at each
        /// poll (so it follows the future from thread to thread, and is
        /// never left entered across an await), and the outcome recorded
        /// and reported once the action ends. One future around the
        /// action's, not two (`Instrumented` around an `async` block): each
        /// layer is a copy of the action's future (2 KB for an accept).
        pub(in crate::driver) struct InSpan<F> {
            #[pin]
            future: F,
            action: Action,
        }
    }

    impl<F, T, SE, DE> Future for InSpan<F>
    where
        F: Future<Output = Result<T, DriverError<SE, DE>>>,
        T: Done,
    {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let this = self.project();
            let _entered = this.action.span.enter();
            let output = ready!(this.future.poll(cx));
            let action = &*this.action;
            match &output {
                Ok(value) => {
                    action.record("outcome", if action.changes { "committed" } else { "ok" });
                    value.done(action, 0);
                }
                Err(err) => {
                    let on = if action.changes { On::Change } else { On::Read };
                    action.record("outcome", failed(err, on));
                }
            }
            Poll::Ready(output)
        }
    }

    /// What failed.
    #[derive(Clone, Copy)]
    enum On {
        /// An action that may change the state.
        Change,
        /// A read.
        Read,
        /// The expiry of request, within a sweep.
        Expiry(RequestId),
    }

    /// Reports `err` at the level an operator expects, and names the
    /// outcome.
    fn failed<SE, DE>(err: &DriverError<SE, DE>, on: On) -> &'static str {
        let request = match on {
            On::Expiry(id) => Some(display(id)),
            On::Change | On::Read => None,
        };
        match err {
            // The user's request cannot be granted: the rules at work, not a
            // fault. A read refused (an unknown request, a cursor of another
            // listing) is quieter still.
            DriverError::Refused(refusal) => {
                match on {
                    On::Change => tracing::info!(target: TARGET, reason = %refusal, "refused"),
                    On::Read => tracing::debug!(target: TARGET, reason = %refusal, "refused"),
                    // A request due that the sweep could not expire, for a
                    // reason other than its being closed meanwhile.
                    On::Expiry(_) => tracing::warn!(
                        target: TARGET,
                        request,
                        reason = %refusal,
                        "not expired: refused; it stays due"
                    ),
                }
                "refused"
            }
            // The host's failures: their text is the host's, not logged here.
            DriverError::Store(_) => {
                tracing::error!(target: TARGET, request, part = "store", "the store failed");
                "error"
            }
            DriverError::Directory(_) => {
                tracing::error!(
                    target: TARGET,
                    request,
                    part = "directory",
                    "the directory failed"
                );
                "error"
            }
            DriverError::Contention { attempts } => {
                tracing::warn!(
                    target: TARGET,
                    request,
                    attempts,
                    "gave up: the records kept changing"
                );
                "contention"
            }
        }
    }

    /// A message the notifier did not deliver: its kind and recipient,
    /// never its content (a confirmation request carries a token, R48).
    fn undelivered(message: &Message) {
        tracing::warn!(
            target: TARGET,
            request = message.request().map(display),
            assignment = message.assignment().map(display),
            service = message.service().as_str(),
            to = message.to().as_str(),
            kind = kind_name(message.kind()),
            "message not delivered; the state it tells of is committed (R41)"
        );
    }

    /// A stable name for each kind of message (its serde tag).
    fn kind_name(kind: &MessageKind) -> &'static str {
        match kind {
            MessageKind::ConfirmationRequested { .. } => "confirmationRequested",
            MessageKind::Applied => "applied",
            MessageKind::Replaced => "replaced",
            MessageKind::Refused { .. } => "refused",
            MessageKind::Cancelled { .. } => "cancelled",
            MessageKind::Expired => "expired",
            MessageKind::Failed { .. } => "failed",
            MessageKind::Assigned { .. } => "assigned",
        }
    }

    /// What an action's value adds to its span once it succeeded.
    trait Done {
        /// Records and reports what the value tells; `undelivered` is how
        /// many of the action's messages were not delivered.
        fn done(&self, action: &Action, undelivered: usize) {
            let _ = (action, undelivered);
        }
    }

    impl<T: Done, E> Done for Outcome<T, E> {
        fn done(&self, action: &Action, _: usize) {
            for lost in &self.undelivered {
                undelivered(&lost.message);
            }
            self.value.done(action, self.undelivered.len());
        }
    }

    impl Done for ChangeRequest {
        fn done(&self, action: &Action, _: usize) {
            action.record("service", self.service().as_str());
        }
    }

    impl Done for RequestStatus {
        fn done(&self, action: &Action, _: usize) {
            action.record("service", self.request.service().as_str());
        }
    }

    /// The requests an edit opened.
    impl Done for Vec<RequestId> {
        fn done(&self, action: &Action, _: usize) {
            action.record("request", display(Ids(self)));
        }
    }

    impl Done for Assignment {
        fn done(&self, action: &Action, _: usize) {
            action.record("assignment", display(self.id()));
        }
    }

    impl Done for Service {}
    impl Done for Vec<Service> {}
    impl Done for Proposable {}
    impl<T> Done for Page<T> {}

    impl<SE, DE> Done for Sweep<SE, DE> {
        fn done(&self, _: &Action, undelivered: usize) {
            for (id, err) in &self.failed {
                failed(err, On::Expiry(*id));
            }
            let (expired, failed, more) =
                (self.expired.len(), self.failed.len(), self.next.is_some());
            if expired == 0 && failed == 0 && undelivered == 0 {
                tracing::debug!(target: TARGET, expired, failed, undelivered, more, "expiry sweep");
            } else {
                tracing::info!(target: TARGET, expired, failed, undelivered, more, "expiry sweep");
            }
        }
    }

    /// Request ids, comma-separated.
    struct Ids<'a>(&'a [RequestId]);

    impl fmt::Display for Ids<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (n, id) in self.0.iter().enumerate() {
                if n > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{id}")?;
            }
            Ok(())
        }
    }

    /// Each action of [`Actions`], with the same signature, in its span.
    impl<S: AsyncStore, N: AsyncNotifier, D: AsyncDirectory> Traced<Actions<'_, S, N, D>> {
        pub(in crate::driver) fn import_services(
            self,
            services: Vec<(ServiceName, Contacts)>,
        ) -> impl Future<Output = Result<Vec<Service>, Error<S, D>>> {
            let span = span!(change "import_services");
            // The service, for a batch of one.
            let span = match services.as_slice() {
                [(name, _)] => span.service(name),
                _ => span,
            };
            span.run(self.0.import_services(services))
        }

        pub(in crate::driver) fn order_service(
            self,
            name: &ServiceName,
            customer: CustomerId,
        ) -> impl Future<Output = Result<Service, Error<S, D>>> {
            span!(change "order_service")
                .service(name)
                .customer(customer)
                .run(self.0.order_service(name, customer))
        }

        pub(in crate::driver) fn remove_service(
            self,
            name: &ServiceName,
            now: OffsetDateTime,
        ) -> impl Future<Output = Committed<Service, S, N, D>> {
            span!(change "remove_service")
                .service(name)
                .run(self.0.remove_service(name, now))
        }

        pub(in crate::driver) fn submit<R: TryCryptoRng + ?Sized>(
            self,
            edit: &Edit,
            actor: CustomerId,
            now: OffsetDateTime,
            rng: &mut R,
        ) -> impl Future<Output = Committed<Vec<RequestId>, S, N, D>> {
            span!(change "submit")
                .service(edit.service())
                .customer(actor)
                .run(self.0.submit(edit, actor, now, rng))
        }

        pub(in crate::driver) fn accept(
            self,
            id: RequestId,
            actor: CustomerId,
            token: &str,
            now: OffsetDateTime,
        ) -> impl Future<Output = Committed<ChangeRequest, S, N, D>> {
            span!(change "accept")
                .request(id)
                .customer(actor)
                .run(self.0.accept(id, actor, token, now))
        }

        pub(in crate::driver) fn refuse(
            self,
            id: RequestId,
            actor: CustomerId,
            token: &str,
            now: OffsetDateTime,
        ) -> impl Future<Output = Committed<ChangeRequest, S, N, D>> {
            span!(change "refuse")
                .request(id)
                .customer(actor)
                .run(self.0.refuse(id, actor, token, now))
        }

        pub(in crate::driver) fn resend<R: TryCryptoRng + ?Sized>(
            self,
            id: RequestId,
            actor: CustomerId,
            now: OffsetDateTime,
            rng: &mut R,
        ) -> impl Future<Output = Committed<ChangeRequest, S, N, D>> {
            span!(change "resend")
                .request(id)
                .customer(actor)
                .run(self.0.resend(id, actor, now, rng))
        }

        pub(in crate::driver) fn cancel(
            self,
            id: RequestId,
            actor: CustomerId,
            now: OffsetDateTime,
        ) -> impl Future<Output = Committed<ChangeRequest, S, N, D>> {
            span!(change "cancel")
                .request(id)
                .customer(actor)
                .run(self.0.cancel(id, actor, now))
        }

        pub(in crate::driver) fn cancel_by_operator(
            self,
            id: RequestId,
            act: &OperatorAct,
            now: OffsetDateTime,
        ) -> impl Future<Output = Committed<ChangeRequest, S, N, D>> {
            span!(change "cancel_by_operator")
                .request(id)
                .operator(act)
                .run(self.0.cancel_by_operator(id, act, now))
        }

        pub(in crate::driver) fn resend_by_operator<R: TryCryptoRng + ?Sized>(
            self,
            id: RequestId,
            act: &OperatorAct,
            now: OffsetDateTime,
            rng: &mut R,
        ) -> impl Future<Output = Committed<ChangeRequest, S, N, D>> {
            span!(change "resend_by_operator")
                .request(id)
                .operator(act)
                .run(self.0.resend_by_operator(id, act, now, rng))
        }

        pub(in crate::driver) fn assign<R: TryCryptoRng + ?Sized>(
            self,
            edit: &Edit,
            act: &OperatorAct,
            now: OffsetDateTime,
            rng: &mut R,
        ) -> impl Future<Output = Committed<Assignment, S, N, D>> {
            span!(change "assign")
                .service(edit.service())
                .operator(act)
                .run(self.0.assign(edit, act, now, rng))
        }

        pub(in crate::driver) fn history(
            self,
            name: &ServiceName,
            after: Option<&Cursor>,
            size: PageSize,
        ) -> impl Future<Output = Result<Page<HistoryEntry>, Error<S, D>>> {
            span!(read "history")
                .service(name)
                .run(self.0.history(name, after, size))
        }

        pub(in crate::driver) fn expire_due(
            self,
            now: OffsetDateTime,
            page_size: PageSize,
        ) -> impl Future<Output = Swept<S, N, D>> {
            sweep_span!("expire_due").run(self.0.expire_due(now, page_size))
        }

        pub(in crate::driver) fn expire_due_page(
            self,
            now: OffsetDateTime,
            after: Option<&Cursor>,
            size: PageSize,
        ) -> impl Future<Output = Swept<S, N, D>> {
            sweep_span!("expire_due_page").run(self.0.expire_due_page(now, after, size))
        }

        pub(in crate::driver) fn my_contacts(
            self,
            customer: CustomerId,
            after: Option<&Cursor>,
            size: PageSize,
        ) -> impl Future<Output = Result<Page<(ServiceName, Roles)>, Error<S, D>>> {
            span!(read "my_contacts")
                .customer(customer)
                .run(self.0.my_contacts(customer, after, size))
        }

        pub(in crate::driver) fn my_requests(
            self,
            customer: CustomerId,
            filter: &RequestFilter,
            now: OffsetDateTime,
            after: Option<&Cursor>,
            size: PageSize,
        ) -> impl Future<Output = Result<Page<RequestSummary>, Error<S, D>>> {
            span!(read "my_requests")
                .customer(customer)
                .run(self.0.my_requests(customer, filter, now, after, size))
        }

        pub(in crate::driver) fn service(
            self,
            name: &ServiceName,
        ) -> impl Future<Output = Result<Service, Error<S, D>>> {
            span!(read "service")
                .service(name)
                .run(self.0.service(name))
        }

        pub(in crate::driver) fn request(
            self,
            id: RequestId,
            now: OffsetDateTime,
        ) -> impl Future<Output = Result<RequestStatus, Error<S, D>>> {
            span!(read "request")
                .request(id)
                .run(self.0.request(id, now))
        }

        pub(in crate::driver) fn proposable(
            self,
            service: &ServiceName,
            actor: CustomerId,
            now: OffsetDateTime,
        ) -> impl Future<Output = Result<Proposable, Error<S, D>>> {
            span!(read "proposable")
                .service(service)
                .customer(actor)
                .run(self.0.proposable(service, actor, now))
        }
    }
}
