//! The generated code is clean under strict lints (thiserror's
//! `tests/test_lints.rs`).
#![deny(
    warnings,
    missing_docs,
    missing_debug_implementations,
    unused_qualifications,
    unreachable_pub,
    single_use_lifetimes,
    trivial_casts,
    unused_results,
    clippy::all,
    clippy::pedantic,
    clippy::nursery
)]

use dawdle::Watched;

/// A watched type under every lint.
#[derive(Debug, Watched)]
#[dawdle(table = "users", schema = "app", events(insert, update))]
pub struct User {
    /// The key.
    #[dawdle(primary_key)]
    pub id: uuid::Uuid,
    /// A renamed column.
    #[dawdle(rename = "display_name")]
    pub name: String,
    /// A column with an override.
    #[dawdle(sql = "lower($1)")]
    pub email: Option<String>,
    /// A column read through serde.
    #[dawdle(serde)]
    pub settings: std::collections::BTreeMap<String, i32>,
}

/// A handler under every lint.
///
/// # Errors
///
/// When the user has no name.
#[dawdle::handler]
pub async fn welcome(event: dawdle::Insert<User>) -> Result<(), String> {
    std::future::ready(()).await;
    if event.new.name.is_empty() {
        return Err(format!("user {} has no name", event.new.id));
    }
    Ok(())
}

/// A handler returning `()`, with a name of its own.
#[dawdle::handler(name = "lints.farewell")]
pub async fn farewell(_: dawdle::Delete<User>) {
    std::future::ready(()).await;
}

#[test]
fn derives() {
    assert_eq!(User::TABLE.columns.len(), 4);
}

#[test]
fn registers() {
    assert_eq!(dawdle::handler::handlers().len(), 2);
}
