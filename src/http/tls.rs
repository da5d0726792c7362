//! TLS with rustls (ring), for HTTPS to engines and to SASLogon, and for the
//! stand-in engine's `-tls-cert/-tls-key`.
//!
//! Verification is always on: trust comes from the system CA bundle plus
//! `-cacert FILE` (a private CA is the answer to a self-signed engine, never
//! a switch that turns checking off). The server name sent (SNI) and checked
//! is the engine's `host` as configured: a name or an IP address literal.
//!
//! System bundles looked at, first found wins: `$SSL_CERT_FILE`,
//! `/etc/ssl/certs/ca-certificates.crt` (Debian, Alpine, Yocto's
//! ca-certificates), `/etc/pki/tls/certs/ca-bundle.crt` (Fedora/RHEL),
//! `/etc/ssl/cert.pem`; with none, `$SSL_CERT_DIR` or `/etc/ssl/certs` `*.pem`.
//! Neither a bundle nor `-cacert` is an error at start (HTTPS could not
//! verify anything).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

pub use futures_rustls::{TlsAcceptor, TlsConnector};

const BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs_in(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: cannot read certificates: {e}", path.display()))?
        .collect();
    let certs = certs.map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it; accepted: PEM '-----BEGIN CERTIFICATE-----' blocks",
            path.display()
        ));
    }
    Ok(certs)
}

/// The system's trusted CAs (see the module docs for where they are looked for).
fn system_roots(store: &mut rustls::RootCertStore) -> Option<PathBuf> {
    let env_file = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    for f in env_file
        .into_iter()
        .chain(BUNDLES.iter().map(PathBuf::from))
    {
        if let Ok(certs) = certs_in(&f) {
            let (added, _bad) = store.add_parsable_certificates(certs);
            if added > 0 {
                return Some(f);
            }
        }
    }
    let dir = std::env::var_os("SSL_CERT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs"));
    let mut any = false;
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "pem" || e == "crt") {
            if let Ok(certs) = certs_in(&p) {
                any |= store.add_parsable_certificates(certs).0 > 0;
            }
        }
    }
    any.then_some(dir)
}

/// A client configuration trusting the system CAs and `cacert`.
pub fn client(cacert: Option<&Path>) -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let system = system_roots(&mut roots);
    if let Some(p) = cacert {
        for c in certs_in(p)? {
            roots
                .add(c)
                .map_err(|e| format!("{}: not a usable CA certificate: {e}", p.display()))?;
        }
    }
    if roots.is_empty() {
        log::warn!("TLS: no trusted CA (no system bundle, no -cacert): HTTPS connections will fail verification");
    }
    log::debug!(
        "TLS: {} trusted CAs (system: {}, -cacert: {})",
        roots.len(),
        system.map_or("none".into(), |p| p.display().to_string()),
        cacert.map_or("none".into(), |p| p.display().to_string())
    );
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A server configuration from PEM files (the stand-in engine's).
pub fn server(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let chain = certs_in(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "{}: no usable private key: {e}; accepted: a PEM PKCS#8, PKCS#1 or SEC1 key",
            key.display()
        )
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The name a certificate must carry for `host`.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(h.to_string())
        .map_err(|e| format!("{host:?} cannot be checked against a certificate: {e}"))
}
