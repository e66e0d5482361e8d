//! Operators (support staff) and the reason they give for acting (R46), and
//! who acted in a history entry: a customer or an operator (R34).

use core::fmt;
use core::str::FromStr;

use crate::CustomerId;

/// The longest operator identity, in bytes.
const MAX_OPERATOR_LEN: usize = 64;
/// The longest reason, in characters.
const MAX_REASON_CHARS: usize = 500;

/// An operator: a member of the provider's support staff, as the host names
/// them (R46).
///
/// The host authenticates its operators; the crate records who acted. An
/// identity is 1 to 64 ASCII letters, digits, `.`, `-`, `_` or `@` (a login
/// name or an e-mail address), kept as written: it is a different type from
/// [`CustomerId`], so an operator can never be taken for a customer, nor the
/// other way round.
///
/// # Examples
///
/// ```
/// use service_contacts::OperatorId;
///
/// let jane: OperatorId = "jane.doe@support".parse()?;
/// assert_eq!(jane.as_str(), "jane.doe@support");
///
/// let err = "jane doe".parse::<OperatorId>().unwrap_err();
/// assert_eq!(err.to_string(), "unexpected character ' ' at position 4 of an operator identity");
/// # Ok::<(), service_contacts::ParseOperatorIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperatorId(Box<str>);

impl OperatorId {
    /// Parses an operator identity.
    ///
    /// # Errors
    ///
    /// A [`ParseOperatorIdError`] for an empty text, one longer than 64
    /// bytes, or a character other than an ASCII letter, digit, `.`, `-`,
    /// `_` or `@` (such as a space or any non-ASCII letter).
    pub fn parse(text: &str) -> Result<OperatorId, ParseOperatorIdError> {
        if text.is_empty() {
            return Err(ParseOperatorIdError(OperatorIdProblem::Empty));
        }
        if let Some((at, found)) = text
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@')))
        {
            return Err(ParseOperatorIdError(OperatorIdProblem::Character {
                found,
                at,
            }));
        }
        if text.len() > MAX_OPERATOR_LEN {
            return Err(ParseOperatorIdError(OperatorIdProblem::TooLong {
                len: text.len(),
            }));
        }
        Ok(OperatorId(text.into()))
    }

    /// The identity's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Debug for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OperatorId({})", self.as_str())
    }
}

impl FromStr for OperatorId {
    type Err = ParseOperatorIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        OperatorId::parse(text)
    }
}

/// Why a text is not an [`OperatorId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseOperatorIdError(OperatorIdProblem);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
enum OperatorIdProblem {
    #[error("empty operator identity")]
    Empty,
    #[error("unexpected character {found:?} at position {at} of an operator identity")]
    Character { found: char, at: usize },
    #[error("operator identity of {len} bytes, at most 64")]
    TooLong { len: usize },
}

/// Why an operator acted, in their words (R46): shown to the customers told
/// of the act and kept in the history.
///
/// 1 to 500 characters with at least one that shows (not white space, not
/// an invisible character such as U+200B ZERO WIDTH SPACE), and no
/// control characters: no line breaks, tabs or escapes, and none of the
/// Unicode characters that reorder text (bidirectional overrides and
/// isolates) or break lines, so a reason prints as one honest line in an
/// e-mail, a support page or a log.
///
/// # Examples
///
/// ```
/// use service_contacts::Reason;
///
/// let why: Reason = "customer lost access to their mailbox; identity checked by phone".parse()?;
/// assert!(why.as_str().starts_with("customer lost"));
///
/// let err = "line one\nline two".parse::<Reason>().unwrap_err();
/// assert_eq!(err.to_string(), "control character '\\n' at character 8 of a reason");
/// # Ok::<(), service_contacts::ParseReasonError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reason(Box<str>);

