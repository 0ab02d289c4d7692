//! Refused callbacks grouped by (peer, outcome, reason): a flood from one
//! sender is one row with a large count, so it cannot push every other
//! refusal off the page. At most [`GROUPS_KEPT`] groups; a new group past
//! that replaces the one seen least recently.
use crate::catalog::EventType;
use crate::ingest::outcome::OutcomeKind;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Mutex;

/// Distinct (peer, outcome, reason) groups kept, all shown.
pub const GROUPS_KEPT: usize = 20;

struct Group {
    peer: Option<IpAddr>,
    outcome: OutcomeKind,
    reason: String,
    /// Of the latest callback in the group.
    event_type: EventType,
    count: u64,
    first_secs: u64,
    last_secs: u64,
}

#[derive(Default)]
struct Groups {
    items: Vec<Group>,
    /// Groups replaced by newer ones since start.
    evicted: u64,
}

#[derive(Default)]
pub struct Refusals(Mutex<Groups>);

impl Refusals {
    /// Counts one refusal into its group. `reason` is already cut short.
    pub fn record(
        &self,
        at_secs: u64,
        peer: Option<IpAddr>,
        event_type: EventType,
        outcome: OutcomeKind,
        reason: &str,
    ) {
        let mut groups = crate::sync::lock(&self.0);
        let same = |g: &&mut Group| g.peer == peer && g.outcome == outcome && g.reason == reason;
        if let Some(g) = groups.items.iter_mut().find(same) {
            g.count = g.count.saturating_add(1);
            g.last_secs = g.last_secs.max(at_secs);
            g.event_type = event_type;
            return;
        }
        let mut group = Group {
            peer,
            outcome,
            reason: String::new(),
            event_type,
            count: 1,
            first_secs: at_secs,
            last_secs: at_secs,
        };
        if groups.items.len() >= GROUPS_KEPT {
            let oldest = groups.items.iter().enumerate().min_by_key(|(_, g)| g.last_secs).map_or(0, |(i, _)| i);
            // The evicted group's reason buffer is reused.
            group.reason = groups.items.swap_remove(oldest).reason;
            group.reason.clear();
            groups.evicted += 1;
        }
        group.reason.push_str(reason);
        groups.items.push(group);
    }

    /// The groups, the most recently seen first, and how many were evicted.
    pub fn view(&self, now_secs: u64) -> (Vec<RefusedCallback>, u64) {
        let groups = crate::sync::lock(&self.0);
        let mut out: Vec<RefusedCallback> = groups
            .items
            .iter()
            .map(|g| RefusedCallback {
                peer: g.peer,
                event_type: g.event_type,
                outcome: g.outcome,
                reason: g.reason.clone(),
                count: g.count,
                first_seen: g.first_secs,
                last_seen: g.last_secs,
                seconds_ago: now_secs.saturating_sub(g.last_secs),
            })
            .collect();
        out.sort_by(|a, b| {
            (b.last_seen, b.count)
                .cmp(&(a.last_seen, a.count))
                .then_with(|| (&a.reason, a.peer).cmp(&(&b.reason, b.peer)))
        });
        (out, groups.evicted)
    }
}

/// Refused callbacks from one peer with one outcome and reason.
#[derive(Debug, Serialize)]
pub struct RefusedCallback {
    /// The TCP peer, or with `--trusted-proxy` the client a trusted proxy
    /// forwarded for.
    pub peer: Option<IpAddr>,
    /// Of the latest one.
    pub event_type: EventType,
    pub outcome: OutcomeKind,
    pub reason: String,
    pub count: u64,
    pub first_seen: u64,
    pub last_seen: u64,
    /// Since the latest one.
    pub seconds_ago: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(r: &Refusals, at: u64, peer: [u8; 4], reason: &str) {
        r.record(at, Some(IpAddr::from(peer)), EventType::PushError, OutcomeKind::Unauthorized, reason);
    }

    #[test]
    fn a_flood_from_one_peer_is_one_row() {
        let r = Refusals::default();
        record(&r, 5, [10, 0, 0, 2], "other");
        for t in 10..10_010 {
            record(&r, t, [203, 0, 113, 9], "unauthorized: sign does not match");
        }
        let (rows, evicted) = r.view(10_010);
        let got: Vec<_> =
            rows.iter().map(|g| (g.peer.unwrap().to_string(), g.count, g.first_seen, g.last_seen)).collect();
        assert_eq!(got, [("203.0.113.9".into(), 10_000, 10, 10_009), ("10.0.0.2".into(), 1, 5, 5)]);
        assert_eq!((rows[0].seconds_ago, evicted), (1, 0));
    }

    #[test]
    fn past_the_limit_the_least_recently_seen_group_goes() {
        let r = Refusals::default();
        for i in 0..GROUPS_KEPT as u64 {
            record(&r, i, [10, 0, 0, 1], &format!("reason {i}"));
        }
        // Group 0 is seen again, so group 1 is now the least recent.
        record(&r, 100, [10, 0, 0, 1], "reason 0");
        record(&r, 101, [10, 0, 0, 1], "new");
        let (rows, evicted) = r.view(101);
        assert_eq!((rows.len(), evicted), (GROUPS_KEPT, 1));
        let reasons: Vec<_> = rows.iter().map(|g| g.reason.as_str()).collect();
        assert_eq!(&reasons[..2], ["new", "reason 0"]);
        assert!(!reasons.contains(&"reason 1"), "{reasons:?}");
    }
}
