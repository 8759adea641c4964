//! Small helpers for tasks and locks.

use std::any::Any;
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

/// The message of a panic, from a task's `JoinError::into_panic`.
pub(crate) fn panic_message(panic: Box<dyn Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(panic) => panic
            .downcast_ref::<&str>()
            .map_or_else(|| "(no message)".to_owned(), |s| (*s).to_owned()),
    }
}
