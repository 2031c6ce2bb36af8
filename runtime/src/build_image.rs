//! The build image: the filesystem every tool a buildpack execs lives in
//! (the stack's compile side), owned and patched by the platform like the
//! run image.
//!
//! A build image is an OCI image (`oci:DIR[:TAG]` or a registry reference),
//! resolved to a digest, its layers pulled into the blob cache and applied
//! once into a content-addressed root under the rootfs store
//! (`<cache>/rootfs/<chain id>`), shared by every build on the same layers.
//! The layers are hostile input: they are applied through
//! [`crate::rootfs`], which confines every entry to the root. A root is made
//! under a temporary name and renamed into place when complete, so a
//! half-unpacked root is never used and two builds racing to make one both
//! end up on a whole one. Exec binds it read-only as `/`
//! ([`crate::exec::BuildEnv::Image`]).

use std::path::{Path, PathBuf};

use crate::exec::BuildEnv;
use crate::guest_tree::GuestTree;
use crate::launch::{self, LaunchError};
use crate::oci::store::{Oci, ReadImage, StoreError};
use crate::oci::{Digest, ImageRef, chain_id};
use crate::report::BuildImageRef;

/// The name `--build-image` takes for the build host itself.
pub const HOST: &str = "host";

/// The distro labels a base image carries (`io.buildpacks.base.distro.*`).
const DISTRO_NAME: &str = "io.buildpacks.base.distro.name";
const DISTRO_VERSION: &str = "io.buildpacks.base.distro.version";

#[derive(Debug, thiserror::Error)]
pub enum BuildImageError {
    #[error("build image {reference}: {source}")]
    Store {
        reference: String,
        #[source]
        source: StoreError,
    },
    #[error("build image {reference}: {message}")]
    Invalid { reference: String, message: String },
    #[error("build image {reference}: unpacking it: {source}")]
    Unpack {
        reference: String,
        #[source]
        source: LaunchError,
    },
    #[error(
        "{granted} granted, and no build image to run tools in: give one with `cascade build --build-image REF` (an OCI image with the tools: oci:DIR[:TAG] or a registry reference) or builder.toml [build] image, or `--build-image host` to run the build host's own tools (not hermetic)"
    )]
    Missing { granted: String },
    #[error("build image {reference}: rootfs store {path}: {source}")]
    Io {
        reference: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a build asked to run its tools on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Nothing: a build that execs is refused.
    Unset,
    /// The build host itself (`--build-image host`).
    Host,
    Image(ImageRef),
}

impl Choice {
    /// `host`, or an image reference.
    pub fn parse(s: &str) -> Result<Self, crate::oci::reference::RefError> {
        if s == HOST {
            Ok(Self::Host)
        } else {
            ImageRef::parse(s).map(Self::Image)
        }
    }
}

/// The build environment of one build, ready for exec.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub env: BuildEnv,
    /// What the image and the report record; `None` when none was given.
    pub identity: Option<BuildImageRef>,
    pub distro: Option<(String, String)>,
}

/// Prepare `choice`: resolve the image (by `pinned` when a lock holds its
/// digest) and, when some buildpack is granted exec (`granted` names the
/// grants), unpack it into `store` unless it is there already. Without a
/// build image, a build that execs is refused here, before any buildpack
/// runs.
pub fn prepare(
    choice: &Choice,
    pinned: Option<&Digest>,
    granted: Option<&str>,
    platform: (&str, &str),
    oci: &Oci,
    store: &Path,
    reporter: &dyn crate::report::Reporter,
) -> Result<Prepared, BuildImageError> {
    match choice {
        Choice::Unset => match granted {
            Some(granted) => Err(BuildImageError::Missing {
                granted: granted.to_owned(),
            }),
            None => Ok(Prepared::default()),
        },
        Choice::Host => {
            if granted.is_some() {
                reporter.note(
                    "warning: --build-image host: tools run on the build host's own /usr, so the image depends on what this machine has installed (recorded in the image as not hermetic)",
                );
            }
            Ok(Prepared {
                env: BuildEnv::Host,
                identity: Some(host_identity()),
                distro: None,
            })
        }
        Choice::Image(reference) => {
            let image = BuildImage::resolve_pinned(reference, pinned, platform, oci)?;
            let env = if granted.is_some() {
                let started = std::time::Instant::now();
                let (env, unpacked) = image.unpack(oci, store)?;
                if unpacked {
                    reporter.note(&format!(
                        "build image {reference} ({}) unpacked in {:.1} s",
                        image.image.digest,
                        started.elapsed().as_secs_f64()
                    ));
                }
                env
            } else {
                BuildEnv::Missing
            };
            Ok(Prepared {
                env,
                identity: Some(image.identity()),
                distro: image.distro(),
            })
        }
    }
}

/// A build image, resolved (manifest and config read), not yet unpacked.
pub struct BuildImage {
    pub reference: ImageRef,
    pub image: ReadImage,
    /// The config `Env`, as pairs.
    pub env: Vec<(String, String)>,
    /// The chain id of its layers: what its root is keyed by.
    pub chain: Digest,
}

