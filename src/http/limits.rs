//! Limits that keep the listeners answering under hostile load: the
//! open-files limit raised as far as the system allows, and per-listener
//! connection caps that fit inside it, so connections held open on one
//! listener cannot take the descriptors the other needs to answer; at the
//! cap, connections close after their answer instead of idling.
use actix_web::dev::Extensions;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Descriptors kept for everything but client connections: the listeners,
/// each worker's event loop, logs, files.
const RESERVED_FDS: u64 = 64;

/// Raises the soft open-files limit to the hard one (as Go programs do) and
/// logs the limit in force; `None` if it cannot be read.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            log::info!("open-files limit: {limit}");
            Some(limit)
        }
        Err(e) => {
            log::warn!("cannot read or raise the open-files limit: {e}");
            None
        }
    }
}

/// The connections open on one listener, against its cap.
#[derive(Clone)]
pub struct OpenConnections {
    open: Arc<AtomicUsize>,
    cap: usize,
}

/// Held in a connection's data while it is open.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl OpenConnections {
    pub fn new(cap: usize) -> Self {
        Self { open: Arc::default(), cap }
    }

    /// For `HttpServer::on_connect`: counts the connection until it closes.
    pub fn opened(&self, data: &mut Extensions) {
        self.open.fetch_add(1, Ordering::Relaxed);
        data.insert(Open(self.open.clone()));
    }

    /// At the cap, answers close their connection ([`super::answers`]).
    pub(super) fn at_cap(&self) -> bool {
        self.open.load(Ordering::Relaxed) >= self.cap
    }
}

/// Sets TCP_USER_TIMEOUT on `listener` (its connections inherit it): a
/// connection whose peer has not taken sent data for `after` (it stopped
/// reading; its window stays shut) is closed by the kernel, and the answer
/// it held, a whole /metrics page perhaps, is let go.
pub fn cut_stalled_sends(listener: &std::net::TcpListener, after: std::time::Duration) {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    if let Err(e) = socket2::SockRef::from(listener).set_tcp_user_timeout(Some(after)) {
        log::warn!("cannot set a send deadline on {:?}: {e}", listener.local_addr());
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
    let _ = (listener, after);
}

/// Connections each of `listeners` may hold open: `wanted`, lowered so that
/// together they leave 64 of `open_files` free.
pub fn connections_per_listener(wanted: u32, open_files: Option<u64>, listeners: usize) -> usize {
    let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
    let Some(open_files) = open_files else { return wanted };
    let fit = open_files.saturating_sub(RESERVED_FDS) / (listeners.max(1) as u64);
    wanted.min(usize::try_from(fit).unwrap_or(usize::MAX)).max(1)
}

/// actix-web caps connections per worker thread, not per listener.
pub fn connections_per_worker(per_listener: usize, workers: usize) -> usize {
    (per_listener / workers.max(1)).max(1)
}

/// Worker threads per listener: `--workers`, else one per CPU (actix-web's own default).
pub fn workers(configured: Option<u16>) -> usize {
    configured.map_or_else(|| std::thread::available_parallelism().map_or(2, usize::from), usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fit_in_the_open_files_limit() {
        assert_eq!(connections_per_listener(4096, Some(256), 2), 96);
        assert_eq!(connections_per_listener(4096, Some(256), 1), 192);
        assert_eq!(connections_per_listener(50, Some(1 << 20), 2), 50);
        assert_eq!(connections_per_listener(4096, None, 2), 4096);
        assert_eq!(connections_per_listener(4096, Some(10), 2), 1, "never zero");
        assert_eq!(connections_per_worker(96, 2), 48);
        assert_eq!(connections_per_worker(1, 4), 1);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn accepted_connections_inherit_the_send_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        cut_stalled_sends(&listener, std::time::Duration::from_millis(1500));
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let deadline = socket2::SockRef::from(&accepted).tcp_user_timeout().unwrap();
        assert_eq!(deadline, Some(std::time::Duration::from_millis(1500)));
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        let limit = raise_open_files_limit().unwrap();
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(soft, limit);
        // Some systems cap the soft limit below an unlimited hard one (macOS).
        assert!(soft == hard || hard == rlimit::INFINITY, "soft {soft}, hard {hard}");
    }
}
