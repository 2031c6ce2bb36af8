//! A scanner's findings for an image (Grype's or Trivy's JSON report),
//! split by whether the package is one the image's processes reach, and an
//! OpenVEX document (v0.2.0) saying `not_affected` with the justification
//! `vulnerable_code_not_in_execute_path` for the findings in packages never
//! reached. The statement rests on static reachability alone and is never
//! made for a package a trace saw loaded.

use serde::{Deserialize, Serialize};

use super::BloatReport;

/// One finding: a vulnerability in a package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub id: String,
    pub package: String,
    pub version: String,
    pub severity: String,
    /// The scanner's package type: `deb` for Debian packages (Grype's
    /// `artifact.type`, Trivy's OS-package results); only those are
    /// matched with the run image's packages.
    pub ecosystem: String,
}

/// The findings, split.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Split {
    /// In packages the processes reach (or a trace saw loaded).
    pub reachable: Vec<Finding>,
    /// In run-image packages no process reaches.
    pub never_reached: Vec<Finding>,
    /// Not in a package the image's package database lists at that
    /// version: an app's own dependencies (npm, PyPI), or a scan of
    /// another version of the image.
    pub not_in_run_image: Vec<Finding>,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ReportError {
    pub file: String,
    pub message: String,
}

/// Grype's `matches[]`.
#[derive(Deserialize)]
struct Grype {
    matches: Vec<GrypeMatch>,
}

#[derive(Deserialize)]
struct GrypeMatch {
    vulnerability: GrypeVuln,
    artifact: GrypeArtifact,
}

#[derive(Deserialize)]
struct GrypeVuln {
    id: String,
    #[serde(default)]
    severity: String,
}

#[derive(Deserialize)]
struct GrypeArtifact {
    name: String,
    #[serde(default)]
    version: String,
    #[serde(rename = "type", default)]
    kind: String,
}

/// Trivy's `Results[].Vulnerabilities[]`.
#[derive(Deserialize)]
struct Trivy {
    #[serde(rename = "Results", default)]
    results: Vec<TrivyResult>,
}

#[derive(Deserialize)]
struct TrivyResult {
    #[serde(rename = "Class", default)]
    class: String,
    #[serde(rename = "Vulnerabilities", default)]
    vulnerabilities: Option<Vec<TrivyVuln>>,
}

#[derive(Deserialize)]
struct TrivyVuln {
    #[serde(rename = "VulnerabilityID")]
    id: String,
    #[serde(rename = "PkgName")]
    package: String,
    #[serde(rename = "InstalledVersion", default)]
    version: String,
    #[serde(rename = "Severity", default)]
    severity: String,
}

/// The findings of a Grype or Trivy JSON report (told apart by their
/// shape); `file` names it in errors.
pub fn findings(bytes: &[u8], file: &str) -> Result<Vec<Finding>, ReportError> {
    let err = |message: String| ReportError {
        file: file.to_owned(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| err(format!("not JSON: {e}")))?;
    let mut out: Vec<Finding> = if value.get("matches").is_some() {
        let report: Grype = serde_path_to_error::deserialize(value)
            .map_err(|e| err(format!("a Grype report, but {}: {}", e.path(), e.inner())))?;
        report
            .matches
            .into_iter()
            .map(|m| Finding {
                id: m.vulnerability.id,
                package: m.artifact.name,
                version: m.artifact.version,
                severity: m.vulnerability.severity,
                ecosystem: m.artifact.kind,
            })
            .collect()
    } else if value.get("Results").is_some() || value.get("SchemaVersion").is_some() {
        let report: Trivy = serde_path_to_error::deserialize(value)
            .map_err(|e| err(format!("a Trivy report, but {}: {}", e.path(), e.inner())))?;
        report
            .results
            .into_iter()
            .flat_map(|r| {
                let ecosystem = if r.class == "os-pkgs" { "deb" } else { "other" };
                r.vulnerabilities
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |v| Finding {
                        id: v.id,
                        package: v.package,
                        version: v.version,
                        severity: v.severity,
                        ecosystem: ecosystem.to_owned(),
                    })
            })
            .collect()
    } else {
        return Err(err(
            "neither a Grype report (matches) nor a Trivy report (Results)".into(),
        ));
    };
    out.sort();
    out.dedup();
    Ok(out)
}

/// Split `findings` by what `report` says of each package: a Debian
/// package's finding is in a reached package when any package of that name
/// is reached (or loaded), never reached when none is and one of them has
/// the finding's version; everything else is not the run image's.
pub fn split(findings: Vec<Finding>, report: &BloatReport) -> Split {
    let mut s = Split::default();
    for f in findings {
        let same: Vec<_> = report
            .packages
            .iter()
            .filter(|p| f.ecosystem == "deb" && p.name == f.package)
            .collect();
        if same.iter().any(|p| p.reachable || p.loaded == Some(true)) {
            s.reachable.push(f);
        } else if same.iter().any(|p| p.version == f.version) {
            s.never_reached.push(f);
        } else {
            s.not_in_run_image.push(f);
        }
    }
    s
}

