//! The walkthrough's story (`examples/walkthrough.rs`) on a `SQLite` database.
//!
//! Run it with `cargo run --example sqlite_store --features serde`.
//!
//! The steps are the walkthrough's, through the same driver; only the store
//! differs: `SqliteStore` (in `store.rs` next to this file), on a file in a
//! fresh temporary directory. Half-way, the host "restarts": it closes the
//! database and opens the file again, and the story goes on from what the
//! file holds, with the tokens mailed before the restart. Mail and accounts
//! stay in memory (`MemoryNotifier`, `MemoryDirectory`); tokens come from the
//! operating system's generator and are masked in the output.

mod store;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use service_contacts::{
    ChangeRequest, CustomerId, Driver, Edit, Event, EventKind, MemoryDirectory, MemoryNotifier,
    Message, MessageKind, OsRng, RequestId, Role, ServiceName, Store,
};
use store::SqliteStore;
use time::{Duration, OffsetDateTime, macros::datetime};

type Error = Box<dyn std::error::Error>;

/// The driver of one step: the store on the file, the host's mail and accounts.
type HostDriver<'a> = Driver<&'a SqliteStore, &'a MemoryNotifier, &'a MemoryDirectory>;

/// The host: mail, accounts and a clock we move by hand. The database is
/// separate, so that it can be closed and opened again.
struct Host {
    notifier: MemoryNotifier,
    directory: MemoryDirectory,
    now: OffsetDateTime,
    /// The confirmation codes delivered so far: recipient, request, token.
    inbox: RefCell<Vec<(CustomerId, RequestId, String)>>,
}

impl Host {
    /// A driver over `store` and the host's mail and accounts.
    fn driver<'a>(&'a self, store: &'a SqliteStore) -> HostDriver<'a> {
        Driver::new(store, &self.notifier, &self.directory)
    }

    /// Prints and clears the messages delivered since the last call.
    fn show_mail(&self) {
        for message in self.notifier.take() {
            println!("    mail to {}: {}", message.to(), describe(&message));
            // Keep confirmation requests in an inbox so the story can use the tokens.
            if let Some(token) = message.token() {
                self.inbox
                    .borrow_mut()
                    .push((message.to(), message.request(), token.reveal()));
            }
        }
    }

    /// The latest token `customer` received for `request`.
    fn token(&self, customer: CustomerId, request: RequestId) -> Result<String, Error> {
        self.inbox
            .borrow()
            .iter()
            .rev()
            .find(|(to, id, _)| *to == customer && *id == request)
            .map(|(_, _, token)| token.clone())
            .ok_or_else(|| format!("{customer} has no token for {request}").into())
    }
}

