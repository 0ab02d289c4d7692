//! Compacting the lifecycle journal while snapshots fail: each stream's
//! starts and ends are reduced to the few that decide what replaying them
//! all does, whatever state the last snapshot held for the stream. Nothing
//! is made up: what is kept are records as they were journalled, in order,
//! so the journal's format and its replay are unchanged.
//!
//! Replaying a start of session `s` makes the stream live with `s` unless
//! `s` is the session that ended last; an end of `s` makes it not live if
//! it was not, or was live with `s`, and remembers `s` as ended. So:
//! - the last record is kept (it sets when the stream was last seen, and
//!   whether its pair is folded);
//! - after the last end, a start of another session decides alone with it:
//!   live, with that session;
//! - otherwise the last end decides liveness with what came before it: a
//!   start of another session after an earlier end (then only an end of that
//!   start's session matters among the ends since), or else every end since
//!   the first, one per session (any may end the session the snapshot
//!   holds), and the starts before it: the last, and the last of another
//!   session (one of them applies, depending on the snapshot).
//!
//! Besides liveness, replay rebuilds the session records (start time, access
//! node, end and its errcode, and the session before): the first start and
//! the first end of each of the stream's last three sessions started are
//! kept too.
//!
//! A stream keeps at most 11 records, more only for one ended in several
//! sessions with no start between them since the last snapshot.
use super::journal::Transition;
use hashbrown::HashMap;

/// Keeps each stream's deciding transitions, in the order they were numbered.
pub fn compact(journal: &mut Vec<Transition>) {
    journal.sort_by_key(|t| t.seq);
    let mut keep = vec![false; journal.len()];
    let mut by_stream: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in journal.iter().enumerate() {
        by_stream.entry(&*t.key).or_default().push(i);
    }
    for indices in by_stream.into_values() {
        let stream: Vec<&Transition> = indices.iter().map(|&i| &journal[i]).collect();
        for k in deciding(&stream).into_iter().chain(recording(&stream)) {
            keep[indices[k]] = true;
        }
    }
    let mut keep = keep.into_iter();
    journal.retain(|_| keep.next().unwrap_or(true));
}

/// The first start and the first end of each of the last three sessions
/// started (a repeated one changes nothing): what the replayed session records (this
/// one and the one before) are built from.
fn recording(ts: &[&Transition]) -> Vec<usize> {
    let mut sessions: Vec<u64> = Vec::with_capacity(3);
    // Only a start opens a session record; an end of another session changes none.
    for t in ts.iter().rev().filter(|t| t.change.start) {
        if !sessions.contains(&t.change.session) {
            if sessions.len() == 3 {
                break;
            }
            sessions.push(t.change.session);
        }
    }
    let mut seen: Vec<(u64, bool)> = Vec::with_capacity(6);
    let mut keep = Vec::new();
    for (i, t) in ts.iter().enumerate() {
        let c = &t.change;
        if sessions.contains(&c.session) && !seen.contains(&(c.session, c.start)) {
            seen.push((c.session, c.start));
            keep.push(i);
        }
    }
    keep
}

