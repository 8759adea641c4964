//! Small helpers for tasks and locks.

use std::sync::{Mutex, MutexGuard};

use tokio::task::JoinHandle;

/// Locks `mutex`, even if a panic poisoned it: dawdle's locked state is
/// whole between statements, and losing it would be worse than using it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop<T>(pub(crate) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
