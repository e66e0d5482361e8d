//! Paged and filtered listings (R6, R29, R35, R45): page sizes, opaque
//! cursors, the filters of "my requests" and the rows a list page shows.

use core::fmt;
use core::str::FromStr;

use time::OffsetDateTime;

use crate::token::{base64url_decode, base64url_encode};
use crate::{
    ChangeRequest, CustomerId, HistoryKey, RequestId, RequestState, Role, Roles, ServiceName,
    StateName,
};

/// How many rows a page holds: from 1 to [`PageSize::MAX`].
///
/// ```
/// use service_contacts::PageSize;
///
/// assert_eq!(PageSize::default().get(), 50);
/// assert_eq!(PageSize::new(20)?.get(), 20);
/// assert!(PageSize::new(0).is_err());
/// assert_eq!(
///     PageSize::new(501).unwrap_err().to_string(),
///     "a page holds 1 to 500 rows, not 501"
/// );
/// # Ok::<(), service_contacts::PageSizeError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageSize(u16);

impl PageSize {
    /// The most rows a page may hold: 500. The crate caps every page, so no
    /// listing can be asked to load a customer's whole history at once.
    pub const MAX: usize = 500;

    /// A page of `rows` rows.
    ///
    /// # Errors
    ///
    /// [`PageSizeError`] for 0 or more than [`PageSize::MAX`].
    pub fn new(rows: usize) -> Result<PageSize, PageSizeError> {
        match u16::try_from(rows) {
            Ok(n) if n >= 1 && rows <= PageSize::MAX => Ok(PageSize(n)),
            _ => Err(PageSizeError { rows }),
        }
    }

    /// The number of rows.
    #[must_use]
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for PageSize {
    /// 50 rows.
    fn default() -> Self {
        PageSize(50)
    }
}

/// A page size of 0 or more than [`PageSize::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a page holds 1 to 500 rows, not {rows}")]
pub struct PageSizeError {
    /// The size asked for.
    pub rows: usize,
}

/// One page of a listing: its rows, in the listing's order, and the cursor
/// that continues after the last of them (`None` on the last page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Where the next page starts; `None` if there is no more.
    pub next: Option<Cursor>,
}

/// The listings a [`Cursor`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Listing {
    /// "My contacts" (R6): by service name.
    Contacts,
    /// "My requests" (R35): newest first.
    Requests,
    /// Requests due for expiry (R29): earliest deadline first.
    DueForExpiry,
    /// A service's full history (R47): newest first.
    History,
}

impl Listing {
    const fn tag(self) -> u8 {
        match self {
            Listing::Contacts => 1,
            Listing::Requests => 2,
            Listing::DueForExpiry => 3,
            Listing::History => 4,
        }
    }

    const fn from_tag(tag: u8) -> Option<Listing> {
        match tag {
            1 => Some(Listing::Contacts),
            2 => Some(Listing::Requests),
            3 => Some(Listing::DueForExpiry),
            4 => Some(Listing::History),
            _ => None,
        }
    }

    const fn as_str(self) -> &'static str {
        match self {
            Listing::Contacts => "my contacts",
            Listing::Requests => "my requests",
            Listing::DueForExpiry => "due for expiry",
            Listing::History => "a service's history",
        }
    }
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A position in a request listing: the row's time (its opening for "my
/// requests", its deadline for "due for expiry") and its id, which breaks
/// ties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestKey {
    /// The row's time.
    pub at: OffsetDateTime,
    /// The row's request.
    pub id: RequestId,
}

/// Where a page starts: strictly after the last row of the page before.
///
/// Opaque to the host's users: a URL-safe text (unpadded base64url) to hand
/// back as it is. It names its listing and, for the customer listings, the
/// customer, so a cursor of another listing or another customer is refused
/// ([`CursorError`]) instead of paging through someone else's rows. It is
/// not a secret and not signed: what it lets a caller do is start a listing
/// they may read anyway at another position.
///
/// Paging is by key (keyset), not by offset, so pages stay stable while
/// other commits land: a row that does not change between two page reads is
/// listed exactly once, whatever is added or removed elsewhere; a row that
/// changes in between (a request whose state moves it in or out of a filter,
/// a service whose contacts change) may appear in its new place or not at
/// all, never twice on the same position.
///
/// ```
/// use service_contacts::{Cursor, CursorError, Listing};
///
/// let err = "not a cursor".parse::<Cursor>().unwrap_err();
/// assert_eq!(err, CursorError::NotACursor);
/// assert_eq!(err.to_string(), "not a listing cursor");
/// # let _ = Listing::Contacts;
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cursor {
    listing: Listing,
    customer: Option<CustomerId>,
    after: After,
}

