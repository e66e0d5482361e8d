//! Records as SQL column values, for store implementers: what a relational
//! store writes in its indexed columns, and the checks a row read back
//! must pass.
//!
//! A service is its [`ServiceColumns`]. A store that keeps each request as a document beside a few indexed
//! columns (as `service-contacts-sqlite` and `service-contacts-postgres`
//! do) derives those columns from the request with [`RequestColumns::of`]
//! and, reading a row back, checks them against its document with
//! [`RequestColumns::check`]. Its party index (one row per
//! [`ChangeRequest::party_entries`] entry) names each [`Part`] with
//! [`part_code`]. Instants are two integer columns, [`unix`] seconds and
//! nanoseconds, ordered as the instants are, to the nanosecond; a listing's
//! [`Position`] is such a pair and a request id.
//!
//! Nothing here does I/O; the values are plain integers and text, whatever
//! the database.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::{
    Assignment, ChangeRequest, HistoryKey, Part, RequestFilter, RequestKey, Role, Service,
    StateName, Version,
};

/// The fewest rows a store's listing query asks for when the filter passes
/// over some rows: the rows of a party index are small, so a page of a few
/// requests still reads them in one batch.
pub const MIN_BATCH: usize = 16;

/// The most rows one query of a store's listing asks for; a listing that
/// needs more reads on from where the batch ended, doubling the batch up
/// to this.
pub const MAX_BATCH: usize = 512;

/// The text of the `part` column of a party index row for `part`:
/// `requester`, `incoming`, `outgoing` or `waiting`.
///
/// These are the values the stores write: they never change (a database
/// holds them). [`part_from_code`] reads them back.
///
/// ```
/// use service_contacts::Part;
/// use service_contacts::columns::{part_code, part_from_code};
///
/// assert_eq!(part_code(Part::WaitingForMe), "waiting");
/// for part in Part::ALL {
///     assert_eq!(part_from_code(part_code(part)), Some(part));
/// }
/// assert_eq!(part_from_code("Waiting"), None);
/// ```
#[must_use]
pub const fn part_code(part: Part) -> &'static str {
    match part {
        Part::AskedByMe => "requester",
        Part::ComingToMe => "incoming",
        Part::TakingFromMe => "outgoing",
        Part::WaitingForMe => "waiting",
    }
}

/// The [`Part`] a `part` column names ([`part_code`]), exactly as written;
/// `None` for any other text.
#[must_use]
pub fn part_from_code(code: &str) -> Option<Part> {
    Part::ALL.into_iter().find(|&part| part_code(part) == code)
}

/// Unix seconds and nanoseconds of `at` (two integer columns): ordered as
/// the instants are, to the nanosecond, where a SQL timestamp type may keep
/// microseconds only.
///
/// ```
/// use service_contacts::columns::unix;
/// use time::macros::datetime;
///
/// assert_eq!(unix(datetime!(1970-01-01 00:00:01.5 UTC)), (1, 500_000_000));
/// assert_eq!(unix(datetime!(1969-12-31 23:59:59.25 UTC)), (-1, 250_000_000));
/// ```
#[must_use]
pub fn unix(at: OffsetDateTime) -> (i64, i64) {
    (at.unix_timestamp(), i64::from(at.nanosecond()))
}

/// A version as a signed 64-bit integer column.
///
/// # Errors
///
/// [`VersionOutOfRange`] for a version above `i64::MAX`.
pub fn version(version: Version) -> Result<i64, VersionOutOfRange> {
    i64::try_from(version.get()).map_err(|_| VersionOutOfRange(version))
}

/// A version too large for a signed 64-bit integer column ([`version`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("version {0} exceeds a signed 64-bit integer")]
pub struct VersionOutOfRange(pub Version);

/// A request listing's position as column values: its row's time as
/// [`unix`] seconds and nanoseconds, and its request id as text (which
/// breaks ties, in text order).
///
/// ```
/// use service_contacts::columns::Position;
///
/// // The first page of a newest-first listing starts after the greatest time.
/// let first = Position::newest_after(None);
/// assert_eq!(first, Position { at: (i64::MAX, i64::MAX), id: String::new() });
/// assert_eq!(Position::earliest_after(None).at, (i64::MIN, i64::MIN));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// The row's time: [`unix`] seconds and nanoseconds.
    pub at: (i64, i64),
    /// The row's request id, as text.
    pub id: String,
}

impl Position {
    /// Strictly after `key`, or, without one, before everything in a
    /// listing newest first (ties by id): the greatest time and the empty id.
    #[must_use]
    pub fn newest_after(key: Option<RequestKey>) -> Position {
        key.map_or_else(|| Position::before_all(i64::MAX), Position::of)
    }

    /// Strictly after `key`, or, without one, before everything in a
    /// listing earliest first: the least time and the empty id.
    #[must_use]
    pub fn earliest_after(key: Option<RequestKey>) -> Position {
        key.map_or_else(|| Position::before_all(i64::MIN), Position::of)
    }

