//! The `PostgreSQL` server restarted in the middle of a run (R31, R41):
//! the actions in flight fail with store errors, the pool reconnects, the
//! run carries on; no committed change is lost and none is applied twice;
//! a commit whose answer was lost is reported as an unknown outcome, and
//! the host reads back.
//!
//! The restart stops every session of the server: this test has a binary of
//! its own, so that no other test runs meanwhile (`cargo test` runs test
//! binaries one after another). It restarts the cluster with
//! `pg_ctlcluster`, as `pg_virtualenv` makes it, and fails when it cannot.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use common::{Schema, consistency};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    AsyncDriver, ChangeRequest, CustomerId, DriverError, Edit, EventKind, MemoryDirectory,
    MemoryNotifier, RequestId, Role, ServiceName, StateName,
};
use service_contacts_postgres::{Options, PgStore, PgStoreError};
use time::{Duration, OffsetDateTime, macros::datetime};

type TestDriver = AsyncDriver<PgStore, MemoryNotifier, MemoryDirectory>;
type Error = service_contacts::AsyncDriverErrorFor<PgStore, MemoryDirectory>;

/// Tasks that run lifecycles on services of their own through the restart.
const WORKERS: u32 = 6;

fn id(n: u32) -> CustomerId {
    format!("CU{n}-OVH").parse().unwrap()
}

fn t0() -> OffsetDateTime {
    datetime!(2026-11-21 10:00 UTC)
}

fn worker_service(worker: u32) -> ServiceName {
    format!("worker-{worker}.example").parse().unwrap()
}

/// The service whose admin's accept is in a statement, waiting for a row
/// lock, when the server stops.
fn in_statement() -> ServiceName {
    "in-statement.example".parse().unwrap()
}

/// The service whose admin's accept is inside `COMMIT` when the server
/// stops.
fn in_commit() -> ServiceName {
    "in-commit.example".parse().unwrap()
}

/// Restarts the server the tests use: the `pg_ctlcluster` cluster that
/// listens on its port (of `$PGVERSION` when set). Its status is not
/// required to read `online`: `pg_lsclusters` tells it from a socket file in
/// a directory that other throwaway clusters share, and may say `down` of a
/// running one (so is `pg_ctlcluster restart`, which then does not stop
/// it); the caller checks that the server it uses restarted.
///
/// # Panics
///
/// When no such cluster is found or the restart fails: the test needs it.
fn restart_server() {
    let port = common::server()
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let version = std::env::var("PGVERSION").ok();
    let listing = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot restart the server: pg_lsclusters: {err} (run under pg_virtualenv)")
        });
    let listing = String::from_utf8_lossy(&listing.stdout);
    let mut clusters: Vec<Vec<&str>> = listing
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| {
            fields.len() > 3
                && fields[2] == port
                && version.as_deref().is_none_or(|v| v == fields[0])
        })
        .collect();
    clusters.sort_by_key(|fields| !fields[3].starts_with("online"));
    let Some(cluster) = clusters.first() else {
        panic!(
            "cannot restart the server: no cluster on port {port} (version {version:?}) \
             in pg_lsclusters:\n{listing}"
        )
    };
    // `stop`, then `start`: `restart` stops only a cluster it sees online.
    for action in ["stop", "start"] {
        let done = Command::new("pg_ctlcluster")
            .args([cluster[0], cluster[1], action])
            .output()
            .expect("pg_ctlcluster runs");
        assert!(
            done.status.success(),
            "pg_ctlcluster {} {} {action}: {}",
            cluster[0],
            cluster[1],
            String::from_utf8_lossy(&done.stderr)
        );
    }
}

/// When the server started, as its text, once it answers.
async fn started() -> String {
    common::eventually("the server answers", || async {
        let (client, connection) = common::server().connect(tokio_postgres::NoTls).await.ok()?;
        tokio::spawn(connection);
        let sql = "SELECT pg_postmaster_start_time()::text";
        Some(client.query_one(sql, &[]).await.ok()?.get(0))
    })
    .await
}

/// Ends the sessions of a schema's stores when dropped: if the test fails
/// before the restart ended them, the pinned accepts would hold their locks
/// (one sleeps for ten minutes), and dropping the schema would wait.
struct EndSessions<'a> {
    schema: &'a Schema,
    runtime: &'a tokio::runtime::Runtime,
}

impl Drop for EndSessions<'_> {
    fn drop(&mut self) {
        let sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                   WHERE application_name = $1";
        self.runtime.block_on(async {
            if let Ok((client, connection)) = common::server().connect(tokio_postgres::NoTls).await
            {
                tokio::spawn(connection);
                let _ = client.query(sql, &[&self.schema.name]).await;
            }
        });
    }
}

