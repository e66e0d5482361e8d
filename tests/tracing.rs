//! Tracing (feature `tracing`): what the drivers tell a subscriber, and
//! that it never holds a secret (R40, R48).
//!
//! A capturing layer records every field of every span (when it opens and
//! each later record) and of every event, as text. Random sequences of
//! actions (every action of the drivers, with commit conflicts, store errors
//! and failed deliveries) run through the blocking [`Driver`] and the
//! [`AsyncDriver`], each followed by a fixed epilogue that forces each event
//! once. Then:
//!
//! - R48: no captured text (span names, field names and values, event
//!   targets) holds a token issued during the run, a token presented, or the
//!   digest of any token drawn (its 64 hex digits, or its `Debug`); nor the
//!   `Debug` of a token (`<redacted>`), which would mean a message or its
//!   kind was formatted whole. "Issued" is every 32 bytes the generator gave
//!   during a call, at each word (the tokens of attempts whose commit failed
//!   included); the test checks that every token that reached a notifier
//!   and every digest stored is among them, so the list is not short;
//! - every action that ran has its span, with its `action` and an
//!   `outcome`; each event of the crate and each call the host's store
//!   received lies inside the span of the action that made it;
//! - the epilogue's events are there, at their level, in the right span: a
//!   retried conflict (`DEBUG`), giving up (`WARN`), each undelivered message
//!   (`WARN`, its kind and recipient), a refusal (`INFO`, never `ERROR`), a
//!   store error (`ERROR`), a sweep's results (`INFO`);
//! - `a_token_in_a_field_is_caught`: the scan finds a token put in a field,
//!   so it is not the scan that is blind.
//!
//! `spans_follow_their_actions_across_threads` runs actions at once on a
//! multi-threaded runtime whose host yields at every call, and checks that
//! each call the host received was inside its own action's span.
//!
//! Run: `cargo test --features tracing --test tracing`.

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use proptest::prelude::*;
use proptest::sample::Index;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use service_contacts::{
    AsyncDriver, ChangeRequest, Changes, CommitError, ConfirmerStatus, Contacts, CustomerId,
    DeliveryFailed, Driver, Edit, MemoryDirectory, MemoryNotifier, MemoryStore, Message,
    OperatorAct, PageSize, RequestFilter, RequestId, RequestState, Role, Service, ServiceName,
    Store, Token,
};
use time::{Duration, OffsetDateTime};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};

use common::drive::{Answer, Drive};
use common::hooked::{Call, Hook, Hooked};
use common::{T0, id};

// ----- the capturing layer -----

/// A span as captured: its fields as they were opened, then as recorded.
#[derive(Clone, Debug)]
struct SpanSeen {
    name: &'static str,
    target: String,
    level: Level,
    fields: Vec<(String, String)>,
    /// The span it opened in (its position in [`Log::spans`]).
    parent: Option<usize>,
}

impl SpanSeen {
    /// The last value recorded for `field`.
    fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value.as_str())
    }
}

/// An event as captured.
#[derive(Clone, Debug)]
struct EventSeen {
    target: String,
    level: Level,
    fields: Vec<(String, String)>,
    /// The span it happened in (its position in [`Log::spans`]).
    span: Option<usize>,
    thread: std::thread::ThreadId,
}

impl EventSeen {
    fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value.as_str())
    }

    fn message(&self) -> &str {
        self.get("message").unwrap_or_default()
    }
}

/// Everything a subscriber was told.
#[derive(Debug, Default)]
struct Log {
    spans: Vec<SpanSeen>,
    events: Vec<EventSeen>,
}

impl Log {
    /// The crate's spans (the actions').
    fn actions(&self) -> impl Iterator<Item = (usize, &SpanSeen)> {
        self.spans
            .iter()
            .enumerate()
            .filter(|(_, s)| s.target.starts_with("service_contacts"))
    }

    /// The crate's events.
    fn ours(&self) -> impl Iterator<Item = &EventSeen> {
        self.events
            .iter()
            .filter(|e| e.target.starts_with("service_contacts"))
    }

    /// The crate's span `event` is in, if any.
    fn action_of(&self, event: &EventSeen) -> Option<&SpanSeen> {
        let mut at = event.span;
        while let Some(n) = at {
            let span = &self.spans[n];
            if span.target.starts_with("service_contacts") {
                return Some(span);
            }
            at = span.parent;
        }
        None
    }
}

/// A layer that writes down every span and event, each field as text.
#[derive(Clone, Debug, Default)]
struct Capture(Arc<Mutex<Log>>);

impl Capture {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A dispatcher that captures here.
    fn dispatch(&self) -> Dispatch {
        Dispatch::new(Registry::default().with(self.clone()))
    }
}

/// A span's position in [`Log::spans`], kept in the registry's span data
/// (span ids are reused once a span closes).
struct Seq(usize);

/// Writes each field down as text: `Debug` (the way a subscriber shows a
/// value), a string as it is.
struct Texts<'a>(&'a mut Vec<(String, String)>);

impl Visit for Texts<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

fn seq<S: Subscriber + for<'a> LookupSpan<'a>>(ctx: &Context<'_, S>, id: &Id) -> Option<usize> {
    ctx.span(id)?.extensions().get::<Seq>().map(|s| s.0)
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        attrs.record(&mut Texts(&mut fields));
        let span = ctx.span(id).expect("the registry knows a new span");
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Seq>().map(|s| s.0));
        let meta = attrs.metadata();
        let n = {
            let mut log = self.log();
            log.spans.push(SpanSeen {
                name: meta.name(),
                target: meta.target().to_owned(),
                level: *meta.level(),
                fields,
                parent,
            });
            log.spans.len() - 1
        };
        span.extensions_mut().insert(Seq(n));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(n) = seq(&ctx, id) else { return };
        let mut fields = Vec::new();
        values.record(&mut Texts(&mut fields));
        self.log().spans[n].fields.extend(fields);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        event.record(&mut Texts(&mut fields));
        let span = ctx
            .event_span(event)
            .and_then(|s| s.extensions().get::<Seq>().map(|s| s.0));
        let meta = event.metadata();
        self.log().events.push(EventSeen {
            target: meta.target().to_owned(),
            level: *meta.level(),
            fields,
            span,
            thread: std::thread::current().id(),
        });
    }
}

