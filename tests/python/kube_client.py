"""End-to-end check of `sluice run` with the official Python Kubernetes client.

Run by tests/python_client.rs as

    python kube_client.py --kubeconfig DIR/kubeconfig --broker-url URL

where URL is the address the Broker `py-broker` in namespace `default` must report. Every step
prints a line starting with `ok:`; the first deviation prints `FAIL: <step>: expected ...,
got ...` and exits 1. The last line of a run that passed is `python client: all steps passed`.
"""

import argparse
import sys
import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

GROUP = "eventing.knative.dev"
VERSION = "v1"
NS = "default"
LABELS = {"app": "py-client"}


class Failed(Exception):
    pass


def ok(message):
    print(f"ok: {message}", flush=True)


def expect(step, expected, got):
    if expected != got:
        raise Failed(f"{step}: expected {expected!r}, got {got!r}")


def expect_true(step, condition, what):
    if not condition:
        raise Failed(f"{step}: expected {what}")


def api_error(step, expected_status, call):
    """Runs `call`, which must fail with an ApiException of `expected_status`; returns it."""
    try:
        result = call()
    except ApiException as e:
        expect(f"{step} (HTTP status)", expected_status, e.status)
        return e
    raise Failed(f"{step}: expected ApiException {expected_status}, got success: {result!r}")


def ready(obj):
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def rv(obj):
    return int(obj["metadata"]["resourceVersion"])


class Watcher(threading.Thread):
    """A watch of a list function from `resource_version` that records (type, name, rv) until it
    has seen DELETED of `until` (or its timeout)."""

    def __init__(self, list_func, args, resource_version, until, name_of):
        super().__init__(daemon=True)
        self.list_func = list_func
        self.args = args
        self.resource_version = resource_version
        self.until = until
        self.name_of = name_of
        self.events = []
        self.error = None

    def run(self):
        w = watch.Watch()
        try:
            for event in w.stream(
                self.list_func,
                *self.args,
                resource_version=self.resource_version,
                timeout_seconds=30,
            ):
                name, version = self.name_of(event["object"])
                self.events.append((event["type"], name, int(version)))
                if event["type"] == "DELETED" and name == self.until:
                    w.stop()
        except Exception as e:  # reported by the main thread
            self.error = e

    def result(self, step):
        self.join(timeout=35)
        expect_true(step, not self.is_alive(), "the watch to end after the DELETED event")
        if self.error is not None:
            raise Failed(f"{step}: the watch failed: {self.error!r}")
        return self.events


def custom_name(obj):
    return obj["metadata"]["name"], obj["metadata"]["resourceVersion"]


def typed_name(obj):
    return obj.metadata.name, obj.metadata.resource_version


def check_watch(step, events, name):
    """The events of `name`: ADDED first, then MODIFIED ones, then DELETED, with increasing
    resourceVersions."""
    mine = [(t, v) for (t, n, v) in events if n == name]
    kinds = [t for (t, _) in mine]
    expect_true(step, len(kinds) >= 3, f"ADDED, MODIFIED..., DELETED for {name}; got {kinds}")
    expect(f"{step}: first event of {name}", "ADDED", kinds[0])
    expect(f"{step}: last event of {name}", "DELETED", kinds[-1])
    expect(f"{step}: events between of {name}", {"MODIFIED"}, set(kinds[1:-1]))
    versions = [v for (_, v) in mine]
    expect_true(step, versions == sorted(set(versions)), f"increasing resourceVersions; got {versions}")
    return kinds


