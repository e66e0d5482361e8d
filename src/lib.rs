//! Service contacts: who administers, runs and pays for a hosted service, and
//! how that changes, safely.
//!
//! Every service a hosting customer orders (a domain, a hosting plan, a
//! server) has three contacts, **admin**, **tech** and **billing**, each a
//! [`CustomerId`] such as `AB12345-OVH`. Contacts change through a **change
//! request**: the right person asks, the requester and the incoming contact
//! each confirm with their own one-time token sent by e-mail, either may
//! refuse, and once all confirmations are in the change applies and everyone
//! involved is told.
//!
//! ```
//! use service_contacts::{Driver, Edit, MemoryDirectory, MemoryNotifier, MemoryStore, PageSize, Role, StateName};
//! use time::macros::datetime;
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! # let mut rng = ChaCha20Rng::seed_from_u64(1); // a host passes `&mut OsRng` or its own generator
//!
//! // The host's accounts, database and mail, here in memory.
//! let (alice, bob) = ("AL1-OVH".parse()?, "BO2-OVH".parse()?);
//! let directory = MemoryDirectory::new();
//! directory.add(alice);
//! directory.add(bob);
//! let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory);
//! let now = datetime!(2026-11-21 10:00 UTC); // time always comes from the caller
//!
//! // Alice orders a service: she holds all three roles (R5).
//! let site = "example.com".parse()?;
//! driver.order_service(&site, alice)?;
//!
//! // As admin she proposes Bob as tech contact; both receive a token (R8, R16, R36).
//! let edit = Edit::new("example.com".parse()?).with(Role::Tech, bob);
//! let request = driver.submit(&edit, alice, now, &mut rng)?.value[0];
//! let mail = driver.notifier().take();
//! let token_for = |who| mail.iter().find(|m| m.to() == who).and_then(|m| m.token()).map(|t| t.reveal());
//!
//! // A wrong token is refused (R25); the right ones apply the change (R20).
//! assert!(driver.accept(request, bob, "not-my-token", now).is_err());
//! let _ = driver.accept(request, bob, &token_for(bob).unwrap(), now)?;
//! let done = driver.accept(request, alice, &token_for(alice).unwrap(), now)?;
//! assert_eq!(done.value.state().name(), StateName::Done);
//! let mine = driver.my_contacts(bob, None, PageSize::default())?; // one page (R45)
//! assert_eq!(mine.items, [("example.com".parse()?, Role::Tech.into())]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `cargo run --example walkthrough` tells the whole story, step by step.
//!
//! # What is here
//!
//! - **Values that cannot be wrong**: [`CustomerId`] (R1–R4), [`ServiceName`]
//!   (R7), [`Role`] and [`Roles`], [`Service`] and its [`Contacts`], the
//!   secret [`Token`] and its [`TokenDigest`], [`RequestId`], a [`Config`]
//!   that can only be built valid.
//! - **The pure core**, [`Engine`]: who may propose what ([`Engine::proposable`],
//!   R8–R15), opening the requests of an [`Edit`] (R33), accepting, refusing,
//!   resending, cancelling and expiring a [`ChangeRequest`], and applying it
//!   with every check made again (R30–R32). It reads no clock and no OS
//!   randomness and does no I/O: each operation takes `now`, the facts it
//!   needs and the caller's generator, and returns a [`Transition`] (the
//!   writes, then the [`Message`]s) or a typed error.
//! - **The host boundary**: [`Store`], [`Notifier`] and [`Directory`], and
//!   the [`Driver`] that turns each user action into one call: load, decide,
//!   commit atomically, then deliver (R41). Async hosts have the same in
//!   [`AsyncStore`], [`AsyncNotifier`], [`AsyncDirectory`] and the
//!   [`AsyncDriver`], which runs the very same code. Existing services come in with
//!   [`Driver::import_services`] (R42); a terminated one leaves with
//!   [`Driver::remove_service`], which keeps a tombstone so its name's
//!   versions never restart (R44).
//! - **In-memory implementations** of the three traits ([`MemoryStore`],
//!   [`MemoryNotifier`], [`MemoryDirectory`]), so everything runs out of the box.
//!
//! What is not here: sending e-mail, a database, a web server, the clock. The
//! host owns those.
//!
//! # For hosts: implementing the traits
//!
//! A host implements [`Store`] on its database, [`Notifier`] on its mail
//! system and [`Directory`] on its customer accounts, then builds a
//! [`Driver`] over them. Each trait method carries the contract the crate
//! relies on. The one that matters most is [`Store::commit`]: every write
//! names the version it expects to replace, and the whole batch is written or
//! none of it. On a SQL database that is one transaction with a
//! `WHERE version = $expected` check per row; a conflict is reported as
//! [`CommitError::Conflict`] and the driver decides again. A relational
//! store that keeps each request as a document beside indexed columns finds
//! their values, and the checks a row read back must pass, in [`columns`].
//!
//! The conformance suite (feature `testing`) checks a store against every
//! contract point. In the host's tests:
//!
//! ```
//! # #[cfg(feature = "testing")] {
//! use service_contacts::{MemoryStore, testing::run_store_suite};
//!
//! // A fresh, empty store per case: the host's would open a new schema or file.
//! let fresh_store = || MemoryStore::new();
//! run_store_suite(fresh_store).assert_passed();
//! # }
//! ```
//!
//! # For async hosts
//!
//! Each host trait has an async twin with the same contract:
//! [`AsyncStore`], [`AsyncNotifier`] and [`AsyncDirectory`], whose methods
//! return `Send` futures (write them as `async fn` in the `impl`). The
//! [`AsyncDriver`] runs every action of the [`Driver`] over them, with the
//! same guarantees, because it runs the same code: both drivers share one
//! implementation of each action (load, decide, commit, retry, deliver). The
//! crate depends on no runtime; await the actions on yours. The in-memory
//! parts implement both kinds of traits:
//!
//! ```
//! use std::sync::Arc;
//! use service_contacts::{AsyncDriver, Edit, MemoryDirectory, MemoryNotifier, MemoryStore, PageSize, Role};
//! use time::macros::datetime;
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (alice, bob) = ("AL1-OVH".parse()?, "BO2-OVH".parse()?);
//! let accounts = MemoryDirectory::new();
//! accounts.add(alice);
//! accounts.add(bob);
//! // One driver for the whole server, shared by the handlers.
//! let driver = Arc::new(AsyncDriver::new(MemoryStore::new(), MemoryNotifier::new(), accounts));
//! let now = datetime!(2026-11-21 10:00 UTC);
//! driver.order_service(&"example.com".parse()?, alice).await?;
//!
//! // An action is a `Send` future: it can run on any worker thread.
//! let edit = Edit::new("example.com".parse()?).with(Role::Tech, bob);
//! let handler = Arc::clone(&driver);
//! let opened = tokio::spawn(async move {
//!     # let mut rng = ChaCha20Rng::seed_from_u64(1); // a host passes `&mut OsRng` or its own generator
//!     handler.submit(&edit, alice, now, &mut rng).await
//! })
//! .await??;
//! let request = opened.value[0];
//!
//! let page = driver.my_requests(bob, &Default::default(), now, None, PageSize::default()).await?;
//! assert_eq!(page.items[0].id, request);
//! assert!(page.items[0].waits_for_me);
//! # Ok(())
//! # }
//! ```
//!
//! A handler of an async HTTP framework then makes one call per request.
//! A sketch in the style of axum (not a dependency of this crate):
//!
//! ```text
//! async fn accept(
//!     State(app): State<Arc<App>>,          // holds an Arc<AsyncDriver<PgStore, Mailer, Accounts>>
//!     session: Session,                      // the signed-in customer
//!     Path(id): Path<RequestId>,
//!     Json(body): Json<TokenBody>,           // { "token": "..." } from the e-mailed link
//! ) -> Result<Json<RequestView>, ApiError> {
//!     let now = app.clock.now();             // the host reads its clock; the crate never does
//!     let outcome = app.driver.accept(id, session.customer, &body.token, now).await?;
//!     for lost in &outcome.undelivered {     // committed anyway (R41): log it, let the
//!         tracing::warn!(to = %lost.message.to(), "undelivered");  // confirmer resend
//!     }
//!     Ok(Json(RequestView::from(outcome.value)))
//! }
//! // `ApiError: From<AsyncDriverErrorFor<PgStore, Accounts>>` maps `Refused(..)` to
//! // 4xx (`InvalidToken` to 403, `UnknownRequest` to 404), `Contention` to 409 or 503,
//! // and a store or directory failure to 500.
//! ```
//!
//! If the client hangs up, the framework drops the handler's future: the
//! store holds the state before the commit or after it, never half, and no
//! message goes out for a state that was not committed (see
//! [`AsyncDriver`], "Cancellation").
//!
//! ## Driving the engine yourself
//!
//! A host that wants its own loop (batching, its own transactions) can call
//! the [`Engine`], which never blocks, as the drivers do:
//!
//! 1. load the state with its own async client: the request, the service, the
//!    requests the service names ([`Service::requests_to_load`]; the request
//!    already read stands in for itself), and the accounts named by
//!    [`ChangeRequest::accounts_to_check`] or [`Edit::accounts_to_check`].
//!    The reads may run in any order or at once (R44): the service record
//!    names what a decision needs, and every decision that relies on it
//!    writes it at its next version;
//! 2. call the engine with `now` and a generator: it returns a [`Transition`],
//!    or [`ActError::SnapshotOutdated`] when the service names a request the
//!    snapshot lacks (it was read before that request opened): go back to 1;
//! 3. commit [`Transition::changes`] in one transaction with the version
//!    checks of [`Write::expected`]; on a conflict, go back to 1;
//! 4. only then deliver [`Transition::messages`] (R41).
//!
//! A refused accept or refuse ([`Rejection`]) may carry a failed attempt to
//! record (R26): commit it, then report the error.
//!
//! ```
//! use std::collections::HashMap;
//! use service_contacts::{AccountStatus, Edit, Engine, Role, Service, Snapshot};
//! use time::macros::datetime;
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! # let mut rng = ChaCha20Rng::seed_from_u64(1);
//!
//! let engine = Engine::default();
//! let (alice, bob) = ("AL1-OVH".parse()?, "BO2-OVH".parse()?);
//! let service = Service::order("example.com".parse()?, alice); // loaded by the host
//! let edit = Edit::new(service.name().clone()).with(Role::Billing, bob);
//! // The host looks up exactly these accounts (here: both in good standing).
//! let accounts: HashMap<_, _> = edit
//!     .accounts_to_check(&service)
//!     .into_iter()
//!     .map(|c| (c, AccountStatus::GoodStanding))
//!     .collect();
//! let snapshot = Snapshot { service: &service, requests: &[] };
//! let transition = engine.submit(&edit, alice, snapshot, &accounts, datetime!(2026-11-21 10:00 UTC), &mut rng)?;
//! // One new request, and the service written at its next version (R31).
//! assert_eq!(transition.changes.requests.len(), 1);
//! assert_eq!(transition.changes.services[0].expected, Some(service.version()));
//! assert_eq!(transition.messages.len(), 2); // one token for each confirmer
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # For support desks
//!
//! Support staff act as **operators** (R46): the host authenticates them and
//! names them with an [`OperatorId`]; every operator action takes an
//! [`OperatorAct`], the operator and a [`Reason`] in their words, which the
//! history keeps and the customers told of the act read. An operator may
//! cancel an open request ([`Driver::cancel_by_operator`]), send it again
//! once a party's address is fixed ([`Driver::resend_by_operator`], with
//! the same resend interval as customers, R23), or, for a customer who
//! cannot receive mail, assign contacts directly ([`Driver::assign`]): the
//! incoming customers must exist (R13), billing standing holds (R14), the
//! change applies in one commit (R31) and fails the open requests it
//! overtakes (R32), and every old and new holder is told who changed what
//! and why ([`MessageKind::Assigned`]). No operator action changes a
//! terminal request.
//!
//! A service's full history, every request ever made on it with all its
//! events and actors and every assignment, reads page by page, newest
//! first, with [`Driver::history`] (R47); with feature `serde`, each
//! [`HistoryEntry`] serializes for an audit export.
//!
//! ```
//! use service_contacts::{Actor, Driver, Edit, HistoryEntry, MemoryDirectory, MemoryNotifier};
//! use service_contacts::{MemoryStore, MessageKind, OperatorAct, PageSize, Role};
//! use time::macros::datetime;
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! # let mut rng = ChaCha20Rng::seed_from_u64(3);
//!
//! let (alice, bob) = ("AL1-OVH".parse()?, "BO2-OVH".parse()?);
//! let directory = MemoryDirectory::new();
//! directory.add(alice);
//! directory.add(bob);
//! let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory);
//! let site = "example.com".parse()?;
//! driver.order_service(&site, alice)?;
//!
//! // Alice lost her mailbox; support checked who she is by phone.
//! let act = OperatorAct::new("jane@support".parse()?, "mailbox lost, identity checked by phone".parse()?);
//! let now = datetime!(2026-11-30 10:00 UTC);
//! let done = driver.assign(&Edit::new(site.clone()).with(Role::Tech, bob), &act, now, &mut rng)?;
//! assert_eq!(driver.service(&site)?.holder(Role::Tech), bob);
//!
//! // Both the old and the new holder are told who changed what, and why.
//! let told: Vec<_> = driver.notifier().take().iter().map(|m| m.to()).collect();
//! assert_eq!(told, [alice, bob]);
//!
//! // The service's history keeps the act, with the operator and the reason.
//! let page = driver.history(&site, None, PageSize::default())?;
//! assert!(matches!(&page.items[0], HistoryEntry::Assignment(a) if a.by() == &act));
//! # let _ = (done, Actor::Customer(alice), MessageKind::Applied);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `getrandom` (default): [`OsRng`], the operating system's generator, for
//!   callers that have none. The core never uses it by itself.
//! - `serde`: `Serialize`/`Deserialize` for identifiers, roles, services,
//!   requests (with state and history), operators, assignments and
//!   history entries, and `Serialize` for messages. Every
//!   deserialized value is validated; plain tokens never serialize.
//! - `proptest`: [`strategy`], proptest strategies for downstream tests.
//! - `testing`: `testing`, the conformance suite for [`Store`] and
//!   [`AsyncStore`] implementations (a blocking and an async runner).
//! - `tracing`: a span around every driver action and events for what an
//!   operator acts on, through the [`tracing`](https://docs.rs/tracing)
//!   facade (see [Tracing](#tracing)). Without it, `tracing` is not in the
//!   dependency tree and the drivers compile as if it did not exist.
//!
//! # Tracing
//!
//! With the feature `tracing`, each action of the [`Driver`] and the
//! [`AsyncDriver`] runs in a span named after it, entered for the whole
//! action: every read, decision, commit, retry and delivery, and whatever
//! the host's parts log meanwhile. The span follows the action's future
//! (entered at each poll), so it stays right across awaits on a
//! multi-threaded runtime. Spans and events have the target
//! `service_contacts::driver`; the host installs the subscriber and picks
//! the levels (`service_contacts=info` shows every change and every
//! problem).
//!
//! | span | level | fields when it opens | recorded when it ends |
//! |---|---|---|---|
//! | `order_service` | `INFO` | `service`, `actor.*` | `outcome`, `attempts` |
//! | `import_services` | `INFO` | `service` (a batch of one) | `outcome`, `attempts` |
//! | `remove_service` | `INFO` | `service` | `outcome`, `attempts` |
//! | `submit` | `INFO` | `service`, `actor.*` | `request` (those opened), `outcome`, `attempts` |
//! | `accept`, `refuse`, `resend`, `cancel` | `INFO` | `request`, `actor.*` | `service`, `outcome`, `attempts` |
//! | `cancel_by_operator`, `resend_by_operator` | `INFO` | `request`, `actor.*` (an operator) | `service`, `outcome`, `attempts` |
//! | `assign` | `INFO` | `service`, `actor.*` (an operator) | `assignment`, `outcome`, `attempts` |
//! | `expire_due`, `expire_due_page` | `INFO` | | `outcome` |
//! | `my_contacts`, `my_requests` | `DEBUG` | `actor.*` | `outcome` |
//! | `service` | `DEBUG` | `service` | `outcome` |
//! | `request` | `DEBUG` | `request` | `service`, `outcome` |
//! | `proposable` | `DEBUG` | `service`, `actor.*` | `outcome` |
//! | `history` | `DEBUG` | `service` | `outcome` |
//!
//! Every span also has `action`, its name. `service` is the
//! [`ServiceName`]; `request` the [`RequestId`] (32 hex digits; several,
//! comma-separated, for an edit that opened several); `assignment` the
//! [`AssignmentId`] an operator's assignment recorded; `actor.kind` is
//! `customer` and `actor.id` the [`CustomerId`] who acts (for a listing,
//! whose listing it is), or `operator` and the [`OperatorId`] (never the
//! operator's reason: free text, kept in the history). `outcome` is `committed` (an action that may
//! change the state succeeded, a sweep included, whatever it expired), `ok`
//! (a read), `refused`, `contention` or `error`; `attempts` is how many
//! times the action was decided (one, plus one for each retry).
//!
//! | event | level | fields | when |
//! |---|---|---|---|
//! | `deciding again: …` | `DEBUG` | `attempt` | a commit met a conflict, or the reads disagreed (R31, R44); the action decides again |
//! | `gave up: …` | `WARN` | `attempts`, `request` (in a sweep) | the retries ran out: [`DriverError::Contention`] |
//! | `refused` | `INFO`, `DEBUG` for a read | `reason` (the [`Refusal`], as `Display`) | [`DriverError::Refused`] |
//! | `the store failed`, `the directory failed` | `ERROR` | `part` (`store`, `directory`), `request` (in a sweep) | [`DriverError::Store`], [`DriverError::Directory`] |
//! | `message not delivered; …` | `WARN` | `request` or `assignment`, `service`, `to`, `kind` | each of [`Outcome::undelivered`] (R41) |
//! | `not expired: refused; …` | `WARN` | `request`, `reason` | a sweep could not expire a request for another reason than its closing meanwhile |
//! | `expiry sweep` | `INFO`, `DEBUG` when it did nothing | `expired`, `failed`, `undelivered`, `more` | a sweep ended: how many requests it expired, how many it could not (they stay due), how many messages were not delivered, whether a next page follows |
//!
//! A refusal is the rules at work (a wrong token, a role locked by another
//! request), not a fault: it is `INFO`, never `ERROR`. `ERROR` is kept for
//! the host's parts failing; `WARN` for what needs a look or a retry, though
//! nothing is lost (contention, an undelivered message, a request the sweep
//! left due).
//!
//! No span or event holds a token or a digest (R48). A message is named by
//! its kind (`confirmationRequested`, `applied`, `replaced`, `refused`,
//! `cancelled`, `expired`, `failed`, `assigned`) and its recipient, never
//! shown whole.
//! A store's or directory's error is named by the part, not by its text,
//! which is the host's and may echo a row (digests included): the host's
//! parts log their own errors, inside the action's span.
//!
//! # Security
//!
//! Tokens carry 256 bits from the caller's cryptographic generator, each
//! party's drawn on its own. Requests keep only their SHA-256 digests,
//! compared in constant time. A token is bound to its request and its owner,
//! and works once; every way a token can fail gives the same error (R24,
//! R25). No `Debug` output, error or history entry contains a token (R40).
//! The crate has no `unsafe` code.
#![forbid(unsafe_code)]

