//! Capabilities: what a buildpack may do beyond its sandbox. A buildpack
//! declares what it needs in `buildpack.toml`; the platform grants with
//! `cascade build --allow fetch:HOST` (or `--deny-all`); a call passes only
//! when both agree. Least privilege by default: nothing is granted unless
//! the platform says so.
//!
//! ```toml
//! [capabilities]
//! fetch = ["nodejs.org", "file"]   # URL hosts; "file" for file:// URLs
//! ```
//!
//! A buildpack whose download hosts are configuration (a mirror named by
//! the platform) declares `fetch = ["*"]`: then only the platform's grant
//! decides which hosts it reaches.

use serde::{Deserialize, Serialize};

/// `[capabilities]` of buildpack.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    /// Hosts the buildpack fetches from (`file` for file:// URLs).
    #[serde(default)]
    pub fetch: Vec<String>,
    /// Tools of the build environment it runs (the exec capability).
    #[serde(default)]
    pub exec: Vec<String>,
    /// Whether its tools need the network.
    #[serde(default)]
    pub network: bool,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "--allow {0:?}: expected [BUILDPACK=]CAPABILITY, the capability one of fetch:HOST, fetch:*, fetch:file:/DIR, exec:TOOL, exec:* or network{1}"
)]
pub struct GrantError(pub String, pub &'static str);

/// One capability the platform grants.
#[derive(Debug, Clone, PartialEq, Eq)]
enum What {
    /// http(s) from a host, or `*` for any host the buildpack declares.
    Fetch(String),
    /// file:// URLs beneath a directory (absolute, normalised).
    FetchFile(std::path::PathBuf),
    Exec(String),
    Network,
}

/// A grant, to one buildpack (`cascade/node=fetch:nodejs.org`) or to every
/// buildpack the platform chose.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    to: Option<String>,
    what: What,
}

/// What the platform grants. A grant without a buildpack id goes to every
/// buildpack the platform chose (builder, `--buildpack`, the built-in
/// ones), never to one the app named itself (`project.toml` `uri`): those
/// get only grants that name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    grants: Vec<Grant>,
    app_named: std::collections::BTreeSet<String>,
}

fn parse_what(cap: &str) -> Result<What, &'static str> {
    match cap.split_once(':') {
        Some(("fetch", "file")) => {
            Err(" (file:// needs the directory it may read: fetch:file:/srv/mirror)")
        }
        Some(("fetch", rest)) if rest.starts_with("file:") => {
            let dir = std::path::Path::new(&rest["file:".len()..]);
            let plain = dir.is_absolute()
                && dir
                    .components()
                    .all(|c| !matches!(c, std::path::Component::ParentDir));
            if plain {
                Ok(What::FetchFile(dir.components().collect()))
            } else {
                Err(" (the directory of fetch:file: must be absolute, without ..)")
            }
        }
        Some(("fetch", host)) if !host.is_empty() => Ok(What::Fetch(host.to_lowercase())),
        Some(("exec", tool)) if !tool.is_empty() => Ok(What::Exec(tool.into())),
        None if cap == "network" => Ok(What::Network),
        _ => Err(""),
    }
}

impl Grants {
    /// From `--allow` values; `deny_all` grants nothing whatever they say.
    pub fn parse(allow: &[String], deny_all: bool) -> Result<Self, GrantError> {
        let mut g = Self::default();
        for a in allow {
            // `ID=CAP`: an id has no ':' and no '=', a capability may.
            let (to, cap) = match a.split_once('=') {
                Some((id, cap)) if !id.contains(':') => {
                    crate::ids::BuildpackId::new(id).map_err(|_| {
                        GrantError(a.clone(), " (the part before = is not a buildpack id)")
                    })?;
                    (Some(id.to_owned()), cap)
                }
                _ => (None, a.as_str()),
            };
            let what = parse_what(cap).map_err(|hint| GrantError(a.clone(), hint))?;
            g.grants.push(Grant { to, what });
        }
        Ok(if deny_all { Self::default() } else { g })
    }

    /// Say that buildpack `id` was named by the app, not the platform: from
    /// now on only grants that name it apply to it.
    pub fn mark_app_named(&mut self, id: &str) {
        self.app_named.insert(id.to_owned());
    }

