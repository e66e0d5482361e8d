//! The differential check of the listings (R6, R29, R35, R45): random
//! worlds played through the driver on any `Store`, then every listing read
//! page by page and compared with a full scan of what the store holds.
//!
//! Shared: `tests/listing_attacks.rs` runs it on `MemoryStore`, and
//! `service-contacts-sqlite/tests/sqlite_store.rs` includes this file by path
//! (`#[path]`) and runs it on the `SQLite` store.
#![allow(dead_code, reason = "each test file uses a part of the harness")]

use std::cmp::Reverse;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ChangeRequest, Contacts, Cursor, CustomerId, Driver, Edit, MemoryDirectory, MemoryNotifier,
    PageSize, Part, RequestFilter, RequestId, Role, Service, ServiceName, StateName, Store,
};
use time::{Duration, OffsetDateTime, macros::datetime};

pub(crate) const T0: OffsetDateTime = datetime!(2026-11-21 10:00 UTC);

pub(crate) fn cid(text: &str) -> CustomerId {
    text.parse().unwrap()
}

pub(crate) fn sname(text: &str) -> ServiceName {
    text.parse().unwrap()
}

pub(crate) const PEOPLE: [&str; 4] = ["AA1-OVH", "BB2-OVH", "CC3-OVH", "DD4-OVH"];

pub(crate) fn directory() -> MemoryDirectory {
    let d = MemoryDirectory::new();
    for p in PEOPLE {
        d.add(cid(p));
    }
    d
}

fn token_of(notifier: &MemoryNotifier, to: CustomerId, request: RequestId) -> Option<String> {
    notifier
        .delivered()
        .iter()
        .rev()
        .find(|m| m.to() == to && m.request() == Some(request) && m.token().is_some())
        .and_then(|m| m.token().map(service_contacts::Token::reveal))
}

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Submit {
        s: usize,
        roles: u8,
        to: usize,
        actor: usize,
    },
    Accept {
        r: usize,
        who: usize,
    },
    Refuse {
        r: usize,
        who: usize,
    },
    Cancel {
        r: usize,
    },
    Advance {
        step: u8,
    },
    Sweep,
    Remove {
        s: usize,
    },
    Reimport {
        s: usize,
        a: usize,
        t: usize,
        b: usize,
    },
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..5, 1u8..8, 0usize..4, 0usize..6)
            .prop_map(|(s, roles, to, actor)| Op::Submit { s, roles, to, actor }),
        6 => (0usize..32, 0usize..4).prop_map(|(r, who)| Op::Accept { r, who }),
        1 => (0usize..32, 0usize..4).prop_map(|(r, who)| Op::Refuse { r, who }),
        1 => (0usize..32).prop_map(|r| Op::Cancel { r }),
        2 => (0u8..5).prop_map(|step| Op::Advance { step }),
        1 => Just(Op::Sweep),
        1 => (0usize..5).prop_map(|s| Op::Remove { s }),
        1 => (0usize..5, 0usize..4, 0usize..4, 0usize..4)
            .prop_map(|(s, a, t, b)| Op::Reimport { s, a, t, b }),
    ]
}

fn service_names() -> Vec<ServiceName> {
    ["b.example", "a.example", "c.example", "ab.example", "a"]
        .iter()
        .map(|n| sname(n))
        .collect()
}

