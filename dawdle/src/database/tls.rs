//! TLS for tokio-postgres through rustls (with aws-lc-rs, the provider
//! aws-sdk-sqs builds too), checking of the server's certificate what the
//! `sslmode` asks for and no more.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::SslMode;

/// Where the roots that vouch for the server's certificate come from.
#[derive(Clone)]
pub(super) enum Roots {
    /// No `sslrootcert`.
    Unset,
    /// `sslrootcert=system`.
    Platform,
    /// `sslrootcert=<file>`.
    File(PathBuf),
    /// [`Database::root_certificates_pem`](super::Database::root_certificates_pem).
    Pem(Arc<[u8]>),
}

impl fmt::Debug for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::Unset => f.write_str("Unset"),
            Roots::Platform => f.write_str("Platform"),
            Roots::File(path) => f.debug_tuple("File").field(path).finish(),
            Roots::Pem(pem) => write!(f, "Pem({} bytes)", pem.len()),
        }
    }
}

impl fmt::Display for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::Unset | Roots::Platform => f.write_str("the platform's root certificates"),
            Roots::File(path) => write!(f, "sslrootcert={}", path.display()),
            Roots::Pem(_) => f.write_str("the root certificates given as PEM"),
        }
    }
}

/// What to check of the server's certificate.
enum Check {
    /// Nothing: the connection is encrypted, against whoever answered.
    Nothing,
    /// That its chain leads to a trusted root.
    Chain,
    /// That, and that it names the host.
    ChainAndName,
}

/// Makes the TLS connector of each connection attempt.
#[derive(Debug, Clone)]
pub(super) struct MakeTls {
    mode: SslMode,
    roots: Roots,
}

impl MakeTls {
    pub(super) fn new(mode: SslMode, roots: Roots) -> MakeTls {
        MakeTls { mode, roots }
    }

    fn check(&self) -> Check {
        match (self.mode, &self.roots) {
            (SslMode::VerifyFull, _) => Check::ChainAndName,
            (SslMode::VerifyCa, _) => Check::Chain,
            // libpq's `require` checks the chain when given roots to check
            // it against: existing setups rely on that.
            (SslMode::Require, Roots::Unset) => Check::Nothing,
            (SslMode::Require, _) => Check::Chain,
            (SslMode::Disable | SslMode::Allow | SslMode::Prefer, _) => Check::Nothing,
        }
    }

    /// The rustls settings of one connection. Built per connection, so
    /// that an `sslrootcert` file replaced on disk is read again.
    fn client_config(&self, host: &str) -> Result<ClientConfig, TlsError> {
        let provider = provider();
        let verifier: Arc<dyn ServerCertVerifier> = match self.check() {
            Check::Nothing => Arc::new(EncryptionOnly(provider.clone())),
            Check::Chain => Arc::new(ChainOnly(self.webpki(provider, host)?)),
            Check::ChainAndName => self.webpki(provider, host)?,
        };
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                self.error(
                    host,
                    TlsErrorKind::Handshake,
                    e.to_string(),
                    Some(Arc::new(e)),
                )
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // As libpq 17 does: PostgreSQL 17 refuses another protocol, and
        // older servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(config)
    }

    fn webpki(
        &self,
        provider: &Arc<CryptoProvider>,
        host: &str,
    ) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
        let roots = self
            .root_store()
            .map_err(|what| self.error(host, TlsErrorKind::RootCertificates, what, None))?;
        WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| {
                let what = format!("cannot use {}: {e}", self.roots);
                self.error(
                    host,
                    TlsErrorKind::RootCertificates,
                    what,
                    Some(Arc::new(e)),
                )
            })
    }

    fn root_store(&self) -> Result<Arc<RootCertStore>, String> {
        let pem = match &self.roots {
            Roots::Unset | Roots::Platform => return platform_roots(),
            Roots::File(path) => std::fs::read(path)
                .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?,
            Roots::Pem(pem) => pem.to_vec(),
        };
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{} is not PEM: {e}", self.roots))?;
        let mut store = RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(certificates);
        if added == 0 {
            return Err(format!(
                "{} holds no usable certificate (expected PEM BEGIN CERTIFICATE blocks)",
                self.roots
            ));
        }
        Ok(Arc::new(store))
    }

    fn error(
        &self,
        host: &str,
        kind: TlsErrorKind,
        what: String,
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    ) -> TlsError {
        TlsError {
            mode: self.mode,
            host: host.to_owned(),
            kind,
            what,
            source,
        }
    }

    /// Says what a failed handshake means, in the terms of the `sslmode`.
    fn handshake_error(&self, host: &str, error: io::Error) -> TlsError {
        let certificate = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .and_then(|e| match e {
                rustls::Error::InvalidCertificate(certificate) => Some(certificate),
                _ => None,
            });
        let (kind, what) = match certificate {
            Some(CertificateError::UnknownIssuer) => (
                TlsErrorKind::Untrusted,
                format!(
                    "the server's certificate is not trusted (certificate verify failed: unknown \
                     issuer): its chain leads to none of {}",
                    self.roots
                ),
            ),
            Some(
                reason @ (CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. }),
            ) => (
                TlsErrorKind::HostNameMismatch,
                format!(
                    "the server's certificate does not match the host name ({reason}); connect \
                     by a name the certificate lists, or use sslmode=verify-ca"
                ),
            ),
            Some(reason) => (
                TlsErrorKind::InvalidCertificate,
                format!("the server's certificate is not valid: {reason}"),
            ),
            None => (
                TlsErrorKind::Handshake,
                format!("the TLS handshake failed: {error}"),
            ),
        };
        self.error(host, kind, what, Some(Arc::new(error)))
    }
}