// ----- R48: the secrets, and the scan -----

/// Every secret of a run: what must appear in no captured text.
#[derive(Debug, Default)]
struct Secrets {
    /// The text of every token that can have been drawn.
    tokens: HashSet<String>,
    /// Their digests' text (64 hex digits).
    digests: HashSet<String>,
    /// Tokens presented to accept or refuse (all 43 characters).
    presented: HashSet<String>,
}

/// The characters of a token's text.
fn base64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// The substrings of `text` of `len` characters made only of characters
/// that `keep` accepts.
fn windows(text: &str, len: usize, keep: fn(char) -> bool) -> impl Iterator<Item = &str> {
    text.split(move |c: char| !keep(c))
        .filter(move |run| run.len() >= len)
        .flat_map(move |run| (0..=run.len() - len).map(move |at| &run[at..at + len]))
}

impl Secrets {
    /// Every token the generator's `bytes` could have made (a token takes 32
    /// bytes, starting at a word), and their digests.
    fn drawn(&mut self, bytes: &[u8]) {
        for at in (0..bytes.len().saturating_sub(31)).step_by(4) {
            let token = Token::from_bytes(bytes[at..at + 32].try_into().expect("32 bytes"));
            self.tokens.insert(token.reveal());
            self.digests.insert(token.digest().to_string());
        }
    }

    /// Why `text` (`what`) must not be shown, if it holds a secret.
    fn leak(&self, what: &str, text: &str) -> Option<String> {
        for marker in ["<redacted>", "TokenDigest("] {
            if text.contains(marker) {
                return Some(format!(
                    "R48: {what} holds a secret's Debug ({marker}): {text}"
                ));
            }
        }
        if let Some(token) = windows(text, 43, base64url)
            .find(|w| self.tokens.contains(*w) || self.presented.contains(*w))
        {
            return Some(format!("R48: {what} holds the token {token}: {text}"));
        }
        if let Some(digest) =
            windows(text, 64, |c| c.is_ascii_hexdigit()).find(|w| self.digests.contains(*w))
        {
            return Some(format!("R48: {what} holds the digest {digest}: {text}"));
        }
        None
    }

    /// Every leak in `log`.
    fn scan(&self, log: &Log) -> Vec<String> {
        let mut leaks = Vec::new();
        let mut check = |what: String, text: &str| {
            leaks.extend(self.leak(&what, text));
        };
        for span in &log.spans {
            check(format!("the name of span {}", span.name), span.name);
            check(format!("the target of span {}", span.name), &span.target);
            for (field, value) in &span.fields {
                check(format!("the name of a field of span {}", span.name), field);
                check(format!("field {field} of span {}", span.name), value);
            }
        }
        for event in &log.events {
            check("the target of an event".to_owned(), &event.target);
            for (field, value) in &event.fields {
                check("the name of an event's field".to_owned(), field);
                check(
                    format!("field {field} of event {:?}", event.message()),
                    value,
                );
            }
        }
        leaks
    }
}

// ----- the host, with faults -----

#[derive(Debug, thiserror::Error)]
#[error("disk on fire")]
struct DiskOnFire;

/// What the next commits meet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Fault {
    #[default]
    None,
    /// The next commit meets a conflict (R31: the driver decides again).
    Conflict,
    /// The next commit fails with a store error.
    StoreError,
    /// Every commit meets a conflict, until the fault is cleared.
    Contention,
}

/// A [`MemoryStore`] whose commits can be made to fail, and that tells the
/// subscriber of each call it receives (target `host`), as a host's store
/// would.
#[derive(Debug, Default)]
struct FaultyStore {
    inner: MemoryStore,
    fault: Mutex<Fault>,
}

impl FaultyStore {
    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }
}

impl Store for FaultyStore {
    type Error = DiskOnFire;

    fn service(&self, name: &ServiceName) -> Result<Option<Service>, DiskOnFire> {
        tracing::trace!(target: "host", call = "service", service = name.as_str());
        common::never(self.inner.service(name))
    }

    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, DiskOnFire> {
        tracing::trace!(target: "host", call = "request", request = %id);
        common::never(self.inner.request(id))
    }

    forward_listings!(inner, DiskOnFire, common::never);

    fn commit(&self, changes: Changes) -> Result<(), CommitError<DiskOnFire>> {
        tracing::trace!(target: "host", call = "commit");
        let mut fault = self.fault.lock().unwrap_or_else(PoisonError::into_inner);
        match *fault {
            Fault::None => {}
            Fault::Conflict => {
                *fault = Fault::None;
                return Err(CommitError::Conflict);
            }
            Fault::StoreError => {
                *fault = Fault::None;
                return Err(CommitError::Store(DiskOnFire));
            }
            Fault::Contention => return Err(CommitError::Conflict),
        }
        drop(fault);
        self.inner.commit(changes).map_err(|e| match e {
            CommitError::Conflict => CommitError::Conflict,
            CommitError::Store(never) => match never {},
        })
    }
}

/// Yields before every call of the async host, so that an action's future
/// is pending at each and the runtime's other tasks run meanwhile; with
/// `nap`, first holds its thread a moment, so that the other threads of a
/// multi-threaded runtime take the other tasks.
#[derive(Clone, Copy, Debug, Default)]
struct Yield {
    nap: bool,
}

