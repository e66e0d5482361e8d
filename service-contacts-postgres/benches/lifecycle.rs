//! Whole request lifecycles through the `AsyncDriver` on `PgStore`, against
//! the floor measured in the same run on the same database: the same number
//! of bare, single-row, version-checked `UPDATE` transactions (three per
//! lifecycle, one per commit of the lifecycle), with the same durability
//! settings. Prints tables; never a test.
//!
//! ```sh
//! cd service-contacts-postgres
//! pg_virtualenv sh -c 'cargo bench --bench lifecycle'              # fsync=off, as pg_virtualenv sets it
//! pg_virtualenv -o fsync=on sh -c 'cargo bench --bench lifecycle'  # a durable server
//! # with each statement's calls and time per lifecycle:
//! pg_virtualenv -o shared_preload_libraries=pg_stat_statements sh -c 'cargo bench --bench lifecycle'
//! ```
//!
//! A lifecycle: the admin of a service (imported beforehand, outside the
//! timing) submits an edit of its tech contact, the incoming contact
//! accepts, the admin accepts: applied. Three commits, as many as the floor
//! counts. The floor: `UPDATE floor SET version = version + 1 WHERE id = $1
//! AND version = $2`, each its own transaction, on a row of its own per
//! connection; both as one autocommit statement (one round trip: the floor
//! the budget is measured against) and as `BEGIN`, `UPDATE`, `COMMIT`
//! (three round trips).
//!
//! Measured: one connection, and eight on disjoint services (lifecycles per
//! second, the ratio to the floor, the speed-up from one to eight), in
//! rounds where each configuration runs the floor, the lifecycles and the
//! floor again in turn, so that each ratio compares neighbours in time (the
//! medians of the rounds are shown); where a lifecycle's time goes on one
//! connection (store calls, CPU of this process and of the server process,
//! a round trip, the driver alone on `MemoryStore`, and the statements when
//! `pg_stat_statements` is loaded); eight connections all editing one
//! service (completed actions per second, conflicts the driver decided
//! again, actions that ended in `Contention`).
//!
//! The shape, for another store (`SQLite`'s): the lifecycle and its loop
//! are generic over any `AsyncStore` (they also run on `MemoryStore` here);
//! a `Floor` of bare transactions on the same connections; `Setup::round`
//! taking turns between them, and the medians of the rounds' own ratios.
//! Only `Floor`'s SQL, the store's construction, its call counts
//! (`PgStore::calls`, a hidden hook) and the profile's server side are
//! `PostgreSQL`'s.
#![expect(
    clippy::cast_precision_loss,
    reason = "counts far below 2^52 shown as rates"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    AsyncDriver, AsyncNotifier, AsyncStore, Contacts, CustomerId, DriverError, Edit,
    MemoryDirectory, Message, Refusal, RequestId, Role, ServiceName, StateName, SubmitError,
};
use service_contacts_postgres::{Calls, PgStore};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::runtime::Runtime;

/// Lifecycles per connection and round, one connection.
const LIVES_ONE: usize = 50;
/// Lifecycles per connection and round, eight connections.
const LIVES_EIGHT: usize = 20;
/// Rounds of each measure (plus one to warm up, not counted).
const ROUNDS: usize = 11;
/// Lifecycles profiled on one connection.
const PROFILED: usize = 500;
/// Attempts at a lifecycle per connection, eight on one service.
const HOT_ATTEMPTS: usize = 40;

fn t0() -> OffsetDateTime {
    datetime!(2026-11-21 10:00 UTC)
}

/// The time now, for the bench's own stopwatch.
#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark's stopwatch; the store and the driver never read it"
)]
fn stopwatch() -> Instant {
    Instant::now()
}

fn customer(text: &str) -> CustomerId {
    text.parse().expect("a customer id")
}

/// A notifier that keeps the tokens mailed for each request, to be taken
/// once by whoever drives the request.
#[derive(Debug, Default)]
struct Mailbox {
    tokens: Mutex<HashMap<RequestId, Vec<(CustomerId, String)>>>,
}

impl Mailbox {
    /// The confirmers of `request` with their tokens, as mailed.
    fn take(&self, request: RequestId) -> Vec<(CustomerId, String)> {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&request)
            .unwrap_or_default()
    }
}

