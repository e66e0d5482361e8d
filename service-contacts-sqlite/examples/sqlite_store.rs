//! The walkthrough's story (the root's `examples/walkthrough.rs`) on a
//! `SQLite` database.
//!
//! Run it with `cargo run -p service-contacts-sqlite --example sqlite_store`.
//!
//! The steps are the walkthrough's (the root's `examples/story/mod.rs`,
//! included here by path), through the same driver; only the store differs:
//! this crate's `SqliteStore`, on a file in a fresh temporary directory.
//! Half-way, the host "restarts": it closes the database and opens the file
//! again, and the story goes on from what the file holds, with the tokens
//! mailed before the restart. Mail and accounts
//! stay in memory (`MemoryNotifier`, `MemoryDirectory`); tokens come from the
//! operating system's generator and are masked in the output.

#[path = "../../examples/story/mod.rs"]
mod story;

use std::path::{Path, PathBuf};

use service_contacts::{ChangeRequest, Event, EventKind, Store};
use service_contacts_sqlite::SqliteStore;
use story::{Error, contacts};
use time::OffsetDateTime;

/// One line for a history entry (R34).
fn describe_event(event: &Event) -> String {
    let what = match event.kind() {
        EventKind::Opened => "opened".to_owned(),
        EventKind::TokenIssued { to } => format!("token issued to {to}"),
        EventKind::TokenReissued { to } => format!("new token issued to {to}"),
        EventKind::Confirmed => "confirmed".to_owned(),
        EventKind::FailedAttempt => "wrong token presented".to_owned(),
        EventKind::TokenInvalidated { of } => format!("token of {of} invalidated"),
        EventKind::Refused => "refused".to_owned(),
        EventKind::Cancelled => "cancelled".to_owned(),
        EventKind::Expired => "expired".to_owned(),
        EventKind::Applied => "applied".to_owned(),
        EventKind::Failed { reason } => format!("failed: {reason}"),
        other => format!("{other:?}"),
    };
    let at = event.at();
    let by = event
        .actor()
        .map_or_else(|| "system".to_owned(), ToString::to_string);
    format!("{:02}:{:02} {by:<12} {what}", at.hour(), at.minute())
}

/// A new, empty directory for the database, under the system's temporary
/// directory.
fn fresh_dir() -> Result<PathBuf, Error> {
    let dir = std::env::temp_dir().join(format!(
        "service-contacts-sqlite-example-{}",
        std::process::id()
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// What the file holds: a line of counts and sizes.
fn summary(store: &SqliteStore, file: &Path) -> Result<String, Error> {
    let requests = store.requests()?;
    let open = requests.iter().filter(|r| r.is_open()).count();
    Ok(format!(
        "{}: {} services, {} requests ({open} open), {} bytes",
        file.display(),
        store.services()?.len(),
        requests.len(),
        std::fs::metadata(file)?.len()
    ))
}

fn show_request(request: &ChangeRequest, now: OffsetDateTime) {
    let missing: Vec<String> = request
        .missing_at(now)
        .iter()
        .map(ToString::to_string)
        .collect();
    println!(
        "    request {}: {} of {} to {}, {}, waiting for {}",
        request.id(),
        request.roles(),
        request.service(),
        request.incoming(),
        request.state_name_at(now),
        missing.join(", ")
    );
    for event in request.history() {
        println!("      {}", describe_event(event));
    }
}

fn main() -> Result<(), Error> {
    let mut tale = story::Story::new()?;
    let dir = fresh_dir()?;
    let file = dir.join("contacts.db");
    let store = SqliteStore::open(&file)?;
    println!(
        "database: {} (journal mode {})",
        file.display(),
        store.journal_mode()?
    );

    let billing = tale.first_half(&store)?;

    tale.step("The host restarts: the database is closed, then the file is opened again");
    println!("    before: {}", summary(&store, &file)?);
    let before = store.request(billing)?.ok_or("request not stored")?;
    store.close()?;
    let store = SqliteStore::open(&file)?;
    println!("    after:  {}", summary(&store, &file)?);
    let after = store
        .request(billing)?
        .ok_or("request lost in the restart")?;
    if after != before {
        return Err("the request changed across the restart".into());
    }
    println!("    the open request, read back whole with its history (R34):");
    show_request(&after, tale.now);
    println!("    contacts: {}", contacts(&store, &tale.site)?);
    println!("    (step 5 confirms it with the codes mailed before the restart)");

    tale.second_half(&store, billing)?;

    store.audit()?;
    println!("\n    {}", summary(&store, &file)?);
    println!("    audit: every row parses, every index agrees with its table");
    store.close()?;
    std::fs::remove_dir_all(&dir)?;
    println!(
        "\nThe end: every step above ran through the crate's driver on a SQLite file,\n\
         closed and opened again after step 4 (the temporary directory is removed)."
    );
    Ok(())
}
