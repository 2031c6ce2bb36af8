//! Whether each process of a built image can start: its program (looked
//! up on the image's `PATH` from its working directory, as `execvp` does)
//! and, for `sh -c SCRIPT`, the script's first command must be executable
//! files of the image ([`crate::image_files`]). A build on `scratch` whose
//! Procfile says `web: python app.py` is told so at build time, not by a
//! crash in production.

use std::io;
use std::path::{Path, PathBuf};

use crate::bloat::contract::{self, Needs};
use crate::image_files::{self, DEFAULT_PATH, Files, Lookup};
use crate::oci::Digest;
use crate::oci::document::{self, ImageConfig, ImageManifest};

/// A process that cannot start, and what it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub process: String,
    /// Its command line, as the image's config has it.
    pub command: String,
    pub missing: Vec<String>,
}

impl Problem {
    /// What would provide the missing programs, for the well-known ones.
    pub fn hints(&self) -> Vec<&'static str> {
        let mut hints: Vec<&'static str> =
            self.missing.iter().filter_map(|m| provided_by(m)).collect();
        hints.dedup();
        hints
    }
}

/// Who provides `program` (a path or a name), for programs an app's
/// process commonly names.
pub fn provided_by(program: &str) -> Option<&'static str> {
    let name = Path::new(program).file_name()?.to_str()?;
    let python = "cascade/python installs CPython and the app's packages when the app has requirements.txt, pyproject.toml, Pipfile.lock or a main.py/app.py/server.py";
    match name {
        "python" | "python3" | "pip" | "pip3" | "gunicorn" | "uvicorn" | "flask"
        | "django-admin" | "hypercorn" | "daphne" => Some(python),
        n if n.starts_with("python3.") => Some(python),
        "node" | "npm" | "npx" | "yarn" | "pnpm" | "corepack" => Some(
            "cascade/node installs Node.js when the app has a package.json or a server.js/app.js/index.js/main.js",
        ),
        "sh" | "bash" | "dash" => Some(
            "a run image with /bin/sh (a Procfile line with shell syntax runs under /bin/sh -c)",
        ),
        "busybox" | "httpd" => Some("a run image with busybox"),
        _ => None,
    }
}

#[derive(Debug)]
pub enum Checked {
    /// Some layer's blob is not on this machine (a registry run image that
    /// was never pulled): Cascade does not download a base to check it.
    Skipped(String),
    Done {
        problems: Vec<Problem>,
        /// What the app needs of its run image (the stack contract), and
        /// the libraries its ELF files need that nothing provides.
        needs: Needs,
    },
}

/// Check the processes of the image `manifest`/`config`, whose first
/// `base_layers` layers are its run image's; `blob` finds a layer blob on
/// this machine, listings are cached under `cache_dir`.
pub fn check(
    manifest: &ImageManifest,
    config: &ImageConfig,
    base_layers: usize,
    blob: &dyn Fn(&Digest) -> Option<PathBuf>,
    cache_dir: &Path,
) -> io::Result<Checked> {
    let mut files = Files::default();
    let mut base = Files::default();
    for (i, (layer, diff_id)) in manifest
        .layers()
        .iter()
        .zip(&config.rootfs.diff_ids)
        .enumerate()
    {
        let Ok(digest) = document::digest_of(layer, "manifest") else {
            return Ok(Checked::Skipped("a layer without a sha256 digest".into()));
        };
        let Some(path) = blob(&digest) else {
            return Ok(Checked::Skipped(format!(
                "layer {digest} of the run image is not on this machine"
            )));
        };
        let media_type = document::media_type_of(layer);
        let listing = image_files::list_cached(&path, &media_type, (&digest, diff_id), cache_dir)?;
        if i < base_layers {
            base.apply(&listing);
        }
        files.apply(&listing);
    }
    let path = config
        .env()
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let default_dir = config.working_dir();
    let inspection = crate::inspect::from_parts("", &Digest::of(b""), manifest, config);
    let starts = crate::bloat::starts(&inspection, config, default_dir);
    let needs = contract::needs(&files, &base, config.env(), &starts);
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
                command: argv.join(" "),
                missing,
            });
        }
    }
    Ok(Checked::Done { problems, needs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_programs_name_what_provides_them() {
        let problem = Problem {
            process: "web".into(),
            command: "gunicorn app:app".into(),
            missing: vec!["gunicorn".into(), "/usr/bin/python3.11".into()],
        };
        let hints = problem.hints();
        assert_eq!(hints.len(), 1, "one hint for both: {hints:?}");
        assert!(hints[0].starts_with("cascade/python"), "{hints:?}");
        assert!(
            provided_by("/layers/x/node/bin/node")
                .unwrap()
                .starts_with("cascade/node")
        );
        assert_eq!(provided_by("./hello"), None);
    }

    #[test]
    fn a_layer_not_on_this_machine_skips_the_check_saying_which() {
        let digest = Digest::of(b"layer");
        let manifest = document::manifest(
            document::descriptor(crate::oci::MEDIA_CONFIG, &Digest::of(b"{}"), 2),
            vec![document::descriptor("x", &digest, 1)],
        );
        let mut config = ImageConfig::default();
        config.rootfs.diff_ids = vec![digest.clone()];
        let tmp = tempfile::tempdir().unwrap();
        let checked = check(&manifest, &config, 1, &|_| None, tmp.path()).unwrap();
        match checked {
            Checked::Skipped(why) => assert!(why.contains(&digest.to_string()), "{why}"),
            Checked::Done { problems, .. } => panic!("checked without the layer: {problems:?}"),
        }
    }
}
