//! Locks that go on after a panic elsewhere. Every structure behind these
//! locks is changed by single map or counter operations, so a lock
//! poisoned by a panicking holder still guards consistent data: the one
//! place that says so, instead of a copy at each call site.
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits on `c` until `wake` is false or `timeout` passed; the guard back.
pub fn wait_while<'a, T>(
    c: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
    wake: impl FnMut(&mut T) -> bool,
) -> MutexGuard<'a, T> {
    c.wait_timeout_while(guard, timeout, wake).unwrap_or_else(std::sync::PoisonError::into_inner).0
}