impl Hook for Yield {
    fn before(&self, _: Call) -> impl Future<Output = ()> + Send {
        let nap = self.nap;
        async move {
            if nap {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            tokio::task::yield_now().await;
        }
    }
}

/// The parts both drivers are built on.
#[derive(Debug)]
struct Parts {
    store: Arc<FaultyStore>,
    notifier: Arc<MemoryNotifier>,
    directory: Arc<MemoryDirectory>,
}

/// How many customers the sequences use.
const POOL: usize = 5;

/// How many services the sequences use.
const SERVICES: usize = 4;

fn service_name(n: usize) -> ServiceName {
    format!("s{n}.example").parse().expect("a valid name")
}

impl Parts {
    fn new() -> Parts {
        let directory = MemoryDirectory::new();
        for n in 0..POOL {
            directory.add(id(n));
        }
        Parts {
            store: Arc::new(FaultyStore::default()),
            notifier: Arc::new(MemoryNotifier::new()),
            directory: Arc::new(directory),
        }
    }
}

/// A driver, blocking or async, and how to run its futures with the
/// capturing subscriber as the default.
trait Traced: Drive<StoreError = DiskOnFire, NotifierError = DeliveryFailed> {
    fn build(parts: &Parts) -> Self;
    /// Runs `future` (an action) to its end with `dispatch` as the default.
    fn run<T>(
        &self,
        runtime: &tokio::runtime::Runtime,
        dispatch: &Dispatch,
        future: impl Future<Output = T>,
    ) -> T;
    fn name() -> &'static str;
}

type Blocking = Driver<Arc<FaultyStore>, Arc<MemoryNotifier>, Arc<MemoryDirectory>>;

impl Traced for Blocking {
    fn build(parts: &Parts) -> Self {
        Driver::new(
            Arc::clone(&parts.store),
            Arc::clone(&parts.notifier),
            Arc::clone(&parts.directory),
        )
    }

    fn run<T>(
        &self,
        _: &tokio::runtime::Runtime,
        dispatch: &Dispatch,
        future: impl Future<Output = T>,
    ) -> T {
        tracing::dispatcher::with_default(dispatch, || common::drive::now(future))
    }

    fn name() -> &'static str {
        "the blocking driver"
    }
}

type Async =
    AsyncDriver<Hooked<Arc<FaultyStore>, Yield>, Arc<MemoryNotifier>, Arc<MemoryDirectory>>;

impl Traced for Async {
    fn build(parts: &Parts) -> Self {
        AsyncDriver::new(
            Hooked::new(Arc::clone(&parts.store), Yield::default()),
            Arc::clone(&parts.notifier),
            Arc::clone(&parts.directory),
        )
    }

    fn run<T>(
        &self,
        runtime: &tokio::runtime::Runtime,
        dispatch: &Dispatch,
        future: impl Future<Output = T>,
    ) -> T {
        use tracing::instrument::WithSubscriber;
        runtime.block_on(future.with_subscriber(dispatch.clone()))
    }

    fn name() -> &'static str {
        "the async driver"
    }
}

// ----- the sequences -----

/// Which token a customer presents.
#[derive(Clone, Copy, Debug)]
enum Pick {
    /// The last one they received for the request.
    Own,
    /// The last one another party received for it.
    Other,
    /// One they received before (used, rotated or invalidated).
    Old,
    /// Their own with one character changed.
    OffByOne,
    /// A token of no one.
    Random,
}

/// Who acts.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// A party the rules let act: a service's admin (submit), a request's
    /// confirmer (accept, refuse, resend) or its requester (cancel).
    Party(Index),
    /// Anyone of the pool.
    Anyone(usize),
}

/// Which request an action is on.
#[derive(Clone, Copy, Debug)]
struct Target {
    /// One still awaiting confirmations, if there is one.
    live: bool,
    index: Index,
}

#[derive(Clone, Debug)]
enum Op {
    Submit {
        actor: Who,
        service: usize,
        roles: u8,
        incoming: usize,
    },
    Accept {
        request: Target,
        who: Who,
        pick: Pick,
    },
    Refuse {
        request: Target,
        who: Who,
        pick: Pick,
    },
    Resend {
        request: Target,
        who: Who,
    },
    Cancel {
        request: Target,
        who: Who,
    },
    Advance {
        minutes: i64,
    },
    Expire,
    ExpirePage {
        size: usize,
    },
    Order {
        service: usize,
        who: usize,
    },
    Import {
        service: usize,
        who: usize,
    },
    Remove {
        service: usize,
    },
    Standing {
        who: usize,
        good: bool,
    },
    MyContacts {
        who: usize,
    },
    MyRequests {
        who: usize,
    },
    Proposable {
        who: usize,
        service: usize,
    },
    Request {
        request: Index,
    },
    Service {
        service: usize,
    },
    /// An operator cancels (R46).
    OperatorCancel {
        request: Target,
    },
    /// An operator sends a request again (R46).
    OperatorResend {
        request: Target,
    },
    /// An operator assigns `roles` (bits) of `service` to `incoming` (R46).
    Assign {
        service: usize,
        roles: u8,
        incoming: usize,
    },
    /// A service's history (R47).
    History {
        service: usize,
    },
}

/// The operator of every operator action here, and their reason.
fn operator_act() -> OperatorAct {
    OperatorAct::new(
        "jane@support".parse().expect("an operator"),
        "the customer asked support".parse().expect("a reason"),
    )
}

/// Which messages the notifier fails during a step.
#[derive(Clone, Copy, Debug)]
enum Mail {
    Delivered,
    FailTokens,
    FailTo(usize),
    FailAll,
}

#[derive(Clone, Debug)]
struct Step {
    op: Op,
    fault: Fault,
    mail: Mail,
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        6 => Just(Pick::Own),
        1 => Just(Pick::Other),
        1 => Just(Pick::Old),
        1 => Just(Pick::OffByOne),
        1 => Just(Pick::Random),
    ]
}

