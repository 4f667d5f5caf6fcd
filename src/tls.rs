//! TLS with rustls (aws-lc-rs provider): loading certificates and keys with errors that name the
//! file, client-certificate verification, cipher-suite selection, ALPN, a reloadable acceptor,
//! and what the ASGI `tls` extension reports about each connection.

use std::fmt;
use std::io;
use std::sync::{Arc, RwLock};

use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ServerConnection, WebPkiClientVerifier};
use rustls::{RootCertStore, SupportedCipherSuite};

use crate::config::HttpMode;
use crate::os_error;

/// Whether clients must present a certificate (`--ssl-cert-reqs`, Python's `ssl.CERT_*` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCerts {
    None,
    Optional,
    Required,
}

impl ClientCerts {
    pub fn from_ssl_value(value: i32) -> Option<Self> {
        match value {
            0 => Some(ClientCerts::None),
            1 => Some(ClientCerts::Optional),
            2 => Some(ClientCerts::Required),
            _ => None,
        }
    }
}

/// The `--ssl-*` options, as given.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub certfile: String,
    pub keyfile: Option<String>,
    pub password: Option<String>,
    pub ca_certs: Option<String>,
    pub cert_reqs: ClientCerts,
    /// uvicorn's default `TLSv1` means "every suite we have"; otherwise a `:`-separated list.
    pub ciphers: String,
    /// Offer TLS 1.2 only (`--ssl-version` 5, `ssl.PROTOCOL_TLSv1_2`); otherwise 1.2 and 1.3.
    pub tls12_only: bool,
    pub http: HttpMode,
}

/// Why the TLS configuration cannot be used; the message names the option and file.
#[derive(Debug)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn read(option: &str, path: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError(format!("{option} {path}: {}", os_error::reason(&e))))
}

fn certificates(option: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read(option, path)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{option} {path}: not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{option} {path}: no PEM certificate found")));
    }
    Ok(certs)
}

/// The private key in `path` (PKCS#8, PKCS#1 or SEC1 PEM; encrypted PKCS#8 with `password`).
fn private_key(path: &str, password: Option<&str>) -> Result<PrivateKeyDer<'static>, TlsError> {
    const OPTION: &str = "--ssl-keyfile";
    let data = read(OPTION, path)?;
    let text = String::from_utf8_lossy(&data);
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(TlsError(format!(
            "{OPTION} {path}: a legacy OpenSSL-encrypted key is not supported; convert it to encrypted \
             PKCS#8 with `openssl pkcs8 -topk8 -in {path} -out key-pkcs8.pem` (or drop the password with \
             `openssl pkey -in {path} -out key.pem`)"
        )));
    }
    if let Some(begin) = text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let Some(password) = password else {
            return Err(TlsError(format!(
                "{OPTION} {path}: the key is encrypted; give its password with --ssl-keyfile-password"
            )));
        };
        return decrypt_pkcs8(&text[begin..], password)
            .map_err(|why| TlsError(format!("{OPTION} {path}: {why}")));
    }
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError(format!("{OPTION} {path}: no PEM private key found")),
        other => TlsError(format!("{OPTION} {path}: unreadable private key ({other})")),
    })
}

/// Decrypt an `ENCRYPTED PRIVATE KEY` PEM block (PBES2, as `openssl pkcs8 -topk8` writes).
fn decrypt_pkcs8(pem_text: &str, password: &str) -> Result<PrivateKeyDer<'static>, &'static str> {
    let end_marker = "-----END ENCRYPTED PRIVATE KEY-----";
    let end = pem_text.find(end_marker).ok_or("unterminated encrypted key")? + end_marker.len();
    let (_, document) =
        pkcs8::der::Document::from_pem(&pem_text[..end]).map_err(|_| "unreadable encrypted key")?;
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(document.as_bytes())
        .map_err(|_| "unreadable encrypted key")?;
    let key = info
        .decrypt(password)
        .map_err(|_| "wrong password for the encrypted key (--ssl-keyfile-password)")?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.as_bytes().to_vec())))
}

