//! Several application servers, as OS processes, on one `SQLite` WAL file:
//! four drive it at once through the blocking `Driver`, each on a store of
//! its own, and every change takes effect once (R16, R20, R21, R27, R28,
//! R29, R31, R35).
//!
//! The test runs this test binary again as its child processes: the same
//! test, picked by its exact name, with [`CHILD`] in the environment saying
//! which child it is.

// The core's test helpers, and the store's own.
#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "common/sqlite.rs"]
mod sqlite;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::last_token;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ActError, Config, CustomerId, Driver, DriverError, Edit, MemoryDirectory, MemoryNotifier,
    Refusal, RequestId, Role, ServiceName, StateName, SubmitError,
};
use service_contacts_sqlite::SqliteStore;
use sqlite::TempDir;
use time::{Duration, OffsetDateTime, macros::datetime};

/// In a child's environment: which child it is (the parent has none).
const CHILD: &str = "SC_SQLITE_CHILD";
/// In a child's environment: the directory of the database, the gate and
/// the ledgers.
const DIR: &str = "SC_SQLITE_DIR";

const TEST: &str = "four_processes_drive_one_file_and_each_change_takes_effect_once";
const CHILDREN: u32 = 4;
const ROUNDS: u32 = 10;
/// Services every child edits.
const SHARED: u32 = 3;

type TestDriver = Driver<SqliteStore, MemoryNotifier, MemoryDirectory>;

fn id(n: u32) -> CustomerId {
    format!("CU{n}-OVH").parse().unwrap()
}

/// Every customer of the test: the admin of every service, and the one
/// each child proposes in each round.
fn customers() -> Vec<CustomerId> {
    let proposed = (0..CHILDREN).flat_map(|c| (0..ROUNDS).map(move |r| incoming(c, r)));
    std::iter::once(id(1)).chain(proposed).collect()
}

/// The customer `child` proposes in `round`: never the holder.
fn incoming(child: u32, round: u32) -> CustomerId {
    id(100 + 100 * child + round)
}

fn t0() -> OffsetDateTime {
    datetime!(2026-11-21 10:00 UTC)
}

/// Service `k` of `child`: those below [`SHARED`] every child edits, the
/// next one is the child's own.
fn service(k: u32, child: u32) -> ServiceName {
    let name = if k < SHARED {
        format!("shared-{k}.example")
    } else {
        format!("own-{child}.example")
    };
    name.parse().unwrap()
}

/// How long a request lives: 30 minutes, so that each round's requests
/// are due by the next (a round is an hour).
const LIFETIME: Duration = Duration::minutes(30);

/// A driver on its own connection to `file`, whose directory knows every
/// customer of the test.
fn driver(file: &Path) -> TestDriver {
    let directory = MemoryDirectory::new();
    for customer in customers() {
        directory.add(customer);
    }
    let store = SqliteStore::open(file).unwrap();
    let config = Config::new(LIFETIME, Duration::minutes(5), 5).unwrap();
    Driver::with_config(store, MemoryNotifier::new(), directory, config).with_retries(64)
}

/// Waits, a bounded number of times, for `path` to exist, unless
/// `give_up` says to stop (for the parent: a child ended early).
fn wait_for(path: &Path, mut give_up: impl FnMut()) {
    for _ in 0..12_000 {
        if path.exists() {
            return;
        }
        give_up();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} never appeared", path.display());
}

/// The children of the test. Those still running when it is dropped (the
/// test failed) are killed.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `child` ended well, and what it wrote (its test harness's
/// report, and a panic's message), once it has ended.
fn ended(child: Child) -> (bool, String) {
    let output = child.wait_with_output().expect("a child's output");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text += &String::from_utf8_lossy(&output.stderr);
    (
        output.status.success(),
        format!("{}: {text}", output.status),
    )
}

