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
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
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

impl WebConfig {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: File = serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = file.tls_server_config.map(|t| tls_config(&t, base)).transpose()?;
        let basic_auth = if file.basic_auth_users.is_empty() {
            None
        } else {
            for (user, hash) in &file.basic_auth_users {
                hash.parse::<bcrypt::HashParts>()
                    .map_err(|e| format!("basic_auth_users.{user}: not a bcrypt hash ({e})"))?;
            }
            Some(Arc::new(BasicAuth { users: file.basic_auth_users, verified: Mutex::default() }))
        };
        Ok(Self { tls, basic_auth })
    }
}

fn tls_config(t: &TlsFile, base: &Path) -> Result<rustls::ServerConfig, String> {
    let read = |p: &Path| -> Result<Vec<u8>, String> {
        let p = base.join(p);
        std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let certs = rustls_pemfile::certs(&mut read(&t.cert_file)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cert_file: {e}"))?;
    if certs.is_empty() {
        return Err("cert_file: no certificate found".into());
    }
    let key = rustls_pemfile::private_key(&mut read(&t.key_file)?.as_slice())
        .map_err(|e| format!("key_file: {e}"))?
        .ok_or("key_file: no private key found")?;
    let versions: &[&rustls::SupportedProtocolVersion] = match t.min_version.as_deref() {
        None | Some("TLS12") => rustls::ALL_VERSIONS,
        Some("TLS13") => &[&rustls::version::TLS13],
        Some(v) => return Err(format!("min_version: {v} is not supported (TLS12 or TLS13)")),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let builder = match t.client_auth_type.as_deref() {
        None | Some("NoClientCert") => builder.with_no_client_auth(),
        Some(kind @ ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven")) => {
            let ca = t.client_ca_file.as_ref().ok_or("client_ca_file is needed to verify client certificates")?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut read(ca)?.as_slice()) {
                roots
                    .add(cert.map_err(|e| format!("client_ca_file: {e}"))?)
                    .map_err(|e| format!("client_ca_file: {e}"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if kind == "VerifyClientCertIfGiven" { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("client_ca_file: {e}"))?)
        }
        Some(other) => return Err(format!("client_auth_type: {other} is not supported")),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| format!("cert_file/key_file: {e}"))?;
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
        if self.verified.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            return true;
        }
        // bcrypt is deliberately slow: keep it off the worker thread.
        let ok = web::block(move || bcrypt::verify(password, &hash).unwrap_or(false)).await.unwrap_or(false);
        if ok {
            let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
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

    fn load(yaml: &str) -> Result<WebConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, yaml).unwrap();
        WebConfig::load(&path)
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        let table = [
            ("basic_auth_users:\n  a: notahash\n", "not a bcrypt hash"),
            ("unknown_key: 1\n", "unknown field"),
            ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "missing.crt"),
        ];
        for (yaml, want) in table {
            let err = load(yaml).err().unwrap_or_default();
            assert!(err.contains(want), "{yaml:?}: {err}");
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
