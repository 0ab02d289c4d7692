//! The deployment files, checked with the tools that consume them: the
//! Dockerfile with hadolint, the systemd unit with systemd-analyze, the
//! Kubernetes manifests rendered by `kubectl kustomize` and then read object
//! by object, and the generated rules and dashboards against their sources.
mod common;
use common::tools;

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use tools::{repo, require, run_ok};

/// Where every deployment keeps the state file.
const STATE_DIR: &str = "/var/lib/css-push-exporter";
const STATE_FILE: &str = "/var/lib/css-push-exporter/state";

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every document of a YAML stream, as JSON values (the one place that
/// knows the YAML library).
fn yaml_docs(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("YAML: {e}")))
        .filter(|doc| !doc.is_null())
        .collect()
}

// ---------------------------------------------------------------- container

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile() -> Vec<String> {
    read("Dockerfile")
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
#[ignore = "needs hadolint: bash .ci/run installs it"]
fn dockerfile_passes_hadolint() {
    let hadolint = require("hadolint");
    let out = run_ok(&hadolint, &["--no-color", "Dockerfile"]);
    assert_eq!(out.trim(), "", "hadolint findings");
}

/// The `cargo` commands of the Dockerfile's `RUN` instructions, with the
/// index of their instruction.
fn dockerfile_cargo_commands(lines: &[String]) -> Vec<(usize, &str)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Some((i, l.strip_prefix("RUN ")?)))
        .flat_map(|(i, run)| run.split("&&").map(move |cmd| (i, cmd.trim())))
        .filter(|(_, cmd)| cmd.starts_with("cargo "))
        .collect()
}

#[test]
fn the_image_builds_with_the_command_ci_runs_and_runs_unprivileged() {
    let lines = dockerfile();
    let builds = dockerfile_cargo_commands(&lines);
    assert!(!builds.is_empty(), "no cargo build in the Dockerfile");
    let build = "cargo build --release --locked";
    assert!(builds.iter().all(|(_, cmd)| *cmd == build), "every build is `{build}`: {builds:?}");
    let ci = read(".ci/run");
    assert!(ci.lines().any(|l| l.trim() == build), ".ci/run must run `{build}` so CI proves the image's build");

    let has = |line: &str| lines.iter().any(|l| l == line);
    // Split listeners by default, as docs/deployment.md advises; both ports declared.
    assert!(has("EXPOSE 9321 9322"));
    assert!(has("ENV CSS_PUSH_METRICS_LISTEN_ADDRESS=0.0.0.0:9322"));
    assert!(has(&format!("ENV CSS_PUSH_STATE_FILE={STATE_FILE}")));
    assert!(has(&format!("VOLUME [\"{STATE_DIR}\"]")));
    assert!(has("ENTRYPOINT [\"/usr/local/bin/css-push-exporter\"]"));
    let user = lines.iter().rev().find_map(|l| l.strip_prefix("USER ")).expect("a USER instruction");
    assert!(!["root", "0", "0:0"].contains(&user), "runs as {user}");
    // The state directory is copied in owned by that user, so a fresh volume
    // is writable.
    assert!(lines
        .iter()
        .any(|l| l.starts_with(&format!("COPY --from=build --chown={user} ")) && l.ends_with(STATE_DIR)));
}

#[test]
fn the_image_compiles_its_dependencies_in_a_layer_of_their_own() {
    let lines = dockerfile();
    let at = |line: &str| lines.iter().position(|l| l == line).unwrap_or_else(|| panic!("no `{line}`"));
    let builds = dockerfile_cargo_commands(&lines);
    let [(deps, _), (app, _)] = builds[..] else { panic!("two builds, dependencies then sources: {builds:?}") };
    let manifest = at("COPY Cargo.toml Cargo.lock ./");
    let sources = at("COPY src src");
    assert!(manifest < deps && deps < sources && sources < app, "manifest, dependency build, sources, build");
    // Only the manifest and what cargo needs to read it reach the
    // dependency layer: a source change must not invalidate it.
    let before_deps: Vec<&String> = lines[..deps].iter().filter(|l| l.starts_with("COPY ")).collect();
    assert_eq!(before_deps, ["COPY Cargo.toml Cargo.lock ./", "COPY benches benches"]);
    assert!(lines[deps].contains("rm -r src"), "the placeholder sources are removed: {}", lines[deps]);
    // COPY keeps the sources' older modification times: without a touch,
    // cargo would take the placeholder build for an up-to-date one.
    assert!(lines[app].starts_with("RUN touch src/main.rs src/lib.rs && cargo build"), "{}", lines[app]);
}

