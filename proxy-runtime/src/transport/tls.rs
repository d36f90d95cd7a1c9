//! TLS (rustls with the ring provider) to targets and `https://` proxies: the roots
//! trusted, each route's configurations, and the handshake.

use std::fmt;
use std::sync::Arc;

use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use super::io::Io;
use crate::error::{ProxyError, ProxyErrorKind};

/// Which certificate authorities to trust.
///
/// By default the Mozilla roots shipped by `webpki-roots`; add your own (a test CA, or the
/// CA of a TLS-inspecting corporate proxy) with [`TlsRoots::add_der`] or
/// [`TlsRoots::add_pem`].
#[derive(Clone)]
pub struct TlsRoots {
    webpki: bool,
    extra: Vec<CertificateDer<'static>>,
}

impl Default for TlsRoots {
    fn default() -> Self {
        Self {
            webpki: true,
            extra: Vec::new(),
        }
    }
}

impl fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsRoots")
            .field("webpki", &self.webpki)
            .field("extra", &self.extra.len())
            .finish()
    }
}

/// A PEM file that holds no usable certificate.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no certificate found in the PEM input")]
pub struct PemError;

/// The operating system's store of trusted roots could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read the system's trusted roots: {0}")]
pub struct NativeRootsError(String);

impl TlsRoots {
    /// The roots the operating system trusts (its certificate store, read by
    /// `rustls-native-certs`; `SSL_CERT_FILE` and `SSL_CERT_DIR` name others, as for
    /// OpenSSL), instead of the bundled Mozilla roots: for clients that used native-tls,
    /// or a host whose administrators add a CA to the system's store. Certificates of the
    /// store that cannot be read are skipped; a store from which none can be read is an
    /// error (never an empty set of roots that fails every connection later).
    pub fn native() -> Result<Self, NativeRootsError> {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            let why: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            let why = if why.is_empty() {
                "the store holds no certificate".to_owned()
            } else {
                why.join("; ")
            };
            return Err(NativeRootsError(why));
        }
        Ok(Self {
            webpki: false,
            extra: found.certs,
        })
    }

    /// Only the roots added explicitly (no public CAs).
    pub fn empty() -> Self {
        Self {
            webpki: false,
            extra: Vec::new(),
        }
    }

    /// Trusts a CA certificate given in DER.
    pub fn add_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.extra.push(CertificateDer::from(der.into()));
        self
    }

    /// Trusts every certificate of a PEM document.
    pub fn add_pem(mut self, pem: &[u8]) -> Result<Self, PemError> {
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
            .filter_map(Result::ok)
            .collect();
        if certs.is_empty() {
            return Err(PemError);
        }
        self.extra.extend(certs);
        Ok(self)
    }

    /// A rustls client configuration (ring provider, no ALPN yet) trusting these roots.
    /// Uses its own provider, so it works whatever provider the application installs as the
    /// process default.
    pub(crate) fn client_config(&self) -> Result<ClientConfig, rustls::Error> {
        let mut roots = RootCertStore::empty();
        if self.webpki {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for cert in &self.extra {
            // A certificate that cannot be parsed is skipped: it could not anchor a chain.
            let _ = roots.add(cert.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

/// Session tickets kept per exit, for resumption.
const SESSIONS_PER_EXIT: usize = 64;

/// What the TLS of every exit is made from: the injector's configuration (its roots), and
/// whether HTTP/2 is offered to `https://` targets.
#[derive(Clone)]
pub(crate) struct TlsBase {
    config: Arc<ClientConfig>,
    http2: bool,
}

impl TlsBase {
    pub(crate) fn new(config: ClientConfig, http2: bool) -> Self {
        Self {
            config: Arc::new(config),
            http2,
        }
    }

    /// The configurations of a new exit, with a session cache of its own.
    pub(crate) fn exit(&self) -> ExitTls {
        ExitTls::new(&self.config, self.http2)
    }
}

/// The TLS configurations of one exit (a member of a route, or a direct route): to the
/// target for HTTP (ALPN `h2` and `http/1.1`, or `http/1.1` alone when HTTP/2 is switched
/// off), to the target for everything else (`http/1.1`: WebSockets and raw streams), and
/// to an `https://` proxy (`http/1.1`: a CONNECT proxy is spoken to in HTTP/1.1 whatever
/// the tunnel carries).
///
/// The three share one session cache of their own, so that a resumption ticket never
/// links connections that leave by different exits (different routes, or different
/// members of one pool) to the same host.
#[derive(Clone)]
pub(crate) struct ExitTls {
    pub(crate) http: Arc<ClientConfig>,
    pub(crate) http1: Arc<ClientConfig>,
    pub(crate) proxy: Arc<ClientConfig>,
}

impl ExitTls {
    /// The configurations of a new exit, from the injector's `base`.
    fn new(base: &ClientConfig, http2: bool) -> Self {
        let sessions = Arc::new(ClientSessionMemoryCache::new(SESSIONS_PER_EXIT));
        let with = |alpn: &[&[u8]]| {
            let mut config = base.clone();
            config.resumption = Resumption::store(sessions.clone());
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Arc::new(config)
        };
        let http1: &[&[u8]] = &[b"http/1.1"];
        Self {
            http: with(if http2 { &[b"h2", b"http/1.1"] } else { http1 }),
            http1: with(http1),
            proxy: with(http1),
        }
    }
}

/// `host` (bare: an IPv6 address without brackets) as the name TLS verifies.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, ProxyError> {
    ServerName::try_from(host.to_owned()).map_err(|e| {
        ProxyError::new(ProxyErrorKind::InvalidTarget)
            .detail("not a valid TLS server name")
            .source(e)
    })
}

/// A TLS handshake over `io` with `config`, verifying `name`.
pub(crate) async fn handshake<S: Io + 'static>(
    config: &Arc<ClientConfig>,
    name: ServerName<'static>,
    io: S,
) -> Result<tokio_rustls::client::TlsStream<S>, ProxyError> {
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, io)
        .await
        .map_err(|e| ProxyError::new(ProxyErrorKind::Tls).source(e))
}

/// Whether `error` is a TLS failure because the peer's certificate failed verification
/// (expired, untrusted, for another name): what the peer presented, not how it was
/// reached.
pub(crate) fn is_certificate_failure(error: &ProxyError) -> bool {
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        // tokio-rustls gives rustls' error inside an `io::Error`, whose `source` skips it.
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .map_or(e, |inner| inner as &(dyn std::error::Error + 'static));
        if matches!(
            inner.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_))
        ) {
            return true;
        }
        cause = e.source();
    }
    false
}
