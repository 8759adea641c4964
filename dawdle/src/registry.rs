//! Every `Watched` type linked into the program, found through `inventory`.

use crate::table::Table;

/// Not public API: what `#[derive(Watched)]` submits.
#[doc(hidden)]
#[derive(Debug)]
pub struct WatchedType {
    pub table: &'static Table,
}

inventory::collect!(WatchedType);

/// The capture description of every `Watched` type linked into the program,
/// sorted by schema and table name.
pub fn tables() -> Vec<&'static Table> {
    let mut tables: Vec<_> = inventory::iter::<WatchedType>
        .into_iter()
        .map(|w| w.table)
        .collect();
    tables.sort_by(|a, b| (a.schema, a.name, a.type_name).cmp(&(b.schema, b.name, b.type_name)));
    tables
}