/// The `key="value"` pairs of the Dockerfile's `LABEL` instructions.
fn dockerfile_labels(lines: &[String]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for line in lines.iter().filter_map(|l| l.strip_prefix("LABEL ")) {
        let mut rest = line.trim();
        while let Some((key, value)) = rest.split_once("=\"") {
            let (value, tail) = value.split_once('"').expect("a closing quote");
            labels.insert(key.trim().to_owned(), value.to_owned());
            rest = tail;
        }
        assert_eq!(rest.trim(), "", "write LABEL values quoted: {line}");
    }
    labels
}

#[test]
fn the_image_carries_oci_labels_from_the_manifest_and_the_build() {
    let lines = dockerfile();
    let labels = dockerfile_labels(&lines);
    let label = |k: &str| labels.get(&format!("org.opencontainers.image.{k}")).map(String::as_str);
    assert_eq!(label("title"), Some(env!("CARGO_PKG_NAME")));
    assert_eq!(label("description"), Some(env!("CARGO_PKG_DESCRIPTION")));
    assert_eq!(label("licenses"), Some(env!("CARGO_PKG_LICENSE")));
    // Version, commit and repository come from build arguments, the version
    // defaulting to the crate's.
    assert_eq!(label("version"), Some("${VERSION}"));
    assert_eq!(label("revision"), Some("${REVISION}"));
    assert_eq!(label("source"), Some("${SOURCE}"));
    let has = |line: &str| lines.iter().any(|l| l == line);
    assert!(has(&format!("ARG VERSION={}", env!("CARGO_PKG_VERSION"))), "ARG VERSION defaults to Cargo.toml's");
    assert!(has("ARG REVISION=unknown") && has("ARG SOURCE=\"\""));
}

#[test]
fn the_build_context_holds_exactly_what_the_dockerfile_copies() {
    // .dockerignore excludes everything, then lets in what the build stage
    // copies: a path it misses would only show in a `docker build`.
    let ignore: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert_eq!(ignore.first().map(String::as_str), Some("*"), "an allow-list");
    let mut allowed: Vec<&str> =
        ignore[1..].iter().map(|l| l.strip_prefix('!').expect("only `!path` after `*`")).collect();
    let mut copied: Vec<&str> = Vec::new();
    let lines = dockerfile();
    for copy in lines.iter().filter_map(|l| l.strip_prefix("COPY ")).filter(|c| !c.starts_with("--from=")) {
        let words: Vec<&str> = copy.split_whitespace().collect();
        copied.extend(&words[..words.len() - 1]);
    }
    allowed.sort_unstable();
    copied.sort_unstable();
    assert_eq!(copied, allowed);
    for path in copied {
        assert!(repo().join(path).exists(), "{path} is copied but does not exist");
    }
}

// ------------------------------------------------------------------ systemd

const UNIT: &str = "deploy/systemd/css-push-exporter.service";
const UNIT_BINARY: &str = "/usr/local/bin/css-push-exporter";

/// The unit with `ExecStart` pointing at the binary this build made, written
/// to `dir` under its own name.
fn unit_for_built_binary(dir: &Path) -> std::path::PathBuf {
    let unit = read(UNIT);
    let exec = format!("ExecStart={UNIT_BINARY}");
    assert!(unit.lines().any(|l| l.starts_with(&exec)), "{UNIT}: ExecStart is not {UNIT_BINARY}");
    let path = dir.join("css-push-exporter.service");
    std::fs::write(&path, unit.replace(&exec, &format!("ExecStart={}", env!("CARGO_BIN_EXE_css-push-exporter"))))
        .unwrap();
    path
}

