//! Whether each process of a built image can start: its program (looked
//! up on the image's `PATH` from its working directory, as `execvp` does)
//! and, for `sh -c SCRIPT`, the script's first command must be executable
//! files of the image ([`crate::image_files`]). A build on `scratch` whose
//! Procfile says `web: python app.py` is told so at build time, not by a
//! crash in production.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::image_files::{self, DEFAULT_PATH, Files, Lookup};
use crate::oci::Digest;

/// A process that cannot start, and what it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub process: String,
    pub missing: Vec<String>,
}

#[derive(Debug)]
pub enum Checked {
    /// Some layer's blob is not on this machine (a registry run image that
    /// was never pulled): Cascade does not download a base to check it.
    Skipped(String),
    Done(Vec<Problem>),
}

/// Check the processes of the image `manifest`/`config`; `blob` finds a
/// layer blob on this machine, listings are cached under `cache_dir`.
pub fn check(
    manifest: &Value,
    config: &Value,
    blob: &dyn Fn(&Digest) -> Option<PathBuf>,
    cache_dir: &Path,
) -> io::Result<Checked> {
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut files = Files::default();
    for (layer, diff_id) in layers.iter().zip(&diff_ids) {
        let parse = |v: &Value| v.as_str().and_then(|s| s.parse::<Digest>().ok());
        let (Some(digest), Some(diff_id)) = (parse(&layer["digest"]), parse(diff_id)) else {
            return Ok(Checked::Skipped("a layer without a valid digest".into()));
        };
        let Some(path) = blob(&digest) else {
            return Ok(Checked::Skipped(format!(
                "layer {digest} of the run image is not on this machine"
            )));
        };
        let media_type = layer["mediaType"].as_str().unwrap_or_default();
        files.apply(&image_files::list_cached(
            &path,
            media_type,
            (&digest, &diff_id),
            cache_dir,
        )?);
    }
    let inner = &config["config"];
    let env: Vec<&str> = inner["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let default_dir = inner["WorkingDir"].as_str().unwrap_or("/");
    let inspection = crate::inspect::from_parts("", &Digest::of(b""), manifest, config);
    let mut problems = Vec::new();
    for p in &inspection.processes {
        let argv: Vec<String> = p.command.iter().chain(&p.args).cloned().collect();
        let lookup = Lookup {
            path,
            working_dir: p.working_dir.as_deref().unwrap_or(default_dir),
        };
        let missing = files.missing(&argv, &lookup);
        if !missing.is_empty() {
            problems.push(Problem {
                process: p.kind.clone(),
                missing,
            });
        }
    }
    Ok(Checked::Done(problems))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_layer_not_on_this_machine_skips_the_check_saying_which() {
        let digest = Digest::of(b"layer");
        let manifest = json!({"layers": [{"digest": digest.to_string(), "mediaType": "x"}]});
        let config = json!({"rootfs": {"diff_ids": [digest.to_string()]}});
        let tmp = tempfile::tempdir().unwrap();
        let checked = check(&manifest, &config, &|_| None, tmp.path()).unwrap();
        match checked {
            Checked::Skipped(why) => assert!(why.contains(&digest.to_string()), "{why}"),
            Checked::Done(p) => panic!("checked without the layer: {p:?}"),
        }
    }
}
