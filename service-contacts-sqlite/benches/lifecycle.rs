//! Whole request lifecycles through the blocking `Driver` on `SqliteStore`,
//! against the floor measured in the same run on the same file: the same
//! number of bare, single-row, version-checked `UPDATE` transactions (three
//! per lifecycle, one per commit of the lifecycle), with the store's own
//! settings (WAL, `synchronous = FULL`, one connection). Prints tables;
//! never a test.
//!
//! ```sh
//! cargo bench -p service-contacts-sqlite --bench lifecycle
//! # the file elsewhere (a real disk: `FULL` syncs every commit):
//! SC_BENCH_DIR=/var/tmp cargo bench -p service-contacts-sqlite --bench lifecycle
//! ```
//!
//! A lifecycle: the admin of a service (imported beforehand, outside the
//! timing) submits an edit of its tech contact, the incoming contact
//! accepts, the admin accepts: applied. Three commits, as many as the floor
//! counts. The floor: `UPDATE floor SET version = version + 1 WHERE id = ?1
//! AND version = ?2` on a table of its own in the store's file, through a
//! second connection with the same settings, each update its own
//! transaction: alone (autocommit: the floor the budget is measured
//! against) and inside `BEGIN IMMEDIATE` ... `COMMIT`, as the store writes.
//!
//! Measured in rounds, each the floor, the lifecycles and the floor in
//! `BEGIN IMMEDIATE` in turn, so that each ratio compares neighbours in
//! time; the medians of the rounds are shown. Then where a lifecycle's time
//! goes: the store calls the driver makes and the time spent in them, and
//! the same lifecycles on `MemoryStore` (the driver and the engine alone).
#![expect(
    clippy::cast_precision_loss,
    reason = "counts far below 2^52 shown as rates"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "`Instant::now`: the bench's own stopwatch; the store and the driver never read it"
)]

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rusqlite::Connection;
use service_contacts::{
    Assignment, ChangeRequest, Changes, CommitError, Contacts, CustomerId, Driver, Edit,
    HistoryKey, MemoryDirectory, MemoryNotifier, MemoryStore, RequestFilter, RequestId, RequestKey,
    Role, Roles, Service, ServiceName, StateName, Store,
};
use service_contacts_sqlite::SqliteStore;
use time::OffsetDateTime;
use time::macros::datetime;

/// Lifecycles per round.
const LIVES: usize = 100;
/// Rounds (plus one to warm up, not counted).
const ROUNDS: usize = 11;
/// Lifecycles profiled.
const PROFILED: usize = 300;

fn t0() -> OffsetDateTime {
    datetime!(2026-11-21 10:00 UTC)
}

/// The admin of every service, and the customer who takes the tech role.
fn cast() -> [CustomerId; 2] {
    ["AD1-OVH", "IN1-OVH"].map(|text| text.parse().expect("a customer id"))
}

fn directory() -> MemoryDirectory {
    let directory = MemoryDirectory::new();
    for who in cast() {
        directory.add(who);
    }
    directory
}

type BenchDriver<S> = Driver<S, MemoryNotifier, MemoryDirectory>;

fn name(round: usize, k: usize) -> ServiceName {
    format!("r{round}-{k}.example")
        .parse()
        .expect("a service name")
}

/// The services of round `round`, held by the admin: imported in one
/// commit, outside the timing.
fn services<S: Store>(driver: &BenchDriver<S>, round: usize, lives: usize) {
    let [admin, _] = cast();
    let names: Vec<_> = (0..lives)
        .map(|k| (name(round, k), Contacts::all(admin)))
        .collect();
    driver
        .import_services(names)
        .expect("the services are imported");
}

/// One lifecycle on `service`: the admin gives the tech role to the
/// incoming customer; both confirmers accept; the change is applied.
fn lifecycle<S: Store>(driver: &BenchDriver<S>, service: &ServiceName, rng: &mut ChaCha20Rng) {
    let [admin, incoming] = cast();
    let edit = Edit::new(service.clone()).with(Role::Tech, incoming);
    let id = driver
        .submit(&edit, admin, t0(), rng)
        .expect("the edit opens")
        .value[0];
    let tokens: Vec<(CustomerId, String)> = driver
        .notifier()
        .take()
        .iter()
        .filter_map(|m| m.token().map(|t| (m.to(), t.reveal())))
        .collect();
    assert_eq!(tokens.len(), 2, "two confirmers");
    let mut last = None;
    for (who, token) in tokens {
        last = Some(driver.accept(id, who, &token, t0()).expect("an accept"));
    }
    let state = last.map(|done| done.value.state().name());
    assert_eq!(state, Some(StateName::Done), "two accepts apply the change");
}