#[test]
#[ignore = "needs systemd-analyze: bash .ci/run installs it"]
fn systemd_unit_verifies_and_is_well_confined() {
    let analyze = require("systemd-analyze");
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_built_binary(dir.path());
    let unit = unit.to_str().unwrap();
    let out = run_ok(&analyze, &["verify", unit]);
    assert_eq!(out.trim(), "", "systemd-analyze verify complained");

    // Exposure on systemd's 0-10 scale (the threshold is in tenths): 2.5
    // and below is "OK".
    let out = run_ok(&analyze, &["security", "--offline=true", "--threshold=25", "--no-pager", unit]);
    let exposure = out.lines().find(|l| l.contains("Overall exposure level")).expect("an exposure line");
    println!("{}", exposure.trim_start_matches(['→', ' ']));
}

#[test]
fn systemd_unit_keeps_state_and_key_where_the_deployment_docs_say() {
    let unit = read(UNIT);
    let settings: Vec<(&str, &str)> = unit.lines().filter_map(|l| l.split_once('=')).collect();
    let has = |k: &str, v: &str| settings.contains(&(k, v));
    assert!(has("DynamicUser", "yes"));
    assert!(has("StateDirectory", "css-push-exporter"), "StateDirectory= makes {STATE_DIR}");
    assert!(has("Environment", &format!("CSS_PUSH_STATE_FILE={STATE_FILE}")));
    assert!(has("EnvironmentFile", "-/etc/css-push-exporter/env"));
    assert!(has("Restart", "on-failure"));
    assert!(has("CapabilityBoundingSet", ""));
    assert!(has("SystemCallFilter", "@system-service"));
    let nofile: u64 = settings.iter().find(|(k, _)| *k == "LimitNOFILE").expect("LimitNOFILE").1.parse().unwrap();
    assert!(nofile >= 65536);
}

// --------------------------------------------------------------- kubernetes

/// `kubectl kustomize dir` (relative to the repository): the rendered
/// objects, by "Kind/name".
fn render(dir: &str) -> BTreeMap<String, Value> {
    kustomize(&repo().join(dir))
}

/// `kubectl kustomize dir`.
fn kustomize(dir: &Path) -> BTreeMap<String, Value> {
    let kubectl = require("kubectl");
    let out = Command::new(&kubectl)
        .arg("kustomize")
        .arg(dir)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", kubectl.display()));
    let dir = dir.display();
    assert!(out.status.success(), "kubectl kustomize {dir}: {}", String::from_utf8_lossy(&out.stderr));
    let docs = yaml_docs(&String::from_utf8(out.stdout).unwrap());
    let objects: BTreeMap<String, Value> = docs
        .into_iter()
        .map(|o| (format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()), o))
        .collect();
    assert!(!objects.is_empty(), "kubectl kustomize {dir} rendered nothing");
    objects
}

/// A user's overlay of deploy/kubernetes, as `kustomization` (a
/// kustomization.yaml in which `{k8s}` stands for deploy/kubernetes) in a
/// temp dir, rendered. kustomize wants paths relative to the overlay.
fn render_overlay(kustomization: &str) -> BTreeMap<String, Value> {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().canonicalize().unwrap();
    let k8s = repo().canonicalize().unwrap().join("deploy/kubernetes");
    let up = "../".repeat(here.components().count() - 1);
    let k8s = format!("{up}{}", k8s.strip_prefix("/").unwrap().display());
    std::fs::write(here.join("kustomization.yaml"), kustomization.replace("{k8s}", &k8s)).unwrap();
    kustomize(&here)
}

fn object<'a>(objects: &'a BTreeMap<String, Value>, key: &str) -> &'a Value {
    objects.get(key).unwrap_or_else(|| panic!("no {key} among {:?}", objects.keys()))
}

/// Whether every label of `selector` is among `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("a label selector");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A memory quantity in MiB ("128Mi", "1Gi").
fn mebibytes(quantity: &Value) -> u64 {
    let q = quantity.as_str().unwrap_or_else(|| panic!("memory quantity {quantity}"));
    match (q.strip_suffix("Mi"), q.strip_suffix("Gi")) {
        (Some(n), _) => n.parse().unwrap(),
        (_, Some(n)) => n.parse::<u64>().unwrap() * 1024,
        _ => panic!("write memory in Mi or Gi, not {q}"),
    }
}

