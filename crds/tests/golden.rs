//! The committed `crds/crds.yaml` must match the CRDs generated from the types. After an
//! intended change, rewrite it with `SLUICE_UPDATE_GOLDEN=1 cargo test -p sluice-crds --test golden`.

use std::path::PathBuf;

#[test]
fn crds_yaml_matches_the_golden_copy() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds.yaml");
    let generated = sluice_crds::crd::crds_yaml();
    if std::env::var_os("SLUICE_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("crds.yaml is writable");
        return;
    }
    let committed =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (generate it with SLUICE_UPDATE_GOLDEN=1)", path.display()));
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map_or_else(
                || {
                    format!(
                        "lengths differ ({} vs {} lines)",
                        committed.lines().count(),
                        generated.lines().count()
                    )
                },
                |(i, (a, b))| format!("line {}: committed {a:?}, generated {b:?}", i + 1),
            );
        panic!(
            "crds/crds.yaml is out of date ({first_difference}); rewrite it with \
             SLUICE_UPDATE_GOLDEN=1 cargo test -p sluice-crds --test golden"
        );
    }
}

#[test]
fn golden_copy_is_valid_yaml_with_every_crd() {
    let generated = sluice_crds::crd::crds_yaml();
    let mut kinds = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&generated) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).expect("valid yaml");
        assert_eq!(value["kind"].as_str(), Some("CustomResourceDefinition"));
        kinds.push(value["spec"]["names"]["kind"].as_str().unwrap_or_default().to_string());
    }
    let expected: Vec<String> = sluice_crds::registry::kinds()
        .iter()
        .filter(|k| k.is_knative())
        .map(|k| k.kind.to_string())
        .collect();
    assert_eq!(kinds, expected);
}