/// The lifecycles of round `round` (its services imported); lifecycles per
/// second.
fn lifecycles<S: Store>(driver: &BenchDriver<S>, round: usize, lives: usize) -> f64 {
    let mut rng = ChaCha20Rng::seed_from_u64(round as u64);
    let started = Instant::now();
    for k in 0..lives {
        lifecycle(driver, &name(round, k), &mut rng);
    }
    lives as f64 / started.elapsed().as_secs_f64()
}

/// The floor: a connection of its own to the store's file, with its
/// settings, and a table of one row.
struct Floor {
    conn: Connection,
    version: i64,
}

impl Floor {
    fn open(path: &Path) -> Floor {
        let conn = Connection::open(path).expect("the floor's connection");
        conn.pragma_update_and_check(None, "journal_mode", "wal", |_| Ok(()))
            .expect("WAL");
        conn.pragma_update(None, "synchronous", "FULL")
            .expect("synchronous = FULL");
        conn.busy_timeout(Duration::from_secs(2))
            .expect("a busy timeout");
        conn.execute_batch(
            "CREATE TABLE floor (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
             INSERT INTO floor VALUES (1, 1);",
        )
        .expect("the floor's table");
        Floor { conn, version: 1 }
    }

    /// `updates` version-checked updates of the row, each a transaction:
    /// alone, or inside `BEGIN IMMEDIATE` and `COMMIT`; updates per second.
    fn run(&mut self, updates: usize, explicit: bool) -> f64 {
        let started = Instant::now();
        for _ in 0..updates {
            if explicit {
                self.conn.execute_batch("BEGIN IMMEDIATE").expect("BEGIN");
            }
            let changed = self
                .conn
                .prepare_cached(
                    "UPDATE floor SET version = version + 1 WHERE id = ?1 AND version = ?2",
                )
                .expect("the floor's statement")
                .execute([1, self.version])
                .expect("the floor's update");
            assert_eq!(changed, 1, "one row at its version");
            if explicit {
                self.conn.execute_batch("COMMIT").expect("COMMIT");
            }
            self.version += 1;
        }
        updates as f64 / started.elapsed().as_secs_f64()
    }
}

impl Floor {
    /// `transactions` transactions that each update `pages` rows, version
    /// checked, each row filling a page of its own; transactions per second.
    fn wide(&mut self, pages: usize, transactions: usize) -> f64 {
        self.conn
            .execute_batch(
                "CREATE TABLE wide (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, pad BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64)
                 INSERT INTO wide SELECT i, 1, zeroblob(3000) FROM n;",
            )
            .expect("the wide floor's table");
        let ids: Vec<i64> = (1..=i64::try_from(pages).expect("a few pages")).collect();
        let started = Instant::now();
        for version in 1..=i64::try_from(transactions).expect("a count") {
            self.conn.execute_batch("BEGIN IMMEDIATE").expect("BEGIN");
            for id in &ids {
                let changed = self
                    .conn
                    .prepare_cached(
                        "UPDATE wide SET version = version + 1 WHERE id = ?1 AND version = ?2",
                    )
                    .expect("the wide floor's statement")
                    .execute([*id, version])
                    .expect("the wide floor's update");
                assert_eq!(changed, 1, "one row at its version");
            }
            self.conn.execute_batch("COMMIT").expect("COMMIT");
        }
        transactions as f64 / started.elapsed().as_secs_f64()
    }
}

