//! Customer identifiers (`AB12345-OVH`), rules R1–R4.

use core::fmt;
use core::str::FromStr;

/// The fixed suffix of every identifier, in canonical (upper) case.
const SUFFIX: &[u8; 4] = b"-OVH";
/// Letters at the start of an identifier.
const LETTERS: usize = 2;
/// The most digits an identifier may have.
const MAX_DIGITS: usize = 9;
/// The longest canonical text: 2 letters, 9 digits and the suffix.
const MAX_LEN: usize = LETTERS + MAX_DIGITS + SUFFIX.len();
/// Where the length is kept in the buffer.
const LEN_AT: usize = 15;
/// The shortest canonical text: 2 letters, 1 digit and the suffix.
const MIN_LEN: usize = LETTERS + 1 + SUFFIX.len();

/// A customer identifier (a "NIC handle"), such as `AB12345-OVH`.
///
/// The identifier a customer gets when the account is created, used to log in
/// and to name the contacts of a service. It is exactly two ASCII letters, one
/// to nine ASCII digits (leading zeros allowed) and the suffix `-OVH` (R1, R2).
///
/// Parsing is case-insensitive and the value keeps the canonical, upper-case
/// text, so two identifiers that differ only in case are equal, hash the same
/// and sort together (R2). The value is a 16-byte `Copy` type with no heap
/// allocation that still hands out its text as a `&str` (R4).
///
/// # Examples
///
/// ```
/// use service_contacts::CustomerId;
///
/// let id: CustomerId = "ab12345-ovh".parse()?;
/// assert_eq!(id.as_str(), "AB12345-OVH");
/// assert_eq!(id, "AB12345-OVH".parse()?);
/// assert_eq!(id.to_string(), "AB12345-OVH");
///
/// let err = "AB12345-OVX".parse::<CustomerId>().unwrap_err();
/// assert_eq!(err.to_string(), "expected the suffix `-OVH` at position 7, found 'X' at position 10");
/// # Ok::<(), service_contacts::ParseCustomerIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(align(8))]
pub struct CustomerId {
    /// The canonical text (ASCII), zero-padded, and its length in the last
    /// byte. All 16 bytes are ASCII, so the whole buffer is valid UTF-8 and
    /// checks as such in one aligned step; comparing buffers compares texts,
    /// because no identifier is a prefix of another.
    buf: [u8; 16],
}

impl CustomerId {
    /// Parses an identifier, accepting any case (R2).
    ///
    /// This is what [`FromStr`] and [`TryFrom<&str>`] call.
    ///
    /// # Errors
    ///
    /// Returns a [`ParseCustomerIdError`] that says what is wrong and where
    /// (R3). Each of these inputs fails, for the reason given:
    ///
    /// | input | reason |
    /// |---|---|
    /// | `""` | empty input |
    /// | `"A1234-OVH"` | one letter instead of two |
    /// | `"ABC1234-OVH"` | three letters instead of two |
    /// | `"AB-OVH"` | no digits |
    /// | `"AB1234567890-OVH"` | ten digits, at most nine |
    /// | `"AB1234"` | no suffix |
    /// | `"AB1234-OVX"`, `"AB1234_OVH"` | wrong suffix |
    /// | `"AB1234-OVH "`, `" AB1234-OVH"` | whitespace, a character out of place |
    /// | `"ÁB1234-OVH"` | a non-ASCII letter |
    #[inline]
    pub fn parse(text: &str) -> Result<Self, ParseCustomerIdError> {
        match accept(text.as_bytes()) {
            Some(id) => Ok(id),
            None => Err(ParseCustomerIdError {
                kind: diagnose(text),
            }),
        }
    }

