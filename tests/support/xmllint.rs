//! `xmllint --schema tests/junit.xsd`: the JUnit schema Jenkins' xunit plugin reads (see the
//! file's header). xmllint missing is a failure, never a skip (scripts/test.sh installs
//! libxml2-utils).

use std::process::Command;

pub const XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/junit.xsd");

/// `Err` with xmllint's words when `xml` does not validate.
pub fn validate(xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("report.xml");
    std::fs::write(&file, xml).expect("write the report");
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema", XSD])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "xmllint could not be run ({e}): install libxml2-utils \
                 (apt-get install libxml2-utils; scripts/test.sh does)"
            )
        });
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        assert!(said.contains("validates"), "xmllint said: {said}");
        Ok(())
    } else {
        assert!(
            !said.contains("failed to compile"),
            "tests/junit.xsd itself is broken: {said}"
        );
        Err(said)
    }
}

pub fn assert_valid(what: &str, xml: &str) {
    if let Err(why) = validate(xml) {
        panic!("{what}: the JUnit report does not validate against tests/junit.xsd:\n{why}\n{xml}");
    }
}
