//! Attacks on the operator actions (R46) and a service's history (R47), from
//! an independent review: each test asserts what the rules require, and each
//! of the stored-form and reason tests failed before its fix. Most read
//! stored forms back, so the file needs feature `serde`.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ChangeRequest, Contacts, Cursor, CustomerId, Driver, Edit, HistoryEntry, MemoryDirectory,
    MemoryNotifier, MemoryStore, OperatorAct, OperatorId, PageSize, Reason, RequestId, Role,
    ServiceName, Store,
};
use time::{Duration, OffsetDateTime, macros::datetime};

const T0: OffsetDateTime = datetime!(2030-01-01 12:00 UTC);

fn c(text: &str) -> CustomerId {
    text.parse().unwrap()
}
fn name(text: &str) -> ServiceName {
    text.parse().unwrap()
}
fn act(reason: &str) -> OperatorAct {
    OperatorAct::new("jane@support".parse().unwrap(), reason.parse().unwrap())
}
fn mins(n: i64) -> OffsetDateTime {
    T0 + Duration::minutes(n)
}

struct World {
    store: MemoryStore,
    notifier: MemoryNotifier,
    directory: MemoryDirectory,
}

impl World {
    fn new() -> World {
        let w = World {
            store: MemoryStore::new(),
            notifier: MemoryNotifier::new(),
            directory: MemoryDirectory::new(),
        };
        for x in [
            "AD1-OVH", "TE2-OVH", "BI3-OVH", "NA4-OVH", "NT5-OVH", "XX6-OVH",
        ] {
            w.directory.add(c(x));
        }
        w
    }
    fn d(&self) -> Driver<&MemoryStore, &MemoryNotifier, &MemoryDirectory> {
        Driver::new(&self.store, &self.notifier, &self.directory)
    }
    fn request(&self, id: RequestId) -> ChangeRequest {
        self.store.request(id).unwrap().unwrap()
    }
}

fn all_pages(w: &World, site: &ServiceName, rows: usize) -> Vec<HistoryEntry> {
    let d = w.d();
    let page_size = PageSize::new(rows).unwrap();
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..1000 {
        let page = d.history(site, cursor.as_ref(), page_size).unwrap();
        out.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next.to_string().parse().unwrap()),
            None => return out,
        }
    }
    panic!("history never ends");
}

fn key_of(e: &HistoryEntry) -> (String, [u8; 16]) {
    match e {
        HistoryEntry::Request(r) => ("request".into(), *r.id().as_bytes()),
        HistoryEntry::Assignment(a) => ("assignment".into(), *a.id().as_bytes()),
    }
}

// ----- history paging: ties between requests and assignments at one time -----

/// R47: many requests and assignments at the very same instant, paged at
/// every size: each entry exactly once, in the history order.
#[test]
fn history_ties_at_one_instant_page_exactly_once() {
    let w = World::new();
    let d = w.d();
    let site = name("tie.example");
    d.order_service(&site, c("AD1-OVH")).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    // Each round: a request on tech at T0, then an assignment of tech at
    // T0 that fails it (so the next request may open).
    let people = ["TE2-OVH", "NA4-OVH", "NT5-OVH", "XX6-OVH"];
    let mut holder = c("AD1-OVH");
    for i in 0..12 {
        let p = c(people[i % 4]);
        let q = c(people[(i + 1) % 4]);
        let p = if p == holder {
            c(people[(i + 2) % 4])
        } else {
            p
        };
        let edit = Edit::new(site.clone()).with(Role::Tech, p);
        let _ = d.submit(&edit, c("AD1-OVH"), T0, &mut rng).unwrap();
        let q = if q == holder {
            c(people[(i + 3) % 4])
        } else {
            q
        };
        let edit = Edit::new(site.clone()).with(Role::Tech, q);
        let _ = d.assign(&edit, &act("tie"), T0, &mut rng).unwrap();
        holder = q;
    }
    let full = all_pages(&w, &site, 500);
    assert!(full.len() >= 20, "{}", full.len());
    for size in 1..=full.len() + 1 {
        let paged = all_pages(&w, &site, size);
        let a: Vec<_> = paged.iter().map(key_of).collect();
        let b: Vec<_> = full.iter().map(key_of).collect();
        assert_eq!(a, b, "page size {size}");
    }
    // In the documented order.
    for pair in full.windows(2) {
        assert!(pair[0].key().listed_before(&pair[1].key()));
    }
}

