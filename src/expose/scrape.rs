//! Scrapes of `/metrics` (and reads of the status page), coalesced. A
//! scrape that arrives while a page is being rendered waits for the next
//! render and shares it, and its gzip copy: at most one render runs at a
//! time, so a storm of scrapes costs one or two pages of memory, not one per
//! scraper. The latest page is kept until the next render starts, which lets
//! it go before rendering anew. What a page holds is up to its kind:
//! [`Text`] for `/metrics`.
//!
//! Pages are held by the scrapes sending them; a scraper that does not read
//! holds its page until the write deadline cuts it. At most [`MAX_PAGES`]
//! pages exist at once: past that, a scrape is served the latest page
//! (however old) instead of a new render, so slow scrapers cannot multiply
//! the memory a page takes.
//!
//! A page that took long to make ([`SLOW_RENDER`] or more, rendering and
//! compressing) is also served to scrapes arriving within twice that time
//! after it was rendered, so back-to-back scrapes spend at most a third of
//! a CPU making pages and leave the rest to ingest; such a page is at most
//! three times its making old.
use super::families as f;
use super::{Collector, Encoder, Value};
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Pages this slow to make or slower are reusable for twice as long: only
/// large pages (some 25 000 streams and up), so a small exporter, and a test
/// that posts and then scrapes, always sees what it was just sent.
pub const SLOW_RENDER: Duration = Duration::from_millis(50);

/// Most pages in memory at once, counting the one being rendered: one held
/// by slow scrapers and a fresh one.
pub const MAX_PAGES: u64 = 2;

/// What the pages of one exporter share: how many exist, and how many
/// scrapes were cut for not reading theirs in time.
#[derive(Default)]
struct Held {
    pages: AtomicU64,
    write_timeouts: AtomicU64,
}

/// One page in [`Held::pages`], from before its render until it is freed
/// (even if rendering panics).
struct Counted(Arc<Held>);

impl Counted {
    fn new(held: &Arc<Held>) -> Self {
        held.pages.fetch_add(1, Ordering::Relaxed);
        Self(held.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.pages.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One rendered page: its content `C`, and what coalescing needs to know.
pub struct Page<C> {
    counted: Counted,
    /// Which render made it, counting from 1.
    render: u64,
    /// When the render finished.
    done: Instant,
    /// Nanoseconds spent rendering and (once done) compressing it.
    cost: AtomicU64,
    content: C,
}

impl<C> Page<C> {
    /// A page slow to make, younger than twice its making at `now`.
    fn fresh(&self, now: Instant) -> bool {
        let cost = Duration::from_nanos(self.cost.load(Ordering::Relaxed));
        cost >= SLOW_RENDER && now.saturating_duration_since(self.done) < 2 * cost
    }

    /// Counts a scrape of this page cut off for not reading it in time.
    pub fn write_timed_out(&self) {
        self.counted.0.write_timeouts.fetch_add(1, Ordering::Relaxed);
    }
}

impl<C> Deref for Page<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.content
    }
}

/// The `/metrics` page, plain and (made on first demand) gzipped.
pub struct Text {
    plain: Bytes,
    gzip: OnceLock<Bytes>,
}

impl From<String> for Text {
    fn from(plain: String) -> Self {
        Self { plain: Bytes::from(plain), gzip: OnceLock::new() }
    }
}

impl Page<Text> {
    pub fn plain(&self) -> Bytes {
        self.plain.clone()
    }

