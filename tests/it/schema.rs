//! The topology file's JSON Schema: generated from the parser's own types, committed beside the
//! shipped topologies (whose yaml-language-server modeline names it), and checked here by a
//! real JSON Schema validator (Python `jsonschema`, draft 2020-12).

use std::path::Path;

use crate::support::{notif_infra, project_root, python, text};

const MODELINE: &str = "# yaml-language-server: $schema=notif-infra.schema.json";

/// Validates each YAML file in `files` against `schema`; returns one line per file: `ok` or the
/// validator's first error, with the path of the value it concerns.
fn validate(schema: &Path, files: &[&Path]) -> Vec<String> {
    let script = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    errors = sorted(validator.iter_errors(yaml.safe_load(open(path))), key=lambda e: list(e.path))
    print("ok" if not errors else "/".join(map(str, errors[0].path)) + ": " + errors[0].message)
"#;
    let out = python().arg("-c").arg(script).arg(schema).args(files).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn the_schema_is_the_parsers_and_accepts_every_shipped_topology_and_refuses_a_misspelt_field() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = project_root().join("topologies");
    let committed = shipped.join("notif-infra.schema.json");
    let out = notif_infra(dir.path()).arg("schema").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(&committed).unwrap(),
        "topologies/notif-infra.schema.json is stale: run `notif-infra schema --out topologies/notif-infra.schema.json`"
    );

    let mut topologies: Vec<_> = std::fs::read_dir(&shipped)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    topologies.sort();
    assert!(topologies.len() >= 9);
    for t in &topologies {
        let first = std::fs::read_to_string(t).unwrap().lines().next().unwrap_or_default().to_string();
        assert_eq!(first, MODELINE, "{} names its schema", t.display());
    }
    let paths: Vec<&Path> = topologies.iter().map(|p| p.as_path()).collect();
    let verdicts = validate(&committed, &paths);
    assert!(verdicts.iter().all(|v| v == "ok"), "{verdicts:?}");

    // A misspelt field, a wrong type and a value outside an enum: each refused where it is.
    let dev = std::fs::read_to_string(shipped.join("dev.yaml")).unwrap();
    let cases = [
        (
            dev.replace("jetstream: true", "jetstrem: true"),
            "regions/main: Additional properties",
        ),
        (
            format!("{dev}streams:\n  S:\n    subjects: [s]\n    replicas: three\n"),
            "streams/S/replicas: 'three' is not of type",
        ),
        (
            format!("{dev}streams:\n  S:\n    subjects: [s]\n    storage: disk\n"),
            "streams/S/storage: 'disk' is not valid",
        ),
    ];
    let files: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, (yaml, _))| {
            let path = dir.path().join(format!("bad{i}.yaml"));
            std::fs::write(&path, yaml).unwrap();
            path
        })
        .collect();
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    for ((_, expected), verdict) in cases.iter().zip(validate(&committed, &paths)) {
        assert!(verdict.starts_with(expected), "expected {expected:?}, got {verdict:?}");
    }
}

#[test]
fn init_writes_the_schema_its_modeline_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = notif_infra(dir.path()).args(["init", "topology.yaml"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(dir.path().join("topology.yaml")).unwrap();
    assert!(written.starts_with(MODELINE), "{written}");
    let schema = dir.path().join("notif-infra.schema.json");
    assert_eq!(
        std::fs::read_to_string(&schema).unwrap(),
        std::fs::read_to_string(project_root().join("topologies/notif-infra.schema.json")).unwrap()
    );
    assert_eq!(validate(&schema, &[&dir.path().join("topology.yaml")]), ["ok"]);
}