/// The last row a cursor's page ended on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum After {
    Service(ServiceName),
    Request(RequestKey),
    /// A position in a service's history: the service and the key.
    History(ServiceName, HistoryKey),
}

/// The version byte of the cursor format.
const CURSOR_VERSION: u8 = 1;

impl Cursor {
    pub(crate) fn after_service(customer: CustomerId, name: ServiceName) -> Cursor {
        Cursor {
            listing: Listing::Contacts,
            customer: Some(customer),
            after: After::Service(name),
        }
    }

    pub(crate) fn after_request(
        listing: Listing,
        customer: Option<CustomerId>,
        key: RequestKey,
    ) -> Cursor {
        Cursor {
            listing,
            customer,
            after: After::Request(key),
        }
    }

    pub(crate) fn after_entry(service: ServiceName, key: HistoryKey) -> Cursor {
        Cursor {
            listing: Listing::History,
            customer: None,
            after: After::History(service, key),
        }
    }

    /// The listing this cursor pages.
    #[must_use]
    pub fn listing(&self) -> Listing {
        self.listing
    }

    /// Checks that this cursor continues `listing` for `customer`.
    fn check(&self, listing: Listing, customer: Option<CustomerId>) -> Result<(), CursorError> {
        if self.listing != listing {
            return Err(CursorError::WrongListing {
                expected: listing,
                found: self.listing,
            });
        }
        if self.customer != customer {
            return Err(CursorError::OtherCustomer);
        }
        Ok(())
    }

    /// The service a "my contacts" page of `customer` starts after.
    pub(crate) fn service_for(&self, customer: CustomerId) -> Result<&ServiceName, CursorError> {
        self.check(Listing::Contacts, Some(customer))?;
        match &self.after {
            After::Service(name) => Ok(name),
            _ => Err(CursorError::Malformed("a position of another listing")),
        }
    }

    /// The entry a page of the history of `service` starts after.
    pub(crate) fn entry_for(&self, service: &ServiceName) -> Result<HistoryKey, CursorError> {
        self.check(Listing::History, None)?;
        match &self.after {
            After::History(name, key) if name == service => Ok(*key),
            After::History(..) => Err(CursorError::OtherService),
            _ => Err(CursorError::Malformed("a position of another listing")),
        }
    }