    /// The canonical, upper-case text, such as `AB12345-OVH`.
    #[must_use]
    #[expect(
        clippy::missing_panics_doc,
        reason = "never panics: the bytes are checked ASCII when the value is made"
    )]
    pub fn as_str(&self) -> &str {
        // The bytes were checked to be ASCII when the value was made.
        let all = core::str::from_utf8(&self.buf).expect("a customer identifier holds ASCII only");
        &all[..self.len()]
    }

    /// Length of the canonical text (7 to 15).
    fn len(&self) -> usize {
        usize::from(self.buf[LEN_AT])
    }

    /// The two letters, in upper case (`AB` for `AB12345-OVH`).
    #[must_use]
    pub fn letters(&self) -> &str {
        &self.as_str()[..LETTERS]
    }

    /// The digits as written, leading zeros kept (`00001` for `AB00001-OVH`).
    #[must_use]
    pub fn digits(&self) -> &str {
        &self.as_str()[LETTERS..self.len() - SUFFIX.len()]
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_none() && f.precision().is_none() {
            f.write_str(self.as_str())
        } else {
            f.pad(self.as_str())
        }
    }
}

impl fmt::Debug for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomerId({})", self.as_str())
    }
}

impl AsRef<str> for CustomerId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl FromStr for CustomerId {
    type Err = ParseCustomerIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<&str> for CustomerId {
    type Error = ParseCustomerIdError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        Self::parse(text)
    }
}

/// The error returned when text is not a valid [`CustomerId`].
///
/// Its message says what is wrong and at which position (counted in
/// characters from 0), and quotes the offending character (R3).
///
/// ```
/// use service_contacts::CustomerId;
///
/// let err = CustomerId::parse("AÉ12-OVH").unwrap_err();
/// assert_eq!(err.to_string(), "unexpected character 'É' at position 1");
/// assert_eq!(err.position(), Some(1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseCustomerIdError {
    kind: ErrorKind,
}

impl ParseCustomerIdError {
    /// The position (in characters, from 0) where the problem was found, when
    /// there is one; `None` for empty input.
    #[must_use]
    pub fn position(&self) -> Option<usize> {
        match self.kind {
            ErrorKind::Empty => None,
            ErrorKind::UnexpectedChar { pos, .. }
            | ErrorKind::TooFewLetters { pos, .. }
            | ErrorKind::TooManyLetters { pos, .. }
            | ErrorKind::NoDigits { pos }
            | ErrorKind::TooManyDigits { pos }
            | ErrorKind::MissingSuffix { pos }
            | ErrorKind::WrongSuffix { pos, .. }
            | ErrorKind::TrailingChar { pos, .. } => usize::try_from(pos).ok(),
        }
    }

    #[cfg(test)]
    pub(crate) fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

/// What is wrong with a rejected identifier. Private, so that new cases can be
/// told apart in messages without breaking callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    Empty,
    /// A character that has no place in an identifier (whitespace, punctuation,
    /// non-ASCII) where a letter or digit was expected.
    UnexpectedChar {
        ch: char,
        pos: u32,
    },
    /// Fewer than two letters before the digits (`pos` is where the first digit
    /// or the end of input was found).
    TooFewLetters {
        found: u32,
        pos: u32,
    },
    /// More than two letters at the start (`pos` is the third letter).
    TooManyLetters {
        found: u32,
        pos: u32,
    },
    /// No digit after the two letters.
    NoDigits {
        pos: u32,
    },
    /// A tenth digit (`pos` is where it stands).
    TooManyDigits {
        pos: u32,
    },
    /// The input ends after the digits.
    MissingSuffix {
        pos: u32,
    },
    /// The text after the digits is not `-OVH`; `pos` is where the suffix
    /// starts, `ch`/`at` the first character that differs.
    WrongSuffix {
        pos: u32,
        ch: char,
        at: u32,
    },
    /// Something after a complete `-OVH`.
    TrailingChar {
        ch: char,
        pos: u32,
    },
}

