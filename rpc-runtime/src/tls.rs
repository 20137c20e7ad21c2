//! TLS and mutual TLS (feature `tls`), on rustls with the `ring` provider.
//!
//! A server gets a [`rustls::ServerConfig`] through
//! [`ServerBuilder::tls`](crate::ServerBuilder::tls); a client a
//! [`rustls::ClientConfig`] and the name to verify the server's certificate
//! against, through [`ChannelBuilder::tls`](crate::ChannelBuilder::tls). The
//! helpers here build both from PEM files the usual way; anything rustls
//! allows (other roots, resumption, ALPN, key logging) can be configured by
//! building the configs directly.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use rpc_runtime::{tls, Channel, Server};
//!
//! // Server: its certificate chain and key; with client_ca, clients must
//! // present a certificate signed by it (mutual TLS).
//! let certs = tls::load_certs("server.pem")?;
//! let key = tls::load_private_key("server.key")?;
//! let client_ca = tls::load_certs("clients-ca.pem")?;
//! let server = Server::builder()
//!     .tls(tls::server_config(certs, key, Some(client_ca))?)
//!     .bind("0.0.0.0:7000")
//!     .await?;
//!
//! // Client: the roots it trusts, its own certificate for mutual TLS, and
//! // the name the server's certificate must carry.
//! let roots = tls::load_certs("ca.pem")?;
//! let identity = (tls::load_certs("alice.pem")?, tls::load_private_key("alice.key")?);
//! let channel = Channel::builder()
//!     .tls(tls::client_config(roots, Some(identity))?, "rpc.example.com")?
//!     .connect("rpc.example.com:7000")
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Handshakes are bounded by the server's handshake timeout and the client's
//! connect timeout. A handshake that fails (an unknown issuer, an expired
//! certificate, the wrong name, a plaintext peer) fails the connection with
//! [`RpcError::Tls`] on the client and a log line on the server, which keeps
//! serving everyone else.

use std::io;
use std::path::Path;
use std::sync::Arc;

pub use tokio_rustls::rustls;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::RpcError;
use crate::identity::PeerIdentity;

/// Reads every certificate in a PEM file.
///
/// # Errors
/// When the file cannot be read, holds a malformed PEM section, or holds no
/// certificate.
pub fn load_certs(path: impl AsRef<Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(io::Error::other(format!(
            "{}: no certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
///
/// # Errors
/// When the file cannot be read or holds no private key.
pub fn load_private_key(path: impl AsRef<Path>) -> io::Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn config_error(e: impl std::fmt::Display) -> RpcError {
    RpcError::Tls {
        addr: String::new(),
        message: e.to_string(),
    }
}

fn roots(certs: Vec<CertificateDer<'static>>) -> Result<RootCertStore, RpcError> {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(config_error)?;
    }
    Ok(roots)
}

/// A server configuration: the server's certificate chain (its own
/// certificate first) and key, and, for mutual TLS, the roots a client's
/// certificate must chain to (clients without one are refused).
///
/// # Errors
/// [`RpcError::Tls`] when the key does not match the certificate or a root
/// is not a usable certificate.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<Vec<CertificateDer<'static>>>,
) -> Result<Arc<ServerConfig>, RpcError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let builder = match client_roots {
        Some(client_roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(client_roots)?),
                provider(),
            )
            .build()
            .map_err(config_error)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).map_err(config_error)?;
    Ok(Arc::new(config))
}

/// A client configuration: the roots the server's certificate must chain
/// to, and, for mutual TLS, this client's certificate chain and key.
///
/// # Errors
/// [`RpcError::Tls`] when a root is not a usable certificate or the key does
/// not match the certificate.
pub fn client_config(
    roots_certs: Vec<CertificateDer<'static>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, RpcError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(roots(roots_certs)?);
    let config = match identity {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(config_error)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The identity in a verified client certificate chain.
pub(crate) fn identity(chain: Option<&[CertificateDer<'_>]>) -> Option<Arc<PeerIdentity>> {
    let chain = chain?;
    let first = chain.first()?;
    let (subject, dns_names) = match x509_parser::parse_x509_certificate(first) {
        Ok((_, cert)) => {
            let dns_names = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|san| {
                    san.value
                        .general_names
                        .iter()
                        .filter_map(|name| match name {
                            x509_parser::extensions::GeneralName::DNSName(dns) => {
                                Some((*dns).to_owned())
                            }
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            (cert.subject().to_string(), dns_names)
        }
        // rustls verified it; a certificate it accepts but this parser does
        // not still identifies the peer by its bytes.
        Err(_) => (String::new(), Vec::new()),
    };
    Some(Arc::new(PeerIdentity {
        subject,
        dns_names,
        chain: chain.iter().map(|cert| cert.to_vec()).collect(),
    }))
}
