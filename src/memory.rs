//! In-memory implementations of the host traits, so the crate runs out of the
//! box: for tests, documentation and examples.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::ops::Bound;
use std::sync::{Mutex, PoisonError, RwLock};

use time::OffsetDateTime;

use crate::host::{
    AsyncDirectory, AsyncNotifier, AsyncStore, CommitError, Directory, Notifier, Store, async_impl,
    ready,
};
use crate::{
    Assignment, AssignmentId, ChangeRequest, Changes, CustomerId, HistoryKey, Message, Part,
    RequestFilter, RequestId, RequestKey, Roles, Service, ServiceName, StateName, Version,
};

/// A [`Store`] in memory, safe to share across threads.
///
/// One lock guards everything, so a commit is atomic and isolated; reads take
/// it shared. Indexes on each role's holder (live services only), on the
/// parties of requests and on the deadlines of open requests make
/// [`contacts_of`](Store::contacts_of), [`requests_of`](Store::requests_of)
/// and [`due_for_expiry`](Store::due_for_expiry) cost in proportion to their
/// answer, not to the size of the store.
///
/// Services are kept in one vector, indexed by name, so a store of a million
/// services costs under 300 bytes each (see the README's performance
/// section). "My requests" is answered from one ordered set per customer, part
/// and state (and per service), merged newest first, so a page costs in
/// proportion to its rows whatever the filter (R45).
///
/// ```
/// use service_contacts::{Changes, MemoryStore, Roles, Service, Store, Write};
///
/// let store = MemoryStore::new();
/// let owner = "AB1-OVH".parse()?;
/// let service = Service::order("example.com".parse()?, owner);
/// store.commit(Changes { services: vec![Write { value: service, expected: None }], ..Changes::default() })?;
/// assert_eq!(store.contacts_of(owner, None, 50)?, [("example.com".parse()?, Roles::ALL)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct MemoryStore {
    tables: RwLock<Tables>,
}

#[derive(Default)]
struct Tables {
    /// Every service ever stored, tombstones included.
    services: Vec<Service>,
    by_name: HashMap<ServiceName, u32>,
    /// For each customer, the slots of the live services where they hold a
    /// role, sorted by service name.
    by_holder: HashMap<CustomerId, Vec<u32>>,
    requests: HashMap<RequestId, ChangeRequest>,
    /// For each customer, their requests by their part ([`ChangeRequest::party_entries`]) and
    /// the recorded state, newest first.
    by_party: HashMap<CustomerId, BTreeSet<PartyEntry>>,
    /// For each service, its requests, newest first.
    by_service: HashMap<ServiceName, BTreeSet<Newest>>,
    /// Deadlines of the requests in the awaiting state.
    deadlines: BTreeSet<(OffsetDateTime, RequestId)>,
    /// Operators' assignments (R46), for each service newest first.
    assignments: HashMap<ServiceName, BTreeMap<(Reverse<i128>, AssignmentId), Assignment>>,
    /// The ids of every assignment, which are never written twice.
    assignment_ids: HashSet<AssignmentId>,
}

/// A request's place in "my requests": newest first, ties by id.
type Newest = (Reverse<i128>, RequestId);

/// One entry of a customer's party index: their part, the recorded state,
/// the request's place. One ordered set per customer holds them all, so a
/// (part, state) is a range of it.
type PartyEntry = (Part, StateName, Newest);

/// A request's place in "my requests", from its opening time.
fn newest(at: OffsetDateTime, id: RequestId) -> Newest {
    (Reverse(at.unix_timestamp_nanos()), id)
}

/// The first and last places of any (part, state) range.
const FIRST: Newest = (Reverse(i128::MAX), RequestId::from_bytes([0; 16]));
const LAST: Newest = (Reverse(i128::MIN), RequestId::from_bytes([0xff; 16]));

/// One entry of the party index: a customer, their part, the recorded
/// state ([`ChangeRequest::party_entries`]).
type PartyKey = (CustomerId, Part, StateName);

/// The entries of one request: at most requester, incoming, three outgoing
/// contacts and two confirmers waited for.
#[derive(Clone, Copy, Default)]
struct PartyKeys {
    keys: [Option<PartyKey>; 7],
}