/// Lifecycles per second over the floor's transactions per second, at
/// three transactions a lifecycle.
fn ratio(lifecycles: f64, floor: f64) -> f64 {
    3.0 * lifecycles / floor
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A fresh directory for the bench's file: under `SC_BENCH_DIR` if set,
/// else the system's temporary directory.
fn bench_dir() -> PathBuf {
    let base = std::env::var_os("SC_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!(
        "service-contacts-sqlite-bench-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the bench's directory");
    dir
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: nothing to do.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let dir = bench_dir();
    let file = dir.join("bench.db");
    let store = SqliteStore::open(&file).expect("the store");
    println!(
        "file: {} (journal_mode={}, synchronous=FULL, one connection), SQLite {}",
        file.display(),
        store.journal_mode().expect("the journal mode"),
        rusqlite::version()
    );
    println!(
        "(medians of {ROUNDS} rounds of {LIVES} lifecycles after one to warm up; in each \
         round the floor, the lifecycles, the floor in BEGIN IMMEDIATE/COMMIT in turn)\n"
    );
    let mut floor = Floor::open(&file);
    let driver = Driver::new(Counting::new(store), MemoryNotifier::new(), directory());
    // Each round: the floor alone, the lifecycles, the floor in
    // `BEGIN IMMEDIATE`/`COMMIT`, per second.
    let mut rounds: Vec<[f64; 3]> = Vec::new();
    for round in 0..=ROUNDS {
        let alone = floor.run(3 * LIVES, false);
        services(&driver, round, LIVES);
        let lives = lifecycles(&driver, round, LIVES);
        let explicit = floor.run(3 * LIVES, true);
        if round > 0 {
            rounds.push([lives, alone, explicit]);
        }
    }
    let of = |f: &dyn Fn(&[f64; 3]) -> f64| median(rounds.iter().map(f).collect());
    println!(
        "| lifecycles/s | floor tx/s (autocommit) | floor tx/s (BEGIN IMMEDIATE/UPDATE/COMMIT) | ratio to the floor (3 tx each) |"
    );
    println!("|---|---|---|---|");
    println!(
        "| {:.0} | {:.0} | {:.0} | {:.2}× ({:.2}× of BEGIN IMMEDIATE/UPDATE/COMMIT) |\n",
        of(&|r| r[0]),
        of(&|r| r[1]),
        of(&|r| r[2]),
        of(&|r| ratio(r[0], r[1])),
        of(&|r| ratio(r[0], r[2])),
    );
    where_the_time_goes(&driver, ROUNDS + 1);
    pages_written(&driver, &mut floor, ROUNDS + 2);
    drop(driver);
    drop(floor);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where the time of a lifecycle goes: the store calls the driver makes and
/// the time spent in them, and the same lifecycles on `MemoryStore`.
fn where_the_time_goes(driver: &BenchDriver<Counting<SqliteStore>>, round: usize) {
    services(driver, round, PROFILED);
    driver.store().reset();
    let rate = lifecycles(driver, round, PROFILED);
    let store = driver.store();
    let per = |n: u64| n as f64 / PROFILED as f64;
    let micros = |d: Duration| d.as_secs_f64() * 1e6 / PROFILED as f64;
    let wall = 1e6 / rate;
    println!(
        "per lifecycle ({wall:.0} µs): {:.1} store reads ({:.0} µs), {:.1} commits writing \
         {:.1} services and {:.1} requests ({:.0} µs); outside the store {:.0} µs",
        per(store.reads.get()),
        micros(store.read_time.get()),
        per(store.commits.get()),
        per(store.services_written.get()),
        per(store.requests_written.get()),
        micros(store.commit_time.get()),
        wall - micros(store.read_time.get() + store.commit_time.get()),
    );
    let memory = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory());
    services(&memory, 0, PROFILED);
    let alone = lifecycles(&memory, 0, PROFILED);
    println!(
        "the same lifecycles on MemoryStore (driver and engine alone): {:.0} µs each",
        1e6 / alone
    );
}

/// Lifecycles whose WAL frames are counted: few enough that their frames
/// stay below `SQLite`'s automatic checkpoint (1,000 frames).
const FRAMED: usize = 20;

/// The pages a lifecycle and a floor transaction write: the frames they
/// append to the WAL (one per page changed, per commit), read from the WAL
/// file's length after a checkpoint that empties it.
fn pages_written(driver: &BenchDriver<Counting<SqliteStore>>, floor: &mut Floor, round: usize) {
    let wal = {
        let mut name = driver.store().inner.path().as_os_str().to_owned();
        name.push("-wal");
        PathBuf::from(name)
    };
    let page_size: i64 = floor
        .conn
        .pragma_query_value(None, "page_size", |row| row.get(0))
        .expect("the page size");
    let page_size = u64::try_from(page_size).expect("a page size");
    let mut frames = |run: &mut dyn FnMut(&mut Floor)| {
        floor
            .conn
            .pragma(None, "wal_checkpoint", "TRUNCATE", |row| {
                assert_eq!(row.get::<_, i64>(0)?, 0, "the checkpoint was not blocked");
                Ok(())
            })
            .expect("a checkpoint");
        run(floor);
        let bytes = std::fs::metadata(&wal).expect("the WAL file").len();
        // A 32-byte header, then frames of a 24-byte header and a page.
        bytes.saturating_sub(32) / (24 + page_size)
    };
    services(driver, round, FRAMED);
    let lives = frames(&mut |_| {
        let _ = lifecycles(driver, round, FRAMED);
    });
    let updates = frames(&mut |floor| {
        let _ = floor.run(3 * FRAMED, false);
    });
    println!(
        "WAL frames (pages of {page_size} bytes) per commit: {:.1} for a lifecycle's \
         commits, {:.1} for the floor's updates",
        lives as f64 / (3 * FRAMED) as f64,
        updates as f64 / (3 * FRAMED) as f64,
    );
    let pages = usize::try_from((lives + 3 * FRAMED as u64 / 2) / (3 * FRAMED as u64))
        .expect("a few pages");
    let wide = floor.wide(pages, 3 * LIVES);
    println!(
        "a floor transaction updating {pages} rows, each on a page of its own (as many WAL \
         frames as a lifecycle's commit): {wide:.0} tx/s, {:.0} µs; the lifecycle's commits: \
         {:.0} µs each",
        1e6 / wide,
        driver.store().commit_time.get().as_secs_f64() * 1e6 / (3 * PROFILED) as f64,
    );
}

/// A store that counts the calls made to `inner` and the time they take.
struct Counting<S> {
    inner: S,
    reads: Cell<u64>,
    read_time: Cell<Duration>,
    commits: Cell<u64>,
    services_written: Cell<u64>,
    requests_written: Cell<u64>,
    commit_time: Cell<Duration>,
}

impl<S> Counting<S> {
    fn new(inner: S) -> Counting<S> {
        Counting {
            inner,
            reads: Cell::new(0),
            read_time: Cell::new(Duration::ZERO),
            commits: Cell::new(0),
            services_written: Cell::new(0),
            requests_written: Cell::new(0),
            commit_time: Cell::new(Duration::ZERO),
        }
    }

    fn reset(&self) {
        self.reads.set(0);
        self.read_time.set(Duration::ZERO);
        self.commits.set(0);
        self.services_written.set(0);
        self.requests_written.set(0);
        self.commit_time.set(Duration::ZERO);
    }

    fn read<T>(&self, read: impl FnOnce(&S) -> T) -> T {
        let started = Instant::now();
        let value = read(&self.inner);
        self.reads.set(self.reads.get() + 1);
        self.read_time.set(self.read_time.get() + started.elapsed());
        value
    }
}

impl<S: Store> Store for Counting<S> {
    type Error = S::Error;

    fn service(&self, name: &ServiceName) -> Result<Option<Service>, S::Error> {
        self.read(|s| s.service(name))
    }

    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, S::Error> {
        self.read(|s| s.request(id))
    }

    fn contacts_of(
        &self,
        customer: CustomerId,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<(ServiceName, Roles)>, S::Error> {
        self.read(|s| s.contacts_of(customer, after, limit))
    }

    fn requests_of(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, S::Error> {
        self.read(|s| s.requests_of(customer, filter, now, after, limit))
    }

    fn due_for_expiry(
        &self,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, S::Error> {
        self.read(|s| s.due_for_expiry(now, after, limit))
    }

    fn requests_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, S::Error> {
        self.read(|s| s.requests_on(name, after, limit))
    }

    fn assignments_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<Assignment>, S::Error> {
        self.read(|s| s.assignments_on(name, after, limit))
    }

    fn commit(&self, changes: Changes) -> Result<(), CommitError<S::Error>> {
        self.commits.set(self.commits.get() + 1);
        self.services_written
            .set(self.services_written.get() + changes.services.len() as u64);
        self.requests_written
            .set(self.requests_written.get() + changes.requests.len() as u64);
        let started = Instant::now();
        let result = self.inner.commit(changes);
        self.commit_time
            .set(self.commit_time.get() + started.elapsed());
        result
    }
}
