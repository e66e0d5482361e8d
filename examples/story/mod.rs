//! The contact-change story, told against any `Store`: the walkthrough tells
//! it in memory, the `SQLite` example (`service-contacts-sqlite/examples/`,
//! which includes this file by path) on a file it closes and reopens
//! half-way.
//!
//! It follows the hosting provider's guide "Managing the contacts of your
//! services". Mail and accounts stay in memory (`MemoryNotifier`, whose
//! deliveries are the customers' inboxes, and `MemoryDirectory`). Tokens come
//! from the operating system's generator and are masked in the output, as a
//! real host must mask them in its logs.

use std::cell::RefCell;

use service_contacts::{
    ChangeRequest, CustomerId, Driver, Edit, HistoryEntry, MemoryDirectory, MemoryNotifier,
    Message, MessageKind, OperatorAct, OsRng, PageSize, Part, RequestFilter, RequestId, Role,
    ServiceName, StateName, Store,
};
use time::{Duration, OffsetDateTime, macros::datetime};

/// What every step may fail with.
pub(crate) type Error = Box<dyn std::error::Error>;

/// The driver of one step: the given store, the story's mail and accounts.
pub(crate) type StoryDriver<'a, S> = Driver<&'a S, &'a MemoryNotifier, &'a MemoryDirectory>;

/// The people of the story.
#[derive(Clone, Copy)]
pub(crate) struct Cast {
    pub(crate) alice: CustomerId,
    pub(crate) bob: CustomerId,
    pub(crate) carol: CustomerId,
    pub(crate) dave: CustomerId,
    /// Behind with payments (R14).
    pub(crate) erin: CustomerId,
}

/// The host around the store: mail, accounts, a clock moved by hand, and the
/// codes the customers received.
pub(crate) struct Story {
    pub(crate) cast: Cast,
    pub(crate) site: ServiceName,
    pub(crate) now: OffsetDateTime,
    notifier: MemoryNotifier,
    directory: MemoryDirectory,
    inbox: RefCell<Vec<(CustomerId, RequestId, String)>>,
}

impl Story {
    /// The cast, their accounts, and the clock at the start.
    pub(crate) fn new() -> Result<Story, Error> {
        let cast = Cast {
            alice: "AL10001-OVH".parse()?,
            bob: "BO20002-OVH".parse()?,
            carol: "CA30003-OVH".parse()?,
            dave: "DA40004-OVH".parse()?,
            erin: "ER50005-OVH".parse()?,
        };
        let directory = MemoryDirectory::new();
        for customer in [cast.alice, cast.bob, cast.carol, cast.dave] {
            directory.add(customer);
        }
        directory.set_good_standing(cast.erin, false);
        Ok(Story {
            cast,
            site: "example.com".parse()?,
            now: datetime!(2026-11-21 09:00 UTC),
            notifier: MemoryNotifier::new(),
            directory,
            inbox: RefCell::new(Vec::new()),
        })
    }

    /// A driver over `store` and the story's mail and accounts.
    pub(crate) fn driver<'a, S: Store>(&'a self, store: &'a S) -> StoryDriver<'a, S> {
        Driver::new(store, &self.notifier, &self.directory)
    }

    /// Prints and clears the messages delivered since the last call, keeping
    /// the codes in the inbox.
    pub(crate) fn show_mail(&self) {
        for message in self.notifier.take() {
            println!("    mail to {}: {}", message.to(), describe(&message));
            if let (Some(token), Some(request)) = (message.token(), message.request()) {
                self.inbox
                    .borrow_mut()
                    .push((message.to(), request, token.reveal()));
            }
        }
    }

    /// The latest code `customer` received for `request`.
    pub(crate) fn token(&self, customer: CustomerId, request: RequestId) -> Result<String, Error> {
        self.inbox
            .borrow()
            .iter()
            .rev()
            .find(|(to, id, _)| *to == customer && *id == request)
            .map(|(_, _, token)| token.clone())
            .ok_or_else(|| format!("{customer} has no token for {request}").into())
    }

    /// `actor` proposes `incoming` for `role` of the site; the mail is shown.
    fn propose<S: Store>(
        &self,
        store: &S,
        actor: CustomerId,
        role: Role,
        incoming: CustomerId,
    ) -> Result<RequestId, Error> {
        let edit = Edit::new(self.site.clone()).with(role, incoming);
        let opened = self
            .driver(store)
            .submit(&edit, actor, self.now, &mut OsRng)?;
        self.show_mail();
        Ok(opened.value[0])
    }

