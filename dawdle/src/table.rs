//! The capture description of a watched table: plain data, emitted by
//! `#[derive(Watched)]` and turned into SQL by [`crate::sql`].

use std::fmt;

/// What dawdle captures from one table.
///
/// `#[derive(Watched)]` emits one of these as [`Watched::TABLE`](crate::Watched::TABLE);
/// it can also be written by hand, which is how [`crate::sql`] is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// The Rust type the rows decode into, as written (for messages only).
    pub type_name: &'static str,
    /// PostgreSQL schema of the table (`public` unless `#[dawdle(schema = "...")]`).
    pub schema: &'static str,
    /// Name of the table, unquoted and case-sensitive.
    pub name: &'static str,
    /// The captured columns, in struct field order. No other column leaves the database.
    pub columns: &'static [Column],
    /// Which row events are captured.
    pub events: Events,
    /// Whether an UPDATE that changes none of the captured columns still
    /// produces an event (`#[dawdle(capture_unchanged)]`). Off by default.
    pub capture_unchanged: bool,
}

impl Table {
    /// The columns that form the primary key, in field order.
    pub fn primary_key(&self) -> impl Iterator<Item = &'static Column> {
        self.columns.iter().filter(|c| c.primary_key)
    }

    /// The column named `name`, if it is captured.
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// `schema.table`, quoted where PostgreSQL would need it; for messages.
    pub fn qualified_name(&self) -> QualifiedName<'_> {
        QualifiedName(self.schema, self.name)
    }
}

/// Displays `schema.table` with each part quoted only where needed.
#[derive(Debug, Clone, Copy)]
pub struct QualifiedName<'a>(&'a str, &'a str);

impl fmt::Display for QualifiedName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ident_for_humans(f, self.0)?;
        f.write_str(".")?;
        write_ident_for_humans(f, self.1)
    }
}

fn write_ident_for_humans(f: &mut fmt::Formatter<'_>, ident: &str) -> fmt::Result {
    let plain = !ident.is_empty()
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !ident.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        f.write_str(ident)
    } else {
        write!(f, "\"{}\"", ident.replace('"', "\"\""))
    }
}

/// One captured column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column's name in PostgreSQL (the field name unless renamed).
    pub name: &'static str,
    /// The Rust field it decodes into.
    pub field: &'static str,
    /// Part of the primary key (`#[dawdle(primary_key)]`).
    pub primary_key: bool,
    /// An SQL expression replacing the column's value in events, with `$1`
    /// standing for the column (`#[dawdle(sql = "ST_AsGeoJSON($1)")]`).
    pub sql: Option<&'static str>,
    /// How the trigger renders the value into JSON, chosen by the field's
    /// [`Decode`](crate::Decode) implementation.
    pub encoding: Encoding,
}

/// How a trigger renders a column value into the event JSON.
///
/// The default, [`Encoding::Json`], is PostgreSQL's own `to_json`. Types whose
/// JSON form loses information (the sign of `-0.0` in a float, digits of a
/// `numeric` in a JSON number parser) are sent as their text form instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `to_json(value)`.
    Json,
    /// `to_json(value::text)`: a JSON string holding PostgreSQL's text output.
    Text,
    /// `to_json(value::text[])`: an array (of any depth) of such strings, NULLs kept.
    TextArray,
}

impl Encoding {
    /// The encoding of an array whose elements use `self`.
    pub const fn array_of(self) -> Encoding {
        match self {
            Encoding::Json => Encoding::Json,
            Encoding::Text | Encoding::TextArray => Encoding::TextArray,
        }
    }
}

/// Which row events a table captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Events {
    /// Capture INSERTs.
    pub insert: bool,
    /// Capture UPDATEs.
    pub update: bool,
    /// Capture DELETEs.
    pub delete: bool,
}

impl Events {
    /// All three events, the default.
    pub const ALL: Events = Events {
        insert: true,
        update: true,
        delete: true,
    };

    /// Whether `action` is captured.
    pub const fn contains(self, action: Action) -> bool {
        match action {
            Action::Insert => self.insert,
            Action::Update => self.update,
            Action::Delete => self.delete,
        }
    }
}

/// The kind of change an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// A row was inserted: the event has `new`.
    Insert,
    /// A row was updated: the event has `old` and `new`.
    Update,
    /// A row was deleted: the event has `old`.
    Delete,
}

impl Action {
    /// All actions, in the order used everywhere.
    pub const ALL: [Action; 3] = [Action::Insert, Action::Update, Action::Delete];

    /// The lowercase name used in SQL and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Insert => "insert",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
