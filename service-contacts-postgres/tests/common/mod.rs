//! The server the tests run against, a fresh schema per case, and the
//! store seen through the blocking `Store` trait (for the blocking
//! conformance suite).
//!
//! The server comes from `DATABASE_URL` or the standard `PG*` variables
//! (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`), as
//! `pg_virtualenv` exports them. With neither, or with a server that does
//! not answer, every test **fails**: none passes by skipping.
#![allow(dead_code, reason = "each test file uses a part of the helpers")]

pub(crate) mod consistency;

use std::sync::atomic::{AtomicU32, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    AsyncDriver, CustomerId, Edit, MemoryDirectory, MemoryNotifier, RequestId, Role, ServiceName,
};
use service_contacts_postgres::{Options, PgStore, PgStoreError};
use time::OffsetDateTime;
use tokio::runtime::{Handle, Runtime};

/// A runtime for a test: its worker threads run the pool's connections.
pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The last token `to` received for `request`.
///
/// # Panics
///
/// When `to` received none.
pub(crate) fn last_token(notifier: &MemoryNotifier, to: CustomerId, request: RequestId) -> String {
    notifier
        .delivered()
        .iter()
        .rev()
        .find(|m| m.to() == to && m.request() == Some(request) && m.token().is_some())
        .and_then(|m| m.token().map(service_contacts::Token::reveal))
        .expect("a confirmation request was delivered")
}

/// Orders `service` for `CU1-OVH` and opens a change of its tech contact to
/// `CU2-OVH` (`seed` draws the tokens), which the incoming contact accepts:
/// the admin's accept, at `at`, applies it. Returns the request and the
/// admin's token.
///
/// # Panics
///
/// When an action fails.
pub(crate) async fn waiting_for_admin(
    driver: &AsyncDriver<PgStore, MemoryNotifier, MemoryDirectory>,
    service: &ServiceName,
    seed: u64,
    at: OffsetDateTime,
) -> (RequestId, String) {
    let (admin, incoming) = ("CU1-OVH".parse().unwrap(), "CU2-OVH".parse().unwrap());
    driver.order_service(service, admin).await.unwrap();
    let edit = Edit::new(service.clone()).with(Role::Tech, incoming);
    let rng = &mut ChaCha20Rng::seed_from_u64(seed);
    let request = driver.submit(&edit, admin, at, rng).await.unwrap().value[0];
    let token = |who| last_token(driver.notifier(), who, request);
    let _ = driver
        .accept(request, incoming, &token(incoming), at)
        .await
        .unwrap();
    (request, token(admin))
}

/// Asks `probe` every 10 ms until it gives a value, and returns it. The
/// tests wait for states this way, never for a time; the bound (12,000
/// probes, two minutes at least) only turns a state that never comes into a
/// failure naming `what`.
///
/// # Panics
///
/// When the state never came.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..12_000 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("still waiting after two minutes: {what}");
}

/// The server's settings, from `DATABASE_URL` or the `PG*` variables.
///
/// # Panics
///
/// When neither names a server: the tests need one and fail without it.
pub(crate) fn server() -> tokio_postgres::Config {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return url
            .parse()
            .expect("DATABASE_URL is a connection string tokio-postgres reads");
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(host) = var("PGHOST") else {
        panic!(
            "no PostgreSQL server: set DATABASE_URL or PGHOST (and PGPORT, PGUSER, \
             PGPASSWORD, PGDATABASE), e.g. run the tests under `pg_virtualenv`"
        );
    };
    let mut config = tokio_postgres::Config::new();
    config.host(&host);
    if let Some(port) = var("PGPORT") {
        config.port(port.parse().expect("PGPORT is a port number"));
    }
    config.user(var("PGUSER").unwrap_or_else(|| "postgres".to_owned()));
    if let Some(password) = var("PGPASSWORD") {
        config.password(password);
    }
    if let Some(dbname) = var("PGDATABASE") {
        config.dbname(dbname);
    }
    config
}

/// The server's settings with `schema` as the connections' only
/// `search_path` entry, and its name as their `application_name` (for a
/// process that works in a schema another one made).
pub(crate) fn schema_config(schema: &str) -> tokio_postgres::Config {
    let mut config = server();
    config.options(format!("-c search_path={schema}"));
    // Tests that watch the server's sessions find this case's by it.
    config.application_name(schema);
    config
}

/// One client on the server, outside any test schema (to create and drop
/// schemas, and to damage rows on purpose).
pub(crate) async fn admin() -> tokio_postgres::Client {
    let (client, connection) = server()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|err| panic!("the PostgreSQL server does not answer: {err:?}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A schema of its own for one case, dropped (with everything in it) when
/// the value is dropped.
pub(crate) struct Schema {
    pub(crate) name: String,
    handle: Handle,
}

/// Creates a new, empty schema with a name no other case uses, and returns
/// its name (for async code; [`Schema::new`] also drops it when done).
pub(crate) async fn create_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "sc_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    admin()
        .await
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ))
        .await
        .expect("a schema is created");
    name
}

impl Schema {
    /// Creates a new, empty schema with a name no other case uses.
    pub(crate) fn new(handle: &Handle) -> Schema {
        Schema {
            name: handle.block_on(create_schema()),
            handle: handle.clone(),
        }
    }

    /// The server's settings with this schema as the connections' only
    /// `search_path` entry, and its name as their `application_name`.
    pub(crate) fn config(&self) -> tokio_postgres::Config {
        schema_config(&self.name)
    }

    /// A store on this schema, with `connections` connections at most.
    pub(crate) fn store(&self, connections: usize) -> Result<PgStore, PgStoreError> {
        self.handle.block_on(PgStore::connect(
            self.config(),
            Options::default().max_connections(connections),
        ))
    }

    /// Runs `sql` (one or more statements) in this schema.
    pub(crate) fn execute(&self, sql: &str) {
        let sql = format!("SET search_path = {}; {sql}", self.name);
        self.handle.block_on(async {
            admin()
                .await
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|err| panic!("{sql}: {err:?}"));
        });
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // Never a panic here (a test that failed is unwinding): a schema
        // left behind goes with the throwaway cluster.
        self.handle.block_on(async {
            if let Ok((client, connection)) = server().connect(tokio_postgres::NoTls).await {
                tokio::spawn(connection);
                let _ = client.batch_execute(&sql).await;
            }
        });
    }
}