impl MakeTlsConnect<Socket> for MakeTls {
    type Stream = TlsStream;
    type TlsConnect = Connect;
    type Error = Infallible;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connect, Infallible> {
        Ok(Connect {
            tls: self.clone(),
            host: host.to_owned(),
        })
    }
}

/// The TLS handshake of one connection attempt.
pub(super) struct Connect {
    tls: MakeTls,
    host: String,
}

impl TlsConnect<Socket> for Connect {
    type Stream = TlsStream;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream, TlsError>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            // Only now: tokio-postgres makes a connector for every attempt,
            // also those that end up plain, which must not fail for
            // roots they never use.
            let config = self.tls.client_config(&self.host)?;
            let mut make = MakeRustlsConnect::new(config);
            let Ok(handshake) = <MakeRustlsConnect as MakeTlsConnect<Socket>>::make_tls_connect(
                &mut make, &self.host,
            );
            match handshake.connect(socket).await {
                Ok(stream) => Ok(TlsStream(stream)),
                Err(error) => Err(self.tls.handshake_error(&self.host, error)),
            }
        })
    }
}

/// The crypto provider of every connection.
fn provider() -> &'static Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The platform's roots, read once per process.
fn platform_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(format!(
                    "no root certificates found on this platform ({}); give sslrootcert=<PEM file>",
                    if errors.is_empty() {
                        "none installed".to_owned()
                    } else {
                        errors.join("; ")
                    }
                ));
            }
            Ok(Arc::new(store))
        })
        .clone()
}

/// Checks only that the server holds the key of the certificate it shows,
/// whoever that certificate is for: encryption against eavesdroppers,
/// and channel binding that means something.
#[derive(Debug)]
struct EncryptionOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptionOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: webpki's checks but the host name's. webpki checks the
/// name last, after the chain, so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            result => result,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The TLS stream of a [`Connection`](super::Connection). Not public API
/// beyond its name.
pub struct TlsStream(<MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream);

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsStream")
    }
}

impl tokio_postgres::tls::TlsStream for TlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        tokio_postgres::tls::TlsStream::channel_binding(&self.0)
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// TLS to the server failed: its certificate was refused, the roots to
/// check it against could not be loaded, or the handshake failed. The
/// message names the `sslmode` and the host.
#[derive(Debug, Clone)]
pub struct TlsError {
    mode: SslMode,
    host: String,
    kind: TlsErrorKind,
    what: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// What went wrong in a [`TlsError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The server's certificate chain leads to no trusted root.
    Untrusted,
    /// The server's certificate is for another host name (`verify-full`).
    HostNameMismatch,
    /// The server's certificate is otherwise not valid: expired, not yet
    /// valid, not for a server, ...
    InvalidCertificate,
    /// The roots to check the certificate against could not be loaded.
    RootCertificates,
    /// The handshake failed for another reason.
    Handshake,
}

impl TlsError {
    /// What went wrong.
    pub fn kind(&self) -> TlsErrorKind {
        self.kind
    }

    /// The `sslmode` of the connection.
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// The host connected to, as the certificate is checked against.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TLS to {:?} with sslmode={}: {}",
            self.host, self.mode, self.what
        )
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
