//! Allocation counts of the hot paths, and the memory of the in-memory store,
//! measured with a counting global allocator (`stats_alloc`), and the sizes of
//! the async driver's futures. Prints a table; run with
//! `cargo bench --bench allocations`.
//!
//! Kept apart from `hot_paths`, whose timings must not pay for the counting.
#![expect(
    clippy::cast_precision_loss,
    reason = "counts far below 2^52 shown as averages"
)]

use std::alloc::System;
use std::hint::black_box;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{CustomerId, Edit, OsRng, RequestId, Role, Token};
use service_contacts::{Driver, MemoryNotifier, MemoryStore, PageSize};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats, StatsAlloc};

#[expect(dead_code, reason = "the fixtures are shared with the timing bench")]
mod common;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Runs `work` `times` times and returns the allocator's counts for it.
fn count(times: u32, mut work: impl FnMut()) -> Stats {
    let region = Region::new(GLOBAL);
    for _ in 0..times {
        work();
    }
    region.change()
}

/// The allocator's counts for `lives` request lives, each in a world made by
/// `world` beforehand and dropped afterwards (neither counted).
fn count_lives<W>(lives: u32, world: impl Fn() -> W, mut life: impl FnMut(W) -> W) -> Stats {
    let mut worlds = (0..lives).map(|_| world()).collect::<Vec<W>>().into_iter();
    let mut done = Vec::with_capacity(lives as usize);
    let stats = count(lives, || {
        done.push(life(worlds.next().expect("one world per life")));
    });
    drop(done);
    stats
}

/// Bytes still allocated: allocated minus freed. `stats_alloc` already
/// counts a reallocation's growth in `bytes_allocated` (and its shrinking in
/// `bytes_deallocated`); `bytes_reallocated` is the same change again, so
/// adding it would count every growth twice, also of buffers freed since.
fn live_bytes(stats: &Stats) -> i128 {
    stats.bytes_allocated as i128 - stats.bytes_deallocated as i128
}

fn per_op(label: &str, times: u32, stats: &Stats) {
    let allocs = (stats.allocations + stats.reallocations) as f64 / f64::from(times);
    let bytes = stats.bytes_allocated as f64 / f64::from(times);
    println!("{label:<40} {allocs:>10.1} allocations {bytes:>10.0} bytes allocated");
}

fn main() {
    println!("== allocations per operation");
    let times = 10_000;
    let stats = count(times, || {
        black_box(CustomerId::parse(black_box("AB12345-OVH")).ok());
    });
    per_op("parse a valid CustomerId", times, &stats);
    let stats = count(times, || {
        black_box(CustomerId::parse(black_box("AB12345-OVX")).ok());
    });
    per_op("parse an invalid CustomerId", times, &stats);

    let token = Token::from_bytes([42; 32]);
    let digest = token.digest();
    let text = token.reveal();
    let stats = count(times, || {
        black_box(digest.verify(black_box(&text)));
    });
    per_op("verify a token", times, &stats);

    let lives = 1_000;
    let mut seeded = ChaCha20Rng::seed_from_u64(1);
    let stats = count_lives(lives, common::LifeWorld::new, |w| w.one_life(&mut seeded));
    per_op("one request life (seeded generator)", lives, &stats);
    let stats = count_lives(lives, common::LifeWorld::new, |w| w.one_life(&mut OsRng));
    per_op("one request life (OS generator)", lives, &stats);
    let mut seeded = ChaCha20Rng::seed_from_u64(1);
    let stats = count_lives(lives, common::AsyncLifeWorld::new, |w| {
        w.one_life(&mut seeded)
    });
    per_op("one request life (async driver, seeded)", lives, &stats);

    println!("\n== memory of MemoryStore (3 contacts per service, 3 services per customer)");
    for size in [10_000u32, 100_000, 1_000_000] {
        let region = Region::new(GLOBAL);
        let store = common::fill_services(size);
        let stats = region.change();
        let per_service = live_bytes(&stats) as f64 / f64::from(size);
        println!(
            "{size:>9} services: {:>12} bytes live, {per_service:>6.1} bytes per service",
            live_bytes(&stats)
        );
        assert_eq!(store.service_count(), size as usize);
        drop(store);
    }

    future_sizes();
    pages();
    import_memory();
}

