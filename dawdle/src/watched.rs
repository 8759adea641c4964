use crate::decode::{DecodeError, Row};
use crate::table::Table;

/// A Rust type whose table dawdle captures: the capture description and the
/// decoder from a captured row.
///
/// Derive it with [`#[derive(Watched)]`](derive@crate::Watched) rather than by
/// hand; the derive also registers the type so that [`crate::sql`] finds it.
pub trait Watched: Sized + Send + Sync + 'static {
    /// What is captured: schema, table, columns, primary key, events.
    const TABLE: &'static Table;

    /// Builds a value from one captured row (`old` or `new` of an event).
    fn decode(row: Row<'_>) -> Result<Self, DecodeError>;

    /// Builds a value from the JSON object of a captured row.
    fn from_json(value: &serde_json::Value) -> Result<Self, DecodeError> {
        Self::decode(Row::new(Self::TABLE, value)?)
    }
}