    /// The request a page of `listing` (of `customer`) starts after.
    pub(crate) fn request_for(
        &self,
        listing: Listing,
        customer: Option<CustomerId>,
    ) -> Result<RequestKey, CursorError> {
        self.check(listing, customer)?;
        match &self.after {
            After::Request(key) => Ok(*key),
            _ => Err(CursorError::Malformed("a position of another listing")),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![CURSOR_VERSION, self.listing.tag()];
        match self.customer {
            Some(customer) => {
                let text = customer.as_str().as_bytes();
                out.push(u8::try_from(text.len()).unwrap_or(0));
                out.extend_from_slice(text);
            }
            None => out.push(0),
        }
        match &self.after {
            After::Service(name) => push_name(&mut out, name),
            After::Request(key) => push_key(&mut out, key.at, key.id.as_bytes()),
            After::History(name, key) => {
                push_name(&mut out, name);
                push_key(&mut out, key.at, &key.id);
            }
        }
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Cursor, CursorError> {
        let mut rest = bytes;
        let mut take = |n: usize| -> Result<&[u8], CursorError> {
            if rest.len() < n {
                return Err(CursorError::Truncated);
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let version = take(1)?[0];
        if version != CURSOR_VERSION {
            return Err(CursorError::UnknownVersion(version));
        }
        let listing =
            Listing::from_tag(take(1)?[0]).ok_or(CursorError::Malformed("an unknown listing"))?;
        let len = usize::from(take(1)?[0]);
        let customer = if len == 0 {
            None
        } else {
            let text = core::str::from_utf8(take(len)?)
                .map_err(|_| CursorError::Malformed("a customer that is not text"))?;
            let customer = CustomerId::parse(text)
                .ok()
                .filter(|c| c.as_str() == text)
                .ok_or(CursorError::Malformed("a customer that is not canonical"))?;
            Some(customer)
        };
        let after = match listing {
            Listing::Contacts => After::Service(name(&mut take)?),
            Listing::Requests | Listing::DueForExpiry => {
                let (at, id) = key(&mut take)?;
                After::Request(RequestKey {
                    at,
                    id: RequestId::from_bytes(id),
                })
            }
            Listing::History => {
                let service = name(&mut take)?;
                let (at, id) = key(&mut take)?;
                After::History(service, HistoryKey { at, id })
            }
        };
        let customer_listing = matches!(listing, Listing::Contacts | Listing::Requests);
        if customer.is_some() != customer_listing {
            return Err(CursorError::Malformed(
                "a customer where none belongs, or none",
            ));
        }
        if !rest.is_empty() {
            return Err(CursorError::Malformed("bytes after the position"));
        }
        Ok(Cursor {
            listing,
            customer,
            after,
        })
    }
}

/// Writes a service name, its length first.
fn push_name(out: &mut Vec<u8>, name: &ServiceName) {
    let text = name.as_str().as_bytes();
    out.push(u8::try_from(text.len()).unwrap_or(0));
    out.extend_from_slice(text);
}

/// Writes a listing position: a time in nanoseconds and an id's bytes.
fn push_key(out: &mut Vec<u8>, at: OffsetDateTime, id: &[u8; 16]) {
    out.extend_from_slice(&at.unix_timestamp_nanos().to_be_bytes());
    out.extend_from_slice(id);
}

/// Reads what [`push_name`] wrote.
fn name<'b>(
    take: &mut impl FnMut(usize) -> Result<&'b [u8], CursorError>,
) -> Result<ServiceName, CursorError> {
    let len = usize::from(take(1)?[0]);
    let text = core::str::from_utf8(take(len)?)
        .map_err(|_| CursorError::Malformed("a service name that is not text"))?;
    ServiceName::parse(text).map_err(|_| CursorError::Malformed("an invalid service name"))
}

/// Reads what [`push_key`] wrote.
fn key<'b>(
    take: &mut impl FnMut(usize) -> Result<&'b [u8], CursorError>,
) -> Result<(OffsetDateTime, [u8; 16]), CursorError> {
    let nanos = i128::from_be_bytes(take(16)?.try_into().map_err(|_| CursorError::Truncated)?);
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| CursorError::Malformed("a time out of range"))?;
    let id: [u8; 16] = take(16)?.try_into().map_err(|_| CursorError::Truncated)?;
    Ok((at, id))
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base64url_encode(&self.to_bytes()))
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({self})")
    }
}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > 512 {
            return Err(CursorError::NotACursor);
        }
        let bytes = base64url_decode(text).ok_or(CursorError::NotACursor)?;
        Cursor::from_bytes(&bytes)
    }
}

/// Why a cursor was refused. Nothing was listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorError {
    /// The text is not a cursor at all (not base64url, or too long).
    #[error("not a listing cursor")]
    NotACursor,
    /// The cursor ends too early.
    #[error("the cursor is truncated")]
    Truncated,
    /// The cursor was made by a format this crate does not know.
    #[error("a cursor of unknown version {0}")]
    UnknownVersion(u8),
    /// The cursor holds something no cursor of this crate holds.
    #[error("the cursor holds {0}")]
    Malformed(&'static str),
    /// The cursor pages another listing.
    #[error("a cursor of {found}, not of {expected}")]
    WrongListing {
        /// The listing asked for.
        expected: Listing,
        /// The cursor's listing.
        found: Listing,
    },
    /// The cursor pages another customer's listing.
    #[error("a cursor of another customer's listing")]
    OtherCustomer,
    /// The cursor pages another service's history.
    #[error("a cursor of another service's history")]
    OtherService,
}

/// A customer's part in a request, for filtering "my requests" (R35).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The customer asked for it (the provider's `askingAccount`; "sent").
    AskedByMe,
    /// It waits for the customer's confirmation now.
    WaitingForMe,
    /// It gives roles to the customer (the provider's `toAccount`;
    /// "received").
    ComingToMe,
    /// It takes a role from the customer (an outgoing contact).
    TakingFromMe,
}

