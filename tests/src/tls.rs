//! A certificate authority made at test time, and TLS acceptors whose certificates it
//! signs (for `localhost`, `exchange.test`, `127.0.0.1` and `::1`).

use std::sync::Arc;

use proxy_runtime::TlsRoots;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// A test CA and one server certificate it signed.
#[derive(Clone)]
pub struct TestCa {
    ca_der: Vec<u8>,
    ca_pem: String,
    acceptor: TlsAcceptor,
    acceptor_h2: TlsAcceptor,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

/// The names the server certificate is valid for.
pub const SERVER_NAMES: [&str; 4] = ["localhost", "exchange.test", "127.0.0.1", "::1"];

impl TestCa {
    /// A new CA and server certificate.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "proxy-runtime test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().expect("server key");
        let names: Vec<String> = SERVER_NAMES.iter().map(|s| (*s).to_owned()).collect();
        let params = CertificateParams::new(names).expect("server params");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("server config");
        let with_alpn = |alpn: &[&[u8]]| {
            let mut config = config.clone();
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            TlsAcceptor::from(Arc::new(config))
        };
        Self {
            ca_der: ca_cert.der().to_vec(),
            ca_pem: ca_cert.pem(),
            acceptor: with_alpn(&[b"http/1.1"]),
            acceptor_h2: with_alpn(&[b"h2", b"http/1.1"]),
        }
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.ca_der.clone())
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Roots that trust this CA only.
    pub fn roots(&self) -> TlsRoots {
        TlsRoots::empty().add_der(self.ca_der.clone())
    }

    /// A TLS acceptor presenting the server certificate, speaking HTTP/1.1 (ALPN).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// A TLS acceptor that prefers HTTP/2 by ALPN (`h2`, then `http/1.1`).
    pub fn acceptor_h2(&self) -> TlsAcceptor {
        self.acceptor_h2.clone()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
