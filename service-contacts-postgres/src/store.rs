//! [`PgStore`]: the reads and listings; the commit is in `commit.rs`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use service_contacts::columns::{MAX_BATCH, MIN_BATCH, Position, part_code, sample_filters, unix};
use service_contacts::{
    Assignment, AsyncStore, ChangeRequest, Changes, CommitError, CustomerId, HistoryKey,
    RequestFilter, RequestId, RequestKey, Roles, Service, ServiceName,
};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use crate::PgStoreError;
use crate::rows::{
    PARTY_COLUMNS, PartyRow, assignment_columns, read_assignment, read_request, read_service,
    request_columns, service_columns,
};

const SERVICE: &str = concat!(
    "SELECT ",
    service_columns!(),
    " FROM services WHERE name = $1"
);
const REQUEST: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM requests WHERE id = $1"
);
/// A page of "my contacts": one search of each role holder's partial index
/// from the cursor on (`$2`, `''` for the first page), merged by name, at
/// most `$3` rows: the caller asks for three times its page, since a service
/// where the customer holds several roles comes once per role, and keeps
/// each name once (R6, R45).
///
/// Each search has its own `ORDER BY name LIMIT $3`: whatever plan the
/// server picks (a `Merge Append`, or a `Sort` of the three searches' rows
/// when it expects few), no search reads past the page, even for a customer
/// holding thousands of services. The cursor is a row comparison over the
/// holder index's columns, `(admin, name) > ($1, $2)`, which only that
/// index can start at: otherwise, for a holder of many services, the
/// server may walk the primary key by name from the cursor and filter on
/// the holder, as many rows as it takes to find theirs.
const CONTACTS_OF: &str = concat!(
    "(SELECT ",
    service_columns!(),
    " FROM services WHERE admin = $1 AND (admin, name) > ($1, $2) AND NOT removed \
     ORDER BY name LIMIT $3) \
     UNION ALL (SELECT ",
    service_columns!(),
    " FROM services WHERE tech = $1 AND (tech, name) > ($1, $2) AND NOT removed \
     ORDER BY name LIMIT $3) \
     UNION ALL (SELECT ",
    service_columns!(),
    " FROM services WHERE billing = $1 AND (billing, name) > ($1, $2) AND NOT removed \
     ORDER BY name LIMIT $3) \
     ORDER BY name LIMIT $3"
);
/// A page of one service's requests, newest first, after the position
/// `($2, $3, $4)` (opening seconds, nanoseconds, id), at most `$5`: the range
/// `opened <= cursor` of `requests_service`, the rows of the cursor's own
/// opening time up to its id passed over.
const SERVICE_REQUESTS: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM requests WHERE service = $1 AND (opened_s, opened_ns) <= ($2, $3) \
     AND NOT (opened_s = $2 AND opened_ns = $3 AND id <= $4) \
     ORDER BY opened_s DESC, opened_ns DESC, id LIMIT $5"
);
/// A page of a service's history of requests (R47): every request of the
/// service `$1`, whatever its state, newest first, ties by id, after the
/// position `($2, $3, $4)`, at most `$5`. The statement of
/// [`SERVICE_REQUESTS`], on the same index, `requests_service`, which is
/// not partial for that reason: "my requests" filtered by a service reads
/// the same range and keeps the rows its filter lists.
const REQUESTS_ON: &str = SERVICE_REQUESTS;
/// A page of a service's operator assignments (R46, R47): those of the
/// service `$1`, newest first, ties by id, after the position `($2, $3,
/// $4)` (seconds, nanoseconds, id), at most `$5`: one range of
/// `assignments_service`, as [`SERVICE_REQUESTS`] reads `requests_service`.
const ASSIGNMENTS_ON: &str = concat!(
    "SELECT ",
    assignment_columns!(),
    " FROM assignments WHERE service = $1 AND (at_s, at_ns) <= ($2, $3) \
     AND NOT (at_s = $2 AND at_ns = $3 AND id <= $4) \
     ORDER BY at_s DESC, at_ns DESC, id LIMIT $5"
);
/// A page of the requests due at `($4, $5)`, after the position `($1, $2,
/// $3)` (deadline seconds, nanoseconds, id), at most `$6`: one range of the
/// partial index `requests_due`, bounded on both ends.
const DUE_FOR_EXPIRY: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM requests WHERE open AND (deadline_s, deadline_ns, id) > ($1, $2, $3) \
     AND (deadline_s, deadline_ns) <= ($4, $5) ORDER BY deadline_s, deadline_ns, id LIMIT $6"
);
const ALL_SERVICES: &str = concat!(
    "SELECT ",
    service_columns!(),
    " FROM services ORDER BY name"
);
const ALL_REQUESTS: &str = concat!("SELECT ", request_columns!(), " FROM requests ORDER BY id");
const ALL_ASSIGNMENTS: &str = concat!(
    "SELECT ",
    assignment_columns!(),
    " FROM assignments ORDER BY id"
);