    /// Strictly after `key` in a service's history (R47: newest first, ties
    /// by id), or, without one, before everything in it.
    #[must_use]
    pub fn history_after(key: Option<HistoryKey>) -> Position {
        key.map_or_else(
            || Position::before_all(i64::MAX),
            |key| Position {
                at: unix(key.at),
                id: crate::RequestId::from_bytes(key.id).to_string(),
            },
        )
    }

    /// The position of `key`.
    #[must_use]
    pub fn of(key: RequestKey) -> Position {
        Position {
            at: unix(key.at),
            id: key.id.to_string(),
        }
    }

    const fn before_all(time: i64) -> Position {
        Position {
            at: (time, time),
            id: String::new(),
        }
    }
}

/// The columns of a service row: a service is stored as these columns
/// alone, each role's holder and last request in role order ([`Role::ALL`]:
/// admin, tech, billing).
///
/// ```
/// use service_contacts::columns::ServiceColumns;
/// use service_contacts::Service;
///
/// let service = Service::order("example.com".parse()?, "AD1-OVH".parse()?);
/// let row = ServiceColumns::of(&service)?;
/// assert_eq!(row.name, "example.com");
/// assert_eq!(row.holders, ["AD1-OVH", "AD1-OVH", "AD1-OVH"].map(String::from));
/// assert_eq!(row.last, [None, None, None]);
/// assert_eq!((row.version, row.removed), (1, false));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceColumns {
    /// The service's name.
    pub name: String,
    /// Each role's holder, in role order.
    pub holders: [String; 3],
    /// Its version ([`version`]).
    pub version: i64,
    /// Each role's last request id, as text, in role order.
    pub last: [Option<String>; 3],
    /// Whether it is removed ([`Service::is_removed`]).
    pub removed: bool,
}

impl ServiceColumns {
    /// The columns `service` is written with.
    ///
    /// # Errors
    ///
    /// [`VersionOutOfRange`] for a version above `i64::MAX`.
    pub fn of(service: &Service) -> Result<ServiceColumns, VersionOutOfRange> {
        Ok(ServiceColumns {
            name: service.name().as_str().to_owned(),
            holders: Role::ALL.map(|role| service.holder(role).as_str().to_owned()),
            version: version(service.version())?,
            last: Role::ALL.map(|role| service.last_request(role).map(|id| id.to_string())),
            removed: service.is_removed(),
        })
    }
}

/// The indexed columns of a request row: derived from the request when it
/// is written ([`RequestColumns::of`]), and checked against its document
/// when it is read back ([`RequestColumns::check`]).
///
/// ```
/// use service_contacts::columns::{Mismatch, RequestColumns, unix};
/// use service_contacts::{AccountStatus, Edit, Engine, Role, Service, Snapshot};
/// use time::macros::datetime;
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// # let mut rng = ChaCha20Rng::seed_from_u64(3);
///
/// let (admin, tech) = ("AD1-OVH".parse()?, "TE2-OVH".parse()?);
/// let service = Service::order("example.com".parse()?, admin);
/// let edit = Edit::new(service.name().clone()).with(Role::Tech, tech);
/// let snapshot = Snapshot { service: &service, requests: &[] };
/// let now = datetime!(2026-11-21 10:00 UTC);
/// let opened = Engine::default().submit(&edit, admin, snapshot, &|_| AccountStatus::GoodStanding, now, &mut rng)?;
/// let request = opened.requests().next().unwrap();
///
/// let row = RequestColumns::of(request)?;
/// assert_eq!(row.service, "example.com");
/// assert_eq!(row.opened, unix(now));
/// assert!(row.open);
/// assert_eq!(row.check(request), Ok(()));
///
/// // A row whose columns say otherwise is not the document's.
/// let stale = RequestColumns { open: false, ..RequestColumns::of(request)? };
/// assert!(matches!(stale.check(request), Err(Mismatch::Columns(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestColumns {
    /// The request id, as text.
    pub id: String,
    /// The service's name.
    pub service: String,
    /// Whether the request is open ([`ChangeRequest::is_open`]).
    pub open: bool,
    /// When it opened, as [`unix`] seconds and nanoseconds.
    pub opened: (i64, i64),
    /// Its deadline, as [`unix`] seconds and nanoseconds.
    pub deadline: (i64, i64),
    /// Its version ([`version`]).
    pub version: i64,
}

impl RequestColumns {
    /// The columns `request` is written with.
    ///
    /// # Errors
    ///
    /// [`VersionOutOfRange`] for a version above `i64::MAX`.
    pub fn of(request: &ChangeRequest) -> Result<RequestColumns, VersionOutOfRange> {
        Ok(RequestColumns {
            id: request.id().to_string(),
            service: request.service().as_str().to_owned(),
            open: request.is_open(),
            opened: unix(request.opened_at()),
            deadline: unix(request.deadline()),
            version: version(request.version())?,
        })
    }