/// Runs `ops` on a driver over `store`, returns the final `now` and the
/// times worth listing at (each deadline, just before it, now).
pub(crate) fn play<S: Store>(
    driver: &Driver<S, MemoryNotifier, MemoryDirectory>,
    ops: &[Op],
) -> (OffsetDateTime, Vec<RequestId>) {
    let people: Vec<CustomerId> = PEOPLE.iter().map(|p| cid(p)).collect();
    let names = service_names();
    let holders = |i: usize| Contacts::new(people[i % 4], people[(i + 1) % 4], people[i % 4]);
    driver
        .import_services(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), holders(i))),
        )
        .unwrap();
    let mut now = T0;
    let mut requests: Vec<RequestId> = Vec::new();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for op in ops {
        match *op {
            Op::Submit {
                s,
                roles,
                to,
                actor,
            } => {
                let name = &names[s];
                let Ok(service) = driver.service(name) else {
                    continue;
                };
                let mut edit = Edit::new(name.clone());
                for (bit, role) in [(1, Role::Admin), (2, Role::Tech), (4, Role::Billing)] {
                    if roles & bit != 0 {
                        edit = edit.with(role, people[to]);
                    }
                }
                let actor = if actor >= 3 {
                    service.holder(Role::Admin)
                } else {
                    people[actor]
                };
                if let Ok(out) = driver.submit(&edit, actor, now, &mut rng) {
                    requests.extend(out.value);
                }
            }
            Op::Accept { r, who } | Op::Refuse { r, who } => {
                if requests.is_empty() {
                    continue;
                }
                let id = requests[r % requests.len()];
                let who = people[who];
                let Some(token) = token_of(driver.notifier(), who, id) else {
                    continue;
                };
                let _ = if matches!(op, Op::Accept { .. }) {
                    driver.accept(id, who, &token, now)
                } else {
                    driver.refuse(id, who, &token, now)
                };
            }
            Op::Cancel { r } => {
                if requests.is_empty() {
                    continue;
                }
                let id = requests[r % requests.len()];
                if let Ok(status) = driver.request(id, now) {
                    let _ = driver.cancel(id, status.request.requester(), now);
                }
            }
            Op::Advance { step } => {
                now += match step {
                    0 => Duration::ZERO,
                    1 => Duration::hours(1),
                    2 => Duration::days(3),
                    3 => Duration::days(7),
                    _ => Duration::nanoseconds(1),
                };
            }
            Op::Sweep => {
                let _ = driver.expire_due(now);
            }
            Op::Remove { s } => {
                let _ = driver.remove_service(&names[s], now);
            }
            Op::Reimport { s, a, t, b } => {
                let _ = driver.import_services([(
                    names[s].clone(),
                    Contacts::new(people[a], people[t], people[b]),
                )]);
            }
        }
    }
    (now, requests)
}

fn filters() -> Vec<RequestFilter> {
    let states = [
        StateName::ValidatingByCustomers,
        StateName::Done,
        StateName::Refused,
        StateName::Aborted,
        StateName::Expired,
        StateName::Error,
    ];
    let parts = [
        Part::AskedByMe,
        Part::WaitingForMe,
        Part::ComingToMe,
        Part::TakingFromMe,
    ];
    let mut state_sets: Vec<Vec<StateName>> = vec![vec![]];
    state_sets.extend(states.iter().map(|s| vec![*s]));
    state_sets.push(vec![StateName::ValidatingByCustomers, StateName::Expired]);
    state_sets.push(vec![StateName::Done, StateName::Error, StateName::Refused]);
    let mut out = Vec::new();
    for st in &state_sets {
        for mask in 0u8..16 {
            for service in [None, Some(sname("a.example")), Some(sname("b.example"))] {
                let mut f = RequestFilter::all();
                for s in st {
                    f = f.state(*s);
                }
                for (i, p) in parts.iter().enumerate() {
                    if mask & (1 << i) != 0 {
                        f = f.part(*p);
                    }
                }
                if let Some(s) = service {
                    f = f.service(s);
                }
                out.push(f);
            }
        }
    }
    out
}