fn party() -> impl Strategy<Value = Who> {
    prop_oneof![
        5 => any::<Index>().prop_map(Who::Party),
        1 => (0..POOL).prop_map(Who::Anyone),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    (prop::bool::weighted(0.8), any::<Index>()).prop_map(|(live, index)| Target { live, index })
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..POOL;
    let service = 0..SERVICES;
    prop_oneof![
        6 => (party(), service.clone(), 1..8u8, who.clone()).prop_map(
            |(actor, service, roles, incoming)| Op::Submit { actor, service, roles, incoming }
        ),
        8 => (target(), party(), pick())
            .prop_map(|(request, who, pick)| Op::Accept { request, who, pick }),
        2 => (target(), party(), pick())
            .prop_map(|(request, who, pick)| Op::Refuse { request, who, pick }),
        2 => (target(), party()).prop_map(|(request, who)| Op::Resend { request, who }),
        2 => (target(), party()).prop_map(|(request, who)| Op::Cancel { request, who }),
        2 => prop_oneof![1..20i64, Just(7 * 24 * 60)].prop_map(|minutes| Op::Advance { minutes }),
        1 => Just(Op::Expire),
        1 => (1..3usize).prop_map(|size| Op::ExpirePage { size }),
        1 => (service.clone(), who.clone()).prop_map(|(service, who)| Op::Order { service, who }),
        1 => (service.clone(), who.clone()).prop_map(|(service, who)| Op::Import { service, who }),
        1 => service.clone().prop_map(|service| Op::Remove { service }),
        1 => (who.clone(), any::<bool>()).prop_map(|(who, good)| Op::Standing { who, good }),
        1 => who.clone().prop_map(|who| Op::MyContacts { who }),
        1 => who.clone().prop_map(|who| Op::MyRequests { who }),
        1 => (who.clone(), service.clone())
            .prop_map(|(who, service)| Op::Proposable { who, service }),
        1 => any::<Index>().prop_map(|request| Op::Request { request }),
        1 => service.clone().prop_map(|service| Op::Service { service }),
        1 => target().prop_map(|request| Op::OperatorCancel { request }),
        1 => target().prop_map(|request| Op::OperatorResend { request }),
        1 => (service.clone(), 1..8u8, who.clone())
            .prop_map(|(service, roles, incoming)| Op::Assign { service, roles, incoming }),
        1 => service.prop_map(|service| Op::History { service }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let fault = prop_oneof![
        8 => Just(Fault::None),
        2 => Just(Fault::Conflict),
        1 => Just(Fault::StoreError),
    ];
    let mail = prop_oneof![
        6 => Just(Mail::Delivered),
        1 => Just(Mail::FailTokens),
        1 => (0..POOL).prop_map(Mail::FailTo),
        1 => Just(Mail::FailAll),
    ];
    (op(), fault, mail).prop_map(|(op, fault, mail)| Step { op, fault, mail })
}

/// A sequence: the generator's seed and the steps.
fn sequence() -> impl Strategy<Value = (u64, Vec<Step>)> {
    (any::<u64>(), prop::collection::vec(step(), 10..50))
}

/// Runs `$body` (a future made of the driver `$d`, the generator `$rng`
/// and the time `$now`) as the action `$action` of `$run`, with the
/// capturing subscriber, and notes every token the generator can have drawn
/// during it.
macro_rules! call {
    ($run:ident, $action:literal, |$d:ident, $rng:tt, $now:tt| $body:expr) => {{
        $run.ran.insert($action);
        let before = $run.rng.clone();
        let words = $run.rng.get_word_pos();
        let output = {
            let ($d, $rng, $now) = (&$run.driver, &mut $run.rng, $run.now);
            $run.driver.run(&$run.runtime, &$run.dispatch, $body)
        };
        let drawn = $run.rng.get_word_pos() - words;
        $run.secrets.drawn(&replay(before, drawn));
        output
    }};
}

/// The next `words` words of `rng`, as bytes.
fn replay(mut rng: ChaCha20Rng, words: u128) -> Vec<u8> {
    let mut bytes = vec![0; usize::try_from(words * 4).expect("a few words")];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// One run of a sequence through a driver.
struct Run<D> {
    driver: D,
    parts: Parts,
    capture: Capture,
    dispatch: Dispatch,
    runtime: tokio::runtime::Runtime,
    /// The generator the driver draws from.
    rng: ChaCha20Rng,
    /// The generator of tokens of no one.
    noise: ChaCha20Rng,
    now: OffsetDateTime,
    /// Every request opened.
    requests: Vec<RequestId>,
    /// The tokens each customer received for each request, oldest first.
    inbox: HashMap<(RequestId, CustomerId), Vec<String>>,
    /// What must not be traced.
    secrets: Secrets,
    /// The actions run, by the name of their span.
    ran: HashSet<&'static str>,
}

impl<D: Traced> Run<D> {
    fn new(seed: u64) -> Run<D> {
        let parts = Parts::new();
        let capture = Capture::default();
        let dispatch = capture.dispatch();
        let run = Run {
            driver: D::build(&parts),
            parts,
            capture,
            dispatch,
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime"),
            rng: ChaCha20Rng::seed_from_u64(seed),
            noise: ChaCha20Rng::seed_from_u64(!seed),
            now: T0,
            requests: Vec::new(),
            inbox: HashMap::new(),
            secrets: Secrets::default(),
            ran: HashSet::new(),
        };
        // Two services to start with.
        for n in 0..2 {
            let name = service_name(n);
            run.driver
                .run(
                    &run.runtime,
                    &run.dispatch,
                    run.driver.order_service(&name, id(n)),
                )
                .expect("the service is ordered");
        }
        run
    }

    /// Reads what reached the inboxes: the messages delivered and those
    /// reported undelivered.
    fn mail<T>(&mut self, answer: &Answer<T, D>) {
        let mut messages = self.parts.notifier.take();
        if let Ok(outcome) = answer {
            messages.extend(outcome.undelivered.iter().map(|u| u.message.clone()));
        }
        self.read(&messages);
    }

    fn read(&mut self, messages: &[Message]) {
        for m in messages {
            if let (Some(token), Some(request)) = (m.token(), m.request()) {
                self.inbox
                    .entry((request, m.to()))
                    .or_default()
                    .push(token.reveal());
            }
        }
    }

    /// The token `who` presents for `request`.
    fn token(&mut self, request: RequestId, who: CustomerId, pick: Pick) -> String {
        let mine = self.inbox.get(&(request, who)).cloned().unwrap_or_default();
        let theirs = self
            .inbox
            .iter()
            .filter(|((r, c), _)| *r == request && *c != who)
            .find_map(|(_, tokens)| tokens.last().cloned());
        let mut bytes = [0; 32];
        self.noise.fill_bytes(&mut bytes);
        let random = || Token::from_bytes(bytes).reveal();
        let token = match pick {
            Pick::Own => mine.last().cloned(),
            Pick::Other => theirs,
            Pick::Old => mine.first().cloned(),
            Pick::OffByOne => mine.last().map(|t| {
                let flipped = if t.starts_with('A') { "B" } else { "A" };
                format!("{flipped}{}", &t[1..])
            }),
            Pick::Random => None,
        }
        .unwrap_or_else(random);
        self.secrets.presented.insert(token.clone());
        token
    }

    fn step(&mut self, step: &Step) {
        let pool: Vec<CustomerId> = (0..POOL).map(id).collect();
        self.parts.store.set(step.fault);
        match step.mail {
            Mail::Delivered => self.parts.notifier.deliver_all(),
            Mail::FailTokens => self.parts.notifier.fail_when(|m| m.token().is_some()),
            Mail::FailTo(n) => {
                let to = pool[n];
                self.parts.notifier.fail_when(move |m| m.to() == to);
            }
            Mail::FailAll => self.parts.notifier.fail_when(|_| true),
        }
        self.op(&step.op);
        self.parts.store.set(Fault::None);
        self.parts.notifier.deliver_all();
    }

    #[expect(clippy::too_many_lines, reason = "one arm per action")]
    fn op(&mut self, op: &Op) {
        let pool: Vec<CustomerId> = (0..POOL).map(id).collect();
        let store = &self.parts.store.inner;
        let stored = |id: RequestId| {
            common::never::<_, ()>(store.request(id))
                .ok()
                .flatten()
                .expect("a request opened is stored")
        };
        // The request `target` picks, and the party `who` picks on it
        // (`party` gives the parties the rules let act).
        let on = |target: &Target,
                  who: &Who,
                  party: fn(&ChangeRequest) -> Vec<CustomerId>|
         -> Option<(RequestId, CustomerId)> {
            let live: Vec<RequestId> = self
                .requests
                .iter()
                .copied()
                .filter(|&id| matches!(stored(id).state(), RequestState::Awaiting(_)))
                .collect();
            let among = if target.live && !live.is_empty() {
                &live
            } else {
                &self.requests
            };
            let id = nth(target.index, among)?;
            let who = match who {
                Who::Party(index) => nth(*index, &party(&stored(id)))?,
                Who::Anyone(n) => pool[*n],
            };
            Some((id, who))
        };
        let confirmers = |r: &ChangeRequest| r.confirmers();
        let requester = |r: &ChangeRequest| vec![r.requester()];
        match op {
            Op::Submit {
                actor,
                service,
                roles,
                incoming,
            } => {
                let mut edit = Edit::new(service_name(*service));
                for (bit, role) in [Role::Admin, Role::Tech, Role::Billing]
                    .into_iter()
                    .enumerate()
                {
                    if roles & (1 << bit) != 0 {
                        edit = edit.with(role, pool[*incoming]);
                    }
                }
                let actor = match actor {
                    Who::Party(_) => common::never::<_, ()>(store.service(&service_name(*service)))
                        .ok()
                        .flatten()
                        .map_or(pool[0], |s| s.holder(Role::Admin)),
                    Who::Anyone(n) => pool[*n],
                };
                let answer = call!(self, "submit", |d, rng, now| async move {
                    d.submit(&edit, actor, now, rng).await
                });
                if let Ok(outcome) = &answer {
                    self.requests.extend(&outcome.value);
                }
                self.mail(&answer);
            }
            Op::Accept {
                request: r,
                who,
                pick,
            }
            | Op::Refuse {
                request: r,
                who,
                pick,
            } => {
                let Some((id, who)) = on(r, who, confirmers) else {
                    return;
                };
                let token = self.token(id, who, *pick);
                let answer = if matches!(op, Op::Accept { .. }) {
                    call!(self, "accept", |d, _, now| async move {
                        d.accept(id, who, &token, now).await
                    })
                } else {
                    call!(self, "refuse", |d, _, now| async move {
                        d.refuse(id, who, &token, now).await
                    })
                };
                self.mail(&answer);
            }
            Op::Resend { request: r, who } => {
                let Some((id, who)) = on(r, who, confirmers) else {
                    return;
                };
                let answer = call!(self, "resend", |d, rng, now| async move {
                    d.resend(id, who, now, rng).await
                });
                self.mail(&answer);
            }
            Op::Cancel { request: r, who } => {
                let Some((id, who)) = on(r, who, requester) else {
                    return;
                };
                let answer = call!(self, "cancel", |d, _, now| async move {
                    d.cancel(id, who, now).await
                });
                self.mail(&answer);
            }
            Op::Advance { minutes } => self.now += Duration::minutes(*minutes),
            Op::Expire => {
                let answer = call!(self, "expire_due", |d, _, now| d.expire_due(now));
                self.mail(&answer);
            }
            Op::ExpirePage { size } => {
                let size = PageSize::new(*size).expect("a page size");
                let answer = call!(self, "expire_due_page", |d, _, now| {
                    d.expire_due_page(now, None, size)
                });
                self.mail(&answer);
            }
            Op::Order { service, who } => {
                let (name, who) = (service_name(*service), pool[*who]);
                let _ = call!(self, "order_service", |d, _, _| async move {
                    d.order_service(&name, who).await
                });
            }
            Op::Import { service, who } => {
                let batch = vec![
                    (service_name(*service), Contacts::all(pool[*who])),
                    (service_name(*service + SERVICES), Contacts::all(pool[*who])),
                ];
                let _ = call!(self, "import_services", |d, _, _| d.import_services(batch));
            }
            Op::Remove { service } => {
                let name = service_name(*service);
                let answer = call!(self, "remove_service", |d, _, now| async move {
                    d.remove_service(&name, now).await
                });
                self.mail(&answer);
            }
            Op::Standing { who, good } => {
                self.parts.directory.set_good_standing(pool[*who], *good);
            }
            Op::MyContacts { who } => {
                let who = pool[*who];
                let _ = call!(self, "my_contacts", |d, _, _| {
                    d.my_contacts(who, None, PageSize::default())
                });
            }
            Op::MyRequests { who } => {
                let who = pool[*who];
                let filter = RequestFilter::default();
                let _ = call!(self, "my_requests", |d, _, now| async move {
                    d.my_requests(who, &filter, now, None, PageSize::default())
                        .await
                });
            }
            Op::Proposable { who, service } => {
                let (who, name) = (pool[*who], service_name(*service));
                let _ = call!(self, "proposable", |d, _, now| async move {
                    d.proposable(&name, who, now).await
                });
            }
            Op::Request { request: r } => {
                let Some(id) = nth(*r, &self.requests) else {
                    return;
                };
                let _ = call!(self, "request", |d, _, now| d.request(id, now));
            }
            Op::Service { service } => {
                let name = service_name(*service);
                let _ = call!(
                    self,
                    "service",
                    |d, _, _| async move { d.service(&name).await }
                );
            }
            Op::OperatorCancel { request: r } | Op::OperatorResend { request: r } => {
                let Some((id, _)) = on(r, &Who::Anyone(0), requester) else {
                    return;
                };
                let act = operator_act();
                let answer = if matches!(op, Op::OperatorCancel { .. }) {
                    call!(self, "cancel_by_operator", |d, _, now| async move {
                        d.cancel_by_operator(id, &act, now).await
                    })
                } else {
                    call!(self, "resend_by_operator", |d, rng, now| async move {
                        d.resend_by_operator(id, &act, now, rng).await
                    })
                };
                self.mail(&answer);
            }
            Op::Assign {
                service,
                roles,
                incoming,
            } => {
                let mut edit = Edit::new(service_name(*service));
                for (bit, role) in [Role::Admin, Role::Tech, Role::Billing]
                    .into_iter()
                    .enumerate()
                {
                    if roles & (1 << bit) != 0 {
                        edit = edit.with(role, pool[*incoming]);
                    }
                }
                let act = operator_act();
                let answer = call!(self, "assign", |d, rng, now| async move {
                    d.assign(&edit, &act, now, rng).await
                });
                self.mail(&answer);
            }
            Op::History { service } => {
                let name = service_name(*service);
                let _ = call!(self, "history", |d, _, _| async move {
                    d.history(&name, None, PageSize::default()).await
                });
            }
        }
        self.parts.store.set(Fault::None);
        self.parts.notifier.deliver_all();
    }

    /// Forces each event once, on a service of its own, and checks each
    /// (where it is, its level, its fields).
    fn epilogue(&mut self) -> Result<(), TestCaseError> {
        let (owner, other) = (id(0), id(1));
        for n in 0..POOL {
            self.parts.directory.set_good_standing(id(n), true);
        }
        let name: ServiceName = "epilogue.example".parse().expect("a valid name");
        call!(self, "order_service", |d, _, _| async {
            d.order_service(&name, owner).await
        })
        .map_err(|e| fail(format!("ordering: {e}")))?;
        let edit = Edit::new(name.clone()).with(Role::Tech, other);

        // A conflict, then the commit lands; every message fails.
        self.parts.store.set(Fault::Conflict);
        self.parts.notifier.fail_when(|_| true);
        let answer = call!(self, "submit", |d, rng, now| async move {
            d.submit(&edit, owner, now, rng).await
        });
        self.parts.notifier.deliver_all();
        self.mail(&answer);
        let submitted = answer.map_err(|e| fail(format!("submitting: {e}")))?;
        let request = submitted.value[0];
        let request_text = request.to_string();
        let log = self.capture.log();
        let span = last_span(&log, "submit")?;
        prop_assert_eq!(span.get("outcome"), Some("committed"));
        prop_assert_eq!(span.get("attempts"), Some("2"));
        prop_assert_eq!(span.get("request"), Some(request_text.as_str()));
        prop_assert_eq!(span.get("service"), Some("epilogue.example"));
        prop_assert_eq!(span.get("actor.kind"), Some("customer"));
        prop_assert_eq!(span.get("actor.id"), Some(owner.as_str()));
        let retried = events_in(&log, span, "deciding again");
        prop_assert_eq!(retried.len(), 1, "a retried conflict: one event");
        prop_assert_eq!(retried[0].level, Level::DEBUG);
        prop_assert_eq!(retried[0].get("attempt"), Some("1"));
        let lost = events_in(&log, span, "message not delivered");
        prop_assert_eq!(lost.len(), 2, "one event for each undelivered message");
        let mut to: Vec<&str> = lost.iter().filter_map(|e| e.get("to")).collect();
        to.sort_unstable();
        prop_assert_eq!(to, [owner.as_str(), other.as_str()]);
        for e in &lost {
            prop_assert_eq!(e.level, Level::WARN);
            prop_assert_eq!(e.get("kind"), Some("confirmationRequested"));
            prop_assert_eq!(e.get("request"), Some(request_text.as_str()));
        }
        drop(log);

        // A wrong token: refused, which is not an error.
        let wrong = self.token(request, other, Pick::Random);
        let answer = call!(self, "accept", |d, _, now| async move {
            d.accept(request, other, &wrong, now).await
        });
        prop_assert!(answer.is_err(), "a wrong token is refused");
        let log = self.capture.log();
        let span = last_span(&log, "accept")?;
        prop_assert_eq!(span.get("outcome"), Some("refused"));
        let refused = events_in(&log, span, "refused");
        prop_assert_eq!(refused.len(), 1);
        prop_assert_eq!(refused[0].level, Level::INFO);
        prop_assert_eq!(refused[0].get("reason"), Some("invalid token"));
        drop(log);

        // A store error.
        let token = self.token(request, other, Pick::Own);
        self.parts.store.set(Fault::StoreError);
        let answer = call!(self, "accept", |d, _, now| async move {
            d.accept(request, other, &token, now).await
        });
        self.parts.store.set(Fault::None);
        prop_assert!(answer.is_err(), "the commit fails");
        let log = self.capture.log();
        let span = last_span(&log, "accept")?;
        prop_assert_eq!(span.get("outcome"), Some("error"));
        let failed = events_in(&log, span, "the store failed");
        prop_assert_eq!(failed.len(), 1);
        prop_assert_eq!(failed[0].level, Level::ERROR);
        prop_assert_eq!(failed[0].get("part"), Some("store"));
        drop(log);

        self.contention_and_sweep(&name, request)
    }

    /// The epilogue's end: giving up on `request` (on the service `name`),
    /// and a sweep.
    fn contention_and_sweep(
        &mut self,
        name: &ServiceName,
        request: RequestId,
    ) -> Result<(), TestCaseError> {
        let (owner, other) = (id(0), id(1));
        // Contention: every attempt conflicts.
        self.parts.store.set(Fault::Contention);
        let answer = call!(self, "cancel", |d, _, now| async move {
            d.cancel(request, owner, now).await
        });
        self.parts.store.set(Fault::None);
        prop_assert!(answer.is_err(), "the driver gives up");
        let log = self.capture.log();
        let span = last_span(&log, "cancel")?;
        prop_assert_eq!(span.get("outcome"), Some("contention"));
        prop_assert_eq!(span.get("attempts"), Some("17"));
        prop_assert_eq!(events_in(&log, span, "deciding again").len(), 16);
        let gave_up = events_in(&log, span, "gave up");
        prop_assert_eq!(gave_up.len(), 1);
        prop_assert_eq!(gave_up[0].level, Level::WARN);
        prop_assert_eq!(gave_up[0].get("attempts"), Some("17"));
        drop(log);

        // A sweep past the deadline of two requests: the first commit fails
        // with a store error, the other request expires.
        let edit = Edit::new(name.clone()).with(Role::Billing, other);
        let answer = call!(self, "submit", |d, rng, now| async move {
            d.submit(&edit, owner, now, rng).await
        });
        self.mail(&answer);
        let _ = answer.map_err(|e| fail(format!("submitting: {e}")))?;
        self.now += Duration::days(8);
        self.parts.store.set(Fault::StoreError);
        let answer = call!(self, "expire_due", |d, _, now| d.expire_due(now));
        self.parts.store.set(Fault::None);
        self.mail(&answer);
        let sweep = answer.map_err(|e| fail(format!("sweeping: {e}")))?;
        let log = self.capture.log();
        let span = last_span(&log, "expire_due")?;
        prop_assert_eq!(span.get("outcome"), Some("committed"));
        let result = events_in(&log, span, "expiry sweep");
        prop_assert_eq!(result.len(), 1);
        prop_assert_eq!(result[0].level, Level::INFO);
        let expired = sweep.value.expired.len().to_string();
        prop_assert_eq!(result[0].get("expired"), Some(expired.as_str()));
        prop_assert_eq!(result[0].get("failed"), Some("1"));
        prop_assert_eq!(result[0].get("more"), Some("false"));
        let failed = events_in(&log, span, "the store failed");
        prop_assert_eq!(failed.len(), 1);
        prop_assert_eq!(failed[0].level, Level::ERROR);
        let (stuck, _) = &sweep.value.failed[0];
        let stuck = stuck.to_string();
        prop_assert_eq!(failed[0].get("request"), Some(stuck.as_str()));
        Ok(())
    }

    /// The checks on the whole log (see the top of the file).
    fn check(&self) -> Result<(), TestCaseError> {
        let log = self.capture.log();
        // R48, R40: no secret anywhere.
        let leaks = self.secrets.scan(&log);
        prop_assert!(leaks.is_empty(), "{}: {:#?}", D::name(), leaks);
        // The list of secrets is not short: it holds every token that
        // reached a notifier, and every digest stored.
        prop_assert!(!self.inbox.is_empty(), "no token was issued");
        for tokens in self.inbox.values() {
            for token in tokens {
                prop_assert!(self.secrets.tokens.contains(token), "a token not drawn");
            }
        }
        for request in self.parts.store.inner.requests() {
            if let RequestState::Awaiting(awaiting) = request.state() {
                for c in awaiting.confirmers() {
                    if let ConfirmerStatus::Pending {
                        digest: Some(d), ..
                    } = c.status()
                    {
                        prop_assert!(self.secrets.digests.contains(&d.to_string()));
                    }
                }
            }
        }
        // A span for each action that ran, each with its outcome.
        let names: HashSet<&str> = log.actions().map(|(_, s)| s.name).collect();
        for action in &self.ran {
            prop_assert!(names.contains(action), "no span for {}", action);
        }
        for (_, span) in log.actions() {
            prop_assert_eq!(span.get("action"), Some(span.name));
            let outcome = span.get("outcome");
            prop_assert!(
                matches!(
                    outcome,
                    Some("committed" | "ok" | "refused" | "contention" | "error")
                ),
                "span {} ended with outcome {:?}",
                span.name,
                outcome
            );
            prop_assert_eq!(
                span.level,
                if span.name.starts_with("my_")
                    || ["service", "request", "proposable", "history"].contains(&span.name)
                {
                    Level::DEBUG
                } else {
                    Level::INFO
                }
            );
        }
        // Every event of the crate and every call of the host inside an
        // action's span; the crate reports an error only for a host failure.
        for event in &log.events {
            prop_assert!(
                log.action_of(event).is_some(),
                "an event outside every action: {:?}",
                event
            );
        }
        for event in log.ours() {
            if event.level == Level::ERROR {
                prop_assert!(
                    matches!(event.get("part"), Some("store" | "directory")),
                    "an error that is not a host failure: {:?}",
                    event
                );
            }
            if event.message() == "refused" {
                prop_assert!(
                    [Level::INFO, Level::DEBUG].contains(&event.level),
                    "a refusal at {}",
                    event.level
                );
            }
        }
        Ok(())
    }
}

/// The item of `items` that `index` picks, if there is one.
fn nth<T: Copy>(index: Index, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| *index.get(items))
}

/// The last span of `action`.
fn last_span<'a>(log: &'a Log, action: &str) -> Result<&'a SpanSeen, TestCaseError> {
    log.spans
        .iter()
        .rev()
        .find(|s| s.name == action)
        .ok_or_else(|| fail(format!("no span for {action}")))
}

/// The crate's events in `span` whose message starts with `message`.
fn events_in<'a>(log: &'a Log, span: &SpanSeen, message: &str) -> Vec<&'a EventSeen> {
    log.ours()
        .filter(|e| e.message().starts_with(message))
        .filter(|e| log.action_of(e).is_some_and(|s| std::ptr::eq(s, span)))
        .collect()
}