    /// The page gzipped at the fastest level (a tenth of the size for a
    /// fifth of the render time); compressed once, however many ask, on the
    /// render thread.
    pub fn gzip(&self) -> Bytes {
        self.content
            .gzip
            .get_or_init(|| {
                let start = Instant::now();
                let plain = self.plain.clone();
                let gzip = super::render_thread::run(move || gzip(&plain));
                self.cost.fetch_add(nanos(start.elapsed()), Ordering::Relaxed);
                gzip
            })
            .clone()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `plain` gzipped at the fastest level.
pub fn gzip(plain: &[u8]) -> Bytes {
    let mut enc = GzEncoder::new(Vec::with_capacity(plain.len() / 8), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(plain);
    Bytes::from(enc.finish().unwrap_or_default())
}

pub struct Scrapes<C> {
    /// The latest page; locked during a render.
    latest: Mutex<Option<Arc<Page<C>>>>,
    /// Renders started.
    renders: AtomicU64,
    served: AtomicU64,
    held: Arc<Held>,
}

impl<C> Default for Scrapes<C> {
    fn default() -> Self {
        Self { latest: Mutex::new(None), renders: AtomicU64::new(0), served: AtomicU64::new(0), held: Arc::default() }
    }
}

impl<C> Scrapes<C> {
    /// A page rendered after this call began: the one being rendered by
    /// another scrape if it started after, else a new one from `render`;
    /// the latest page instead if [`MAX_PAGES`] would be exceeded.
    pub fn page(&self, render: impl FnOnce() -> C) -> Arc<Page<C>> {
        self.page_timed(&Instant::now, render)
    }

    /// [`Self::page`] with the time from `now`, which tests make up.
    fn page_timed(&self, now: &dyn Fn() -> Instant, render: impl FnOnce() -> C) -> Arc<Page<C>> {
        self.served.fetch_add(1, Ordering::Relaxed);
        let arrived = self.renders.load(Ordering::Acquire);
        let mut latest = crate::sync::lock(&self.latest);
        if let Some(page) = latest.as_ref().filter(|p| p.render > arrived || p.fresh(now())) {
            return page.clone();
        }
        if let Some(page) = latest.as_ref() {
            // Letting go of the latest frees it only if no scrape is sending it.
            let freed = u64::from(Arc::strong_count(page) == 1);
            if self.held.pages.load(Ordering::Relaxed).saturating_sub(freed) >= MAX_PAGES {
                return page.clone();
            }
        }
        // Freed now (unless still being sent), not after the new one exists.
        *latest = None;
        let n = self.renders.fetch_add(1, Ordering::AcqRel) + 1;
        let counted = Counted::new(&self.held);
        let start = now();
        let content = render();
        let done = now();
        let cost = AtomicU64::new(nanos(done - start));
        let page = Arc::new(Page { counted, render: n, done, cost, content });
        *latest = Some(page.clone());
        page
    }
}

impl Collector for Scrapes<Text> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.single(&f::SCRAPES, Value::Int(self.served.load(Ordering::Relaxed)));
        enc.single(&f::SCRAPE_RENDERS, Value::Int(self.renders.load(Ordering::Relaxed)));
        enc.single(&f::SCRAPE_PAGES, Value::Int(self.held.pages.load(Ordering::Relaxed)));
        enc.single(&f::SCRAPE_WRITE_TIMEOUTS, Value::Int(self.held.write_timeouts.load(Ordering::Relaxed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::Read;

    #[test]
    fn concurrent_scrapes_share_renders_and_one_gzip_copy() {
        let scrapes = Scrapes::<Text>::default();
        let renders = AtomicU64::new(0);
        let pages: Vec<Arc<Page<Text>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    s.spawn(|| {
                        scrapes.page(|| {
                            renders.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            Text::from("metric 1\n".repeat(1000))
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let renders = renders.load(Ordering::SeqCst);
        assert!((1..=2).contains(&renders), "16 concurrent scrapes took {renders} renders");
        let first = pages[0].gzip();
        for p in &pages {
            if Arc::ptr_eq(p, &pages[0]) {
                assert_eq!(p.gzip().as_ptr(), first.as_ptr(), "one compressed copy");
            }
        }
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&first[..]).read_to_string(&mut plain).unwrap();
        assert_eq!(plain.as_bytes(), &pages[0].plain()[..]);
    }

    #[test]
    fn a_scrape_after_a_render_gets_a_new_page_and_the_old_one_is_let_go() {
        let scrapes = Scrapes::<Text>::default();
        let a = Arc::downgrade(&scrapes.page(|| Text::from("a\n".to_owned())));
        let b = scrapes.page(|| {
            assert!(a.upgrade().is_none(), "the previous page is freed before rendering anew");
            Text::from("b\n".to_owned())
        });
        assert_eq!(&b.plain()[..], b"b\n");
    }

    #[test]
    fn pages_held_by_slow_scrapers_are_not_multiplied() {
        let scrapes = Scrapes::<Text>::default();
        let pinned = scrapes.page(|| Text::from("1\n".to_owned()));
        let second = scrapes.page(|| Text::from("2\n".to_owned()));
        assert_eq!(&second.plain()[..], b"2\n", "one page held: another may be made");
        let again = scrapes.page(|| Text::from("3\n".to_owned()));
        assert!(Arc::ptr_eq(&again, &second), "two held: the latest is shared instead");
        assert_eq!(scrapes.held.pages.load(Ordering::Relaxed), MAX_PAGES);
        drop((pinned, second, again));
        assert_eq!(scrapes.held.pages.load(Ordering::Relaxed), 1, "only the latest is kept");
        assert_eq!(&scrapes.page(|| Text::from("4\n".to_owned())).plain()[..], b"4\n");
        assert_eq!(scrapes.held.pages.load(Ordering::Relaxed), 1, "the unsent latest made way");
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scrapes.page(|| panic!("render"))));
        assert!(failed.is_err());
        assert_eq!(scrapes.held.pages.load(Ordering::Relaxed), 0, "a failed render holds no place");
    }

    #[test]
    fn a_slow_render_serves_scrapes_for_twice_as_long() {
        // Made-up time: a render takes what it says, however loaded the host.
        let t0 = Instant::now();
        let clock = Cell::new(t0);
        let now = || clock.get();
        let render = |took: Duration, text: &str| {
            clock.set(clock.get() + took);
            Text::from(text.to_owned())
        };
        let scrapes = Scrapes::<Text>::default();
        // Done at t0 + 100 ms after 100 ms of work: reused until t0 + 300 ms.
        let slow = scrapes.page_timed(&now, || render(SLOW_RENDER * 2, "slow\n"));
        clock.set(t0 + SLOW_RENDER * 6 - Duration::from_millis(1));
        let again = scrapes.page_timed(&now, || render(Duration::ZERO, "new\n"));
        assert!(Arc::ptr_eq(&slow, &again), "within twice its render time, the page is reused");
        // Sent: the scrapes let go of it (held pages are bounded, see below).
        drop((slow, again));
        clock.set(t0 + SLOW_RENDER * 6);
        let fast = scrapes.page_timed(&now, || render(Duration::from_millis(1), "new\n"));
        assert_eq!(&fast.plain()[..], b"new\n");
        drop(fast);
        // A page quicker to make than SLOW_RENDER is made anew each time.
        let next = scrapes.page_timed(&now, || render(Duration::ZERO, "next\n"));
        assert_eq!(&next.plain()[..], b"next\n");
        assert_eq!(scrapes.renders.load(Ordering::Relaxed), 3);
    }
}
