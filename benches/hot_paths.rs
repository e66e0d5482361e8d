//! Timings of the hot paths, against the budget in the README's performance
//! section. Run all with `cargo bench --bench hot_paths`, one group with
//! `cargo bench --bench hot_paths -- <group>` (`parse`, `format`, `token`,
//! `lifecycle`, `my_contacts`, `my_requests`, `my_contacts_paged`,
//! `my_requests_paged`, `import`).

use std::cell::OnceCell;
use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use regex::Regex;
use service_contacts::{
    CustomerId, Driver, MemoryNotifier, MemoryStore, OsRng, PageSize, RequestFilter, Token,
};
use time::macros::datetime;

mod common;
use common as fixtures;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.bench_function("valid", |b| {
        b.iter(|| CustomerId::parse(black_box("AB12345-OVH")));
    });
    // The same validation with a compiled regex, for comparison.
    let regex = Regex::new(r"^[A-Za-z]{2}[0-9]{1,9}-[Oo][Vv][Hh]$").expect("valid regex");
    group.bench_function("regex_valid", |b| {
        b.iter(|| regex.is_match(black_box("AB12345-OVH")));
    });
    // The regex doing the whole job: validate, then make the canonical text.
    group.bench_function("regex_canonical", |b| {
        b.iter(|| {
            let text = black_box("AB12345-OVH");
            regex.is_match(text).then(|| text.to_ascii_uppercase())
        });
    });
    group.bench_function("invalid", |b| {
        b.iter(|| CustomerId::parse(black_box("AB12345-OVX")));
    });
    group.finish();

    // The comparison with regex on a batch of 64 different 11-character
    // identifiers (mixed case), so that the harness's own cost per call,
    // which is larger than the parse itself, is spread over the batch.
    let batch: Vec<String> = (0..64u32)
        .map(|i| {
            let letters = [b'A' + (i % 26) as u8, b'a' + (i * 7 % 26) as u8];
            let letters = String::from_utf8(letters.to_vec()).expect("ASCII");
            let suffix = if i % 2 == 0 { "-OVH" } else { "-ovh" };
            format!("{letters}{:05}{suffix}", i * 1543 % 100_000)
        })
        .collect();
    let mut group = c.benchmark_group("parse_batch");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("ours", |b| {
        b.iter(|| {
            for text in &batch {
                let _ = black_box(CustomerId::parse(black_box(text)));
            }
        });
    });
    group.bench_function("regex", |b| {
        b.iter(|| {
            for text in &batch {
                black_box(regex.is_match(black_box(text)));
            }
        });
    });
    group.finish();
}

fn format(c: &mut Criterion) {
    let mut group = c.benchmark_group("format");
    let a = CustomerId::parse("AB12345-OVH").expect("valid");
    let b_id = CustomerId::parse("AB12346-OVH").expect("valid");
    let mut out = String::with_capacity(32);
    group.bench_function("display", |b| {
        b.iter(|| {
            use std::fmt::Write as _;
            out.clear();
            write!(out, "{}", black_box(&a)).expect("write to a String");
            out.len()
        });
    });
    group.bench_function("as_str", |b| b.iter(|| black_box(&a).as_str().len()));
    group.bench_function("eq", |b| b.iter(|| black_box(&a) == black_box(&b_id)));
    group.bench_function("cmp", |b| b.iter(|| black_box(&a).cmp(black_box(&b_id))));
    group.finish();
}

fn token(c: &mut Criterion) {
    let mut group = c.benchmark_group("token");
    let token = Token::from_bytes([42; 32]);
    let digest = token.digest();
    let text = token.reveal();
    let wrong = Token::from_bytes([43; 32]).reveal();
    group.bench_function("verify", |b| b.iter(|| digest.verify(black_box(&text))));
    group.bench_function("verify_wrong", |b| {
        b.iter(|| digest.verify(black_box(&wrong)));
    });
    // 4096 different random tokens in turn, as a server meets them: one
    // token presented again and again lets the branch predictor learn its
    // text, which hides what a decoder's branches on each character cost.
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let presented: Vec<_> = (0..4096)
        .map(|_| {
            let token = Token::generate(&mut rng).expect("a seeded generator does not fail");
            (token.digest(), token.reveal())
        })
        .collect();
    let mut next = presented.iter().cycle();
    group.bench_function("verify_random", |b| {
        b.iter(|| {
            let (digest, text) = next.next().expect("an endless cycle");
            digest.verify(black_box(text))
        });
    });
    group.finish();
}

fn lifecycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("lifecycle");
    let mut seeded = ChaCha20Rng::seed_from_u64(1);
    lives(&mut group, "seeded", fixtures::LifeWorld::new, |world| {
        world.one_life(&mut seeded)
    });
    // The same life through the async driver, its actions awaited in one
    // future polled by a waker that does nothing (no runtime): the cost of
    // the async driver itself (budget: within 1.2x of `seeded`).
    let mut seeded = ChaCha20Rng::seed_from_u64(1);
    lives(
        &mut group,
        "async",
        fixtures::AsyncLifeWorld::new,
        |world| world.one_life(&mut seeded),
    );
    lives(&mut group, "os_rng", fixtures::LifeWorld::new, |world| {
        world.one_life(&mut OsRng)
    });
    group.finish();
}

