//! One-time confirmation tokens and their digests (R18, R23–R26, section 8).

use core::fmt;

use rand_core::TryCryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in a token: 256 bits, twice the floor of ASVS 11.5.1.
const TOKEN_BYTES: usize = 32;
/// Length of a token's text: 32 bytes in unpadded base64url.
const TOKEN_TEXT_LEN: usize = 43;
/// The base64url alphabet (RFC 4648, section 5).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A confirmation token: the secret one confirmer receives by e-mail and
/// presents to accept or refuse a request (R18).
///
/// 256 bits from the caller's cryptographic generator, each party's drawn
/// independently. Its text is 43 characters of URL-safe base64 (no padding), so
/// a host can put it in a link as it is.
///
/// # Security
///
/// - The crate keeps only a [`TokenDigest`] (SHA-256) of a token in a request;
///   the token itself exists only in the [`Message`](crate::Message) to its
///   owner (R40).
/// - `Debug` prints `Token(<redacted>)`; there is no `Display`, no `Serialize`.
///   The text comes out through one explicit call, [`Token::reveal`], meant for
///   the place where the host writes the message to its owner.
///
/// ```
/// use service_contacts::Token;
///
/// let token = Token::from_bytes([7; 32]);
/// assert_eq!(format!("{token:?}"), "Token(<redacted>)");
/// assert_eq!(token.reveal().len(), 43);
/// assert!(token.digest().verify(&token.reveal()));
/// assert!(!token.digest().verify("not the token"));
/// ```
#[derive(Clone)]
pub struct Token {
    bytes: [u8; TOKEN_BYTES],
}

impl Token {
    /// Draws a new token from a cryptographically secure generator.
    ///
    /// # Errors
    ///
    /// Fails only when the generator does (for instance the OS generator
    /// when the system has no entropy to give).
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Token, RandomnessError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        rng.try_fill_bytes(&mut bytes)
            .map_err(|err| RandomnessError::new(&err))?;
        Ok(Token { bytes })
    }

    /// A token made of bytes the caller drew, for hosts with their own source
    /// of randomness. The bytes must be uniformly random and secret.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; TOKEN_BYTES]) -> Token {
        Token { bytes }
    }

    /// The token's text (43 URL-safe characters), to put in the message to
    /// its owner and nowhere else.
    ///
    /// This is the only way the secret leaves the value: do not log it, do not
    /// store it.
    #[must_use]
    pub fn reveal(&self) -> String {
        encode(&self.bytes)
    }

    /// The SHA-256 digest of the token, which is what a request keeps.
    #[must_use]
    pub fn digest(&self) -> TokenDigest {
        TokenDigest(Sha256::digest(self.bytes).into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The generator failed to give random bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the random generator failed: {0}")]
pub struct RandomnessError(String);

impl RandomnessError {
    pub(crate) fn new(cause: &dyn fmt::Display) -> RandomnessError {
        RandomnessError(cause.to_string())
    }
}

/// The SHA-256 digest of a [`Token`]: what a request stores instead of the
/// token (section 8).
///
/// [`verify`](TokenDigest::verify) compares digests in constant time. Its text
/// form (`Display`, serde) is 64 lowercase hex digits; `Debug` shows the first 8.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// Whether `presented` is the text of the token this is the digest of.
    ///
    /// Any string is accepted as input: text of the wrong length or with a
    /// character outside the base64url alphabet is simply not a match (R25).
    /// The digests are compared in constant time (ASVS 11.2.4).
    #[must_use]
    pub fn verify(&self, presented: &str) -> bool {
        let Some(bytes) = decode(presented) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        bool::from(digest.ct_eq(&self.0))
    }

    /// Parses the 64-hex-digit text form.
    ///
    /// # Errors
    ///
    /// Returns [`ParseDigestError`] for text that is not exactly 64 hex digits.
    pub fn parse_hex(text: &str) -> Result<TokenDigest, ParseDigestError> {
        let mut out = [0u8; 32];
        hex_decode(text, &mut out).map_err(|()| ParseDigestError)?;
        Ok(TokenDigest(out))
    }
}

impl fmt::Display for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(")?;
        self.0[..4].iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        f.write_str("…)")
    }
}

impl core::str::FromStr for TokenDigest {
    type Err = ParseDigestError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TokenDigest::parse_hex(text)
    }
}

/// Text that is not a token digest (64 hex digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected a token digest of 64 hex digits")]
pub struct ParseDigestError;

/// Decodes exactly `N` bytes from `text`, two hex digits each.
pub(crate) fn hex_decode<const N: usize>(text: &str, out: &mut [u8; N]) -> Result<(), ()> {
    fn nibble(c: u8) -> Result<u8, ()> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(()),
        }
    }
    let b = text.as_bytes();
    if b.len() != 2 * N {
        return Err(());
    }
    for (dst, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *dst = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(())
}

/// Unpadded base64url of the 32 token bytes.
fn encode(bytes: &[u8; TOKEN_BYTES]) -> String {
    base64url_encode(bytes)
}

