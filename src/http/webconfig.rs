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
use crate::http::basic_auth::{BasicAuth, MAX_COST};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// A `basic_auth_users` hash too costly to check on every login attempt.
    CostTooHigh { user: String, cost: u32 },
    /// A TLS setting cannot be used; `field` names it.
    Tls { field: &'static str, reason: String },
}

impl fmt::Display for WebConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Its reason is the `source()`.
            Self::Read { path, .. } => write!(f, "{}", path.display()),
            Self::Format { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::NotBcrypt { user } => write!(f, "basic_auth_users.{user}: not a bcrypt hash"),
            Self::CostTooHigh { user, cost } => write!(
                f,
                "basic_auth_users.{user}: bcrypt cost {cost} is above {MAX_COST}: each login attempt would take \
                 seconds or more of CPU; hash the password again with a cost of 10 to {MAX_COST}"
            ),
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
        for (user, hash) in &file.basic_auth_users {
            let parts =
                hash.parse::<bcrypt::HashParts>().map_err(|_| WebConfigError::NotBcrypt { user: user.clone() })?;
            if parts.get_cost() > MAX_COST {
                return Err(WebConfigError::CostTooHigh { user: user.clone(), cost: parts.get_cost() });
            }
        }
        let basic_auth = BasicAuth::new(file.basic_auth_users).map(Arc::new);
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
            Some(WebConfigError::CostTooHigh { user, cost }) => format!("cost {user} {cost}"),
            Some(WebConfigError::Tls { field, .. }) => format!("tls {field}"),
            None => "ok".into(),
        };
        let user_a = |cost| format!("basic_auth_users:\n  a: '{}'\n", with_cost(cost));
        let (cost_12, cost_13, cost_31) = (user_a(12), user_a(13), user_a(31));
        let table = [
            ("basic_auth_users:\n  a: notahash\n", "bcrypt a"),
            (cost_13.as_str(), "cost a 13"),
            (cost_31.as_str(), "cost a 31"),
            (cost_12.as_str(), "ok"),
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

    /// A well-formed bcrypt hash of `cost` (as htpasswd -B writes them),
    /// made without paying for it: no password needs to match it here.
    fn with_cost(cost: u32) -> String {
        format!("$2y${cost:02}$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui")
    }
}
