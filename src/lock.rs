//! One way to take a lock. orderflow's locks guard counters, last-error notes, the log file
//! and the consumer's shared bookkeeping; a thread that panicked while holding one has
//! already ended its role's run with an error, and what it left behind is still values a
//! reader can use. So a poisoned lock is taken over rather than spreading the panic to every
//! other thread: a second panic in the poll loop or a delivery callback would skip the
//! final commit and the summary that say what happened.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking it over if a panicking thread poisoned it.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