impl fmt::Display for ParseCustomerIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Empty => f.write_str("empty customer identifier"),
            ErrorKind::UnexpectedChar { ch, pos } => {
                write!(f, "unexpected character {ch:?} at position {pos}")
            }
            ErrorKind::TooFewLetters { found, pos } => write!(
                f,
                "expected 2 letters at the start, found {found} before position {pos}"
            ),
            ErrorKind::TooManyLetters { found, pos } => write!(
                f,
                "expected 2 letters at the start, found {found} (the third at position {pos})"
            ),
            ErrorKind::NoDigits { pos } => {
                write!(f, "expected a digit after the letters, at position {pos}")
            }
            ErrorKind::TooManyDigits { pos } => {
                write!(
                    f,
                    "expected at most 9 digits, found a 10th at position {pos}"
                )
            }
            ErrorKind::MissingSuffix { pos } => {
                write!(f, "missing the suffix `-OVH` at position {pos}")
            }
            ErrorKind::WrongSuffix { pos, ch, at } => write!(
                f,
                "expected the suffix `-OVH` at position {pos}, found {ch:?} at position {at}"
            ),
            ErrorKind::TrailingChar { ch, pos } => write!(
                f,
                "unexpected character {ch:?} at position {pos}, after the suffix `-OVH`"
            ),
        }
    }
}

impl std::error::Error for ParseCustomerIdError {}

/// The character at byte offset `at` of `text`, and its position in characters.
///
/// Only called on error paths, so counting characters costs nothing on success.
fn char_at(text: &str, at: usize) -> (char, u32) {
    let ch = text[at..].chars().next().unwrap_or('\u{0}');
    (ch, count(text[..at].chars().count()))
}