/// What one worker's actions returned.
#[derive(Debug, Default)]
struct Ledger {
    /// Edits that opened a request.
    opened: Vec<RequestId>,
    /// Incoming contacts' accepts that were committed.
    confirmed: Vec<RequestId>,
    /// Admins' accepts that applied the change.
    applied: Vec<RequestId>,
    cancelled: Vec<RequestId>,
    /// Edits, and admins' accepts, whose outcome was unknown.
    edits_unknown: usize,
    applies_unknown: usize,
    /// Actions that failed with any store error.
    failed: usize,
}

/// One worker: until `stop`, reads its service and the request last opened
/// on its tech contact, and takes the next step of a lifecycle (an edit,
/// the incoming contact's accept, the admin's accept; a cancel of a request
/// whose edit's outcome was unknown, as its tokens never came). Every error
/// must be a store error; each is followed by reading back, as a host does.
async fn work(
    driver: Arc<TestDriver>,
    worker: u32,
    stop: Arc<AtomicBool>,
    lives: Arc<AtomicU32>,
) -> Ledger {
    let service = worker_service(worker);
    let mut ledger = Ledger::default();
    // The request this worker holds tokens for, with them (admin's,
    // incoming's).
    let mut tokens: Option<(RequestId, [String; 2])> = None;
    let mut now = t0();
    let mut seed = u64::from(worker) << 32;
    while !stop.load(Ordering::SeqCst) {
        now += Duration::minutes(1);
        seed += 1;
        let result = next_step(&driver, &service, now, seed, &mut tokens, &mut ledger).await;
        if let Err(err) = result {
            ledger.failed += 1;
            assert!(matches!(err, DriverError::Store(_)), "{service}: {err}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        } else {
            let applied = u32::try_from(ledger.applied.len()).unwrap();
            lives.store(applied, Ordering::SeqCst);
        }
    }
    ledger
}

/// One step of [`work`]; the worker's lifecycles applied so far are counted
/// by `ledger.applied`.
async fn next_step(
    driver: &TestDriver,
    service: &ServiceName,
    now: OffsetDateTime,
    seed: u64,
    tokens: &mut Option<(RequestId, [String; 2])>,
    ledger: &mut Ledger,
) -> Result<(), Error> {
    let (admin, [a, b]) = (id(1), [id(2), id(3)]);
    let current = driver.service(service).await?;
    let live = match current.last_request(Role::Tech) {
        Some(request) => Some(driver.request(request, now).await?)
            .filter(|status| status.state == StateName::ValidatingByCustomers),
        None => None,
    };
    let Some(status) = live else {
        let incoming = if current.holder(Role::Tech) == a {
            b
        } else {
            a
        };
        let edit = Edit::new(service.clone()).with(Role::Tech, incoming);
        let rng = &mut ChaCha20Rng::seed_from_u64(seed);
        return match driver.submit(&edit, admin, now, rng).await {
            Ok(opened) => {
                let request = opened.value[0];
                let token = |who| common::last_token(driver.notifier(), who, request);
                *tokens = Some((request, [token(admin), token(incoming)]));
                ledger.opened.push(request);
                Ok(())
            }
            Err(err) => {
                ledger.edits_unknown += usize::from(unknown(&err));
                Err(err)
            }
        };
    };
    let request = status.request.id();
    let incoming = status.request.incoming();
    match tokens.as_ref().filter(|(id, _)| *id == request) {
        // Its edit's outcome was unknown: it was stored, but its tokens
        // never came (nothing is sent for an uncommitted state, R41).
        None => {
            let _ = driver.cancel(request, admin, now).await?;
            ledger.cancelled.push(request);
        }
        Some((_, [_, token])) if status.waiting_for.contains(&incoming) => {
            let _ = driver.accept(request, incoming, token, now).await?;
            ledger.confirmed.push(request);
        }
        Some((_, [token, _])) => match driver.accept(request, admin, token, now).await {
            Ok(done) => {
                assert_eq!(done.value.state().name(), StateName::Done);
                ledger.applied.push(request);
            }
            Err(err) => {
                ledger.applies_unknown += usize::from(unknown(&err));
                return Err(err);
            }
        },
    }
    Ok(())
}

fn unknown(err: &Error) -> bool {
    matches!(err, DriverError::Store(PgStoreError::OutcomeUnknown(_)))
}

/// Six workers run lifecycles on services of their own through a restart
/// of the server (`pg_ctlcluster` stop and start, which ends every session),
/// while two more actions are pinned in flight: one admin's accept waits
/// in its `UPDATE` for a row lock another session holds, one sleeps inside
/// `COMMIT` (a deferred trigger).
///
/// - The pinned actions fail with store errors: the one in a statement with
///   a `Postgres` error (nothing was written), the one in `COMMIT` with
///   `OutcomeUnknown`; neither sent a message (R41). Read back, both
///   requests still wait for the admin, whose accept then goes through.
/// - Every worker error is a store error, never a panic; each worker
///   applies two more changes after the restart, on the same pool (it
///   reconnected).
/// - R31: afterwards, from fresh connections, every action that returned
///   `Ok` is visible (each request opened, each confirmation recorded,
///   each change applied, each cancel), nothing more was stored than the
///   actions that returned `Ok` or an unknown outcome could have written,
///   no confirmation is recorded twice, and the consistency checks hold.
#[test]
fn a_server_restart_mid_run_loses_no_commit_and_applies_none_twice() {
    let runtime = common::runtime();
    let schema = Schema::new(runtime.handle());
    let _end = EndSessions {
        schema: &schema,
        runtime: &runtime,
    };
    // Lock waits last until the restart ends them.
    let options = Options::default()
        .max_connections(10)
        .lock_timeout(std::time::Duration::from_secs(600));
    let store = runtime.block_on(PgStore::connect(schema.config(), options));
    let directory = MemoryDirectory::new();
    for n in 0..4 {
        directory.add(id(n));
    }
    let driver = Arc::new(AsyncDriver::new(
        store.unwrap(),
        MemoryNotifier::new(),
        directory,
    ));
    let pinned = runtime.block_on(async {
        for worker in 0..WORKERS {
            let service = worker_service(worker);
            driver.order_service(&service, id(1)).await.unwrap();
        }
        [
            common::waiting_for_admin(&driver, &in_statement(), 1, t0()).await,
            common::waiting_for_admin(&driver, &in_commit(), 2, t0()).await,
        ]
    });
    let stop = Arc::new(AtomicBool::new(false));
    let lives: Vec<Arc<AtomicU32>> = (0..WORKERS).map(|_| Arc::default()).collect();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let lives = Arc::clone(&lives[worker as usize]);
            let work = work(Arc::clone(&driver), worker, Arc::clone(&stop), lives);
            runtime.spawn(work)
        })
        .collect();
    let applied_by = |min: u32| {
        let lives = lives.clone();
        move || {
            let done = lives.iter().all(|n| n.load(Ordering::SeqCst) >= min);
            std::future::ready(done.then_some(()))
        }
    };
    let ledgers = runtime.block_on(async {
        common::eventually("every worker applies a change", applied_by(1)).await;
        restart_with_two_in_flight(&driver, &schema.name, &pinned).await;
        let after: Vec<u32> = lives.iter().map(|n| n.load(Ordering::SeqCst)).collect();
        let target = after.iter().max().unwrap() + 2;
        common::eventually("every worker applies two more", applied_by(target)).await;
        stop.store(true, Ordering::SeqCst);
        let mut ledgers = Vec::new();
        for worker in workers {
            ledgers.push(worker.await.expect("a worker panicked"));
        }
        ledgers
    });
    let fresh = schema.store(2).expect("the schema is ours");
    let requests = runtime.block_on(fresh.requests()).unwrap();
    for (worker, ledger) in (0..WORKERS).zip(&ledgers) {
        let service = worker_service(worker);
        let of_service: Vec<&ChangeRequest> = requests
            .iter()
            .filter(|r| *r.service() == service)
            .collect();
        check_ledger(&service, ledger, &of_service);
    }
    runtime.block_on(consistency::check(&fresh));
    let sum = |count: fn(&Ledger) -> usize| ledgers.iter().map(count).sum::<usize>();
    eprintln!(
        "worker actions: {} applied, {} failed through the restart, {} of them unknown",
        sum(|l| l.applied.len()),
        sum(|l| l.failed),
        sum(|l| l.edits_unknown + l.applies_unknown)
    );
}

