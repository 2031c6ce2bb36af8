//! Finding the tool a buildpack asked for: on the build image's `PATH`
//! inside the image, on the host's (only with `--build-image host`), or by
//! its path in a layer the buildpack (or an earlier one) installed.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Resolve `program`: a bare name on the build environment's PATH (the
/// build image's, looked up inside it; the host's with `--build-image
/// host`), or an absolute path inside the buildpack's own layers or an
/// earlier build layer (a runtime it fetched, such as node). Anything else
/// is refused.
pub fn resolve_tool(env: &BuildEnv, req: &ExecRequest<'_>) -> Result<Tool, ExecError> {
    let program = || req.program.to_owned();
    if !req.program.contains('/') {
        return match env {
            BuildEnv::Missing => Err(ExecError::NoBuildEnv(program())),
            BuildEnv::Host => {
                let host =
                    find_tool(req.program).ok_or_else(|| ExecError::NotOnHostPath(program()))?;
                Ok(Tool {
                    started_as: host.clone(),
                    host,
                    in_layer: false,
                })
            }
            BuildEnv::Image { root, .. } => find_in_image(root, &env.path(), req.program)
                .ok_or_else(|| ExecError::NotOnImagePath {
                    program: program(),
                    path: env.path(),
                }),
        };
    }
    let guest = Path::new(req.program);
    let plain = guest.is_absolute()
        && guest
            .components()
            .all(|c| !matches!(c, std::path::Component::ParentDir));
    let (tree, rest) = plain
        .then(|| {
            inside(guest, req.layers, req.layers_guest).or_else(|| {
                req.build_layers
                    .iter()
                    .find_map(|m| inside(guest, &m.tree, &m.guest))
            })
        })
        .flatten()
        .ok_or_else(|| ExecError::OutsideLayers {
            program: program(),
            layers: req.layers_guest.to_owned(),
        })?;
    // Resolved beneath the layer's handle: a link that leads out of it is
    // an error, as is anything but a regular file.
    let real = tree
        .canonical(&rest)
        .ok()
        .filter(|r| tree.metadata(r).is_ok_and(|m| m.is_file()))
        .ok_or_else(|| ExecError::NotAFile(program()))?;
    Ok(Tool {
        host: tree.path().join(real),
        started_as: guest.to_path_buf(),
        in_layer: true,
    })
}

/// `guest` as a path under `root` (the guest path of `tree`), if it is one.
pub(super) fn inside<'t>(
    guest: &Path,
    tree: &'t GuestTree,
    root: &str,
) -> Option<(&'t GuestTree, PathBuf)> {
    guest
        .strip_prefix(root)
        .ok()
        .filter(|rest| !rest.as_os_str().is_empty())
        .map(|rest| (tree, rest.to_path_buf()))
}

/// `program` on `path` inside the build image at `root`: links are resolved
/// beneath the root (an absolute link means the image's `/`), never out of
/// it, and the result must be an executable regular file. It is started by
/// its path in the image.
pub(super) fn find_in_image(root: &Path, path: &str, program: &str) -> Option<Tool> {
    use cap_std::fs::PermissionsExt as _;
    let tree = GuestTree::open(root).ok()?;
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .find_map(|dir| {
            let guest = Path::new(dir).join(program);
            let in_image = guest.strip_prefix("/").ok()?;
            let resolved = tree.resolve_rooted(in_image).ok()?;
            let meta = tree.metadata(&resolved).ok()?;
            (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then(|| Tool {
                host: root.join(&resolved),
                started_as: guest.clone(),
                in_layer: false,
            })
        })
}

/// `program` on the host's PATH.
pub fn find_tool(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// What of the host a tool found on PATH needs bound: the directory it is
/// in (its siblings are what it starts by name: rustup's proxies, gcc's
/// drivers), never its install prefix (`~/.cargo` holds credentials) and
/// never a home directory itself. `None` for the system's dirs, which are
/// bound anyway.
pub(super) fn tool_bind(tool: &Path) -> Option<PathBuf> {
    let dir = tool.parent()?;
    let system = ["/usr", "/bin", "/sbin", "/lib"]
        .iter()
        .any(|d| dir.starts_with(d));
    if system {
        return None;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if dir == Path::new("/") || home.as_deref() == Some(dir) {
        return Some(tool.to_path_buf());
    }
    Some(dir.to_path_buf())
}