impl PartyKeys {
    /// The party-index entries of `request`, without allocating.
    fn of(request: &ChangeRequest) -> PartyKeys {
        let state = request.state().name();
        PartyKeys {
            keys: request
                .party_slots()
                .map(|entry| entry.map(|(customer, part)| (customer, part, state))),
        }
    }

    fn iter(&self) -> impl Iterator<Item = PartyKey> + '_ {
        self.keys.iter().flatten().copied()
    }

    fn contains(&self, key: &PartyKey) -> bool {
        self.keys.contains(&Some(*key))
    }
}

/// The customers a service lists as contacts, each once, in role order
/// ([`Contacts::holders`](crate::Contacts::holders)); none once it is
/// removed. At most three, so no vector.
#[derive(Clone, Copy, Default)]
struct Holders([Option<CustomerId>; 3]);

impl Holders {
    fn of(service: &Service) -> Holders {
        let mut out = Holders::default();
        if !service.is_removed() {
            let mut n = 0;
            for (_, holder) in service.contacts().iter() {
                if !out.contains(holder) {
                    out.0[n] = Some(holder);
                    n += 1;
                }
            }
        }
        out
    }

    fn iter(&self) -> impl Iterator<Item = CustomerId> + '_ {
        self.0.iter().flatten().copied()
    }

    fn contains(&self, customer: CustomerId) -> bool {
        self.0.contains(&Some(customer))
    }
}

/// Whether `keys` holds no key twice: by comparing pairs for the few writes
/// of an action (no set to allocate, nothing to hash), through a set for a
/// batch.
fn distinct<T: Eq + std::hash::Hash>(keys: impl ExactSizeIterator<Item = T> + Clone) -> bool {
    let len = keys.len();
    if len <= 8 {
        let mut rest = keys;
        while let Some(key) = rest.next() {
            if rest.clone().any(|other| other == key) {
                return false;
            }
        }
        true
    } else {
        keys.collect::<HashSet<T>>().len() == len
    }
}

/// Sorts service slots by their services' names: by the names' first eight
/// bytes first (cheap integer keys, next to each other in memory), then by
/// the whole names within a run of equal prefixes.
fn sort_by_name(slots: &mut [u32], services: &[Service]) {
    let prefix = |slot: u32| {
        let mut bytes = [0u8; 8];
        let name = services[slot as usize].name().as_str().as_bytes();
        let n = name.len().min(8);
        bytes[..n].copy_from_slice(&name[..n]);
        u64::from_be_bytes(bytes)
    };
    let mut keyed: Vec<(u64, u32)> = slots.iter().map(|s| (prefix(*s), *s)).collect();
    keyed.sort_unstable();
    for run in keyed.chunk_by_mut(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            run.sort_unstable_by(|a, b| {
                services[a.1 as usize]
                    .name()
                    .cmp(services[b.1 as usize].name())
            });
        }
    }
    for (slot, (_, sorted)) in slots.iter_mut().zip(keyed) {
        *slot = sorted;
    }
}

