//! Proptest strategies for the crate's types, for downstream property tests
//! (feature `proptest`).
//!
//! ```
//! use proptest::prelude::*;
//! use service_contacts::CustomerId;
//! use service_contacts::strategy::{customer_id_text, near_miss_customer_id};
//!
//! proptest!(|(text in customer_id_text(), bad in near_miss_customer_id())| {
//!     let id: CustomerId = text.parse().unwrap();
//!     prop_assert_eq!(id.as_str(), text.to_ascii_uppercase());
//!     prop_assert!(bad.parse::<CustomerId>().is_err());
//! });
//! ```
//!
//! Operators (R46) have theirs too: [`operator_id`], [`reason`] and
//! [`operator_act`] make valid values, [`actor`] a customer or an operator;
//! [`near_miss_operator_id`] and [`bad_reason_text`] make texts their
//! parsers must refuse.
//!
//! ```
//! use proptest::prelude::*;
//! use service_contacts::{OperatorAct, OperatorId, Reason};
//! use service_contacts::strategy::{bad_reason_text, near_miss_operator_id, operator_act};
//!
//! proptest!(|(act in operator_act(), bad_id in near_miss_operator_id(), bad in bad_reason_text())| {
//!     let again = OperatorAct::new(
//!         act.operator().as_str().parse().unwrap(),
//!         act.reason().as_str().parse().unwrap(),
//!     );
//!     prop_assert_eq!(again, act);
//!     prop_assert!(bad_id.parse::<OperatorId>().is_err());
//!     prop_assert!(bad.parse::<Reason>().is_err());
//! });
//! ```
#![expect(
    clippy::missing_panics_doc,
    reason = "the strategies only `expect` on values they made valid themselves"
)]

use proptest::prelude::*;
use proptest::sample::select;

use crate::{
    Actor, Contacts, CustomerId, OperatorAct, OperatorId, Reason, Role, Roles, Service,
    ServiceName, Version,
};

/// Valid identifier text of every shape: 1 to 9 digits (leading zeros
/// included), letters and suffix in any mix of cases.
pub fn customer_id_text() -> impl Strategy<Value = String> + Clone {
    (
        "[a-zA-Z]{2}",
        "[0-9]{1,9}",
        select(vec!["-OVH", "-ovh", "-Ovh", "-oVh", "-ovH", "-OVh"]),
    )
        .prop_map(|(letters, digits, suffix)| format!("{letters}{digits}{suffix}"))
}

/// Valid identifiers of every shape.
pub fn customer_id() -> impl Strategy<Value = CustomerId> + Clone {
    customer_id_text().prop_map(|text| {
        CustomerId::parse(&text).expect("customer_id_text makes valid identifiers")
    })
}

/// One of a small pool of `n` distinct identifiers (`AA1-OVH`, `AA2-OVH`, ...),
/// so that generated services and requests share customers.
///
/// # Panics
///
/// If `n` is 0.
pub fn customer_id_from_pool(n: u32) -> impl Strategy<Value = CustomerId> + Clone {
    assert!(n > 0, "the pool needs at least one customer");
    (1..=n).prop_map(|i| CustomerId::parse(&format!("AA{i}-OVH")).expect("valid pool identifier"))
}

/// Text one edit away from a valid identifier (a character deleted, inserted
/// or replaced, or the empty string), always invalid.
pub fn near_miss_customer_id() -> impl Strategy<Value = String> {
    near_miss().prop_map(|(text, _)| text)
}

/// What a near miss was made by, named as the parse error kind it must give.
#[cfg(test)]
pub(crate) fn near_miss_with_kind() -> impl Strategy<Value = (String, &'static str)> {
    near_miss()
}

/// Characters that have no place anywhere in an identifier.
fn stray_char() -> impl Strategy<Value = char> {
    select(vec![
        ' ', '\t', '\n', '\u{0}', '_', '.', '/', '+', 'é', 'Ä', 'ß', 'ı', '٣', '€', '🦀',
        '\u{200b}',
    ])
}

fn ascii_letter() -> impl Strategy<Value = char> {
    select(('a'..='z').chain('A'..='Z').collect::<Vec<_>>())
}

fn ascii_digit() -> impl Strategy<Value = char> {
    select(('0'..='9').collect::<Vec<_>>())
}