/// The sizes of the async driver's futures (what a runtime stores per task,
/// and what is copied when a future is moved), made and dropped unpolled.
fn future_sizes() {
    println!("\n== bytes of an AsyncDriver action's future (MemoryStore)");
    let driver = common::AsyncMemoryDriver::new(
        MemoryStore::new(),
        MemoryNotifier::new(),
        service_contacts::MemoryDirectory::new(),
    );
    let (who, site) = (common::customer(1), common::service_name(1));
    let edit = Edit::new(site.clone()).with(Role::Tech, who);
    let id = RequestId::from_bytes([1; 16]);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let now = common::NOW;
    let sizes = [
        (
            "order_service",
            size_of_future(driver.order_service(&site, who)),
        ),
        (
            "submit",
            size_of_future(driver.submit(&edit, who, now, &mut rng)),
        ),
        (
            "accept",
            size_of_future(driver.accept(id, who, "token", now)),
        ),
        (
            "refuse",
            size_of_future(driver.refuse(id, who, "token", now)),
        ),
        (
            "resend",
            size_of_future(driver.resend(id, who, now, &mut rng)),
        ),
        ("cancel", size_of_future(driver.cancel(id, who, now))),
        ("expire_due", size_of_future(driver.expire_due(now))),
    ];
    for (action, bytes) in sizes {
        println!("{action:<40} {bytes:>10} bytes");
    }
}

/// The size of `future`, which is dropped unpolled (it borrows its
/// arguments: one at a time).
fn size_of_future<F: Future>(future: F) -> usize {
    let bytes = size_of_val(&future);
    drop(future);
    bytes
}

/// Allocations of one page of the paged listings, in the big worlds.
fn pages() {
    println!("\n== allocations of one page of 50 rows");
    let times = 1_000;
    let size = PageSize::default();
    let driver = common::many_contacts_world(1_000_000);
    let middle = common::contacts_cursor(&driver, common::big_holder(), 50_000);
    for (label, who, after) in [
        (
            "my contacts, 100 of 1M services",
            common::small_holder(),
            None,
        ),
        (
            "my contacts, 100k of 1M services",
            common::big_holder(),
            None,
        ),
        (
            "my contacts, 100k of 1M, middle page",
            common::big_holder(),
            Some(&middle),
        ),
    ] {
        let stats = count(times, || {
            black_box(driver.my_contacts(black_box(who), after, size).ok());
        });
        per_op(label, times, &stats);
    }
    drop(driver);
    let driver = common::many_requests_world(100_000);
    for (label, filter, _) in common::request_filters() {
        for (who, customer) in [
            ("100", common::small_holder()),
            ("100k", common::big_holder()),
        ] {
            let stats = count(times, || {
                black_box(
                    driver
                        .my_requests(
                            black_box(customer),
                            &filter,
                            common::REQUESTS_READ_AT,
                            None,
                            size,
                        )
                        .ok(),
                );
            });
            per_op(&format!("my requests ({label}), in {who}"), times, &stats);
        }
    }
    drop(driver);
}

/// The store's memory after one `Driver::import_services` batch
/// (`IMPORT_HOLDERS`: how many customers hold the roles, default 3).
fn import_memory() {
    println!("\n== memory of MemoryStore after Driver::import_services (one batch)");
    let holders: u32 = std::env::var("IMPORT_HOLDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for size in [100_000u32, 1_000_000] {
        let (directory, _) = common::import_batch(0, holders);
        // The batch is made and consumed inside the region, so only what
        // the store keeps stays live.
        let region = Region::new(GLOBAL);
        let (_, batch) = common::import_batch(size, holders);
        let driver = Driver::new(
            MemoryStore::with_capacity(size as usize),
            MemoryNotifier::new(),
            directory,
        );
        let imported = driver.import_services(batch).expect("imported");
        drop(imported);
        let stats = region.change();
        let per_service = live_bytes(&stats) as f64 / f64::from(size);
        println!(
            "{size:>9} services ({holders} holders): {:>12} bytes live, {per_service:>6.1} bytes per service",
            live_bytes(&stats)
        );
        assert_eq!(driver.store().service_count(), size as usize);
        drop(driver);
    }
}