/// Pins two admins' accepts in flight (one waiting for a row lock in its
/// `UPDATE`, one sleeping inside `COMMIT`), restarts the server, checks what
/// they returned (a store error; an unknown outcome) and that they sent
/// nothing (R41), reads back and accepts again.
async fn restart_with_two_in_flight(
    driver: &Arc<TestDriver>,
    schema: &str,
    pinned: &[(RequestId, String); 2],
) {
    let watcher = common::admin().await;
    watcher
        .batch_execute(&format!(
            "SET search_path = {schema}; \
             CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(600); RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER slow_commit AFTER UPDATE ON services \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
             WHEN (NEW.name = '{}') EXECUTE FUNCTION slow_commit()",
            in_commit()
        ))
        .await
        .unwrap();
    let messages = |request: RequestId| {
        let delivered = driver.notifier().delivered();
        delivered
            .iter()
            .filter(|m| m.request() == Some(request))
            .count()
    };
    let locker = common::admin().await;
    let lock = format!(
        "BEGIN; SELECT 1 FROM {schema}.services WHERE name = '{}' FOR UPDATE",
        in_statement()
    );
    locker.batch_execute(&lock).await.unwrap();
    let sent = pinned.clone().map(|(request, _)| messages(request));
    let [in_statement, in_commit] = pinned.clone().map(|(request, token)| {
        let driver = Arc::clone(driver);
        tokio::spawn(async move { driver.accept(request, id(1), &token, t0()).await })
    });
    for (what, sql) in [
        (
            "an accept waits for a row lock",
            "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 \
             AND wait_event_type = 'Lock' AND query LIKE 'UPDATE services%'",
        ),
        (
            "an accept sleeps in COMMIT",
            "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 \
             AND query = 'COMMIT' AND wait_event = 'PgSleep'",
        ),
    ] {
        common::eventually(what, || {
            let watcher = &watcher;
            async move {
                let rows = watcher.query(sql, &[&schema]).await.unwrap();
                (!rows.is_empty()).then_some(())
            }
        })
        .await;
    }
    let before = started().await;
    tokio::task::spawn_blocking(restart_server).await.unwrap();
    assert_ne!(started().await, before, "the server did not restart");
    match in_statement.await.unwrap() {
        Err(DriverError::Store(PgStoreError::Postgres(_))) => {}
        other => panic!("an accept in a statement: {other:?}"),
    }
    match in_commit.await.unwrap() {
        Err(DriverError::Store(err @ PgStoreError::OutcomeUnknown(_))) => {
            assert!(err.to_string().contains("read them back"), "{err}");
        }
        other => panic!("an accept in COMMIT: {other:?}"),
    }
    assert_eq!(pinned.clone().map(|(request, _)| messages(request)), sent);
    // The host reads back, finds each request still waiting for the
    // admin, and accepts again.
    common::admin()
        .await
        .batch_execute(&format!("DROP TRIGGER slow_commit ON {schema}.services"))
        .await
        .unwrap();
    for (request, token) in pinned {
        let status = driver.request(*request, t0()).await.unwrap();
        assert_eq!(status.waiting_for, [id(1)], "{request}");
        let done = driver.accept(*request, id(1), token, t0()).await.unwrap();
        assert_eq!(done.value.state().name(), StateName::Done);
    }
}

