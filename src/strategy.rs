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
#![expect(
    clippy::missing_panics_doc,
    reason = "the strategies only `expect` on values they made valid themselves"
)]

use proptest::prelude::*;
use proptest::sample::select;

use crate::{Contacts, CustomerId, Role, Roles, Service, ServiceName, Version};

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