def custom_objects(api, broker_url):
    co = client.CustomObjectsApi(api)

    # A list carries the resourceVersion to watch from.
    listed = co.list_namespaced_custom_object(GROUP, VERSION, NS, "triggers")
    expect("list triggers: kind", "TriggerList", listed.get("kind"))
    expect("list triggers: items", [], listed.get("items"))
    start = listed["metadata"]["resourceVersion"]
    expect_true("list triggers", start.isdigit(), f"a numeric list resourceVersion, got {start!r}")
    ok(f"list_namespaced_custom_object triggers: empty, resourceVersion {start}")

    watcher = Watcher(
        co.list_namespaced_custom_object,
        (GROUP, VERSION, NS, "triggers"),
        start,
        "py-trigger",
        custom_name,
    )
    watcher.start()

    broker = co.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        "brokers",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Broker",
            "metadata": {"name": "py-broker", "labels": LABELS},
        },
    )
    expect("create broker: name", "py-broker", broker["metadata"]["name"])
    expect("create broker: namespace", NS, broker["metadata"]["namespace"])
    for field in ("uid", "resourceVersion", "creationTimestamp"):
        expect_true("create broker", field in broker["metadata"], f"metadata.{field} in {broker['metadata']}")
    ok(f"create_namespaced_custom_object broker py-broker (resourceVersion {broker['metadata']['resourceVersion']})")

    trigger_body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Trigger",
        "metadata": {"name": "py-trigger", "labels": LABELS},
        "spec": {
            "broker": "py-broker",
            "filter": {"attributes": {"type": "com.example.python"}},
            "subscriber": {"uri": "http://127.0.0.1:9/python"},
        },
    }
    trigger = co.create_namespaced_custom_object(GROUP, VERSION, NS, "triggers", trigger_body)
    expect("create trigger: spec.broker", "py-broker", trigger["spec"]["broker"])
    other = dict(trigger_body, metadata={"name": "py-other"})
    co.create_namespaced_custom_object(GROUP, VERSION, NS, "triggers", other)
    ok("create_namespaced_custom_object triggers py-trigger (labelled) and py-other (not)")

    # Creating it again is 409 AlreadyExists.
    e = api_error(
        "create an existing trigger",
        409,
        lambda: co.create_namespaced_custom_object(GROUP, VERSION, NS, "triggers", trigger_body),
    )
    ok(f"create of an existing trigger: ApiException {e.status}")

    selected = co.list_namespaced_custom_object(GROUP, VERSION, NS, "triggers", label_selector="app=py-client")
    names = sorted(i["metadata"]["name"] for i in selected["items"])
    expect("list triggers with label_selector app=py-client", ["py-trigger"], names)
    everything = co.list_namespaced_custom_object(GROUP, VERSION, NS, "triggers")
    names = sorted(i["metadata"]["name"] for i in everything["items"])
    expect("list all triggers", ["py-other", "py-trigger"], names)
    brokers = co.list_namespaced_custom_object(GROUP, VERSION, NS, "brokers", label_selector="app=py-client")
    expect("list brokers with label_selector", ["py-broker"], [i["metadata"]["name"] for i in brokers["items"]])
    named = co.list_cluster_custom_object(GROUP, VERSION, "triggers", field_selector="metadata.name=py-other")
    expect("list_cluster_custom_object with field_selector", ["py-other"], [i["metadata"]["name"] for i in named["items"]])
    ok("list_namespaced_custom_object with label_selector: [py-trigger]; list_cluster_custom_object with field_selector: [py-other]")

    got = co.get_namespaced_custom_object(GROUP, VERSION, NS, "triggers", "py-trigger")
    expect("get trigger: subscriber", "http://127.0.0.1:9/python", got["spec"]["subscriber"]["uri"])
    # Knative labels a trigger with its broker.
    expect("get trigger: labels", dict(LABELS, **{"eventing.knative.dev/broker": "py-broker"}), got["metadata"]["labels"])
    e = api_error("get a missing trigger", 404, lambda: co.get_namespaced_custom_object(GROUP, VERSION, NS, "triggers", "nope"))
    ok(f"get_namespaced_custom_object py-trigger; a missing one is ApiException {e.status}")

    # The control plane marks both Ready (the broker with its address).
    deadline = time.monotonic() + 15
    while True:
        got = co.get_namespaced_custom_object(GROUP, VERSION, NS, "triggers", "py-trigger")
        b = co.get_namespaced_custom_object(GROUP, VERSION, NS, "brokers", "py-broker")
        if ready(got) and ready(b):
            break
        if time.monotonic() > deadline:
            raise Failed(f"wait for Ready: expected Ready=True on both, got trigger {got.get('status')} broker {b.get('status')}")
        time.sleep(0.1)
    expect("broker status.address.url", broker_url, b["status"]["address"]["url"])
    ok(f"trigger py-trigger and broker py-broker Ready=True; broker address {broker_url}")

    # Merge patch (the client's default content type for custom objects).
    before_patch = got
    patched = co.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        "triggers",
        "py-trigger",
        {"metadata": {"labels": {"tier": "gold"}}, "spec": {"subscriber": {"uri": "http://127.0.0.1:9/patched"}}},
    )
    expect("merge patch: label tier", "gold", patched["metadata"]["labels"].get("tier"))
    expect("merge patch: label app kept", "py-client", patched["metadata"]["labels"].get("app"))
    expect("merge patch: subscriber", "http://127.0.0.1:9/patched", patched["spec"]["subscriber"]["uri"])
    expect("merge patch: spec.broker kept", "py-broker", patched["spec"]["broker"])
    expect_true("merge patch", rv(patched) > rv(before_patch), "a newer resourceVersion")
    ok("patch_namespaced_custom_object (merge patch): label tier=gold, new subscriber")

    # A JSON patch, when the caller names its content type.
    patched = co.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        "triggers",
        "py-trigger",
        [{"op": "add", "path": "/metadata/annotations", "value": {"py": "json-patch"}}],
        _content_type="application/json-patch+json",
    )
    expect("JSON patch: annotations", {"py": "json-patch"}, patched["metadata"].get("annotations"))
    ok("patch_namespaced_custom_object (JSON patch): annotation added")

    # Server-side apply (the body goes as JSON, which is YAML) changes the object in place.
    applied = co.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        "triggers",
        "py-trigger",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Trigger",
            "metadata": {"name": "py-trigger", "labels": {"applied": "yes"}},
        },
        field_manager="python",
        _content_type="application/apply-patch+yaml",
    )
    expect("server-side apply: label", "yes", applied["metadata"]["labels"].get("applied"))
    ok("patch_namespaced_custom_object (server-side apply, field_manager=python): label applied=yes")

    # A dry run never writes (Kubernetes answers with the object it would have stored;
    # Sluice, which has no dry run, refuses it with 400).
    try:
        co.create_namespaced_custom_object(
            GROUP,
            VERSION,
            NS,
            "brokers",
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Broker", "metadata": {"name": "py-dry-run"}},
            dry_run="All",
        )
        outcome = "answered"
    except ApiException as e:
        expect("dry run refused", 400, e.status)
        outcome = f"refused with ApiException {e.status}"
    api_error("get after a dry run", 404, lambda: co.get_namespaced_custom_object(GROUP, VERSION, NS, "brokers", "py-dry-run"))
    ok(f"create_namespaced_custom_object with dry_run=All {outcome}; nothing was created")

    # The status subresource: only status changes, whatever else the patch says.
    status_patch = {
        "spec": {"broker": "ignored"},
        "status": {"annotations": {"python": "status-patched"}},
    }
    after = co.patch_namespaced_custom_object_status(GROUP, VERSION, NS, "triggers", "py-trigger", status_patch)
    expect("status patch: status.annotations", {"python": "status-patched"}, after["status"].get("annotations"))
    expect("status patch: spec untouched", "py-broker", after["spec"]["broker"])
    read_back = co.get_namespaced_custom_object_status(GROUP, VERSION, NS, "triggers", "py-trigger")
    expect("status read back", {"python": "status-patched"}, read_back["status"].get("annotations"))
    expect("status read back: spec", "py-broker", read_back["spec"]["broker"])
    ok("patch_namespaced_custom_object_status: status.annotations set, spec untouched; get_namespaced_custom_object_status reads it back")

    # A replace with the resourceVersion from before the patches is a 409 Conflict.
    stale = dict(before_patch)
    stale["spec"] = dict(before_patch["spec"], subscriber={"uri": "http://127.0.0.1:9/stale"})
    e = api_error(
        "replace with a stale resourceVersion",
        409,
        lambda: co.replace_namespaced_custom_object(GROUP, VERSION, NS, "triggers", "py-trigger", stale),
    )
    expect_true("409 body", "Conflict" in (e.body or ""), f"reason Conflict in the body, got {e.body!r}")
    # The trigger's controller writes its status too: a replace that loses that race is a 409,
    # and the client reads again and retries, as Kubernetes clients do.
    for attempt in range(20):
        current = co.get_namespaced_custom_object(GROUP, VERSION, NS, "triggers", "py-trigger")
        expect("after the 409", "http://127.0.0.1:9/patched", current["spec"]["subscriber"]["uri"])
        fresh = dict(current)
        fresh["spec"] = dict(current["spec"], subscriber={"uri": "http://127.0.0.1:9/replaced"})
        try:
            replaced = co.replace_namespaced_custom_object(GROUP, VERSION, NS, "triggers", "py-trigger", fresh)
            break
        except ApiException as conflict:
            if conflict.status != 409 or attempt == 19:
                raise
    expect("replace with the current resourceVersion", "http://127.0.0.1:9/replaced", replaced["spec"]["subscriber"]["uri"])
    ok(f"replace_namespaced_custom_object with a stale resourceVersion: ApiException {e.status}; with the current one: replaced")

    deleted = co.delete_namespaced_custom_object(GROUP, VERSION, NS, "triggers", "py-trigger")
    expect_true("delete trigger", isinstance(deleted, dict), f"a JSON answer, got {deleted!r}")
    api_error("get after delete", 404, lambda: co.get_namespaced_custom_object(GROUP, VERSION, NS, "triggers", "py-trigger"))
    e = api_error("delete again", 404, lambda: co.delete_namespaced_custom_object(GROUP, VERSION, NS, "triggers", "py-trigger"))
    ok("delete_namespaced_custom_object py-trigger; get and a second delete are ApiException 404")

    kinds = check_watch("watch triggers", watcher.result("watch triggers"), "py-trigger")
    ok(f"watch from resourceVersion {start} saw py-trigger: {' '.join(kinds)}")

    co.delete_namespaced_custom_object(GROUP, VERSION, NS, "triggers", "py-other")
    co.delete_namespaced_custom_object(GROUP, VERSION, NS, "brokers", "py-broker")
    left = co.list_namespaced_custom_object(GROUP, VERSION, NS, "brokers")
    expect_true("brokers after cleanup", all(not i["metadata"]["name"].startswith("py-") for i in left["items"]), f"no py-* broker in {left['items']}")
    ok("deleted py-other and py-broker")


