//! Validation of lbprobe's JSON outputs against their schemas under docs/schema/ (draft
//! 2020-12): `$ref`s to `defs.schema.json` and `run.schema.json` resolve beside the schema, from
//! disk.

use std::path::{Path, PathBuf};

use lbprobe::report::schema::Kind;
use serde_json::{json, Value};

pub fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema")
}

pub fn schema_path(kind: Kind) -> PathBuf {
    schema_dir().join(format!("{}.schema.json", kind.name()))
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The validator of `kind`'s schema.
pub fn validator(kind: Kind) -> jsonschema::Validator {
    let path = schema_path(kind);
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_base_uri(
            url::Url::from_file_path(&path)
                .unwrap_or_else(|()| panic!("{} is not an absolute path", path.display()))
                .to_string(),
        )
        .build(&read_json(&path))
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()))
}

/// Why `doc` fails `kind`'s schema, one line per error (empty when it validates).
pub fn errors(kind: Kind, doc: &Value) -> Vec<String> {
    validator(kind)
        .iter_errors(doc)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .take(20)
        .collect()
}

/// `doc` validates against `kind`'s schema and carries `kind`'s `schema_version`.
pub fn assert_valid(kind: Kind, doc: &Value) {
    let errors = errors(kind, doc);
    assert!(
        errors.is_empty(),
        "the {} output does not match docs/schema/{}.schema.json:\n{}",
        kind.name(),
        kind.name(),
        errors.join("\n")
    );
    assert_eq!(
        doc["schema_version"],
        json!(kind.version()),
        "{}",
        kind.name()
    );
}
