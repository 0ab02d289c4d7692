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
//! A stream keeps at most 5 records, more only for one ended in several
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
        for k in deciding(&stream) {
            keep[indices[k]] = true;
        }
    }
    let mut keep = keep.into_iter();
    journal.retain(|_| keep.next().unwrap_or(true));
}

/// Which of one stream's transitions (in order) decide its replay.
fn deciding(ts: &[&Transition]) -> Vec<usize> {
    let last_of_other = |range: std::ops::Range<usize>, session: u64| range.rev().find(|&i| ts[i].session != session);
    let Some(last) = ts.len().checked_sub(1) else { return Vec::new() };
    let mut keep = vec![last];
    let Some(mut end) = ts.iter().rposition(|t| !t.start) else {
        keep.extend(last_of_other(0..last, ts[last].session));
        return keep;
    };
    keep.push(end);
    if let Some(start) = last_of_other(end + 1..ts.len(), ts[end].session) {
        keep.push(start);
        return keep;
    }
    // The ends before the last, one per session, while no start between them applies.
    let mut ends: Vec<usize> = Vec::new();
    loop {
        let Some(earlier) = ts[..end].iter().rposition(|t| !t.start) else {
            // The starts before the first end, from whatever the snapshot held.
            keep.extend(ends);
            if let Some(first) = end.checked_sub(1) {
                keep.push(first);
                keep.extend(last_of_other(0..first, ts[first].session));
            }
            return keep;
        };
        if let Some(start) = last_of_other(earlier + 1..end, ts[earlier].session) {
            // Live with this start's session: of the ends since, only one of it matters.
            let session = ts[start].session;
            keep.extend([earlier, start]);
            keep.extend((start + 1..ts.len()).find(|&i| !ts[i].start && ts[i].session == session));
            return keep;
        }
        let session = ts[earlier].session;
        if session != ts[keep[1]].session && ends.iter().all(|&i| ts[i].session != session) {
            ends.push(earlier);
        }
        end = earlier;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::lifecycle::{Lifecycle, Lifecycles};
    use crate::state::streams::StreamId;
    use proptest::prelude::*;

    const ID: StreamId<'static> = StreamId { domain: "d", app: "a", stream: "s" };

    fn transition(seq: u64, (start, session, at, folded): (bool, u64, u64, bool)) -> Transition {
        Transition { seq, start, folded, session, at, key: "k".into() }
    }

    /// The lifecycle after replaying `ts` on `before` (none: a stream the snapshot did not hold).
    fn replayed(before: Option<Lifecycle>, ts: &[Transition]) -> Option<Lifecycle> {
        let l = Lifecycles::new(10, 64, None);
        if let Some(before) = before {
            l.restore(ID, before);
        }
        for t in ts {
            l.replay(ID, t, t.folded, |_| {});
        }
        l.get("domain=\"d\",app=\"a\",stream=\"s\"")
    }

    fn lifecycle() -> impl Strategy<Value = Option<Lifecycle>> {
        proptest::option::of((any::<bool>(), 0..4u64, proptest::option::of(0..4u64), any::<bool>()).prop_map(
            |(live, session, ended_session, folded)| Lifecycle { live, session, ended_session, last_seen: 0, folded },
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
            let ends = all.iter().filter(|t| !t.start).map(|t| t.session).collect::<std::collections::BTreeSet<_>>();
            prop_assert!(kept.len() <= 5.max(ends.len() + 3), "{} kept of {}", kept.len(), all.len());
        }
    }

    #[test]
    fn streams_are_compacted_apart_and_order_is_kept() {
        let t = |seq, key: &str, start, session| Transition {
            seq,
            start,
            folded: false,
            session,
            at: seq,
            key: key.into(),
        };
        // Stream a: ten sessions started and ended; b: started once.
        let mut journal: Vec<Transition> = (0..20).map(|i| t(2 * i, "a", i % 2 == 0, i / 2)).collect();
        journal.push(t(7, "b", true, 1));
        journal.reverse();
        compact(&mut journal);
        let kept: Vec<(u64, &str)> = journal.iter().map(|t| (t.seq, &*t.key)).collect();
        // a: the end of session 8, the start and the end of session 9.
        assert_eq!(kept, [(7, "b"), (34, "a"), (36, "a"), (38, "a")]);
    }
}