fn fail(message: impl fmt::Display) -> TestCaseError {
    TestCaseError::fail(message.to_string())
}

/// Runs `steps` then the epilogue through a driver `D`, and checks the log.
fn run_sequence<D: Traced>(seed: u64, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut run = Run::<D>::new(seed);
    for step in steps {
        run.step(step);
    }
    run.epilogue()?;
    run.check()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// R48: no token and no digest in any span or event, through both
    /// drivers; and the spans and events are the ones documented.
    #[test]
    fn traces_hold_no_secret((seed, steps) in sequence()) {
        run_sequence::<Blocking>(seed, &steps)?;
        run_sequence::<Async>(seed, &steps)?;
    }
}

/// The scan is not blind (R48): a token, a digest or a `Debug` of either in
/// a field of a span or an event is found.
#[test]
fn a_token_in_a_field_is_caught() {
    let token = Token::from_bytes([7; 32]);
    let mut secrets = Secrets::default();
    secrets.drawn(&[7; 32]);
    let text = token.reveal();
    let digest = token.digest();
    let leaks = |emit: &dyn Fn()| {
        let capture = Capture::default();
        tracing::dispatcher::with_default(&capture.dispatch(), emit);
        secrets.scan(&capture.log()).len()
    };
    assert_eq!(leaks(&|| tracing::info!(harmless = "text")), 0);
    assert_eq!(
        leaks(&|| tracing::info!(link = %format!("/accept?t={text}"))),
        1
    );
    assert_eq!(leaks(&|| tracing::info!("the token is {text}")), 1);
    assert_eq!(leaks(&|| tracing::info!(digest = %digest)), 1);
    assert_eq!(leaks(&|| tracing::info!(digest = ?digest)), 1);
    assert_eq!(leaks(&|| tracing::info!(token = ?token)), 1);
    assert_eq!(
        leaks(&|| {
            let span = tracing::info_span!("accept", token = tracing::field::Empty);
            span.record("token", text.as_str());
        }),
        1
    );
}

