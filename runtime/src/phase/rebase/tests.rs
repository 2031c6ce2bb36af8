//! Export and rebase over a fake buildpack and a real layout: no wasm, no
//! registry, no binary. The property they share: an app rebased onto a base
//! is byte for byte the image a build on that base makes.

use std::path::Path;

use super::*;
use crate::api::{BuildOutput, EnvEntry, EnvOp, EnvScope, Layer, LayerTypes, Process, Target};
use crate::guest_tree::GuestTree;
use crate::ids::{LayerName, ProcessType};
use crate::oci::compress::Compression;
use crate::oci::document::{self, RunConfig};
use crate::oci::layer::{LayerSource, Owner, write_layer};
use crate::oci::{MEDIA_LAYER_GZIP, NORMALIZED_EPOCH};
use crate::phase::fake::chosen;
use crate::phase::{Build, Export};
use crate::report::Silent;
use crate::run_image::RunImages;

/// A base image tagged `tag` in `layout`: one layer holding `etc/<file>`,
/// `PATH` in its `Env`, its version in the labels a base passes on.
fn base(layout: &Layout, tag: &str, file: &str, version: &str) -> ImageRef {
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir(tree.path().join("etc")).unwrap();
    std::fs::write(tree.path().join("etc").join(file), version).unwrap();
    let root = GuestTree::open(tree.path()).unwrap();
    let source = LayerSource {
        root: &root,
        prefix: "",
        bin_exec: false,
    };
    let blob = write_layer(
        &source,
        &layout.blobs_dir(),
        Owner { uid: 0, gid: 0 },
        Compression::Gzip,
    )
    .unwrap();
    let config = ImageConfig {
        created: Some(format!("2026-0{version}-01T00:00:00Z")),
        architecture: "amd64".into(),
        os: "linux".into(),
        config: Some(RunConfig {
            env: Some(vec!["PATH=/usr/bin:/bin".into()]),
            labels: Some(
                [
                    (
                        "io.buildpacks.base.id".to_owned(),
                        format!("base-{version}"),
                    ),
                    (
                        crate::run_image::VERSION_LABEL.to_owned(),
                        version.to_owned(),
                    ),
                ]
                .into(),
            ),
            ..RunConfig::default()
        }),
        rootfs: document::RootFs {
            diff_ids: vec![blob.diff_id.clone()],
            ..document::RootFs::default()
        },
        ..ImageConfig::default()
    };
    let config = document::to_bytes(&config);
    let config_digest = layout.write_blob(&config).unwrap();
    let manifest = document::to_bytes(&document::manifest(
        document::descriptor(MEDIA_CONFIG, &config_digest, config.len() as u64),
        vec![document::descriptor(
            MEDIA_LAYER_GZIP,
            &blob.digest,
            blob.size,
        )],
    ));
    let digest = layout.write_blob(&manifest).unwrap();
    layout
        .set_tag(
            tag,
            document::descriptor(MEDIA_MANIFEST, &digest, manifest.len() as u64),
        )
        .unwrap();
    tagged(layout, tag)
}

fn tagged(layout: &Layout, tag: &str) -> ImageRef {
    ImageRef::Layout {
        dir: layout.dir().to_path_buf(),
        tag: Some(tag.into()),
    }
}

/// Build the app at `app` on `run` with a fake buildpack (a launch layer
/// with `bin/`, an env entry, a `web` process) and store it as `tag`.
fn build_on(run: &ImageRef, layout: &Layout, oci: &Oci, app: &Path, tag: &str) -> Digest {
    let run_image = RunImage::load(run, ("linux", "amd64"), oci).unwrap();
    let bp = chosen("test/rt", |input| {
        let rt = input.layers.path().join("rt");
        std::fs::create_dir_all(rt.join("bin")).unwrap();
        std::fs::write(rt.join("bin/serve"), "#!/bin/sh\n").unwrap();
        Ok(BuildOutput {
            layers: vec![Layer {
                name: LayerName::new("rt").unwrap(),
                types: LayerTypes {
                    launch: true,
                    build: false,
                    cache: false,
                },
                metadata: toml::Table::new(),
                env: vec![EnvEntry {
                    name: "RT_HOME".into(),
                    value: "/layers/test_rt/rt".into(),
                    op: EnvOp::Override,
                    delim: None,
                    scope: EnvScope::Launch,
                }],
                reused: false,
                sbom: None,
            }],
            processes: vec![Process {
                kind: ProcessType::new("web").unwrap(),
                command: vec!["serve".into()],
                args: Vec::new(),
                default: true,
                working_dir: None,
            }],
            labels: vec![("org.example.app".into(), "yes".into())],
        })
    });
    let layers = tempfile::tempdir().unwrap();
    let workspace = std::sync::Arc::new(GuestTree::open(app).unwrap());
    let built = Build {
        group: &[bp],
        app: &workspace,
        layers_root: layers.path(),
        platform_env: &crate::api::Env::new(),
        target: &Target::new("linux", "amd64"),
        restored: &std::collections::BTreeMap::new(),
        max_layers_bytes: 0,
        standing: &std::collections::BTreeMap::new(),
        reporter: &Silent,
    }
    .run()
    .unwrap();
    // The run image's OS facts, read from its layers as a build reads them.
    let os = crate::sbom::os::read(
        &run_image,
        &|d: &Digest| Some(layout.blob_path(d)).filter(|p| p.is_file()),
        &oci.cache_root,
    )
    .unwrap();
    let exported = Export {
        built: &built,
        app: &workspace,
        run_image: &run_image,
        store: layout,
        created: NORMALIZED_EPOCH,
        owner: Owner::default(),
        compression: Compression::Gzip,
        previous_app: None,
        app_unchanged: false,
        previous_sbom: None,
        os: os.as_ref(),
        capabilities: &[],
        app_named: &[],
        build_image: None,
        reporter: &Silent,
    }
    .run()
    .unwrap();
    oci.put_image(
        &tagged(layout, tag),
        &exported.config,
        &exported.manifest,
        ("linux", "amd64"),
        &mut Transfers::default(),
    )
    .unwrap()
}

