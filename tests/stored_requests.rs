//! What the crate reads back from a store is verified (R43): a stored request
//! that the engine could never have written is refused, with an error that
//! names what is inconsistent, and never panics.
//!
//! Each test starts from a request the real [`Engine`] wrote, breaks one thing
//! in its JSON, and checks the error. `properties` (at the end) does the same
//! with random requests and random mutations.
//!
//! Run: `cargo test --all-features --test stored_requests`.
#![cfg(feature = "serde")]

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};
use service_contacts::{
    AccountStatus, ChangeRequest, CustomerId, Edit, Engine, Role, Service, Snapshot, Transition,
};
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-11-21 10:00 UTC);

fn admin() -> CustomerId {
    "AD1-OVH".parse().unwrap()
}

fn tech() -> CustomerId {
    "TE2-OVH".parse().unwrap()
}

/// A request on `example.com` (held by `AD1-OVH`) proposing `TE2-OVH` as
/// tech, with the tokens of its confirmers.
struct Story {
    engine: Engine,
    service: Service,
    request: ChangeRequest,
    tokens: Vec<(CustomerId, String)>,
}

impl Story {
    fn open() -> Story {
        let engine = Engine::default();
        let service = Service::order("example.com".parse().unwrap(), admin());
        let edit = Edit::new(service.name().clone()).with(Role::Tech, tech());
        let snapshot = Snapshot {
            service: &service,
            open_requests: &[],
        };
        let opened = engine
            .submit(
                &edit,
                admin(),
                snapshot,
                &|_| AccountStatus::GoodStanding,
                T0,
                &mut ChaCha20Rng::seed_from_u64(5),
            )
            .unwrap();
        let tokens = opened
            .messages
            .iter()
            .map(|m| (m.to(), m.token().unwrap().reveal()))
            .collect();
        let request = opened.requests().next().unwrap().clone();
        Story {
            engine,
            service,
            request,
            tokens,
        }
    }

    fn token(&self, who: CustomerId) -> &str {
        &self.tokens.iter().find(|(c, _)| *c == who).unwrap().1
    }

    fn take(&mut self, transition: &Transition) {
        self.request = transition.request(self.request.id()).unwrap().clone();
    }

    /// `who` accepts a minute after the last event; `gone` takes the
    /// service away first (R30).
    fn accept(mut self, who: CustomerId, gone: bool) -> Story {
        let now = self.request.last_event_at() + time::Duration::minutes(1);
        let snapshot = Snapshot {
            service: &self.service,
            open_requests: &[],
        };
        let step = self
            .engine
            .accept(
                &self.request,
                who,
                self.token(who),
                now,
                (!gone).then_some(snapshot),
                &|_| AccountStatus::GoodStanding,
            )
            .unwrap();
        self.take(&step);
        self
    }

    fn doc(&self) -> Value {
        serde_json::to_value(&self.request).unwrap()
    }
}

/// An awaiting request, both confirmers pending.
fn opened() -> Value {
    Story::open().doc()
}

/// An awaiting request the admin (the requester) has confirmed.
fn half_confirmed() -> Value {
    Story::open().accept(admin(), false).doc()
}

/// Both confirmed: applied (`done`).
fn applied() -> Value {
    Story::open()
        .accept(admin(), false)
        .accept(tech(), false)
        .doc()
}

/// Both confirmed, but the service is gone: `error` (R30).
fn failed() -> Value {
    Story::open()
        .accept(admin(), false)
        .accept(tech(), true)
        .doc()
}

/// The incoming tech contact refused (R21).
fn refused() -> Value {
    let mut story = Story::open();
    let step = story
        .engine
        .refuse(&story.request, tech(), story.token(tech()), T0)
        .unwrap();
    story.take(&step);
    story.doc()
}

/// The requester cancelled (R28).
fn cancelled() -> Value {
    let mut story = Story::open();
    let step = story.engine.cancel(&story.request, admin(), T0).unwrap();
    story.take(&step);
    story.doc()
}

/// Expired at its deadline (R29).
fn expired() -> Value {
    let mut story = Story::open();
    let deadline = story.request.deadline();
    let step = story.engine.expire(&story.request, deadline).unwrap();
    story.take(&step);
    story.doc()
}

/// The error a document is refused with.
#[track_caller]
fn refusal(doc: &Value) -> String {
    match serde_json::from_value::<ChangeRequest>(doc.clone()) {
        Ok(request) => panic!("accepted: {request:?}"),
        Err(err) => err.to_string(),
    }
}