/// The position just after `key` in a newest-first order.
fn newest_after(key: Option<RequestKey>) -> Bound<Newest> {
    key.map_or(Bound::Unbounded, |k| Bound::Excluded(newest(k.at, k.id)))
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store with room for `services` services.
    #[must_use]
    pub fn with_capacity(services: usize) -> MemoryStore {
        let tables = Tables {
            services: Vec::with_capacity(services),
            by_name: HashMap::with_capacity(services),
            ..Tables::default()
        };
        MemoryStore {
            tables: RwLock::new(tables),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        // A commit validates everything before it writes and cannot panic
        // half-way, so the tables are consistent even after a poisoning panic.
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every service record, tombstones included, in no particular order.
    #[must_use]
    pub fn services(&self) -> Vec<Service> {
        self.read().services.clone()
    }

    /// Every request, in no particular order.
    #[must_use]
    pub fn requests(&self) -> Vec<ChangeRequest> {
        self.read().requests.values().cloned().collect()
    }

    /// How many service records the store holds, tombstones included.
    #[must_use]
    pub fn service_count(&self) -> usize {
        self.read().services.len()
    }

    /// Checks every index against a full scan of the records, and returns a
    /// description of the first disagreement. For tests: it costs a scan.
    ///
    /// # Errors
    ///
    /// A description of what disagrees.
    pub fn audit(&self) -> Result<(), String> {
        let tables = self.read();
        let mut holders: HashMap<CustomerId, Vec<u32>> = HashMap::new();
        for (slot, service) in tables.services.iter().enumerate() {
            let slot = u32::try_from(slot).map_err(|_| "too many services")?;
            if tables.by_name.get(service.name()) != Some(&slot) {
                return Err(format!("name index misses {}", service.name()));
            }
            for holder in Holders::of(service).iter() {
                holders.entry(holder).or_default().push(slot);
            }
        }
        if tables.by_name.len() != tables.services.len() {
            return Err("name index has services that are gone".into());
        }
        for slots in holders.values_mut() {
            slots.sort_by(|a, b| tables.name_at(*a).cmp(tables.name_at(*b)));
        }
        if tables.by_holder != holders {
            return Err("holder index disagrees with the services, or is out of order".into());
        }
        let mut parties: HashMap<CustomerId, BTreeSet<PartyEntry>> = HashMap::new();
        let mut by_service: HashMap<ServiceName, BTreeSet<Newest>> = HashMap::new();
        let mut deadlines = BTreeSet::new();
        for request in tables.requests.values() {
            let key = newest(request.opened_at(), request.id());
            for (customer, seat, state) in PartyKeys::of(request).iter() {
                parties
                    .entry(customer)
                    .or_default()
                    .insert((seat, state, key));
            }
            by_service
                .entry(request.service().clone())
                .or_default()
                .insert(key);
            if request.is_open() {
                deadlines.insert((request.deadline(), request.id()));
            }
        }
        let indexed: HashMap<CustomerId, BTreeSet<PartyEntry>> = tables
            .by_party
            .iter()
            .filter(|(_, set)| !set.is_empty())
            .map(|(c, set)| (*c, set.clone()))
            .collect();
        if indexed != parties {
            return Err("party index disagrees with the requests".into());
        }
        if tables.by_service != by_service {
            return Err("service index disagrees with the requests".into());
        }
        if tables.deadlines != deadlines {
            return Err("deadline index disagrees with the requests".into());
        }
        Ok(())
    }
}

impl Tables {
    fn service(&self, name: &ServiceName) -> Option<&Service> {
        let slot = *self.by_name.get(name)?;
        self.services.get(slot as usize)
    }

    fn name_at(&self, slot: u32) -> &ServiceName {
        self.services[slot as usize].name()
    }

    fn unindex_holder(&mut self, holder: CustomerId, slot: u32) {
        let services = &self.services;
        if let Some(slots) = self.by_holder.get_mut(&holder) {
            // The slot's service keeps its name: find it by name.
            let name = services[slot as usize].name();
            let at = slots.partition_point(|s| services[*s as usize].name() < name);
            if slots.get(at) == Some(&slot) {
                slots.remove(at);
            }
            if slots.is_empty() {
                self.by_holder.remove(&holder);
            }
        }
    }

    /// Whether every write finds the version it expects and moves past it,
    /// and whether the new services fit the slot numbering.
    fn check(&self, changes: &Changes) -> bool {
        let newer = |value: Version, expected: Option<Version>| expected.is_none_or(|e| value > e);
        let services_ok = changes.services.iter().all(|write| {
            self.service(write.value.name()).map(Service::version) == write.expected
                && newer(write.value.version(), write.expected)
        });
        let requests_ok = changes.requests.iter().all(|write| {
            self.requests
                .get(&write.value.id())
                .map(ChangeRequest::version)
                == write.expected
                && newer(write.value.version(), write.expected)
        });
        let assignments_ok = changes
            .assignments
            .iter()
            .all(|a| !self.assignment_ids.contains(&a.id()));
        let room = u32::try_from(self.services.len() + changes.services.len()).is_ok();
        services_ok && requests_ok && assignments_ok && room
    }

    /// Writes `service`; the holders it gains are added to `added` (to be
    /// indexed by [`Tables::index_holders`]), those it loses are unindexed.
    fn put_service(&mut self, service: Service, added: &mut Vec<(CustomerId, u32)>) {
        let new_holders = Holders::of(&service);
        let (slot, old_holders) = if let Some(&slot) = self.by_name.get(service.name()) {
            let old = std::mem::replace(&mut self.services[slot as usize], service);
            (slot, Holders::of(&old))
        } else {
            let slot = u32::try_from(self.services.len()).expect("fewer than 2^32 services");
            self.by_name.insert(service.name().clone(), slot);
            self.services.push(service);
            (slot, Holders::default())
        };
        for holder in old_holders.iter() {
            if !new_holders.contains(holder) {
                self.unindex_holder(holder, slot);
            }
        }
        for holder in new_holders.iter() {
            if !old_holders.contains(holder) {
                added.push((holder, slot));
            }
        }
    }

    /// Adds the slots of `added` to their holders' lists, in name order: a
    /// few by binary insertion, many (an import) by one sort and a merge, so
    /// that a batch costs about `n log n`, not `n` times a holder's list.
    fn index_holders(&mut self, mut added: Vec<(CustomerId, u32)>) {
        added.sort_unstable_by_key(|(holder, _)| *holder);
        for run in added.chunk_by(|a, b| a.0 == b.0) {
            let holder = run[0].0;
            let services = &self.services;
            let slots = self.by_holder.entry(holder).or_default();
            if run.len() < 16 {
                for &(_, slot) in run {
                    let name = services[slot as usize].name();
                    let at = slots.partition_point(|s| services[*s as usize].name() < name);
                    slots.insert(at, slot);
                }
                continue;
            }
            let mut new: Vec<u32> = run.iter().map(|(_, slot)| *slot).collect();
            sort_by_name(&mut new, services);
            let old = std::mem::take(slots);
            let mut merged = Vec::with_capacity(old.len() + new.len());
            let (mut a, mut b) = (old.into_iter().peekable(), new.into_iter().peekable());
            loop {
                let next = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) => {
                        if services[*x as usize].name() <= services[*y as usize].name() {
                            a.next()
                        } else {
                            b.next()
                        }
                    }
                    (Some(_), None) => a.next(),
                    (None, Some(_)) => b.next(),
                    (None, None) => break,
                };
                merged.extend(next);
            }
            *slots = merged;
        }
    }

    fn put_request(&mut self, request: ChangeRequest) {
        let id = request.id();
        let key = newest(request.opened_at(), id);
        let old_keys = if let Some(old) = self.requests.get(&id) {
            if old.is_open() {
                self.deadlines.remove(&(old.deadline(), id));
            }
            Some(PartyKeys::of(old))
        } else {
            self.by_service
                .entry(request.service().clone())
                .or_default()
                .insert(key);
            None
        };
        // Only a change of state or of whom it waits for moves a request
        // between its customers' sets.
        let new_keys = PartyKeys::of(&request);
        let old_keys = old_keys.unwrap_or_default();
        for (customer, part, state) in old_keys.iter() {
            if new_keys.contains(&(customer, part, state)) {
                continue;
            }
            if let Some(set) = self.by_party.get_mut(&customer) {
                set.remove(&(part, state, key));
            }
        }
        for (customer, part, state) in new_keys.iter() {
            if !old_keys.contains(&(customer, part, state)) {
                self.by_party
                    .entry(customer)
                    .or_default()
                    .insert((part, state, key));
            }
        }
        if request.is_open() {
            self.deadlines.insert((request.deadline(), id));
        }
        self.requests.insert(id, request);
    }

    /// The keys of `customer`'s requests that `filter` may list, newest
    /// first, after `after`, each once: a merge of the customer's sets the
    /// filter needs (or of the service's set, with a service filter).
    fn candidates<'a>(
        &'a self,
        customer: CustomerId,
        filter: &RequestFilter,
        after: Option<RequestKey>,
    ) -> impl Iterator<Item = RequestId> + 'a {
        let from = newest_after(after);
        let mut streams: Vec<std::iter::Peekable<Box<dyn Iterator<Item = Newest> + 'a>>> =
            Vec::new();
        if let Some(service) = filter.service_name() {
            if let Some(set) = self.by_service.get(service) {
                let range = set.range((from, Bound::Unbounded)).copied();
                streams.push((Box::new(range) as Box<dyn Iterator<Item = Newest>>).peekable());
            }
        } else if let Some(set) = self.by_party.get(&customer) {
            for (part, state) in filter.index_ranges() {
                let lower = match from {
                    Bound::Excluded(key) => Bound::Excluded((part, state, key)),
                    _ => Bound::Included((part, state, FIRST)),
                };
                let range = set
                    .range((lower, Bound::Included((part, state, LAST))))
                    .map(|(_, _, key)| *key);
                streams.push((Box::new(range) as Box<dyn Iterator<Item = Newest>>).peekable());
            }
        }
        let mut last: Option<Newest> = None;
        std::iter::from_fn(move || {
            loop {
                let (index, key) = streams
                    .iter_mut()
                    .enumerate()
                    .filter_map(|(i, s)| s.peek().map(|k| (i, *k)))
                    .min_by_key(|(_, k)| *k)?;
                streams[index].next();
                if last != Some(key) {
                    last = Some(key);
                    return Some(key.1);
                }
            }
        })
    }
}

