//! HTTP basic auth against bcrypt hashes, kept cheap under attack and fair
//! to the scraper. bcrypt is slow on purpose, so a flood of wrong passwords
//! is a flood of CPU work, and could take every check from a correct login:
//! - a verdict is remembered: a keyed digest of (user, password, hash) that
//!   passed, or that failed, in memory only. A scraper pays bcrypt once, a
//!   wrong password repeated costs nothing, and the same credentials sent
//!   again while they are being checked wait for that check's verdict. The
//!   digest of a failure never stands for a good password: it can only say
//!   "this one is wrong".
//! - checks run one at a time on a blocking thread, taking turns by client
//!   address (round-robin; first come, first served within one address),
//!   with at most [`PER_ADDRESS`] waiting per address and [`QUEUE`] in all:
//!   past that a request is refused unchecked. A login waits for at most one
//!   check per address ahead of it, so no address, and no client, can take
//!   every turn.
//!
//! A user name that does not exist is checked against a real hash all the
//! same, so timing does not tell which names do.
use crate::sync::lock;
use actix_web::http::header::HeaderValue;
use actix_web::web;
use base64::Engine;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Waker};

/// Highest bcrypt cost accepted at start: 12 takes about 0.25 s a check,
/// and every step up doubles it (exporter-toolkit's users use 10 to 12).
pub const MAX_COST: u32 = 12;
/// Checks waiting for their turn at most; past it, refused unchecked.
pub const QUEUE: usize = 32;
/// Checks of one client address waiting at most.
pub const PER_ADDRESS: usize = 4;
/// Logins remembered as passed (cleared when full).
const PASSED_CACHE: usize = 256;
/// Credentials remembered as wrong (cleared when full).
const FAILED_CACHE: usize = 4096;

/// What a request's credentials came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// No `Authorization: Basic` header, or an unreadable one.
    Missing,
    /// A wrong password, or a user that does not exist.
    Invalid {
        user: String,
    },
    /// Not checked: [`QUEUE`] checks wait, or [`PER_ADDRESS`] of this address's.
    Throttled,
}

pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// The costliest user's hash, checked for names that are not users.
    decoy: String,
    checks: Mutex<Checks>,
}

/// The verdicts remembered and the checks waiting, under one lock.
#[derive(Default)]
struct Checks {
    passed: HashSet<u128>,
    failed: HashSet<u128>,
    /// Credentials with a check waiting or running.
    checking: HashSet<u128>,
    /// Addresses with checks waiting, the next turn's first.
    turns: VecDeque<IpAddr>,
    /// Per address, its waiting checks' tickets, first come first.
    waiting: HashMap<IpAddr, VecDeque<u64>>,
    waiting_total: usize,
    next_ticket: u64,
    /// A check is running.
    busy: bool,
    /// Requests waiting for a change here.
    wakers: Vec<Waker>,
}

/// What a request does once its credentials are not being checked for another.
enum Next {
    Remembered(bool),
    Throttled,
    Queued(Ticket),
}

impl BasicAuth {
    /// `users` maps names to bcrypt hashes, checked by the caller to parse;
    /// `None` if there are none.
    pub fn new(users: BTreeMap<String, String>) -> Option<Self> {
        let cost = |h: &String| h.parse::<bcrypt::HashParts>().map_or(0, |p| p.get_cost());
        let decoy = users.values().max_by_key(|h| cost(h))?.clone();
        Some(Self { users, decoy, checks: Mutex::default() })
    }

    pub async fn check(self: Arc<Self>, peer: Option<IpAddr>, authorization: Option<&HeaderValue>) -> Verdict {
        let Some((user, password)) = authorization.and_then(parse_basic) else { return Verdict::Missing };
        let (hash, known) = match self.users.get(&user) {
            Some(hash) => (hash.clone(), true),
            None => (self.decoy.clone(), false),
        };
        let key = cache_key(&user, &password, &hash);
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let passed = match self.when(|c| c.next(&self, key, peer)).await {
            Next::Remembered(passed) => passed,
            Next::Throttled => return Verdict::Throttled,
            Next::Queued(ticket) => {
                self.when(|c| c.take_turn(&ticket)).await;
                // The turn goes with the work, so a client that hangs up does
                // not end it while bcrypt still runs for it.
                let turn = Turn { auth: self.clone(), key, ticket };
                web::block(move || turn.verify(&password, &hash, known)).await.unwrap_or(false)
            }
        };
        if passed {
            Verdict::Passed
        } else {
            Verdict::Invalid { user }
        }
    }