    /// The exec grants as `--allow` spells them (`exec:go, cascade/rust=exec:cargo`),
    /// `None` when there are none: a build with one needs a build image.
    pub fn exec_grants(&self) -> Option<String> {
        let names: Vec<String> = self
            .grants
            .iter()
            .filter_map(|g| match (&g.what, &g.to) {
                (What::Exec(t), Some(id)) => Some(format!("--allow {id}=exec:{t}")),
                (What::Exec(t), None) => Some(format!("--allow exec:{t}")),
                _ => None,
            })
            .collect();
        (!names.is_empty()).then(|| names.join(", "))
    }

    /// Whether `id` came from the app.
    pub fn is_app_named(&self, id: &str) -> bool {
        self.app_named.contains(id)
    }

    /// The grants that apply to buildpack `id`.
    fn of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a What> + 'a {
        let app_named = self.is_app_named(id);
        self.grants
            .iter()
            .filter(move |g| match &g.to {
                Some(to) => to == id,
                None => !app_named,
            })
            .map(|g| &g.what)
    }

    /// How to grant `cap` to `id`, for error messages.
    fn how(&self, id: &str, cap: &str) -> String {
        if self.is_app_named(id) {
            format!(
                "buildpack {id} comes from the app's project.toml, so only a grant naming it applies: `--allow {id}={cap}`"
            )
        } else {
            format!("grant it with `cascade build --allow {cap}` (or `--allow {id}={cap}`)")
        }
    }

    /// Whether buildpack `id`, which declared `declared`, may fetch `url`,
    /// and where the bytes may come from; the error says which side is
    /// missing and how to fix it.
    pub fn check_fetch(
        &self,
        id: &str,
        declared: &Declared,
        url: &str,
    ) -> Result<crate::fetch::Source, CapabilityError> {
        let host = fetch_host(url)?;
        if !declared
            .fetch
            .iter()
            .any(|h| (h == "*" && host != "file") || h.eq_ignore_ascii_case(&host))
        {
            return Err(CapabilityError::FetchNotDeclared {
                host,
                id: id.to_owned(),
                declared: declared.fetch.clone(),
            });
        }
        if host == "file" {
            let path = reqwest::Url::parse(url)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .filter(|p| {
                    p.components()
                        .all(|c| !matches!(c, std::path::Component::ParentDir))
                })
                .ok_or_else(|| CapabilityError::NotAFileUrl(url.to_owned()))?;
            for what in self.of(id) {
                if let What::FetchFile(root) = what
                    && let Ok(rel) = path.strip_prefix(root)
                {
                    return Ok(crate::fetch::Source::File {
                        root: root.clone(),
                        rel: rel.to_path_buf(),
                    });
                }
            }
            return Err(CapabilityError::NoFileRoot {
                id: id.to_owned(),
                url: crate::fetch::display_url(url),
                how: self.how(id, "fetch:file:/DIR"),
            });
        }
        if !self
            .of(id)
            .any(|w| matches!(w, What::Fetch(h) if h == "*" || *h == host))
        {
            return Err(CapabilityError::NotGranted {
                capability: format!("fetch:{host}"),
                id: id.to_owned(),
                how: self.how(id, &format!("fetch:{host}")),
            });
        }
        Ok(crate::fetch::Source::Http)
    }

    /// Whether buildpack `id` may run `program`.
    pub fn check_exec(
        &self,
        id: &str,
        declared: &Declared,
        program: &str,
    ) -> Result<(), CapabilityError> {
        if !declared.exec.iter().any(|t| t == program) {
            return Err(CapabilityError::ExecNotDeclared {
                program: program.to_owned(),
                id: id.to_owned(),
                declared: declared.exec.clone(),
            });
        }
        if !self
            .of(id)
            .any(|w| matches!(w, What::Exec(t) if t == "*" || t == program))
        {
            return Err(CapabilityError::NotGranted {
                capability: format!("exec:{program}"),
                id: id.to_owned(),
                how: self.how(id, &format!("exec:{program}")),
            });
        }
        Ok(())
    }

    /// Whether buildpack `id` may run any tool at all: it declares one the
    /// platform grants it. Only such a buildpack's build env (its `bin/` on
    /// PATH, an `LD_PRELOAD`) may reach the tools later buildpacks run, so
    /// native code never comes from a buildpack that was not allowed to run
    /// native code itself.
    pub fn may_exec(&self, id: &str, declared: &Declared) -> bool {
        declared
            .exec
            .iter()
            .any(|tool| self.check_exec(id, declared, tool).is_ok())
    }

    /// Whether a buildpack's tools get the network: it must declare
    /// `network = true` and the platform grant `network` to it.
    pub fn network(&self, id: &str, declared: &Declared) -> bool {
        declared.network && self.of(id).any(|w| *w == What::Network)
    }
}