/// A page of "my requests" through `request_parties`, for `arms` (part,
/// recorded state) pairs: one search of `request_parties_listing` per pair,
/// for customer `$1`, from the position `($2, $3, $4)` (opening seconds,
/// nanoseconds, id) on, each at most `$5` rows, merged newest first, at most
/// `$5` rows, each joined to the request it names (columns 6 on; NULL when
/// there is none). The pairs' part and state are `$6`, `$7`, then `$8`,
/// `$9`... A request where the customer has two parts comes once per part,
/// on adjacent rows. Each search has its own `ORDER BY ... LIMIT $5`, so no
/// plan reads more than `$5` rows of any range, however many the customer
/// has (R45).
pub(crate) fn requests_of_sql(arms: usize) -> String {
    let arm = |n: usize| {
        format!(
            "SELECT * FROM (SELECT {PARTY_COLUMNS} FROM request_parties WHERE customer = $1 \
             AND part = ${} AND state = ${} AND (opened_s, opened_ns) <= ($2, $3) \
             AND NOT (opened_s = $2 AND opened_ns = $3 AND request_id <= $4) \
             ORDER BY opened_s DESC, opened_ns DESC, request_id LIMIT $5) arm{n}",
            6 + 2 * n,
            7 + 2 * n
        )
    };
    let arms: Vec<String> = (0..arms).map(arm).collect();
    format!(
        "SELECT p.customer, p.part, p.state, p.opened_s, p.opened_ns, p.request_id, \
         r.id, r.service, r.open, r.opened_s, r.opened_ns, r.deadline_s, r.deadline_ns, \
         r.version, r.doc \
         FROM ({} ORDER BY opened_s DESC, opened_ns DESC, request_id LIMIT $5) p \
         LEFT JOIN requests r ON r.id = p.request_id \
         ORDER BY p.opened_s DESC, p.opened_ns DESC, p.request_id",
        arms.join(" UNION ALL ")
    )
}

/// The (part, recorded state) pairs "my requests" searches for `filter`
/// (without a service), as the codes of `request_parties`: each pair of
/// [`RequestFilter::index_ranges`], bound as `$6`, `$7`, `$8`... of
/// [`requests_of_sql`].
#[doc(hidden)]
#[must_use]
pub fn party_ranges(filter: &RequestFilter) -> Vec<(&'static str, &'static str)> {
    filter
        .index_ranges()
        .into_iter()
        .map(|(part, state)| (part_code(part), state.as_str()))
        .collect()
}

/// Every statement the store runs, by name: the reads, "my requests" for
/// each of [`sample_filters`] (their SQL differs by the number of ranges
/// only) and with a service, "due for expiry", a service's history (its
/// requests, its assignments), and the commit's statements.
/// What the query-plan tests explain.
#[doc(hidden)]
#[must_use]
pub fn queries() -> Vec<(String, String)> {
    let mut queries: Vec<(String, String)> = [
        ("service", SERVICE),
        ("request", REQUEST),
        ("contacts_of", CONTACTS_OF),
    ]
    .map(|(name, sql)| (name.to_owned(), sql.to_owned()))
    .into();
    for (name, filter) in sample_filters() {
        queries.push((name, requests_of_sql(party_ranges(&filter).len())));
    }
    for (name, sql) in [
        ("requests_of: a service", SERVICE_REQUESTS.to_owned()),
        ("due_for_expiry", DUE_FOR_EXPIRY.to_owned()),
        ("requests_on", REQUESTS_ON.to_owned()),
        ("assignments_on", ASSIGNMENTS_ON.to_owned()),
    ]
    .into_iter()
    .chain(crate::commit::statements())
    {
        queries.push((name.to_owned(), sql));
    }
    queries
}