/// The 32 bytes behind a token's text, or `None` if `text` is not exactly the
/// canonical encoding of 32 bytes.
fn decode(text: &str) -> Option<[u8; TOKEN_BYTES]> {
    if text.len() != TOKEN_TEXT_LEN {
        return None;
    }
    let mut out = [0u8; TOKEN_BYTES];
    (base64url_decode_into(text, &mut out)? == TOKEN_BYTES).then_some(out)
}

/// Unpadded base64url (RFC 4648, section 5) of `bytes`.
pub(crate) fn base64url_encode(bytes: &[u8]) -> String {
    let sextet = |word: u32, shift: u32| ALPHABET[((word >> shift) & 0x3f) as usize];
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    // Three bytes make four characters; a last one or two make two or three.
    let mut chunks = bytes.chunks_exact(3);
    for chunk in &mut chunks {
        let word = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        out.extend_from_slice(&[
            sextet(word, 18),
            sextet(word, 12),
            sextet(word, 6),
            sextet(word, 0),
        ]);
    }
    match *chunks.remainder() {
        [a] => out.extend_from_slice(&[
            sextet(u32::from(a) << 16, 18),
            sextet(u32::from(a) << 16, 12),
        ]),
        [a, b] => {
            let word = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[sextet(word, 18), sextet(word, 12), sextet(word, 6)]);
        }
        _ => {}
    }
    String::from_utf8(out).expect("the base64url alphabet is ASCII")
}

/// The bytes behind unpadded base64url text, or `None` if `text` is not
/// exactly the canonical encoding of some bytes (a character outside the
/// alphabet, a length no encoding has, or spare bits that are not zero), so
/// that each byte string has exactly one text.
pub(crate) fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = vec![0u8; text.len() * 3 / 4];
    let n = base64url_decode_into(text, &mut out)?;
    out.truncate(n);
    Some(out)
}

/// [`base64url_decode`] into `out`, without allocating; returns how many
/// bytes it wrote, or `None` if `text` is not canonical or `out` too short.
fn base64url_decode_into(text: &str, out: &mut [u8]) -> Option<usize> {
    let chars = text.as_bytes();
    if chars.len() % 4 == 1 {
        return None;
    }
    // Six bits a character: four characters make three bytes, a last two
    // or three make one or two, whose spare low bits must be zero.
    let len = chars.len() * 6 / 8;
    let out = out.get_mut(..len)?;
    let value = |c: u8| match DECODE[usize::from(c)] {
        INVALID => None,
        v => Some(u32::from(v)),
    };
    let mut groups = chars.chunks_exact(4);
    let mut bytes = out.chunks_exact_mut(3);
    for (group, dst) in (&mut groups).zip(&mut bytes) {
        let word = value(group[0])? << 18
            | value(group[1])? << 12
            | value(group[2])? << 6
            | value(group[3])?;
        dst.copy_from_slice(&word.to_be_bytes()[1..]);
    }
    match (groups.remainder(), bytes.into_remainder()) {
        (&[first, second], [byte]) => {
            let word = value(first)? << 6 | value(second)?;
            if word & 0xf != 0 {
                return None;
            }
            *byte = (word >> 4).to_be_bytes()[3];
        }
        (&[first, second, third], [high, low]) => {
            let word = value(first)? << 12 | value(second)? << 6 | value(third)?;
            if word & 0x3 != 0 {
                return None;
            }
            [_, _, *high, *low] = (word >> 2).to_be_bytes();
        }
        _ => {}
    }
    Some(len)
}

/// Not a character of the alphabet, in [`DECODE`].
const INVALID: u8 = 0xff;

/// The value of each byte as a base64url character, [`INVALID`] for the
/// bytes outside the alphabet.
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut value: u8 = 0;
    while value < 64 {
        table[ALPHABET[value as usize] as usize] = value;
        value += 1;
    }
    table
};

/// A cryptographically secure generator backed by the operating system
/// (feature `getrandom`, on by default).
///
/// The pure core never creates one: it is a convenience for callers that have
/// no generator of their own, to pass wherever the crate asks for one.
///
/// ```
/// use service_contacts::{OsRng, Token};
///
/// let a = Token::generate(&mut OsRng)?;
/// let b = Token::generate(&mut OsRng)?;
/// assert_ne!(a.reveal(), b.reveal());
/// # Ok::<(), service_contacts::RandomnessError>(())
/// ```
#[cfg(feature = "getrandom")]
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRng;

#[cfg(feature = "getrandom")]
impl rand_core::TryRng for OsRng {
    type Error = getrandom::Error;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        getrandom::u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        getrandom::u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        #[expect(
            clippy::disallowed_methods,
            reason = "the documented OS convenience layer, never called by the core"
        )]
        getrandom::fill(dst)
    }
}