/// Near misses paired with the name of the error kind they must produce.
fn near_miss() -> impl Strategy<Value = (String, &'static str)> {
    let parts = (
        "[a-zA-Z]{2}",
        "[0-9]{1,9}",
        select(vec!["-OVH", "-ovh", "-Ovh"]),
    );
    let edit = (
        0..13u8,
        any::<proptest::sample::Index>(),
        stray_char(),
        ascii_letter(),
        ascii_digit(),
        any::<char>(),
    );
    prop_oneof![
        1 => Just((String::new(), "Empty")),
        30 => (parts, edit).prop_map(|((letters, digits, suffix), (op, index, stray, letter, digit, anything))| {
            let mut l: Vec<char> = letters.chars().collect();
            let mut d: Vec<char> = digits.chars().collect();
            let mut s: Vec<char> = suffix.chars().collect();
            let kind = match op {
                // Delete a letter.
                0 => { l.remove(index.index(2)); "TooFewLetters" }
                // Insert a letter among the letters.
                1 => { l.insert(index.index(3), letter); "TooManyLetters" }
                // Replace a letter with a digit.
                2 => { l[index.index(2)] = digit; "TooFewLetters" }
                // Replace a letter with a stray character.
                3 => { l[index.index(2)] = stray; "UnexpectedChar" }
                // Delete the only digit.
                4 => { d.truncate(1); d.clear(); "NoDigits" }
                // A tenth digit.
                5 => { d.resize(9, '7'); d.insert(index.index(10), digit); "TooManyDigits" }
                // Replace the first digit with a stray character.
                6 => { d[0] = stray; "UnexpectedChar" }
                // Replace a later digit with a letter or stray character.
                7 => {
                    if d.len() < 2 { d.push('0'); }
                    let at = 1 + index.index(d.len() - 1);
                    d[at] = if index.index(2) == 0 { letter } else { stray };
                    "WrongSuffix"
                }
                // Delete the last character of the suffix.
                8 => { s.pop(); "MissingSuffix" }
                // Delete another character of the suffix.
                9 => { s.remove(index.index(3)); "WrongSuffix" }
                // Replace a suffix character with a letter or stray character
                // that is not the same letter in another case.
                10 => {
                    let at = index.index(4);
                    let with = if index.index(2) == 0 { letter } else { stray };
                    s[at] = if with.eq_ignore_ascii_case(&s[at]) { '!' } else { with };
                    "WrongSuffix"
                }
                // Append any character.
                11 => { s.push(anything); "TrailingChar" }
                // Prepend a stray character.
                _ => { l.insert(0, stray); "UnexpectedChar" }
            };
            (l.into_iter().chain(d).chain(s).collect(), kind)
        }),
    ]
}

/// Any role.
pub fn role() -> impl Strategy<Value = Role> {
    select(Role::ALL.to_vec())
}

/// Any set of roles, the empty set included.
pub fn roles() -> impl Strategy<Value = Roles> {
    proptest::collection::vec(role(), 0..=3).prop_map(|roles| roles.into_iter().collect())
}

/// A set of at least one role.
pub fn non_empty_roles() -> impl Strategy<Value = Roles> {
    proptest::collection::vec(role(), 1..=3).prop_map(|roles| roles.into_iter().collect())
}

/// Valid service names: mostly domain-like, sometimes any printable ASCII up
/// to the 255-byte limit.
pub fn service_name() -> impl Strategy<Value = ServiceName> {
    prop_oneof![
        3 => "[a-z0-9]{1,20}(\\.[a-z0-9-]{1,20}){0,3}\\.(com|eu|net|fr)",
        1 => "[!-~]{1,255}",
    ]
    .prop_map(|text| ServiceName::parse(&text).expect("valid service name"))
}

/// Contacts with any holders, drawn from `holder`.
pub fn contacts_from(
    holder: impl Strategy<Value = CustomerId> + Clone,
) -> impl Strategy<Value = Contacts> {
    (holder.clone(), holder.clone(), holder)
        .prop_map(|(admin, tech, billing)| Contacts::new(admin, tech, billing))
}

/// Services with any name, any holders and version 1.
pub fn service() -> impl Strategy<Value = Service> {
    (service_name(), contacts_from(customer_id()))
        .prop_map(|(name, contacts)| Service::new(name, contacts, Version::FIRST))
}

// ----- operators (R46) -----