/// A SQL `LIMIT` of `rows`.
fn sql_limit(rows: usize) -> i64 {
    i64::try_from(rows).unwrap_or(i64::MAX)
}

/// How a [`PgStore`] uses its connections.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Options {
    /// How long a commit waits for a row another transaction holds before
    /// it gives up with a conflict (`lock_timeout`, SQLSTATE `55P03`; the
    /// driver then decides again). Two seconds by default.
    pub lock_timeout: Duration,
    /// The most connections [`PgStore::connect`] opens (the pool's size).
    /// Sixteen by default. A pool given to [`PgStore::from_pool`] keeps its
    /// own size.
    pub max_connections: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            lock_timeout: Duration::from_secs(2),
            max_connections: 16,
        }
    }
}

impl Options {
    /// These options with `lock_timeout`.
    #[must_use]
    pub fn lock_timeout(mut self, lock_timeout: Duration) -> Options {
        self.lock_timeout = lock_timeout;
        self
    }

    /// These options with `max_connections`.
    #[must_use]
    pub fn max_connections(mut self, max_connections: usize) -> Options {
        self.max_connections = max_connections;
        self
    }
}

/// An [`AsyncStore`] on `PostgreSQL`, through a pool of connections.
///
/// Cheap to share: clone it (the pool is reference-counted) or put it in an
/// `Arc`. Each call takes a connection from the pool for its own duration.
/// Its tables live in the connections' current schema (the first schema of
/// their `search_path` that exists): [`connect`](PgStore::connect) and
/// [`from_pool`](PgStore::from_pool) create them there in an empty schema,
/// check them in one of ours, upgrade one of ours of version 1, and refuse
/// anything else. See the crate docs for the schema and the commit.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: Pool,
    schema: String,
    /// The statement that opens a commit's transaction (with its lock
    /// timeout), sent in the round trip of `BEGIN`.
    pub(crate) begin: String,
    /// Read statements, commits and conflicts so far, shared by the clones.
    calls: Arc<[AtomicU64; 3]>,
}

/// What a [`PgStore`] and its clones were asked so far: for the
/// benchmark's profile (`benches/lifecycle.rs`), not part of the API.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Calls {
    /// Read statements run (a listing may run several).
    pub reads: u64,
    /// Commits of at least one record.
    pub commits: u64,
    /// Commits that ended in a conflict.
    pub conflicts: u64,
}

impl PgStore {
    /// Connects to the server `config` names (without TLS), with a pool of
    /// [`Options::max_connections`] connections, and prepares the schema (see
    /// [`from_pool`](PgStore::from_pool)).
    ///
    /// For TLS, build a `deadpool_postgres::Pool` with the connector of your
    /// choice and pass it to [`from_pool`](PgStore::from_pool).
    pub async fn connect(
        config: tokio_postgres::Config,
        options: Options,
    ) -> Result<PgStore, PgStoreError> {
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                // A connection the server closed (a restart) is replaced
                // when it is next taken.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .build()
            .map_err(|err| PgStoreError::Schema {
                schema: String::new(),
                detail: format!("the pool cannot be built: {err}"),
            })?;
        PgStore::from_pool(pool, options).await
    }

