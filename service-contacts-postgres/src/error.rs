//! [`PgStoreError`]: what can go wrong in a [`PgStore`](crate::PgStore).

use crate::schema::SCHEMA_VERSION;

/// What can go wrong in a [`PgStore`](crate::PgStore).
///
/// No variant carries a connection string or a password: the client's and
/// the pool's errors describe the failure, not the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// `PostgreSQL` or the connection to it failed (a statement refused, the
    /// connection lost before the transaction was committed, ...). Nothing
    /// was written by a [`commit`](service_contacts::AsyncStore::commit)
    /// that reports it.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool (the server is unreachable,
    /// or every connection stayed busy past the pool's wait timeout).
    #[error("connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The connection was lost while `COMMIT` was on its way: the server may
    /// have committed the transaction or not. The host must read the records
    /// back ([`service`](service_contacts::AsyncStore::service),
    /// [`request`](service_contacts::AsyncStore::request)) before it acts on
    /// them again; the driver does, as it decides every action afresh.
    #[error(
        "the connection was lost during COMMIT: the changes may or may not be \
         stored; read them back before acting again: {0}"
    )]
    OutcomeUnknown(#[source] tokio_postgres::Error),
    /// A stored row does not parse back into a valid record, or disagrees
    /// with the record it indexes. Nothing was written or repaired.
    #[error("corrupt row in {table} ({key}): {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's key as stored (service name, request id, or the
        /// customer of a `request_parties` row).
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// The schema the connections use holds something other than this
    /// store's tables (another application's, a damaged schema of ours of
    /// this version or of an older one, which is then not upgraded, or a
    /// relation where the upgrade would create one). Nothing was written.
    #[error(
        "schema {schema:?}: not a service-contacts schema of version {SCHEMA_VERSION}: {detail}"
    )]
    Schema {
        /// The schema (`current_schema()` of the connections).
        schema: String,
        /// What was found instead.
        detail: String,
    },
    /// The schema was made by a newer version of this crate: this one does
    /// not know how to read it. Nothing was written; upgrade the crate.
    #[error(
        "schema {schema:?} has service-contacts schema version {found}, newer than \
         {SCHEMA_VERSION}, the newest this store knows"
    )]
    NewerSchema {
        /// The schema.
        schema: String,
        /// The version found.
        found: i32,
    },
    /// The connections' `search_path` names no schema that exists, so there
    /// is nowhere to create the tables.
    #[error("the search_path names no existing schema: create one or set search_path")]
    NoSchema,
    /// A record cannot be stored (a number does not fit a column, or its
    /// JSON form cannot be made). Nothing was written.
    #[error("cannot store {what}: {detail}")]
    Unstorable {
        /// The record.
        what: String,
        /// Why.
        detail: String,
    },
}
