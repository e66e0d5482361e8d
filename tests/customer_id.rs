//! Customer identifiers through the public API only, as a downstream crate
//! sees them (R1–R4). The strategies come from `service_contacts::strategy`.
#![cfg(feature = "proptest")]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use proptest::prelude::*;
use service_contacts::CustomerId;
use service_contacts::strategy::{customer_id, customer_id_text, near_miss_customer_id};

fn hash_of(id: &CustomerId) -> u64 {
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

/// Flips the case of the ASCII letters chosen by `mask`.
fn recase(text: &str, mask: u64) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    // R2, R4: text -> identifier -> text gives the canonical (upper-case) text.
    #[test]
    fn text_round_trips_to_canonical(text in customer_id_text()) {
        let id = CustomerId::parse(&text).unwrap();
        prop_assert_eq!(id.as_str(), text.to_ascii_uppercase());
        prop_assert_eq!(id.to_string(), text.to_ascii_uppercase());
        prop_assert_eq!(CustomerId::parse(id.as_str()).unwrap(), id);
    }

    // R2: identifiers that differ only in case are equal, hash and order alike.
    #[test]
    fn case_variants_are_equal(text in customer_id_text(), mask in any::<u64>()) {
        let a = CustomerId::parse(&text).unwrap();
        let b = CustomerId::parse(&recase(&text, mask)).unwrap();
        prop_assert_eq!(a, b);
        prop_assert_eq!(hash_of(&a), hash_of(&b));
        prop_assert_eq!(a.cmp(&b), std::cmp::Ordering::Equal);
    }

    // R2: order is the order of the canonical text.
    #[test]
    fn order_follows_canonical_text(a in customer_id(), b in customer_id()) {
        prop_assert_eq!(a.cmp(&b), a.as_str().cmp(b.as_str()));
        prop_assert_eq!(a == b, a.as_str() == b.as_str());
    }

    // R2, R3: every near miss (one edit from valid) is rejected with a message
    // that says where the problem is.
    #[test]
    fn near_misses_are_rejected(text in near_miss_customer_id()) {
        let err = CustomerId::parse(&text).expect_err("near miss accepted");
        let message = err.to_string();
        prop_assert!(message != "invalid" && !message.is_empty());
        if !text.is_empty() {
            prop_assert!(err.position().is_some());
            prop_assert!(message.contains("position"), "{}", message);
        }
    }

    // R3: no string makes parsing panic; what parses is canonical.
    #[test]
    fn any_string_parses_or_errs(text in any::<String>()) {
        if let Ok(id) = CustomerId::parse(&text) {
            prop_assert_eq!(id.as_str(), text.to_ascii_uppercase());
        }
    }

    // R3: no byte sequence makes parsing panic (through lossy UTF-8, as a host
    // reading raw input would).
    #[test]
    fn any_bytes_parse_or_err(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(id) = CustomerId::parse(&text) {
            prop_assert!(id.as_str().len() <= 15);
        }
    }

    // R3: text shaped like an identifier, with any characters in any place.
    #[test]
    fn identifier_shaped_strings_never_panic(text in "[a-zA-Z0-9 é_-]{0,20}(-[oO][vV][hH])?.?") {
        let _ = CustomerId::parse(&text).map(|id| id.as_str().len());
    }
}

#[test]
fn exact_error_messages() {
    // R3: one case for each kind of error, with the exact message.
    let cases = [
        ("", "empty customer identifier"),
        (" AB1-OVH", "unexpected character ' ' at position 0"),
        ("A?1-OVH", "unexpected character '?' at position 1"),
        ("ÁB1-OVH", "unexpected character 'Á' at position 0"),
        ("AB_1-OVH", "unexpected character '_' at position 2"),
        (
            "A1234-OVH",
            "expected 2 letters at the start, found 1 before position 1",
        ),
        (
            "1234-OVH",
            "expected 2 letters at the start, found 0 before position 0",
        ),
        (
            "A",
            "expected 2 letters at the start, found 1 before position 1",
        ),
        (
            "ABC1-OVH",
            "expected 2 letters at the start, found 3 (the third at position 2)",
        ),
        (
            "AB-OVH",
            "expected a digit after the letters, at position 2",
        ),
        ("AB", "expected a digit after the letters, at position 2"),
        (
            "AB1234567890-OVH",
            "expected at most 9 digits, found a 10th at position 11",
        ),
        ("AB1234", "missing the suffix `-OVH` at position 6"),
        ("AB1234-OV", "missing the suffix `-OVH` at position 6"),
        (
            "AB1234_OVH",
            "expected the suffix `-OVH` at position 6, found '_' at position 6",
        ),
        (
            "AB1234-OVX",
            "expected the suffix `-OVH` at position 6, found 'X' at position 9",
        ),
        (
            "AB1234-ÖVH",
            "expected the suffix `-OVH` at position 6, found 'Ö' at position 7",
        ),
        (
            "AB1234-OVH ",
            "unexpected character ' ' at position 10, after the suffix `-OVH`",
        ),
        (
            "AB1234-OVH-OVH",
            "unexpected character '-' at position 10, after the suffix `-OVH`",
        ),
    ];
    for (input, message) in cases {
        let err = CustomerId::parse(input).expect_err(input);
        assert_eq!(err.to_string(), message, "input {input:?}");
    }
}

#[test]
fn bounds_of_the_format() {
    // R2: 1 to 9 digits, leading zeros allowed.
    assert_eq!(CustomerId::parse("ab0-ovh").unwrap().as_str(), "AB0-OVH");
    assert_eq!(
        CustomerId::parse("zz123456789-OVH").unwrap().as_str(),
        "ZZ123456789-OVH"
    );
    assert_eq!(CustomerId::parse("ab00001-ovh").unwrap().digits(), "00001");
    // R2: Unicode letters whose upper case is ASCII are still refused.
    assert!(CustomerId::parse("ıb1-OVH").is_err());
    assert!(CustomerId::parse("AB1-OVH\u{200b}").is_err());
    // R2: full-width digits are not ASCII digits.
    assert!(CustomerId::parse("AB１-OVH").is_err());
}

#[test]
fn conversions_agree() {
    // R4
    let text = "xy42-ovh";
    let a: CustomerId = text.parse().unwrap();
    let b = CustomerId::try_from(text).unwrap();
    assert_eq!(a, b);
    assert_eq!(AsRef::<str>::as_ref(&a), "XY42-OVH");
    assert_eq!(format!("{a:>10}"), "  XY42-OVH");
    assert_eq!(format!("{a:?}"), "CustomerId(XY42-OVH)");
}

#[test]
fn is_a_small_copy_value() {
    // R4: at most 16 bytes, `Copy`, no heap.
    fn is_copy<T: Copy>() {}
    is_copy::<CustomerId>();
    assert!(std::mem::size_of::<CustomerId>() <= 16);
}
