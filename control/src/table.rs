//! Server-side printing: a `meta.k8s.io/v1` `Table` for list and get requests that ask for one
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, kubectl's default for `get`).
//!
//! As the Kubernetes API server does for custom resources: the first column is Name, then the
//! CRD version's `additionalPrinterColumns` (an Age column when it declares none); `date`
//! cells are ages (`45s`, `3m20s`, `5d`), `string` cells the text of the first JSONPath result,
//! and missing values `null`. ConfigMap and Secret get the API server's built-in columns.
//! Each row carries the object's metadata as a `PartialObjectMetadata` unless the request says
//! `includeObject=None` (nothing) or `includeObject=Object` (the whole object).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sluice_crds::registry::KindInfo;

use crate::discovery::crd_version_of;
use crate::jsonpath::JsonPath;

/// What each row of a Table carries besides its cells (`?includeObject=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// The object's metadata as a `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Reads the `includeObject` query parameter (unknown values mean the default).
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// Whether an `Accept` header asks for a `meta.k8s.io/v1` Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let mut parts = media.split(';').map(str::trim);
        let ty = parts.next().unwrap_or("");
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let has = |k: &str, v: &str| params.iter().any(|(pk, pv)| pk.eq_ignore_ascii_case(k) && *pv == v);
        ty.eq_ignore_ascii_case("application/json") && has("as", "Table") && has("g", "meta.k8s.io") && has("v", "v1")
    })
}

/// One column: its definition and how its cells are computed.
#[derive(Clone, Debug)]
pub struct Column {
    /// Header, e.g. `Ready`.
    pub name: String,
    /// `string`, `date`, `integer`, `number` or `boolean`.
    pub ty: String,
    /// Format hint (`name` for the Name column).
    pub format: String,
    /// What the column shows.
    pub description: String,
    /// 0 for default output, higher for `-o wide` only.
    pub priority: i64,
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Path(Option<JsonPath>),
    /// Number of entries in `data` and `binaryData` (ConfigMap, Secret).
    DataCount,
}

impl Column {
    fn path(name: &str, ty: &str, description: &str, priority: i64, path: &str) -> Self {
        Self {
            name: name.into(),
            ty: ty.into(),
            format: String::new(),
            description: description.into(),
            priority,
            source: Source::Path(JsonPath::parse(path).ok()),
        }
    }

    fn definition(&self) -> Value {
        json!({
            "name": self.name, "type": self.ty, "format": self.format,
            "description": self.description, "priority": self.priority,
        })
    }

    fn cell(&self, obj: &Value, now: DateTime<Utc>) -> Value {
        let path = match &self.source {
            Source::DataCount => {
                let count = |f: &str| obj[f].as_object().map_or(0, |m| m.len());
                return json!(count("data") + count("binaryData"));
            }
            Source::Path(None) => return Value::Null,
            Source::Path(Some(p)) => p,
        };
        let Some(value) = path.find(obj).into_iter().next() else {
            return Value::Null;
        };
        match self.ty.as_str() {
            "date" => value
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map_or(Value::Null, |t| json!(human_age(now - t.with_timezone(&Utc)))),
            "integer" => value.as_i64().map_or(Value::Null, |n| json!(n)),
            "number" => value.as_f64().map_or(Value::Null, |n| json!(n)),
            "boolean" => value.as_bool().map_or(Value::Null, |b| json!(b)),
            _ => match value {
                Value::String(s) => json!(s),
                Value::Null => Value::Null,
                other => json!(other.to_string()),
            },
        }
    }
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Cannot be updated.";
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created.";

fn name_column() -> Column {
    Column {
        format: "name".into(),
        ..Column::path("Name", "string", NAME_DESCRIPTION, 0, ".metadata.name")
    }
}

fn age_column() -> Column {
    Column::path("Age", "date", AGE_DESCRIPTION, 0, ".metadata.creationTimestamp")
}

/// The columns of a kind: Name, then the CRD's printer columns (or Age), or the built-in
/// columns of ConfigMap (Data, Age) and Secret (Type, Data, Age).
pub fn columns(info: &KindInfo) -> Vec<Column> {
    let mut out = vec![name_column()];
    let data = Column {
        source: Source::DataCount,
        ..Column::path("Data", "string", "Number of entries in data and binaryData.", 0, ".")
    };
    match (info.group, info.kind) {
        ("", "ConfigMap") => out.extend([data, age_column()]),
        ("", "Secret") => out.extend([
            Column::path("Type", "string", "The type of the secret.", 0, ".type"),
            data,
            age_column(),
        ]),
        _ => {
            let declared = crd_version_of(info)
                .and_then(|v| v["additionalPrinterColumns"].as_array())
                .cloned()
                .unwrap_or_default();
            if declared.is_empty() {
                out.push(age_column());
            }
            for c in declared {
                let path = c["jsonPath"].as_str().unwrap_or_default();
                let description = c["description"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("Custom resource definition column (in JSONPath format): {path}"));
                out.push(Column {
                    format: c["format"].as_str().unwrap_or_default().into(),
                    ..Column::path(
                        c["name"].as_str().unwrap_or_default(),
                        c["type"].as_str().unwrap_or("string"),
                        &description,
                        c["priority"].as_i64().unwrap_or(0),
                        path,
                    )
                });
            }
        }
    }
    out
}

/// Ages as kubectl and the API server print them: seconds below 2 minutes, minutes and
/// seconds below 10 minutes, minutes below 3 hours, hours and minutes below 8 hours, hours below
/// 2 days, days and hours below 8 days, days below 2 years, years and days below 8 years.
pub fn human_age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds();
    if s < -1 {
        return "<invalid>".into();
    }
    let s = s.max(0);
    let (m, h) = (s / 60, s / 3600);
    let (days, years) = (h / 24, h / (24 * 365));
    let two = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit}{small}{small_unit}")
        }
    };
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => two(m, "m", s % 60, "s"),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 => two(h, "h", m % 60, "m"),
        _ if h < 48 => format!("{h}h"),
        _ if h < 24 * 8 => two(days, "d", h % 24, "h"),
        _ if h < 24 * 365 * 2 => format!("{days}d"),
        _ if h < 24 * 365 * 8 => two(years, "y", days % 365, "d"),
        _ => format!("{years}y"),
    }
}