    /// A store on the connections of `pool`: creates the schema if the
    /// connections' current schema is empty (in one transaction), checks it
    /// if it is ours at [`SCHEMA_VERSION`](crate::SCHEMA_VERSION), upgrades
    /// it in place (in one transaction) if it is ours, whole, at version 1,
    /// and otherwise refuses it without writing anything:
    /// [`PgStoreError::NewerSchema`] for a schema of a newer version of this
    /// crate, [`PgStoreError::Schema`] for anything else, and
    /// [`PgStoreError::NoSchema`] when the `search_path` names no schema that
    /// exists.
    pub async fn from_pool(pool: Pool, options: Options) -> Result<PgStore, PgStoreError> {
        let mut client = pool.get().await?;
        let schema = crate::schema::prepare(&mut client).await?;
        drop(client);
        let millis = options.lock_timeout.as_millis().clamp(1, i32::MAX as u128);
        Ok(PgStore {
            pool,
            schema,
            begin: format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = {millis}"
            ),
            calls: Arc::default(),
        })
    }

    /// The calls this store and its clones answered so far (for the
    /// benchmark).
    #[doc(hidden)]
    #[must_use]
    pub fn calls(&self) -> Calls {
        let [reads, commits, conflicts] = self
            .calls
            .as_ref()
            .each_ref()
            .map(|n| n.load(Ordering::Relaxed));
        Calls {
            reads,
            commits,
            conflicts,
        }
    }

    /// The `PostgreSQL` schema the store's tables are in.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The connection pool (its status, its size).
    #[must_use]
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Every service, by name: a full scan, for tests and audits.
    pub async fn services(&self) -> Result<Vec<Service>, PgStoreError> {
        let client = self.pool.get().await?;
        let rows = client.query(ALL_SERVICES, &[]).await?;
        rows.iter().map(read_service).collect()
    }

    /// Every request, by id: a full scan, for tests and audits.
    pub async fn requests(&self) -> Result<Vec<ChangeRequest>, PgStoreError> {
        let client = self.pool.get().await?;
        let rows = client.query(ALL_REQUESTS, &[]).await?;
        rows.iter().map(|row| read_request(row, 0)).collect()
    }

    /// Every operator's assignment, by id: a full scan, for tests and
    /// audits.
    pub async fn assignments(&self) -> Result<Vec<Assignment>, PgStoreError> {
        let client = self.pool.get().await?;
        let rows = client.query(ALL_ASSIGNMENTS, &[]).await?;
        rows.iter().map(read_assignment).collect()
    }

    /// Runs `sql` with `params` on a pooled connection, through its cache of
    /// prepared statements.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, PgStoreError> {
        self.calls[0].fetch_add(1, Ordering::Relaxed);
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, params).await?)
    }
}