impl Reason {
    /// Checks a reason.
    ///
    /// # Errors
    ///
    /// A [`ParseReasonError`] for a text that is empty or shows nothing
    /// (only white space and invisible characters such as U+200B), longer
    /// than 500 characters, or that holds a control character
    /// (`\n`, `\t`, `\u{1b}`, ...), a line or paragraph separator, or a
    /// bidirectional formatting character (`\u{202e}`, ...).
    pub fn parse(text: &str) -> Result<Reason, ParseReasonError> {
        if text.chars().all(|c| c.is_whitespace() || invisible(c)) {
            return Err(ParseReasonError(ReasonProblem::Blank));
        }
        let mut chars = 0;
        for (at, c) in text.chars().enumerate() {
            if c.is_control() || breaks_or_reorders(c) {
                return Err(ParseReasonError(ReasonProblem::Control { found: c, at }));
            }
            chars = at + 1;
        }
        if chars > MAX_REASON_CHARS {
            return Err(ParseReasonError(ReasonProblem::TooLong { chars }));
        }
        Ok(Reason(text.into()))
    }

    /// The reason's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl FromStr for Reason {
    type Err = ParseReasonError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Reason::parse(text)
    }
}

/// Characters that break a line, reorder the text around them or hide text:
/// line and paragraph separators, the bidirectional formatting characters,
/// tag characters and interlinear annotations.
fn breaks_or_reorders(c: char) -> bool {
    matches!(
        c,
        // Tag characters and interlinear annotations: text no reader sees.
        '\u{e0000}'..='\u{e007f}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{061c}'
    )
}

/// Characters that show nothing (Unicode's default-ignorable code points,
/// such as U+200B ZERO WIDTH SPACE, U+00AD SOFT HYPHEN or U+FEFF, and the
/// blank U+2800): allowed
/// inside a reason, but a reason made of them alone says nothing.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{2800}'
            | '\u{034f}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0080}'..='\u{e0fff}'
    )
}

/// Why a text is not a [`Reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseReasonError(ReasonProblem);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
enum ReasonProblem {
    #[error("empty reason: say why the operator acts")]
    Blank,
    #[error("control character {found:?} at character {at} of a reason")]
    Control { found: char, at: usize },
    #[error("reason of {chars} characters, at most 500")]
    TooLong { chars: usize },
}

/// An operator's act: who acted and why (R46). Every operator action takes
/// one, and the history keeps it.
///
/// ```
/// use service_contacts::OperatorAct;
///
/// let act = OperatorAct::new("jane@support".parse()?, "mailbox lost, identity checked".parse()?);
/// assert_eq!(act.operator().as_str(), "jane@support");
/// assert_eq!(act.reason().as_str(), "mailbox lost, identity checked");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct OperatorAct {
    operator: OperatorId,
    reason: Reason,
}

impl OperatorAct {
    /// `operator` acts, for `reason`.
    #[must_use]
    pub fn new(operator: OperatorId, reason: Reason) -> OperatorAct {
        OperatorAct { operator, reason }
    }

    /// Who acted.
    #[must_use]
    pub fn operator(&self) -> &OperatorId {
        &self.operator
    }

    /// Why.
    #[must_use]
    pub fn reason(&self) -> &Reason {
        &self.reason
    }
}

/// Who acted in a history entry (R34, R46): a customer, or an operator with
/// the reason they gave.
///
/// Serialized (feature `serde`) as the customer's identifier, such as
/// `"AB1-OVH"`, or as `{"operator": "jane@support", "reason": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum Actor {
    /// A customer acted for themselves.
    Customer(CustomerId),
    /// An operator acted, for the reason given.
    Operator(OperatorAct),
}

impl Actor {
    /// The customer who acted, if a customer did.
    #[must_use]
    pub fn customer(&self) -> Option<CustomerId> {
        match self {
            Actor::Customer(customer) => Some(*customer),
            Actor::Operator(_) => None,
        }
    }

    /// The operator's act, if an operator acted.
    #[must_use]
    pub fn operator(&self) -> Option<&OperatorAct> {
        match self {
            Actor::Customer(_) => None,
            Actor::Operator(act) => Some(act),
        }
    }
}

impl From<CustomerId> for Actor {
    fn from(customer: CustomerId) -> Actor {
        Actor::Customer(customer)
    }
}

impl From<OperatorAct> for Actor {
    fn from(act: OperatorAct) -> Actor {
        Actor::Operator(act)
    }
}

impl fmt::Display for Actor {
    /// The customer's identifier, or `operator <id>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Customer(customer) => fmt::Display::fmt(customer, f),
            Actor::Operator(act) => write!(f, "operator {}", act.operator),
        }
    }
}