/// The object of a row, as `include` asks.
fn row_object(obj: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(obj.clone()),
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        })),
    }
}

/// A `meta.k8s.io/v1` Table of `objects` of kind `info`, ages computed against `now`.
pub fn table(info: &KindInfo, objects: &[Value], include: IncludeObject, now: DateTime<Utc>) -> Value {
    let columns = columns(info);
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns.iter().map(|c| c.cell(obj, now)).collect();
            let mut row = json!({"cells": cells});
            if let Some(o) = row_object(obj, include) {
                row["object"] = o;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns.iter().map(Column::definition).collect::<Vec<_>>(),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use sluice_crds::registry::find_kind;

    use super::*;

    fn names(info: &KindInfo) -> Vec<String> {
        columns(info).into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn columns_follow_the_crds() {
        assert_eq!(
            names(find_kind("broker").unwrap()),
            ["Name", "URL", "Age", "Ready", "Reason", "Class"]
        );
        assert_eq!(
            names(find_kind("trigger").unwrap()),
            ["Name", "Broker", "Subscriber_URI", "Age", "Ready", "Reason"]
        );
        assert_eq!(
            names(find_kind("ksvc").unwrap()),
            ["Name", "URL", "LatestCreated", "LatestReady", "Ready", "Reason"]
        );
        assert_eq!(names(find_kind("configmap").unwrap()), ["Name", "Data", "Age"]);
        assert_eq!(names(find_kind("secret").unwrap()), ["Name", "Type", "Data", "Age"]);
        assert_eq!(columns(find_kind("broker").unwrap())[0].format, "name");
    }

    #[test]
    fn rows_evaluate_each_column() {
        let now: DateTime<Utc> = "2024-01-01T00:05:00Z".parse().unwrap();
        let broker = json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
            "metadata": {
                "name": "default", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z",
                "annotations": {"eventing.knative.dev/broker.class": "MTChannelBasedBroker"}
            },
            "spec": {},
            "status": {
                "address": {"url": "http://127.0.0.1:8080/default/default"},
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        });
        let unready = json!({
            "metadata": {"name": "other", "creationTimestamp": "not a time"},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "NotServedYet"}]}
        });
        let info = find_kind("broker").unwrap();
        let t = table(info, &[broker.clone(), unready], IncludeObject::Metadata, now);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["columnDefinitions"][2]["type"], "date");
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "default",
                "http://127.0.0.1:8080/default/default",
                "5m",
                "True",
                null,
                "MTChannelBasedBroker"
            ])
        );
        assert_eq!(t["rows"][1]["cells"], json!(["other", null, null, "False", "NotServedYet", null]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "default");
        assert!(t["rows"][0]["object"].get("spec").is_none());

        let full = table(info, std::slice::from_ref(&broker), IncludeObject::Object, now);
        assert_eq!(full["rows"][0]["object"], broker);
        let bare = table(info, &[broker], IncludeObject::None, now);
        assert!(bare["rows"][0].get("object").is_none());

        let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "eA==", "b": "eQ=="}});
        let t = table(find_kind("secret").unwrap(), &[secret], IncludeObject::None, now);
        assert_eq!(t["rows"][0]["cells"], json!(["s", "Opaque", 2, null]));
    }

    #[test]
    fn ages_read_like_kubectl() {
        let age = |s: i64| human_age(TimeDelta::seconds(s));
        assert_eq!(age(-5), "<invalid>");
        assert_eq!(age(-1), "0s");
        assert_eq!(age(45), "45s");
        assert_eq!(age(119), "119s");
        assert_eq!(age(200), "3m20s");
        assert_eq!(age(300), "5m");
        assert_eq!(age(3600), "60m");
        assert_eq!(age(4 * 3600 + 60), "4h1m");
        assert_eq!(age(30 * 3600), "30h");
        assert_eq!(age(3 * 86400 + 3600), "3d1h");
        assert_eq!(age(100 * 86400), "100d");
        assert_eq!(age(3 * 365 * 86400 + 86400), "3y1d");
        assert_eq!(age(10 * 365 * 86400), "10y");
    }

    #[test]
    fn accept_asks_for_a_table() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert!(wants_table(kubectl));
        assert!(!wants_table("application/json"));
        assert!(!wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io"));
        assert_eq!(IncludeObject::from_query(Some("None")), IncludeObject::None);
        assert_eq!(IncludeObject::from_query(None), IncludeObject::Metadata);
    }
}
