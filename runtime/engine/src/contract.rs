//! What one buildpack's build output must hold to, checked on the host
//! whoever runs it: the build phase of `cascade build` and the authors' test
//! harness (`cascade-test`), so that a buildpack passing its own tests is
//! not refused by the platform, nor the other way round.
//!
//! What depends on other buildpacks or on the previous build (reused layers,
//! the group's layers dirs, the size bound) is the lifecycle's.

use std::sync::Arc;

use cascade_fs::GuestTree;

use crate::api::{BuildOutput, Layer, RunError};

/// Label prefixes only the platform writes: the CNB and Cascade labels are
/// written at export from what the platform knows, so a buildpack setting
/// one would forge the image's record.
pub const RESERVED_LABELS: &[&str] = &["io.buildpacks.", "dev.cascade."];

/// The checks that need nothing but the output itself: each layer declared
/// once, no reserved label, no process with an empty command.
pub fn check_output(output: &BuildOutput) -> Result<(), RunError> {
    let invalid = |message: String| Err(RunError::InvalidOutput(message));
    for (i, layer) in output.layers.iter().enumerate() {
        if output.layers[..i].iter().any(|l| l.name == layer.name) {
            return invalid(format!("layer {} declared twice", layer.name));
        }
        if let Some(sbom) = &layer.sbom {
            let doc: Result<serde_json::Value, _> = serde_json::from_str(sbom);
            if !doc.is_ok_and(|d| d["bomFormat"] == "CycloneDX") {
                return invalid(format!(
                    "the SBOM of layer {} is not a CycloneDX JSON document",
                    layer.name
                ));
            }
        }
    }
    if let Some((k, _)) = output
        .labels
        .iter()
        .find(|(k, _)| RESERVED_LABELS.iter().any(|p| k.starts_with(p)))
    {
        return invalid(format!(
            "label {k}: labels under {} are the platform's, not a buildpack's",
            RESERVED_LABELS.join(", ")
        ));
    }
    if let Some(p) = output.processes.iter().find(|p| p.command.is_empty()) {
        return invalid(format!("process {} has an empty command", p.kind));
    }
    Ok(())
}

/// The files of a declared layer: its directory beneath the buildpack's
/// `layers`, or `None` when there is none (which only a reused layer may
/// lack). A link in its place (to a host directory, say) is refused, never
/// followed. `guest_path` is the layer's path in the sandbox, for messages.
pub fn layer_files(
    layer: &Layer,
    layers: &GuestTree,
    guest_path: &str,
) -> Result<Option<Arc<GuestTree>>, RunError> {
    let name = layer.name.as_str();
    match layers.subtree(name) {
        Ok(t) => Ok(Some(Arc::new(t))),
        Err(_) if !layers.exists(name) => Ok(None),
        Err(e) => Err(RunError::InvalidOutput(format!(
            "layer {name}: its directory {guest_path} is not a real directory ({e})"
        ))),
    }
}

/// [`layer_files`] for a layer the buildpack made in this build (not
/// reused): its directory must exist.
pub fn fresh_layer_files(
    layer: &Layer,
    layers: &GuestTree,
    guest_path: &str,
) -> Result<Arc<GuestTree>, RunError> {
    layer_files(layer, layers, guest_path)?.ok_or_else(|| {
        RunError::InvalidOutput(format!(
            "layer {} was declared but its directory {guest_path} does not exist",
            layer.name
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{LayerTypes, Process};

    fn layer(name: &str) -> Layer {
        Layer {
            name: crate::ids::LayerName::new(name).unwrap(),
            types: LayerTypes::default(),
            metadata: toml::Table::new(),
            env: Vec::new(),
            reused: false,
            sbom: None,
        }
    }

    fn refused(output: &BuildOutput) -> String {
        match check_output(output) {
            Err(RunError::InvalidOutput(m)) => m,
            other => panic!("expected invalid output, got {other:?}"),
        }
    }

    #[test]
    fn a_layer_declared_twice_is_refused() {
        let output = BuildOutput {
            layers: vec![layer("a"), layer("b"), layer("a")],
            ..BuildOutput::default()
        };
        assert_eq!(refused(&output), "layer a declared twice");
    }

    #[test]
    fn an_sbom_that_is_not_cyclonedx_is_refused() {
        let mut l = layer("a");
        l.sbom = Some(r#"{"spdxVersion":"SPDX-2.3"}"#.into());
        let output = BuildOutput {
            layers: vec![l],
            ..BuildOutput::default()
        };
        assert!(refused(&output).contains("not a CycloneDX"));
    }

    #[test]
    fn platform_labels_and_empty_commands_are_refused() {
        let output = BuildOutput {
            labels: vec![("io.buildpacks.lifecycle.metadata".into(), "{}".into())],
            ..BuildOutput::default()
        };
        assert!(refused(&output).starts_with("label io.buildpacks.lifecycle.metadata"));
        let output = BuildOutput {
            processes: vec![Process {
                kind: crate::ids::ProcessType::new("web").unwrap(),
                command: Vec::new(),
                args: Vec::new(),
                default: true,
                working_dir: None,
            }],
            ..BuildOutput::default()
        };
        assert_eq!(refused(&output), "process web has an empty command");
    }

    #[test]
    fn a_layer_that_is_a_link_is_refused_and_a_missing_one_named() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("evil")).unwrap();
        std::fs::create_dir(dir.path().join("good")).unwrap();
        let layers = GuestTree::open(dir.path()).unwrap();
        let err = layer_files(&layer("evil"), &layers, "/layers/bp/evil").unwrap_err();
        assert!(err.to_string().contains("not a real directory"), "{err}");
        assert!(
            layer_files(&layer("good"), &layers, "/layers/bp/good")
                .unwrap()
                .is_some()
        );
        assert!(
            layer_files(&layer("gone"), &layers, "/layers/bp/gone")
                .unwrap()
                .is_none()
        );
        let err = fresh_layer_files(&layer("gone"), &layers, "/layers/bp/gone").unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