impl Part {
    /// Every part, in a fixed order.
    pub const ALL: [Part; 4] = [
        Part::AskedByMe,
        Part::WaitingForMe,
        Part::ComingToMe,
        Part::TakingFromMe,
    ];

    const fn bit(self) -> u8 {
        match self {
            Part::AskedByMe => 1,
            Part::WaitingForMe => 2,
            Part::ComingToMe => 4,
            Part::TakingFromMe => 8,
        }
    }

    /// Whether `customer` has this part in `request` at `now`.
    #[must_use]
    pub fn of(self, request: &ChangeRequest, customer: CustomerId, now: OffsetDateTime) -> bool {
        match self {
            Part::AskedByMe => request.requester() == customer,
            Part::WaitingForMe => request.waits_for(customer, now),
            Part::ComingToMe => request.incoming() == customer,
            Part::TakingFromMe => request.outgoing_holders().any(|(_, c)| c == customer),
        }
    }
}

const STATES: [StateName; 6] = [
    StateName::ValidatingByCustomers,
    StateName::Done,
    StateName::Refused,
    StateName::Aborted,
    StateName::Expired,
    StateName::Error,
];

const fn state_bit(state: StateName) -> u8 {
    match state {
        StateName::ValidatingByCustomers => 1,
        StateName::Done => 2,
        StateName::Refused => 4,
        StateName::Aborted => 8,
        StateName::Expired => 16,
        StateName::Error => 32,
    }
}

impl ChangeRequest {
    /// The entries a store's party index holds for this request (R35, R45):
    /// each customer with each of their parts, once. The requester asked for
    /// it, the incoming customer has it coming, each outgoing contact has a
    /// role taken, and, while the request is recorded as awaiting (whatever
    /// the deadline), each confirmer still missing is waited for. Each entry
    /// goes with the request's recorded state and opening time; the
    /// requester's, incoming and outgoing entries never change, the waiting
    /// ones change as confirmations land, so a store rewrites them with the
    /// request.
    ///
    /// With [`RequestFilter::index_ranges`], this is all a store needs to
    /// serve "my requests" from one index; both in-crate stores do.
    ///
    /// ```
    /// use service_contacts::{AccountStatus, Edit, Engine, Part, Role, Service, Snapshot};
    /// use time::macros::datetime;
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// # let mut rng = ChaCha20Rng::seed_from_u64(3);
    ///
    /// let (admin, tech) = ("AD1-OVH".parse()?, "TE2-OVH".parse()?);
    /// let service = Service::order("example.com".parse()?, admin);
    /// let edit = Edit::new(service.name().clone()).with(Role::Tech, tech);
    /// let snapshot = Snapshot { service: &service, requests: &[] };
    /// let opened = Engine::default().submit(&edit, admin, snapshot, &|_| AccountStatus::GoodStanding, datetime!(2026-11-21 10:00 UTC), &mut rng)?;
    /// let request = opened.requests().next().unwrap();
    /// let entries: Vec<_> = request.party_entries().collect();
    /// assert_eq!(entries, [
    ///     (admin, Part::AskedByMe),
    ///     (tech, Part::ComingToMe),
    ///     (admin, Part::TakingFromMe),
    ///     (admin, Part::WaitingForMe),
    ///     (tech, Part::WaitingForMe),
    /// ]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn party_entries(&self) -> impl Iterator<Item = (CustomerId, Part)> + '_ {
        self.party_slots().into_iter().flatten()
    }

    /// Whether `customer` with `part` is one of the request's
    /// [`ChangeRequest::party_entries`]: what a store checks a row of its
    /// party index against (a row for an entry the request does not have
    /// would list the request under a filter it does not belong to).
    ///
    /// Unlike [`Part::of`], this takes no time: an entry for
    /// [`Part::WaitingForMe`] holds while the request is recorded as
    /// awaiting the customer, whatever the deadline.
    #[must_use]
    pub fn has_party_entry(&self, customer: CustomerId, part: Part) -> bool {
        self.party_slots().contains(&Some((customer, part)))
    }

    /// [`ChangeRequest::party_entries`], in the same order, in a fixed
    /// array: the requester, the incoming customer, at most three outgoing
    /// contacts and two confirmers waited for. Built in place (a chain of
    /// iterators over small arrays was copied whole at each step).
    pub(crate) fn party_slots(&self) -> [Option<(CustomerId, Part)>; 7] {
        let mut slots = [None; 7];
        slots[0] = Some((self.requester, Part::AskedByMe));
        slots[1] = Some((self.incoming, Part::ComingToMe));
        let mut n = 2;
        for (_, holder) in self.outgoing_holders() {
            // One holder of several roles has one entry.
            let entry = Some((holder, Part::TakingFromMe));
            if !slots[2..n].contains(&entry) {
                slots[n] = entry;
                n += 1;
            }
        }
        if let RequestState::Awaiting(awaiting) = &self.state {
            for customer in awaiting.missing().take(2) {
                slots[n] = Some((customer, Part::WaitingForMe));
                n += 1;
            }
        }
        slots
    }
}

