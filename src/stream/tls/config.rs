//! TLS configurations: certificates and keys from PEM files, server and client
//! configurations on rustls's `ring` provider, and trust roots.

use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The provider every configuration here uses, named rather than taken from the
/// process default (which is ambiguous when another crate enables a second one).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(path: &Path, error: rustls_pki_types::pem::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {error}", path.display()),
    )
}

/// The certificates of a PEM file (a server's chain: its own certificate first).
///
/// # Errors
///
/// The file cannot be read, is not PEM, or holds no certificate
/// ([`InvalidData`](io::ErrorKind::InvalidData)).
///
/// # Examples
///
/// ```no_run
/// let chain = ioloop::tls::load_certs("cert.pem")?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn load_certs(path: impl AsRef<Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no certificate", path.display()),
        ));
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
///
/// The file cannot be read or holds no key ([`InvalidData`](io::ErrorKind::InvalidData)).
///
/// # Examples
///
/// ```no_run
/// let key = ioloop::tls::load_private_key("key.pem")?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn load_private_key(path: impl AsRef<Path>) -> io::Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

/// A server configuration presenting `chain` with `key`: TLS 1.2 and 1.3, no client
/// certificates. Set `alpn_protocols` on it for ALPN, or `cert_resolver` (for example
/// rustls's `ResolvesServerCertUsingSni`) to choose the certificate by the name the
/// client asks for; then give it to [`TlsAcceptor::new`](super::TlsAcceptor::new).
///
/// # Errors
///
/// The key does not match the certificate, or is of a kind the provider cannot use.
///
/// # Examples
///
/// ```no_run
/// use ioloop::tls;
/// let mut config = tls::server_config(tls::load_certs("cert.pem")?, tls::load_private_key("key.pem")?)?;
/// config.alpn_protocols = vec![b"http/1.1".to_vec()];
/// let acceptor = tls::TlsAcceptor::new(config);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
}

/// [`server_config`] from PEM files: what `web_app --tls CERT KEY` uses.
///
/// # Errors
///
/// As [`load_certs`], [`load_private_key`] and [`server_config`]
/// ([`InvalidData`](io::ErrorKind::InvalidData) for the last).
///
/// # Examples
///
/// ```no_run
/// let config = ioloop::tls::server_config_from_pem("cert.pem", "key.pem")?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn server_config_from_pem(
    cert_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> io::Result<ServerConfig> {
    let chain = load_certs(cert_path)?;
    let key = load_private_key(key_path)?;
    server_config(chain, key).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The roots of the Web PKI (Mozilla's list, through the `webpki-roots` crate).
///
/// # Examples
///
/// ```
/// assert!(!ioloop::tls::webpki_roots().is_empty());
/// ```
pub fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// A client configuration trusting `roots`: TLS 1.2 and 1.3, no client certificate. Add
/// a private CA with `RootCertStore::add`; set `alpn_protocols` for ALPN.
///
/// # Examples
///
/// ```
/// let mut roots = rustls::RootCertStore::empty();
/// // roots.add(ca_certificate)?;
/// let config = ioloop::tls::client_config(roots);
/// # drop(config);
/// ```
pub fn client_config(roots: RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The configuration clients use unless told otherwise (`wss://` URLs, for example): the
/// Web PKI's roots ([`webpki_roots()`]). Built once per process.
///
/// # Examples
///
/// ```
/// let config = ioloop::tls::default_client_config();
/// assert!(config.alpn_protocols.is_empty());
/// ```
pub fn default_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| Arc::new(client_config(webpki_roots())))
        .clone()
}
