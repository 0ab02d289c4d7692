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

#[test]
fn the_image_builds_with_the_command_ci_runs_and_runs_unprivileged() {
    let lines = dockerfile();
    let builds: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("RUN "))
        .flat_map(|run| run.split("&&").map(str::trim))
        .filter(|cmd| cmd.starts_with("cargo "))
        .collect();
    assert_eq!(builds, ["cargo build --release --locked"]);
    let ci = read(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == builds[0]),
        ".ci/run must run `{}` so CI proves the image's build",
        builds[0]
    );

    let has = |line: &str| lines.iter().any(|l| l == line);
    assert!(has("EXPOSE 9321"));
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
fn systemd_unit_keeps_state_and_key_where_the_readme_says() {
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

/// `kubectl kustomize dir`: the rendered objects, by "Kind/name".
fn render(dir: &str) -> BTreeMap<String, Value> {
    let kubectl = require("kubectl");
    let out = Command::new(&kubectl)
        .args(["kustomize", dir])
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", kubectl.display()));
    assert!(out.status.success(), "kubectl kustomize {dir}: {}", String::from_utf8_lossy(&out.stderr));
    let docs = yaml_docs(&String::from_utf8(out.stdout).unwrap());
    let objects: BTreeMap<String, Value> = docs
        .into_iter()
        .map(|o| (format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()), o))
        .collect();
    assert!(!objects.is_empty(), "kubectl kustomize {dir} rendered nothing");
    objects
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
    assert_eq!(c["ports"], json!([{"name": "http", "containerPort": 9321, "protocol": "TCP"}]));
    assert_eq!(c["readinessProbe"]["httpGet"], json!({"path": "/-/ready", "port": "http"}));
    assert_eq!(c["livenessProbe"]["httpGet"], json!({"path": "/-/healthy", "port": "http"}));

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

#[test]
#[ignore = "needs kubectl: bash .ci/run installs it"]
fn kubernetes_service_monitor_scrapes_the_named_port_of_the_service() {
    let objects = render("deploy/kubernetes");
    let service = object(&objects, "Service/css-push-exporter");
    let pod_labels = &object(&objects, "Deployment/css-push-exporter")["spec"]["template"]["metadata"]["labels"];
    assert!(selects(&service["spec"]["selector"], pod_labels), "the Service selects the pod");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http", "port": 9321, "targetPort": "http", "protocol": "TCP"}])
    );

    let monitor = object(&objects, "ServiceMonitor/css-push-exporter");
    assert!(selects(&monitor["spec"]["selector"]["matchLabels"], &service["metadata"]["labels"]));
    let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["port"], "http");
    assert_eq!(endpoints[0]["path"], "/metrics");
}

#[test]
#[ignore = "needs kubectl: bash .ci/run installs it"]
fn kubernetes_rules_and_dashboards_equal_their_sources() {
    let objects = render("deploy/kubernetes");
    let rules = &object(&objects, "PrometheusRule/css-push-exporter")["spec"];
    let alerts = yaml_docs(&read("prometheus/alerts.yml"));
    assert_eq!(alerts.len(), 1);
    assert!(
        *rules == alerts[0],
        "the PrometheusRule differs from prometheus/alerts.yml: run python3 deploy/kubernetes/generate.py"
    );

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
            assert_eq!(path["backend"]["service"], json!({"name": "css-push-exporter", "port": {"name": "http"}}));
        }
    }
}

#[test]
#[ignore = "needs python3: bash .ci/run installs it"]
fn generated_manifests_are_up_to_date() {
    let python = require("python3");
    run_ok(&python, &["deploy/kubernetes/generate.py", "--check"]);
}