#[cfg(feature = "getrandom")]
impl TryCryptoRng for OsRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The first base64url of the crate, a character and a bit at a time:
    /// what the table-driven one must agree with.
    mod reference {
        use super::ALPHABET;

        pub(super) fn encode(bytes: &[u8]) -> String {
            let mut out = String::new();
            let (mut acc, mut bits) = (0u32, 0);
            for &byte in bytes {
                acc = (acc << 8) | u32::from(byte);
                bits += 8;
                while bits >= 6 {
                    bits -= 6;
                    out.push(char::from(ALPHABET[((acc >> bits) & 0x3f) as usize]));
                }
            }
            if bits > 0 {
                out.push(char::from(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize]));
            }
            out
        }

        pub(super) fn decode_into(text: &str, out: &mut [u8]) -> Option<usize> {
            let b = text.as_bytes();
            if b.len() % 4 == 1 {
                return None;
            }
            let (mut n, mut acc, mut bits) = (0, 0u32, 0);
            for &c in b {
                let value = match c {
                    b'A'..=b'Z' => c - b'A',
                    b'a'..=b'z' => c - b'a' + 26,
                    b'0'..=b'9' => c - b'0' + 52,
                    b'-' => 62,
                    b'_' => 63,
                    _ => return None,
                };
                acc = ((acc << 6) | u32::from(value)) & 0xffff;
                bits += 6;
                if bits >= 8 {
                    bits -= 8;
                    *out.get_mut(n)? = ((acc >> bits) & 0xff) as u8;
                    n += 1;
                }
            }
            (acc & ((1 << bits) - 1) == 0).then_some(n)
        }

        pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
            let mut out = vec![0u8; text.len() * 3 / 4];
            let n = decode_into(text, &mut out)?;
            out.truncate(n);
            Some(out)
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        // R40
        let token = Token::from_bytes([0xAB; 32]);
        let text = token.reveal();
        let debug = format!("{token:?} {:?}", token.digest());
        assert!(!debug.contains(&text));
        assert!(!debug.contains("ab"), "{debug}");
    }

    #[test]
    fn failing_generator_is_an_error() {
        struct Broken;
        impl rand_core::TryRng for Broken {
            type Error = std::io::Error;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                Err(std::io::Error::other("empty"))
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                Err(std::io::Error::other("empty"))
            }
            fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
                Err(std::io::Error::other("empty"))
            }
        }
        impl TryCryptoRng for Broken {}
        let err = Token::generate(&mut Broken).unwrap_err();
        assert_eq!(err.to_string(), "the random generator failed: empty");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        // R18, section 8: text is URL-safe and decodes back to the same bytes.
        #[test]
        fn text_round_trips(bytes in any::<[u8; 32]>()) {
            let token = Token::from_bytes(bytes);
            let text = token.reveal();
            prop_assert_eq!(text.len(), 43);
            prop_assert!(text.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            prop_assert_eq!(decode(&text), Some(bytes));
            prop_assert!(token.digest().verify(&text));
        }

        // R25: any other string fails verification, and never panics.
        #[test]
        fn other_strings_never_verify(bytes in any::<[u8; 32]>(), other in any::<String>()) {
            let token = Token::from_bytes(bytes);
            prop_assume!(other != token.reveal());
            prop_assert!(!token.digest().verify(&other));
        }

        // R25: one changed character fails, including the non-canonical last one.
        #[test]
        fn one_character_off_fails(bytes in any::<[u8; 32]>(), at in 0..43usize, with in "[A-Za-z0-9_-]") {
            let token = Token::from_bytes(bytes);
            let mut text = token.reveal();
            prop_assume!(&text[at..=at] != with.as_str());
            text.replace_range(at..=at, &with);
            prop_assert!(!token.digest().verify(&text));
        }

        // The table-driven base64url agrees with the bit-by-bit one it
        // replaced, on any bytes and on any text (canonical or not, of any
        // length, into any room).
        #[test]
        fn base64url_matches_the_reference(
            bytes in proptest::collection::vec(any::<u8>(), 0..80),
            text in "[A-Za-z0-9_=+/-]{0,70}",
            other in any::<String>(),
            room in 0..60usize,
        ) {
            prop_assert_eq!(base64url_encode(&bytes), reference::encode(&bytes));
            let encoded = reference::encode(&bytes);
            for text in [encoded.as_str(), text.as_str(), other.as_str()] {
                let (mut ours, mut theirs) = (vec![0u8; room], vec![0u8; room]);
                let n = base64url_decode_into(text, &mut ours);
                prop_assert_eq!(n, reference::decode_into(text, &mut theirs));
                if let Some(n) = n {
                    prop_assert_eq!(&ours[..n], &theirs[..n]);
                }
                prop_assert_eq!(base64url_decode(text), reference::decode(text));
            }
        }

        // Digest text round-trips.
        #[test]
        fn digest_hex_round_trips(bytes in any::<[u8; 32]>()) {
            let digest = Token::from_bytes(bytes).digest();
            prop_assert_eq!(TokenDigest::parse_hex(&digest.to_string()), Ok(digest));
        }
    }
}
