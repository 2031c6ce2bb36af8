//! Pipenv's lock as pip installs it: the `default` packages of a
//! Pipfile.lock become pinned, hashed requirements, so Pipenv itself is
//! not needed, and the Python version it asks for.

use std::fmt::Write as _;

use cascade_sdk::BuildpackError;

/// A Pipfile.lock's `default` packages as a pip requirements file: its
/// sources as `--index-url` (the first) and `--extra-index-url`, then each
/// pin with its markers and hashes (so pip runs in hash-checking mode when
/// the entries have them). Every requirement is parsed as PEP 508 and
/// written back from what was parsed, so nothing in the lock (a name, a
/// version, a marker with a line break) can reach pip as an option of its
/// own. Entries pip cannot take from a lock exactly (a VCS checkout, a
/// local path, an editable) are refused by name.
pub fn requirements(text: &str) -> Result<String, BuildpackError> {
    let bad = |what: String| BuildpackError::new(format!("Pipfile.lock: {what}"));
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let default = doc
        .get("default")
        .and_then(|d| d.as_object())
        .ok_or_else(|| bad("no \"default\" section".into()))?;
    let mut out = String::from("# generated from Pipfile.lock by cascade/python\n");
    let sources = doc
        .pointer("/_meta/sources")
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    for (i, source) in sources.iter().enumerate() {
        let url = source
            .get("url")
            .and_then(|u| u.as_str())
            .filter(|u| {
                (u.starts_with("https://") || u.starts_with("http://"))
                    && !u.chars().any(|c| c.is_whitespace() || c.is_control())
            })
            .ok_or_else(|| bad(format!("_meta.sources[{i}].url: not an http(s) URL")))?;
        let option = if i == 0 {
            "--index-url"
        } else {
            "--extra-index-url"
        };
        let _ = writeln!(out, "{option} {url}");
    }
    let mut with_hashes = 0;
    for (name, entry) in default {
        let (line, hashed) = entry_line(name, entry)?;
        with_hashes += usize::from(hashed);
        out.push_str(&line);
    }
    if with_hashes != 0 && with_hashes != default.len() {
        return Err(bad(format!(
            "{with_hashes} of {} default packages have hashes: pip checks all or none",
            default.len()
        ))
        .hint("run `pipenv lock` again"));
    }
    // Belt and braces: one requirement or option per line, whatever pip
    // takes for a line break.
    let breaks =
        |c: char| c.is_control() && c != '\n' || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}');
    if out.chars().any(breaks) {
        return Err(bad("a control or line-separator character".into()));
    }
    Ok(out)
}

/// One `default` entry as a requirement line (and whether it has hashes).
fn entry_line(name: &str, entry: &serde_json::Value) -> Result<(String, bool), BuildpackError> {
    use std::str::FromStr as _;
    let bad = |what: String| BuildpackError::new(format!("Pipfile.lock: {what}"));
    for unsupported in ["git", "hg", "svn", "bzr", "path", "file", "editable"] {
        if entry.get(unsupported).is_some() {
            return Err(bad(format!(
                "default.{name}: a \"{unsupported}\" dependency cannot be installed from the lock alone"
            ))
            .hint("publish it to an index (or vendor it as a wheel) and lock again"));
        }
    }
    let version = entry
        .get("version")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad(format!("default.{name}.version: missing")))?;
    let markers = entry.get("markers").and_then(|m| m.as_str());
    let written = match markers {
        Some(m) => format!("{name}{version} ; {m}"),
        None => format!("{name}{version}"),
    };
    let requirement = pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(&written)
        .map_err(|e| bad(format!("default.{name}: {e}")))?;
    let exact = matches!(
        &requirement.version_or_url,
        Some(pep508_rs::VersionOrUrl::VersionSpecifier(v))
            if v.len() == 1 && v.iter().all(|s| *s.operator() == pep440_rs::Operator::Equal)
    );
    if !exact
        || requirement.name.as_ref()
            != pep508_rs::PackageName::new(name.to_owned())
                .map_err(|e| bad(format!("default.{name:?}: {e}")))?
                .as_ref()
    {
        return Err(bad(format!(
            "default.{name}.version {version:?}: expected an exact pin (==X) of {name}"
        )));
    }
    let line = requirement.to_string();
    let hashes: Vec<&str> = entry
        .get("hashes")
        .and_then(|h| h.as_array())
        .into_iter()
        .flatten()
        .map(|h| {
            h.as_str()
                .filter(|h| {
                    h.split_once(':').is_some_and(|(alg, hex)| {
                        !alg.is_empty()
                            && alg.chars().all(|c| c.is_ascii_alphanumeric())
                            && !hex.is_empty()
                            && hex.chars().all(|c| c.is_ascii_hexdigit())
                    })
                })
                .ok_or_else(|| bad(format!("default.{name}.hashes: {h} is not alg:hex")))
        })
        .collect::<Result<_, _>>()?;
    let mut line = line;
    for hash in &hashes {
        let _ = write!(line, " --hash={hash}");
    }
    line.push('\n');
    Ok((line, !hashes.is_empty()))
}