impl Store for MemoryStore {
    type Error = Infallible;

    fn service(&self, name: &ServiceName) -> Result<Option<Service>, Infallible> {
        Ok(self.read().service(name).cloned())
    }

    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Infallible> {
        Ok(self.read().requests.get(&id).cloned())
    }

    fn contacts_of(
        &self,
        customer: CustomerId,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<(ServiceName, Roles)>, Infallible> {
        let tables = self.read();
        let Some(slots) = tables.by_holder.get(&customer) else {
            return Ok(Vec::new());
        };
        let start = after.map_or(0, |after| {
            slots.partition_point(|slot| tables.name_at(*slot) <= after)
        });
        Ok(slots[start..]
            .iter()
            .take(limit)
            .map(|slot| {
                let service = &tables.services[*slot as usize];
                (service.name().clone(), service.roles_of(customer))
            })
            .collect())
    }

    fn requests_of(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        let tables = self.read();
        Ok(tables
            .candidates(customer, filter, after)
            .filter_map(|id| tables.requests.get(&id))
            .filter(|request| filter.matches(request, customer, now))
            .take(limit)
            .cloned()
            .collect())
    }

    fn due_for_expiry(
        &self,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        let tables = self.read();
        let from = after.map_or(Bound::Unbounded, |k| Bound::Excluded((k.at, k.id)));
        Ok(tables
            .deadlines
            .range((from, Bound::Unbounded))
            .take_while(|(deadline, _)| *deadline <= now)
            .take(limit)
            .filter_map(|(_, id)| tables.requests.get(id).cloned())
            .collect())
    }

    fn commit(&self, changes: Changes) -> Result<(), CommitError<Infallible>> {
        let mut tables = self.write();
        // All checks first: once writing starts, nothing can fail.
        if !tables.check(&changes) {
            return Err(CommitError::Conflict);
        }
        let names = changes.services.iter().map(|w| w.value.name());
        let ids = changes.requests.iter().map(|w| w.value.id());
        let assignments = changes.assignments.iter().map(Assignment::id);
        if !distinct(names) || !distinct(ids) || !distinct(assignments) {
            // Two writes of one record in one batch: neither can be right.
            return Err(CommitError::Conflict);
        }
        let mut added = Vec::new();
        for write in changes.services {
            tables.put_service(write.value, &mut added);
        }
        tables.index_holders(added);
        for write in changes.requests {
            tables.put_request(write.value);
        }
        for assignment in changes.assignments {
            tables.assignment_ids.insert(assignment.id());
            tables
                .assignments
                .entry(assignment.service().clone())
                .or_default()
                .insert(
                    (
                        Reverse(assignment.at().unix_timestamp_nanos()),
                        assignment.id(),
                    ),
                    assignment,
                );
        }
        Ok(())
    }

    fn requests_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        let tables = self.read();
        let Some(set) = tables.by_service.get(name) else {
            return Ok(Vec::new());
        };
        let from = after.map_or(Bound::Unbounded, |k| {
            Bound::Excluded(newest(k.at, RequestId::from_bytes(k.id)))
        });
        Ok(set
            .range((from, Bound::Unbounded))
            .take(limit)
            .filter_map(|(_, id)| tables.requests.get(id).cloned())
            .collect())
    }

