//! The story of `service-contacts`, step by step, following the hosting
//! provider's guide "Managing the contacts of your services".
//!
//! Run it with `cargo run --example walkthrough`. Everything runs in memory:
//! the crate's `MemoryStore`, `MemoryNotifier` (our "mail server", whose
//! inboxes we read to find the tokens) and `MemoryDirectory` (the accounts).
//! Tokens come from the operating system's generator and are masked in the
//! output, as a real host must mask them in its logs.

use std::cell::RefCell;

use service_contacts::{
    CustomerId, Driver, Edit, MemoryDirectory, MemoryNotifier, MemoryStore, Message, MessageKind,
    OsRng, RequestId, Role, ServiceName, Store,
};
use time::{Duration, OffsetDateTime, macros::datetime};

type Error = Box<dyn std::error::Error>;

/// The host: a driver over in-memory parts, and a clock we move by hand.
struct Host {
    driver: Driver<MemoryStore, MemoryNotifier, MemoryDirectory>,
    now: OffsetDateTime,
    /// The confirmation codes delivered so far: recipient, request, token.
    inbox: RefCell<Vec<(CustomerId, RequestId, String)>>,
}

impl Host {
    /// Prints and clears the messages delivered since the last call.
    fn show_mail(&self) {
        for message in self.driver.notifier().take() {
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

    /// The contacts of `service`, on one line.
    fn contacts(&self, service: &ServiceName) -> Result<String, Error> {
        let loaded = self
            .driver
            .store()
            .service(service)?
            .ok_or("service not found")?;
        Ok(loaded
            .contacts()
            .iter()
            .map(|(role, holder)| format!("{role}={holder}"))
            .collect::<Vec<_>>()
            .join(", "))
    }
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

fn step(title: &str) {
    println!("\n== {title}");
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
        driver: Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory),
        now: datetime!(2026-11-21 09:00 UTC),
        inbox: RefCell::new(Vec::new()),
    };
    let rng = &mut OsRng;

    step("1. Alice orders example.com: she holds all three roles (R5)");
    let site: ServiceName = "example.com".parse()?;
    host.driver.order_service(&site, alice)?;
    println!("    contacts: {}", host.contacts(&site)?);

    step("2. As admin, Alice designates Bob as tech contact (R8a, R16, R36)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Tech, bob);
    let opened = host.driver.submit(&edit, alice, host.now, rng)?;
    let request = opened.value[0];
    println!("    request {request} opened");
    host.show_mail();
    host.now += Duration::minutes(10);
    let accepted = host
        .driver
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
    let done = host
        .driver
        .accept(request, alice, &host.token(alice, request)?, host.now)?;
    println!(
        "    Alice confirms; request is {} (R20)",
        done.value.state().name()
    );
    host.show_mail();
    println!("    contacts: {}", host.contacts(&site)?);

    step("3. Alice replaces Bob by Carol; Bob, the old tech contact, is told (R17, R38)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Tech, carol);
    let request = host.driver.submit(&edit, alice, host.now, rng)?.value[0];
    host.show_mail();
    for who in [carol, alice] {
        let _ = host
            .driver
            .accept(request, who, &host.token(who, request)?, host.now)?;
    }
    host.show_mail();
    println!("    contacts: {}", host.contacts(&site)?);

    step("4. A wrong token is rejected, with one error for every case (R24, R25)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Billing, dave);
    let request = host.driver.submit(&edit, alice, host.now, rng)?.value[0];
    host.show_mail();
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    match host.driver.accept(request, dave, wrong, host.now) {
        Err(err) => println!("    Dave types a wrong code: {err}"),
        Ok(_) => return Err("a wrong token was accepted".into()),
    }
    match host
        .driver
        .accept(request, dave, &host.token(alice, request)?, host.now)
    {
        Err(err) => println!("    Dave tries Alice's code: {err}"),
        Ok(_) => return Err("another party's token was accepted".into()),
    }

    step("5. The billing contact hands billing over to Dave (R10, R14)");
    host.now += Duration::hours(1);
    for who in [dave, alice] {
        let _ = host
            .driver
            .accept(request, who, &host.token(who, request)?, host.now)?;
    }
    host.show_mail();
    println!("    contacts: {}", host.contacts(&site)?);

    step("6. Dave, now billing, tries to hand billing to Erin, who has unpaid bills (R14)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Billing, erin);
    match host.driver.submit(&edit, dave, host.now, rng) {
        Err(err) => println!("    refused: {err}"),
        Ok(_) => return Err("a billing change to a customer behind with payments opened".into()),
    }
    let edit = Edit::new(site.clone()).with(Role::Admin, dave);
    match host.driver.submit(&edit, dave, host.now, rng) {
        Err(err) => println!("    and Dave may not touch the admin contact: {err} (R11)"),
        Ok(_) => return Err("the billing contact changed the admin".into()),
    }
    let may = host.driver.proposable(&site, dave, host.now)?;
    println!("    what Dave may propose (R15): {}", may.allowed());

    step("7. The admin takes the tech role herself: one confirmation is enough (R8b, R16)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Tech, alice);
    let request = host.driver.submit(&edit, alice, host.now, rng)?.value[0];
    host.show_mail();
    let done = host
        .driver
        .accept(request, alice, &host.token(alice, request)?, host.now)?;
    println!("    request is {}", done.value.state().name());
    host.show_mail();
    println!("    contacts: {}", host.contacts(&site)?);

    step("8. Alice proposes Bob as admin; Bob never answers and the request expires (R29)");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Admin, bob);
    let request = host.driver.submit(&edit, alice, host.now, rng)?.value[0];
    host.show_mail();
    let deadline = host
        .driver
        .my_requests(alice, host.now)?
        .iter()
        .find(|view| view.request.id() == request)
        .map(|view| view.request.deadline())
        .ok_or("request not listed")?;
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
    let _ = host.driver.resend(request, alice, host.now, rng)?;
    host.show_mail();
    host.now += Duration::days(8);
    let expired = host.driver.expire_due(host.now)?;
    println!(
        "    eight days later, {} request(s) expired",
        expired.value.len()
    );
    host.show_mail();

    step("9. Dave hands billing to Carol; both still have to confirm");
    host.now += Duration::hours(1);
    let edit = Edit::new(site.clone()).with(Role::Billing, carol);
    let _ = host.driver.submit(&edit, dave, host.now, rng)?;
    host.show_mail();

    step("10. \"My contacts\" (R6)");
    host.now += Duration::hours(1);
    let blog: ServiceName = "blog.example.net".parse()?;
    host.driver.order_service(&blog, bob)?;
    for customer in [alice, bob, carol, dave] {
        for (service, roles) in host.driver.my_contacts(customer)? {
            println!("    {customer:<12} {service:<18} {roles}");
        }
    }

    step("11. \"My requests\" (R35)");
    host.now += Duration::hours(1);
    println!(
        "    {:<12} {:<22} {:<16} {:<8} waits for me",
        "customer", "state", "service", "roles"
    );
    for customer in [alice, bob, carol] {
        for view in host.driver.my_requests(customer, host.now)? {
            println!(
                "    {customer:<12} {:<22} {:<16} {:<8} {}",
                view.state.as_str(),
                view.request.service().as_str(),
                view.request.roles().to_string(),
                if view.waits_for_me { "yes" } else { "no" },
            );
        }
    }
    println!("\nThe end: every step above ran through the crate's driver and in-memory host.");
    Ok(())
}
