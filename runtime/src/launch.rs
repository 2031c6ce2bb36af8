//! Starting a process of an image on this machine (`cascade run`): the
//! image's layers applied into a private root ([`crate::rootfs`]), then the
//! process — the default one, or any type the CNB label lists — under
//! bubblewrap with that root as `/`, the image's `Env` and working
//! directory, and no network unless a port is asked for. Nothing of the
//! host's filesystem is visible to it.

use std::path::Path;
use std::process::Command;

use crate::env::EnvList;
use crate::guest_tree::GuestTree;
use crate::inspect::Inspection;
use crate::oci::document::ImageConfig;
use crate::oci::store::{Oci, ReadImage, StoreError, Transfers};
use crate::rootfs::{self, Layer, RootfsError, Unpacked};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{image}: no process type {asked:?} (the image has: {known})")]
    NoSuchProcess {
        image: String,
        asked: String,
        known: String,
    },
    #[error("{image}: no default process (the image has: {known}); pick one with --process")]
    NoDefault { image: String, known: String },
    #[error("{image}: invalid {what}: {message}")]
    Invalid {
        image: String,
        what: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{image}: {source}")]
    Rootfs {
        image: String,
        #[source]
        source: RootfsError,
    },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What to start, as the image says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub process: Option<String>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
}

/// The process `asked` (else the default one) of `image`, with `extra`
/// arguments appended and `env` (`NAME=VALUE`) over the image's own.
pub fn plan(
    image: &Inspection,
    config: &ImageConfig,
    asked: Option<&str>,
    extra: &[String],
    env: &[String],
) -> Result<Launch, LaunchError> {
    let known = || {
        let kinds: Vec<&str> = image.processes.iter().map(|p| p.kind.as_str()).collect();
        if kinds.is_empty() {
            "no process types".to_owned()
        } else {
            kinds.join(", ")
        }
    };
    let default_dir = config.working_dir().to_owned();
    let (process, mut argv, working_dir) = if let Some(kind) = asked {
        let p = image
            .processes
            .iter()
            .find(|p| p.kind == kind)
            .ok_or_else(|| LaunchError::NoSuchProcess {
                image: image.image.clone(),
                asked: kind.to_owned(),
                known: known(),
            })?;
        let argv: Vec<String> = p.command.iter().chain(&p.args).cloned().collect();
        let dir = p.working_dir.clone().unwrap_or(default_dir);
        (Some(p.kind.clone()), argv, dir)
    } else {
        (image.default_process.clone(), config.command(), default_dir)
    };
    if argv.is_empty() {
        return Err(LaunchError::NoDefault {
            image: image.image.clone(),
            known: known(),
        });
    }
    argv.extend(extra.iter().cloned());
    // The image's variables, then ours over them (each keeping its place).
    let mut vars = EnvList::default();
    for entry in image.env.iter().chain(env) {
        let (name, value) = entry
            .split_once('=')
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| LaunchError::Invalid {
                image: image.image.clone(),
                what: "environment entry",
                message: format!("{entry:?} is not NAME=VALUE"),
            })?;
        vars.set(name, value.to_owned());
    }
    Ok(Launch {
        process,
        argv,
        env: vars.pairs().to_vec(),
        working_dir,
    })
}

