//! The tables and indexes, and how a schema is recognised or created.

use deadpool_postgres::GenericClient;

use crate::PgStoreError;

/// The application a schema's marker row names: `service-contacts`.
pub const APPLICATION: &str = "service-contacts";

/// The version of the schema this crate creates and reads.
pub const SCHEMA_VERSION: i32 = 1;

/// The marker table: one row, the application and its schema version.
pub(crate) const MARKER: &str = "service_contacts_schema";

/// The schema, created in one transaction in an empty `PostgreSQL` schema.
///
/// Keys and the columns the listings order by are `COLLATE "C"`: byte
/// order, the order of Rust's `str`, whatever the database's locale, so a
/// page's cursor (`name > $after`) and the order of its rows agree.
const SCHEMA: &str = r#"
CREATE TABLE service_contacts_schema (
    application TEXT NOT NULL PRIMARY KEY,
    version     INTEGER NOT NULL
);

CREATE TABLE services (
    name    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    admin   TEXT COLLATE "C" NOT NULL,
    tech    TEXT COLLATE "C" NOT NULL,
    billing TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    last_admin   TEXT,
    last_tech    TEXT,
    last_billing TEXT,
    removed BOOLEAN NOT NULL
);
CREATE INDEX services_admin ON services (admin, name) WHERE NOT removed;
CREATE INDEX services_tech ON services (tech, name) WHERE NOT removed;
CREATE INDEX services_billing ON services (billing, name) WHERE NOT removed;

CREATE TABLE requests (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    service     TEXT COLLATE "C" NOT NULL,
    open        BOOLEAN NOT NULL,
    opened_s    BIGINT NOT NULL,
    opened_ns   BIGINT NOT NULL,
    deadline_s  BIGINT NOT NULL,
    deadline_ns BIGINT NOT NULL,
    version     BIGINT NOT NULL CHECK (version >= 1),
    doc         JSONB NOT NULL
);
CREATE INDEX requests_due ON requests (deadline_s, deadline_ns, id) WHERE open;
CREATE INDEX requests_service ON requests (service, opened_s DESC, opened_ns DESC, id);

CREATE TABLE request_parties (
    customer   TEXT COLLATE "C" NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL REFERENCES requests (id),
    part       TEXT NOT NULL CHECK (part IN ('requester', 'incoming', 'outgoing', 'waiting')),
    state      TEXT NOT NULL CHECK (state IN ('validatingByCustomers', 'done', 'refused',
                                              'aborted', 'expired', 'error')),
    opened_s   BIGINT NOT NULL,
    opened_ns  BIGINT NOT NULL,
    PRIMARY KEY (request_id, customer, part)
);
CREATE INDEX request_parties_listing
    ON request_parties (customer, part, state, opened_s DESC, opened_ns DESC, request_id);
"#;

/// Each table of the schema with its columns, in order: what a schema of
/// ours must have.
const TABLES: [(&str, &[&str]); 4] = [
    (MARKER, &["application", "version"]),
    (
        "services",
        &[
            "name",
            "admin",
            "tech",
            "billing",
            "version",
            "last_admin",
            "last_tech",
            "last_billing",
            "removed",
        ],
    ),
    (
        "requests",
        &[
            "id",
            "service",
            "open",
            "opened_s",
            "opened_ns",
            "deadline_s",
            "deadline_ns",
            "version",
            "doc",
        ],
    ),
    (
        "request_parties",
        &[
            "customer",
            "request_id",
            "part",
            "state",
            "opened_s",
            "opened_ns",
        ],
    ),
];

/// The indexes of the schema, besides the primary keys.
pub(crate) const INDEXES: [&str; 6] = [
    "services_admin",
    "services_tech",
    "services_billing",
    "requests_due",
    "requests_service",
    "request_parties_listing",
];

/// What [`inspect`] found in the current schema.
enum Found {
    /// No table, view, sequence or index: an empty schema.
    Empty,
    /// Ours, at [`SCHEMA_VERSION`].
    Ours,
    /// Ours, at a newer version.
    Newer(i32),
    /// Something else, described.
    Foreign(String),
}

