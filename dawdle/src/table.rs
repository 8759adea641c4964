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
    /// Whether the triggers also fire in sessions with
    /// `session_replication_role = replica` (logical-replication
    /// subscribers, `pg_restore --disable-triggers`): `ENABLE ALWAYS`
    /// (`#[dawdle(capture_replica)]`). Off by default, as for any trigger.
    pub capture_replica: bool,
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
    /// How the value is rendered into JSON, chosen by the field's
    /// [`Decode`](crate::Decode) implementation.
    pub encoding: Encoding,
    /// The session settings the rendered value depends on: the field's
    /// [`Decode::SETTINGS`](crate::Decode::SETTINGS), or all of them for a
    /// column with an `sql` override. (The readers fix every setting.)
    pub settings: SessionSettings,
}

/// How a column's value is rendered into the event JSON (by the table's
/// reader, when the watcher reads the event).
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
    /// A `real` or `double precision` as a JSON string of its shortest exact
    /// text (`value::text`, with `extra_float_digits` fixed to 1).
    Float,
    /// A `timestamptz`: `to_json(value)`, ISO 8601 in UTC (`+00:00`). In
    /// the event's row key the value is a UTC timestamp without offset, so
    /// that a row's key (its FIFO group) is spelled as it always was.
    Instant,
}

impl Encoding {
    /// The encoding of an array whose elements use `self`.
    pub const fn array_of(self) -> Encoding {
        match self {
            Encoding::Json | Encoding::Instant => Encoding::Json,
            Encoding::Text | Encoding::TextArray | Encoding::Float => Encoding::TextArray,
        }
    }
}

/// Session settings that change how PostgreSQL writes a value, as a set.
///
/// A column names the settings its JSON depends on: dawdle's own
/// [`Decode`](crate::Decode) types need none, except `bytea`
/// ([`BYTEA_OUTPUT`](Self::BYTEA_OUTPUT)), `interval`
/// ([`INTERVAL_STYLE`](Self::INTERVAL_STYLE)) and arrays of floats
/// ([`EXTRA_FLOAT_DIGITS`](Self::EXTRA_FLOAT_DIGITS)). The readers that
/// build the event JSON fix all of them (once per read, not per row), so
/// that a value's JSON depends neither on the session that wrote it nor on
/// the one that reads it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SessionSettings(u8);

impl SessionSettings {
    /// No setting.
    pub const NONE: SessionSettings = SessionSettings(0);
    /// `TimeZone`, fixed to `UTC`.
    pub const TIME_ZONE: SessionSettings = SessionSettings(1);
    /// `DateStyle`, fixed to `ISO, MDY`.
    pub const DATE_STYLE: SessionSettings = SessionSettings(1 << 1);
    /// `IntervalStyle`, fixed to `iso_8601`.
    pub const INTERVAL_STYLE: SessionSettings = SessionSettings(1 << 2);
    /// `bytea_output`, fixed to `hex`.
    pub const BYTEA_OUTPUT: SessionSettings = SessionSettings(1 << 3);
    /// `extra_float_digits`, fixed to 1 (shortest exact output).
    pub const EXTRA_FLOAT_DIGITS: SessionSettings = SessionSettings(1 << 4);
    /// Every setting above: the safe choice for a type or expression whose
    /// output is not known.
    pub const ALL: SessionSettings = SessionSettings(0b1_1111);

    /// Each setting, with its name and the value a reader fixes it to, in
    /// the order the `SET` clauses are written.
    pub const EACH: [(SessionSettings, &'static str, &'static str); 5] = [
        (Self::TIME_ZONE, "TimeZone", "'UTC'"),
        (Self::DATE_STYLE, "DateStyle", "'ISO, MDY'"),
        (Self::INTERVAL_STYLE, "IntervalStyle", "'iso_8601'"),
        (Self::BYTEA_OUTPUT, "bytea_output", "'hex'"),
        (Self::EXTRA_FLOAT_DIGITS, "extra_float_digits", "1"),
    ];

    /// The settings in either set.
    pub const fn union(self, other: SessionSettings) -> SessionSettings {
        SessionSettings(self.0 | other.0)
    }

    /// Whether every setting of `other` is in `self`.
    pub const fn contains(self, other: SessionSettings) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for SessionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(
                Self::EACH
                    .iter()
                    .filter(|(s, ..)| self.contains(*s))
                    .map(|(_, name, _)| name),
            )
            .finish()
    }
}

/// Which events a table captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Events {
    /// Capture INSERTs.
    pub insert: bool,
    /// Capture UPDATEs.
    pub update: bool,
    /// Capture DELETEs.
    pub delete: bool,
    /// Capture TRUNCATEs, as one event for the table.
    pub truncate: bool,
}

impl Events {
    /// Every event, the default.
    pub const ALL: Events = Events {
        insert: true,
        update: true,
        delete: true,
        truncate: true,
    };

    /// The events of single rows: inserts, updates and deletes.
    pub const ROWS: Events = Events {
        truncate: false,
        ..Events::ALL
    };

    /// No event.
    pub const NONE: Events = Events {
        insert: false,
        update: false,
        delete: false,
        truncate: false,
    };

    /// Only `action`.
    pub const fn only(action: Action) -> Events {
        let none = Events::NONE;
        match action {
            Action::Insert => Events {
                insert: true,
                ..none
            },
            Action::Update => Events {
                update: true,
                ..none
            },
            Action::Delete => Events {
                delete: true,
                ..none
            },
            Action::Truncate => Events {
                truncate: true,
                ..none
            },
            // Not captured by triggers: written by a backfill or a signal.
            Action::Snapshot | Action::Signal => none,
        }
    }

    /// Whether `action` is captured.
    pub const fn contains(self, action: Action) -> bool {
        match action {
            Action::Insert => self.insert,
            Action::Update => self.update,
            Action::Delete => self.delete,
            Action::Truncate => self.truncate,
            Action::Snapshot | Action::Signal => false,
        }
    }
}

/// The kind of event: a change captured by the triggers, a row's snapshot
/// written by a [backfill](crate::backfill), or a [signal](mod@crate::signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Action {
    /// A row was inserted: the event has `new`.
    Insert,
    /// A row was updated: the event has `old` and `new`.
    Update,
    /// A row was deleted: the event has `old`.
    Delete,
    /// The table was truncated: one event for the table, with neither
    /// `old` nor `new`, and an empty key.
    Truncate,
    /// A row as it was when a [backfill](crate::backfill) read it: the
    /// event has `new`. Not an insert: an `Insert` handler never sees it.
    Snapshot,
    /// An application's own event, sent with [`signal`](crate::signal()):
    /// the event has a `signal` name and a `payload` instead of rows.
    Signal,
}

impl Action {
    /// All actions, in the order used everywhere.
    pub const ALL: [Action; 6] = [
        Action::Insert,
        Action::Update,
        Action::Delete,
        Action::Truncate,
        Action::Snapshot,
        Action::Signal,
    ];

    /// The actions that the capture triggers record, in the order of
    /// [`ALL`](Action::ALL).
    pub const CAPTURED: [Action; 4] = [
        Action::Insert,
        Action::Update,
        Action::Delete,
        Action::Truncate,
    ];

    /// The lowercase name used in SQL and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Insert => "insert",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Truncate => "truncate",
            Action::Snapshot => "snapshot",
            Action::Signal => "signal",
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
