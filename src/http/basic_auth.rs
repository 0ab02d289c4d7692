//! HTTP basic auth against bcrypt hashes, kept cheap under attack. bcrypt is
//! slow on purpose, so a flood of wrong passwords is a flood of CPU work:
//! checks run one at a time on a blocking thread, at most [`QUEUE`] wait
//! (one per peer), and past that a request is refused unchecked. A login
//! that passed is remembered, so a scraper pays bcrypt once. A user name
//! that does not exist is checked against a real hash all the same, so
//! timing does not tell which names do.
use crate::sync::lock;
use actix_web::http::header::HeaderValue;
use actix_web::web;
use base64::Engine;
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, OnceLock};

/// Highest bcrypt cost accepted at start: 12 takes about 0.25 s a check,
/// and every step up doubles it (exporter-toolkit's users use 10 to 12).
pub const MAX_COST: u32 = 12;
/// Checks in flight (running or waiting) at most; past it, refused unchecked.
pub const QUEUE: usize = 8;
/// Logins remembered (cleared when full).
const VERIFIED_CACHE: usize = 256;

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
    /// Not checked: this peer already has a check in flight, or [`QUEUE`] do.
    Throttled,
}

pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// The costliest user's hash, checked for names that are not users.
    decoy: String,
    /// Keyed hashes of (user, password, hash) that passed.
    verified: Mutex<HashSet<u128>>,
    /// Peers with a check in flight.
    in_flight: Mutex<HashSet<IpAddr>>,
    /// Held while bcrypt runs: one check at a time.
    running: Arc<Mutex<()>>,
}

impl BasicAuth {
    /// `users` maps names to bcrypt hashes, checked by the caller to parse;
    /// `None` if there are none.
    pub fn new(users: BTreeMap<String, String>) -> Option<Self> {
        let cost = |h: &String| h.parse::<bcrypt::HashParts>().map_or(0, |p| p.get_cost());
        let decoy = users.values().max_by_key(|h| cost(h))?.clone();
        Some(Self { users, decoy, verified: Mutex::default(), in_flight: Mutex::default(), running: Arc::default() })
    }

    pub async fn check(self: Arc<Self>, peer: Option<IpAddr>, authorization: Option<&HeaderValue>) -> Verdict {
        let Some((user, password)) = authorization.and_then(parse_basic) else { return Verdict::Missing };
        let (hash, known) = match self.users.get(&user) {
            Some(hash) => (hash.clone(), true),
            None => (self.decoy.clone(), false),
        };
        let key = cache_key(&user, &password, &hash);
        if known && lock(&self.verified).contains(&key) {
            return Verdict::Passed;
        }
        let Some(slot) = Slot::take(&self, peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))) else {
            return Verdict::Throttled;
        };
        let running = self.running.clone();
        // The slot goes with the work, so a client that hangs up does not
        // free it while bcrypt still runs for it.
        let checked = web::block(move || {
            let _slot = slot;
            let _one_at_a_time = lock(&running);
            bcrypt::verify(password, &hash).unwrap_or(false)
        });
        if !(checked.await.unwrap_or(false) && known) {
            return Verdict::Invalid { user };
        }
        let mut cache = lock(&self.verified);
        if cache.len() >= VERIFIED_CACHE {
            cache.clear();
        }
        cache.insert(key);
        Verdict::Passed
    }
}

/// A peer's place among the checks in flight, given back when dropped.
struct Slot {
    auth: Arc<BasicAuth>,
    peer: IpAddr,
}

impl Slot {
    fn take(auth: &Arc<BasicAuth>, peer: IpAddr) -> Option<Self> {
        let mut in_flight = lock(&auth.in_flight);
        (in_flight.len() < QUEUE && in_flight.insert(peer)).then(|| Self { auth: auth.clone(), peer })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.auth.in_flight).remove(&self.peer);
    }
}

/// A keyed 128-bit hash: the cache holds no password, nor anything that
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

    #[test]
    fn basic_header_parsing() {
        let v = HeaderValue::from_static("Basic dXNlcjpwYTpzcw==");
        assert_eq!(parse_basic(&v), Some(("user".into(), "pa:ss".into())));
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer x")), None);
    }

    #[actix_web::test]
    async fn verdicts() {
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
        assert!(lock(&a.in_flight).is_empty(), "every slot given back");
    }

    #[test]
    fn one_check_in_flight_per_peer_and_a_bounded_queue() {
        let a = auth(&[("u", "p")]);
        let peer = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
        let first = Slot::take(&a, peer(0)).unwrap();
        assert!(Slot::take(&a, peer(0)).is_none(), "a second check of the same peer waits for none");
        let others: Vec<Slot> = (1..).map(peer).map_while(|p| Slot::take(&a, p)).take(QUEUE).collect();
        assert_eq!(others.len(), QUEUE - 1, "the queue is bounded");
        drop(first);
        assert!(Slot::take(&a, peer(0)).is_some());
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