#[test]
#[ignore = "needs kubectl: bash .ci/run installs it"]
fn kubernetes_base_renders_one_unprivileged_replica_with_its_state_and_key() {
    let objects = render("deploy/kubernetes");
    let keys: Vec<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "ConfigMap/css-push-exporter-dashboards",
            "Deployment/css-push-exporter",
            "PersistentVolumeClaim/css-push-exporter-state",
            "PrometheusRule/css-push-exporter",
            "PrometheusRule/css-push-exporter-slo",
            "Service/css-push-exporter",
            "ServiceMonitor/css-push-exporter",
        ]
    );
    let deployment = object(&objects, "Deployment/css-push-exporter");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 1, "the state is per instance");
    assert_eq!(spec["strategy"], json!({"type": "Recreate"}), "the old pod must let go of the state volume first");
    let pod = &spec["template"]["spec"];
    assert!(selects(&spec["selector"]["matchLabels"], &spec["template"]["metadata"]["labels"]));
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["image"], format!("css-push-exporter:{}", env!("CARGO_PKG_VERSION")));
    // Callbacks on one listener; /metrics, the status page and the probes on
    // the other, so a callback flood cannot fail the liveness probe.
    assert_eq!(
        c["ports"],
        json!([
            {"name": "callback", "containerPort": 9321, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9322, "protocol": "TCP"},
        ])
    );
    assert_eq!(c["args"], json!(["--listen-address=0.0.0.0:9321", "--metrics-listen-address=0.0.0.0:9322"]));
    assert_eq!(c["readinessProbe"]["httpGet"], json!({"path": "/-/ready", "port": "metrics"}));
    assert_eq!(c["livenessProbe"]["httpGet"], json!({"path": "/-/healthy", "port": "metrics"}));

    // Unprivileged, on a read-only root, RuntimeDefault seccomp.
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert!(psc["runAsUser"].as_u64().unwrap() > 0);
    assert_eq!(psc["seccompProfile"], json!({"type": "RuntimeDefault"}));
    assert!(psc["fsGroup"].as_u64().is_some(), "fsGroup makes the state volume writable for the user");
    let csc = &c["securityContext"];
    assert_eq!(csc["allowPrivilegeEscalation"], false);
    assert_eq!(csc["readOnlyRootFilesystem"], true);
    assert_eq!(csc["capabilities"], json!({"drop": ["ALL"]}));
    assert_eq!(pod["automountServiceAccountToken"], false);

    // Requests small, the memory limit above the capped worst case (~1 GB).
    let res = &c["resources"];
    for kind in ["requests", "limits"] {
        assert!(res[kind]["cpu"].is_string() && res[kind]["memory"].is_string(), "{kind}: {res}");
    }
    assert!(mebibytes(&res["requests"]["memory"]) <= 256);
    assert!(mebibytes(&res["limits"]["memory"]) >= 1024);

    // The key from a Secret, never inline; the state file on the claim.
    let env = |name: &str| c["env"].as_array().unwrap().iter().find(|e| e["name"] == name).cloned();
    let key = env("CSS_PUSH_CALLBACK_KEY").expect("CSS_PUSH_CALLBACK_KEY");
    assert!(key.get("value").is_none());
    let secret = &key["valueFrom"]["secretKeyRef"];
    assert!(secret["name"].is_string() && secret["key"].is_string(), "{key}");
    assert_eq!(env("CSS_PUSH_STATE_FILE").expect("CSS_PUSH_STATE_FILE")["value"], STATE_FILE);
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == STATE_DIR)
        .expect("a state volume mount");
    assert_ne!(mount["readOnly"], true);
    let volume =
        pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == mount["name"]).expect("the mounted volume");
    let claim = volume["persistentVolumeClaim"]["claimName"].as_str().expect("a PersistentVolumeClaim");
    let pvc = object(&objects, &format!("PersistentVolumeClaim/{claim}"));
    assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteOnce"]));
}

/// The job Prometheus gives the targets of ServiceMonitor `name`: the value
/// of its `jobLabel` on Service `name`. The alert rules must select it.
fn scrape_job(objects: &BTreeMap<String, Value>, name: &str) -> String {
    let monitor = object(objects, &format!("ServiceMonitor/{name}"));
    let label = monitor["spec"]["jobLabel"].as_str().expect("a jobLabel: the Service's name must not name the job");
    let service = object(objects, &format!("Service/{name}"));
    let job = service["metadata"]["labels"][label].as_str();
    job.unwrap_or_else(|| panic!("the Service has no {label} label for the job")).to_owned()
}