/// The contacts of `service` as stored, on one line.
fn contacts(store: &SqliteStore, service: &ServiceName) -> Result<String, Error> {
    let loaded = store.service(service)?.ok_or("service not found")?;
    Ok(loaded
        .contacts()
        .iter()
        .map(|(role, holder)| format!("{role}={holder}"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// One line for a message, with its token masked.
fn describe(message: &Message) -> String {
    let what = format!("{} of {}", message.roles(), message.service());
    match message.kind() {
        MessageKind::ConfirmationRequested { resent, .. } => format!(
            "{}please confirm: {what} to {} (asked by {}), token ••••••••",
            if *resent { "[new token] " } else { "" },
            message.incoming(),
            message.requester(),
        ),
        MessageKind::Applied => format!("done: {what} now held by {}", message.incoming()),
        MessageKind::Replaced => format!("you were replaced as {what} by {}", message.incoming()),
        MessageKind::Refused { by } => format!("refused by {by}: {what}"),
        MessageKind::Cancelled => format!("cancelled by {}: {what}", message.requester()),
        MessageKind::Expired => format!("expired unconfirmed: {what}"),
        MessageKind::Failed { reason } => format!("failed: {what}: {reason}"),
    }
}

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
        .map_or_else(|| "system".to_owned(), |c| c.to_string());
    format!("{:02}:{:02} {by:<12} {what}", at.hour(), at.minute())
}

fn step(title: &str) {
    println!("\n== {title}");
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

#[expect(
    clippy::too_many_lines,
    reason = "the story reads best top to bottom, one step after another"
)]
fn main() -> Result<(), Error> {
    let alice: CustomerId = "AL10001-OVH".parse()?;
    let bob: CustomerId = "BO20002-OVH".parse()?;
    let carol: CustomerId = "CA30003-OVH".parse()?;
    let dave: CustomerId = "DA40004-OVH".parse()?;
    let erin: CustomerId = "ER50005-OVH".parse()?;

    let directory = MemoryDirectory::new();
    for customer in [alice, bob, carol, dave] {
        directory.add(customer);
    }
    // Erin has unpaid bills (R14).
    directory.set_good_standing(erin, false);
    let mut host = Host {
        notifier: MemoryNotifier::new(),
        directory,
        now: datetime!(2026-11-21 09:00 UTC),
        inbox: RefCell::new(Vec::new()),
    };
    let rng = &mut OsRng;

    let dir = fresh_dir()?;
    let file = dir.join("contacts.db");
    let store = SqliteStore::open(&file)?;
    println!(
        "database: {} (journal mode {})",
        file.display(),
        store.journal_mode()?
    );

    step("1. Alice orders example.com: she holds all three roles (R5)");
    let site: ServiceName = "example.com".parse()?;
    host.driver(&store).order_service(&site, alice)?;
    println!("    contacts: {}", contacts(&store, &site)?);

    step("2. As admin, Alice designates Bob as tech contact (R8a, R16, R36)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Tech, bob);
    let opened = host.driver(&store).submit(&edit, alice, host.now, rng)?;
    let request = opened.value[0];
    println!("    request {request} opened");
    host.show_mail();
    host.now += Duration::minutes(10);
    let accepted =
        host.driver(&store)
            .accept(request, bob, &host.token(bob, request)?, host.now)?;
    let missing: Vec<String> = accepted
        .value
        .missing_at(host.now)
        .iter()
        .map(ToString::to_string)
        .collect();
    println!(
        "    Bob confirms; still waiting for: {} (R19)",
        missing.join(", ")
    );
    let done =
        host.driver(&store)
            .accept(request, alice, &host.token(alice, request)?, host.now)?;
    println!(
        "    Alice confirms; request is {} (R20)",
        done.value.state().name()
    );
    host.show_mail();
    println!("    contacts: {}", contacts(&store, &site)?);

    step("3. Alice replaces Bob by Carol; Bob, the old tech contact, is told (R17, R38)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Tech, carol);
    let request = host
        .driver(&store)
        .submit(&edit, alice, host.now, rng)?
        .value[0];
    host.show_mail();
    for who in [carol, alice] {
        let _ = host
            .driver(&store)
            .accept(request, who, &host.token(who, request)?, host.now)?;
    }
    host.show_mail();
    println!("    contacts: {}", contacts(&store, &site)?);

    step("4. A wrong token is rejected, with one error for every case (R24, R25)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Billing, dave);
    let billing = host
        .driver(&store)
        .submit(&edit, alice, host.now, rng)?
        .value[0];
    host.show_mail();
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    match host.driver(&store).accept(billing, dave, wrong, host.now) {
        Err(err) => println!("    Dave types a wrong code: {err}"),
        Ok(_) => return Err("a wrong token was accepted".into()),
    }
    match host
        .driver(&store)
        .accept(billing, dave, &host.token(alice, billing)?, host.now)
    {
        Err(err) => println!("    Dave tries Alice's code: {err}"),
        Ok(_) => return Err("another party's token was accepted".into()),
    }

    step("The host restarts: the database is closed, then the file is opened again");
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
    show_request(&after, host.now);
    println!("    contacts: {}", contacts(&store, &site)?);

    step(
        "5. The billing contact hands billing over to Dave, with the codes mailed before the restart (R10, R14)",
    );
    host.now += Duration::hours(1);
    for who in [dave, alice] {
        let _ = host
            .driver(&store)
            .accept(billing, who, &host.token(who, billing)?, host.now)?;
    }
    host.show_mail();
    println!("    contacts: {}", contacts(&store, &site)?);

    step("6. Dave, now billing, tries to hand billing to Erin, who has unpaid bills (R14)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Billing, erin);
    match host.driver(&store).submit(&edit, dave, host.now, rng) {
        Err(err) => println!("    refused: {err}"),
        Ok(_) => return Err("a billing change to a customer behind with payments opened".into()),
    }
    let edit = Edit::new(site.clone()).with(Role::Admin, dave);
    match host.driver(&store).submit(&edit, dave, host.now, rng) {
        Err(err) => println!("    and Dave may not touch the admin contact: {err} (R11)"),
        Ok(_) => return Err("the billing contact changed the admin".into()),
    }
    let may = host.driver(&store).proposable(&site, dave, host.now)?;
    println!("    what Dave may propose (R15): {}", may.allowed());

    step("7. The admin takes the tech role herself: one confirmation is enough (R8b, R16)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Tech, alice);
    let request = host
        .driver(&store)
        .submit(&edit, alice, host.now, rng)?
        .value[0];
    host.show_mail();
    let done =
        host.driver(&store)
            .accept(request, alice, &host.token(alice, request)?, host.now)?;
    println!("    request is {}", done.value.state().name());
    host.show_mail();
    println!("    contacts: {}", contacts(&store, &site)?);

    step("8. Alice proposes Bob as admin; Bob never answers and the request expires (R29)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Admin, bob);
    let request = host
        .driver(&store)
        .submit(&edit, alice, host.now, rng)?
        .value[0];
    host.show_mail();
    let deadline = store
        .request(request)?
        .map(|r| r.deadline())
        .ok_or("request not stored")?;
    println!(
        "    deadline: {}-{:02}-{:02} {:02}:{:02} UTC (7 days)",
        deadline.year(),
        u8::from(deadline.month()),
        deadline.day(),
        deadline.hour(),
        deadline.minute()
    );
    host.now += Duration::minutes(30);
    println!("    Bob says he got no mail; Alice fixes his address and resends (R22, R23)");
    let _ = host.driver(&store).resend(request, alice, host.now, rng)?;
    host.show_mail();
    host.now += Duration::days(8);
    let due = store.due_for_expiry(host.now)?.len();
    let expired = host.driver(&store).expire_due(host.now)?;
    println!(
        "    eight days later, {due} request(s) due, {} expired",
        expired.value.len()
    );
    host.show_mail();

    step("9. Dave hands billing to Carol; both still have to confirm");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Billing, carol);
    let _ = host.driver(&store).submit(&edit, dave, host.now, rng)?;
    host.show_mail();

    step("10. \"My contacts\" (R6), from the services' holder indexes");
    host.now += Duration::hours(1);
    let blog: ServiceName = "blog.example.net".parse()?;
    host.driver(&store).order_service(&blog, bob)?;
    for customer in [alice, bob, carol, dave] {
        for (service, roles) in host.driver(&store).my_contacts(customer)? {
            println!("    {customer:<12} {service:<18} {roles}");
        }
    }

    step("11. \"My requests\" (R35), from the request_parties index");
    host.now += Duration::hours(1);
    println!(
        "    {:<12} {:<22} {:<16} {:<8} waits for me",
        "customer", "state", "service", "roles"
    );
    for customer in [alice, bob, carol] {
        for view in host.driver(&store).my_requests(customer, host.now)? {
            println!(
                "    {customer:<12} {:<22} {:<16} {:<8} {}",
                view.state.as_str(),
                view.request.service().as_str(),
                view.request.roles().to_string(),
                if view.waits_for_me { "yes" } else { "no" },
            );
        }
    }

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
