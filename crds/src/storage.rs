//! Storage versions: a resource the API serves as two kinds but keeps once.
//!
//! As the Kubernetes API server does, Events are stored once, as core `v1` Event, and served
//! both as that and as `events.k8s.io/v1` Event: a write of either is converted to the stored
//! form, and every read, list and watch converts back to the kind asked for. An Event created
//! through one group is therefore read, listed, watched and deleted through the other. The
//! field mapping is Kubernetes' (`involvedObject` ↔ `regarding`, `message` ↔ `note`,
//! `reportingComponent` ↔ `reportingController`, `source`/`firstTimestamp`/`lastTimestamp`/
//! `count` ↔ their `deprecated*` fields).

use k8s_openapi::api::core::v1::EventSeries as CoreEventSeries;
use k8s_openapi::api::events::v1::EventSeries;
use serde_json::Value;

use crate::core::{Event, EventsV1Event};
use crate::registry::{find_by_type, KindInfo};
use crate::KnativeObject;

/// Whether objects of `info` are stored as another kind (and converted on every read and write).
pub fn is_converted(info: &KindInfo) -> bool {
    info.group == "events.k8s.io" && info.kind == "Event"
}

/// The kind whose form the store keeps objects of `info` in: itself for every kind but
/// `events.k8s.io/v1` Event, which is kept as core `v1` Event.
pub fn storage_kind(info: &'static KindInfo) -> &'static KindInfo {
    match is_converted(info) {
        true => find_by_type("v1", "Event").expect("core Event is registered"),
        false => info,
    }
}

/// An object in the form the store keeps (see [`storage_kind`]).
pub fn into_storage(obj: KnativeObject) -> KnativeObject {
    match obj {
        KnativeObject::EventsV1Event(e) => KnativeObject::Event(core_event(e)),
        other => other,
    }
}

/// A stored object as the kind `info` presents it: converted when `info` is kept as another
/// kind, else unchanged. A stored object that does not decode (which the store's admission
/// rules out) is answered as stored.
pub fn present(info: &KindInfo, stored: Value) -> Value {
    if !is_converted(info) {
        return stored;
    }
    match serde_json::from_value::<Event>(stored.clone()) {
        Ok(core) => serde_json::to_value(events_v1_event(core)).expect("events serialize"),
        Err(_) => stored,
    }
}

/// Core `v1` Event from `events.k8s.io/v1` Event.
pub fn core_event(e: EventsV1Event) -> Event {
    Event {
        metadata: e.metadata,
        involved_object: e.regarding.unwrap_or_default(),
        related: e.related,
        reason: e.reason,
        message: e.note,
        type_: e.type_,
        action: e.action,
        event_time: e.event_time,
        reporting_component: e.reporting_controller,
        reporting_instance: e.reporting_instance,
        series: e.series.map(|s| CoreEventSeries {
            count: Some(s.count),
            last_observed_time: Some(s.last_observed_time),
        }),
        source: e.deprecated_source,
        first_timestamp: e.deprecated_first_timestamp,
        last_timestamp: e.deprecated_last_timestamp,
        count: e.deprecated_count,
    }
}

/// `events.k8s.io/v1` Event from core `v1` Event. A series needs both its count and its last
/// observation time in `events.k8s.io`; a core series missing one is left out.
pub fn events_v1_event(e: Event) -> EventsV1Event {
    EventsV1Event {
        metadata: e.metadata,
        regarding: Some(e.involved_object),
        related: e.related,
        reason: e.reason,
        note: e.message,
        type_: e.type_,
        action: e.action,
        event_time: e.event_time,
        reporting_controller: e.reporting_component,
        reporting_instance: e.reporting_instance,
        series: e.series.and_then(|s| {
            Some(EventSeries {
                count: s.count?,
                last_observed_time: s.last_observed_time?,
            })
        }),
        deprecated_source: e.source,
        deprecated_first_timestamp: e.first_timestamp,
        deprecated_last_timestamp: e.last_timestamp,
        deprecated_count: e.count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find_kind;
    use serde_json::json;

    fn events_v1() -> &'static KindInfo {
        find_by_type("events.k8s.io/v1", "Event").unwrap()
    }

    #[test]
    fn events_v1_is_stored_as_core() {
        assert_eq!(storage_kind(events_v1()).api_version(), "v1");
        let broker = find_kind("Broker").unwrap();
        assert!(std::ptr::eq(storage_kind(broker), broker));
        assert!(!is_converted(storage_kind(events_v1())));
    }

    #[test]
    fn fields_map_as_in_kubernetes_both_ways() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "b.1", "namespace": "default", "labels": {"a": "b"}},
            "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "sluice.dev/broker",
            "reportingInstance": "sluice-1", "action": "Reconcile", "reason": "Ready", "type": "Normal",
            "regarding": {"kind": "Broker", "name": "b", "namespace": "default"},
            "related": {"kind": "Trigger", "name": "t"}, "note": "b is ready",
            "series": {"count": 3, "lastObservedTime": "2024-01-01T00:01:00.000000Z"},
            "deprecatedSource": {"component": "sluice"}, "deprecatedCount": 4,
            "deprecatedFirstTimestamp": "2024-01-01T00:00:00Z", "deprecatedLastTimestamp": "2024-01-01T00:02:00Z",
        });
        let KnativeObject::Event(core) = into_storage(KnativeObject::from_value(v1.clone()).unwrap()) else {
            panic!("stored as core")
        };
        let stored = serde_json::to_value(&core).unwrap();
        assert_eq!(
            stored,
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "b.1", "namespace": "default", "labels": {"a": "b"}},
                "eventTime": "2024-01-01T00:00:00.000000Z", "reportingComponent": "sluice.dev/broker",
                "reportingInstance": "sluice-1", "action": "Reconcile", "reason": "Ready", "type": "Normal",
                "involvedObject": {"kind": "Broker", "name": "b", "namespace": "default"},
                "related": {"kind": "Trigger", "name": "t"}, "message": "b is ready",
                "series": {"count": 3, "lastObservedTime": "2024-01-01T00:01:00.000000Z"},
                "source": {"component": "sluice"}, "count": 4,
                "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:02:00Z",
            })
        );
        assert_eq!(present(events_v1(), stored.clone()), v1, "back again, unchanged");
        let core_kind = storage_kind(events_v1());
        assert_eq!(present(core_kind, stored.clone()), stored, "core is served as stored");
    }

    #[test]
    fn other_kinds_are_stored_as_they_are() {
        let broker = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "b"}});
        let obj = into_storage(KnativeObject::from_value(broker).unwrap());
        assert_eq!(obj.kind_info().kind, "Broker");
        let lone = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {},
                          "series": {"count": 2}});
        let presented = present(events_v1(), lone);
        assert_eq!(presented["regarding"], json!({}));
        assert!(
            presented.get("series").is_none(),
            "a series without its time is left out: {presented}"
        );
    }
}