/// A count or position as kept in an error (saturating: the input may be
/// longer than `u32::MAX`).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A `u64` with `byte` in every lane (one lane a byte, little-endian).
const fn lanes(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// The 16 lanes of a `[u64; 2]` (lanes 0..8, lanes 8..16) with `byte` in
/// lanes `from..to` and zero elsewhere.
const fn lanes_in(byte: u8, from: usize, to: usize) -> [u64; 2] {
    let mut bytes = [0u8; 16];
    let mut i = from;
    while i < to {
        bytes[i] = byte;
        i += 1;
    }
    let mut low = [0u8; 8];
    let mut high = [0u8; 8];
    let mut k = 0;
    while k < 8 {
        low[k] = bytes[k];
        high[k] = bytes[k + 8];
        k += 1;
    }
    [u64::from_le_bytes(low), u64::from_le_bytes(high)]
}

/// For each length `n`: the digit lanes (from the third byte up to the suffix).
const DIGIT_LANES: [[u64; 2]; 16] = {
    let mut table = [[0u64; 2]; 16];
    let mut n = MIN_LEN;
    while n <= MAX_LEN {
        table[n] = lanes_in(0xFF, LETTERS, n - SUFFIX.len());
        n += 1;
    }
    table
};

/// For each length `n`: bit 5 of the letters to clear for upper case (the
/// first two lanes and the suffix's `OVH`).
const CASE_BITS: [[u64; 2]; 16] = {
    let mut table = [[0u64; 2]; 16];
    let mut n = MIN_LEN;
    while n <= MAX_LEN {
        let letters = lanes_in(0x20, 0, LETTERS);
        let suffix = lanes_in(0x20, n - 3, n);
        table[n] = [letters[0] | suffix[0], letters[1] | suffix[1]];
        n += 1;
    }
    table
};

/// Whether every lane of `x` selected by `mask` holds an ASCII digit: 3 in
/// the high nibble, at most 9 in the low one (adding 6 to the low nibble then
/// stays below 16, so bit 4 stays clear; no lane carries into the next).
#[inline]
const fn digits_in(x: u64, mask: u64) -> bool {
    x & lanes(0xF0) & mask == lanes(0x30) & mask
        && ((x & lanes(0x0F)) + lanes(0x06)) & lanes(0x10) & mask == 0
}

/// The identifier for a valid `b`; `None` for anything else.
///
/// This is the hot path: it only says yes or no, without a branch or a copy
/// per byte. The text is read into two `u64`s, one byte a lane and zero
/// beyond its end, and every lane is checked and folded to upper case at
/// once, with masks looked up by length. [`diagnose`] finds out what is
/// wrong, on the error path only.
#[inline]
fn accept(b: &[u8]) -> Option<CustomerId> {
    let n = b.len();
    if !(MIN_LEN..=MAX_LEN).contains(&n) {
        return None;
    }
    // Lanes 0..8 from the head; lanes 8..n from the top of the last 8 bytes.
    let (low, high) = if n >= 8 {
        let head = u64::from_le_bytes(b[..8].try_into().ok()?);
        let tail = u64::from_le_bytes(b[n - 8..].try_into().ok()?);
        let shift = u32::try_from(8 * (16 - n)).ok()?;
        (head, tail.checked_shr(shift).unwrap_or(0))
    } else {
        let mut head = [0u8; 8];
        head[..MIN_LEN].copy_from_slice(&b[..MIN_LEN]);
        (u64::from_le_bytes(head), 0)
    };
    let [digits_low, digits_high] = DIGIT_LANES[n];
    let digits_ok = digits_in(low, digits_low) && digits_in(high, digits_high);
    // Letters: an ASCII letter with bit 5 cleared is an upper-case letter.
    let [l0, l1, ..] = (low & !0x2020).to_le_bytes();
    let letters_ok = l0.is_ascii_uppercase() && l1.is_ascii_uppercase();
    // Suffix: `-` then `OVH` in any case. Setting bit 5 of the three letters
    // lowers them, and only `O`/`o`, `V`/`v`, `H`/`h` become `o`, `v`, `h`.
    let suffix = u32::from_le_bytes(b[n - 4..].try_into().ok()?);
    let suffix_ok = suffix | 0x2020_2000 == u32::from_le_bytes(*b"-ovh");
    if !(digits_ok && letters_ok && suffix_ok) {
        return None;
    }
    // The canonical text with its length in the last lane, made in registers
    // and stored whole: writing the length byte on its own after the text
    // makes the next read of the value wait for the store to settle.
    let [case_low, case_high] = CASE_BITS[n];
    let len = u64::from(u8::try_from(n).ok()?) << (8 * (LEN_AT - 8));
    let canonical = u128::from(low & !case_low) | (u128::from((high & !case_high) | len) << 64);
    Some(CustomerId {
        buf: canonical.to_le_bytes(),
    })
}

/// What is wrong with `text`, which [`accept`] refused.
#[cold]
#[inline(never)]
fn diagnose(text: &str) -> ErrorKind {
    let b = text.as_bytes();
    if b.is_empty() {
        return ErrorKind::Empty;
    }
    // Letters. Every byte scanned so far is ASCII, so byte offsets are
    // character positions until the first non-ASCII byte.
    let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if letters < LETTERS {
        return match b.get(letters) {
            None => ErrorKind::TooFewLetters {
                found: count(letters),
                pos: count(letters),
            },
            Some(c) if c.is_ascii_digit() => ErrorKind::TooFewLetters {
                found: count(letters),
                pos: count(letters),
            },
            Some(_) => {
                let (ch, pos) = char_at(text, letters);
                ErrorKind::UnexpectedChar { ch, pos }
            }
        };
    }
    if letters > LETTERS {
        return ErrorKind::TooManyLetters {
            found: count(letters),
            pos: count(LETTERS),
        };
    }
    // Digits.
    let digits = b[LETTERS..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let end = LETTERS + digits;
    if digits == 0 {
        return match b.get(end) {
            None | Some(b'-') => ErrorKind::NoDigits { pos: count(end) },
            Some(_) => {
                let (ch, pos) = char_at(text, end);
                ErrorKind::UnexpectedChar { ch, pos }
            }
        };
    }
    if digits > MAX_DIGITS {
        return ErrorKind::TooManyDigits {
            pos: count(LETTERS + MAX_DIGITS),
        };
    }
    // Suffix.
    let rest = &b[end..];
    if rest.is_empty() {
        return ErrorKind::MissingSuffix { pos: count(end) };
    }
    for (i, want) in SUFFIX.iter().enumerate() {
        match rest.get(i) {
            Some(got) if got.eq_ignore_ascii_case(want) => {}
            Some(_) => {
                let (ch, at) = char_at(text, end + i);
                return ErrorKind::WrongSuffix {
                    pos: count(end),
                    ch,
                    at,
                };
            }
            None => return ErrorKind::MissingSuffix { pos: count(end) },
        }
    }
    // `accept` refused it, so something follows the suffix.
    let (ch, pos) = char_at(text, end + SUFFIX.len());
    ErrorKind::TrailingChar { ch, pos }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> ErrorKind {
        CustomerId::parse(text).unwrap_err().kind
    }

    #[test]
    fn accepts_the_examples_of_the_guide() {
        // R1
        for text in ["AB12345-OVH", "aa123456-ovh", "ab00001-ovh"] {
            let id = CustomerId::parse(text).unwrap();
            assert_eq!(id.as_str(), text.to_ascii_uppercase());
        }
    }

    #[test]
    fn parts() {
        // R2: leading zeros kept
        let id = CustomerId::parse("ab00001-ovh").unwrap();
        assert_eq!(id.letters(), "AB");
        assert_eq!(id.digits(), "00001");
    }

    #[test]
    fn suffix_cut_short_is_missing() {
        // R3
        assert_eq!(kind("AB12-OV"), ErrorKind::MissingSuffix { pos: 4 });
        assert_eq!(
            kind("AB12-OVHH"),
            ErrorKind::TrailingChar { ch: 'H', pos: 8 }
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        // R3
        assert_eq!(
            kind("AB1-ÖVH"),
            ErrorKind::WrongSuffix {
                pos: 3,
                ch: 'Ö',
                at: 4
            }
        );
        assert_eq!(
            kind("AB1-OVHé€"),
            ErrorKind::TrailingChar { ch: 'é', pos: 7 }
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::{CustomerId, ErrorKind};
    use crate::strategy::near_miss_with_kind;

    fn kind_name(kind: &ErrorKind) -> &'static str {
        match kind {
            ErrorKind::Empty => "Empty",
            ErrorKind::UnexpectedChar { .. } => "UnexpectedChar",
            ErrorKind::TooFewLetters { .. } => "TooFewLetters",
            ErrorKind::TooManyLetters { .. } => "TooManyLetters",
            ErrorKind::NoDigits { .. } => "NoDigits",
            ErrorKind::TooManyDigits { .. } => "TooManyDigits",
            ErrorKind::MissingSuffix { .. } => "MissingSuffix",
            ErrorKind::WrongSuffix { .. } => "WrongSuffix",
            ErrorKind::TrailingChar { .. } => "TrailingChar",
        }
    }

    /// R2, plainly: what the fast path must accept, and nothing else.
    fn oracle(text: &str) -> bool {
        let b = text.as_bytes();
        b.len() >= 7
            && b[..2].iter().all(u8::is_ascii_alphabetic)
            && (1..=9).contains(&(b.len() - 6))
            && b[2..b.len() - 4].iter().all(u8::is_ascii_digit)
            && b[b.len() - 4..].eq_ignore_ascii_case(b"-OVH")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// R2: the one-pass check accepts exactly the identifiers, and the
        /// error path finds a fault in everything else.
        #[test]
        fn fast_path_agrees_with_the_rule(
            text in prop_oneof![
                crate::strategy::customer_id_text(),
                crate::strategy::near_miss_customer_id(),
                "[a-zA-Z0-9 é_-]{0,16}(-[oOvV][vVhH][hH!])?",
                any::<String>(),
            ]
        ) {
            let accepted = CustomerId::parse(&text);
            prop_assert_eq!(accepted.is_ok(), oracle(&text), "{:?}", text);
            if let Ok(id) = accepted {
                prop_assert_eq!(id.as_str(), text.to_ascii_uppercase());
            }
        }

        /// R3: every near miss is rejected, with the kind of error its edit calls for.
        #[test]
        fn near_misses_get_the_right_kind((text, expected) in near_miss_with_kind()) {
            let err = CustomerId::parse(&text).expect_err("a near miss must be rejected");
            prop_assert_eq!(kind_name(err.kind()), expected, "input {:?}: {}", text, err);
        }
    }
}