/// An OpenVEX v0.2.0 document.
#[derive(Debug, Serialize)]
pub struct OpenVex {
    #[serde(rename = "@context")]
    pub context: &'static str,
    #[serde(rename = "@id")]
    pub id: String,
    pub author: String,
    pub role: String,
    pub timestamp: String,
    pub version: u32,
    pub tooling: String,
    pub statements: Vec<Statement>,
}

#[derive(Debug, Serialize)]
pub struct Statement {
    pub vulnerability: Vulnerability,
    pub timestamp: String,
    pub products: Vec<Product>,
    pub status: &'static str,
    pub justification: &'static str,
    pub impact_statement: String,
}

#[derive(Debug, Serialize)]
pub struct Vulnerability {
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct Product {
    #[serde(rename = "@id")]
    pub id: String,
    pub subcomponents: Vec<Subcomponent>,
}

#[derive(Debug, Serialize)]
pub struct Subcomponent {
    #[serde(rename = "@id")]
    pub id: String,
}

/// The VEX document for the never-reached findings of `report`'s image,
/// dated `timestamp` (RFC 3339). The product is the image by digest
/// (`pkg:oci/NAME@sha256:…`), the subcomponent the Debian package
/// (`pkg:deb/debian/NAME@VERSION`). Its `@id` is derived from its
/// statements, so the same findings give the same id.
pub fn openvex(split: &Split, report: &BloatReport, timestamp: &str) -> OpenVex {
    let name = report
        .image
        .rsplit('/')
        .next()
        .unwrap_or(&report.image)
        .split([':', '@'])
        .next()
        .unwrap_or("image")
        .trim_start_matches("oci");
    let name = if name.is_empty() { "image" } else { name };
    let product = format!(
        "pkg:oci/{}@{}",
        purl_escape(name),
        purl_escape(&report.digest)
    );
    let statements: Vec<Statement> = split
        .never_reached
        .iter()
        .map(|f| Statement {
            vulnerability: Vulnerability { name: f.id.clone() },
            timestamp: timestamp.to_owned(),
            products: vec![Product {
                id: product.clone(),
                subcomponents: report
                    .packages
                    .iter()
                    .filter(|p| p.name == f.package && p.version == f.version)
                    .map(|p| Subcomponent {
                        id: format!(
                            "pkg:deb/debian/{}@{}?arch={}",
                            purl_escape(&p.name),
                            purl_escape(&p.version),
                            purl_escape(&p.arch)
                        ),
                    })
                    .collect(),
            }],
            status: "not_affected",
            justification: "vulnerable_code_not_in_execute_path",
            impact_statement: format!(
                "No process of the image reaches any file of {} (static analysis of its processes' programs, interpreters and ELF dependencies by cascade bloat).",
                f.package
            ),
        })
        .collect();
    let ids: Vec<&str> = statements
        .iter()
        .map(|s| s.vulnerability.name.as_str())
        .collect();
    let id = crate::oci::Digest::of(format!("{product}\n{}", ids.join("\n")).as_bytes());
    OpenVex {
        context: "https://openvex.dev/ns/v0.2.0",
        id: format!("https://openvex.dev/docs/cascade/{}", id.hex()),
        author: "cascade bloat".into(),
        role: "Document Creator".into(),
        timestamp: timestamp.to_owned(),
        version: 1,
        tooling: format!("cascade {}", env!("CARGO_PKG_VERSION")),
        statements,
    }
}

/// Percent-encode what a purl may not hold as is (`:` stays, as the spec
/// allows it in versions; `+` and `~` of Debian versions are encoded).
fn purl_escape(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "-._:".contains(c) {
            out.push(c);
        } else {
            for b in c.to_string().bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grype_and_trivy_reports_read_alike_and_others_are_refused() {
        let grype = br#"{"matches":[{"vulnerability":{"id":"CVE-1","severity":"High"},"artifact":{"name":"libssl3","version":"3.0.11-1~deb12u2","type":"deb"}}],"source":{}}"#;
        let trivy = br#"{"SchemaVersion":2,"Results":[{"Target":"x","Vulnerabilities":[{"VulnerabilityID":"CVE-1","PkgName":"libssl3","InstalledVersion":"3.0.11-1~deb12u2","Severity":"HIGH"}]},{"Target":"y"}]}"#;
        let g = findings(grype, "g.json").unwrap();
        let t = findings(trivy, "t.json").unwrap();
        assert_eq!(
            (g[0].id.as_str(), g[0].package.as_str()),
            ("CVE-1", "libssl3")
        );
        assert_eq!(t[0].version, g[0].version);
        let e = findings(br#"{"x":1}"#, "x.json").unwrap_err();
        assert!(e.to_string().starts_with("x.json: neither"), "{e}");
        let e = findings(br#"{"matches":[{"artifact":{}}]}"#, "bad.json").unwrap_err();
        assert!(e.to_string().contains("matches[0]"), "{e}");
    }

    #[test]
    fn purls_encode_debian_versions() {
        assert_eq!(
            purl_escape("1:3.0.11-1~deb12u2+b1"),
            "1:3.0.11-1%7Edeb12u2%2Bb1"
        );
    }
}