/// Every listing of the driver, page by page, against a full scan of
/// `all_requests` / `all_services`.
#[expect(
    clippy::too_many_lines,
    reason = "one listing after the other, each against its scan"
)]
pub(crate) fn check_listings<S: Store>(
    driver: &Driver<S, MemoryNotifier, MemoryDirectory>,
    all_requests: &[ChangeRequest],
    all_services: &[Service],
    now: OffsetDateTime,
    sparse: bool,
) -> Result<(), String> {
    let people: Vec<CustomerId> = PEOPLE.iter().map(|p| cid(p)).collect();
    // Times: now, every deadline and a nanosecond either side of it.
    let mut times = vec![now, now + Duration::days(8)];
    for r in all_requests {
        times.push(r.deadline());
        times.push(r.deadline() - Duration::nanoseconds(1));
    }
    times.sort();
    times.dedup();
    if sparse {
        times.truncate(6);
    }
    let filters = filters();
    for &customer in &people {
        // Contacts.
        let mut expected: Vec<(ServiceName, _)> = all_services
            .iter()
            .filter(|s| !s.is_removed() && !s.roles_of(customer).is_empty())
            .map(|s| (s.name().clone(), s.roles_of(customer)))
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        for size in [1, 2, 50] {
            let size = PageSize::new(size).unwrap();
            let mut rows = Vec::new();
            let mut after: Option<Cursor> = None;
            loop {
                let page = driver
                    .my_contacts(customer, after.as_ref(), size)
                    .map_err(|e| e.to_string())?;
                rows.extend(page.items);
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            if rows != expected {
                return Err(format!(
                    "contacts of {customer} by {size:?}: {rows:?} != {expected:?}"
                ));
            }
        }
        for &at in &times {
            for (fi, filter) in filters.iter().enumerate() {
                if sparse && fi % 5 != 0 {
                    continue;
                }
                let mut expected: Vec<&ChangeRequest> = all_requests
                    .iter()
                    .filter(|r| filter.matches(r, customer, at))
                    .collect();
                expected.sort_by_key(|r| (Reverse(r.opened_at()), r.id()));
                let expected: Vec<RequestId> = expected.iter().map(|r| r.id()).collect();
                for size in [1, 3] {
                    let size = PageSize::new(size).unwrap();
                    let mut rows = Vec::new();
                    let mut after: Option<Cursor> = None;
                    loop {
                        let page = driver
                            .my_requests(customer, filter, at, after.as_ref(), size)
                            .map_err(|e| e.to_string())?;
                        for row in &page.items {
                            let r = all_requests.iter().find(|r| r.id() == row.id).unwrap();
                            if row.waits_for_me != r.waits_for(customer, at)
                                || row.state != r.state_name_at(at)
                            {
                                return Err(format!("summary of {} wrong", row.id));
                            }
                        }
                        rows.extend(page.items.iter().map(|r| r.id));
                        match page.next {
                            Some(n) => after = Some(n),
                            None => break,
                        }
                    }
                    if rows != expected {
                        return Err(format!(
                            "{customer} {filter:?} at {at} by {size:?}: listed {rows:?}, expected {expected:?}"
                        ));
                    }
                }
            }
        }
    }
    // Due for expiry, through the store directly.
    for &at in &times {
        let mut expected: Vec<&ChangeRequest> =
            all_requests.iter().filter(|r| r.is_due(at)).collect();
        expected.sort_by_key(|r| (r.deadline(), r.id()));
        let expected: Vec<RequestId> = expected.iter().map(|r| r.id()).collect();
        for limit in [1, 2, 7] {
            let mut rows: Vec<RequestId> = Vec::new();
            let mut after = None;
            loop {
                let page = driver
                    .store()
                    .due_for_expiry(at, after, limit)
                    .map_err(|e| e.to_string())?;
                if page.len() > limit {
                    return Err("due page too long".into());
                }
                after = page.last().map(|r| service_contacts::RequestKey {
                    at: r.deadline(),
                    id: r.id(),
                });
                let short = page.len() < limit;
                rows.extend(page.iter().map(ChangeRequest::id));
                if short {
                    break;
                }
            }
            if rows != expected {
                return Err(format!("due at {at} by {limit}: {rows:?} != {expected:?}"));
            }
        }
    }
    Ok(())
}