#[test]
#[ignore = "needs kubectl: bash .ci/run installs it"]
fn kubernetes_service_monitor_scrapes_only_the_metrics_port_under_the_rules_job() {
    let objects = render("deploy/kubernetes");
    let service = object(&objects, "Service/css-push-exporter");
    let pod_labels = &object(&objects, "Deployment/css-push-exporter")["spec"]["template"]["metadata"]["labels"];
    assert!(selects(&service["spec"]["selector"], pod_labels), "the Service selects the pod");
    assert_eq!(
        service["spec"]["ports"],
        json!([
            {"name": "callback", "port": 9321, "targetPort": "callback", "protocol": "TCP"},
            {"name": "metrics", "port": 9322, "targetPort": "metrics", "protocol": "TCP"},
        ])
    );

    let monitor = object(&objects, "ServiceMonitor/css-push-exporter");
    assert!(selects(&monitor["spec"]["selector"]["matchLabels"], &service["metadata"]["labels"]));
    let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["port"], "metrics");
    assert_eq!(endpoints[0]["path"], "/metrics");

    let job = scrape_job(&objects, "css-push-exporter");
    assert_eq!(job, "css-push-exporter");
    let selector = format!("job=\"{job}\"");
    assert!(read("prometheus/alerts.yml").contains(&selector), "the rules do not select {selector}");
}

#[test]
#[ignore = "needs kubectl: bash .ci/run installs it"]
fn kubernetes_job_survives_a_name_prefix() {
    let objects = render_overlay("resources:\n  - {k8s}/base\nnamePrefix: acme-\n");
    // Named after the Service, the job would be acme-css-push-exporter and
    // every rule but CSSPushExporterAbsent silent.
    assert_eq!(scrape_job(&objects, "acme-css-push-exporter"), "css-push-exporter");
    let monitor = object(&objects, "ServiceMonitor/acme-css-push-exporter");
    let service = object(&objects, "Service/acme-css-push-exporter");
    assert!(selects(&monitor["spec"]["selector"]["matchLabels"], &service["metadata"]["labels"]));
    assert_eq!(monitor["spec"]["jobLabel"], "app.kubernetes.io/name");
}

/// One HTTP/1.1 request to a loopback port; the status code.
fn http_status(port: u16, method: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let body = if method == "POST" { "{}" } else { "" };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split_whitespace().nth(1).unwrap_or_else(|| panic!("no answer to {method} {path}"));
    status.parse().unwrap()
}

#[test]
#[ignore = "needs kubectl: bash .ci/run installs it"]
fn kubernetes_pod_arguments_serve_what_the_probes_monitor_and_ingress_expect() {
    let objects = render("deploy/kubernetes/overlays/ingress");
    // The container's arguments, its addresses moved to free loopback ports:
    // the port each container port name now stands for.
    let c = &object(&objects, "Deployment/css-push-exporter")["spec"]["template"]["spec"]["containers"][0];
    let mut ports = BTreeMap::new();
    let mut args = Vec::new();
    for arg in c["args"].as_array().expect("args").iter().map(|a| a.as_str().unwrap()) {
        let Some((flag, address)) = arg.split_once("=0.0.0.0:") else {
            args.push(arg.to_owned());
            continue;
        };
        let port: u64 = address.parse().unwrap();
        let named = c["ports"].as_array().unwrap().iter().find(|p| p["containerPort"] == port);
        let name = named.unwrap_or_else(|| panic!("{arg}: no container port {port}"))["name"].as_str().unwrap();
        let local = tools::free_port();
        ports.insert(name.to_owned(), local);
        args.push(format!("{flag}=127.0.0.1:{local}"));
    }
    let mut exporter = tools::ChildGuard::spawn(
        "css-push-exporter",
        Path::new(env!("CARGO_BIN_EXE_css-push-exporter")),
        &args,
        tempfile::tempdir().unwrap(),
    );
    let port = |name: &Value| *ports.get(name.as_str().unwrap()).unwrap_or_else(|| panic!("no listener for {name}"));

    // Up within 10 s: the readiness probe answers.
    let ready = &c["readinessProbe"]["httpGet"];
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port(&ready["port"]))).is_err() {
        exporter.assert_running();
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "not listening within 10 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for probe in [ready, &c["livenessProbe"]["httpGet"]] {
        assert_eq!(http_status(port(&probe["port"]), "GET", probe["path"].as_str().unwrap()), 200, "{probe}");
    }
    // The ServiceMonitor's port (through the Service) serves /metrics.
    let service = object(&objects, "Service/css-push-exporter");
    let target = |service_port: &Value| {
        let p = service["spec"]["ports"].as_array().unwrap().iter().find(|p| p["name"] == *service_port);
        p.unwrap_or_else(|| panic!("the Service has no port {service_port}"))["targetPort"].clone()
    };
    let endpoint = &object(&objects, "ServiceMonitor/css-push-exporter")["spec"]["endpoints"][0];
    let metrics = port(&target(&endpoint["port"]));
    assert_eq!(http_status(metrics, "GET", endpoint["path"].as_str().unwrap()), 200);
    assert_eq!(http_status(metrics, "POST", "/callback"), 404, "callbacks on the metrics port");
    // The Ingress's port takes callbacks and serves neither /metrics nor the
    // status page (it names streams).
    let ingress = object(&objects, "Ingress/css-push-exporter");
    let callback =
        port(&target(&ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["name"]));
    assert_ne!(callback, metrics);
    let status = http_status(callback, "POST", "/callback");
    assert!([400, 401].contains(&status), "an empty callback is refused, not missing: {status}");
    for path in ["/metrics", "/", "/api/v1/status"] {
        assert_eq!(http_status(callback, "GET", path), 404, "{path} on the callback port");
    }
    exporter.assert_running();
}