/// Times `life` in `group` as `name`. Each life runs on a fresh world, made
/// by `world` outside the timing, so the store does not grow with the number
/// of iterations.
fn lives<W>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    world: fn() -> W,
    mut life: impl FnMut(W) -> W,
) {
    group.bench_function(name, |b| {
        b.iter_batched(world, &mut life, BatchSize::SmallInput);
    });
}

fn my_contacts(c: &mut Criterion) {
    let mut group = c.benchmark_group("my_contacts");
    for size in [10_000, 100_000, 1_000_000] {
        // Built on first use, so a run filtered to other groups skips it.
        let world = OnceCell::new();
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            let (driver, customer) = world.get_or_init(|| fixtures::contacts_world(size));
            b.iter(|| {
                driver
                    .my_contacts(black_box(*customer), None, PageSize::default())
                    .expect("listed")
            });
        });
    }
    group.finish();
}

fn my_requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("my_requests");
    group.sample_size(50);
    let all = RequestFilter::all();
    for open in [1_000, 10_000, 100_000] {
        let world = OnceCell::new();
        let now = datetime!(2026-11-21 12:00 UTC);
        group.bench_with_input(BenchmarkId::from_parameter(open), &open, |b, &open| {
            let (driver, customer) = world.get_or_init(|| fixtures::requests_world(open));
            b.iter(|| {
                driver
                    .my_requests(black_box(*customer), &all, now, None, PageSize::default())
                    .expect("listed")
            });
        });
    }
    group.finish();
}

/// One page of 50 rows of "my contacts" among 1M services, for a customer
/// holding roles on 100k of them (first page, and the page after a cursor
/// in the middle) and for one holding 100 (`big` within 2× of `small`).
fn my_contacts_paged(c: &mut Criterion) {
    let mut group = c.benchmark_group("my_contacts_paged");
    let world = OnceCell::new();
    let world = || world.get_or_init(|| fixtures::many_contacts_world(1_000_000));
    let size = PageSize::default();
    let (big, small) = (fixtures::big_holder(), fixtures::small_holder());
    group.bench_function("1M/small_100", |b| {
        let driver = world();
        b.iter(|| {
            driver
                .my_contacts(black_box(small), None, size)
                .expect("listed")
        });
    });
    group.bench_function("1M/big_100k", |b| {
        let driver = world();
        b.iter(|| {
            driver
                .my_contacts(black_box(big), None, size)
                .expect("listed")
        });
    });
    group.bench_function("1M/big_100k_middle", |b| {
        let driver = world();
        let middle = fixtures::contacts_cursor(driver, big, 50_000);
        b.iter(|| {
            let page = driver
                .my_contacts(black_box(big), Some(black_box(&middle)), size)
                .expect("listed");
            debug_assert_eq!(page.items.len(), size.get());
            page
        });
    });
    group.finish();
}

/// One page of 50 rows of "my requests" with a state filter, for a
/// customer in 100k requests (nine in ten done) and one in 100 (half done),
/// in the same store (`big` within 2× of `small`, for each filter).
fn my_requests_paged(c: &mut Criterion) {
    let mut group = c.benchmark_group("my_requests_paged");
    let world = OnceCell::new();
    let world = || world.get_or_init(|| fixtures::many_requests_world(100_000));
    let size = PageSize::default();
    let now = fixtures::REQUESTS_READ_AT;
    for (label, filter, full) in fixtures::request_filters() {
        for (who, customer) in [
            ("small_100", fixtures::small_holder()),
            ("big_100k", fixtures::big_holder()),
        ] {
            group.bench_function(format!("{label}/{who}"), |b| {
                let driver = world();
                let page = driver
                    .my_requests(customer, &filter, now, None, size)
                    .expect("listed");
                let expected = if full { size.get() } else { 0 };
                assert_eq!(page.items.len(), expected, "{label}/{who}");
                b.iter(|| {
                    driver
                        .my_requests(black_box(customer), &filter, now, None, size)
                        .expect("listed")
                });
            });
        }
    }
    group.finish();
}

/// Imports 1M services (three different holders each) into an empty
/// `MemoryStore` in one batch through `Driver::import_services`.
///
/// `IMPORT_SIZE` (default 1,000,000) and `IMPORT_HOLDERS` (how many
/// customers the holders are drawn from, default 3) change the batch, to
/// see how the import scales.
fn import(c: &mut Criterion) {
    let mut group = c.benchmark_group("import");
    group.sample_size(10);
    let size: u32 = std::env::var("IMPORT_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let holders: u32 = std::env::var("IMPORT_HOLDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    group.throughput(Throughput::Elements(u64::from(size)));
    group.bench_function(format!("{size}/holders_{holders}"), |b| {
        b.iter_batched(
            || {
                let (directory, batch) = fixtures::import_batch(size, holders);
                let store = MemoryStore::with_capacity(size as usize);
                (Driver::new(store, MemoryNotifier::new(), directory), batch)
            },
            |(driver, batch)| {
                let imported = driver.import_services(batch).expect("imported");
                (driver, imported)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(
    benches,
    parse,
    format,
    token,
    lifecycle,
    my_contacts,
    my_requests,
    my_contacts_paged,
    my_requests_paged,
    import
);
criterion_main!(benches);