/// Four processes, each with its own connection to one WAL file, start
/// together (each says it is ready, then waits for the gate file) and run
/// the same rounds of actions on three shared services and one of their
/// own: each round, for each service, an edit of its tech contact (the
/// edits of the shared services conflict, R27), then both accepts (R16,
/// R20), a refusal (R21), a cancel (R28) or an accept a second before the
/// deadline racing the others' expiry sweeps (R29); then an expiry sweep.
/// Each child checks that every action went through or was refused as a
/// race allows, and writes down what took effect in a ledger.
///
/// Afterwards, from a fresh connection: every stored request was opened by
/// exactly one child's edit and ended as exactly one child's action (or an
/// expiry) made it end, never two (R31); each child's own service took
/// every round's edit; and the consistency checks hold ([`sqlite::check`]:
/// versions count every creation, opened request and applied change; no
/// two live requests share a role; every applied request is what its
/// service shows; the listings agree with a full scan).
#[test]
fn four_processes_drive_one_file_and_each_change_takes_effect_once() {
    if let Ok(child) = std::env::var(CHILD) {
        return workload(child.parse().expect("a child number"));
    }
    let dir = TempDir::new("processes");
    let file = dir.file("shared.db");
    let parent = driver(&file);
    assert_eq!(parent.store().journal_mode().unwrap(), "wal");
    let shared = (0..SHARED).map(|k| service(k, 0));
    for name in shared.chain((0..CHILDREN).map(|c| service(SHARED, c))) {
        parent.order_service(&name, id(1)).unwrap();
    }
    drop(parent);
    let mut children = Children(
        (0..CHILDREN)
            .map(|c| {
                Command::new(std::env::current_exe().expect("the test binary's path"))
                    .args([TEST, "--exact", "--test-threads=1"])
                    .env(CHILD, c.to_string())
                    .env(DIR, &dir.0)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("a child process starts")
            })
            .collect(),
    );
    // Every child has opened its store and waits at the gate: open it.
    for c in 0..CHILDREN {
        wait_for(&dir.file(&format!("ready-{c}")), || {
            let early = children
                .0
                .iter_mut()
                .position(|child| child.try_wait().expect("a child's status").is_some());
            if let Some(i) = early {
                panic!("child {i} ended early: {}", ended(children.0.remove(i)).1);
            }
        });
    }
    std::fs::write(dir.file("gate"), "open").unwrap();
    for (c, child) in children.0.drain(..).enumerate() {
        let (success, output) = ended(child);
        assert!(success, "child {c}: {output}");
    }
    let ledgers = (0..CHILDREN).map(|c| ledger_path(&dir.0, c));
    let reports = read_ledgers(ledgers);
    let fresh = SqliteStore::open(&file).unwrap();
    let (_, requests) = sqlite::check(&fresh, &customers(), t0());
    check_reports(&requests, &reports);
    for child in 0..CHILDREN {
        let own = requests
            .iter()
            .filter(|r| r.service() == &service(SHARED, child));
        assert_eq!(own.count(), ROUNDS as usize, "child {child}'s own service");
    }
    fresh.close().unwrap();
}

fn ledger_path(dir: &Path, child: u32) -> PathBuf {
    dir.join(format!("ledger-{child}"))
}

/// What the children wrote of each request, by request id: "opened",
/// then how it ended ("applied", "refused", "cancelled", "expired" by the
/// child's sweep), or "late" (the child's next action found it expired).
fn read_ledgers(paths: impl Iterator<Item = PathBuf>) -> BTreeMap<String, Vec<String>> {
    let mut reports: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in paths {
        let text = std::fs::read_to_string(path).expect("a child's ledger");
        for line in text.lines() {
            let (report, request) = line.split_once(' ').expect("a ledger line");
            let list = reports.entry(request.to_owned()).or_default();
            list.push(report.to_owned());
        }
    }
    reports
}

/// R31: each stored request was opened once and ended as exactly one
/// report says (an expiry found by another child's edit is reported by
/// nobody; one found by the child's own next action is "late").
fn check_reports(
    requests: &[service_contacts::ChangeRequest],
    reports: &BTreeMap<String, Vec<String>>,
) {
    let stored: BTreeMap<String, &service_contacts::ChangeRequest> =
        requests.iter().map(|r| (r.id().to_string(), r)).collect();
    assert!(
        stored.keys().eq(reports.keys()),
        "reported {:?}, stored {:?}",
        reports.keys(),
        stored.keys()
    );
    let mut ends: BTreeMap<StateName, usize> = BTreeMap::new();
    for ((key, request), said) in stored.iter().zip(reports.values()) {
        let count = |what: &str| said.iter().filter(|r| *r == what).count();
        assert_eq!(count("opened"), 1, "{key}: {said:?}");
        let endings: Vec<&str> = said
            .iter()
            .map(String::as_str)
            .filter(|r| !matches!(*r, "opened" | "late"))
            .collect();
        let state = request.state().name();
        *ends.entry(state).or_default() += 1;
        let agrees = matches!(
            (state, endings.as_slice()),
            (StateName::Done, ["applied"])
                | (StateName::Refused, ["refused"])
                | (StateName::Aborted, ["cancelled"])
                | (StateName::Expired, [] | ["expired"])
        );
        assert!(agrees, "{key} ended {state} after {said:?}");
        if count("late") > 0 {
            assert_eq!(state, StateName::Expired, "{key}: {said:?}");
        }
    }
    let conflicts = (CHILDREN * ROUNDS * (SHARED + 1)) as usize - requests.len();
    eprintln!(
        "{} requests, ended {ends:?}; {conflicts} edits met another's",
        requests.len()
    );
}

/// A child's part: opens its store, says it is ready, waits at the gate,
/// runs its rounds, writes its ledger.
fn workload(child: u32) {
    let dir = PathBuf::from(std::env::var_os(DIR).expect("the directory"));
    let driver = driver(&dir.join("shared.db"));
    std::fs::write(dir.join(format!("ready-{child}")), "ready").unwrap();
    wait_for(&dir.join("gate"), || {});
    let mut ledger = String::new();
    for round in 0..ROUNDS {
        play_round(&driver, child, round, &mut ledger);
    }
    std::fs::write(ledger_path(&dir, child), ledger).unwrap();
}