/// Valid operator identity text: mostly a login or an address
/// (`jane.doe@support`), sometimes any 1 to 64 of the characters allowed
/// (ASCII letters, digits, `.`, `-`, `_`, `@`), the 64-byte limit included.
pub fn operator_id_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        4 => "[a-z]{1,12}(\\.[a-z]{1,12})?(@[a-z]{1,12})?",
        1 => "[A-Za-z0-9._@-]{1,64}",
        1 => "[A-Za-z0-9._@-]{64}",
    ]
}

/// Valid operator identities.
pub fn operator_id() -> impl Strategy<Value = OperatorId> + Clone {
    operator_id_text()
        .prop_map(|text| OperatorId::parse(&text).expect("operator_id_text makes valid identities"))
}

/// Text an [`OperatorId`] must refuse: empty, one byte over the 64-byte
/// limit or longer, or a valid identity with a character that has no place
/// in one (a space, a tab, a line break, a `/`, `+`, `#` or `:`, a non-ASCII
/// letter, an emoji) inserted anywhere.
pub fn near_miss_operator_id() -> impl Strategy<Value = String> {
    let stray = select(vec![
        ' ', '\t', '\n', '\u{0}', '/', '+', '#', ':', '!', 'é', 'ß', '\u{202e}', '🦀',
    ]);
    prop_oneof![
        1 => Just(String::new()),
        2 => "[A-Za-z0-9._@-]{65,80}",
        6 => (operator_id_text(), any::<proptest::sample::Index>(), stray).prop_map(
            |(text, at, stray)| {
                let mut chars: Vec<char> = text.chars().collect();
                chars.insert(at.index(chars.len() + 1), stray);
                chars.into_iter().collect()
            }
        ),
    ]
}

/// A regular expression of the characters a reason may hold, then `$count`:
/// printable ASCII, letters of other scripts and an emoji (reasons are the
/// operator's own words, in any language).
macro_rules! reason_chars {
    ($count:literal) => {
        concat!("[ -~éèàçßñøæœıİ日本語中文ąęłż🦀€]", $count)
    };
}

/// Valid reason text: 1 to 500 characters, at least one of them not white
/// space, none a control, line separator or bidirectional formatting
/// character. Mostly short, sometimes at the 500-character limit.
pub fn reason_text() -> impl Strategy<Value = String> + Clone {
    let visible = "[!-~éß日🦀]";
    prop_oneof![
        6 => (visible, reason_chars!("{0,80}"))
            .prop_map(|(first, rest)| format!("{first}{rest}")),
        1 => (visible, reason_chars!("{399,499}"))
            .prop_map(|(first, rest)| format!("{first}{rest}")),
        1 => (visible, reason_chars!("{499}"))
            .prop_map(|(first, rest)| format!("{first}{rest}")),
    ]
}

/// Valid reasons.
pub fn reason() -> impl Strategy<Value = Reason> + Clone {
    reason_text().prop_map(|text| Reason::parse(&text).expect("reason_text makes valid reasons"))
}

/// Text a [`Reason`] must refuse: empty or only white space (spaces, tabs,
/// no-break and ideographic spaces), 501 characters or more, or a valid
/// reason with a control character (`\n`, `\t`, `\r`, NUL, ESC, DEL, NEL),
/// a line or paragraph separator, or a bidirectional formatting character
/// (embeddings, overrides, isolates, marks) inserted anywhere.
pub fn bad_reason_text() -> impl Strategy<Value = String> {
    let forbidden = select(vec![
        '\n', '\t', '\r', '\u{0}', '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}', '\u{2029}',
        '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{61c}',
    ]);
    prop_oneof![
        1 => Just(String::new()),
        2 => "[ \t\u{a0}\u{3000}\u{2003}]{1,8}",
        2 => (
            "[!-~é日]",
            reason_chars!("{500,560}")
        )
            .prop_map(|(first, rest)| format!("{first}{rest}")),
        6 => (reason_text(), any::<proptest::sample::Index>(), forbidden).prop_map(
            |(text, at, bad)| {
                let mut chars: Vec<char> = text.chars().collect();
                chars.insert(at.index(chars.len() + 1), bad);
                chars.into_iter().collect()
            }
        ),
    ]
}

/// Valid operator acts: an operator and the reason they give.
pub fn operator_act() -> impl Strategy<Value = OperatorAct> + Clone {
    (operator_id(), reason()).prop_map(|(operator, reason)| OperatorAct::new(operator, reason))
}

/// Who acted in a history entry: a customer (any valid identifier) or an
/// operator with their reason.
pub fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        customer_id().prop_map(Actor::Customer),
        operator_act().prop_map(Actor::Operator),
    ]
}
