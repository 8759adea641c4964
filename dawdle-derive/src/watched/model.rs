//! What `check` hands to `expand`: the capture description with every
//! default resolved, known to be valid.

use syn::{Ident, Path, Type};

/// The table a struct captures.
pub(crate) struct Table<'a> {
    /// The struct.
    pub(crate) ident: &'a Ident,
    /// Path to the dawdle crate in generated code.
    pub(crate) krate: Path,
    pub(crate) schema: String,
    pub(crate) name: String,
    pub(crate) events: Events,
    pub(crate) capture_unchanged: bool,
    pub(crate) capture_replica: bool,
    /// In field order.
    pub(crate) columns: Vec<Column<'a>>,
}

pub(crate) struct Events {
    pub(crate) insert: bool,
    pub(crate) update: bool,
    pub(crate) delete: bool,
    pub(crate) truncate: bool,
}

/// One field and the column it captures.
pub(crate) struct Column<'a> {
    pub(crate) field: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) name: String,
    pub(crate) primary_key: bool,
    pub(crate) sql: Option<String>,
    pub(crate) decoder: Decoder,
}

/// How a field is read from the row's JSON.
pub(crate) enum Decoder {
    /// The type's `dawdle::Decode`.
    Decode,
    /// The type's `serde::Deserialize` (`#[dawdle(serde)]`).
    Serde,
}