/// How a child ends a request it opened.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// Both accept, a minute apart (R16, R20).
    Accepted,
    /// The incoming contact refuses (R21).
    Refused,
    /// The requester cancels (R28).
    Cancelled,
    /// Both accept, the last a second before the deadline, racing the
    /// other children's sweeps (R29).
    AcceptedAtTheDeadline,
}

impl Ending {
    /// What `child` does in `round` to its request on service `k`: each
    /// ending in turn, so that every service sees all four.
    fn of(child: u32, round: u32, k: u32) -> Ending {
        let all = [
            Ending::Accepted,
            Ending::Refused,
            Ending::Cancelled,
            Ending::AcceptedAtTheDeadline,
        ];
        all[((child + round + k) % 4) as usize]
    }

    /// The ledger's word for it, once it took effect.
    fn report(self) -> &'static str {
        match self {
            Ending::Accepted | Ending::AcceptedAtTheDeadline => "applied",
            Ending::Refused => "refused",
            Ending::Cancelled => "cancelled",
        }
    }
}

/// The edits of `child` in the round starting at `start`: the service, when
/// it is opened, and how it ends; the shared services first, three minutes
/// apart, then the child's own.
fn plan(
    child: u32,
    round: u32,
    start: OffsetDateTime,
) -> Vec<(ServiceName, OffsetDateTime, Ending)> {
    (0..=SHARED)
        .map(|k| {
            let after = if k < SHARED { 3 * k } else { 20 };
            let at = start + Duration::minutes(i64::from(after));
            (service(k, child), at, Ending::of(child, round, k))
        })
        .collect()
}

/// One round of a child: its edits all opened first (so that the shared
/// ones are held open while the others try), then each ended as planned,
/// then an expiry sweep after every deadline of the round.
fn play_round(driver: &TestDriver, child: u32, round: u32, ledger: &mut String) {
    let start = t0() + Duration::hours(i64::from(round));
    let proposed = incoming(child, round);
    let mut opened = Vec::new();
    for (n, (service, at, ending)) in plan(child, round, start).into_iter().enumerate() {
        let rng = &mut ChaCha20Rng::seed_from_u64(u64::from(child * 1000 + round * 10) + n as u64);
        let edit = Edit::new(service.clone()).with(Role::Tech, proposed);
        match driver.submit(&edit, id(1), at, rng) {
            Ok(done) => {
                note(ledger, "opened", done.value[0]);
                opened.push((done.value[0], ending, at));
            }
            // R27: another child's edit holds the role: nothing opened.
            Err(DriverError::Refused(Refusal::Submit(SubmitError::Conflict {
                role: Role::Tech,
                ..
            }))) if service != self::service(SHARED, child) => {}
            Err(err) => panic!("{service}: the edit: {err}"),
        }
    }
    for (request, ending, at) in opened {
        let report = match end(driver, request, proposed, ending, at) {
            Ok(()) => ending.report(),
            // R29: another child's sweep or edit expired it first.
            Err(DriverError::Refused(Refusal::Act(
                ActError::Closed {
                    state: StateName::Expired,
                }
                | ActError::OutOfOrder { .. },
            ))) => "late",
            Err(err) => panic!("{request}: {err}"),
        };
        note(ledger, report, request);
    }
    let sweep = driver.expire_due(start + Duration::minutes(40)).unwrap();
    assert!(sweep.value.is_complete(), "{:?}", sweep.value.failed);
    for request in sweep.value.expired {
        note(ledger, "expired", request);
    }
}

fn note(ledger: &mut String, report: &str, request: RequestId) {
    writeln!(ledger, "{report} {request}").expect("a String takes any text");
}

/// Ends `request`, a change to `proposed` opened at `at` by the admin, as
/// `ending` says.
fn end(
    driver: &TestDriver,
    request: RequestId,
    proposed: CustomerId,
    ending: Ending,
    at: OffsetDateTime,
) -> Result<(), service_contacts::DriverErrorFor<SqliteStore, MemoryDirectory>> {
    let admin = id(1);
    let token = |who| last_token(driver.notifier(), who, request);
    let a_minute_later = at + Duration::minutes(1);
    let last_accept = match ending {
        Ending::Refused => {
            let refused = driver.refuse(request, proposed, &token(proposed), a_minute_later)?;
            assert!(refused.all_delivered());
            return Ok(());
        }
        Ending::Cancelled => {
            let cancelled = driver.cancel(request, admin, a_minute_later)?;
            assert!(cancelled.all_delivered());
            return Ok(());
        }
        Ending::Accepted => at + Duration::minutes(2),
        Ending::AcceptedAtTheDeadline => at + LIFETIME - Duration::seconds(1),
    };
    let first = driver.accept(request, proposed, &token(proposed), a_minute_later)?;
    assert!(first.all_delivered());
    let done = driver.accept(request, admin, &token(admin), last_accept)?;
    assert_eq!(done.value.state().name(), StateName::Done);
    Ok(())
}