    fn assignments_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<Assignment>, Infallible> {
        let tables = self.read();
        let Some(map) = tables.assignments.get(name) else {
            return Ok(Vec::new());
        };
        let from = after.map_or(Bound::Unbounded, |k| {
            Bound::Excluded((
                Reverse(k.at.unix_timestamp_nanos()),
                AssignmentId::from_bytes(k.id),
            ))
        });
        Ok(map
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(_, a)| a.clone())
            .collect())
    }
}

// The async traits too, each call done at once: memory never waits.
async_impl!(Store for [] MemoryStore, Infallible, ready);
async_impl!(Notifier for [] MemoryNotifier, DeliveryFailed, ready);
async_impl!(Directory for [] MemoryDirectory, Infallible, ready);

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tables = self.read();
        f.debug_struct("MemoryStore")
            .field("services", &tables.by_name.len())
            .field("requests", &tables.requests.len())
            .finish_non_exhaustive()
    }
}

/// A [`Notifier`] that keeps what it delivers, and can be told to fail chosen
/// messages (for tests and examples).
///
/// ```
/// use service_contacts::{MemoryNotifier, MessageKind};
///
/// let notifier = MemoryNotifier::new();
/// notifier.fail_when(|message| matches!(message.kind(), MessageKind::Replaced));
/// assert!(notifier.delivered().is_empty());
/// ```
#[derive(Default)]
pub struct MemoryNotifier {
    delivered: Mutex<Vec<Message>>,
    fail: Mutex<Option<FailRule>>,
}