/// Apply the layers of `image` (pulled into the blob cache when they are
/// in a registry) into `root`.
pub fn unpack(
    oci: &Oci,
    image: &ReadImage,
    name: &str,
    root: &GuestTree,
) -> Result<Unpacked, LaunchError> {
    let invalid = |what: &'static str, message: String| LaunchError::Invalid {
        image: name.to_owned(),
        what,
        message,
    };
    let descriptors = image
        .layers()
        .map_err(|e| invalid("manifest", e.to_string()))?;
    let diff_ids = &image.config.rootfs.diff_ids;
    if descriptors.len() != diff_ids.len() {
        return Err(invalid(
            "config",
            format!(
                "{} layers but {} diff_ids",
                descriptors.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut found = Vec::new();
    let mut t = Transfers::default();
    for ((digest, d), diff_id) in descriptors.into_iter().zip(diff_ids) {
        let diff_id = diff_id.clone();
        let path = oci
            .local_blob(&digest, &image.home, true, &mut t)?
            .ok_or_else(|| invalid("layer", format!("{digest} is not on this machine")))?;
        let media_type = crate::oci::document::media_type_of(d);
        found.push((path, media_type, digest, diff_id));
    }
    let layers: Vec<Layer<'_>> = found
        .iter()
        .map(|(path, media_type, digest, diff_id)| Layer {
            path,
            media_type,
            digest,
            diff_id,
        })
        .collect();
    rootfs::unpack(&layers, root, rootfs::LIMITS).map_err(|source| LaunchError::Rootfs {
        image: name.to_owned(),
        source,
    })
}

/// Make `/proc`, `/dev` and `/tmp` of `root` real, empty-or-kept
/// directories: bubblewrap mounts on them, and a link an image put there
/// would lead its mounts elsewhere.
pub fn prepare_mount_points(root: &GuestTree) -> Result<(), LaunchError> {
    for dir in ["proc", "dev", "tmp"] {
        let io = |source| LaunchError::Io {
            path: root.path().join(dir),
            source,
        };
        if root.exists(dir) && !root.is_real_dir(dir) {
            root.remove_all(dir).map_err(io)?;
        }
        root.create_dir_all(dir).map_err(io)?;
    }
    Ok(())
}

/// The bubblewrap command that starts `launch` with `root` as `/`: new
/// namespaces (the network too, unless `network`), the environment cleared
/// to the image's, `/proc`, `/dev` and a private `/tmp`.
pub fn command(root: &Path, launch: &Launch, network: bool) -> Command {
    let mut c = Command::new("bwrap");
    c.args(crate::exec::BWRAP_ISOLATION);
    if network {
        c.arg("--share-net");
    }
    c.arg("--bind").arg(root).arg("/");
    c.args([
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--clearenv",
    ]);
    for (name, value) in &launch.env {
        c.args(["--setenv", name, value]);
    }
    c.args(["--chdir", &launch.working_dir, "--"]);
    c.args(&launch.argv);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::ProcessInfo;
    use crate::oci::Digest;
    use crate::oci::document::{self, ImageManifest};

    fn config(text: &str) -> ImageConfig {
        document::parse(text.as_bytes(), "config").unwrap()
    }

    fn no_layers() -> ImageManifest {
        document::manifest(
            document::descriptor(crate::oci::MEDIA_CONFIG, &Digest::of(b"{}"), 2),
            Vec::new(),
        )
    }

    fn image() -> (Inspection, ImageConfig) {
        let config = config(
            r#"{"config": {"Entrypoint": ["/bin/web"], "Cmd": ["--fast"], "WorkingDir": "/workspace",
                "Env": ["PATH=/bin", "PORT=8080"]}}"#,
        );
        let mut i = crate::inspect::from_parts("app", &Digest::of(b""), &no_layers(), &config);
        i.processes = vec![ProcessInfo {
            kind: "worker".into(),
            command: vec!["/bin/sh".into(), "-c".into()],
            args: vec!["work".into()],
            buildpack_id: "x".into(),
            working_dir: None,
        }];
        (i, config)
    }

    #[test]
    fn mount_points_that_are_links_become_real_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "k").unwrap();
        let root = GuestTree::create(&tmp.path().join("root")).unwrap();
        root.symlink(&outside, "tmp").unwrap();
        root.symlink("/oldroot/home", "proc").unwrap();
        prepare_mount_points(&root).unwrap();
        for d in ["proc", "dev", "tmp"] {
            assert!(root.is_real_dir(d), "{d}");
        }
        assert!(
            outside.join("keep").exists(),
            "the link's target is untouched"
        );
    }

    #[test]
    fn an_image_without_a_command_has_no_default_to_start() {
        let config = config(r#"{"config": {}}"#);
        let i = crate::inspect::from_parts("app", &Digest::of(b""), &no_layers(), &config);
        let err = plan(&i, &config, None, &[], &[]).unwrap_err();
        assert!(matches!(err, LaunchError::NoDefault { .. }), "{err}");
        assert!(err.to_string().contains("--process"), "{err}");
    }

    #[test]
    fn the_default_process_and_a_named_one_start_as_the_image_says() {
        let (i, config) = image();
        let web = plan(&i, &config, None, &["-v".into()], &["PORT=9000".into()]).unwrap();
        assert_eq!(web.argv, ["/bin/web", "--fast", "-v"]);
        assert_eq!(web.working_dir, "/workspace");
        assert_eq!(
            web.env,
            [
                ("PATH".to_owned(), "/bin".to_owned()),
                ("PORT".to_owned(), "9000".to_owned())
            ]
        );
        let worker = plan(&i, &config, Some("worker"), &[], &[]).unwrap();
        assert_eq!(worker.argv, ["/bin/sh", "-c", "work"]);
        let err = plan(&i, &config, Some("cron"), &[], &[]).unwrap_err();
        assert!(err.to_string().contains("the image has: worker"), "{err}");
        assert!(plan(&i, &config, None, &[], &["NOEQUALS".into()]).is_err());
    }
}