/// One capability call, as the image's label and the build report record
/// it. Here, with the grants, not in the engine that makes the calls, so
/// the phases and reports that read it need no engine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapabilityUse {
    pub buildpack: String,
    /// `fetch:HOST`.
    pub capability: String,
    pub detail: String,
    pub allowed: bool,
    /// The layer a fetch wrote into (its destination's first name): what
    /// [`provenance`] credits the download to. `None` for exec, whose
    /// writes could be anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
}

impl CapabilityUse {
    /// An allowed exec: a tool ran in the build environment.
    pub fn ran_a_tool(&self) -> bool {
        self.allowed && self.capability.starts_with("exec:")
    }
}

/// A capability call refused, and what would allow it. Guest-visible: a
/// buildpack gets it as the WIT error, so its author reads what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error(
        "capability fetch:{host} denied: buildpack {id} does not declare it (its buildpack.toml [capabilities] fetch = {declared:?}); the buildpack must list {host:?} there"
    )]
    FetchNotDeclared {
        host: String,
        id: String,
        declared: Vec<String>,
    },
    #[error(
        "capability exec:{program} denied: buildpack {id} does not declare it (its buildpack.toml [capabilities] exec = {declared:?})"
    )]
    ExecNotDeclared {
        program: String,
        id: String,
        declared: Vec<String>,
    },
    #[error(
        "capability {capability} denied: the platform did not grant it to buildpack {id}; {how}"
    )]
    NotGranted {
        capability: String,
        id: String,
        how: String,
    },
    #[error(
        "capability fetch:file denied: the platform granted buildpack {id} no directory holding {url}; {how}"
    )]
    NoFileRoot {
        id: String,
        url: String,
        how: String,
    },
    #[error("{0:?}: not a plain absolute file URL")]
    NotAFileUrl(String),
    #[error("{url:?} is not a URL: {message}")]
    NotAUrl { url: String, message: String },
    #[error("{0:?} has no host")]
    NoHost(String),
    #[error("{url:?}: scheme {scheme} is not fetched (http, https or file)")]
    Scheme { url: String, scheme: String },
}

/// The host a fetch capability is named by: the URL's host, or `file`.
pub fn fetch_host(url: &str) -> Result<String, CapabilityError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| CapabilityError::NotAUrl {
        url: url.to_owned(),
        message: e.to_string(),
    })?;
    match parsed.scheme() {
        "file" => Ok("file".into()),
        "http" | "https" => parsed
            .host_str()
            .map(str::to_lowercase)
            .ok_or_else(|| CapabilityError::NoHost(url.to_owned())),
        other => Err(CapabilityError::Scheme {
            url: url.to_owned(),
            scheme: other.to_owned(),
        }),
    }
}

/// The allowed calls of buildpack `id` among `current`, sorted and
/// deduplicated: what a layer it made in this build owes its contents to
/// (the host cannot tell which call wrote which layer, so each made layer
/// is credited with all of them).
pub fn calls_of(id: &str, current: &[CapabilityUse]) -> Vec<CapabilityUse> {
    let mut uses: Vec<CapabilityUse> = current
        .iter()
        .filter(|u| u.allowed && u.buildpack == id)
        .cloned()
        .collect();
    sort_calls(&mut uses);
    uses
}

fn sort_calls(uses: &mut Vec<CapabilityUse>) {
    uses.sort_by(|a, b| (&a.capability, &a.detail).cmp(&(&b.capability, &b.detail)));
    uses.dedup();
}

/// The calls behind an image: those it records, and those each of its
/// layers owes, by (buildpack id, layer name), for the next build to carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    pub image: Vec<CapabilityUse>,
    pub layers: std::collections::BTreeMap<(String, String), Vec<CapabilityUse>>,
}