impl AsyncNotifier for Mailbox {
    type Error = Infallible;

    async fn deliver(&self, message: &Message) -> Result<(), Infallible> {
        if let (Some(token), Some(request)) = (message.token(), message.request()) {
            self.tokens
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(request)
                .or_default()
                .push((message.to(), token.reveal()));
        }
        Ok(())
    }
}

type Driver<S> = AsyncDriver<S, Mailbox, MemoryDirectory>;
type Error<S> = service_contacts::AsyncDriverErrorFor<S, MemoryDirectory>;

/// The customers of connection `n`: the admin of its services, and the two
/// who take the tech role in turns.
fn cast(n: usize) -> [CustomerId; 3] {
    ["AD", "IN", "OU"].map(|letters| customer(&format!("{letters}{}-OVH", n + 1)))
}

/// Every customer of the bench, known.
fn directory() -> MemoryDirectory {
    let directory = MemoryDirectory::new();
    for n in 0..8 {
        for who in cast(n) {
            directory.add(who);
        }
    }
    directory.add(customer("HO1-OVH"));
    directory
}

/// One lifecycle on `service`: `admin` gives the tech role to `incoming`;
/// both confirmers accept; the change is applied. Three commits: the
/// actions completed, or those completed and the error that ended it.
async fn lifecycle<S: AsyncStore + Sync>(
    driver: &Driver<S>,
    service: &ServiceName,
    admin: CustomerId,
    incoming: CustomerId,
    rng: &mut ChaCha20Rng,
) -> Result<u64, (u64, Error<S>)> {
    let edit = Edit::new(service.clone()).with(Role::Tech, incoming);
    let id = driver
        .submit(&edit, admin, t0(), rng)
        .await
        .map_err(|err| (0, err))?
        .value[0];
    let mut done = 1;
    let mut last = None;
    for (who, token) in driver.notifier().take(id) {
        last = Some(
            driver
                .accept(id, who, &token, t0())
                .await
                .map_err(|err| (done, err))?
                .value,
        );
        done += 1;
    }
    let state = last.map(|request| request.state().name());
    assert_eq!(state, Some(StateName::Done), "two accepts apply the change");
    Ok(done)
}

/// Services for `connections` connections, `lives` each, held by each
/// connection's admin: imported in a few commits, outside the timing.
async fn services<S: AsyncStore + Sync>(
    driver: &Driver<S>,
    round: usize,
    connections: usize,
    lives: usize,
) {
    for n in 0..connections {
        let [admin, ..] = cast(n);
        let names: Vec<(ServiceName, Contacts)> = (0..lives)
            .map(|k| (name(round, n, k), Contacts::all(admin)))
            .collect();
        for chunk in names.chunks(500) {
            driver
                .import_services(chunk.to_vec())
                .await
                .expect("the services are imported");
        }
    }
}

fn name(round: usize, connection: usize, k: usize) -> ServiceName {
    format!("r{round}-c{connection}-{k}.example")
        .parse()
        .expect("a service name")
}