mod assignment;
mod customer;
mod driver;
mod engine;
mod host;
mod listing;
mod memory;
mod message;
mod operator;
mod request;
mod role;
mod service;
mod token;
mod version;

#[cfg(feature = "serde")]
mod serde_impl;

pub mod columns;

#[cfg(any(test, feature = "proptest"))]
pub mod strategy;

#[cfg(feature = "testing")]
pub mod testing;

pub use assignment::{
    Assignment, AssignmentId, HistoryEntry, HistoryKey, ParseAssignmentIdError, Reassignment,
};
pub use customer::{CustomerId, ParseCustomerIdError};
pub use driver::{
    AsyncDriver, AsyncDriverErrorFor, AsyncSweepFor, Driver, DriverError, DriverErrorFor,
    EXPIRY_PAGE, Outcome, Refusal, RequestStatus, Sweep, SweepFor, Undelivered,
};
pub use engine::{
    AccountStatus, Accounts, ActError, AssignError, Blocked, Changes, Config, ConfigError, Edit,
    Engine, Proposable, Rejection, ServiceError, Snapshot, SubmitError, Transition, Write,
};
pub use host::{
    AsyncDirectory, AsyncNotifier, AsyncStore, CommitError, Directory, Notifier, Store,
};
pub use listing::{
    Cursor, CursorError, Listing, Page, PageSize, PageSizeError, Part, RequestFilter, RequestKey,
    RequestSummary,
};
pub use memory::{DeliveryFailed, MemoryDirectory, MemoryNotifier, MemoryStore};
pub use message::{Message, MessageKind};
pub use operator::{
    Actor, OperatorAct, OperatorId, ParseOperatorIdError, ParseReasonError, Reason,
};
pub use request::{
    Awaiting, ChangeRequest, Confirmer, ConfirmerStatus, Event, EventKind, FailureReason,
    ParseRequestIdError, RequestId, RequestState, StateName,
};
pub use role::{ParseRoleError, Role, Roles, RolesIter};
pub use service::{Contacts, ParseServiceNameError, Service, ServiceName};
#[cfg(feature = "getrandom")]
pub use token::OsRng;
pub use token::{ParseDigestError, RandomnessError, Token, TokenDigest};
pub use version::Version;

/// The examples in README.md, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