// ----- history of a name removed and ordered again by someone else -----

// ----- operator acts on terminal requests -----

#[test]
fn operator_acts_never_touch_terminal_requests() {
    let w = World::new();
    let d = w.d();
    let site = name("term.example");
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    d.order_service(&site, c("AD1-OVH")).unwrap();
    let edit = Edit::new(site.clone()).with(Role::Tech, c("TE2-OVH"));
    let id = d
        .submit(&edit, c("AD1-OVH"), mins(1), &mut rng)
        .unwrap()
        .value[0];
    let _ = d.cancel(id, c("AD1-OVH"), mins(2)).unwrap();
    let before = w.request(id);
    assert!(d.cancel_by_operator(id, &act("x"), mins(3)).is_err());
    assert!(
        d.resend_by_operator(id, &act("x"), mins(30), &mut rng)
            .is_err()
    );
    // An assignment after the cancel must not rewrite the cancelled request.
    let _ = d
        .assign(
            &Edit::new(site.clone()).with(Role::Tech, c("NT5-OVH")),
            &act("x"),
            mins(40),
            &mut rng,
        )
        .unwrap();
    assert_eq!(w.request(id), before);
}

// ----- assign: messages, R13/R14 -----

/// R46: every old and new holder told once; an assignment that names the
/// current holder for some roles tells nobody about those roles.
#[test]
fn assign_messages_once_each_and_only_for_changed_roles() {
    let w = World::new();
    let d = w.d();
    let site = name("msg.example");
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    d.import_services([(
        site.clone(),
        Contacts::new(c("AD1-OVH"), c("TE2-OVH"), c("BI3-OVH")),
    )])
    .unwrap();
    let mark = w.notifier.delivered().len();
    // admin stays (named with its holder), tech -> AD1 (admin takes tech),
    // billing -> TE2 (old tech takes billing).
    let edit = Edit::new(site.clone())
        .with(Role::Admin, c("AD1-OVH"))
        .with(Role::Tech, c("AD1-OVH"))
        .with(Role::Billing, c("TE2-OVH"));
    let a = d
        .assign(&edit, &act("swap"), mins(1), &mut rng)
        .unwrap()
        .value;
    assert_eq!(a.changes().len(), 2);
    let sent = w.notifier.delivered()[mark..].to_vec();
    let to: Vec<_> = sent.iter().map(service_contacts::Message::to).collect();
    let unique: HashSet<_> = to.iter().copied().collect();
    assert_eq!(to.len(), unique.len(), "someone told twice: {to:?}");
    assert_eq!(
        unique,
        [c("AD1-OVH"), c("TE2-OVH"), c("BI3-OVH")]
            .into_iter()
            .collect()
    );
    for m in &sent {
        assert!(!m.roles().contains(Role::Admin), "{m:?}");
    }
}

/// R14: the outgoing billing holder behind with payments stops an
/// assignment of billing, also when the incoming customer takes several
/// roles.
#[test]
fn assign_billing_checks_the_outgoing_holder() {
    let w = World::new();
    let d = w.d();
    let site = name("r14.example");
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    d.import_services([(
        site.clone(),
        Contacts::new(c("AD1-OVH"), c("TE2-OVH"), c("BI3-OVH")),
    )])
    .unwrap();
    w.directory.set_good_standing(c("BI3-OVH"), false);
    let edit = Edit::new(site.clone())
        .with(Role::Tech, c("NT5-OVH"))
        .with(Role::Billing, c("NT5-OVH"));
    assert!(d.assign(&edit, &act("x"), mins(1), &mut rng).is_err());
    // And the outgoing billing contact whose account was closed.
    w.directory.set_good_standing(c("BI3-OVH"), true);
    w.directory.remove(c("BI3-OVH"));
    assert!(d.assign(&edit, &act("x"), mins(1), &mut rng).is_err());
}

