//! What a build starts from: its image's build cache (locked, restored),
//! and each member's standing (what its build env may reach).

#[allow(clippy::wildcard_imports)]
use super::*;

/// The capability calls this build made (for the report), and those the
/// image records and each layer owes: these plus what its kept layers owe
/// to earlier builds.
pub(super) fn capability_calls(
    req: &BuildRequest,
    built: &[crate::phase::BuiltBuildpack],
    restored: &Restored,
) -> (Vec<CapabilityUse>, crate::capabilities::Provenance) {
    let uses = req
        .capabilities
        .as_ref()
        .map(|c| c.used())
        .unwrap_or_default();
    let group = built.iter().map(|b| {
        let id = b.runner.id();
        let previous = restored.layers.get(id);
        let layers = b
            .layers
            .iter()
            .map(|l| {
                let kept = l
                    .layer
                    .reused
                    .then(|| {
                        previous?
                            .iter()
                            .find(|p| p.restored.name == l.layer.name)
                            .map(|p| p.calls.as_slice())
                    })
                    .flatten();
                crate::capabilities::LayerCalls {
                    name: l.layer.name.as_str(),
                    kept,
                    shipped: l.layer.types.launch || l.layer.types.build,
                }
            })
            .collect();
        (id.as_str(), layers)
    });
    let provenance = crate::capabilities::provenance(group, &uses);
    (uses, provenance)
}

/// The buildpacks of the group that the app named itself.
pub(super) fn app_named(req: &BuildRequest, built: &[crate::phase::BuiltBuildpack]) -> Vec<String> {
    let Some(host) = &req.capabilities else {
        return Vec::new();
    };
    let grants = host.grants();
    built
        .iter()
        .map(|b| b.runner.id().to_string())
        .filter(|id| grants.is_app_named(id))
        .collect()
}

pub(super) fn open_cache(
    req: &BuildRequest,
    oci: &Oci,
    reporter: &dyn Reporter,
) -> Result<Option<ImageCache>, CacheError> {
    if !req.use_cache {
        return Ok(None);
    }
    let cache = ImageCache::open(&oci.cache_root, &cache_key(req), reporter)?;
    if req.clear_cache {
        cache.clear()?;
    }
    Ok(Some(cache))
}

/// What the build cache is keyed by: the output in canonical form (the
/// layout's absolute directory and tag, or the registry reference with its
/// registry and tag spelled out) or the platform's `--cache-key`, and the
/// exact buildpacks (by component digest). So a pull-request build and a
/// main build share no cache layer unless the platform asks, and a changed
/// buildpack starts from an empty cache instead of another one's layers.
pub(super) fn cache_key(req: &BuildRequest) -> String {
    let output = match (&req.cache_key, &req.output) {
        (Some(key), _) => format!("key:{key}"),
        (None, ImageRef::Layout { dir, tag }) => {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            format!(
                "oci:{}:{}",
                dir.display(),
                tag.as_deref().unwrap_or("latest")
            )
        }
        (None, ImageRef::Registry(r)) => r.whole(),
        (None, other) => other.to_string(),
    };
    let mut buildpacks: Vec<String> = req
        .buildpacks
        .iter()
        .map(|b| {
            let digest = b
                .component_digest()
                .map(ToString::to_string)
                .unwrap_or_default();
            format!("{}@{digest}", b.id())
        })
        .collect();
    buildpacks.sort();
    format!("{output}\n{}", buildpacks.join("\n"))
}

/// What each member of the group was granted (see [`crate::phase::Standing`]).
pub(super) fn standing(
    req: &BuildRequest,
    group: &[crate::phase::Chosen],
) -> std::collections::BTreeMap<String, crate::phase::Standing> {
    let Some(host) = &req.capabilities else {
        return std::collections::BTreeMap::new();
    };
    let grants = host.grants();
    group
        .iter()
        .map(|c| {
            let (id, declared) = (c.runner.id().as_str(), &c.runner.manifest().capabilities);
            let standing = crate::phase::Standing {
                app_named: grants.is_app_named(id),
                may_exec: grants.may_exec(id, declared),
                network: grants.network(id, declared),
            };
            (id.to_owned(), standing)
        })
        .collect()
}

/// What the build cache knows a build image by: its digest, or `host`.
pub(super) fn build_image_key(b: &crate::report::BuildImageRef) -> String {
    match (&b.digest, b.hermetic) {
        (Some(digest), true) => digest.clone(),
        _ => "host".to_owned(),
    }
}

/// CNB's restore phase: the previous build's layers, offered back.
pub(super) fn restore(
    cache: &ImageCache,
    layers_root: &Path,
    store: &Layout,
    build_image: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<Restored, CacheError> {
    let r = cache.restore(layers_root, store, build_image, reporter)?;
    let n: usize = r.layers.values().map(Vec::len).sum();
    reporter.note(&format!(
        "{n} layer(s) of the previous build offered back{}",
        if r.app.is_some() {
            ", app layer known"
        } else {
            ""
        }
    ));
    Ok(r)
}