/// What a worker's ledger says against its service's stored requests.
fn check_ledger(service: &ServiceName, ledger: &Ledger, stored: &[&ChangeRequest]) {
    let find = |request: &RequestId| {
        stored
            .iter()
            .find(|r| r.id() == *request)
            .unwrap_or_else(|| panic!("{service}: {request} returned Ok but is not stored"))
    };
    // Nothing that returned Ok is lost.
    for request in &ledger.opened {
        find(request);
    }
    for request in &ledger.confirmed {
        let request = find(request);
        let confirmed = request
            .history()
            .iter()
            .any(|e| *e.kind() == EventKind::Confirmed && e.customer() == Some(request.incoming()));
        assert!(
            confirmed,
            "{service}: {}: a confirmation lost",
            request.id()
        );
    }
    for request in &ledger.applied {
        assert_eq!(find(request).state().name(), StateName::Done, "{request}");
    }
    for request in &ledger.cancelled {
        assert_eq!(
            find(request).state().name(),
            StateName::Aborted,
            "{request}"
        );
    }
    // Nothing more than what returned Ok or an unknown outcome wrote.
    let opened = ledger.opened.len();
    assert!(
        (opened..=opened + ledger.edits_unknown).contains(&stored.len()),
        "{service}: {} requests stored, {ledger:?}",
        stored.len()
    );
    let done = stored
        .iter()
        .filter(|r| r.state().name() == StateName::Done)
        .count();
    let applied = ledger.applied.len();
    assert!(
        (applied..=applied + ledger.applies_unknown).contains(&done),
        "{service}: {done} applied, {ledger:?}"
    );
    // No confirmation recorded twice.
    for request in stored {
        for confirmer in request.confirmers() {
            let times = request
                .history()
                .iter()
                .filter(|e| *e.kind() == EventKind::Confirmed && e.customer() == Some(confirmer))
                .count();
            assert!(
                times <= 1,
                "{service}: {}: {confirmer} {times}×",
                request.id()
            );
        }
    }
}