/// Which of a customer's requests "my requests" lists (R35, R45): by state
/// at the time asked, by the customer's part, by service. Within a dimension
/// the choices add up (a request in any of the states chosen); the
/// dimensions narrow each other (in one of the states *and* with one of the
/// parts *and* on the service). A dimension left empty does not filter.
///
/// The provider API's `state`, `askingAccount` and `toAccount` filters are
/// [`RequestFilter::state`], [`Part::AskedByMe`] and [`Part::ComingToMe`];
/// the manager's "sent" and "received" lists are the last two.
///
/// ```
/// use service_contacts::{Part, RequestFilter, StateName};
///
/// // What waits for me, and what I asked for that is still open.
/// let waiting = RequestFilter::all().part(Part::WaitingForMe);
/// let sent_open = RequestFilter::all()
///     .part(Part::AskedByMe)
///     .state(StateName::ValidatingByCustomers);
/// assert_ne!(waiting, sent_open);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RequestFilter {
    states: u8,
    parts: u8,
    service: Option<ServiceName>,
}

impl RequestFilter {
    /// No filter: every request where the customer is a party.
    #[must_use]
    pub fn all() -> RequestFilter {
        RequestFilter::default()
    }

    /// Also lists requests in `state` at the time asked (`expired` includes
    /// a request past its deadline that no sweep has recorded yet; an
    /// awaiting one is `validatingByCustomers` only until its deadline).
    #[must_use]
    pub fn state(mut self, state: StateName) -> RequestFilter {
        self.states |= state_bit(state);
        self
    }

    /// Also lists requests where the customer has `part`.
    #[must_use]
    pub fn part(mut self, part: Part) -> RequestFilter {
        self.parts |= part.bit();
        self
    }

    /// Lists only requests on `service`.
    #[must_use]
    pub fn service(mut self, service: ServiceName) -> RequestFilter {
        self.service = Some(service);
        self
    }

    /// The states chosen (all of them if none was).
    pub fn states(&self) -> impl Iterator<Item = StateName> + '_ {
        STATES
            .into_iter()
            .filter(|s| self.states == 0 || self.states & state_bit(*s) != 0)
    }

    /// The parts chosen (all of them if none was).
    pub fn parts(&self) -> impl Iterator<Item = Part> + '_ {
        Part::ALL
            .into_iter()
            .filter(|p| self.parts == 0 || self.parts & p.bit() != 0)
    }

    /// The service chosen, if any.
    #[must_use]
    pub fn service_name(&self) -> Option<&ServiceName> {
        self.service.as_ref()
    }

    /// The (part, recorded state) ranges of a party index
    /// ([`ChangeRequest::party_entries`]) that hold every request this
    /// filter lists, each once: each part chosen, in the recorded states its
    /// states at `now` can come from (`expired` also from an awaiting request
    /// past its deadline; "waiting for me" only while awaiting). A store
    /// searches these ranges and keeps the rows [`RequestFilter::matches`]
    /// lists.
    ///
    /// ```
    /// use service_contacts::{Part, RequestFilter, StateName};
    ///
    /// let filter = RequestFilter::all().part(Part::AskedByMe).state(StateName::Expired);
    /// assert_eq!(filter.index_ranges(), [
    ///     (Part::AskedByMe, StateName::ValidatingByCustomers),
    ///     (Part::AskedByMe, StateName::Expired),
    /// ]);
    /// assert_eq!(RequestFilter::all().part(Part::WaitingForMe).index_ranges().len(), 1);
    /// ```
    #[must_use]
    pub fn index_ranges(&self) -> Vec<(Part, StateName)> {
        let mut ranges = Vec::with_capacity(8);
        for part in self.parts() {
            for state in self.states() {
                let recorded: &[StateName] = match state {
                    // Past its deadline, an awaiting request reads as
                    // expired (R29).
                    StateName::Expired => &[StateName::ValidatingByCustomers, StateName::Expired],
                    other => &[other],
                };
                for recorded in recorded {
                    let possible =
                        part != Part::WaitingForMe || *recorded == StateName::ValidatingByCustomers;
                    if possible && !ranges.contains(&(part, *recorded)) {
                        ranges.push((part, *recorded));
                    }
                }
            }
        }
        ranges
    }

    /// Whether `request` belongs to `customer`'s filtered listing at `now`:
    /// the definition every [`Store`](crate::Store) implements.
    #[must_use]
    pub fn matches(
        &self,
        request: &ChangeRequest,
        customer: CustomerId,
        now: OffsetDateTime,
    ) -> bool {
        request.is_party(customer)
            && (self.states == 0 || self.states & state_bit(request.state_name_at(now)) != 0)
            && (self.parts == 0 || self.parts().any(|p| p.of(request, customer, now)))
            && self.service.as_ref().is_none_or(|s| s == request.service())
    }
}

