use std::path::PathBuf;

use aws_sdk_sqs::error::DisplayErrorContext;

/// Starting a server, creating a database or a queue failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating, connecting to or dropping a test database failed.
    #[error(transparent)]
    Database(#[from] dawdle::testing::TestingError),
    /// A query failed, as the server said it.
    #[error("PostgreSQL for tests: {}", dawdle::database::DisplayPgError::new(.0))]
    Postgres(tokio_postgres::Error),
    /// `DATABASE_URL` is unset and there is nothing to start a cluster from.
    #[error(
        "DATABASE_URL is unset and no PostgreSQL binaries (initdb) were found; \
         install PostgreSQL or set DATABASE_URL or DAWDLE_PG_BIN"
    )]
    NoPostgres,
    /// `DAWDLE_PG_BIN` names a directory without `initdb`.
    #[error("DAWDLE_PG_BIN={} has no initdb", .0.display())]
    NoInitdb(PathBuf),
    /// A program could not be run, or a file not written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A program ran and failed, or a server did not start.
    #[error("{what}\n{output}")]
    Failed {
        /// What failed.
        what: String,
        /// Its log or error output, which tells why.
        output: String,
    },
    /// A request to the SQS server failed.
    #[error("SQS server: {}", DisplayErrorContext(.0.as_ref()))]
    Sqs(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<tokio_postgres::Error> for Error {
    fn from(error: tokio_postgres::Error) -> Error {
        Error::Postgres(error)
    }
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        |source| Error::Io { what, source }
    }

    pub(crate) fn failed(what: impl Into<String>, output: impl Into<String>) -> Error {
        Error::Failed {
            what: what.into(),
            output: output.into(),
        }
    }
}
