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
    /// What a lock pins: the digest the reference names (an index keeps
    /// every platform pinned); `None` for the host.
    pub pin: Option<Digest>,
    pub distro: Option<(String, String)>,
}

/// The platform exec'd tools run on: this machine's, whatever platform
/// the app is built for (a build image's binaries run here, so a build for
/// arm64 on amd64 needs amd64 tools that cross-compile).
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    };
    (std::env::consts::OS, arch)
}

/// Prepare `choice`: resolve the image for this machine's platform (by
/// `pinned` when a lock holds its digest) and, when some buildpack is
/// granted exec (`granted` names the grants), unpack it into `store` unless
/// it is there already. Without a build image, a build that execs is
/// refused here, before any buildpack runs.
pub fn prepare(
    choice: &Choice,
    pinned: Option<&Digest>,
    granted: Option<&str>,
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
                pin: None,
                distro: None,
            })
        }
        Choice::Image(reference) => {
            let image = BuildImage::resolve_pinned(reference, pinned, host_platform(), oci)?;
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
                pin: Some(image.image.named.clone()),
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
    /// config are read here. An image whose config is for another platform
    /// is refused: its tools would not start here.
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
        let (os, arch) = (image.config.os.as_str(), image.config.architecture.as_str());
        if (os, arch) != platform {
            return Err(invalid(format!(
                "its config says os {os:?}, architecture {arch:?}, and its tools run on this machine, {}/{}; name an image (or an index with an image) for {0}/{1}",
                platform.0, platform.1
            )));
        }
        let mut env = Vec::new();
        for (i, entry) in image.config.env().iter().enumerate() {
            let pair = entry
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    invalid(format!("config.Env[{i}]: {entry:?} is not \"NAME=VALUE\""))
                })?;
            env.push((pair.0.to_owned(), pair.1.to_owned()));
        }
        let chain = chain_id(&image.config.rootfs.diff_ids)
            .ok_or_else(|| invalid("it has no layers, so no tools".into()))?;
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
        // A lock from before indexes were pinned holds a platform manifest.
        if image.image.named != *pinned && image.image.digest != *pinned {
            return Err(BuildImageError::Invalid {
                reference: reference.to_string(),
                message: format!(
                    "builder.lock pins {pinned}, and it is {} now: delete the lock's [build-image] entry to build on the new one",
                    image.image.named
                ),
            });
        }
        Ok(image)
    }

    /// The identity recorded in the image and the report: the manifest
    /// the tools ran in (this machine's platform's).
    pub fn identity(&self) -> BuildImageRef {
        BuildImageRef {
            reference: recorded_name(&self.reference),
            digest: Some(self.image.digest.to_string()),
            hermetic: true,
        }
    }

    /// `(name, version)` of its distro labels, when it has both.
    pub fn distro(&self) -> Option<(String, String)> {
        distro(&self.image.config)
    }

    /// Where [`Self::unpack`] puts this image's root in `store`.
    pub fn root_in(&self, store: &Path) -> PathBuf {
        store.join(format!("v{ROOT_VERSION}-{}", self.chain.hex()))
    }

    /// Its root under `store`, unpacked now unless a build already did:
    /// then this costs one `stat`. Returns the exec build environment.
    ///
    /// A root is unpacked under `.unpacking-*` (holding a lock for as long
    /// as the unpacking runs), flushed to disk (`syncfs`), and only then
    /// renamed to `v<N>-<chain id>`: a root under its final name is whole
    /// even after a crash. Scratch dirs whose lock nobody holds are what a
    /// killed build left, and go on the next unpack. The version in the
    /// name changes when what an unpacked root holds does.
    pub fn unpack(&self, oci: &Oci, store: &Path) -> Result<(BuildEnv, bool), BuildImageError> {
        let root = self.root_in(store);
        let name = self.reference.to_string();
        let io = |path: &Path| {
            let (name, path) = (name.clone(), path.to_path_buf());
            move |source| BuildImageError::Io {
                reference: name,
                path,
                source,
            }
        };
        let env = BuildEnv::Image {
            root: root.clone(),
            env: self.env.clone(),
        };
        {
            use std::os::unix::fs::DirBuilderExt as _;
            // Not group-writable whatever the umask (002 is common).
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(store)
                .map_err(io(store))?;
        }
        check_store(store).map_err(io(store))?;
        if root.is_dir() {
            check_owned(&root).map_err(io(&root))?;
            return Ok((env, false));
        }
        remove_abandoned(store);
        let scratch = tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir_in(store)
            .map_err(io(store))?;
        let lock_path = scratch.path().join(".lock");
        let lock = std::fs::File::create(&lock_path).map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
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
        let dir = std::fs::File::open(scratch.path()).map_err(io(scratch.path()))?;
        rustix::fs::syncfs(&dir).map_err(|e| io(scratch.path())(e.into()))?;
        match std::fs::rename(scratch.path().join("root"), &root) {
            Ok(()) => {}
            // Another build made it first: theirs is as good as ours.
            Err(_) if root.is_dir() => {}
            Err(e) => return Err(io(&root)(e)),
        }
        if let Ok(store_dir) = std::fs::File::open(store) {
            let _ = store_dir.sync_all();
        }
        remove_scratch(scratch.path());
        drop(lock);
        drop(scratch);
        Ok((env, true))
    }
}

