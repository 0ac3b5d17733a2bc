//! `sluice deploy`: the manifests that install Sluice on a cluster without Knative, as
//! multi-document YAML (the committed copy is `deploy/sluice.yaml`, beside the CRDs in
//! `deploy/crds.yaml`): the `sluice-system` namespace, a ServiceAccount and least-privilege RBAC
//! for the controller and for the data plane, their Deployments, and the data plane's Service.

use serde_json::{json, Value};

/// Namespace everything is installed into.
pub const NAMESPACE: &str = "sluice-system";
/// The image the Deployments run (built from the repository's `Dockerfile`).
pub const DEFAULT_IMAGE: &str = "ghcr.io/sluice-dev/sluice:latest";

/// The Knative groups Sluice serves.
const GROUPS: [&str; 5] = [
    "eventing.knative.dev",
    "messaging.knative.dev",
    "flows.knative.dev",
    "sources.knative.dev",
    "serving.knative.dev",
];

fn labels(component: &str) -> Value {
    json!({"app.kubernetes.io/name": "sluice", "app.kubernetes.io/component": component})
}

fn service_account(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)}})
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name, "labels": labels(name)}, "rules": rules})
}

fn cluster_role_binding(name: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name, "labels": labels(name)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]})
}

/// A Role in [`NAMESPACE`] for the service account of its name, and its binding.
fn namespaced_role(name: &str, rules: Value) -> [Value; 2] {
    [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)}, "rules": rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]}),
    ]
}

fn deployment(name: &str, replicas: u32, args: Value, ports: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels(name)},
            "template": {"metadata": {"labels": labels(name)},
                "spec": {"serviceAccountName": name,
                    "containers": [{"name": name, "image": "IMAGE", "args": args, "ports": ports,
                        "env": [{"name": "HOSTNAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                        "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]}}}]}}}})
}

/// Every manifest, in install order.
pub fn manifests(image: &str) -> Vec<Value> {
    let mut docs = vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": labels("namespace")}})];
    // The controller reads every Knative kind, writes their status, creates the children of
    // Sequences and Parallels, and elects a leader on a Lease.
    docs.push(service_account("sluice-controller"));
    docs.push(cluster_role(
        "sluice-controller",
        json!([
            {"apiGroups": GROUPS, "resources": ["*"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": GROUPS, "resources": ["*/status"], "verbs": ["get", "update", "patch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
            // Serving's settings (config-domain), and each Revision's Deployment and Service.
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
            // GitHubSources' access and secret tokens, for their webhooks on GitHub.
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            // Revisions' and ContainerSources' pods: why one does not run (crashes, images,
            // scheduling).
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            // SinkBindings' subjects: the other kinds with a pod template that Knative binds
            // (Deployments and Knative Services are above).
            {"apiGroups": ["apps"], "resources": ["statefulsets", "daemonsets", "replicasets"], "verbs": ["get", "list", "watch", "update", "patch"]},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch", "update", "patch"]},
        ]),
    ));
    docs.push(cluster_role_binding("sluice-controller"));
    // The data plane only reads what it serves.
    docs.push(service_account("sluice-dataplane"));
    docs.push(cluster_role(
        "sluice-dataplane",
        json!([
            {"apiGroups": ["eventing.knative.dev", "messaging.knative.dev", "flows.knative.dev"], "resources": ["brokers", "triggers", "channels", "inmemorychannels", "subscriptions", "sequences", "parallels"], "verbs": ["get", "list", "watch"]},
            // Knative Services: sinks' addresses, and the Routes and Revisions the gateway serves.
            {"apiGroups": ["serving.knative.dev"], "resources": ["services", "routes", "revisions"], "verbs": ["get", "list", "watch"]},
            // config-autoscaler, and Revisions' Deployments (scaled by the autoscaler) and Services.
            {"apiGroups": [""], "resources": ["configmaps", "services"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "patch"]},
            // The sources whose adapters it runs, and the Secrets their connections read.
            {"apiGroups": ["sources.knative.dev"], "resources": ["pingsources", "rabbitmqsources", "kafkasources", "githubsources", "awssqssources", "apiserversources"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
            // ApiServerSources watch as their `serviceAccountName`: what they see is what the
            // user granted that account, as with Knative's adapter, and nothing more here.
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
        ]),
    ));
    docs.push(cluster_role_binding("sluice-dataplane"));
    // In its own namespace, the data plane reports its source adapters' health in a ConfigMap
    // (`sluice-source-health`) that the controller reads.
    docs.extend(namespaced_role(
        "sluice-dataplane",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch", "update"]}]),
    ));
    let gateway = format!("http://sluice-dataplane.{NAMESPACE}.svc.cluster.local");
    docs.push(deployment(
        "sluice-controller",
        2,
        json!([
            "controller",
            "--gateway-url",
            gateway,
            "--lease-namespace",
            NAMESPACE,
            "--dataplane-namespace",
            NAMESPACE
        ]),
        json!([]),
    ));
    docs.push(deployment(
        "sluice-dataplane",
        1,
        json!(["dataplane", "--gateway", "0.0.0.0:8080", "--namespace", NAMESPACE]),
        json!([{"name": "http", "containerPort": 8080}]),
    ));
    docs.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sluice-dataplane", "namespace": NAMESPACE, "labels": labels("sluice-dataplane")},
        "spec": {"selector": labels("sluice-dataplane"), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}));
    for doc in docs.iter_mut().filter(|d| d["kind"] == "Deployment") {
        if let Some(containers) = doc["spec"]["template"]["spec"]["containers"].as_array_mut() {
            for c in containers {
                c["image"] = json!(image);
            }
        }
    }
    docs
}

/// The manifests as multi-document YAML, headed by how to install them.
pub fn yaml(image: &str) -> String {
    let mut out = String::from("# Sluice on a cluster without Knative: `kubectl apply -f deploy/` (crds.yaml, then this file).\n# Generated by `sluice deploy`; a test keeps this copy equal to it.\n");
    for doc in manifests(image) {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&doc).expect("manifests serialize"));
    }
    out
}
