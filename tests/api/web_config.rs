//! `--web-config-file`: TLS, client certificates and basic auth on
//! /metrics, checked with a real rustls client and certificates made here.
use crate::helpers::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

/// A throw-away CA, a server certificate for 127.0.0.1 and a client
/// certificate, written as PEM files beside a web config.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertificateDer<'static>,
    client: (CertificateDer<'static>, Vec<u8>),
}

impl Pki {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "css-push-exporter test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap()
            .signed_by(&server_key, &ca, &ca_key)
            .unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::new()).unwrap();
        client_params.distinguished_name.push(DnType::CommonName, "prometheus");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("server.crt"), server.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
        Self { dir, ca: ca.der().clone(), client: (client.der().clone(), client_key.serialize_der()) }
    }

    /// Writes `yaml` as the web config and returns its path.
    fn web_config(&self, yaml: &str) -> String {
        let path = self.dir.path().join("web-config.yml");
        std::fs::write(&path, yaml).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// An HTTPS client trusting `ca` (this PKI's when `None`), presenting
    /// the client certificate when `with_cert`.
    fn client(&self, ca: Option<CertificateDer<'static>>, with_cert: bool) -> awc::Client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.unwrap_or_else(|| self.ca.clone())).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = if with_cert {
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.client.1.clone()));
            builder.with_client_auth_cert(vec![self.client.0.clone()], key).unwrap()
        } else {
            builder.with_no_client_auth()
        };
        awc::Client::builder().connector(awc::Connector::new().rustls_0_23(Arc::new(config))).finish()
    }
}

/// GETs `url`; `Err` when no HTTP answer came (TLS refused, say).
async fn get(client: &awc::Client, url: &str, auth: Option<(&str, &str)>) -> Result<(u16, String), String> {
    let mut req = client.get(url);
    if let Some((user, password)) = auth {
        req = req.basic_auth(user, password);
    }
    let mut res = req.send().await.map_err(|e| e.to_string())?;
    let www = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let body = res.body().limit(16 << 20).await.map_err(|e| e.to_string())?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let status = res.status().as_u16();
    if status == 401 {
        assert_eq!(www.as_deref(), Some("Basic realm=\"css-push-exporter\""), "401 asks for basic auth");
    }
    Ok((status, body))
}

fn hash(password: &str) -> String {
    // The lowest cost keeps the test fast; operators use the default.
    bcrypt::hash(password, 4).unwrap()
}

#[actix_web::test]
async fn metrics_behind_tls_and_basic_auth_while_callbacks_stay_plain() {
    let pki = Pki::new();
    let config = pki.web_config(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: '{}'\n",
        hash("s3cret")
    ));
    let app = spawn_app(&["--web-config-file", &config, "--metrics-listen-address", "127.0.0.1:0"]).await;
    assert_eq!(app.post(SEED).await.0, 200, "callbacks need no credentials: CSS cannot send any");

    let https = app.metrics_base.replace("http://", "https://");
    let metrics = format!("{https}/metrics");
    let client = pki.client(None, false);
    assert_eq!(get(&client, &metrics, None).await.unwrap().0, 401);
    assert_eq!(get(&client, &metrics, Some(("prometheus", "wrong"))).await.unwrap().0, 401);
    assert_eq!(get(&client, &metrics, Some(("root", "s3cret"))).await.unwrap().0, 401);
    assert_eq!(get(&client, &format!("{https}/"), None).await.unwrap().0, 401, "the landing page too");
    for _ in 0..2 {
        // The second time from the cache of verified credentials.
        let (status, body) = get(&client, &metrics, Some(("prometheus", "s3cret"))).await.unwrap();
        assert_eq!(status, 200);
        let m = Metrics::parse(&body);
        assert_eq!(m.sum("css_push_errors_total", &[]), 4.0);
    }
    assert_eq!(get(&client, &format!("{https}/-/healthy"), None).await.unwrap().0, 200, "health checks stay open");

    // Plain HTTP to the TLS port gets no metrics; nor does a client that
    // does not trust the server's CA.
    let plain = get(&app.client, &format!("{}/metrics", app.metrics_base), Some(("prometheus", "s3cret"))).await;
    assert!(!matches!(plain, Ok((200, _))), "plain HTTP on the TLS listener: {plain:?}");
    let other_ca = Pki::new().ca;
    let untrusting = get(&pki.client(Some(other_ca), false), &metrics, Some(("prometheus", "s3cret"))).await;
    assert!(untrusting.is_err(), "{untrusting:?}");

    // The callback listener serves no metrics.
    assert_eq!(get(&app.client, &format!("{}/metrics", app.base), None).await.unwrap().0, 404);
    app.stop().await;
}

#[actix_web::test]
async fn client_certificates_can_be_required() {
    let pki = Pki::new();
    let config = pki.web_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\n",
    );
    let app = spawn_app(&["--web-config-file", &config]).await;
    let metrics = format!("{}/metrics", app.metrics_base.replace("http://", "https://"));
    let without = get(&pki.client(None, false), &metrics, None).await;
    assert!(without.is_err(), "no client certificate: {without:?}");
    let (status, body) = get(&pki.client(None, true), &metrics, None).await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("css_push_exporter_build_info"));
    app.stop().await;
}

#[actix_web::test]
async fn basic_auth_alone_guards_metrics_on_a_shared_listener() {
    let pki = Pki::new();
    let config = pki.web_config(&format!("basic_auth_users:\n  prometheus: '{}'\n", hash("pw")));
    let app = spawn_app(&["--web-config-file", &config]).await;
    assert_eq!(app.post(SEED).await.0, 200);
    let metrics = format!("{}/metrics", app.base);
    assert_eq!(get(&app.client, &metrics, None).await.unwrap().0, 401);
    let (status, body) = get(&app.client, &metrics, Some(("prometheus", "pw"))).await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("css_push_errors_total{"));
    app.stop().await;
}

#[test]
fn a_broken_web_config_stops_start_up_with_the_reason() {
    let pki = Pki::new();
    let table = [
        ("basic_auth_users:\n  prometheus: plain-text-password\n", "not a bcrypt hash"),
        ("tls_server_config:\n  cert_file: server.crt\n", "key_file"),
        ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: SSL3\n", "min_version"),
        ("basic_auth_user:\n  prometheus: x\n", "unknown field"),
    ];
    actix_web::rt::System::new().block_on(async {
        for (yaml, want) in table {
            let config = css_push_exporter::Config::from_flags([
                "--listen-address",
                "127.0.0.1:0",
                "--web-config-file",
                &pki.web_config(yaml),
            ])
            .unwrap();
            let clock = Arc::new(css_push_exporter::clock::SystemClock);
            let err = css_push_exporter::Application::build(&config, clock).err().expect("start-up refused");
            assert!(err.to_string().contains("--web-config-file") && err.to_string().contains(want), "{yaml:?}: {err}");
        }
    });
}