    /// `who` confirms `request` with the last code they received.
    fn confirm<S: Store>(
        &self,
        store: &S,
        request: RequestId,
        who: CustomerId,
    ) -> Result<ChangeRequest, Error> {
        let token = self.token(who, request)?;
        Ok(self
            .driver(store)
            .accept(request, who, &token, self.now)?
            .value)
    }

    /// Starts a step: its title, and an hour later on the clock.
    pub(crate) fn step(&mut self, title: &str) {
        println!("\n== {title}");
        self.now += Duration::hours(1);
    }

    /// Steps 1 to 4. Returns the billing request left open at the end, for
    /// the second half to finish.
    pub(crate) fn first_half<S: Store>(&mut self, store: &S) -> Result<RequestId, Error> {
        let Cast {
            alice,
            bob,
            carol,
            dave,
            ..
        } = self.cast;
        let site = self.site.clone();

        self.step("1. Alice orders example.com: she holds all three roles (R5)");
        self.driver(store).order_service(&site, alice)?;
        println!("    contacts: {}", contacts(store, &site)?);

        self.step("2. As admin, Alice designates Bob as tech contact (R8a, R16, R36)");
        let request = self.propose(store, alice, Role::Tech, bob)?;
        println!("    request {request} opened");
        self.now += Duration::minutes(10);
        let accepted = self.confirm(store, request, bob)?;
        let missing: Vec<String> = accepted
            .missing_at(self.now)
            .iter()
            .map(ToString::to_string)
            .collect();
        println!(
            "    Bob confirms; still waiting for: {} (R19)",
            missing.join(", ")
        );
        let done = self.confirm(store, request, alice)?;
        println!(
            "    Alice confirms; request is {} (R20)",
            done.state().name()
        );
        self.show_mail();
        println!("    contacts: {}", contacts(store, &site)?);

        self.step("3. Alice replaces Bob by Carol; Bob, the old tech contact, is told (R17, R38)");
        let request = self.propose(store, alice, Role::Tech, carol)?;
        for who in [carol, alice] {
            self.confirm(store, request, who)?;
        }
        self.show_mail();
        println!("    contacts: {}", contacts(store, &site)?);

        self.step("4. A wrong token is rejected, with one error for every case (R24, R25)");
        let billing = self.propose(store, alice, Role::Billing, dave)?;
        let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        match self.driver(store).accept(billing, dave, wrong, self.now) {
            Err(err) => println!("    Dave types a wrong code: {err}"),
            Ok(_) => return Err("a wrong token was accepted".into()),
        }
        let alices = self.token(alice, billing)?;
        match self.driver(store).accept(billing, dave, &alices, self.now) {
            Err(err) => println!("    Dave tries Alice's code: {err}"),
            Ok(_) => return Err("another party's token was accepted".into()),
        }
        Ok(billing)
    }

    /// Steps 5 to 11, finishing the billing request left open by the first
    /// half.
    pub(crate) fn second_half<S: Store>(
        &mut self,
        store: &S,
        billing: RequestId,
    ) -> Result<(), Error> {
        let Cast {
            alice, dave, erin, ..
        } = self.cast;
        let site = self.site.clone();
        let rng = &mut OsRng;

        self.step("5. The billing contact hands billing over to Dave (R10, R14)");
        for who in [dave, alice] {
            self.confirm(store, billing, who)?;
        }
        self.show_mail();
        println!("    contacts: {}", contacts(store, &site)?);

        self.step(
            "6. Dave, now billing, tries to hand billing to Erin, who has unpaid bills (R14)",
        );
        let edit = Edit::new(site.clone()).with(Role::Billing, erin);
        match self.driver(store).submit(&edit, dave, self.now, rng) {
            Err(err) => println!("    refused: {err}"),
            Ok(_) => {
                return Err("a billing change to a customer behind with payments opened".into());
            }
        }
        let edit = Edit::new(site.clone()).with(Role::Admin, dave);
        match self.driver(store).submit(&edit, dave, self.now, rng) {
            Err(err) => println!("    and Dave may not touch the admin contact: {err} (R11)"),
            Ok(_) => return Err("the billing contact changed the admin".into()),
        }
        let may = self.driver(store).proposable(&site, dave, self.now)?;
        println!("    what Dave may propose (R15): {}", may.allowed());

        self.step(
            "7. The admin takes the tech role herself: one confirmation is enough (R8b, R16)",
        );
        let request = self.propose(store, alice, Role::Tech, alice)?;
        let done = self.confirm(store, request, alice)?;
        println!("    request is {}", done.state().name());
        self.show_mail();
        println!("    contacts: {}", contacts(store, &site)?);

        self.last_steps(store)
    }

