//! A tokio-postgres error as the server wrote it.

use std::fmt;

use tokio_postgres::error::ErrorPosition;

/// Displays a [`tokio_postgres::Error`] as PostgreSQL reported it, where
/// the error's own `Display` says only `db error`:
///
/// ```text
/// ERROR: column "nmae" does not exist (SQLSTATE 42703)
/// LINE 2: SELECT nmae FROM users;
///                ^
/// HINT: Perhaps you meant to reference the column "users.name".
/// ```
///
/// ```text
/// ERROR: column "nmae" does not exist (SQLSTATE 42703)
/// HINT: Perhaps you meant to reference the column "users.name".
/// QUERY LINE 1: SELECT nmae FROM users
///                      ^
/// CONTEXT: PL/pgSQL function report() line 3 at PERFORM
/// ```
///
/// The severity, the message and the SQLSTATE code, then where in the
/// statement the server points (the line, as `psql` shows it, when the
/// statement is given with [`in_statement`](Self::in_statement); else
/// ` at character N` after the message, as the server's log has it), the
/// detail, the hint, the line of the query that a function ran where the
/// error arose in one, and the context (what `psql` and the server's log
/// call `CONTEXT`: the function or statement the error arose in), each
/// when the server sent it. An error that is not the
/// server's (a refused connection, a closed one) is its message and its
/// sources, `: `-separated: `error connecting to server: Connection
/// refused (os error 111)`.
///
/// Every dawdle error that holds a `tokio_postgres::Error` shows it this
/// way in its own message, and so does not also return it from
/// [`source`](std::error::Error::source): match the variant to reach it.
///
/// ```no_run
/// # async fn demo(client: &tokio_postgres::Client) {
/// let sql = "SELECT * FROM missing";
/// if let Err(error) = client.batch_execute(sql).await {
///     eprintln!("{}", dawdle::database::DisplayPgError::new(&error).in_statement(sql));
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DisplayPgError<'a> {
    error: &'a tokio_postgres::Error,
    statement: Option<&'a str>,
}

impl<'a> DisplayPgError<'a> {
    /// Displays `error`.
    pub fn new(error: &'a tokio_postgres::Error) -> DisplayPgError<'a> {
        DisplayPgError {
            error,
            statement: None,
        }
    }

    /// Shows the line of `statement` (the text sent, in which the error
    /// arose) that the server points at, with a caret under the spot.
    pub fn in_statement(self, statement: &'a str) -> DisplayPgError<'a> {
        DisplayPgError {
            statement: Some(statement),
            ..self
        }
    }
}

impl fmt::Display for DisplayPgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(db) = self.error.as_db_error() else {
            // tokio-postgres's errors name only their kind ("error
            // performing TLS handshake"); their sources say why.
            write!(f, "{}", self.error)?;
            let mut source = std::error::Error::source(self.error);
            while let Some(error) = source {
                write!(f, ": {error}")?;
                source = error.source();
            }
            return Ok(());
        };
        write!(f, "{}: {}", db.severity(), db.message())?;
        let line = match db.position() {
            Some(&ErrorPosition::Original(position)) => {
                let line = self
                    .statement
                    .and_then(|statement| Line::at(statement, position));
                if line.is_none() {
                    write!(f, " at character {position}")?;
                }
                line
            }
            _ => None,
        };
        write!(f, " (SQLSTATE {})", db.code().code())?;
        if let Some(line) = line {
            line.write("LINE", f)?;
        }
        if let Some(detail) = db.detail() {
            write!(f, "\nDETAIL: {detail}")?;
        }
        if let Some(hint) = db.hint() {
            write!(f, "\nHINT: {hint}")?;
        }
        if let Some(ErrorPosition::Internal { position, query }) = db.position() {
            // A query the server ran for a function can be long: the line
            // it points at says where.
            match Line::at(query, *position) {
                Some(line) => line.write("QUERY LINE", f)?,
                None => write!(f, "\nQUERY: {query}")?,
            }
        }
        if let Some(context) = db.where_() {
            write!(f, "\nCONTEXT: {context}")?;
        }
        Ok(())
    }
}

/// The line of a statement that a server's error position falls in.
#[derive(Debug, PartialEq)]
struct Line<'a> {
    /// From 1.
    number: usize,
    text: &'a str,
    /// Characters before the position, in the line.
    column: usize,
}

impl Line<'_> {
    /// `label n: the line`, and a caret under the position, each on a new
    /// line.
    fn write(&self, label: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = format!("{label} {}: ", self.number);
        write!(f, "\n{prefix}{}", self.text)?;
        write!(f, "\n{:width$}^", "", width = prefix.len() + self.column)
    }

    /// The line of character `position` (from 1, as the server counts),
    /// if `statement` has it.
    fn at(statement: &str, position: u32) -> Option<Line<'_>> {
        let index = usize::try_from(position).ok()?.checked_sub(1)?;
        let (offset, _) = statement.char_indices().nth(index)?;
        let start = statement[..offset]
            .rfind('\n')
            .map_or(0, |newline| newline + 1);
        let end = statement[offset..]
            .find('\n')
            .map_or(statement.len(), |newline| offset + newline);
        Some(Line {
            number: statement[..offset].matches('\n').count() + 1,
            text: statement[start..end].trim_end_matches('\r'),
            column: statement[start..offset].chars().count(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_of_the_client_shows_its_sources() {
        let error = "host=h port=x"
            .parse::<tokio_postgres::Config>()
            .unwrap_err();
        let text = DisplayPgError::new(&error).to_string();
        assert!(text.starts_with("invalid connection string: "), "{text}");
        assert!(text.len() > "invalid connection string: ".len(), "{text}");
    }

    #[test]
    fn a_position_is_a_line_and_a_column() {
        let sql = "SELECT 1;\nSELECT é, nmae FROM t;\n";
        assert_eq!(
            Line::at(sql, 21),
            Some(Line {
                number: 2,
                text: "SELECT é, nmae FROM t;",
                column: 10,
            })
        );
        assert_eq!(Line::at(sql, 1).unwrap().number, 1);
        assert_eq!(Line::at(sql, 0), None);
        assert_eq!(Line::at(sql, 400), None);
    }
}