// ----- stored data the engine could never produce -----

/// Builds a request cancelled by an operator, through the driver, and
/// returns it as JSON.
fn operator_cancelled(w: &World) -> (serde_json::Value, ChangeRequest) {
    let d = w.d();
    let site = name("stored.example");
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    d.order_service(&site, c("AD1-OVH")).unwrap();
    let edit = Edit::new(site.clone()).with(Role::Tech, c("TE2-OVH"));
    let id = d
        .submit(&edit, c("AD1-OVH"), mins(1), &mut rng)
        .unwrap()
        .value[0];
    let _ = d
        .resend_by_operator(id, &act("mail fixed"), mins(10), &mut rng)
        .unwrap();
    let _ = d
        .cancel_by_operator(id, &act("customer asked by phone"), mins(20))
        .unwrap();
    let r = w.request(id);
    (serde_json::to_value(&r).unwrap(), r)
}

/// R43: an operator cancel after the request's deadline can never be
/// produced (an operator cannot cancel a request past its deadline), yet
/// reads back.
#[test]
fn stored_operator_cancel_after_the_deadline_is_refused() {
    let w = World::new();
    let (mut json, r) = operator_cancelled(&w);
    let late = r.deadline() + Duration::days(3);
    let late = late
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    json["state"]["at"] = late.clone().into();
    let n = json["history"].as_array().unwrap().len();
    json["history"][n - 1]["at"] = late.into();
    let back = serde_json::from_value::<ChangeRequest>(json.clone());
    assert!(back.is_err(), "accepted: {json}");
}

/// R43: a resend by a customer who is not a confirmer (or by nobody) can
/// never be produced (R22: confirmers only), yet reads back.
#[test]
fn stored_resend_by_a_non_confirmer_is_refused() {
    let w = World::new();
    let (json, _) = operator_cancelled(&w);
    let history = json["history"].as_array().unwrap();
    let i = history
        .iter()
        .position(|e| e["event"] == "tokenReissued" || e.to_string().contains("eissued"))
        .unwrap_or_else(|| panic!("no reissue in {json}"));
    let mut accepted = Vec::new();
    // An outgoing-only party, a stranger, nobody.
    for actor in [serde_json::json!("XX6-OVH"), serde_json::Value::Null] {
        let mut j = json.clone();
        j["history"][i]["actor"] = actor.clone();
        if serde_json::from_value::<ChangeRequest>(j.clone()).is_ok() {
            accepted.push(actor.to_string());
        }
    }
    assert!(accepted.is_empty(), "accepted a reissue by {accepted:?}");
}

// ----- Reason and OperatorId -----

#[test]
fn reasons_that_show_nothing_or_hide_text_are_refused() {
    // R46: every operator act carries a reason a reader can see.
    // U+2800 BRAILLE PATTERN BLANK shows nothing.
    let mut accepted = Vec::new();
    for blank in ["\u{2800}", "\u{2800}\u{2800} \u{2800}", "\u{3164}\u{2800}"] {
        if Reason::parse(blank).is_ok() {
            accepted.push(format!("{blank:?}"));
        }
    }
    // Tag characters carry text a reader never sees.
    let hidden: String = "ok"
        .chars()
        .chain(
            "transfer to XX6"
                .chars()
                .map(|c| char::from_u32(0xE0000 + c as u32).unwrap()),
        )
        .collect();
    if Reason::parse(&hidden).is_ok() {
        accepted.push("tag characters".into());
    }
    // Variation selectors stay: they choose how the character before them
    // is drawn (emoji, ideographs), and carry no words (a design choice).
    assert!(Reason::parse("ok \u{2764}\u{fe0f}").is_ok());
    // Interlinear annotations hide text in some renderers.
    if Reason::parse("ok\u{fff9}hidden\u{fffa}x\u{fffb}").is_ok() {
        accepted.push("interlinear annotation".into());
    }
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}