    /// Whether these columns, read back from a row, are those of
    /// `document`, the request the row holds: a row whose columns disagree
    /// would be found by searches it does not belong to, or missed by those
    /// it does.
    ///
    /// # Errors
    ///
    /// [`Mismatch::Version`] when the document's version does not fit a
    /// column; [`Mismatch::Columns`], with the document's columns, when
    /// they differ from these.
    pub fn check(&self, document: &ChangeRequest) -> Result<(), Mismatch> {
        let expected = RequestColumns::of(document).map_err(Mismatch::Version)?;
        if *self == expected {
            Ok(())
        } else {
            Err(Mismatch::Columns(Box::new(expected)))
        }
    }
}

/// Why a request row's columns are not its document's
/// ([`RequestColumns::check`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The document's version does not fit a column.
    Version(VersionOutOfRange),
    /// The columns differ; these are the document's.
    Columns(Box<RequestColumns>),
}

/// The columns of an operator's assignment row (R46, R47): a store keeps
/// each [`Assignment`] as a document beside these, which its history
/// listing searches (by service, then newest first, ties by id), and checks
/// them against the document read back ([`AssignmentColumns::check`]).
///
/// ```
/// use service_contacts::columns::AssignmentColumns;
/// # use service_contacts::{Driver, Edit, MemoryDirectory, MemoryNotifier, MemoryStore, OperatorAct, Role};
/// # use time::macros::datetime;
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// # let directory = MemoryDirectory::new();
/// # let (admin, tech) = ("AD1-OVH".parse()?, "TE2-OVH".parse()?);
/// # directory.add(admin);
/// # directory.add(tech);
/// # let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory);
/// # let site = "example.com".parse()?;
/// # driver.order_service(&site, admin)?;
/// # let act = OperatorAct::new("jane@support".parse()?, "mailbox lost".parse()?);
/// # let edit = Edit::new(site).with(Role::Tech, tech);
/// # let now = datetime!(2026-11-30 10:00 UTC);
/// let assignment = driver.assign(&edit, &act, now, &mut ChaCha20Rng::seed_from_u64(1))?.value;
/// let row = AssignmentColumns::of(&assignment);
/// assert_eq!(row.service, "example.com");
/// assert_eq!(row.check(&assignment), Ok(()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AssignmentColumns {
    /// The assignment id, as text (32 hex digits, like a request id).
    pub id: String,
    /// The service's name.
    pub service: String,
    /// When it was made, as [`unix`] seconds and nanoseconds.
    pub at: (i64, i64),
}

impl AssignmentColumns {
    /// The columns `assignment` is written with.
    #[must_use]
    pub fn of(assignment: &Assignment) -> AssignmentColumns {
        AssignmentColumns {
            id: assignment.id().to_string(),
            service: assignment.service().as_str().to_owned(),
            at: unix(assignment.at()),
        }
    }

    /// Whether these columns, read back from a row, are those of
    /// `document`, the assignment the row holds.
    ///
    /// # Errors
    ///
    /// The document's own columns, when they differ from these.
    pub fn check(&self, document: &Assignment) -> Result<(), Box<AssignmentColumns>> {
        let expected = AssignmentColumns::of(document);
        if *self == expected {
            Ok(())
        } else {
            Err(Box::new(expected))
        }
    }
}

/// One "my requests" filter for each number of (part, recorded state)
/// ranges a filter without a service can search
/// ([`RequestFilter::index_ranges`]), named `requests_of: N range(s)`: of
/// every set of parts and every set of states, the first with that many
/// ranges. A store whose listing statement varies only by that number (one
/// index search per range) explains one statement per entry in its
/// query-plan tests.
///
/// ```
/// use service_contacts::columns::sample_filters;
///
/// let filters = sample_filters();
/// assert_eq!(filters[0].0, "requests_of: 1 range");
/// assert!(filters.iter().all(|(_, f)| !f.index_ranges().is_empty()));
/// ```
#[must_use]
pub fn sample_filters() -> Vec<(String, RequestFilter)> {
    let parts: Vec<Part> = RequestFilter::all().parts().collect();
    let states: Vec<StateName> = RequestFilter::all().states().collect();
    let chosen = |set: u32, n: usize| set & (1 << n) != 0;
    let mut by_ranges: BTreeMap<usize, RequestFilter> = BTreeMap::new();
    for part_set in 0..1u32 << parts.len() {
        for state_set in 0..1u32 << states.len() {
            let filter = (parts.iter().enumerate())
                .filter(|(n, _)| chosen(part_set, *n))
                .fold(RequestFilter::all(), |filter, (_, &part)| filter.part(part));
            let filter = (states.iter().enumerate())
                .filter(|(n, _)| chosen(state_set, *n))
                .fold(filter, |filter, (_, &state)| filter.state(state));
            let ranges = filter.index_ranges().len();
            if ranges > 0 {
                by_ranges.entry(ranges).or_insert(filter);
            }
        }
    }
    by_ranges
        .into_iter()
        .map(|(ranges, filter)| {
            let plural = if ranges == 1 { "" } else { "s" };
            (format!("requests_of: {ranges} range{plural}"), filter)
        })
        .collect()
}
