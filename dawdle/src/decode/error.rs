use std::borrow::Cow;
use std::fmt;

use crate::table::Table;

/// Why one value could not be decoded; [`DecodeError`] adds where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(
    // Boxed: keeps `Result<_, DecodeError>` small on the success path.
    Box<ValueErrorInner>,
);

#[derive(Debug, Clone, PartialEq, Eq)]
struct ValueErrorInner {
    reason: Cow<'static, str>,
    path: Vec<usize>,
}

impl ValueError {
    /// A value that is the right kind of JSON but not a valid value of the type.
    pub fn new(reason: impl fmt::Display) -> ValueError {
        ValueError(Box::new(ValueErrorInner {
            reason: reason.to_string().into(),
            path: Vec::new(),
        }))
    }

    /// A value of the wrong JSON kind: `expected` says what was wanted ("a string").
    pub fn expected(expected: &'static str) -> ValueError {
        ValueError(Box::new(ValueErrorInner {
            reason: Cow::Owned(format!("expected {expected}")),
            path: Vec::new(),
        }))
    }

    /// Marks the error as coming from element `index` of an array.
    pub fn at_index(mut self, index: usize) -> ValueError {
        self.0.path.push(index);
        self
    }

    /// The reason, without position.
    pub fn reason(&self) -> &str {
        &self.0.reason
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.path.is_empty() {
            f.write_str("at element ")?;
            // Indices were pushed innermost first.
            for index in self.0.path.iter().rev() {
                write!(f, "[{index}]")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.0.reason)
    }
}

impl std::error::Error for ValueError {}

/// A captured row could not be decoded into its `Watched` type.
///
/// The message names the table, the column, the types on both sides and the
/// offending value (shortened past 200 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The row is not a JSON object.
    #[error(
        "cannot decode a row of {table} into {rust_type}: expected a JSON object, found {found}"
    )]
    NotAnObject {
        /// `schema.table`.
        table: String,
        /// The Rust type.
        rust_type: &'static str,
        /// What was there instead, shortened.
        found: String,
    },
    /// The event lacks a row its action implies (`new` of an insert, ...).
    #[error("a {action} event of {table} has no `{which}` row")]
    MissingRow {
        /// `schema.table`.
        table: String,
        /// The event's action.
        action: crate::table::Action,
        /// `old` or `new`.
        which: &'static str,
    },
    /// A captured column is absent from the row.
    #[error("cannot decode a row of {table} into {rust_type}: column {column} is missing")]
    MissingColumn {
        /// `schema.table`.
        table: String,
        /// The Rust type.
        rust_type: &'static str,
        /// The column.
        column: &'static str,
    },
    /// A column's value does not decode into its field's type.
    #[error("cannot decode {table}.{column} (PostgreSQL {sql_type}) into {rust_type} from {value}: {reason}")]
    Value {
        /// `schema.table`.
        table: String,
        /// The column.
        column: &'static str,
        /// The PostgreSQL type the field's Rust type stands for.
        sql_type: String,
        /// The field's Rust type.
        rust_type: &'static str,
        /// The JSON value, shortened.
        value: String,
        /// Why it did not decode.
        reason: ValueError,
    },
    /// A signal's payload does not deserialize into its `Signal` type.
    #[error("cannot decode signal {name} into {rust_type} from {value}: {reason}")]
    Signal {
        /// The signal's wire name.
        name: String,
        /// The `Signal` type.
        rust_type: &'static str,
        /// The payload, shortened.
        value: String,
        /// serde's error.
        reason: String,
    },
}

impl DecodeError {
    pub(crate) fn not_an_object(table: &Table, found: &serde_json::Value) -> DecodeError {
        DecodeError::NotAnObject {
            table: table.qualified_name().to_string(),
            rust_type: table.type_name,
            found: shorten(found),
        }
    }
}

/// JSON text of `value`, cut to about 200 characters.
pub(crate) fn shorten(value: &serde_json::Value) -> String {
    const LIMIT: usize = 200;
    let mut text = value.to_string();
    if text.len() > LIMIT {
        let mut cut = LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let total = text.len();
        text.truncate(cut);
        text.push_str(&format!("... ({total} bytes)"));
    }
    text
}
