//! The rows of by-reference events, which wait in `dawdle.payloads` until
//! their message is handled (see [`wire`](crate::wire)).

use serde_json::Value;

use super::shared::Listener;
use crate::sql::catalog::listener;

/// Why a payload could not be read or removed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PayloadError {
    /// The runtime was built without a database.
    #[error("no database pool configured: give the runtime .database(..) or .pool(..)")]
    NoPool,
    /// No connection from the pool.
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The query failed.
    #[error("{}", crate::database::DisplayPgError::new(.0))]
    Database(tokio_postgres::Error),
    /// A stored row is not JSON.
    #[error("a stored row is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<tokio_postgres::Error> for PayloadError {
    fn from(error: tokio_postgres::Error) -> PayloadError {
        PayloadError::Database(error)
    }
}

/// A by-reference event's rows: `old` and `new`.
pub(crate) type Rows = (Option<Value>, Option<Value>);

/// A by-reference event's claim on its rows.
#[derive(Debug)]
pub(crate) struct Claim {
    /// The route its copy went to, when the watcher sent it to several:
    /// the rows are deleted once each route's listener removed its claim.
    pub route: Option<String>,
}

impl Listener {
    fn pool(&self) -> Result<&deadpool_postgres::Pool, PayloadError> {
        self.pool.as_ref().ok_or(PayloadError::NoPool)
    }

    /// The rows of by-reference event `id`, or `None` when they are gone
    /// (handled already, or expired).
    pub(crate) async fn fetch_payload(&self, id: i64) -> Result<Option<Rows>, PayloadError> {
        let client = self.pool()?.get().await?;
        let row = client.query_opt(listener::PAYLOAD, &[&id]).await?;
        let parse = |text: Option<String>| -> Result<Option<Value>, PayloadError> {
            Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
        };
        match row {
            Some(row) => Ok(Some((parse(row.get(0))?, parse(row.get(1))?))),
            None => Ok(None),
        }
    }

    /// Removes the claims of handled by-reference events (ids and their
    /// routes) on their rows, and the rows no route needs any more.
    pub(crate) async fn forget_payloads(
        &self,
        claims: &[(i64, Option<&str>)],
    ) -> Result<(), PayloadError> {
        let client = self.pool()?.get().await?;
        forget_payloads(&**client, claims).await?;
        Ok(())
    }
}

/// Removes the claims (event ids and their routes) of handled or discarded
/// by-reference events on their rows in `dawdle.payloads`, and the rows no
/// route needs any more: two statements, each committing on its own unless
/// `client` is in a transaction.
pub(crate) async fn forget_payloads(
    client: &impl tokio_postgres::GenericClient,
    claims: &[(i64, Option<&str>)],
) -> Result<(), tokio_postgres::Error> {
    let ids: Vec<i64> = claims.iter().map(|(id, _)| *id).collect();
    if claims.iter().any(|(_, route)| route.is_some()) {
        let routes: Vec<Option<&str>> = claims.iter().map(|(_, route)| *route).collect();
        client
            .execute(listener::FORGET_CLAIMS, &[&ids, &routes])
            .await?;
    }
    client.execute(listener::FORGET_PAYLOADS, &[&ids]).await?;
    Ok(())
}