/// One row of "my requests" (R35, R45): what a list page shows, without the
/// history; the whole request is one [`Driver::request`](crate::Driver::request)
/// away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSummary {
    /// The request.
    pub id: RequestId,
    /// Its service.
    pub service: ServiceName,
    /// The roles that change hands.
    pub roles: Roles,
    /// Who asked.
    pub requester: CustomerId,
    /// Who receives the roles.
    pub incoming: CustomerId,
    /// Who held each role when it opened, in role order.
    pub outgoing: Vec<(Role, CustomerId)>,
    /// Its state at the time asked (`expired` past the deadline, R29).
    pub state: StateName,
    /// When it opened.
    pub opened_at: OffsetDateTime,
    /// When it expires if still awaiting.
    pub deadline: OffsetDateTime,
    /// Whether it waits for this customer's confirmation (R35).
    pub waits_for_me: bool,
}

impl RequestSummary {
    /// The row of `request` in `customer`'s listing at `now`.
    #[must_use]
    pub fn of(request: &ChangeRequest, customer: CustomerId, now: OffsetDateTime) -> Self {
        RequestSummary {
            id: request.id(),
            service: request.service().clone(),
            roles: request.roles(),
            requester: request.requester(),
            incoming: request.incoming(),
            outgoing: request.outgoing_holders().collect(),
            state: request.state_name_at(now),
            opened_at: request.opened_at(),
            deadline: request.deadline(),
            waits_for_me: request.waits_for(customer, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursors() -> Vec<Cursor> {
        let customer: CustomerId = "AB1-OVH".parse().unwrap();
        let key = RequestKey {
            at: OffsetDateTime::UNIX_EPOCH,
            id: RequestId::from_bytes([9; 16]),
        };
        vec![
            Cursor::after_service(customer, "example.com".parse().unwrap()),
            Cursor::after_request(Listing::Requests, Some(customer), key),
            Cursor::after_request(Listing::DueForExpiry, None, key),
        ]
    }

    #[test]
    fn cursors_round_trip_through_their_text() {
        // R45
        for cursor in cursors() {
            let text = cursor.to_string();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(text.parse::<Cursor>(), Ok(cursor));
        }
    }

    #[test]
    fn every_cut_or_changed_cursor_is_refused_or_another_valid_one() {
        // R45: no panic on any prefix or any one-byte change.
        for cursor in cursors() {
            let bytes = cursor.to_bytes();
            for cut in 0..bytes.len() {
                let text = base64url_encode(&bytes[..cut]);
                assert!(text.parse::<Cursor>().is_err(), "{cut}");
            }
            for at in 0..bytes.len() {
                for value in [0u8, 1, 0x7f, 0xff] {
                    let mut changed = bytes.clone();
                    changed[at] = value;
                    if let Ok(other) = base64url_encode(&changed).parse::<Cursor>() {
                        assert_eq!(other.to_bytes(), changed);
                    }
                }
            }
        }
    }
}
