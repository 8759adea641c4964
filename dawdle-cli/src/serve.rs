//! `--metrics-addr`: Prometheus text at `/metrics`, and `/healthz` and
//! `/readyz` for an orchestrator's probes; the queues' depth gauges.
//!
//! Three GET routes with fixed answers need no web framework: each
//! connection sends one request, gets one response, and is closed.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dawdle::queue::DEPTH_SAMPLE_INTERVAL;
use dawdle::watcher::{Route, Stats};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::Failure;

/// The longest a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the endpoint reads: the metrics and the watcher's state.
struct Probes {
    metrics: PrometheusHandle,
    watcher: Arc<Stats>,
}

/// The endpoint, bound and with its recorder installed, not yet serving.
pub struct Endpoint {
    listener: TcpListener,
    metrics: PrometheusHandle,
}

impl Endpoint {
    /// Installs the Prometheus recorder, so that every `metrics` call of
    /// the library from now on lands in it, and binds `addr`: a port in use
    /// fails the command at once.
    pub async fn bind(addr: SocketAddr) -> Result<Endpoint, Failure> {
        let metrics = PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| Failure::Message(format!("cannot install the metrics recorder: {e}")))?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::Usage(format!("--metrics-addr {addr}: {e}")))?;
        Ok(Endpoint { listener, metrics })
    }

    /// Reports the depth of the queue of each of `routes` (the watcher's)
    /// in the `dawdle_queue_*` gauges, read every [`DEPTH_SAMPLE_INTERVAL`]
    /// from now on (`dawdle::queue::sample_depth`); a queue of several
    /// routes is read once, one that cannot tell its depth not at all.
    pub fn sampling(self, routes: &[Route]) -> Endpoint {
        let mut sampled = HashSet::new();
        for queue in routes.iter().map(Route::queue) {
            let Some(admin) = queue.admin() else {
                continue;
            };
            if sampled.insert(admin.name().to_owned()) {
                // Runs until the process ends.
                drop(dawdle::queue::sample_depth(&**queue, DEPTH_SAMPLE_INTERVAL));
            }
        }
        self
    }

    /// Serves the three routes, about `watcher`, until the process ends.
    pub fn serve(self, watcher: Arc<Stats>) {
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
        }
        let probes = Arc::new(Probes {
            metrics: self.metrics,
            watcher,
        });
        let listener = self.listener;
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(answer(stream, probes.clone()));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "metrics endpoint: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
}

/// Reads one request and writes its response.
async fn answer(mut stream: TcpStream, probes: Arc<Probes>) {
    let mut request = Vec::with_capacity(1024);
    let mut buffer = [0_u8; 1024];
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        // Up to the end of the headers; a GET has no body.
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    if read.is_err() {
        return;
    }
    let request = String::from_utf8_lossy(&request);
    let mut words = request.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or(path);
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4",
            probes.metrics.render(),
        ),
        // Alive: the process answers.
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_owned()),
        // Ready: connected to the database, leading or standing by.
        ("GET", "/readyz") if probes.watcher.is_ready() => {
            let role = if probes.watcher.is_leading() {
                "leading"
            } else {
                "standing by"
            };
            ("200 OK", "text/plain", format!("ready: {role}\n"))
        }
        ("GET", "/readyz") => (
            "503 Service Unavailable",
            "text/plain",
            "not ready: not connected to the database\n".to_owned(),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics, /healthz or /readyz\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