impl Provenance {
    /// The calls layer `name` of buildpack `id` owes.
    pub fn of_layer(&self, id: &str, name: &str) -> Vec<CapabilityUse> {
        self.layers
            .get(&(id.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_default()
    }
}

/// One layer of a buildpack, as [`provenance`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct LayerCalls<'a> {
    pub name: &'a str,
    /// Kept from the previous build: the calls recorded with it then.
    pub kept: Option<&'a [CapabilityUse]>,
    /// A launch or build layer: what its contents owe is part of the
    /// image's story (a build layer feeds what later buildpacks ship). A
    /// cache-only layer's is not.
    pub shipped: bool,
}

/// The capability calls an image records (label `dev.cascade.capabilities`):
/// the calls that produced it, not only those this build made.
///
/// A rebuild that reuses a layer skips the calls that made it (the node
/// runtime is not fetched again), yet the image holds what they brought
/// in, and an unchanged rebuild must give the digest a cold build gives.
/// So each layer made now is credited with its buildpack's calls of this
/// build: a fetch with the layer it wrote into, every exec (the host
/// cannot tell where an exec wrote) with each layer made now. A kept layer
/// keeps what it was credited with when it was made. The image records,
/// per buildpack of `group` in group order, the allowed calls it made now
/// plus what its kept launch and build layers owe. So a runtime layer made
/// anew drops the old download with the old layer, a buildpack that
/// fetches its inventory on every build still owes its kept runtime to the
/// earlier download, and a cache layer kept forever (a package manager's
/// cache) carries nothing into the image. Crediting every exec to every
/// layer made in its build errs towards naming a call that did not shape
/// a kept layer, never towards hiding one that did. Within a buildpack the
/// calls are sorted and deduplicated, so the record does not depend on the
/// order of work.
pub fn provenance<'a>(
    group: impl IntoIterator<Item = (&'a str, Vec<LayerCalls<'a>>)>,
    current: &[CapabilityUse],
) -> Provenance {
    let mut out = Provenance::default();
    for (id, layers) in group {
        let now = calls_of(id, current);
        let mut uses = now.clone();
        for layer in layers {
            let owed = match layer.kept {
                Some(previous) => {
                    let mut owed: Vec<CapabilityUse> = previous
                        .iter()
                        .filter(|u| u.allowed && u.buildpack == id)
                        .cloned()
                        .collect();
                    sort_calls(&mut owed);
                    if layer.shipped {
                        uses.extend(owed.iter().cloned());
                    }
                    owed
                }
                None => now
                    .iter()
                    .filter(|u| u.into.as_deref().is_none_or(|into| into == layer.name))
                    .cloned()
                    .collect(),
            };
            out.layers
                .insert((id.to_owned(), layer.name.to_owned()), owed);
        }
        sort_calls(&mut uses);
        out.image.extend(uses);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(bp: &str, capability: &str, detail: &str) -> CapabilityUse {
        CapabilityUse {
            buildpack: bp.into(),
            capability: capability.into(),
            detail: detail.into(),
            allowed: true,
            into: None,
        }
    }

    fn fetch(bp: &str, url: &str, into: &str) -> CapabilityUse {
        CapabilityUse {
            into: Some(into.into()),
            ..call(bp, "fetch:host", url)
        }
    }

    fn made(name: &str) -> LayerCalls<'_> {
        LayerCalls {
            name,
            kept: None,
            shipped: true,
        }
    }

    fn kept<'a>(name: &'a str, owed: &'a [CapabilityUse]) -> LayerCalls<'a> {
        LayerCalls {
            name,
            kept: Some(owed),
            shipped: true,
        }
    }

    #[test]
    fn provenance_carries_the_calls_behind_kept_layers() {
        let inventory = fetch("x/node", "inventory.toml", ".inventory");
        let fetch20 = fetch("x/node", "node-v20.tgz", "node");
        let fetch22 = fetch("x/node", "node-v22.tgz", "node");
        let npm = call("x/node", "exec:node", "npm ci (exit 0)");
        let cargo = call("x/rust", "exec:cargo", "cargo build (exit 0)");
        let cache = |name| LayerCalls {
            shipped: false,
            ..made(name)
        };
        let now = [
            inventory.clone(),
            npm.clone(),
            fetch20.clone(),
            cargo.clone(),
        ];
        let cold = provenance(
            [
                (
                    "x/node",
                    vec![made("node"), made("modules"), cache("npm-cache")],
                ),
                ("x/rust", vec![made("target")]),
            ],
            &now,
        );
        // Sorted within a buildpack (exec before fetch), in group order.
        let all = [
            npm.clone(),
            inventory.clone(),
            fetch20.clone(),
            cargo.clone(),
        ];
        assert_eq!(cold.image, all);
        // A download is credited to the layer it wrote, an exec to each.
        let node = cold.of_layer("x/node", "node");
        let modules = cold.of_layer("x/node", "modules");
        let npm_cache = cold.of_layer("x/node", "npm-cache");
        let rust = cold.of_layer("x/rust", "target");
        assert_eq!(node, [npm.clone(), fetch20.clone()]);
        assert_eq!(modules, std::slice::from_ref(&npm));
        assert_eq!(rust, std::slice::from_ref(&cargo));
        // No change: only the inventory is fetched again; everything kept.
        let cache_kept = |owed| LayerCalls {
            shipped: false,
            ..kept("npm-cache", owed)
        };
        let noop = provenance(
            [
                (
                    "x/node",
                    vec![
                        kept("node", &node),
                        kept("modules", &modules),
                        cache_kept(&npm_cache),
                    ],
                ),
                ("x/rust", vec![kept("target", &rust)]),
            ],
            std::slice::from_ref(&inventory),
        );
        assert_eq!(noop.image, cold.image);
        assert_eq!(noop.layers, cold.layers, "kept layers keep what they owe");
        // A new lockfile: npm again, the runtime layer kept.
        let lock = provenance(
            [(
                "x/node",
                vec![kept("node", &node), made("modules"), cache_kept(&npm_cache)],
            )],
            &[inventory.clone(), npm.clone()],
        );
        assert_eq!(lock.image, all[..3]);
        // A new runtime and so new modules; the cache layer, kept, owes
        // the old download but ships nothing: the old download is gone.
        let upgrade = provenance(
            [(
                "x/node",
                vec![made("node"), made("modules"), cache_kept(&npm_cache)],
            )],
            &[inventory.clone(), fetch22.clone(), npm.clone()],
        );
        assert_eq!(upgrade.image, [npm.clone(), inventory.clone(), fetch22]);
        // The same release from another mirror: the runtime layer anew,
        // the modules kept; the old mirror's download is not carried by
        // the modules, which it did not write.
        let mirror = fetch("x/node", "mirror/node-v20.tgz", "node");
        let moved = provenance(
            [("x/node", vec![made("node"), kept("modules", &modules)])],
            &[inventory.clone(), mirror.clone()],
        );
        assert_eq!(moved.image, [npm.clone(), inventory.clone(), mirror]);
        // Denied calls are never recorded.
        let denied = CapabilityUse {
            allowed: false,
            ..call("x/node", "exec:sh", "sh")
        };
        assert_eq!(provenance([("x/node", vec![])], &[denied]).image, []);
        // Buildpacks no longer in the group leave no trace.
        let rust_only = provenance([("x/rust", vec![kept("target", &rust)])], &[]);
        assert_eq!(rust_only.image, [cargo]);
    }

    fn declared(hosts: &[&str]) -> Declared {
        Declared {
            fetch: hosts.iter().map(|h| (*h).to_owned()).collect(),
            ..Declared::default()
        }
    }

    #[test]
    fn both_declaration_and_grant_are_needed() {
        let url = "https://nodejs.org/dist/v22/node.tar.gz";
        let granted = Grants::parse(&["fetch:nodejs.org".into()], false).unwrap();
        assert!(
            granted
                .check_fetch("a/b", &declared(&["nodejs.org"]), url)
                .is_ok()
        );
        let e = granted.check_fetch("a/b", &declared(&[]), url).unwrap_err();
        assert!(e.to_string().contains("does not declare"), "{e}");
        let e = Grants::default()
            .check_fetch("a/b", &declared(&["nodejs.org"]), url)
            .unwrap_err();
        assert!(e.to_string().contains("--allow fetch:nodejs.org"), "{e}");
        let all = Grants::parse(&["fetch:*".into()], false).unwrap();
        assert!(
            all.check_fetch("a/b", &declared(&["nodejs.org"]), url)
                .is_ok()
        );
        let none = Grants::parse(&["fetch:*".into()], true).unwrap();
        assert!(
            none.check_fetch("a/b", &declared(&["nodejs.org"]), url)
                .is_err()
        );
        assert!(Grants::parse(&["fetch".into()], false).is_err());
        assert!(Grants::parse(&["fetch:file".into()], false).is_err());
        // A declared "*" leaves the choice of hosts to the grant.
        assert!(granted.check_fetch("a/b", &declared(&["*"]), url).is_ok());
        let e = granted
            .check_fetch("a/b", &declared(&["*"]), "http://127.0.0.1:9/n.tgz")
            .unwrap_err();
        assert!(e.to_string().contains("--allow fetch:127.0.0.1"), "{e}");
    }

    #[test]
    fn file_urls_need_a_granted_root_and_stay_beneath_it() {
        let g = Grants::parse(&["fetch:file:/srv/mirror".into()], false).unwrap();
        let d = declared(&["file"]);
        assert_eq!(
            g.check_fetch("a/b", &d, "file:///srv/mirror/node/n.tgz")
                .unwrap(),
            crate::fetch::Source::File {
                root: "/srv/mirror".into(),
                rel: "node/n.tgz".into()
            }
        );
        for url in [
            "file:///etc/passwd",
            "file:///srv/mirror-evil/x",
            "file:///srv/mirror/../../etc/passwd",
        ] {
            assert!(g.check_fetch("a/b", &d, url).is_err(), "{url}");
        }
        // "*" is for hosts: it never stands for the file system.
        let star = Grants::parse(&["fetch:*".into()], false).unwrap();
        assert!(
            star.check_fetch("a/b", &declared(&["*"]), "file:///srv/mirror/x")
                .is_err()
        );
        assert!(Grants::parse(&["fetch:file:relative".into()], false).is_err());
    }

    #[test]
    fn grants_can_name_a_buildpack_and_app_named_buildpacks_get_only_those() {
        let url = "https://nodejs.org/n.tgz";
        let d = declared(&["nodejs.org"]);
        let mut g = Grants::parse(
            &["cascade/node=fetch:nodejs.org".into(), "exec:*".into()],
            false,
        )
        .unwrap();
        assert!(g.check_fetch("cascade/node", &d, url).is_ok());
        assert!(g.check_fetch("other/bp", &d, url).is_err());
        let exec = Declared {
            exec: vec!["sh".into()],
            ..Declared::default()
        };
        assert!(g.check_exec("app/bp", &exec, "sh").is_ok());
        g.mark_app_named("app/bp");
        let e = g.check_exec("app/bp", &exec, "sh").unwrap_err().to_string();
        assert!(
            e.contains("project.toml") && e.contains("app/bp=exec:sh"),
            "{e}"
        );
        let g2 = Grants::parse(&["app/bp=exec:sh".into()], false).unwrap();
        let mut g2 = g2;
        g2.mark_app_named("app/bp");
        assert!(g2.check_exec("app/bp", &exec, "sh").is_ok());
    }

    #[test]
    fn only_a_buildpack_that_declares_a_granted_tool_may_exec() {
        let go = Declared {
            exec: vec!["go".into()],
            ..Declared::default()
        };
        let g = Grants::parse(&["exec:go".into()], false).unwrap();
        assert!(g.may_exec("a/go", &go));
        assert!(!g.may_exec("a/none", &Declared::default()), "declares none");
        let cargo = Grants::parse(&["exec:cargo".into()], false).unwrap();
        assert!(!cargo.may_exec("a/go", &go), "granted another tool");
        let mut named = g.clone();
        named.mark_app_named("a/go");
        assert!(
            !named.may_exec("a/go", &go),
            "app-named, grant names no one"
        );
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(fetch_host("file:///tmp/x.tgz").unwrap(), "file");
        assert_eq!(fetch_host("http://127.0.0.1:8080/a").unwrap(), "127.0.0.1");
        assert!(fetch_host("ftp://x/y").is_err());
    }
}