    /// Waits (without a thread) until `ready` gives a value under the lock.
    async fn when<R>(&self, mut ready: impl FnMut(&mut Checks) -> Option<R>) -> R {
        futures_util::future::poll_fn(|cx| {
            let mut checks = lock(&self.checks);
            match ready(&mut checks) {
                Some(r) => Poll::Ready(r),
                None => {
                    checks.wakers.push(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Changes the checks and wakes every request waiting on them.
    fn change(&self, f: impl FnOnce(&mut Checks)) {
        let wakers = {
            let mut checks = lock(&self.checks);
            f(&mut checks);
            std::mem::take(&mut checks.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl Checks {
    /// The verdict remembered, or a place in the queue; `None` while the
    /// same credentials are being checked for another request.
    fn next(&mut self, auth: &Arc<BasicAuth>, key: u128, peer: IpAddr) -> Option<Next> {
        if self.passed.contains(&key) || self.failed.contains(&key) {
            return Some(Next::Remembered(self.passed.contains(&key)));
        }
        if self.checking.contains(&key) {
            return None;
        }
        let queued = self.waiting.get(&peer).map_or(0, VecDeque::len);
        if self.waiting_total >= QUEUE || queued >= PER_ADDRESS {
            return Some(Next::Throttled);
        }
        let id = self.next_ticket;
        self.next_ticket += 1;
        if queued == 0 {
            self.turns.push_back(peer);
        }
        self.waiting.entry(peer).or_default().push_back(id);
        self.waiting_total += 1;
        self.checking.insert(key);
        Some(Next::Queued(Ticket { auth: auth.clone(), key, peer, id, taken: false }))
    }

    /// Starts the ticket's check if no check runs and it is next: the first
    /// of the address whose turn it is, which then goes to the back.
    fn take_turn(&mut self, ticket: &Ticket) -> Option<()> {
        let next = self.turns.front() == Some(&ticket.peer)
            && self.waiting.get(&ticket.peer).and_then(VecDeque::front) == Some(&ticket.id);
        if self.busy || !next {
            return None;
        }
        self.busy = true;
        self.leave(ticket.peer, ticket.id);
        Some(())
    }

    /// Takes a ticket out of the queue; its address goes to the back of
    /// the turns if it has more waiting.
    fn leave(&mut self, peer: IpAddr, id: u64) {
        let Some(queue) = self.waiting.get_mut(&peer) else { return };
        let Some(at) = queue.iter().position(|&t| t == id) else { return };
        queue.remove(at);
        self.waiting_total -= 1;
        let more = !queue.is_empty();
        if !more {
            self.waiting.remove(&peer);
        }
        if let Some(turn) = self.turns.iter().position(|&p| p == peer) {
            self.turns.remove(turn);
            if more {
                self.turns.push_back(peer);
            }
        }
    }

    fn remember(&mut self, key: u128, passed: bool) {
        let (cache, max) = if passed { (&mut self.passed, PASSED_CACHE) } else { (&mut self.failed, FAILED_CACHE) };
        if cache.len() >= max {
            cache.clear();
        }
        cache.insert(key);
    }
}

/// A check's place in the queue, given back if the request goes before its turn.
struct Ticket {
    auth: Arc<BasicAuth>,
    key: u128,
    peer: IpAddr,
    id: u64,
    /// Its turn came: [`Turn`] ends it.
    taken: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.taken {
            let (key, peer, id) = (self.key, self.peer, self.id);
            self.auth.change(|c| {
                c.leave(peer, id);
                c.checking.remove(&key);
            });
        }
    }
}

/// The running check; ends it (and wakes the waiting) when dropped, even if
/// bcrypt panicked or never ran.
struct Turn {
    auth: Arc<BasicAuth>,
    key: u128,
    ticket: Ticket,
}

impl Turn {
    /// Whether `password` matches `hash` and is a user's.
    fn verify(self, password: &str, hash: &str, known: bool) -> bool {
        let passed = bcrypt::verify(password, hash).unwrap_or(false) && known;
        lock(&self.auth.checks).remember(self.key, passed);
        passed
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.ticket.taken = true;
        let key = self.key;
        self.auth.change(|c| {
            c.busy = false;
            c.checking.remove(&key);
        });
    }
}

/// A keyed 128-bit hash: the caches hold no password, nor anything that
/// tells one without the process's random seed.
fn cache_key(user: &str, password: &str, hash: &str) -> u128 {
    static SEED: OnceLock<u64> = OnceLock::new();
    let mut h = xxhash_rust::xxh3::Xxh3::with_seed(*SEED.get_or_init(rand::random));
    for part in [user, password, hash] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.digest128()
}

fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(users: &[(&str, &str)]) -> Arc<BasicAuth> {
        let users = users.iter().map(|(u, p)| ((*u).to_owned(), bcrypt::hash(p, 4).unwrap())).collect();
        Arc::new(BasicAuth::new(users).unwrap())
    }

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn peer(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    #[test]
    fn basic_header_parsing() {
        let v = HeaderValue::from_static("Basic dXNlcjpwYTpzcw==");
        assert_eq!(parse_basic(&v), Some(("user".into(), "pa:ss".into())));
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer x")), None);
    }

    #[actix_web::test]
    async fn verdicts_and_what_is_remembered() {
        let a = auth(&[("prometheus", "pw"), ("other", "pw2")]);
        let check = |user, pw| {
            let (a, header) = (a.clone(), basic(user, pw));
            async move { a.check(None, Some(&header)).await }
        };
        assert_eq!(check("prometheus", "pw").await, Verdict::Passed);
        assert_eq!(check("prometheus", "pw").await, Verdict::Passed, "from the cache");
        assert_eq!(check("prometheus", "pw2").await, Verdict::Invalid { user: "prometheus".into() });
        assert_eq!(check("nobody", "pw").await, Verdict::Invalid { user: "nobody".into() });
        assert_eq!(a.clone().check(None, None).await, Verdict::Missing);
        let c = lock(&a.checks);
        assert_eq!((c.passed.len(), c.failed.len()), (1, 2));
        assert!(c.checking.is_empty() && c.waiting.is_empty() && c.turns.is_empty() && !c.busy, "all given back");
        let wrong = cache_key("prometheus", "pw2", &a.users["prometheus"]);
        assert!(c.failed.contains(&wrong) && !c.passed.contains(&wrong));
    }

    #[actix_web::test]
    async fn the_same_wrong_password_at_once_costs_one_check() {
        let a = auth(&[("u", "p")]);
        let header = basic("u", "guess");
        let checks = (0..16).map(|i| a.clone().check(Some(peer(i % 4)), Some(&header)));
        let verdicts = futures_util::future::join_all(checks).await;
        assert!(verdicts.iter().all(|v| *v == Verdict::Invalid { user: "u".into() }), "{verdicts:?}");
        let c = lock(&a.checks);
        assert_eq!(c.next_ticket, 1, "one check for all 16");
    }

    #[test]
    fn turns_go_round_the_addresses_and_queues_are_bounded() {
        let a = auth(&[("u", "p")]);
        let mut c = Checks::default();
        let mut key = 0;
        let mut queue = |c: &mut Checks, p: IpAddr| {
            key += 1;
            match c.next(&a, key, p) {
                Some(Next::Queued(t)) => Some(t),
                Some(Next::Throttled) => None,
                _ => unreachable!(),
            }
        };
        // A flooding address fills its share, no more.
        let mut flood: Vec<Ticket> = (0..PER_ADDRESS + 2).map_while(|_| queue(&mut c, peer(1))).collect();
        assert_eq!(flood.len(), PER_ADDRESS, "one address waits {PER_ADDRESS} at most");
        let mine = queue(&mut c, peer(2)).expect("another address still gets in");
        // The flood's first check runs, then the other address's turn comes.
        assert!(c.take_turn(&mine).is_none(), "not its turn yet");
        assert!(c.take_turn(&flood.remove(0)).is_some());
        c.busy = false;
        assert!(c.take_turn(&flood[0]).is_none(), "the flood's next waits for the other address");
        assert!(c.take_turn(&mine).is_some());
        // In all, the queue is bounded too.
        let mut c = Checks::default();
        let many: Vec<Ticket> = (0..=255).map_while(|n| queue(&mut c, peer(n))).collect();
        assert_eq!(many.len(), QUEUE);
    }

    #[actix_web::test]
    async fn a_request_gone_before_its_turn_gives_its_place_back() {
        let a = auth(&[("u", "p")]);
        let ticket = match lock(&a.checks).next(&a, 1, peer(1)) {
            Some(Next::Queued(t)) => t,
            _ => unreachable!(),
        };
        assert_eq!(lock(&a.checks).waiting_total, 1);
        drop(ticket);
        let c = lock(&a.checks);
        assert!(c.waiting.is_empty() && c.turns.is_empty() && c.checking.is_empty());
        assert_eq!(c.waiting_total, 0);
    }

    #[test]
    fn the_cache_key_covers_user_password_and_hash() {
        let k = cache_key("u", "p", "h");
        assert_eq!(k, cache_key("u", "p", "h"));
        for other in [cache_key("u", "p", "h2"), cache_key("u", "p2", "h"), cache_key("up", "", "h")] {
            assert_ne!(k, other);
        }
    }
}