#[test]
#[ignore = "needs kubectl: bash .ci/run installs it"]
fn kubernetes_rules_and_dashboards_equal_their_sources() {
    let objects = render("deploy/kubernetes");
    for (name, source) in
        [("css-push-exporter", "prometheus/alerts.yml"), ("css-push-exporter-slo", "prometheus/slo_rules.yml")]
    {
        let rules = &object(&objects, &format!("PrometheusRule/{name}"))["spec"];
        let docs = yaml_docs(&read(source));
        assert_eq!(docs.len(), 1);
        assert!(*rules == docs[0], "PrometheusRule {name} differs from {source}: run python3 tools/generate.py");
    }

    let configmap = object(&objects, "ConfigMap/css-push-exporter-dashboards");
    assert_eq!(configmap["metadata"]["labels"]["grafana_dashboard"], "1", "the Grafana sidecar's label");
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(repo().join("grafana/dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            sources.insert(
                path.file_name().unwrap().to_str().unwrap().to_owned(),
                Value::String(std::fs::read_to_string(&path).unwrap()),
            );
        }
    }
    assert!(!sources.is_empty());
    let data: BTreeMap<String, Value> = configmap["data"].as_object().unwrap().clone().into_iter().collect();
    assert!(
        data == sources,
        "the dashboards ConfigMap differs from grafana/dashboards/: run python3 deploy/kubernetes/generate.py"
    );
}

#[test]
#[ignore = "needs kubectl: bash .ci/run installs it"]
fn kubernetes_ingress_overlay_exposes_only_the_callback_over_tls() {
    let objects = render("deploy/kubernetes/overlays/ingress");
    let base = render("deploy/kubernetes");
    assert!(base.iter().all(|(k, v)| objects.get(k) == Some(v)), "the overlay changes the base");
    let ingress = object(&objects, "Ingress/css-push-exporter");
    let tls_hosts: Vec<&Value> =
        ingress["spec"]["tls"].as_array().expect("tls").iter().flat_map(|t| t["hosts"].as_array().unwrap()).collect();
    let rules = ingress["spec"]["rules"].as_array().unwrap();
    assert!(!rules.is_empty());
    for rule in rules {
        assert!(tls_hosts.contains(&&rule["host"]), "{} without TLS", rule["host"]);
        for path in rule["http"]["paths"].as_array().unwrap() {
            assert_eq!(path["path"], "/callback");
            assert_eq!(path["pathType"], "Exact");
            assert_eq!(path["backend"]["service"], json!({"name": "css-push-exporter", "port": {"name": "callback"}}));
        }
    }
}

