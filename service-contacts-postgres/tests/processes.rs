//! Several application servers, as OS processes, on one database: four
//! drive it at once through the `AsyncDriver` (R16, R20, R21, R27, R28,
//! R29, R31, R35); one killed with `SIGKILL` inside a commit leaves the
//! last committed state (R31); and one whose connection is lost with the
//! answer to its `COMMIT` gets an unknown outcome and reads back (R31,
//! R41).
//!
//! The tests with children run this test binary again as their child
//! processes: the same test, picked by its exact name, with [`CHILD`] in the
//! environment saying what the child does. Each child opens its own pool.
//! The faults come from a proxy of the client's ([`Proxy`]) that reads the
//! `PostgreSQL` protocol and stops or breaks a commit's transaction at a
//! chosen message.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Schema, consistency};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ActError, AsyncDriver, AsyncStore, Config, CustomerId, DriverError, Edit, MemoryDirectory,
    MemoryNotifier, Refusal, RequestId, Role, ServiceName, StateName, SubmitError,
};
use service_contacts_postgres::{Options, PgStore, PgStoreError};
use time::{Duration, OffsetDateTime, macros::datetime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// In a child's environment: what it does (the parent has none).
const CHILD: &str = "SC_PG_CHILD";
/// In a child's environment: the schema it works in.
const SCHEMA: &str = "SC_PG_SCHEMA";

type TestDriver = AsyncDriver<PgStore, MemoryNotifier, MemoryDirectory>;
type Error = service_contacts::AsyncDriverErrorFor<PgStore, MemoryDirectory>;

fn id(n: u32) -> CustomerId {
    format!("CU{n}-OVH").parse().unwrap()
}

fn t0() -> OffsetDateTime {
    datetime!(2026-11-21 10:00 UTC)
}

/// A driver on `store` whose directory knows every customer the tests name.
fn driver(store: PgStore, config: Config) -> TestDriver {
    let directory = MemoryDirectory::new();
    for n in 0..500 {
        directory.add(id(n));
    }
    AsyncDriver::with_config(store, MemoryNotifier::new(), directory, config).with_retries(64)
}

/// Runs this test binary again, as a child running the test `test` alone
/// with `role` in [`CHILD`] and `env` besides; its output is kept for the
/// parent's failure messages.
fn spawn_child(test: &str, role: &str, env: &[(&str, &str)]) -> Child {
    Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([test, "--exact", "--test-threads=1"])
        .env(CHILD, role)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("a child process starts")
}

/// What `child` wrote, once it has ended.
fn output_of(child: Child) -> String {
    let output = child.wait_with_output().expect("a child's output");
    format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The children of a test. Those still running when it is dropped (the
/// test failed) are killed, so that none is left holding locks.
struct Children(Vec<Child>);

impl Children {
    /// Panics with a child's output if one has ended.
    fn none_ended(&mut self) {
        if let Some(i) = self
            .0
            .iter_mut()
            .position(|c| c.try_wait().expect("a child's status").is_some())
        {
            panic!("child {i} ended early: {}", output_of(self.0.remove(i)));
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A file of the parent's and its children's, named after the test's schema.
fn scratch(schema: &str, what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{schema}-{what}"))
}

// ----- four processes ------------------------------------------------------

const FOUR: &str = "four_processes_drive_one_database_and_each_change_takes_effect_once";
const CHILDREN: u32 = 4;
const ROUNDS: u32 = 10;
/// Services every child edits.
const SHARED: u32 = 3;
/// In a child's environment: the advisory lock the children wait on.
const GATE: &str = "SC_PG_GATE";

fn shared(k: u32) -> ServiceName {
    format!("shared-{k}.example").parse().unwrap()
}

/// The service only `child` edits.
fn own(child: u32) -> ServiceName {
    format!("own-{child}.example").parse().unwrap()
}

/// Requests live 30 minutes, so that each round's requests are due by the
/// next.
fn short_lives() -> Config {
    Config::new(Duration::minutes(30), Duration::minutes(5), 5).unwrap()
}

/// Four processes, each with its own pool, start together (they wait on an
/// advisory lock the parent holds) and run the same rounds of actions on
/// three shared services and one of their own: each round, for each
/// service, an edit of its tech contact (the edits of the shared ones
/// conflict, R27), then both accepts (R16, R20), a refusal (R21), a cancel
/// (R28) or an accept a second before the deadline racing the others'
/// expiry sweeps (R29), and an expiry sweep. Each child checks that every
/// action went through or was refused as a race allows, and lists what
/// took effect.
///
/// Afterwards, from fresh connections: every request stored was opened by
/// exactly one child's edit, and ended in the state one child's action (or
/// an expiry) gave it, never two (R31); the consistency checks hold.
#[test]
fn four_processes_drive_one_database_and_each_change_takes_effect_once() {
    if let Ok(child) = std::env::var(CHILD) {
        return workload(child.parse().expect("a child number"));
    }
    let runtime = common::runtime();
    let schema = Schema::new(runtime.handle());
    let parent = driver(schema.store(2).unwrap(), short_lives());
    runtime.block_on(async {
        for name in (0..SHARED).map(shared).chain((0..CHILDREN).map(own)) {
            parent.order_service(&name, id(1)).await.unwrap();
        }
    });
    let gate = i64::from(std::process::id());
    let gatekeeper = runtime.block_on(async {
        let client = common::admin().await;
        client
            .batch_execute(&format!("SELECT pg_advisory_lock({gate})"))
            .await
            .unwrap();
        client
    });
    let ledgers: Vec<PathBuf> = (0..CHILDREN)
        .map(|c| scratch(&schema.name, &format!("ledger-{c}")))
        .collect();
    let mut children = Children(
        (0..CHILDREN)
            .map(|c| {
                let env = [(SCHEMA, schema.name.as_str()), (GATE, &gate.to_string())];
                spawn_child(FOUR, &c.to_string(), &env)
            })
            .collect(),
    );
    runtime.block_on(async {
        let waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                       AND objid::int8 = $1 AND objsubid = 1 AND NOT granted";
        common::eventually("every child waits at the gate", || {
            children.none_ended();
            let gatekeeper = &gatekeeper;
            async move {
                let row = gatekeeper.query_one(waiting, &[&gate]).await.unwrap();
                (row.get::<_, i64>(0) == i64::from(CHILDREN)).then_some(())
            }
        })
        .await;
        gatekeeper
            .batch_execute(&format!("SELECT pg_advisory_unlock({gate})"))
            .await
            .unwrap();
    });
    for (c, child) in children.0.drain(..).enumerate() {
        let output = output_of(child);
        assert!(output.starts_with("exit status: 0"), "child {c}: {output}");
    }
    let reports = read_ledgers(&ledgers);
    let fresh = schema.store(2).expect("the schema is ours");
    let requests = runtime.block_on(fresh.requests()).unwrap();
    check_reports(&requests, &reports);
    runtime.block_on(consistency::check(&fresh));
}

/// What a child did to one request, as it writes it in its ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Report {
    Opened,
    Applied,
    Refused,
    Cancelled,
    /// Its sweep expired it.
    Expired,
    /// Its own next action found it closed: someone expired it.
    Late,
}

impl Report {
    const ALL: [(Report, &'static str); 6] = [
        (Report::Opened, "opened"),
        (Report::Applied, "applied"),
        (Report::Refused, "refused"),
        (Report::Cancelled, "cancelled"),
        (Report::Expired, "expired"),
        (Report::Late, "late"),
    ];

    fn as_str(self) -> &'static str {
        Report::ALL.iter().find(|(r, _)| *r == self).unwrap().1
    }

    fn parse(text: &str) -> Report {
        Report::ALL
            .iter()
            .find(|(_, t)| *t == text)
            .unwrap_or_else(|| panic!("a report {text:?}"))
            .0
    }
}

/// Every child's reports, by request id.
fn read_ledgers(paths: &[PathBuf]) -> BTreeMap<String, Vec<Report>> {
    let mut reports: BTreeMap<String, Vec<Report>> = BTreeMap::new();
    for path in paths {
        let text = std::fs::read_to_string(path).expect("a child's ledger");
        std::fs::remove_file(path).unwrap();
        for line in text.lines() {
            let (report, request) = line.split_once(' ').expect("a ledger line");
            reports
                .entry(request.to_owned())
                .or_default()
                .push(Report::parse(report));
        }
    }
    for list in reports.values_mut() {
        list.sort();
    }
    reports
}

/// Each stored request was opened by one child and ended as exactly one
/// report says (an expiry found by an edit is reported by nobody); the
/// children's own services (one request a round each) all went through.
fn check_reports(
    requests: &[service_contacts::ChangeRequest],
    reports: &BTreeMap<String, Vec<Report>>,
) {
    let stored: Vec<String> = requests.iter().map(|r| r.id().to_string()).collect();
    let reported: Vec<&String> = reports.keys().collect();
    assert_eq!(
        reported.len(),
        stored.len(),
        "reported {reported:?}, stored {stored:?}"
    );
    let mut ends: BTreeMap<StateName, usize> = BTreeMap::new();
    for request in requests {
        let key = request.id().to_string();
        let reports = reports.get(&key).map_or(&[][..], Vec::as_slice);
        let state = request.state().name();
        *ends.entry(state).or_default() += 1;
        let closing: Vec<Report> = reports
            .iter()
            .copied()
            .filter(|r| !matches!(r, Report::Opened | Report::Late))
            .collect();
        let expected: &[&[Report]] = match state {
            StateName::Done => &[&[Report::Applied]],
            StateName::Refused => &[&[Report::Refused]],
            StateName::Aborted => &[&[Report::Cancelled]],
            StateName::Expired => &[&[], &[Report::Expired]],
            other => panic!("{key} ended {other}"),
        };
        assert!(
            expected.contains(&closing.as_slice()),
            "{key} ended {state} after {reports:?}"
        );
        assert_eq!(
            reports.iter().filter(|r| **r == Report::Opened).count(),
            1,
            "{key}: {reports:?}"
        );
        if reports.contains(&Report::Late) {
            assert_eq!(state, StateName::Expired, "{key}: {reports:?}");
        }
    }
    assert!(
        requests.len() >= (CHILDREN * ROUNDS) as usize,
        "{} requests",
        requests.len()
    );
    let conflicts = (CHILDREN * ROUNDS * (SHARED + 1)) as usize - requests.len();
    eprintln!(
        "{} requests, ended {ends:?}; {conflicts} edits met another's",
        requests.len()
    );
}

/// A child's part: waits at the gate, runs its rounds, writes its ledger.
fn workload(child: u32) {
    let schema = std::env::var(SCHEMA).expect("the schema");
    let gate: i64 = std::env::var(GATE).unwrap().parse().unwrap();
    let runtime = common::runtime();
    let mut config = common::schema_config(&schema);
    config.application_name(format!("{schema}-child-{child}"));
    let options = Options::default().max_connections(2);
    let store = runtime.block_on(PgStore::connect(config, options)).unwrap();
    let driver = driver(store, short_lives());
    let ledger = runtime.block_on(async {
        let client = driver.store().pool().get().await.unwrap();
        client
            .batch_execute(&format!(
                "SELECT pg_advisory_lock_shared({gate}); SELECT pg_advisory_unlock_shared({gate})"
            ))
            .await
            .unwrap();
        drop(client);
        let mut ledger = String::new();
        for round in 0..ROUNDS {
            play_round(&driver, child, round, &mut ledger).await;
        }
        ledger
    });
    std::fs::write(scratch(&schema, &format!("ledger-{child}")), ledger).unwrap();
}

/// One round of a child: an edit of each shared service and of its own,
/// all opened first (so that the shared ones are held open while the others
/// try), then each ended one way, then an expiry sweep.
async fn play_round(driver: &TestDriver, child: u32, round: u32, ledger: &mut String) {
    let start = t0() + Duration::hours(i64::from(round));
    // Each child and round proposes its own customer: never the holder.
    let incoming = id(100 + 100 * child + round);
    let seed = u64::from(child * 1000 + round * 10);
    let mut lives = Vec::new();
    for k in 0..=SHARED {
        let (service, at) = if k < SHARED {
            (shared(k), start + Duration::minutes(i64::from(3 * k)))
        } else {
            (own(child), start + Duration::minutes(20))
        };
        let rng = &mut ChaCha20Rng::seed_from_u64(seed + u64::from(k));
        let edit = Edit::new(service.clone()).with(Role::Tech, incoming);
        match driver.submit(&edit, id(1), at, rng).await {
            Ok(opened) => {
                let request = opened.value[0];
                note(ledger, Report::Opened, request);
                let way = (child + round + k) % 4;
                lives.push((request, way, at));
            }
            // Another child's edit holds the role: nothing opened.
            Err(DriverError::Refused(Refusal::Submit(SubmitError::Conflict {
                role: Role::Tech,
                ..
            }))) => {}
            Err(err) => panic!("{service}: the edit: {err}"),
        }
    }
    for (request, way, at) in lives {
        match end(driver, request, incoming, way, at).await {
            Ok(report) => note(ledger, report, request),
            // Another child's sweep or edit expired it first.
            Err(DriverError::Refused(Refusal::Act(
                ActError::Closed {
                    state: StateName::Expired,
                }
                | ActError::OutOfOrder { .. },
            ))) => note(ledger, Report::Late, request),
            Err(err) => panic!("{request}: {err}"),
        }
    }
    // After every deadline of the round.
    let sweep = driver
        .expire_due(start + Duration::minutes(40))
        .await
        .unwrap()
        .value;
    assert!(sweep.is_complete(), "{:?}", sweep.failed);
    for request in sweep.expired {
        note(ledger, Report::Expired, request);
    }
}

fn note(ledger: &mut String, report: Report, request: RequestId) {
    writeln!(ledger, "{} {request}", report.as_str()).expect("a String takes any text");
}

/// Ends `request`, a change to `incoming` opened at `at` by the admin, the
/// `way` given: 0, both accept; 1, the incoming contact refuses; 2, the
/// requester cancels; 3, both accept, the last a second before the
/// deadline.
async fn end(
    driver: &TestDriver,
    request: RequestId,
    incoming: CustomerId,
    way: u32,
    at: OffsetDateTime,
) -> Result<Report, Error> {
    let admin = id(1);
    let token = |who| common::last_token(driver.notifier(), who, request);
    let minute = |n| at + Duration::minutes(n);
    match way {
        1 => {
            let _ = driver
                .refuse(request, incoming, &token(incoming), minute(1))
                .await?;
            Ok(Report::Refused)
        }
        2 => {
            let _ = driver.cancel(request, admin, minute(1)).await?;
            Ok(Report::Cancelled)
        }
        _ => {
            let _ = driver
                .accept(request, incoming, &token(incoming), minute(1))
                .await?;
            let last = if way == 0 {
                minute(2)
            } else {
                at + short_lives().request_lifetime() - Duration::seconds(1)
            };
            let done = driver.accept(request, admin, &token(admin), last).await?;
            assert_eq!(done.value.state().name(), StateName::Done);
            Ok(Report::Applied)
        }
    }
}

// ----- a process killed inside a commit ------------------------------------

const KILLED: &str = "a_client_killed_inside_a_commit_leaves_the_last_committed_state";
/// In a child's environment: the request it accepts, and the admin's token.
const REQUEST: &str = "SC_PG_REQUEST";
const TOKEN: &str = "SC_PG_TOKEN";

/// A child accepts the last confirmation of a request (a commit that writes
/// the service, the request and its party rows) through a proxy of its
/// own that stops forwarding at a chosen point of the transaction: after
/// its first `UPDATE` (the service's) was answered, or just before
/// `COMMIT`. The proxy then writes a file; the parent checks, from its own
/// connection, that the child's session is idle in a transaction holding
/// the rows it wrote, and kills the child with `SIGKILL`
/// ([`Child::kill`]).
///
/// R31: once the child's session is gone, nothing of its commit is
/// visible (the service and the request read back as before, from fresh
/// connections), its row locks are released (the parent's own accept of
/// the same request commits, on the same rows), and the consistency checks
/// hold.
#[test]
fn a_client_killed_inside_a_commit_leaves_the_last_committed_state() {
    if let Ok(fault) = std::env::var(CHILD) {
        return killed(Fault::parse(&fault));
    }
    let runtime = common::runtime();
    let schema = Schema::new(runtime.handle());
    let parent = driver(schema.store(2).unwrap(), Config::default());
    let watcher = runtime.block_on(common::admin());
    for (n, fault) in [Fault::StopAfterFirstUpdate, Fault::StopBeforeCommit]
        .into_iter()
        .enumerate()
    {
        let stop = fault.name();
        let service: ServiceName = format!("killed-{stop}.example").parse().unwrap();
        let seed = n as u64;
        let (request, token) =
            runtime.block_on(common::waiting_for_admin(&parent, &service, seed, t0()));
        let read = || {
            runtime.block_on(async {
                let fresh = PgStore::connect(schema.config(), Options::default())
                    .await
                    .expect("the schema is ours");
                let service = AsyncStore::service(&fresh, &service).await.unwrap();
                let request = AsyncStore::request(&fresh, request).await.unwrap();
                (service.unwrap(), request.unwrap())
            })
        };
        let before = read();
        let signal = scratch(&schema.name, stop);
        let request_text = request.to_string();
        let env = [
            (SCHEMA, schema.name.as_str()),
            (REQUEST, &request_text),
            (TOKEN, &token),
        ];
        let mut child = Children(vec![spawn_child(KILLED, stop, &env)]);
        let session = runtime.block_on(common::eventually(
            "the child stops inside its commit",
            || {
                child.none_ended();
                let held = signal.exists();
                let (watcher, schema) = (&watcher, &schema.name);
                async move {
                    if !held {
                        return None;
                    }
                    let sql = "SELECT pid, state FROM pg_stat_activity \
                               WHERE application_name = $1";
                    let row = watcher.query_one(sql, &[&killed_name(schema)]).await;
                    Some(row.expect("the child's one session"))
                }
            },
        ));
        assert_eq!(session.get::<_, &str>(1), "idle in transaction", "{stop}");
        // The service row is locked (its UPDATE ran); the request row too
        // once every write ran.
        let locked = |table: &str, key: &str| {
            let sql = format!(
                "SELECT 1 FROM {}.{table} WHERE {} = $1 FOR UPDATE NOWAIT",
                schema.name,
                if table == "services" { "name" } else { "id" }
            );
            let result = runtime.block_on(watcher.query(&sql, &[&key]));
            result.is_err_and(|err| {
                err.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
            })
        };
        // The proxy stopped once it had forwarded the service's UPDATE; the
        // client pipelines its writes, so the server may still be running
        // it: wait until its row lock shows.
        assert!(soon(|| locked("services", service.as_str())), "{stop}");
        assert_eq!(
            locked("requests", &request_text),
            fault == Fault::StopBeforeCommit
        );
        let mut child = child.0.remove(0);
        child.kill().expect("SIGKILL");
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "{stop}: {status}");
        std::fs::remove_file(&signal).unwrap();
        let pid: i32 = session.get(0);
        runtime.block_on(common::eventually("the child's session ends", || {
            let watcher = &watcher;
            async move {
                let sql = "SELECT 1 FROM pg_stat_activity WHERE pid = $1";
                let rows = watcher.query(sql, &[&pid]).await.unwrap();
                rows.is_empty().then_some(())
            }
        }));
        assert_eq!(read(), before, "{stop}: the killed commit is visible");
        let done = runtime
            .block_on(parent.accept(request, id(1), &token, t0()))
            .expect("the same rows commit after the kill");
        assert_eq!(done.value.state().name(), StateName::Done);
        let (service_after, request_after) = read();
        assert_eq!(service_after.holder(Role::Tech), id(2));
        assert_eq!(request_after.state().name(), StateName::Done);
    }
    let fresh = schema.store(2).expect("the schema is ours");
    runtime.block_on(consistency::check(&fresh));
}

/// Whether `probe` answers `true` within a generous while (polled every
/// 10 ms, at most 12,000 times: tries are counted, since the workspace's
/// clippy settings keep the clock out).
fn soon(mut probe: impl FnMut() -> bool) -> bool {
    (0..12_000).any(|_| {
        let yes = probe();
        if !yes {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        yes
    })
}

/// The `application_name` of the killed child's session.
fn killed_name(schema: &str) -> String {
    format!("{schema}-killed")
}

/// The killed child's part: the admin's accept through a proxy that stops
/// it. It never returns: the parent kills it.
fn killed(fault: Fault) {
    let schema = std::env::var(SCHEMA).expect("the schema");
    let request: RequestId = std::env::var(REQUEST).unwrap().parse().unwrap();
    let token = std::env::var(TOKEN).unwrap();
    let runtime = common::runtime();
    runtime.block_on(async {
        let proxy = Proxy::start(fault, scratch(&schema, fault.name())).await;
        let config = proxy.config(&schema, &killed_name(&schema));
        let options = Options::default().max_connections(1);
        let store = PgStore::connect(config, options).await.unwrap();
        let driver = driver(store, Config::default());
        proxy.arm();
        let result = driver.accept(request, id(1), &token, t0()).await;
        panic!("the commit was not stopped: {result:?}");
    });
}

// ----- a commit whose answer is lost ---------------------------------------

/// The admin's accept that applies a change goes through a proxy that
/// forwards `COMMIT` to the server, drops the server's answer and closes the
/// connection: the server committed, the store cannot know.
///
/// The accept reports `OutcomeUnknown` (a store error, saying to read back)
/// and sent no message (R41). The host reads back and finds the change
/// applied; accepting again is refused as closed, and nothing was applied
/// twice (R31: the service's version counts one application; the
/// consistency checks hold).
#[test]
fn a_commit_whose_answer_is_lost_is_an_unknown_outcome_read_back_as_applied() {
    let runtime = common::runtime();
    let schema = Schema::new(runtime.handle());
    let parent = driver(schema.store(2).unwrap(), Config::default());
    let service: ServiceName = "lost-answer.example".parse().unwrap();
    runtime.block_on(async {
        let (request, token) = common::waiting_for_admin(&parent, &service, 3, t0()).await;
        let before = parent.service(&service).await.unwrap();
        let signal = scratch(&schema.name, Fault::LoseCommitAnswer.name());
        let proxy = Proxy::start(Fault::LoseCommitAnswer, signal.clone()).await;
        let config = proxy.config(&schema.name, &format!("{}-lost", schema.name));
        let options = Options::default().max_connections(1);
        let lossy = driver(
            PgStore::connect(config, options).await.unwrap(),
            Config::default(),
        );
        proxy.arm();
        match lossy.accept(request, id(1), &token, t0()).await {
            Err(DriverError::Store(err @ PgStoreError::OutcomeUnknown(_))) => {
                assert!(err.to_string().contains("read them back"), "{err}");
            }
            other => panic!("expected an unknown outcome, got {other:?}"),
        }
        // The server had answered: the proxy dropped it.
        assert!(signal.exists());
        std::fs::remove_file(&signal).unwrap();
        assert!(lossy.notifier().delivered().is_empty());
        // Read back: applied, once.
        let status = parent.request(request, t0()).await.unwrap();
        assert_eq!(status.state, StateName::Done);
        let after = parent.service(&service).await.unwrap();
        assert_eq!(after.holder(Role::Tech), id(2));
        assert_eq!(after.version().get(), before.version().get() + 1);
        match parent.accept(request, id(1), &token, t0()).await {
            Err(DriverError::Refused(Refusal::Act(ActError::Closed {
                state: StateName::Done,
            }))) => {}
            other => panic!("accepting again: {other:?}"),
        }
        assert_eq!(parent.service(&service).await.unwrap(), after);
        consistency::check(parent.store()).await;
    });
}

// ----- the proxy -----------------------------------------------------------

/// What a [`Proxy`] does to a commit's transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Stops forwarding after the transaction's first statement (the
    /// first `UPDATE`) was answered.
    StopAfterFirstUpdate,
    /// Stops forwarding before `COMMIT`: every write done.
    StopBeforeCommit,
    /// Forwards `COMMIT`, drops the server's answer and closes the client's
    /// connection.
    LoseCommitAnswer,
}

impl Fault {
    const ALL: [Fault; 3] = [
        Fault::StopAfterFirstUpdate,
        Fault::StopBeforeCommit,
        Fault::LoseCommitAnswer,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::StopAfterFirstUpdate => "after-first-update",
            Fault::StopBeforeCommit => "before-commit",
            Fault::LoseCommitAnswer => "lose-commit-answer",
        }
    }

    fn parse(name: &str) -> Fault {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("a fault {name:?}"))
    }
}

/// A proxy on a local port to the server the tests use. It forwards the
/// client's messages of the `PostgreSQL` protocol one whole message at a
/// time, and the server's bytes as they come; once armed, it does its
/// [`Fault`] to the next transaction, and writes `signal` when it has.
struct Proxy {
    port: u16,
    state: Arc<ProxyState>,
}

struct ProxyState {
    fault: Fault,
    armed: AtomicBool,
    /// `COMMIT` went to the server: its answer is to be dropped.
    losing: AtomicBool,
    signal: PathBuf,
}

impl Proxy {
    async fn start(fault: Fault, signal: PathBuf) -> Proxy {
        let state = Arc::new(ProxyState {
            fault,
            armed: AtomicBool::new(false),
            losing: AtomicBool::new(false),
            signal,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let (client, _) = listener.accept().await.unwrap();
                let state = Arc::clone(&shared);
                let server = common::server();
                let upstream = server.get_ports().first().copied().unwrap_or(5432);
                match &server.get_hosts()[0] {
                    tokio_postgres::config::Host::Tcp(host) => {
                        let server = TcpStream::connect((host.as_str(), upstream)).await;
                        tokio::spawn(relay(client, server.unwrap(), state));
                    }
                    tokio_postgres::config::Host::Unix(dir) => {
                        let path = dir.join(format!(".s.PGSQL.{upstream}"));
                        let server = tokio::net::UnixStream::connect(path).await;
                        tokio::spawn(relay(client, server.unwrap(), state));
                    }
                }
            }
        });
        Proxy { port, state }
    }

    /// The server's settings through this proxy, in `schema`, named
    /// `application_name`.
    fn config(&self, schema: &str, application_name: &str) -> tokio_postgres::Config {
        let server = common::server();
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(self.port);
        config.user(server.get_user().unwrap_or("postgres"));
        if let Some(password) = server.get_password() {
            config.password(password);
        }
        if let Some(dbname) = server.get_dbname() {
            config.dbname(dbname);
        }
        config.options(format!("-c search_path={schema}"));
        config.application_name(application_name);
        config
    }

    /// From now on, the next transaction meets the fault.
    fn arm(&self) {
        self.state.armed.store(true, Ordering::SeqCst);
    }
}

/// Relays one connection.
async fn relay<S>(client: TcpStream, server: S, state: Arc<ProxyState>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = tokio::io::split(server);
    let answers = Arc::clone(&state);
    tokio::spawn(async move {
        let mut buffer = vec![0; 1 << 16];
        while let Ok(read @ 1..) = server_read.read(&mut buffer).await {
            if answers.losing.load(Ordering::SeqCst) {
                // Dropping `client_write` closes the client's connection.
                std::fs::write(&answers.signal, "answer dropped").unwrap();
                return;
            }
            if client_write.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    });
    // The startup message has no type byte.
    let length = client_read.read_u32().await.unwrap();
    let mut body = vec![0; length as usize - 4];
    client_read.read_exact(&mut body).await.unwrap();
    server_write.write_u32(length).await.unwrap();
    server_write.write_all(&body).await.unwrap();
    let mut transaction = Transaction::default();
    loop {
        let Ok(kind) = client_read.read_u8().await else {
            return;
        };
        let length = client_read.read_u32().await.unwrap();
        let mut body = vec![0; length as usize - 4];
        client_read.read_exact(&mut body).await.unwrap();
        if state.armed.load(Ordering::SeqCst) {
            match transaction.step(state.fault, kind, &body) {
                Step::Forward => {}
                Step::Stop => {
                    std::fs::write(&state.signal, "stopped").unwrap();
                    std::future::pending::<()>().await;
                }
                Step::LoseAnswer => state.losing.store(true, Ordering::SeqCst),
            }
        }
        server_write.write_u8(kind).await.unwrap();
        server_write.write_u32(length).await.unwrap();
        server_write.write_all(&body).await.unwrap();
    }
}

/// What the proxy does with a client's message.
enum Step {
    Forward,
    /// Forward nothing more, ever.
    Stop,
    /// Forward it, and drop the server's answer.
    LoseAnswer,
}

/// What the proxy saw of the transaction so far.
#[derive(Default)]
struct Transaction {
    /// `BEGIN` went by.
    begun: bool,
    /// A statement was executed in it.
    executed: bool,
    /// ... and its `Sync` went by: the client sends its next message once
    /// the server answered it.
    answered: bool,
}

impl Transaction {
    /// What to do with the client's message `kind` with `body`.
    fn step(&mut self, fault: Fault, kind: u8, body: &[u8]) -> Step {
        if kind == b'Q' && body.starts_with(b"BEGIN") {
            self.begun = true;
            return Step::Forward;
        }
        let commit = kind == b'Q' && body == b"COMMIT\0";
        match fault {
            _ if !self.begun => Step::Forward,
            Fault::StopBeforeCommit if commit => Step::Stop,
            Fault::LoseCommitAnswer if commit => Step::LoseAnswer,
            Fault::StopAfterFirstUpdate if self.answered => Step::Stop,
            Fault::StopAfterFirstUpdate => {
                match kind {
                    b'E' => self.executed = true,
                    b'S' if self.executed => self.answered = true,
                    _ => {}
                }
                Step::Forward
            }
            _ => Step::Forward,
        }
    }
}