/// Bump when what an unpacked root holds changes (say, another mount point
/// made real): roots of the old version are then never used.
const ROOT_VERSION: u32 = 1;
const SCRATCH_PREFIX: &str = ".unpacking-";

/// A rootfs store shared by several caches (`--rootfs-dir`) holds the
/// tools every build there runs, so only its owner may write it: a store
/// another user can write could be handed a root with their tools in it.
fn check_store(store: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(store)?;
    if !meta.is_dir() {
        return Err(std::io::Error::other("not a directory"));
    }
    check_owned(store)?;
    if meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "mode {:o} lets others write it: the tools of every build come from it (chmod go-w, and empty it: a root planted meanwhile would stay)",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// `path` (the store, or a root in it) belongs to this user: a root
/// another user made holds their tools.
fn check_owned(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let uid = std::fs::symlink_metadata(path)?.uid();
    let me = rustix::process::geteuid().as_raw();
    if uid == me {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "owned by uid {uid}, not by this user (uid {me}): the tools of every build come from the rootfs store, so only its owner may write it"
        )))
    }
}

/// Remove the scratch dirs of unpacks that were killed: those whose lock
/// this process can take. Best effort: a leftover costs disk, not safety.
fn remove_abandoned(store: &Path) {
    let Ok(entries) = std::fs::read_dir(store) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_scratch = name.to_string_lossy().starts_with(SCRATCH_PREFIX);
        if !is_scratch || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        // Held from just after the dir is made until the unpack ends (or
        // the process dies); one without it is an hour old before it goes.
        let abandoned = match std::fs::File::open(dir.join(".lock")) {
            Ok(lock) => lock.try_lock().is_ok(),
            Err(_) => entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 3600)),
        };
        if abandoned {
            remove_scratch(&dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Empty a scratch dir through a handle on it (the layers may have made
/// unreadable directories); the dir itself goes with its `TempDir`.
fn remove_scratch(dir: &Path) {
    if let Ok(left) = GuestTree::open(dir) {
        let _ = left.open_up();
    }
    let _ = std::fs::remove_dir_all(dir.join("root"));
}

/// The distro labels of an image config, when it has both.
pub fn distro(config: &crate::oci::document::ImageConfig) -> Option<(String, String)> {
    Some((
        config.label(DISTRO_NAME)?.to_owned(),
        config.label(DISTRO_VERSION)?.to_owned(),
    ))
}

/// How an image records its build image's reference: a registry reference
/// whole; a layout by its directory's name and tag only, since its path is
/// this machine's business and would make the image differ by where it
/// was built.
pub fn recorded_name(reference: &ImageRef) -> String {
    match reference {
        ImageRef::Layout { dir, tag } => match dir.file_name() {
            Some(name) => ImageRef::Layout {
                dir: PathBuf::from(name),
                tag: tag.clone(),
            }
            .to_string(),
            None => reference.to_string(),
        },
        other => other.to_string(),
    }
}

/// Whether `recorded` (the reference an image recorded) names the image
/// `audited` names: the same registry repository with the same tag (or no
/// tag on either side, as when it was given by digest), or a layout of the
/// same name and tag. Compared as text: a recorded layout path is never
/// looked at on this machine.
pub fn same_image(recorded: &str, audited: &ImageRef) -> bool {
    let Ok(recorded) = ImageRef::parse(recorded) else {
        return false;
    };
    match (&recorded, audited) {
        (ImageRef::Registry(a), ImageRef::Registry(b)) => {
            a.resolve_registry() == b.resolve_registry()
                && a.repository() == b.repository()
                && (a.tag().is_none() || b.tag().is_none() || a.tag() == b.tag())
        }
        (ImageRef::Layout { .. }, ImageRef::Layout { .. }) => {
            recorded_name(&recorded) == recorded_name(audited)
        }
        _ => false,
    }
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
        let err = prepare(
            &Choice::Unset,
            None,
            Some("--allow exec:go"),
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
        let none = prepare(&Choice::Unset, None, None, &oci, &store, &silent).unwrap();
        assert!(none.identity.is_none() && none.env == BuildEnv::Missing);
        let host = prepare(&Choice::Host, None, None, &oci, &store, &silent).unwrap();
        assert_eq!(host.env, BuildEnv::Host);
        assert!(!host.identity.unwrap().hermetic);
        assert!(!store.exists(), "nothing unpacked");
    }

    #[test]
    fn images_record_a_layout_by_name_and_audit_compares_names() {
        let r = |s: &str| ImageRef::parse(s).unwrap();
        assert_eq!(recorded_name(&r("oci:/home/a/b/build:v1")), "oci:build:v1");
        assert_eq!(recorded_name(&r("oci:build")), "oci:build");
        assert_eq!(
            recorded_name(&r("reg.example/corp/build:jammy")),
            "reg.example/corp/build:jammy"
        );
        assert!(same_image("oci:build:v1", &r("oci:/srv/build:v1")));
        assert!(!same_image("oci:build:v1", &r("oci:/srv/build:v2")));
        assert!(!same_image("oci:other:v1", &r("oci:/srv/build:v1")));
        assert!(same_image(
            "reg.example/corp/build:jammy",
            &r("reg.example/corp/build:jammy")
        ));
        assert!(!same_image(
            "reg.example/corp/build:jammy",
            &r("reg.example/corp/build:noble")
        ));
        assert!(!same_image(
            "reg.example/corp/build:jammy",
            &r("other.example/corp/build:jammy")
        ));
        let pinned = format!("reg.example/corp/build@sha256:{}", "a".repeat(64));
        assert!(same_image(&pinned, &r("reg.example/corp/build:jammy")));
        assert!(!same_image("host", &r("oci:/srv/build:v1")));
        assert!(!same_image("oci:build:v1", &r("reg.example/build:v1")));
    }

    #[test]
    fn tools_run_on_this_machines_platform() {
        let (os, arch) = host_platform();
        assert_eq!(os, "linux");
        assert!(!arch.is_empty() && arch != "x86_64" && arch != "aarch64");
    }

    #[test]
    fn a_store_others_may_write_is_refused_and_killed_unpacks_are_cleared() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        std::fs::create_dir(&store).unwrap();
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_store(&store).unwrap_err().to_string();
        assert!(
            err.contains("lets others write") && err.contains("777"),
            "{err}"
        );
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_store(&store).unwrap();

        // A killed unpack (nobody holds its lock) goes, with a dir it made
        // unreadable; a running one (its lock held) and a root stay.
        let killed = store.join(format!("{SCRATCH_PREFIX}killed"));
        std::fs::create_dir_all(killed.join("root/usr/locked/deep")).unwrap();
        std::fs::write(killed.join(".lock"), "").unwrap();
        std::fs::set_permissions(
            killed.join("root/usr/locked"),
            std::fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        let running = store.join(format!("{SCRATCH_PREFIX}running"));
        std::fs::create_dir_all(running.join("root")).unwrap();
        let held = std::fs::File::create(running.join(".lock")).unwrap();
        held.lock().unwrap();
        let root = store.join(format!("v{ROOT_VERSION}-abc"));
        std::fs::create_dir(&root).unwrap();
        // A root another user made holds their tools (chown needs root).
        if rustix::process::geteuid().is_root() {
            let theirs = store.join(format!("v{ROOT_VERSION}-theirs"));
            std::fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::lchown(&theirs, Some(12345), None).unwrap();
            let err = check_owned(&theirs).unwrap_err().to_string();
            assert!(err.contains("uid 12345"), "{err}");
            std::fs::remove_dir(&theirs).unwrap();
        }
        remove_abandoned(&store);
        assert!(!killed.exists(), "a killed unpack was left");
        assert!(
            running.join("root").exists(),
            "a running unpack was removed"
        );
        assert!(root.exists());
        drop(held);
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