/// Shows the schema and the pool's state; never the connection settings.
impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl AsyncStore for PgStore {
    type Error = PgStoreError;

    async fn service(&self, name: &ServiceName) -> Result<Option<Service>, PgStoreError> {
        let rows = self.query(SERVICE, &[&name.as_str()]).await?;
        rows.first().map(read_service).transpose()
    }

    async fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, PgStoreError> {
        let rows = self.query(REQUEST, &[&id.to_string()]).await?;
        rows.first().map(|row| read_request(row, 0)).transpose()
    }

    async fn contacts_of(
        &self,
        customer: CustomerId,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<(ServiceName, Roles)>, PgStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after = after.map_or("", ServiceName::as_str);
        let rows = self
            .query(
                CONTACTS_OF,
                &[
                    &customer.as_str(),
                    &after,
                    &sql_limit(limit.saturating_mul(3)),
                ],
            )
            .await?;
        let mut page: Vec<(ServiceName, Roles)> = Vec::with_capacity(limit);
        for row in &rows {
            let service = read_service(row)?;
            if page.last().is_some_and(|(name, _)| name == service.name()) {
                continue; // the same service, under another of the roles
            }
            let roles = service.roles_of(customer);
            if roles.is_empty() || service.is_removed() {
                return Err(PgStoreError::Corrupt {
                    table: "services",
                    key: service.name().to_string(),
                    detail: format!(
                        "a holder index lists it for {customer}, who holds no role of a live \
                         service there"
                    ),
                });
            }
            page.push((service.name().clone(), roles));
            if page.len() == limit {
                break;
            }
        }
        Ok(page)
    }

    async fn requests_of(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, PgStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let page = RequestPage {
            store: self,
            customer,
            filter,
            now,
            limit,
        };
        match filter.service_name() {
            Some(service) => page.by_service(service, after).await,
            None => page.by_parties(after).await,
        }
    }

    async fn due_for_expiry(
        &self,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, PgStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Position { at: (s, ns), id } = Position::earliest_after(after);
        let until = unix(now);
        let rows = self
            .query(
                DUE_FOR_EXPIRY,
                &[&s, &ns, &id, &until.0, &until.1, &sql_limit(limit)],
            )
            .await?;
        rows.iter().map(|row| read_request(row, 0)).collect()
    }

    async fn requests_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, PgStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Position { at: (s, ns), id } = Position::history_after(after);
        let rows = self
            .query(
                REQUESTS_ON,
                &[&name.as_str(), &s, &ns, &id, &sql_limit(limit)],
            )
            .await?;
        rows.iter().map(|row| read_request(row, 0)).collect()
    }

    async fn assignments_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<Assignment>, PgStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Position { at: (s, ns), id } = Position::history_after(after);
        let rows = self
            .query(
                ASSIGNMENTS_ON,
                &[&name.as_str(), &s, &ns, &id, &sql_limit(limit)],
            )
            .await?;
        rows.iter().map(read_assignment).collect()
    }

    async fn commit(&self, changes: Changes) -> Result<(), CommitError<PgStoreError>> {
        if !changes.is_empty() {
            self.calls[1].fetch_add(1, Ordering::Relaxed);
        }
        let result = crate::commit::commit(self, changes).await;
        if matches!(result, Err(CommitError::Conflict)) {
            self.calls[2].fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

/// One page of "my requests" being read. Each query is one statement, so
/// it reads one snapshot: a party row and the request it is checked against
/// always agree unless the database is corrupt. A page that needs several
/// queries (the filter passed over rows) goes on from the last row read,
/// whose key never changes, so no request comes twice.
struct RequestPage<'a> {
    store: &'a PgStore,
    customer: CustomerId,
    filter: &'a RequestFilter,
    now: OffsetDateTime,
    limit: usize,
}

impl RequestPage<'_> {
    /// Through `requests_service`: the service's requests from `after` on,
    /// newest first, those the filter lists, read by batches until the page
    /// is full or the service has no more.
    async fn by_service(
        &self,
        service: &ServiceName,
        after: Option<RequestKey>,
    ) -> Result<Vec<ChangeRequest>, PgStoreError> {
        let mut from = Position::newest_after(after);
        let mut page = Vec::new();
        let mut batch = self.limit.min(MAX_BATCH);
        loop {
            let Position { at: (s, ns), id } = &from;
            let rows = self
                .store
                .query(
                    SERVICE_REQUESTS,
                    &[&service.as_str(), s, ns, id, &sql_limit(batch)],
                )
                .await?;
            let more = rows.len() == batch;
            for row in &rows {
                let request = read_request(row, 0)?;
                from = Position::of(RequestKey {
                    at: request.opened_at(),
                    id: request.id(),
                });
                if self.filter.matches(&request, self.customer, self.now) {
                    page.push(request);
                    if page.len() == self.limit {
                        return Ok(page);
                    }
                }
            }
            if !more {
                return Ok(page);
            }
            // Rows were passed over: read further ahead.
            batch = (batch * 2).clamp(MIN_BATCH, MAX_BATCH);
        }
    }

    /// Through `request_parties_listing`: the customer's rows in every
    /// (part, recorded state) range [`RequestFilter::index_ranges`] names,
    /// merged newest first from `after` on, each joined to its request; each
    /// row checked against its request ([`PartyRow::check`]), each request
    /// kept once if [`RequestFilter::matches`] lists it, until the page is
    /// full or the rows end.
    async fn by_parties(
        &self,
        after: Option<RequestKey>,
    ) -> Result<Vec<ChangeRequest>, PgStoreError> {
        let ranges = party_ranges(self.filter);
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let sql = requests_of_sql(ranges.len());
        let customer = self.customer.as_str();
        let mut from = Position::newest_after(after);
        let mut page = Vec::new();
        let mut current: Option<ChangeRequest> = None;
        let mut batch = self.limit.clamp(MIN_BATCH, MAX_BATCH);
        loop {
            let Position { at: (s, ns), id } = from.clone();
            let limit = sql_limit(batch);
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&customer, &s, &ns, &id, &limit];
            for (part, state) in &ranges {
                params.push(part);
                params.push(state);
            }
            let rows = self.store.query(&sql, &params).await?;
            let more = rows.len() == batch;
            for row in &rows {
                let party = PartyRow::read(row)?;
                from = Position {
                    at: party.opened,
                    id: party.request_id.clone(),
                };
                if let Some(request) = current
                    .as_ref()
                    .filter(|r| r.id().to_string() == party.request_id)
                {
                    // Another part of the request just read.
                    party.check(request)?;
                    continue;
                }
                if row.try_get::<_, Option<&str>>(6).ok().flatten().is_none() {
                    return Err(party.corrupt("the request does not exist"));
                }
                let request = read_request(row, 6)?;
                party.check(&request)?;
                if self.filter.matches(&request, self.customer, self.now) {
                    page.push(request.clone());
                    if page.len() == self.limit {
                        return Ok(page);
                    }
                }
                current = Some(request);
            }
            if !more {
                return Ok(page);
            }
            batch = (batch * 2).min(MAX_BATCH);
        }
    }
}
