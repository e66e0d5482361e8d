//! The story of `service-contacts`, step by step, following the hosting
//! provider's guide "Managing the contacts of your services".
//!
//! Run it with `cargo run --example walkthrough`. Everything runs in memory:
//! the crate's `MemoryStore`, `MemoryNotifier` (our "mail server", whose
//! deliveries we read to find the tokens) and `MemoryDirectory` (the
//! accounts). The steps are in `story/mod.rs`, shared with the `SQLite`
//! example of `service-contacts-sqlite`.

#[path = "story/mod.rs"]
mod story;

use service_contacts::MemoryStore;

fn main() -> Result<(), story::Error> {
    let mut tale = story::Story::new()?;
    let store = MemoryStore::new();
    let billing = tale.first_half(&store)?;
    tale.second_half(&store, billing)?;
    store.audit()?;
    println!("\nThe end: every step above ran through the crate's driver and in-memory host.");
    Ok(())
}