/// Which of one stream's transitions (in order) decide its replay.
fn deciding(ts: &[&Transition]) -> Vec<usize> {
    let last_of_other =
        |range: std::ops::Range<usize>, session: u64| range.rev().find(|&i| ts[i].change.session != session);
    let Some(last) = ts.len().checked_sub(1) else { return Vec::new() };
    let mut keep = vec![last];
    let Some(mut end) = ts.iter().rposition(|t| !t.change.start) else {
        keep.extend(last_of_other(0..last, ts[last].change.session));
        return keep;
    };
    keep.push(end);
    if let Some(start) = last_of_other(end + 1..ts.len(), ts[end].change.session) {
        keep.push(start);
        return keep;
    }
    // The ends before the last, one per session, while no start between them applies.
    let mut ends: Vec<usize> = Vec::new();
    loop {
        let Some(earlier) = ts[..end].iter().rposition(|t| !t.change.start) else {
            // The starts before the first end, from whatever the snapshot held.
            keep.extend(ends);
            if let Some(first) = end.checked_sub(1) {
                keep.push(first);
                keep.extend(last_of_other(0..first, ts[first].change.session));
            }
            return keep;
        };
        if let Some(start) = last_of_other(earlier + 1..end, ts[earlier].change.session) {
            // Live with this start's session: of the ends since, only one of it matters.
            let session = ts[start].change.session;
            keep.extend([earlier, start]);
            keep.extend((start + 1..ts.len()).find(|&i| !ts[i].change.start && ts[i].change.session == session));
            return keep;
        }
        let session = ts[earlier].change.session;
        if session != ts[keep[1]].change.session && ends.iter().all(|&i| ts[i].change.session != session) {
            ends.push(earlier);
        }
        end = earlier;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Region;
    use crate::state::journal::Change;
    use crate::state::key::StreamKey;
    use crate::state::lifecycle::{Lifecycle, Lifecycles, SessionEnd, SessionRecord};
    use crate::state::streams::StreamId;
    use proptest::prelude::*;

    const ID: StreamId<'static> = StreamId { domain: "d", app: "a", stream: "s" };

    fn change(start: bool, session: u64, at_secs: u64, folded: bool) -> Change {
        Change {
            start,
            folded,
            session,
            at_ms: at_secs * 1000,
            event_time: i64::try_from(at_secs).unwrap() - 2,
            node: Some(std::net::IpAddr::from([198, 51, 100, u8::try_from(session).unwrap()])),
            region: Region::Mainland,
            errcode: (!start).then(|| i64::try_from(session).unwrap() * 3),
        }
    }

    fn transition(seq: u64, (start, session, at, folded): (bool, u64, u64, bool)) -> Transition {
        Transition { seq, change: change(start, session, at, folded), key: "k".into() }
    }

    /// The lifecycle after replaying `ts` on `before` (none: a stream the snapshot did not hold).
    fn replayed(before: Option<Lifecycle>, ts: &[Transition]) -> Option<Lifecycle> {
        let l = Lifecycles::new(10, 60_000, None);
        let key = StreamKey::new(ID, 64);
        if let Some(before) = before {
            l.restore(&key, before);
        }
        for t in ts {
            l.replay(&key, t, t.change.folded, |_| {});
        }
        l.get("domain=\"d\",app=\"a\",stream=\"s\"")
    }

    fn lifecycle() -> impl Strategy<Value = Option<Lifecycle>> {
        let ended = proptest::option::of((0..4u64, any::<bool>()));
        proptest::option::of((any::<bool>(), 0..4u64, ended, any::<bool>()).prop_map(
            |(live, session, ended, folded)| {
                Lifecycle {
                    live,
                    session,
                    ended_session: ended.map(|(s, _)| s),
                    last_seen: 0,
                    folded,
                    record: SessionRecord {
                        start_ms: 500_000,
                        node: None,
                        region: Region::Unknown,
                        end: ended
                            .filter(|&(s, own)| own && s == session && !live)
                            .map(|_| SessionEnd { at_ms: 600_000, errcode: 5 }),
                    },
                    previous: None,
                }
            },
        ))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Few sessions, so they repeat and collide, from any state a snapshot could hold.
        #[test]
        fn the_kept_records_replay_as_all_of_them_do(
            before in lifecycle(),
            steps in proptest::collection::vec((any::<bool>(), 0..4u64, 1..1000u64, any::<bool>()), 0..40),
        ) {
            let all: Vec<Transition> = steps.into_iter().enumerate().map(|(i, s)| transition(i as u64, s)).collect();
            let mut kept = all.clone();
            compact(&mut kept);
            prop_assert_eq!(replayed(before, &kept), replayed(before, &all), "kept {:?}", kept);
            let ends = all.iter().filter(|t| !t.change.start).map(|t| t.change.session).collect::<std::collections::BTreeSet<_>>();
            prop_assert!(kept.len() <= 11.max(ends.len() + 9), "{} kept of {}", kept.len(), all.len());
        }
    }

    #[test]
    fn streams_are_compacted_apart_and_order_is_kept() {
        let t = |seq, key: &str, start, session| Transition {
            seq,
            change: change(start, session, seq, false),
            key: key.into(),
        };
        // Stream a: ten sessions started and ended; b: started once.
        let mut journal: Vec<Transition> = (0..20).map(|i| t(2 * i, "a", i % 2 == 0, i / 2)).collect();
        journal.push(t(7, "b", true, 1));
        journal.reverse();
        compact(&mut journal);
        let kept: Vec<(u64, &str)> = journal.iter().map(|t| (t.seq, &*t.key)).collect();
        // a: the starts and ends of sessions 7, 8 and 9.
        assert_eq!(kept, [(7, "b"), (28, "a"), (30, "a"), (32, "a"), (34, "a"), (36, "a"), (38, "a")]);
    }
}