#[test]
fn operator_ids_and_reasons_do_not_panic_and_say_where() {
    for text in ["", " ", "é", "a\u{0}", &"a".repeat(65), &"é".repeat(40)] {
        let _ = text.parse::<OperatorId>().map_err(|e| e.to_string());
        let _ = text.parse::<Reason>().map_err(|e| e.to_string());
    }
    let e = "abcé".parse::<OperatorId>().unwrap_err().to_string();
    assert!(e.contains("position 3"), "{e}");
    let long: String = "é".repeat(501);
    let e = long.parse::<Reason>().unwrap_err().to_string();
    assert!(e.contains("501"), "{e}");
    assert!("é".repeat(500).parse::<Reason>().is_ok());
}

/// R43 through the export form: a request entry reads back validated.
#[test]
fn history_entry_of_a_request_reads_back_validated() {
    let w = World::new();
    let (json, r) = operator_cancelled(&w);
    let mut entry = json.clone();
    entry["entry"] = "request".into();
    let back: HistoryEntry = serde_json::from_value(entry.clone()).unwrap();
    assert_eq!(back, HistoryEntry::Request(r));
    let mut bad = entry.clone();
    bad["version"] = 0.into();
    assert!(serde_json::from_value::<HistoryEntry>(bad).is_err());
    let mut bad = entry;
    bad["state"]["by"] = "XX6-OVH".into();
    let n = bad["history"].as_array().unwrap().len();
    bad["history"][n - 1]["actor"] = "XX6-OVH".into();
    assert!(serde_json::from_value::<HistoryEntry>(bad).is_err());
}

// ----- tracing: the operator's reason in no field (R48, DESIGN) -----

#[cfg(feature = "tracing")]
mod traced {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<String>>);

    struct V<'a>(&'a mut String);
    impl Visit for V<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, "{}={:?};", field.name(), value);
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            let _ = write!(self.0, "{}={};", field.name(), value);
        }
    }

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            attrs.record(&mut V(&mut self.0.lock().unwrap()));
        }
        fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
            values.record(&mut V(&mut self.0.lock().unwrap()));
        }
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            event.record(&mut V(&mut self.0.lock().unwrap()));
        }
    }

    #[test]
    fn the_operators_reason_is_in_no_field() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::with_default(subscriber, || {
            let w = World::new();
            let d = w.d();
            let site = name("trace.example");
            let mut rng = ChaCha20Rng::seed_from_u64(21);
            d.order_service(&site, c("AD1-OVH")).unwrap();
            let secret = act("SECRETREASON caller verified");
            let edit = Edit::new(site.clone()).with(Role::Tech, c("TE2-OVH"));
            let id = d
                .submit(&edit, c("AD1-OVH"), mins(1), &mut rng)
                .unwrap()
                .value[0];
            w.notifier.fail_when(|_| true);
            let _ = d.resend_by_operator(id, &secret, mins(2), &mut rng);
            let _ = d.resend_by_operator(id, &secret, mins(10), &mut rng);
            let _ = d.cancel_by_operator(id, &secret, mins(11));
            let _ = d.cancel_by_operator(id, &secret, mins(12));
            let edit = Edit::new(site.clone()).with(Role::Billing, c("BI3-OVH"));
            let _ = d.assign(&edit, &secret, mins(13), &mut rng);
            let _ = d.assign(&edit, &secret, mins(14), &mut rng);
            let _ = d.history(&site, None, PageSize::new(1).unwrap());
        });
        let text = capture.0.lock().unwrap().clone();
        assert!(text.contains("jane@support"), "nothing captured: {text}");
        assert!(!text.contains("SECRETREASON"), "{text}");
    }
}
