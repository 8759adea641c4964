// The function keeps its attributes, docs and visibility.
#![deny(missing_docs, dead_code)]
//! A crate with a public handler.

use dawdle::{Insert, Watched};

/// A user.
#[derive(Watched)]
#[dawdle(table = "users")]
pub struct User {
    /// The key.
    pub id: i64,
}

/// Greets a user.
#[dawdle::handler]
#[allow(clippy::unused_async)]
#[inline]
pub async fn welcome(_event: Insert<User>) {}

#[dawdle::handler]
#[cfg(any())]
async fn compiled_out(_event: Insert<User>) {}

fn main() {
    let names: Vec<&str> = dawdle::handler::handlers().iter().map(|h| h.name).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with("::welcome"));
}
