//! What became of a callback: the closed vocabulary of outcomes (the
//! `outcome` label values, the status page's badges and the alert rules'
//! selectors all derive from [`OutcomeKind::ALL`]) and why one was refused.
use crate::catalog::EventType;
use crate::ingest::wire::ParseError;
use std::fmt;
use std::time::Duration;

/// Every `outcome` label value. Refusals are every kind but the first three,
/// so PromQL selects them as `outcome!~"accepted|duplicate|ignored"` and a
/// new refusal kind can never be missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    Accepted,
    Duplicate,
    Ignored,
    Malformed,
    Unauthorized,
    Expired,
    TooLarge,
    Timeout,
}

impl OutcomeKind {
    pub const ALL: [OutcomeKind; 8] = [
        OutcomeKind::Accepted,
        OutcomeKind::Duplicate,
        OutcomeKind::Ignored,
        OutcomeKind::Malformed,
        OutcomeKind::Unauthorized,
        OutcomeKind::Expired,
        OutcomeKind::TooLarge,
        OutcomeKind::Timeout,
    ];

    /// The `outcome` label value.
    pub fn label(self) -> &'static str {
        match self {
            OutcomeKind::Accepted => "accepted",
            OutcomeKind::Duplicate => "duplicate",
            OutcomeKind::Ignored => "ignored",
            OutcomeKind::Malformed => "malformed",
            OutcomeKind::Unauthorized => "unauthorized",
            OutcomeKind::Expired => "expired",
            OutcomeKind::TooLarge => "too_large",
            OutcomeKind::Timeout => "timeout",
        }
    }

    /// Whether the callback was refused (answered 4xx, nothing recorded).
    pub fn is_refusal(self) -> bool {
        !matches!(self, OutcomeKind::Accepted | OutcomeKind::Duplicate | OutcomeKind::Ignored)
    }

    /// Its place in [`OutcomeKind::ALL`], for tables indexed by kind.
    pub fn index(self) -> usize {
        self as usize
    }

    /// What it means for the setup, for the status page's legend.
    pub fn meaning(self) -> &'static str {
        match self {
            OutcomeKind::Accepted => "recorded",
            OutcomeKind::Duplicate => "a CSS retry of a callback already recorded: answered 200, counted once",
            OutcomeKind::Ignored => "an event type this exporter does not record: answered 200",
            OutcomeKind::Malformed => "not a CSS callback body (a proxy rewriting it, or someone else posting)",
            OutcomeKind::Unauthorized => {
                "the key in the CSS callback template differs from --callback-key, or something in between \
                 dropped sign or t"
            }
            OutcomeKind::Expired => "t is in the past: check this host's clock, or raise --max-clock-skew",
            OutcomeKind::TooLarge => "the body is over --max-body-bytes",
            OutcomeKind::Timeout => {
                "the body did not arrive within --read-timeout: a stalled sender, or a proxy buffering slowly"
            }
        }
    }
}

/// Serialized as its label, as the status page's JSON shows it.
impl serde::Serialize for OutcomeKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

/// What became of a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// A retry of a callback already accepted: answered 200, counted once.
    Duplicate,
    /// An event kind this exporter does not record: answered 200.
    Ignored,
    Rejected(Rejection),
}

/// Why a callback was refused; the HTTP layer answers with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Malformed(ParseError),
    /// `sign` or `t` missing, or `sign` matches no key.
    Unauthorized(&'static str),
    /// Signed correctly, but `t` is in the past.
    Expired,
    /// The body is larger than `--max-body-bytes`.
    TooLarge {
        limit: usize,
    },
    /// The body did not arrive within `--read-timeout`.
    Timeout {
        after: Duration,
    },
}

impl Outcome {
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Accepted => OutcomeKind::Accepted,
            Outcome::Duplicate => OutcomeKind::Duplicate,
            Outcome::Ignored => OutcomeKind::Ignored,
            Outcome::Rejected(r) => r.kind(),
        }
    }

    /// The `outcome` label value.
    pub fn label(&self) -> &'static str {
        self.kind().label()
    }
}

impl Rejection {
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Rejection::Malformed(_) => OutcomeKind::Malformed,
            Rejection::Unauthorized(_) => OutcomeKind::Unauthorized,
            Rejection::Expired => OutcomeKind::Expired,
            Rejection::TooLarge { .. } => OutcomeKind::TooLarge,
            Rejection::Timeout { .. } => OutcomeKind::Timeout,
        }
    }

    pub fn label(&self) -> &'static str {
        self.kind().label()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Malformed(e) => e.fmt(f),
            Rejection::Unauthorized(why) => write!(f, "unauthorized: {why}"),
            Rejection::Expired => f.write_str("expired: t is in the past"),
            Rejection::TooLarge { limit } => write!(f, "body larger than {limit} bytes"),
            Rejection::Timeout { after } => {
                write!(f, "body not received within {}", humantime::format_duration(*after))
            }
        }
    }
}

impl std::error::Error for Rejection {}

/// A callback's outcome and the `event_type` label it was counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub event_type: EventType,
    pub outcome: Outcome,
}