/// Looks at the current schema without writing to it; `Err(NoSchema)` when
/// the `search_path` names none that exists.
async fn inspect(client: &impl GenericClient) -> Result<(String, Found), PgStoreError> {
    let row = client.query_one("SELECT current_schema()", &[]).await?;
    let schema: String = row
        .try_get::<_, Option<String>>(0)?
        .ok_or(PgStoreError::NoSchema)?;
    let relations: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1) \
             ORDER BY c.relname",
            &[&schema],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    if relations.is_empty() {
        return Ok((schema, Found::Empty));
    }
    if !relations.iter().any(|r| r == MARKER) {
        let shown: Vec<&str> = relations.iter().take(5).map(String::as_str).collect();
        let more = relations.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return Ok((
            schema,
            Found::Foreign(format!(
                "no {MARKER} table, but another application's relations: {}{more}",
                shown.join(", ")
            )),
        ));
    }
    let found = check(client, &schema).await?;
    Ok((schema, found))
}

/// The marker and the tables and indexes of a schema that has a marker table.
async fn check(client: &impl GenericClient, schema: &str) -> Result<Found, PgStoreError> {
    let columns_of = |table: &'static str| async move {
        let rows = client
            .query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&schema, &table],
            )
            .await?;
        rows.iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<Result<Vec<String>, _>>()
    };
    let (marker_table, marker_columns) = TABLES[0];
    if columns_of(marker_table).await? != marker_columns {
        return Ok(Found::Foreign(format!(
            "table {MARKER} is not this store's marker"
        )));
    }
    let marker = client
        .query(
            "SELECT application, version FROM service_contacts_schema",
            &[],
        )
        .await?;
    let [row] = marker.as_slice() else {
        return Ok(Found::Foreign(format!(
            "table {MARKER} has {} rows, expected one",
            marker.len()
        )));
    };
    let (application, version): (String, i32) = (row.try_get(0)?, row.try_get(1)?);
    if application != APPLICATION {
        return Ok(Found::Foreign(format!(
            "table {MARKER} names application {application:?}"
        )));
    }
    if version > SCHEMA_VERSION {
        return Ok(Found::Newer(version));
    }
    if version != SCHEMA_VERSION {
        return Ok(Found::Foreign(format!("it has schema version {version}")));
    }
    for (table, expected) in &TABLES[1..] {
        let columns = columns_of(table).await?;
        if columns.is_empty() {
            return Ok(Found::Foreign(format!("table {table} is missing")));
        }
        if columns != *expected {
            return Ok(Found::Foreign(format!(
                "table {table} has columns ({}), expected ({})",
                columns.join(", "),
                expected.join(", ")
            )));
        }
    }
    let indexes: Vec<String> = client
        .query(
            "SELECT indexname::text FROM pg_catalog.pg_indexes WHERE schemaname = $1",
            &[&schema],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    if let Some(missing) = INDEXES.iter().find(|i| !indexes.iter().any(|x| x == *i)) {
        return Ok(Found::Foreign(format!("index {missing} is missing")));
    }
    Ok(Found::Ours)
}

/// Makes sure the current schema is ours: creates it in an empty schema (in
/// one transaction, under an advisory lock so that two stores opening at once
/// create it once), checks it otherwise, and refuses anything else without
/// writing. Returns the schema's name.
pub(crate) async fn prepare(
    client: &mut deadpool_postgres::Client,
) -> Result<String, PgStoreError> {
    let (schema, found) = inspect(&*client).await?;
    match found {
        Found::Ours => return Ok(schema),
        Found::Empty => {}
        Found::Newer(found) => return Err(PgStoreError::NewerSchema { schema, found }),
        Found::Foreign(detail) => return Err(PgStoreError::Schema { schema, detail }),
    }
    let tx = client.transaction().await?;
    // One creator per schema at a time; the lock ends with the transaction.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('service-contacts:' || current_schema()))",
        &[],
    )
    .await?;
    // Another store may have created it while this one waited.
    let (schema, found) = inspect(&tx).await?;
    match found {
        Found::Ours => Ok(schema),
        Found::Empty => {
            tx.batch_execute(SCHEMA).await?;
            tx.execute(
                "INSERT INTO service_contacts_schema (application, version) VALUES ($1, $2)",
                &[&APPLICATION, &SCHEMA_VERSION],
            )
            .await?;
            tx.commit().await?;
            Ok(schema)
        }
        Found::Newer(found) => Err(PgStoreError::NewerSchema { schema, found }),
        Found::Foreign(detail) => Err(PgStoreError::Schema { schema, detail }),
    }
}