impl BuildImage {
    /// Resolve `reference` for `platform` (os, arch): only its manifest and
    /// config are read here.
    pub fn resolve(
        reference: &ImageRef,
        platform: (&str, &str),
        oci: &Oci,
    ) -> Result<Self, BuildImageError> {
        let name = reference.to_string();
        let invalid = |message: String| BuildImageError::Invalid {
            reference: name.clone(),
            message,
        };
        if *reference == ImageRef::Scratch {
            return Err(invalid(
                "scratch holds no tools; name an image with the build tools".into(),
            ));
        }
        let image =
            oci.read(reference, Some(platform))
                .map_err(|source| BuildImageError::Store {
                    reference: name.clone(),
                    source,
                })?;
        let mut env = Vec::new();
        if let Some(entries) = image.config["config"]["Env"].as_array() {
            for (i, entry) in entries.iter().enumerate() {
                let pair = entry
                    .as_str()
                    .and_then(|e| e.split_once('='))
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| {
                        invalid(format!("config.Env[{i}]: {entry} is not \"NAME=VALUE\""))
                    })?;
                env.push((pair.0.to_owned(), pair.1.to_owned()));
            }
        }
        let diff_ids = image.config["rootfs"]["diff_ids"]
            .as_array()
            .ok_or_else(|| invalid("config has no rootfs.diff_ids".into()))?
            .iter()
            .map(|d| {
                d.as_str()
                    .unwrap_or_default()
                    .parse::<Digest>()
                    .map_err(|e| invalid(format!("rootfs.diff_ids: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let chain =
            chain_id(&diff_ids).ok_or_else(|| invalid("it has no layers, so no tools".into()))?;
        Ok(Self {
            reference: reference.clone(),
            chain,
            image,
            env,
        })
    }

    /// `reference`, held to `pinned` when a lock holds a digest for it: a
    /// registry image is read by that digest (the tag may have moved); a
    /// layout's tag must still name it.
    pub fn resolve_pinned(
        reference: &ImageRef,
        pinned: Option<&Digest>,
        platform: (&str, &str),
        oci: &Oci,
    ) -> Result<Self, BuildImageError> {
        let Some(pinned) = pinned else {
            return Self::resolve(reference, platform, oci);
        };
        if let ImageRef::Registry(r) = reference {
            let by_digest = ImageRef::Registry(oci_client::Reference::with_digest(
                r.registry().to_owned(),
                r.repository().to_owned(),
                pinned.to_string(),
            ));
            let mut image = Self::resolve(&by_digest, platform, oci)?;
            image.reference = reference.clone();
            return Ok(image);
        }
        let image = Self::resolve(reference, platform, oci)?;
        if image.image.digest != *pinned {
            return Err(BuildImageError::Invalid {
                reference: reference.to_string(),
                message: format!(
                    "builder.lock pins {pinned}, and it is {} now: delete the lock's [build-image] entry to build on the new one",
                    image.image.digest
                ),
            });
        }
        Ok(image)
    }

    /// The identity recorded in the image and the report.
    pub fn identity(&self) -> BuildImageRef {
        BuildImageRef {
            reference: self.reference.to_string(),
            digest: Some(self.image.digest.to_string()),
            hermetic: true,
        }
    }

    /// `(name, version)` of its distro labels, when it has both.
    pub fn distro(&self) -> Option<(String, String)> {
        distro(&self.image.config)
    }

    /// Its root under `store`, unpacked now unless a build already did:
    /// then this costs one `stat`. Returns the exec build environment.
    pub fn unpack(&self, oci: &Oci, store: &Path) -> Result<(BuildEnv, bool), BuildImageError> {
        let name = self.reference.to_string();
        let io = |path: &Path| {
            let (name, path) = (name.clone(), path.to_path_buf());
            move |source| BuildImageError::Io {
                reference: name,
                path,
                source,
            }
        };
        let root = store.join(self.chain.hex());
        let env = BuildEnv::Image {
            root: root.clone(),
            env: self.env.clone(),
        };
        if root.is_dir() {
            return Ok((env, false));
        }
        std::fs::create_dir_all(store).map_err(io(store))?;
        let scratch = tempfile::Builder::new()
            .prefix(".unpacking-")
            .tempdir_in(store)
            .map_err(io(store))?;
        let tree = GuestTree::create(&scratch.path().join("root")).map_err(io(scratch.path()))?;
        launch::unpack(oci, &self.image, &name, &tree).map_err(|source| {
            BuildImageError::Unpack {
                reference: name.clone(),
                source,
            }
        })?;
        prepare_mount_points(&tree).map_err(|source| BuildImageError::Unpack {
            reference: name.clone(),
            source,
        })?;
        drop(tree);
        match std::fs::rename(scratch.path().join("root"), &root) {
            Ok(()) => {}
            // Another build made it first: theirs is as good as ours.
            Err(_) if root.is_dir() => {}
            Err(e) => return Err(io(&root)(e)),
        }
        // What is left of the scratch dir goes, through a handle on it
        // (the layers may have made unreadable directories).
        if let Ok(left) = GuestTree::open(scratch.path()) {
            let _ = left.open_up();
        }
        drop(scratch);
        Ok((env, true))
    }
}

/// The distro labels of an image config, when it has both.
pub fn distro(config: &serde_json::Value) -> Option<(String, String)> {
    let labels = &config["config"]["Labels"];
    Some((
        labels[DISTRO_NAME].as_str()?.to_owned(),
        labels[DISTRO_VERSION].as_str()?.to_owned(),
    ))
}

/// A warning when the build and run images name different distros (a
/// binary compiled against one libc may not start on the other).
pub fn distro_mismatch(
    build: Option<(String, String)>,
    run: Option<(String, String)>,
) -> Option<String> {
    let (b, r) = (build?, run?);
    (b != r).then(|| {
        format!(
            "the build image is {} {} but the run image is {} {} ({DISTRO_NAME}, {DISTRO_VERSION}): binaries built on one may not start on the other",
            b.0, b.1, r.0, r.1
        )
    })
}

/// The identity of the build host as a build image (`--build-image host`).
pub fn host_identity() -> BuildImageRef {
    BuildImageRef {
        reference: HOST.to_owned(),
        digest: None,
        hermetic: false,
    }
}

/// The mount points exec binds over, made real in the root (a link the
/// image put there would lead a mount elsewhere): `/workspace`, `/layers`,
/// `/proc`, `/dev`, `/tmp`, and `/etc/resolv.conf` and `/etc/hosts` for the
/// host's resolver when a tool gets the network.
fn prepare_mount_points(root: &GuestTree) -> Result<(), LaunchError> {
    launch::prepare_mount_points(root)?;
    let io = |path: &str| {
        let path = root.path().join(path);
        move |source| LaunchError::Io { path, source }
    };
    for dir in ["workspace", "layers"] {
        if root.exists(dir) && !root.is_real_dir(dir) {
            root.remove_all(dir).map_err(io(dir))?;
        }
        root.create_dir_all(dir).map_err(io(dir))?;
    }
    if root.is_real_dir("etc") {
        for file in ["etc/resolv.conf", "etc/hosts"] {
            if root.open_file_nofollow(file).is_err() {
                if root.exists(file) {
                    root.remove_all(file).map_err(io(file))?;
                }
                root.create_file(file, false).map_err(io(file))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_that_are_links_or_missing_become_real() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("hosts"), "keep").unwrap();
        let root = GuestTree::create(&tmp.path().join("root")).unwrap();
        root.create_dir_all("etc").unwrap();
        root.symlink(outside.join("hosts"), "etc/hosts").unwrap();
        root.symlink(&outside, "workspace").unwrap();
        prepare_mount_points(&root).unwrap();
        for d in ["workspace", "layers", "proc", "dev", "tmp"] {
            assert!(root.is_real_dir(d), "{d}");
        }
        for f in ["etc/hosts", "etc/resolv.conf"] {
            assert!(root.open_file_nofollow(f).is_ok(), "{f}");
        }
        assert_eq!(
            std::fs::read_to_string(outside.join("hosts")).unwrap(),
            "keep"
        );
    }

    #[test]
    fn scratch_is_no_build_image_and_a_missing_one_stops_a_build_that_execs() {
        let tmp = tempfile::tempdir().unwrap();
        let oci = Oci::new(tmp.path(), None).unwrap();
        let err = BuildImage::resolve(&ImageRef::Scratch, ("linux", "amd64"), &oci)
            .err()
            .unwrap();
        assert!(err.to_string().contains("scratch holds no tools"), "{err}");
        let silent = crate::report::Silent;
        let store = tmp.path().join("rootfs");
        let platform = ("linux", "amd64");
        let err = prepare(
            &Choice::Unset,
            None,
            Some("--allow exec:go"),
            platform,
            &oci,
            &store,
            &silent,
        )
        .err()
        .unwrap();
        assert!(
            matches!(err, BuildImageError::Missing { .. })
                && err.to_string().contains("--allow exec:go"),
            "{err}"
        );
        // Nothing granted: no build image needed, none recorded.
        let none = prepare(&Choice::Unset, None, None, platform, &oci, &store, &silent).unwrap();
        assert!(none.identity.is_none() && none.env == BuildEnv::Missing);
        let host = prepare(&Choice::Host, None, None, platform, &oci, &store, &silent).unwrap();
        assert_eq!(host.env, BuildEnv::Host);
        assert!(!host.identity.unwrap().hermetic);
        assert!(!store.exists(), "nothing unpacked");
    }

    #[test]
    fn distros_that_disagree_are_told() {
        let deb = Some(("debian".to_owned(), "12".to_owned()));
        let ubu = Some(("ubuntu".to_owned(), "22.04".to_owned()));
        assert!(distro_mismatch(deb.clone(), deb.clone()).is_none());
        assert!(distro_mismatch(deb.clone(), None).is_none());
        let w = distro_mismatch(deb, ubu).unwrap();
        assert!(w.contains("debian 12") && w.contains("ubuntu 22.04"), "{w}");
    }
}