type FailRule = Box<dyn Fn(&Message) -> bool + Send + Sync>;

impl MemoryNotifier {
    /// A notifier that delivers everything.
    #[must_use]
    pub fn new() -> MemoryNotifier {
        MemoryNotifier::default()
    }

    /// From now on, fails every message for which `rule` is true.
    pub fn fail_when(&self, rule: impl Fn(&Message) -> bool + Send + Sync + 'static) {
        *self.fail.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(rule));
    }

    /// From now on, delivers everything.
    pub fn deliver_all(&self) {
        *self.fail.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The messages delivered so far, oldest first.
    #[must_use]
    pub fn delivered(&self) -> Vec<Message> {
        self.delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes the messages delivered so far, leaving none.
    #[must_use]
    pub fn take(&self) -> Vec<Message> {
        std::mem::take(
            &mut *self
                .delivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

impl Notifier for MemoryNotifier {
    type Error = DeliveryFailed;

    fn deliver(&self, message: &Message) -> Result<(), DeliveryFailed> {
        let fail = self.fail.lock().unwrap_or_else(PoisonError::into_inner);
        if fail.as_ref().is_some_and(|rule| rule(message)) {
            return Err(DeliveryFailed { to: message.to() });
        }
        drop(fail);
        self.delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.clone());
        Ok(())
    }
}

impl fmt::Debug for MemoryNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("MemoryNotifier")
            .field("delivered", &count)
            .finish_non_exhaustive()
    }
}

/// The failure [`MemoryNotifier`] reports for a message it was told to fail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("delivery to {to} failed")]
pub struct DeliveryFailed {
    /// The recipient.
    pub to: CustomerId,
}

/// A [`Directory`] in memory: known customers and whether each is in good
/// standing for billing.
///
/// ```
/// use service_contacts::{Directory, MemoryDirectory};
///
/// let directory = MemoryDirectory::new();
/// let customer = "AB1-OVH".parse()?;
/// directory.add(customer);
/// assert!(directory.in_good_standing(customer)?);
/// directory.set_good_standing(customer, false);
/// assert!(!directory.in_good_standing(customer)?);
/// assert!(!directory.exists("ZZ9-OVH".parse()?)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    accounts: RwLock<HashMap<CustomerId, bool>>,
}

impl MemoryDirectory {
    /// An empty directory.
    #[must_use]
    pub fn new() -> MemoryDirectory {
        MemoryDirectory::default()
    }

    /// Adds a customer in good standing (or leaves an existing one as is).
    pub fn add(&self, customer: CustomerId) {
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(customer)
            .or_insert(true);
    }

    /// Sets whether a customer is in good standing, adding them if unknown.
    pub fn set_good_standing(&self, customer: CustomerId, good: bool) {
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(customer, good);
    }

    /// Removes a customer's account.
    pub fn remove(&self, customer: CustomerId) {
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&customer);
    }
}

impl Directory for MemoryDirectory {
    type Error = Infallible;

    fn exists(&self, customer: CustomerId) -> Result<bool, Infallible> {
        Ok(self
            .accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&customer))
    }

    fn in_good_standing(&self, customer: CustomerId) -> Result<bool, Infallible> {
        Ok(self
            .accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&customer)
            .copied()
            .unwrap_or(false))
    }
}
