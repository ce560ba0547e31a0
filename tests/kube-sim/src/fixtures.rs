//! Builders of the objects tests seed most: a Deployment of `leannodes demo-backend` pods and its Service.

use serde_json::{Value, json};

/// A Deployment `name` in `default` whose pods run `demo-backend --port 8080 --name NAME`, labelled
/// `app: NAME`, with these pod template annotations (e.g. a failure to inject).
pub fn deployment(name: &str, replicas: i64, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {"containers": [{"name": "main", "image": "leannodes", "args": ["demo-backend", "--port", "8080", "--name", name], "ports": [{"containerPort": 8080}]}]},
            },
        },
    })
}

/// A Service `name` in `default` selecting `app: NAME`, port 80 to 8080.
pub fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}})
}