/// The cipher suites `--ssl-ciphers` selects: rustls names (`TLS13_AES_128_GCM_SHA256`) or
/// OpenSSL names (`ECDHE-RSA-AES128-GCM-SHA256`, `TLS_AES_128_GCM_SHA256`).
fn cipher_suites(spec: &str) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let all = aws_lc_rs::ALL_CIPHER_SUITES;
    if spec.is_empty() || spec.eq_ignore_ascii_case("TLSv1") || spec.eq_ignore_ascii_case("DEFAULT") {
        return Ok(all.to_vec());
    }
    let mut chosen = Vec::new();
    for name in spec.split(':').map(str::trim).filter(|n| !n.is_empty()) {
        let wanted = openssl_to_rustls(name);
        let suite = all
            .iter()
            .find(|s| format!("{:?}", s.suite()).eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| {
                let known: Vec<String> = all.iter().map(|s| format!("{:?}", s.suite())).collect();
                TlsError(format!("--ssl-ciphers: unknown cipher suite {name:?}; known: {}", known.join(", ")))
            })?;
        if !chosen.contains(suite) {
            chosen.push(*suite);
        }
    }
    Ok(chosen)
}

fn openssl_to_rustls(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if let Some(rest) = upper.strip_prefix("TLS_") {
        if !rest.starts_with("ECDHE") {
            return format!("TLS13_{rest}"); // TLS 1.3 names: TLS_AES_128_GCM_SHA256
        }
    }
    if !upper.starts_with("ECDHE-") {
        return upper;
    }
    // ECDHE-RSA-AES128-GCM-SHA256 -> TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    let parts: Vec<&str> = upper.split('-').collect();
    let (kx, rest) = parts.split_at(2);
    let cipher: Vec<String> = rest
        .iter()
        .map(|p| match *p {
            "AES128" => "AES_128".to_string(),
            "AES256" => "AES_256".to_string(),
            "CHACHA20" => "CHACHA20_POLY1305_SHA256".to_string(),
            "POLY1305" => String::new(),
            other => other.to_string(),
        })
        .filter(|p| !p.is_empty())
        .collect();
    let kx = if kx[1] == "ECDSA" { "ECDHE_ECDSA" } else { "ECDHE_RSA" };
    format!("TLS_{kx}_WITH_{}", cipher.join("_"))
}

const TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// Build the rustls server configuration; every failure is one line naming the option and file.
pub fn load(settings: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = certificates("--ssl-certfile", &settings.certfile)?;
    let key =
        private_key(settings.keyfile.as_deref().unwrap_or(&settings.certfile), settings.password.as_deref())?;
    let provider = Arc::new(CryptoProvider {
        cipher_suites: cipher_suites(&settings.ciphers)?,
        ..aws_lc_rs::default_provider()
    });
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(if settings.tls12_only { TLS12_ONLY } else { rustls::ALL_VERSIONS })
        .map_err(|e| TlsError(format!("--ssl-ciphers: {e}")))?;
    let builder = match (&settings.ca_certs, settings.cert_reqs) {
        (_, ClientCerts::None) => builder.with_no_client_auth(),
        (None, _) => {
            return Err(TlsError(
                "--ssl-cert-reqs: asking for client certificates needs --ssl-ca-certs".into(),
            ))
        }
        (Some(ca), reqs) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("--ssl-ca-certs", ca)? {
                roots.add(cert).map_err(|e| TlsError(format!("--ssl-ca-certs {ca}: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier =
                if reqs == ClientCerts::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(
                verifier.build().map_err(|e| TlsError(format!("--ssl-ca-certs {ca}: {e}")))?,
            )
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        TlsError(format!(
            "--ssl-keyfile {}: the key does not match the certificate in {} ({e})",
            settings.keyfile.as_deref().unwrap_or(&settings.certfile),
            settings.certfile
        ))
    })?;
    config.alpn_protocols = match settings.http {
        HttpMode::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        HttpMode::H1 => vec![b"http/1.1".to_vec()],
        HttpMode::H2 => vec![b"h2".to_vec()],
    };
    Ok(Arc::new(config))
}

/// The acceptor every connection uses; `reload` swaps in freshly read certificates.
pub struct TlsAcceptor {
    settings: TlsSettings,
    current: RwLock<(tokio_rustls::TlsAcceptor, Arc<str>)>,
}

impl TlsAcceptor {
    pub fn new(settings: TlsSettings) -> Result<Self, TlsError> {
        let current = RwLock::new(Self::build(&settings)?);
        Ok(Self { settings, current })
    }

    fn build(settings: &TlsSettings) -> Result<(tokio_rustls::TlsAcceptor, Arc<str>), TlsError> {
        let config = load(settings)?;
        let leaf = certificates("--ssl-certfile", &settings.certfile)?.remove(0);
        Ok((tokio_rustls::TlsAcceptor::from(config), to_pem(&leaf).into()))
    }

    /// Re-read the certificate and key files; on failure the old ones stay in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Self::build(&self.settings)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Run the handshake on `io`.
    pub async fn accept<IO>(&self, io: IO) -> io::Result<(tokio_rustls::server::TlsStream<IO>, TlsInfo)>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (acceptor, server_cert) = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        let stream = acceptor.accept(io).await?;
        let info = TlsInfo::of(stream.get_ref().1, server_cert);
        Ok((stream, info))
    }
}

/// What the ASGI `tls` extension reports about one connection.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub server_cert: Arc<str>,
    pub client_cert_chain: Vec<String>,
    pub client_cert_name: Option<String>,
    pub tls_version: Option<u16>,
    pub cipher_suite: Option<u16>,
}

impl TlsInfo {
    fn of(conn: &ServerConnection, server_cert: Arc<str>) -> Self {
        let chain = conn.peer_certificates().unwrap_or_default();
        TlsInfo {
            server_cert,
            client_cert_chain: chain.iter().map(to_pem).collect(),
            client_cert_name: chain.first().and_then(subject_name),
            tls_version: conn.protocol_version().map(u16::from),
            cipher_suite: conn.negotiated_cipher_suite().map(|s| u16::from(s.suite())),
        }
    }
}

/// A certificate as PEM text, as the `tls` extension carries it.
fn to_pem(cert: &CertificateDer<'_>) -> String {
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    let encoded = base64_encode(cert.as_ref());
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn base64_encode(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The certificate's subject as an RFC 4514 distinguished name (most specific RDN first).
fn subject_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let mut parts: Vec<String> = parsed
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let key = x509_parser::objects::oid2abbrev(
                        attr.attr_type(),
                        x509_parser::objects::oid_registry(),
                    )
                    .map(str::to_string)
                    .unwrap_or_else(|_| attr.attr_type().to_id_string());
                    let value = attr.as_str().map(escape_rfc4514).unwrap_or_default();
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    parts.reverse();
    Some(parts.join(","))
}

fn escape_rfc4514(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let edge = (i == 0 && (c == ' ' || c == '#')) || (i == value.chars().count() - 1 && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
        ] {
            assert_eq!(base64_encode(input.as_bytes()), expected);
        }
    }

    #[test]
    fn openssl_names_map_to_rustls_names() {
        assert_eq!(openssl_to_rustls("ECDHE-RSA-AES128-GCM-SHA256"), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(
            openssl_to_rustls("ECDHE-ECDSA-CHACHA20-POLY1305"),
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        );
        assert_eq!(openssl_to_rustls("TLS_AES_256_GCM_SHA384"), "TLS13_AES_256_GCM_SHA384");
        assert!(cipher_suites("ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_256_GCM_SHA384").unwrap().len() == 2);
        assert!(cipher_suites("TLSv1").unwrap().len() > 5);
        assert!(cipher_suites("RC4-MD5").is_err());
    }

    #[test]
    fn rfc4514_escapes_special_characters() {
        assert_eq!(escape_rfc4514("a,b"), "a\\,b");
        assert_eq!(escape_rfc4514(" x "), "\\ x\\ ");
    }
}
