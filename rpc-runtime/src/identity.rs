//! Who a peer proved to be.

use std::fmt;

/// The identity a peer proved with its certificate during a mutual-TLS
/// handshake: available to handlers through
/// [`CallContext::peer_identity`](crate::CallContext::peer_identity).
///
/// The certificate chain has been verified against the server's client
/// roots before any call is read; a peer without a valid certificate never
/// gets this far.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub(crate) subject: String,
    pub(crate) dns_names: Vec<String>,
    pub(crate) chain: Vec<Vec<u8>>,
}

impl PeerIdentity {
    /// The certificate's subject, as a distinguished name (`CN=alice, O=Example`).
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The DNS names in the certificate's subject alternative names.
    #[must_use]
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The peer's certificate chain, DER-encoded, its own certificate first.
    #[must_use]
    pub fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
}

impl fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerIdentity")
            .field("subject", &self.subject)
            .field("dns_names", &self.dns_names)
            .field("certificates", &self.chain.len())
            .finish()
    }
}
