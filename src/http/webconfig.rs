//! `--web-config-file`: TLS and basic auth for /metrics, in the format of the
//! Prometheus exporter-toolkit, so one file serves node_exporter and us:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt        # relative paths are from this file's folder
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # optional
//!   client_ca_file: ca.crt                         # with the above
//!   min_version: TLS12                             # or TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...       # bcrypt hash
//! ```
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: PathBuf,
    key_file: PathBuf,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    min_version: Option<String>,
}

/// A loaded web configuration.
pub struct WebConfig {
    pub tls: Option<rustls::ServerConfig>,
    pub basic_auth: Option<Arc<BasicAuth>>,
}

/// Why a web configuration cannot be used.
#[derive(Debug)]
pub enum WebConfigError {
    /// A file (the configuration, a certificate, a key) cannot be read.
    Read { path: PathBuf, source: std::io::Error },
    /// Not YAML, or a field this format does not have.
    Format { path: PathBuf, reason: String },
    /// A `basic_auth_users` entry is not a bcrypt hash.
    NotBcrypt { user: String },
    /// A TLS setting cannot be used; `field` names it.
    Tls { field: &'static str, reason: String },
}

impl fmt::Display for WebConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Format { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::NotBcrypt { user } => write!(f, "basic_auth_users.{user}: not a bcrypt hash"),
            Self::Tls { field, reason } => write!(f, "{field}: {reason}"),
        }
    }
}

impl std::error::Error for WebConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn tls_error(field: &'static str, reason: impl ToString) -> WebConfigError {
    WebConfigError::Tls { field, reason: reason.to_string() }
}

impl WebConfig {
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| WebConfigError::Read { path: path.to_owned(), source })?;
        let file: File = serde_norway::from_str(&text)
            .map_err(|e| WebConfigError::Format { path: path.to_owned(), reason: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = file.tls_server_config.map(|t| tls_config(&t, base)).transpose()?;
        let basic_auth = if file.basic_auth_users.is_empty() {
            None
        } else {
            if let Some(user) = file.basic_auth_users.iter().find(|(_, h)| h.parse::<bcrypt::HashParts>().is_err()) {
                return Err(WebConfigError::NotBcrypt { user: user.0.clone() });
            }
            Some(Arc::new(BasicAuth { users: file.basic_auth_users, verified: Mutex::default() }))
        };
        Ok(Self { tls, basic_auth })
    }
}

fn tls_config(t: &TlsFile, base: &Path) -> Result<rustls::ServerConfig, WebConfigError> {
    let read = |p: &Path| {
        let path = base.join(p);
        std::fs::read(&path).map_err(|source| WebConfigError::Read { path, source })
    };
    let certs = CertificateDer::pem_slice_iter(&read(&t.cert_file)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error("cert_file", e))?;
    if certs.is_empty() {
        return Err(tls_error("cert_file", "no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&t.key_file)?).map_err(|e| tls_error("key_file", e))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match t.min_version.as_deref() {
        None | Some("TLS12") => rustls::ALL_VERSIONS,
        Some("TLS13") => &[&rustls::version::TLS13],
        Some(v) => return Err(tls_error("min_version", format!("{v} is not supported (TLS12 or TLS13)"))),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| tls_error("min_version", e))?;
    let builder = match t.client_auth_type.as_deref() {
        None | Some("NoClientCert") => builder.with_no_client_auth(),
        Some(kind @ ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven")) => {
            let ca = t
                .client_ca_file
                .as_ref()
                .ok_or_else(|| tls_error("client_ca_file", "needed to verify client certificates"))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&read(ca)?) {
                roots
                    .add(cert.map_err(|e| tls_error("client_ca_file", e))?)
                    .map_err(|e| tls_error("client_ca_file", e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if kind == "VerifyClientCertIfGiven" { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| tls_error("client_ca_file", e))?)
        }
        Some(other) => return Err(tls_error("client_auth_type", format!("{other} is not supported"))),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| tls_error("key_file", e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// HTTP basic auth against bcrypt hashes.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Keyed hashes of credentials that passed, so a scrape every few seconds
    /// does not pay bcrypt each time (bounded; cleared when full).
    verified: Mutex<HashSet<u128>>,
}

const VERIFIED_CACHE: usize = 256;

impl BasicAuth {
    fn cache_key(user: &str, password: &str) -> u128 {
        use std::sync::OnceLock;
        static SEED: OnceLock<u64> = OnceLock::new();
        let mut h = xxhash_rust::xxh3::Xxh3::with_seed(*SEED.get_or_init(rand::random));
        h.update(&(user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(password.as_bytes());
        h.digest128()
    }

    async fn check(self: Arc<Self>, authorization: Option<&header::HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else { return false };
        let Some(hash) = self.users.get(&user).cloned() else { return false };
        let key = Self::cache_key(&user, &password);
        if crate::sync::lock(&self.verified).contains(&key) {
            return true;
        }
        // bcrypt is deliberately slow: keep it off the worker thread.
        let ok = web::block(move || bcrypt::verify(password, &hash).unwrap_or(false)).await.unwrap_or(false);
        if ok {
            let mut cache = crate::sync::lock(&self.verified);
            if cache.len() >= VERIFIED_CACHE {
                cache.clear();
            }
            cache.insert(key);
        }
        ok
    }
}

fn parse_basic(value: &header::HeaderValue) -> Option<(String, String)> {
    let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Middleware: where basic auth is configured, answers 401 unless the
/// request carries valid credentials.
pub async fn require_basic_auth(
    auth: Option<web::Data<Arc<BasicAuth>>>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let ok = match auth {
        None => true,
        Some(auth) => auth.get_ref().clone().check(req.headers().get(header::AUTHORIZATION)).await,
    };
    if ok {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let response = HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"css-push-exporter\""))
        .body("Unauthorized\n");
    Ok(req.into_response(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<WebConfig, WebConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, yaml).unwrap();
        WebConfig::load(&path)
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        let kind = |yaml: &str| match load(yaml).err() {
            Some(WebConfigError::Read { path, .. }) => format!("read {}", path.file_name().unwrap().to_string_lossy()),
            Some(WebConfigError::Format { .. }) => "format".into(),
            Some(WebConfigError::NotBcrypt { user }) => format!("bcrypt {user}"),
            Some(WebConfigError::Tls { field, .. }) => format!("tls {field}"),
            None => "ok".into(),
        };
        let table = [
            ("basic_auth_users:\n  a: notahash\n", "bcrypt a"),
            ("unknown_key: 1\n", "format"),
            ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "read missing.crt"),
            ("{}\n", "ok"),
        ];
        for (yaml, want) in table {
            assert_eq!(kind(yaml), want, "{yaml:?}");
        }
    }

    #[test]
    fn empty_file_means_nothing_to_enforce() {
        let c = load("{}\n").unwrap();
        assert!(c.tls.is_none() && c.basic_auth.is_none());
    }

    #[test]
    fn basic_header_parsing() {
        let v = header::HeaderValue::from_static("Basic dXNlcjpwYTpzcw==");
        assert_eq!(parse_basic(&v), Some(("user".into(), "pa:ss".into())));
        assert_eq!(parse_basic(&header::HeaderValue::from_static("Bearer x")), None);
    }
}