struct World {
    _tmp: tempfile::TempDir,
    layout: Layout,
    oci: Oci,
    app: std::path::PathBuf,
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(&tmp.path().join("images")).unwrap();
    let oci = Oci::new(&tmp.path().join("cache"), None).unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("index.html"), "hello").unwrap();
    World {
        _tmp: tmp,
        layout,
        oci,
        app,
    }
}

fn rebase<'a>(
    w: &'a World,
    image: &'a ImageRef,
    run: &'a ImageRef,
    out: &'a ImageRef,
    runs: &'a RunImages,
) -> Rebase<'a> {
    Rebase {
        image,
        run_image: run,
        output: Some(out),
        force: false,
        allow_downgrade: false,
        dry_run: false,
        run_images: runs,
        oci: &w.oci,
        reporter: &Silent,
    }
}

#[test]
fn a_rebased_image_is_the_image_a_build_on_the_new_base_makes() {
    let w = world();
    let old = base(&w.layout, "base-1", "os-release", "1");
    let new = base(&w.layout, "base-2", "os-release", "2");
    let built_old = build_on(&old, &w.layout, &w.oci, &w.app, "app-on-1");
    let built_new = build_on(&new, &w.layout, &w.oci, &w.app, "app-on-2");
    let (image, out) = (tagged(&w.layout, "app-on-1"), tagged(&w.layout, "rebased"));
    let runs = RunImages::default();
    let rebased = rebase(&w, &image, &new, &out, &runs).run().unwrap();
    assert!(rebased.changed);
    assert_eq!(rebased.old_digest, built_old.to_string());
    let (got, want) = (
        w.oci.read(&out, None).unwrap(),
        w.oci.read(&tagged(&w.layout, "app-on-2"), None).unwrap(),
    );
    let text = |c: &ImageConfig| String::from_utf8(document::to_bytes(c)).unwrap();
    assert_eq!(text(&got.config), text(&want.config), "the config");
    assert_eq!(rebased.new_digest, built_new.to_string(), "the manifest");
    // The app layers are the old image's, byte for byte.
    let app_layers = |r: &ReadImage| r.manifest.layers()[1..].to_vec();
    let before = w.oci.read(&image, None).unwrap();
    let kept = app_layers(&got)
        .into_iter()
        .zip(app_layers(&before))
        .filter(|(a, b)| a == b)
        .count();
    assert_eq!(
        kept,
        rebased.app_layers - 1,
        "all but the rewritten SBOM layer"
    );
    assert_eq!(got.config.label("io.buildpacks.base.id"), Some("base-2"));
    assert_eq!(got.config.label("org.example.app"), Some("yes"));
    assert!(
        got.config
            .env()
            .contains(&"RT_HOME=/layers/test_rt/rt".to_owned()),
        "{:?}",
        got.config.env()
    );
}

#[test]
fn a_rebase_back_onto_an_older_base_is_refused_and_an_image_on_its_base_is_left_alone() {
    let w = world();
    let old = base(&w.layout, "base-1", "os-release", "1");
    let new = base(&w.layout, "base-2", "os-release", "2");
    build_on(&new, &w.layout, &w.oci, &w.app, "app");
    let (image, out) = (tagged(&w.layout, "app"), tagged(&w.layout, "out"));
    let runs = RunImages::default();
    let err = rebase(&w, &image, &old, &out, &runs).run().unwrap_err();
    assert!(matches!(err, RebaseError::Downgrade { .. }), "{err}");
    assert!(err.is_refusal());
    let same = Rebase {
        output: None,
        ..rebase(&w, &image, &new, &out, &runs)
    };
    assert!(!same.would_change().unwrap());
    assert!(!same.run().unwrap().changed);
}

#[test]
fn an_image_with_a_broken_label_fails_naming_the_field() {
    let w = world();
    let run = base(&w.layout, "base-1", "os-release", "1");
    build_on(&run, &w.layout, &w.oci, &w.app, "app");
    // Rewrite the app's config with a lifecycle label of the wrong shape.
    let read = w.oci.read(&tagged(&w.layout, "app"), None).unwrap();
    let mut config = read.config.clone();
    config.run_config_mut().labels.as_mut().unwrap().insert(
        labels::LIFECYCLE_METADATA.into(),
        r#"{"runImage":"x"}"#.into(),
    );
    let bytes = document::to_bytes(&config);
    let digest = w.layout.write_blob(&bytes).unwrap();
    let mut manifest = read.manifest.clone();
    manifest.set_config(document::descriptor(
        MEDIA_CONFIG,
        &digest,
        bytes.len() as u64,
    ));
    let manifest = document::to_bytes(&manifest);
    let m = w.layout.write_blob(&manifest).unwrap();
    w.layout
        .set_tag(
            "broken",
            document::descriptor(MEDIA_MANIFEST, &m, manifest.len() as u64),
        )
        .unwrap();
    let (image, out) = (tagged(&w.layout, "broken"), tagged(&w.layout, "out"));
    let runs = RunImages::default();
    let err = rebase(&w, &image, &run, &out, &runs).run().unwrap_err();
    assert!(
        err.to_string().contains("lifecycle label") && err.to_string().contains("runImage"),
        "{err}"
    );
}