/// The label kube-prometheus-stack selects ServiceMonitors and
/// PrometheusRules by, as components/release-label sets it.
const RELEASE: (&str, &str) = ("release", "kube-prometheus-stack");

/// Asserts that `overlay` is `base` plus the objects `added`, with the
/// release label on the ServiceMonitor and the PrometheusRules and nothing
/// else changed: no other object, and no selector, carries it.
fn assert_base_with_release_label(base: &BTreeMap<String, Value>, overlay: &BTreeMap<String, Value>, added: &[&str]) {
    let extra: Vec<&str> = overlay.keys().map(String::as_str).filter(|k| !base.contains_key(*k)).collect();
    assert_eq!(extra, added);
    for (key, was) in base {
        let mut now = overlay.get(key).unwrap_or_else(|| panic!("the overlay drops {key}")).clone();
        if key.starts_with("ServiceMonitor/") || key.starts_with("PrometheusRule/") {
            let labels = now["metadata"]["labels"].as_object_mut().unwrap();
            assert_eq!(labels.remove(RELEASE.0), Some(json!(RELEASE.1)), "{key} lacks the release label");
        }
        assert!(now == *was, "the overlay changes {key} beyond the release label:\n{now:#}\nwas\n{was:#}");
    }
    for key in added {
        assert!(overlay[*key]["metadata"]["labels"].get(RELEASE.0).is_none(), "{key} has the release label");
    }
}

#[test]
#[ignore = "needs kubectl: bash .ci/run installs it"]
fn kubernetes_release_label_marks_only_the_monitor_and_the_rules() {
    let objects = render_overlay("resources:\n  - {k8s}/base\ncomponents:\n  - {k8s}/components/release-label\n");
    assert_base_with_release_label(&render("deploy/kubernetes"), &objects, &[]);
}

#[test]
#[ignore = "needs kubectl: bash .ci/run installs it"]
fn kubernetes_example_overlay_is_the_ingress_with_release_label_and_network_policy() {
    let objects = render("deploy/kubernetes/overlays/example");
    let ingress = render("deploy/kubernetes/overlays/ingress");
    assert_base_with_release_label(&ingress, &objects, &["NetworkPolicy/css-push-exporter"]);
}

/// Labels selecting a namespace by name, as Kubernetes labels every one.
fn namespace(name: &str) -> Value {
    json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}})
}

#[test]
#[ignore = "needs kubectl: bash .ci/run installs it"]
fn kubernetes_network_policy_lets_only_the_ingress_controller_and_prometheus_in() {
    let objects = render("deploy/kubernetes/overlays/example");
    let policy = &object(&objects, "NetworkPolicy/css-push-exporter")["spec"];
    let pod = &object(&objects, "Deployment/css-push-exporter")["spec"]["template"];
    assert!(selects(&policy["podSelector"]["matchLabels"], &pod["metadata"]["labels"]), "the policy selects the pod");
    // Egress listed without rules: the exporter opens no connections.
    assert_eq!(policy["policyTypes"], json!(["Ingress", "Egress"]));
    assert!(policy.get("egress").is_none());

    let mut prometheus = namespace("monitoring");
    prometheus["podSelector"] = json!({"matchLabels": {"app.kubernetes.io/name": "prometheus"}});
    assert_eq!(
        policy["ingress"],
        json!([
            {"from": [namespace("ingress-nginx")], "ports": [{"port": "callback", "protocol": "TCP"}]},
            {"from": [prometheus], "ports": [{"port": "metrics", "protocol": "TCP"}]},
        ])
    );
    // Those names are the container's ports, and "callback" is where the
    // Ingress sends CSS.
    let names: Vec<&Value> =
        pod["spec"]["containers"][0]["ports"].as_array().unwrap().iter().map(|p| &p["name"]).collect();
    assert_eq!(names, [&json!("callback"), &json!("metrics")]);
    let backend = &object(&objects, "Ingress/css-push-exporter")["spec"]["rules"][0]["http"]["paths"][0]["backend"];
    assert_eq!(backend["service"]["port"]["name"], "callback");
}

#[test]
#[ignore = "needs python3: bash .ci/run installs it"]
fn generated_manifests_are_up_to_date() {
    let python = require("python3");
    run_ok(&python, &["deploy/kubernetes/generate.py", "--check"]);
}