    /// Steps 8 to 11: an expiry, then the listings.
    fn last_steps<S: Store>(&mut self, store: &S) -> Result<(), Error> {
        let Cast {
            alice,
            bob,
            carol,
            dave,
            ..
        } = self.cast;
        let rng = &mut OsRng;

        self.step(
            "8. Alice proposes Bob as admin; Bob never answers and the request expires (R29)",
        );
        let request = self.propose(store, alice, Role::Admin, bob)?;
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
        self.now += Duration::minutes(30);
        println!("    Bob says he got no mail; Alice fixes his address and resends (R22, R23)");
        let _ = self.driver(store).resend(request, alice, self.now, rng)?;
        self.show_mail();
        self.now += Duration::days(8);
        let expired = self.driver(store).expire_due(self.now)?;
        println!(
            "    eight days later, {} request(s) expired",
            expired.value.expired.len()
        );
        self.show_mail();

        self.step("9. Dave hands billing to Carol; both still have to confirm");
        self.propose(store, dave, Role::Billing, carol)?;

        self.listings(store)?;
        self.support(store)
    }

    /// Step 12: the support desk, and the service's history.
    fn support<S: Store>(&mut self, store: &S) -> Result<(), Error> {
        let carol = self.cast.carol;
        let site = self.site.clone();
        let rng = &mut OsRng;

        self.step("12. Support: operators act, with a reason, and the history keeps it (R46, R47)");
        // The host authenticates its staff; the crate records who and why.
        let jane = "jane@support".parse()?;
        let open = self
            .driver(store)
            .my_requests(
                carol,
                &RequestFilter::all().state(StateName::ValidatingByCustomers),
                self.now,
                None,
                PageSize::default(),
            )?
            .items
            .first()
            .map(|row| row.id)
            .ok_or("Dave's request to Carol is not open")?;
        let why = OperatorAct::new(
            jane,
            "Carol cannot receive mail; she asked us to stop it".parse()?,
        );
        let cancelled = self
            .driver(store)
            .cancel_by_operator(open, &why, self.now)?;
        println!(
            "    Jane cancels Dave's billing request to Carol: {}",
            cancelled.value.state().name()
        );
        self.show_mail();
        let why = OperatorAct::new(
            "jane@support".parse()?,
            "Alice lost her mailbox; identity checked by phone; she asks for Carol as tech"
                .parse()?,
        );
        let edit = Edit::new(site.clone()).with(Role::Tech, carol);
        let assigned = self.driver(store).assign(&edit, &why, self.now, rng)?;
        println!(
            "    Jane assigns tech to Carol directly, no confirmation (R13, R14, R31, R32): assignment {}",
            assigned.value.id()
        );
        self.show_mail();
        println!("    contacts: {}", contacts(store, &site)?);
        match self.driver(store).assign(
            &Edit::new(site.clone()).with(Role::Billing, self.cast.erin),
            &why,
            self.now,
            rng,
        ) {
            Err(err) => println!("    and support cannot give billing to Erin either: {err} (R14)"),
            Ok(_) => {
                return Err("an operator gave billing to a customer behind with payments".into());
            }
        }

        println!("    the history of {site}, newest first, 3 entries a page:");
        let rows = PageSize::new(3)?;
        let mut after = None;
        loop {
            let page = self.driver(store).history(&site, after.as_ref(), rows)?;
            for entry in &page.items {
                println!("      {}", history_line(entry));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(())
    }

    /// Steps 10 and 11: the listings, a page at a time.
    fn listings<S: Store>(&mut self, store: &S) -> Result<(), Error> {
        let Cast {
            alice,
            bob,
            carol,
            dave,
            ..
        } = self.cast;
        self.step("10. \"My contacts\" (R6), a page at a time (R45)");
        let blog: ServiceName = "blog.example.net".parse()?;
        self.driver(store).order_service(&blog, bob)?;
        for customer in [alice, bob, carol, dave] {
            let mut after = None;
            loop {
                let page = self.driver(store).my_contacts(
                    customer,
                    after.as_ref(),
                    PageSize::default(),
                )?;
                for (service, roles) in &page.items {
                    println!("    {customer:<12} {service:<18} {roles}");
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }

        self.step("11. \"My requests\" (R35), filtered and paged (R45)");
        let size = PageSize::new(2)?;
        let sent = RequestFilter::all().part(Part::AskedByMe);
        let mut after = None;
        for number in 1.. {
            let page =
                self.driver(store)
                    .my_requests(alice, &sent, self.now, after.as_ref(), size)?;
            println!("    what {alice} asked for, page {number} (2 rows a page):");
            for row in &page.items {
                println!(
                    "      {:<22} {:<16} {:<13} to {}",
                    row.state.as_str(),
                    row.service.as_str(),
                    row.roles.to_string(),
                    row.incoming,
                );
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let waiting = RequestFilter::all().part(Part::WaitingForMe);
        for customer in [alice, bob, carol, dave] {
            let page = self.driver(store).my_requests(
                customer,
                &waiting,
                self.now,
                None,
                PageSize::default(),
            )?;
            let rows: Vec<String> = page
                .items
                .iter()
                .map(|row| format!("{} of {}", row.roles, row.service))
                .collect();
            println!(
                "    waiting for {customer:<12} {}",
                if rows.is_empty() {
                    "nothing".to_owned()
                } else {
                    rows.join("; ")
                }
            );
        }
        Ok(())
    }
}

/// One line for an entry of a service's history: what, and who acted last.
fn history_line(entry: &HistoryEntry) -> String {
    match entry {
        HistoryEntry::Request(request) => {
            let last = request.history().last();
            let by = last
                .and_then(|e| e.actor())
                .map_or_else(|| "the system".to_owned(), ToString::to_string);
            format!(
                "request    {:<22} {} to {}, {} events, last by {by}",
                request.state().name().as_str(),
                request.roles(),
                request.incoming(),
                request.history().len(),
            )
        }
        HistoryEntry::Assignment(assignment) => {
            let moved: Vec<String> = assignment
                .changes()
                .iter()
                .map(|c| format!("{} {} -> {}", c.role, c.from, c.to))
                .collect();
            format!(
                "assignment {:<22} {} by operator {}: \"{}\"",
                "",
                moved.join(", "),
                assignment.by().operator(),
                assignment.by().reason()
            )
        }
    }
}

/// The contacts of `service` as stored, on one line.
pub(crate) fn contacts<S: Store>(store: &S, service: &ServiceName) -> Result<String, Error> {
    let loaded = store.service(service)?.ok_or("service not found")?;
    Ok(loaded
        .contacts()
        .iter()
        .map(|(role, holder)| format!("{role}={holder}"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// One line for a message, with its token masked.
pub(crate) fn describe(message: &Message) -> String {
    let what = format!("{} of {}", message.roles(), message.service());
    // Every message about a request names its requester and incoming
    // customer; one about an operator's assignment names neither.
    let who = |customer: Option<CustomerId>| customer.map_or_else(String::new, |c| c.to_string());
    let (requester, incoming) = (who(message.requester()), who(message.incoming()));
    match message.kind() {
        MessageKind::ConfirmationRequested { resent, .. } => format!(
            "{}please confirm: {what} to {incoming} (asked by {requester}), token ••••••••",
            if *resent { "[new token] " } else { "" },
        ),
        MessageKind::Applied => format!("done: {what} now held by {incoming}"),
        MessageKind::Replaced => format!("you were replaced as {what} by {incoming}"),
        MessageKind::Refused { by } => format!("refused by {by}: {what}"),
        MessageKind::Cancelled { by } => match by.operator() {
            Some(act) => format!(
                "cancelled by support ({}): {what}: \"{}\"",
                act.operator(),
                act.reason()
            ),
            None => format!("cancelled by {by}: {what}"),
        },
        MessageKind::Expired => format!("expired unconfirmed: {what}"),
        MessageKind::Failed { reason } => format!("failed: {what}: {reason}"),
        MessageKind::Assigned { by, changes } => {
            let moved: Vec<String> = changes
                .iter()
                .map(|c| format!("{} {} -> {}", c.role, c.from, c.to))
                .collect();
            format!(
                "support ({}) changed the contacts of {}: {}: \"{}\"",
                by.operator(),
                message.service(),
                moved.join(", "),
                by.reason()
            )
        }
    }
}