/// Asserts `doc` is refused with an error containing `expected`.
#[track_caller]
fn assert_refused(doc: &Value, expected: &str) {
    let err = refusal(doc);
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
}

/// The history of `doc`, to edit.
fn history(doc: &mut Value) -> &mut Vec<Value> {
    doc["history"].as_array_mut().unwrap()
}

/// Index of the first event named `event`.
fn find(doc: &Value, event: &str) -> usize {
    doc["history"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["event"] == event)
        .unwrap()
}

fn last(doc: &mut Value) -> &mut Value {
    history(doc).last_mut().unwrap()
}

// ----- what reads back -----

#[test]
fn every_state_the_engine_writes_reads_back_equal() {
    // R43, R34: verifying on the way in refuses nothing the engine writes.
    for doc in [
        opened(),
        half_confirmed(),
        applied(),
        failed(),
        refused(),
        cancelled(),
        expired(),
    ] {
        let back: ChangeRequest = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), doc);
    }
}

#[test]
fn the_stored_form_of_events_and_reasons_is_unchanged() {
    // R43: only reading became stricter; the documents stores hold are the
    // same. The `failed` event keeps its kind's fields inline, the reason as
    // an object tagged `reason`.
    let doc = failed();
    let tail = doc["history"].as_array().unwrap().last().unwrap();
    assert_eq!(
        tail,
        &json!({"at": "2026-11-21T10:02:00Z", "actor": null, "event": "failed",
                "reason": {"reason": "serviceGone"}})
    );
    assert_eq!(
        doc["state"],
        json!({"state": "error", "reason": {"reason": "serviceGone"}, "at": "2026-11-21T10:02:00Z"})
    );
    let issued = &doc["history"][1];
    assert_eq!(
        issued,
        &json!({"at": "2026-11-21T10:00:00Z", "actor": "AD1-OVH", "event": "tokenIssued", "to": "AD1-OVH"})
    );
    // Key order too, which a `Value` does not keep.
    let text = serde_json::to_string(&Story::open().request).unwrap();
    assert!(
        text.starts_with(r#"{"id":"#)
            && text.contains(r#"","service":"example.com","requester":"AD1-OVH","incoming":"TE2-OVH","roles":"tech","outgoing":{"tech":"AD1-OVH"},"opened_at":"2026-11-21T10:00:00Z","deadline":"2026-11-28T10:00:00Z","version":1,"state":{"state":"validatingByCustomers","confirmers":[{"customer":"AD1-OVH","status":{"status":"pending","digest":"#)
            && text.ends_with(r#""failed_attempts":0}}],"last_sent":"2026-11-21T10:00:00Z"},"history":[{"at":"2026-11-21T10:00:00Z","actor":"AD1-OVH","event":"opened"},{"at":"2026-11-21T10:00:00Z","actor":"AD1-OVH","event":"tokenIssued","to":"AD1-OVH"},{"at":"2026-11-21T10:00:00Z","actor":"AD1-OVH","event":"tokenIssued","to":"TE2-OVH"}]}"#),
        "{text}"
    );
}

// ----- the state agrees with the history -----

#[test]
fn done_without_an_applied_event_is_refused() {
    // R43, R20, R34
    let mut doc = applied();
    history(&mut doc).pop();
    assert_refused(
        &doc,
        "the request is `done` but its history has no `applied` event",
    );
}

#[test]
fn applied_before_every_confirmer_confirmed_is_refused() {
    // R43, R16, R20: the change applies only after each confirmer's `confirmed`.
    let mut doc = applied();
    let first = find(&doc, "confirmed");
    history(&mut doc).remove(first);
    assert_refused(
        &doc,
        "the request is `done` but AD1-OVH did not confirm before it was applied",
    );
}

#[test]
fn applied_by_someone_who_is_not_a_confirmer_is_refused() {
    // R43, R20
    let mut doc = applied();
    last(&mut doc)["actor"] = json!("ZZ9-OVH");
    assert_refused(
        &doc,
        "the request was applied by ZZ9-OVH, who is not a confirmer",
    );
    last(&mut doc)["actor"] = Value::Null;
    assert_refused(&doc, "the request was applied by nobody");
}

#[test]
fn an_end_at_another_time_than_its_event_is_refused() {
    // R43, R34: the state's `at` is its event's.
    let mut doc = applied();
    doc["state"]["at"] = json!("2026-11-21T10:05:00Z");
    assert_refused(
        &doc,
        "the request is `done` at 2026-11-21 10:05:00.0 +00:00:00 but its `applied` event is at",
    );
}

#[test]
fn an_end_that_is_not_the_last_event_is_refused() {
    // R43, R34: nothing happens to a request after it ended.
    let mut doc = applied();
    let mut extra = last(&mut doc).clone();
    extra["event"] = json!("failedAttempt");
    history(&mut doc).push(extra);
    assert_refused(
        &doc,
        "the request is `done` but its `applied` event, history[5], is not the last",
    );
}

#[test]
fn a_history_that_ends_twice_is_refused() {
    // R43, R34: exactly one event ends a request.
    let mut doc = applied();
    let mut refusal = last(&mut doc).clone();
    refusal["event"] = json!("refused");
    let at = history(&mut doc).len() - 1;
    history(&mut doc).insert(at, refusal);
    assert_refused(
        &doc,
        "the history ends twice: history[5] is a `refused` event before the final `applied` event",
    );
}

#[test]
fn a_state_swapped_for_another_is_refused() {
    // R43: `aborted` needs a `cancelled` event.
    let mut doc = refused();
    doc["state"]["state"] = json!("aborted");
    assert_refused(
        &doc,
        "the request is `aborted` but its history has no `cancelled` event",
    );
    let mut doc = cancelled();
    doc["state"] = json!({"state": "expired", "at": doc["state"]["at"]});
    assert_refused(
        &doc,
        "the request is `expired` but its history has no `expired` event",
    );
}

#[test]
fn a_refusal_by_someone_not_a_confirmer_or_not_the_actor_is_refused() {
    // R43, R21: a confirmer refuses, and the event is theirs.
    let mut doc = refused();
    doc["state"]["by"] = json!("ZZ9-OVH");
    last(&mut doc)["actor"] = json!("ZZ9-OVH");
    assert_refused(
        &doc,
        "the request was refused by ZZ9-OVH, who is not a confirmer",
    );
    let mut doc = refused();
    doc["state"]["by"] = json!("AD1-OVH");
    assert_refused(
        &doc,
        "the request is `refused` by AD1-OVH but its `refused` event is by TE2-OVH",
    );
}

#[test]
fn a_cancel_by_someone_other_than_the_requester_is_refused() {
    // R43, R28: only the requester cancels.
    let mut doc = cancelled();
    doc["state"]["by"] = json!("TE2-OVH");
    last(&mut doc)["actor"] = json!("TE2-OVH");
    assert_refused(
        &doc,
        "the request was cancelled by TE2-OVH, not by its requester AD1-OVH",
    );
    let mut doc = cancelled();
    last(&mut doc)["actor"] = json!("TE2-OVH");
    assert_refused(
        &doc,
        "the request is `aborted` by AD1-OVH but its `cancelled` event is by TE2-OVH",
    );
}

#[test]
fn an_expiry_with_an_actor_or_before_the_deadline_is_refused() {
    // R43, R29: expiry is the system's, at or after the deadline.
    let mut doc = expired();
    last(&mut doc)["actor"] = json!("AD1-OVH");
    assert_refused(
        &doc,
        "the `expired` event is by AD1-OVH; the system records it on its own",
    );
    let mut doc = expired();
    doc["state"]["at"] = json!("2026-11-22T10:00:00Z");
    last(&mut doc)["at"] = json!("2026-11-22T10:00:00Z");
    assert_refused(
        &doc,
        "the request expired at 2026-11-22 10:00:00.0 +00:00:00, before its deadline 2026-11-28",
    );
}

#[test]
fn a_failure_with_another_reason_or_an_actor_is_refused() {
    // R43, R30, R32
    let mut doc = failed();
    doc["state"]["reason"] = json!({"reason": "outgoingChanged", "role": "tech"});
    assert_refused(
        &doc,
        "the request failed with \"the tech contact changed since the request was opened\" \
         but its `failed` event gives \"the service no longer exists\"",
    );
    let mut doc = failed();
    last(&mut doc)["actor"] = json!("TE2-OVH");
    assert_refused(
        &doc,
        "the `failed` event is by TE2-OVH; the system records it on its own",
    );
}

#[test]
fn an_awaiting_request_with_an_ending_event_is_refused() {
    // R43, R19: an awaiting request has not ended.
    let mut doc = opened();
    history(&mut doc)
        .push(json!({"at": "2026-11-21T10:00:00Z", "actor": "AD1-OVH", "event": "cancelled"}));
    assert_refused(
        &doc,
        "the request is `validatingByCustomers` but history[3] is a `cancelled` event",
    );
}

#[test]
fn confirmers_standing_disagreeing_with_the_history_is_refused() {
    // R43, R19, R34: marked confirmed iff a `confirmed` event by them, at
    // the same time.
    let mut doc = opened();
    doc["state"]["confirmers"][1]["status"] =
        json!({"status": "confirmed", "at": "2026-11-21T10:00:00Z"});
    assert_refused(
        &doc,
        "TE2-OVH is marked confirmed but the history has no `confirmed` event by them",
    );
    let mut doc = half_confirmed();
    doc["state"]["confirmers"][0]["status"]["at"] = json!("2026-11-21T10:00:30Z");
    assert_refused(
        &doc,
        "AD1-OVH is marked confirmed at 2026-11-21 10:00:30.0 +00:00:00 but their `confirmed` event is at 2026-11-21 10:01:00.0 +00:00:00",
    );
    let mut doc = half_confirmed();
    doc["state"]["confirmers"][0]["status"] = doc["state"]["confirmers"][1]["status"].clone();
    doc["state"]["confirmers"][0]["status"]["digest"] = Value::Null;
    assert_refused(
        &doc,
        "AD1-OVH is marked pending but history[3] is a `confirmed` event by them",
    );
}

#[test]
fn confirmations_by_non_confirmers_or_twice_are_refused() {
    // R43, R16: only the confirmers confirm, once each.
    let mut doc = half_confirmed();
    let at = find(&doc, "confirmed");
    history(&mut doc)[at]["actor"] = json!("ZZ9-OVH");
    assert_refused(
        &doc,
        "history[3] (`confirmed`) is by ZZ9-OVH, who is not a confirmer",
    );
    let mut doc = applied();
    let at = find(&doc, "confirmed");
    let again = history(&mut doc)[at].clone();
    history(&mut doc).insert(at + 1, again);
    assert_refused(&doc, "AD1-OVH confirmed twice: history[3] and history[4]");
}

#[test]
fn a_token_for_someone_who_is_not_a_confirmer_is_refused() {
    // R43, R18: tokens go to the confirmers only.
    let mut doc = opened();
    history(&mut doc)[2]["to"] = json!("ZZ9-OVH");
    assert_refused(
        &doc,
        "history[2] (`tokenIssued`) is for ZZ9-OVH, who is not a confirmer",
    );
}

// ----- times are ordered -----

#[test]
fn the_opening_comes_first_at_the_opening_time_by_the_requester() {
    // R43, R34
    let mut doc = opened();
    history(&mut doc).remove(0);
    assert_refused(&doc, "a request's history starts with its opening");
    let mut doc = opened();
    history(&mut doc)[0]["at"] = json!("2026-11-21T09:00:00Z");
    assert_refused(
        &doc,
        "the `opened` event is at 2026-11-21 9:00:00.0 +00:00:00, not at the request's opening time",
    );
    let mut doc = opened();
    history(&mut doc)[0]["actor"] = json!("TE2-OVH");
    assert_refused(
        &doc,
        "the `opened` event is by TE2-OVH, not by the requester AD1-OVH",
    );
    let mut doc = opened();
    let again = history(&mut doc)[0].clone();
    history(&mut doc).push(again);
    assert_refused(&doc, "history[3] is a second `opened` event");
}

#[test]
fn a_history_out_of_time_order_is_refused() {
    // R43, R34
    let mut doc = half_confirmed();
    history(&mut doc)[2]["at"] = json!("2026-11-21T10:05:00Z");
    assert_refused(
        &doc,
        "the history is not in time order: history[3] (`confirmed`) at 2026-11-21 10:01:00.0 +00:00:00 comes before the event before it at 2026-11-21 10:05:00.0 +00:00:00",
    );
}

#[test]
fn a_deadline_not_after_the_opening_is_refused() {
    // R43, R29
    let mut doc = opened();
    doc["deadline"] = doc["opened_at"].clone();
    assert_refused(
        &doc,
        "the deadline 2026-11-21 10:00:00.0 +00:00:00 is not after the opening",
    );
    doc["deadline"] = json!("2026-11-20T10:00:00Z");
    assert_refused(
        &doc,
        "is not after the opening at 2026-11-21 10:00:00.0 +00:00:00",
    );
}

#[test]
fn an_end_before_the_opening_is_refused() {
    // R43, R34
    let mut doc = cancelled();
    doc["state"]["at"] = json!("2026-11-20T10:00:00Z");
    last(&mut doc)["at"] = json!("2026-11-20T10:00:00Z");
    assert_refused(
        &doc,
        "the request is `aborted` at 2026-11-20 10:00:00.0 +00:00:00, before it was opened at 2026-11-21 10:00:00.0 +00:00:00",
    );
}

// ----- tokens, versions -----

#[test]
fn one_live_digest_for_both_confirmers_is_refused() {
    // R43, R18, R24: one party's token must not confirm for the other.
    let mut doc = opened();
    doc["state"]["confirmers"][1]["status"]["digest"] =
        doc["state"]["confirmers"][0]["status"]["digest"].clone();
    let err = refusal(&doc);
    assert!(
        err.contains("AD1-OVH and TE2-OVH have the same live token digest"),
        "{err}"
    );
    // R40, R48: the error shows no digest.
    let digest = doc["state"]["confirmers"][0]["status"]["digest"]
        .as_str()
        .unwrap();
    assert!(
        !err.contains(digest) && !err.contains(&digest[..8]),
        "{err}"
    );
    // An invalidated token (no digest) shares nothing.
    doc["state"]["confirmers"][1]["status"]["digest"] = Value::Null;
    assert!(serde_json::from_value::<ChangeRequest>(doc).is_ok());
}

#[test]
fn version_zero_is_refused() {
    // R43, R31: versions start at 1.
    let mut doc = opened();
    doc["version"] = json!(0);
    assert_refused(&doc, "the request's version is 0; versions start at 1");
}

// ----- unknown and missing fields -----

#[test]
fn unknown_fields_are_refused_at_every_level() {
    // R43: a field this version does not know is not silently dropped.
    /// A request maker, and where in its document to add a field.
    type Case = (fn() -> Value, &'static [&'static str]);
    let cases: [Case; 6] = [
        (opened, &[""]),
        (
            opened,
            &[
                "/state",
                "/state/confirmers/0",
                "/state/confirmers/0/status",
            ],
        ),
        (
            half_confirmed,
            &["/state/confirmers/0/status", "/history/3"],
        ),
        (refused, &["/state", "/history/3"]),
        (
            failed,
            &["/state", "/state/reason", "/history/5", "/history/5/reason"],
        ),
        (opened, &["/outgoing", "/history/0", "/history/1"]),
    ];
    for (make, pointers) in cases {
        for pointer in pointers {
            let mut doc = make();
            doc.pointer_mut(pointer)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert("note".to_owned(), json!("x"));
            assert_refused(&doc, "unknown field `note`");
        }
    }
}

#[test]
fn a_failure_reason_with_a_field_it_does_not_have_is_refused() {
    // R43, R30, R32: every reason refuses the fields of the others.
    let mut doc = failed();
    doc["state"]["reason"]["role"] = json!("tech");
    assert_refused(&doc, "a `serviceGone` failure reason has no `role` field");
    let mut doc = failed();
    last(&mut doc)["reason"] = json!({"reason": "rightRemoved", "role": "tech"});
    assert_refused(&doc, "a `rightRemoved` failure reason needs a `by` field");
}

#[test]
fn an_event_with_a_field_its_kind_does_not_have_is_refused() {
    // R43, R34: exactly the fields each event needs.
    let mut doc = opened();
    history(&mut doc)[0]["to"] = json!("AD1-OVH");
    assert_refused(&doc, "an `opened` event has no `to` field");
    let mut doc = opened();
    history(&mut doc)[1]["of"] = json!("AD1-OVH");
    assert_refused(&doc, "a `tokenIssued` event has no `of` field");
    let mut doc = opened();
    history(&mut doc)[1].as_object_mut().unwrap().remove("to");
    assert_refused(&doc, "a `tokenIssued` event needs a `to` field");
    let mut doc = opened();
    history(&mut doc)[1]["to"] = Value::Null;
    assert_refused(&doc, "invalid type: null");
    let mut doc = failed();
    last(&mut doc).as_object_mut().unwrap().remove("reason");
    assert_refused(&doc, "a `failed` event needs a `reason` field");
    let mut doc = opened();
    history(&mut doc)[0]["event"] = json!("reopened");
    assert_refused(&doc, "unknown variant `reopened`");
}
