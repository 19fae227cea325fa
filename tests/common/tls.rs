//! A test PKI made at test time with rcgen: a CA and a certificate it signed for
//! `localhost` and `127.0.0.1`, as rustls configurations and as PEM files for tools.

use std::path::PathBuf;
use std::sync::Arc;

use ioloop::tls::rustls;
use ioloop::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use ioloop::tls::{self, TlsAcceptor};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

pub struct TestPki {
    pub ca: CertificateDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestPki {
    /// A CA and a certificate for `localhost` and `127.0.0.1`.
    pub fn new() -> TestPki {
        TestPki::for_names(&["localhost", "127.0.0.1"])
    }

    /// A CA and a certificate it signed for `names`.
    pub fn for_names(names: &[&str]) -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ioloop test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        TestPki {
            ca: ca_cert.der().clone(),
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The certificate and key as rustls signs with them, for a certificate resolver.
    pub fn certified_key(&self) -> rustls::sign::CertifiedKey {
        let key = rustls::crypto::ring::sign::any_supported_type(&self.key()).unwrap();
        rustls::sign::CertifiedKey::new(self.chain.clone(), key)
    }

    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    pub fn server_config(&self) -> rustls::ServerConfig {
        tls::server_config(self.chain.clone(), self.key()).unwrap()
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::new(self.server_config())
    }

    /// A client trusting this PKI's CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        Arc::new(tls::client_config(roots))
    }

    /// The CA, the certificate and the key as PEM files in a fresh directory.
    pub fn files(&self, name: &str) -> PemFiles {
        let dir = std::env::temp_dir().join(format!("ioloop-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |file: &str, pem: &str| {
            let path = dir.join(file);
            std::fs::write(&path, pem).unwrap();
            path
        };
        PemFiles {
            ca: write("ca.pem", &self.ca_pem),
            cert: write("cert.pem", &self.cert_pem),
            key: write("key.pem", &self.key_pem),
            dir,
        }
    }
}

/// PEM files, removed when dropped.
pub struct PemFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    dir: PathBuf,
}

impl Drop for PemFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