/// The Python version a Pipfile.lock asks for (`_meta.requires`).
pub fn python(text: &str) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_str(text).ok()?;
    let requires = doc.pointer("/_meta/requires")?;
    requires
        .get("python_full_version")
        .or_else(|| requires.get("python_version"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipfile_lock_cannot_smuggle_options_to_pip() {
        let e = |lock: &str| requirements(lock).unwrap_err().message().to_owned();
        for (name, version, markers) in [
            ("x", "==1\r--index-url=http://evil/simple", ""),
            (
                "x",
                "==1",
                "python_version>='3'\r--extra-index-url http://evil/simple",
            ),
            (
                "x",
                "==1",
                "python_version>='3'\u{2028}-e git+https://evil/x",
            ),
            ("--index-url", "==1", ""),
            ("x", "==1\t#", "python_version>='3'"),
            ("x", "==1 --trusted-host evil", ""),
        ] {
            let entry = if markers.is_empty() {
                serde_json::json!({"version": version})
            } else {
                serde_json::json!({"version": version, "markers": markers})
            };
            let lock = serde_json::json!({"default": {name: entry}}).to_string();
            let said = e(&lock);
            assert!(
                said.starts_with("Pipfile.lock: default."),
                "{name} {version:?} {markers:?}: {said}"
            );
        }
        let ok = requirements(
            r#"{"_meta": {"sources": [{"url": "https://pypi.example/simple"}, {"url": "https://mirror/simple"}]}, "default": {"Flask": {"version": "==3.0.3", "markers": "python_version >= '3.8'"}}}"#,
        )
        .unwrap();
        assert!(
            ok.contains(
                "--index-url https://pypi.example/simple\n--extra-index-url https://mirror/simple\n"
            ),
            "{ok}"
        );
        assert!(
            ok.contains("flask==3.0.3 ; python_full_version >= '3.8'\n"),
            "{ok}"
        );
        let e2 = e(
            r#"{"default": {"a": {"version": "==1", "hashes": ["sha256:aa"]}, "b": {"version": "==2"}}}"#,
        );
        assert!(e2.contains("1 of 2 default packages have hashes"), "{e2}");
        assert_eq!(
            python(r#"{"_meta": {"requires": {"python_version": "3.11"}}}"#).as_deref(),
            Some("3.11")
        );
    }

    #[test]
    fn a_pipfile_lock_becomes_pinned_hashed_requirements() {
        let lock = r#"{"_meta": {}, "default": {
            "flask": {"version": "==3.0.3", "hashes": ["sha256:aa", "sha256:bb"], "markers": "python_version >= '3.8'"},
            "six": {"version": "==1.16.0", "hashes": ["sha256:cc"]}
        }, "develop": {"pytest": {"version": "==8.0.0"}}}"#;
        let req = requirements(lock).unwrap();
        assert!(
            req.contains(
                // Markers as pep508_rs writes them back (equivalent).
                "flask==3.0.3 ; python_full_version >= '3.8' --hash=sha256:aa --hash=sha256:bb\n"
            ),
            "{req}"
        );
        assert!(
            req.contains("six==1.16.0 --hash=sha256:cc\n") && !req.contains("pytest"),
            "{req}"
        );
    }

    #[test]
    fn a_pipfile_lock_pip_cannot_honour_is_refused_by_name() {
        let e = |lock: &str| requirements(lock).unwrap_err().message().to_owned();
        assert!(
            e(r#"{"default": {"lib": {"git": "https://x", "ref": "abc"}}}"#)
                .contains("default.lib: a \"git\"")
        );
        assert!(e(r#"{"default": {"lib": {"version": ">=1"}}}"#).contains("default.lib.version"));
        assert!(
            e(r#"{"default": {"lib": {"version": "==1 --index-url http://evil"}}}"#)
                .starts_with("Pipfile.lock: default.lib")
        );
        assert!(
            e(r#"{"default": {"-r /etc/x": {"version": "==1"}}}"#)
                .starts_with("Pipfile.lock: default.")
        );
        assert!(e("{").starts_with("Pipfile.lock: "));
        assert!(e("{}").contains("no \"default\""));
    }
}