def config_maps(api):
    core = client.CoreV1Api(api)
    listed = core.list_namespaced_config_map(NS)
    start = listed.metadata.resource_version
    ok(f"list_namespaced_config_map: {len(listed.items)} item(s), resourceVersion {start}")

    watcher = Watcher(core.list_namespaced_config_map, (NS,), start, "py-config", typed_name)
    watcher.start()

    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py-config", labels=LABELS),
        data={"greeting": "hello"},
    )
    created = core.create_namespaced_config_map(NS, body)
    expect("create configmap: data", {"greeting": "hello"}, created.data)
    expect_true("create configmap", created.metadata.creation_timestamp is not None, "metadata.creationTimestamp")
    ok(f"create_namespaced_config_map py-config (uid {created.metadata.uid})")

    read = core.read_namespaced_config_map("py-config", NS)
    expect("read configmap", {"greeting": "hello"}, read.data)
    selected = core.list_namespaced_config_map(NS, label_selector="app=py-client")
    expect("list configmaps by label", ["py-config"], [c.metadata.name for c in selected.items])
    ok("read_namespaced_config_map and list_namespaced_config_map with label_selector")

    # The client's default content type for core kinds is a JSON patch; a merge patch needs
    # to be named.
    patched = core.patch_namespaced_config_map(
        "py-config", NS, [{"op": "add", "path": "/data/colour", "value": "blue"}]
    )
    expect("JSON patch of configmap", {"greeting": "hello", "colour": "blue"}, patched.data)
    patched = core.patch_namespaced_config_map(
        "py-config",
        NS,
        {"data": {"greeting": "hi"}},
        _content_type="application/merge-patch+json",
    )
    expect("merge patch of configmap", {"greeting": "hi", "colour": "blue"}, patched.data)
    # A dict with the default content type goes as a strategic merge patch.
    patched = core.patch_namespaced_config_map("py-config", NS, {"data": {"size": "3"}})
    expect("strategic merge patch of configmap", {"greeting": "hi", "colour": "blue", "size": "3"}, patched.data)
    ok("patch_namespaced_config_map: JSON patch (a list), merge patch, strategic merge patch (a dict)")

    stale = read
    stale.data = {"greeting": "stale"}
    e = api_error("replace configmap with a stale resourceVersion", 409, lambda: core.replace_namespaced_config_map("py-config", NS, stale))
    patched.data["greeting"] = "replaced"
    replaced = core.replace_namespaced_config_map("py-config", NS, patched)
    expect("replace configmap", {"greeting": "replaced", "colour": "blue", "size": "3"}, replaced.data)
    ok(f"replace_namespaced_config_map: stale is ApiException {e.status}, current replaces")

    core.delete_namespaced_config_map("py-config", NS)
    api_error("read configmap after delete", 404, lambda: core.read_namespaced_config_map("py-config", NS))
    ok("delete_namespaced_config_map; read after it is ApiException 404")

    kinds = check_watch("watch configmaps", watcher.result("watch configmaps"), "py-config")
    ok(f"watch of configmaps (typed V1ConfigMap events) saw py-config: {' '.join(kinds)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--broker-url", required=True, help="status.address.url py-broker must report")
    args = parser.parse_args()

    config.load_kube_config(config_file=args.kubeconfig)
    api = client.ApiClient()
    ok(f"load_kube_config: server {api.configuration.host}")
    try:
        version = client.VersionApi(api).get_code()
        ok(f"VersionApi.get_code: {version.git_version}")
        custom_objects(api, args.broker_url)
        config_maps(api)
    except Failed as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    except ApiException as e:
        print(f"FAIL: unexpected ApiException {e.status} {e.reason}: {e.body}", flush=True)
        sys.exit(1)
    print("python client: all steps passed", flush=True)


if __name__ == "__main__":
    main()
