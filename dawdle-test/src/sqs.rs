//! moto's SQS server on loopback.

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use tokio::sync::OnceCell;

use crate::process::{free_port, quote, shell};
use crate::Error;

/// An SQS-compatible server for tests: moto's `moto_server`, started once
/// per process on a free loopback port and stopped when the process exits.
///
/// `moto_server` is looked up in `DAWDLE_MOTO_SERVER`, then in
/// `target/moto-venv` (where `scripts/test` installs it from PyPI), then `PATH`.
#[derive(Debug)]
pub struct SqsServer {
    endpoint: String,
    /// moto's own process, for [`SqsServer::pause`].
    pid: u32,
    _server: Child,
}

static SQS_SERVER: OnceCell<SqsServer> = OnceCell::const_new();

/// `DAWDLE_MOTO_SERVER`, else the venv `scripts/test` makes, else `PATH`.
fn moto_server() -> String {
    if let Ok(path) = std::env::var("DAWDLE_MOTO_SERVER") {
        return path;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/moto-venv/bin/moto_server");
    if venv.is_file() {
        return venv.display().to_string();
    }
    "moto_server".to_owned()
}

fn sqs_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Sqs(Box::new(e))
}

impl SqsServer {
    /// The shared server, started on first use.
    pub async fn get() -> Result<&'static SqsServer, Error> {
        SQS_SERVER.get_or_try_init(|| Self::start_on(0)).await
    }

    /// Starts a server of its own on `port` (0: a free one), for tests that
    /// stop and restart it; it stops when dropped.
    pub async fn start_on(port: u16) -> Result<SqsServer, Error> {
        let port = if port == 0 { free_port()? } else { port };
        let binary = moto_server();
        // As with the cluster: the server goes when our stdin pipe closes
        // (resumed first, should it be paused).
        let script = format!(
            "{} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; echo $pid; read _ignored; \
             kill -CONT $pid; kill $pid",
            quote(&binary)
        );
        let mut child = shell(&script, false)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(Error::io(format!("cannot start {binary}")))?;
        let mut pid = String::new();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::failed("moto's wrapper has no stdout", ""))?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut pid)
            .map_err(Error::io("cannot read moto's pid"))?;
        let pid: u32 = pid
            .trim()
            .parse()
            .map_err(|_| Error::failed("moto's pid is not a number:", pid.clone()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err(Error::failed(
                    format!("{binary} did not start on port {port}:"),
                    "install moto (pip install 'moto[server]') or set DAWDLE_MOTO_SERVER, \
                     as scripts/test does",
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(SqsServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            pid,
            _server: child,
        })
    }

    /// Freezes the server (SIGSTOP), as a hung endpoint: connections are
    /// still accepted, but no request is answered until [`SqsServer::resume`].
    /// Only for a server of one's own ([`SqsServer::start_on`]): other tests
    /// share [`SqsServer::get`]'s.
    pub fn pause(&self) -> Result<(), Error> {
        self.signal("-STOP")
    }

    /// Lets a paused server answer again (SIGCONT).
    pub fn resume(&self) -> Result<(), Error> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> Result<(), Error> {
        let status = std::process::Command::new("kill")
            .args([signal, &self.pid.to_string()])
            .status()
            .map_err(Error::io(format!("cannot run kill {signal}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::failed(
                format!("kill {signal} {} failed", self.pid),
                "",
            ))
        }
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:4566`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A client for `endpoint` with dummy credentials.
    pub async fn client_for(endpoint: &str) -> aws_sdk_sqs::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .load()
            .await;
        aws_sdk_sqs::Client::new(&config)
    }

    /// A client for this server.
    pub async fn client(&self) -> aws_sdk_sqs::Client {
        Self::client_for(&self.endpoint).await
    }

    /// Creates a queue with a unique name (FIFO when `fifo`), with a
    /// dead-letter queue after `max_receives`, and returns its URL.
    pub async fn create_queue(
        &self,
        prefix: &str,
        fifo: bool,
        max_receives: Option<u32>,
    ) -> Result<String, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let client = self.client().await;
        let suffix = if fifo { ".fifo" } else { "" };
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let create = |name: String| async {
            let mut request = client.create_queue().queue_name(name);
            if fifo {
                request = request.attributes(QueueAttributeName::FifoQueue, "true");
            }
            request
                .send()
                .await
                .map_err(sqs_error)?
                .queue_url
                .ok_or_else(|| Error::Sqs("CreateQueue returned no URL".into()))
        };
        let url = create(format!("{name}{suffix}")).await?;
        if let Some(max) = max_receives {
            let dlq = create(format!("{name}-dlq{suffix}")).await?;
            let arn = client
                .get_queue_attributes()
                .queue_url(&dlq)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(sqs_error)?
                .attributes
                .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
                .ok_or_else(|| Error::Sqs("GetQueueAttributes returned no QueueArn".into()))?;
            client
                .set_queue_attributes()
                .queue_url(&url)
                .attributes(
                    QueueAttributeName::RedrivePolicy,
                    format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"{max}"}}"#),
                )
                .send()
                .await
                .map_err(sqs_error)?;
        }
        Ok(url)
    }
}
