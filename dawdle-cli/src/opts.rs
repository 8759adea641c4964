//! Options every subcommand shares: the database, and how to reach SQS.

use std::collections::HashMap;

use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;
use clap::Args;

use crate::Failure;

/// The database.
#[derive(Debug, Args)]
pub struct Database {
    /// The database whose captured events to read, as a PostgreSQL URL
    /// (`postgres://user:password@host:5432/name`) or key=value string.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub url: String,
}

impl Database {
    /// The parsed connection settings, TLS included (libpq's `sslmode`
    /// and `sslrootcert`).
    pub fn config(&self) -> Result<dawdle::Database, Failure> {
        dawdle::Database::from_url(&self.url)
            .map_err(|e| Failure::Usage(format!("--database-url (DATABASE_URL): {e}")))
    }

    /// One connection, its driver running on a task of its own.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, Failure> {
        let (client, connection) = self
            .config()?
            .connect()
            .await
            .map_err(Failure::connect("the database"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "database connection closed");
            }
        });
        Ok(client)
    }
}

/// The PgQueue a subcommand works on when no `--queue-url` is given.
#[derive(Debug, Args)]
pub struct PgQueueName {
    /// The PgQueue in the database, used without `--queue-url` (its
    /// watchers and listeners use the same name).
    #[arg(
        long = "queue",
        env = "DAWDLE_QUEUE",
        value_name = "NAME",
        default_value = "default",
        conflicts_with = "queue_url"
    )]
    pub name: String,
}

/// The SQS queues a subcommand reads: the queue the watchers send to, and
/// its dead-letter queue.
#[derive(Debug, Args)]
pub struct Queues {
    #[command(flatten)]
    pub sqs: Sqs,

    /// The queue the watchers send to: `status` shows its counts, `dlq`
    /// works on its dead-letter queue and `dlq redrive` sends back to it.
    #[arg(long, env = "DAWDLE_SQS_QUEUE_URL", value_name = "URL")]
    pub queue_url: Option<String>,

    /// The dead-letter queue; by default the one the redrive policy of
    /// `--queue-url` names.
    #[arg(long, env = "DAWDLE_SQS_DEAD_LETTER_QUEUE", value_name = "URL")]
    pub dead_letter_queue: Option<String>,
}

impl Queues {
    /// The dead-letter queue: the one given, else the one the queue's
    /// redrive policy names, if any.
    pub async fn dead_letter_queue(&self, client: &Client) -> Result<Option<String>, Failure> {
        match (&self.dead_letter_queue, &self.queue_url) {
            (Some(dlq), _) => Ok(Some(dlq.clone())),
            (None, Some(url)) => dead_letter_queue_of(client, url).await,
            (None, None) => Ok(None),
        }
    }
}

/// How to reach SQS. Credentials come from the standard AWS chain
/// (environment, profile, instance role).
#[derive(Debug, Args)]
pub struct Sqs {
    /// An endpoint other than AWS's, for emulators (moto, LocalStack);
    /// `AWS_ENDPOINT_URL` works too.
    #[arg(long, env = "DAWDLE_SQS_ENDPOINT", value_name = "URL")]
    pub sqs_endpoint: Option<String>,

    /// The AWS region; by default the standard chain's (`AWS_REGION`, the
    /// profile).
    #[arg(long, env = "DAWDLE_AWS_REGION", value_name = "REGION")]
    pub region: Option<String>,
}

impl Sqs {
    /// A client from the standard chain, with the endpoint and region given.
    pub async fn client(&self) -> Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = &self.sqs_endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        Client::new(&loader.load().await)
    }
}

/// An SQS call that failed: a connection failure when SQS was not reached.
pub fn sqs_failure<E, R>(call: &str) -> impl FnOnce(SdkError<E, R>) -> Failure + '_
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    move |error| match error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            Failure::connect(format!("SQS ({call})"))(error)
        }
        error => Failure::runtime(call)(error),
    }
}

/// The queue attributes `names` of `url`.
pub async fn attributes(
    client: &Client,
    url: &str,
    names: &[QueueAttributeName],
) -> Result<HashMap<QueueAttributeName, String>, Failure> {
    let output = client
        .get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(sqs_failure("GetQueueAttributes"))?;
    Ok(output.attributes.unwrap_or_default())
}

/// The URL of the dead-letter queue that `url`'s redrive policy names, if
/// it has one.
pub async fn dead_letter_queue_of(client: &Client, url: &str) -> Result<Option<String>, Failure> {
    let attributes = attributes(client, url, &[QueueAttributeName::RedrivePolicy]).await?;
    let Some(policy) = attributes.get(&QueueAttributeName::RedrivePolicy) else {
        return Ok(None);
    };
    let policy: serde_json::Value = serde_json::from_str(policy)
        .map_err(Failure::runtime(format!("the redrive policy of {url}")))?;
    let Some(arn) = policy["deadLetterTargetArn"].as_str() else {
        return Ok(None);
    };
    // arn:aws:sqs:region:account:name
    let mut parts = arn.rsplitn(3, ':');
    let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
        return Err(Failure::Message(format!(
            "the redrive policy of {url} names {arn:?}, which is not an SQS queue ARN"
        )));
    };
    let output = client
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(sqs_failure("GetQueueUrl"))?;
    Ok(output.queue_url)
}
