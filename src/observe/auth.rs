//! Basic-auth refusals on the metrics listener, counted by reason: shown
//! whether or not basic auth is configured, so an alert can watch for
//! password guessing from the first scrape.
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a request was refused, the `reason` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    /// No credentials sent.
    Missing,
    /// A wrong user name or password.
    Invalid,
    /// Not checked: too many checks were in flight.
    Throttled,
}

impl AuthRefusal {
    pub const ALL: [AuthRefusal; 3] = [AuthRefusal::Missing, AuthRefusal::Invalid, AuthRefusal::Throttled];

    pub fn label(self) -> &'static str {
        match self {
            AuthRefusal::Missing => "missing",
            AuthRefusal::Invalid => "invalid",
            AuthRefusal::Throttled => "throttled",
        }
    }
}

#[derive(Default)]
pub struct AuthFailures {
    /// By [`AuthRefusal::ALL`] order.
    counts: [AtomicU64; 3],
}

impl AuthFailures {
    pub fn count(&self, refusal: AuthRefusal) {
        self.counts[refusal as usize].fetch_add(1, Ordering::Relaxed);
    }
}

impl Collector for AuthFailures {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.family(&f::HTTP_AUTH_FAILURES);
        for refusal in AuthRefusal::ALL {
            let n = self.counts[refusal as usize].load(Ordering::Relaxed);
            enc.sample(&f::HTTP_AUTH_FAILURES, "", &[("reason", refusal.label())], Value::Int(n));
        }
    }
}