/// `lives` lifecycles on each of `connections` tasks, each on services of
/// its own (imported by [`services`]); lifecycles per second.
async fn lifecycles<S: AsyncStore + Send + Sync + 'static>(
    driver: &Arc<Driver<S>>,
    round: usize,
    connections: usize,
    lives: usize,
) -> f64 {
    let started = stopwatch();
    let tasks: Vec<_> = (0..connections)
        .map(|n| {
            let driver = Arc::clone(driver);
            tokio::spawn(async move {
                let [admin, incoming, _] = cast(n);
                let mut rng = ChaCha20Rng::seed_from_u64((round * 100 + n) as u64);
                for k in 0..lives {
                    let actions = lifecycle(&driver, &name(round, n, k), admin, incoming, &mut rng)
                        .await
                        .unwrap_or_else(|(_, err)| panic!("a lifecycle failed: {err}"));
                    assert_eq!(actions, 3);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a lifecycle task panicked");
    }
    (connections * lives) as f64 / started.elapsed().as_secs_f64()
}

/// The floor: bare version-checked single-row `UPDATE` transactions, on a
/// table of its own, one row per connection.
struct Floor {
    clients: Vec<Arc<tokio_postgres::Client>>,
}

impl Floor {
    async fn new(schema: &common::Schema, connections: usize) -> Floor {
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            let (client, connection) = schema
                .config()
                .connect(tokio_postgres::NoTls)
                .await
                .expect("a connection for the floor");
            tokio::spawn(connection);
            clients.push(Arc::new(client));
        }
        clients[0]
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS floor (id BIGINT PRIMARY KEY, version BIGINT NOT NULL);
                 INSERT INTO floor SELECT g, 1 FROM generate_series(0, 63) g ON CONFLICT DO NOTHING",
            )
            .await
            .expect("the floor table");
        Floor { clients }
    }

    /// `updates` transactions on each connection, each `UPDATE ... WHERE
    /// version = $2` alone (autocommit, one round trip) or inside `BEGIN` and
    /// `COMMIT` (three); transactions per second.
    async fn run(&self, updates: usize, explicit: bool) -> f64 {
        let started = stopwatch();
        let tasks: Vec<_> = self
            .clients
            .iter()
            .enumerate()
            .map(|(n, client)| {
                let client = Arc::clone(client);
                tokio::spawn(async move { bare_updates(&client, n, updates, explicit).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("a floor task panicked");
        }
        (self.clients.len() * updates) as f64 / started.elapsed().as_secs_f64()
    }
}

/// `updates` version-checked updates of row `row`, each a transaction.
async fn bare_updates(client: &tokio_postgres::Client, row: usize, updates: usize, explicit: bool) {
    let row = i64::try_from(row).expect("a row id");
    let statement = client
        .prepare("UPDATE floor SET version = version + 1 WHERE id = $1 AND version = $2")
        .await
        .expect("the floor's statement");
    let mut version: i64 = client
        .query_one("SELECT version FROM floor WHERE id = $1", &[&row])
        .await
        .expect("the floor's row")
        .get(0);
    for _ in 0..updates {
        if explicit {
            client.batch_execute("BEGIN").await.expect("BEGIN");
        }
        let changed = client
            .execute(&statement, &[&row, &version])
            .await
            .expect("the floor's update");
        assert_eq!(changed, 1, "one row at its version");
        if explicit {
            client.batch_execute("COMMIT").await.expect("COMMIT");
        }
        version += 1;
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One round of one configuration: lifecycles per second, and the floor's
/// transactions per second, autocommit and inside `BEGIN`/`COMMIT`.
#[derive(Clone, Copy)]
struct Round {
    lifecycles: f64,
    floor: f64,
    floor_explicit: f64,
}

impl Round {
    /// Lifecycles per second against the floor's, three transactions each.
    fn ratio(self) -> f64 {
        self.lifecycles / (self.floor / 3.0)
    }

    fn ratio_explicit(self) -> f64 {
        self.lifecycles / (self.floor_explicit / 3.0)
    }
}

/// One configuration: a number of connections, a driver on a store with as
/// many, the floor's connections, and lifecycles per connection and round.
struct Setup {
    connections: usize,
    driver: Arc<Driver<PgStore>>,
    floor: Floor,
    lives: usize,
}

impl Setup {
    async fn new(store: &common::Schema, floor: &common::Schema, connections: usize) -> Setup {
        Setup {
            connections,
            driver: pg_driver(store, connections).await,
            floor: Floor::new(floor, connections).await,
            lives: if connections == 1 {
                LIVES_ONE
            } else {
                LIVES_EIGHT
            },
        }
    }

    /// The floor, the lifecycles, the floor inside `BEGIN`/`COMMIT`, in turn.
    async fn round(&self, round: usize) -> Round {
        let floor = self.floor.run(3 * self.lives, false).await;
        services(&self.driver, round, self.connections, self.lives).await;
        let lifecycles = lifecycles(&self.driver, round, self.connections, self.lives).await;
        let floor_explicit = self.floor.run(3 * self.lives, true).await;
        Round {
            lifecycles,
            floor,
            floor_explicit,
        }
    }
}

/// What eight connections editing one service did.
#[derive(Debug, Default)]
struct Hot {
    seconds: f64,
    /// Actions that completed: changes opened, accepts recorded, submits
    /// refused because the role was busy (a final answer).
    completed: u64,
    opened: u64,
    busy: u64,
    /// Actions that ended in `Contention` (each tried again, as a user
    /// would, until it completed).
    contention: u64,
}

impl Hot {
    fn add(&mut self, other: &Hot) {
        self.completed += other.completed;
        self.opened += other.opened;
        self.busy += other.busy;
        self.contention += other.contention;
    }
}

/// Eight connections on one service: each gives the tech role (even
/// connections) or the billing role (odd ones) to one of two customers of
/// its own in turn, `HOT_ATTEMPTS` times, and both confirmers accept what
/// opened. A submit refused because the role has an open request (or
/// already is the customer's) counts as "busy"; an action that ended in
/// `Contention` is tried again. Every change opened is applied: the service
/// ends at version 1 + 2 × opened, which is checked.
async fn hot(driver: &Arc<Driver<PgStore>>) -> Hot {
    let service: ServiceName = "hot.example".parse().expect("a service name");
    let owner = customer("HO1-OVH");
    driver
        .order_service(&service, owner)
        .await
        .expect("the hot service");
    let started = stopwatch();
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let (driver, service) = (Arc::clone(driver), service.clone());
            tokio::spawn(async move {
                let role = if n % 2 == 0 {
                    Role::Tech
                } else {
                    Role::Billing
                };
                let [_, first, second] = cast(n);
                let mut rng = ChaCha20Rng::seed_from_u64(1000 + n as u64);
                let mut hot = Hot::default();
                for k in 0..HOT_ATTEMPTS {
                    let incoming = if k % 2 == 0 { first } else { second };
                    hot_attempt(
                        &driver,
                        &service,
                        owner,
                        (role, incoming),
                        &mut rng,
                        &mut hot,
                    )
                    .await;
                }
                hot
            })
        })
        .collect();
    let mut all = Hot::default();
    for task in tasks {
        all.add(&task.await.expect("a hot task panicked"));
    }
    all.seconds = started.elapsed().as_secs_f64();
    let version = driver
        .service(&service)
        .await
        .expect("the hot service")
        .version();
    assert_eq!(
        version.get(),
        1 + 2 * all.opened,
        "R31: every change counted once"
    );
    all
}

/// One attempt on the hot service: open a change of `role` to `incoming`,
/// then both confirmers accept (each accept tried again after
/// `Contention`).
async fn hot_attempt(
    driver: &Driver<PgStore>,
    service: &ServiceName,
    owner: CustomerId,
    (role, incoming): (Role, CustomerId),
    rng: &mut ChaCha20Rng,
    hot: &mut Hot,
) {
    let edit = Edit::new(service.clone()).with(role, incoming);
    let id = match driver.submit(&edit, owner, t0(), rng).await {
        Ok(opened) => opened.value[0],
        Err(DriverError::Refused(Refusal::Submit(
            SubmitError::Conflict { .. } | SubmitError::NoChange,
        ))) => {
            hot.busy += 1;
            hot.completed += 1;
            return;
        }
        Err(DriverError::Contention { .. }) => {
            hot.contention += 1;
            return;
        }
        Err(other) => panic!("unexpected: {other}"),
    };
    hot.opened += 1;
    hot.completed += 1;
    for (who, token) in driver.notifier().take(id) {
        loop {
            match driver.accept(id, who, &token, t0()).await {
                Ok(_) => break,
                Err(DriverError::Contention { .. }) => hot.contention += 1,
                Err(other) => panic!("unexpected: {other}"),
            }
        }
        hot.completed += 1;
    }
}

/// The server's durability settings, as `name=value` pairs.
async fn settings(client: &tokio_postgres::Client) -> String {
    let mut shown = Vec::new();
    for name in [
        "server_version",
        "fsync",
        "synchronous_commit",
        "wal_sync_method",
        "full_page_writes",
    ] {
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .expect("a setting");
        shown.push(format!("{name}={}", row.get::<_, String>(0)));
    }
    shown.join(", ")
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: nothing to do.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let runtime: Runtime = common::runtime();
    let store_schema = common::Schema::new(runtime.handle());
    let floor_schema = common::Schema::new(runtime.handle());
    runtime.block_on(run(&store_schema, &floor_schema));
}

async fn run(store_schema: &common::Schema, floor_schema: &common::Schema) {
    let admin = common::admin().await;
    println!("server: {}", settings(&admin).await);
    println!(
        "(medians of {ROUNDS} rounds after one to warm up; in each round, one connection then \
         eight, each the floor, the lifecycles, the floor in BEGIN/COMMIT in turn)\n"
    );
    let one = Setup::new(store_schema, floor_schema, 1).await;
    let eight = Setup::new(store_schema, floor_schema, 8).await;
    let mut rounds: Vec<[Round; 2]> = Vec::new();
    for round in 0..=ROUNDS {
        let measured = [one.round(2 * round).await, eight.round(2 * round + 1).await];
        if round > 0 {
            rounds.push(measured);
        }
    }
    let of = |n: usize, f: fn(Round) -> f64| median(rounds.iter().map(|r| f(r[n])).collect());
    println!(
        "| connections | lifecycles/s | floor tx/s (autocommit) | floor tx/s (BEGIN/UPDATE/COMMIT) | ratio to the floor (3 tx each) |"
    );
    println!("|---|---|---|---|---|");
    for (n, connections) in [(0, 1), (1, 8)] {
        println!(
            "| {connections} | {:.0} | {:.0} | {:.0} | {:.2}× ({:.2}× of BEGIN/UPDATE/COMMIT) |",
            of(n, |r| r.lifecycles),
            of(n, |r| r.floor),
            of(n, |r| r.floor_explicit),
            of(n, Round::ratio),
            of(n, Round::ratio_explicit),
        );
    }
    let speedup = |f: fn(Round) -> f64| median(rounds.iter().map(|r| f(r[1]) / f(r[0])).collect());
    println!(
        "\nspeed-up from 1 to 8 connections (median of the rounds' own): lifecycles {:.2}×, floor {:.2}× (autocommit), {:.2}× (BEGIN/UPDATE/COMMIT)\n",
        speedup(|r| r.lifecycles),
        speedup(|r| r.floor),
        speedup(|r| r.floor_explicit),
    );
    println!(
        "{}",
        where_the_time_goes(&admin, &one.driver, 2 * ROUNDS + 2, PROFILED).await
    );

    let driver = pg_driver(store_schema, 8).await;
    let hot = hot(&driver).await;
    let Calls {
        commits, conflicts, ..
    } = driver.store().calls();
    println!(
        "8 connections on one service ({HOT_ATTEMPTS} attempts each: open a change of tech or billing, both confirmers accept):"
    );
    println!(
        "| completed actions/s | completed actions | of them refused (role busy) | changes opened and applied | commits | conflicts (the driver decided again) | actions ended in Contention (tried again) |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {:.0} | {} | {} | {} | {commits} | {conflicts} | {} |",
        hot.completed as f64 / hot.seconds,
        hot.completed,
        hot.busy,
        hot.opened,
        hot.contention
    );
}

/// CPU time (user and system) of process `pid` (`self`: this one) so far,
/// in microseconds, from `/proc` (Linux, clock ticks of 10 ms): `None`
/// where there is no such file, as for a server on another machine.
fn cpu_micros(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: the state (field 3), then
    // utime (field 14) and stime (field 15).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000)
}

/// A driver on a `PgStore` of `connections` connections.
async fn pg_driver(schema: &common::Schema, connections: usize) -> Arc<Driver<PgStore>> {
    let store = PgStore::connect(
        schema.config(),
        service_contacts_postgres::Options::default().max_connections(connections),
    )
    .await
    .expect("the store");
    Arc::new(AsyncDriver::new(store, Mailbox::default(), directory()))
}

/// Where the time of a lifecycle goes, on one connection: the store calls
/// the driver makes; the CPU time of this process and of the connection's
/// server process (a server on this machine); a round trip; the same
/// lifecycles on `MemoryStore` (the driver and the engine alone); and, when
/// the server preloads `pg_stat_statements`, each statement's calls,
/// planning and execution time per lifecycle.
async fn where_the_time_goes(
    admin: &tokio_postgres::Client,
    driver: &Arc<Driver<PgStore>>,
    round: usize,
    lives: usize,
) -> String {
    let preloaded: String = admin
        .query_one("SHOW shared_preload_libraries", &[])
        .await
        .expect("a setting")
        .get(0);
    let statements = preloaded.contains("pg_stat_statements");
    let mut out = format!(
        "one round trip (SELECT 1): {:.0} µs\n",
        round_trip(admin).await
    );
    // The services first: their import is not the lifecycles'.
    services(driver, round, 1, lives).await;
    if statements {
        admin
            .batch_execute(
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; \
                 SELECT pg_stat_statements_reset()",
            )
            .await
            .expect("pg_stat_statements");
    }
    // The store's one connection, and its server process.
    let backend: i32 = driver
        .store()
        .pool()
        .get()
        .await
        .expect("the store's connection")
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("its process")
        .get(0);
    let backend = backend.to_string();
    let before = driver.store().calls();
    let cpu_before = (cpu_micros("self"), cpu_micros(&backend));
    let rate = lifecycles(driver, round, 1, lives).await;
    let cpu_after = (cpu_micros("self"), cpu_micros(&backend));
    let after = driver.store().calls();
    let per = |n: fn(Calls) -> u64| (n(after) - n(before)) as f64 / lives as f64;
    let wall = 1e6 / rate;
    writeln!(
        out,
        "per lifecycle, one connection ({wall:.0} µs): {:.1} store reads, {:.1} commits, \
         {:.2} conflicts",
        per(|c| c.reads),
        per(|c| c.commits),
        per(|c| c.conflicts)
    )
    .expect("a String takes any text");
    if let ((Some(a), Some(b)), (Some(c), Some(d))) = (cpu_before, cpu_after) {
        let (client, server) = ((c - a) as f64 / lives as f64, (d - b) as f64 / lives as f64);
        writeln!(
            out,
            "of which CPU (10 ms ticks): this process (driver, engine, JSON, client, runtime) \
             {client:.0} µs, the connection's server process {server:.0} µs; the rest \
             ({:.0} µs) waiting",
            wall - client - server
        )
        .expect("a String takes any text");
    }
    let memory = Arc::new(AsyncDriver::new(
        service_contacts::MemoryStore::new(),
        Mailbox::default(),
        directory(),
    ));
    services(&memory, 0, 1, lives).await;
    let alone = lifecycles(&memory, 0, 1, lives).await;
    writeln!(
        out,
        "the same lifecycles on MemoryStore (driver and engine alone): {:.0} µs each",
        1e6 / alone
    )
    .expect("a String takes any text");
    if statements {
        out.push_str(&statement_table(admin, lives, wall).await);
    } else {
        out.push_str(
            "(statements per lifecycle: run with -o shared_preload_libraries=pg_stat_statements)\n",
        );
    }
    out
}

/// The time of one round trip (a prepared `SELECT 1`), in microseconds.
async fn round_trip(client: &tokio_postgres::Client) -> f64 {
    let pings = 2000;
    let ping = client.prepare("SELECT 1").await.expect("a statement");
    let started = stopwatch();
    for _ in 0..pings {
        client.query_one(&ping, &[]).await.expect("a round trip");
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(pings)
}

/// `pg_stat_statements` per lifecycle, for `lives` lifecycles of `wall`
/// microseconds each.
async fn statement_table(admin: &tokio_postgres::Client, lives: usize, wall: f64) -> String {
    let rows = admin
        .query(
            "SELECT calls, total_plan_time, total_exec_time, \
             regexp_replace(query, '\\s+', ' ', 'g') \
             FROM pg_stat_statements WHERE calls >= $1 ORDER BY total_exec_time DESC",
            &[&i64::try_from(lives / 2).expect("a count")],
        )
        .await
        .expect("pg_stat_statements");
    let mut out = String::from(
        "| calls per lifecycle | µs planning per call | µs executing per call | µs per lifecycle | statement |\n\
         |---|---|---|---|---|\n",
    );
    let (mut calls, mut micros) = (0.0, 0.0);
    let lives = lives as f64;
    for row in &rows {
        let (n, plan, exec, query): (i64, f64, f64, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let n = n as f64;
        calls += n / lives;
        micros += (plan + exec) * 1000.0 / lives;
        let query: String = query.chars().take(80).collect();
        writeln!(
            out,
            "| {:.1} | {:.0} | {:.0} | {:.0} | `{query}` |",
            n / lives,
            plan * 1000.0 / n,
            exec * 1000.0 / n,
            (plan + exec) * 1000.0 / lives,
        )
        .expect("a String takes any text");
    }
    writeln!(
        out,
        "statements per lifecycle: {calls:.1}, planning and executing {micros:.0} µs of the \
         {wall:.0} µs"
    )
    .expect("a String takes any text");
    out
}