/// Actions run at once on a multi-threaded runtime, their host yielding at
/// every call: each call the store received is inside the span of the
/// action that made it (the span follows the future, not the thread).
#[test]
fn spans_follow_their_actions_across_threads() {
    use tracing::instrument::WithSubscriber;

    const ACTIONS: usize = 24;
    let parts = Parts::new();
    let capture = Capture::default();
    let dispatch = capture.dispatch();
    let driver = Arc::new(AsyncDriver::new(
        Hooked::new(Arc::clone(&parts.store), Yield { nap: true }),
        Arc::clone(&parts.notifier),
        Arc::clone(&parts.directory),
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(3)
        .build()
        .expect("a runtime");
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    // A service and a request on it for each action (traced too: a callsite
    // first met where no subscriber is the default may be left off for
    // good, when only one dispatcher exists).
    let setup = async {
        let mut opened = Vec::new();
        for n in 0..ACTIONS {
            let name: ServiceName = format!("t{n}.example").parse().expect("a name");
            driver.order_service(&name, id(0)).await.expect("ordered");
            let edit = Edit::new(name.clone()).with(Role::Tech, id(1));
            let outcome = driver
                .submit(&edit, id(0), T0, &mut rng)
                .await
                .expect("opened");
            opened.push((name, outcome.value[0]));
        }
        opened
    };
    let opened: Vec<(ServiceName, RequestId)> =
        runtime.block_on(setup.with_subscriber(dispatch.clone()));
    *capture.log() = Log::default();
    // Each task cancels its request (refused from the second round on: it
    // is cancelled), reads it, or asks what it may propose on its service,
    // all at once; again, until some action was seen to move to another
    // thread between two calls.
    let mut moved = 0;
    for _round in 0..20 {
        let tasks: Vec<_> = opened
            .iter()
            .cloned()
            .enumerate()
            .map(|(n, (name, request))| {
                let driver = Arc::clone(&driver);
                let task = async move {
                    match n % 3 {
                        0 => {
                            let _ = driver.cancel(request, id(0), T0).await;
                        }
                        1 => {
                            let _ = driver.request(request, T0).await;
                        }
                        _ => {
                            let _ = driver.proposable(&name, id(0), T0).await;
                        }
                    }
                };
                runtime.spawn(task.with_subscriber(dispatch.clone()))
            })
            .collect();
        runtime.block_on(async {
            for task in tasks {
                task.await.expect("the task ends");
            }
        });
        let log = std::mem::take(&mut *capture.log());
        let calls: Vec<&EventSeen> = log.events.iter().filter(|e| e.target == "host").collect();
        assert!(calls.len() >= ACTIONS, "the host saw the calls");
        let mut threads: HashMap<usize, HashSet<std::thread::ThreadId>> = HashMap::new();
        for call in calls {
            let span = log
                .action_of(call)
                .unwrap_or_else(|| panic!("a call outside every action: {call:?}"));
            for field in ["request", "service"] {
                if let (Some(asked), Some(mine)) = (call.get(field), span.get(field)) {
                    assert_eq!(
                        asked, mine,
                        "a {} call for {asked} inside the span of an action on {mine}",
                        span.name
                    );
                }
            }
            threads
                .entry(call.span.expect("in a span"))
                .or_default()
                .insert(call.thread);
        }
        moved += threads.values().filter(|t| t.len() > 1).count();
        if moved > 0 {
            break;
        }
    }
    assert!(moved > 0, "no action moved to another thread in 20 rounds");
}
