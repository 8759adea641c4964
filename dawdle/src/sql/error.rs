//! What can go wrong: a set of tables that would make wrong SQL, or a
//! database that refuses it.

use crate::database::DisplayPgError;

/// What is wrong with a set of tables, or with applying SQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// A schema, table or column name PostgreSQL cannot hold as given.
    #[error("invalid {what} name {name:?}: it {problem}")]
    InvalidIdentifier {
        /// `schema`, `table` or `column`.
        what: &'static str,
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Two `Watched` types name the same table.
    #[error("table {table} is watched by two types, {first} and {second}; keep one")]
    TableWatchedTwice {
        /// `schema.table`.
        table: String,
        /// One type.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// A type captures no column.
    #[error("{type_name} captures no column")]
    NoColumns {
        /// The type.
        type_name: &'static str,
    },
    /// A type captures none of insert, update and delete.
    #[error("{type_name} captures no event; enable at least one of insert, update, delete")]
    NoEvents {
        /// The type.
        type_name: &'static str,
    },
    /// A type has no primary key column.
    #[error("{type_name} has no primary key; mark its key fields with #[dawdle(primary_key)]")]
    NoPrimaryKey {
        /// The type.
        type_name: &'static str,
    },
    /// Two fields map to one column.
    #[error("{type_name} captures column {column:?} twice")]
    DuplicateColumn {
        /// The type.
        type_name: &'static str,
        /// The column.
        column: &'static str,
    },
    /// A column's `sql` override is not a single expression using `$1`.
    #[error("the sql override of {type_name}.{column}, {expr:?}, {problem}")]
    InvalidOverride {
        /// The type.
        type_name: &'static str,
        /// The column.
        column: &'static str,
        /// The override.
        expr: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A column with an `sql` override, captured from the WAL: the
    /// override is an SQL expression, which the WAL reader cannot run.
    #[error(
        "{type_name}.{column} has an sql override, which capture from the WAL cannot apply; \
             capture the column as it is (and convert it in the handler), or capture with triggers"
    )]
    OverrideInWal {
        /// The type.
        type_name: &'static str,
        /// The column.
        column: &'static str,
    },
    /// The database refused the SQL, or could not be reached. The message
    /// is the server's, as [`DisplayPgError`] shows it (its detail, hint
    /// and context included), so the error is not also a
    /// [`source`](std::error::Error::source).
    #[error("applying dawdle's SQL failed: {}", DisplayPgError::new(.0))]
    Database(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for SqlError {
    fn from(error: tokio_postgres::Error) -> SqlError {
        SqlError::Database(error)
    }
}
