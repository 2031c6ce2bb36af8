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

use crate::engine::CapabilityUse;

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
#[error("--allow {0:?}: expected fetch:HOST, fetch:*, exec:TOOL, exec:* or network")]
pub struct GrantError(pub String);

/// What the platform grants, to every buildpack that declares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    fetch: Vec<String>,
    exec: Vec<String>,
    network: bool,
}

impl Grants {
    /// From `--allow` values; `deny_all` grants nothing whatever they say.
    pub fn parse(allow: &[String], deny_all: bool) -> Result<Self, GrantError> {
        let mut g = Self::default();
        for a in allow {
            match a.split_once(':') {
                Some(("fetch", host)) if !host.is_empty() => g.fetch.push(host.to_lowercase()),
                Some(("exec", tool)) if !tool.is_empty() => g.exec.push(tool.into()),
                None if a == "network" => g.network = true,
                _ => return Err(GrantError(a.clone())),
            }
        }
        Ok(if deny_all { Self::default() } else { g })
    }

    /// Whether buildpack `id`, which declared `declared`, may fetch `url`;
    /// the error says which side is missing and how to fix it.
    pub fn check_fetch(&self, id: &str, declared: &Declared, url: &str) -> Result<(), String> {
        let host = fetch_host(url)?;
        if !declared
            .fetch
            .iter()
            .any(|h| h == "*" || h.eq_ignore_ascii_case(&host))
        {
            return Err(format!(
                "capability fetch:{host} denied: buildpack {id} does not declare it (its buildpack.toml [capabilities] fetch = {:?}); the buildpack must list {host:?} there",
                declared.fetch
            ));
        }
        if !self.fetch.iter().any(|h| h == "*" || *h == host) {
            return Err(format!(
                "capability fetch:{host} denied: the platform did not grant it to buildpack {id}; grant it with `cascade build --allow fetch:{host}`"
            ));
        }
        Ok(())
    }

    /// Whether buildpack `id` may run `program`.
    pub fn check_exec(&self, id: &str, declared: &Declared, program: &str) -> Result<(), String> {
        if !declared.exec.iter().any(|t| t == program) {
            return Err(format!(
                "capability exec:{program} denied: buildpack {id} does not declare it (its buildpack.toml [capabilities] exec = {:?})",
                declared.exec
            ));
        }
        if !self.exec.iter().any(|t| t == "*" || t == program) {
            return Err(format!(
                "capability exec:{program} denied: the platform did not grant it to buildpack {id}; grant it with `cascade build --allow exec:{program}`"
            ));
        }
        Ok(())
    }

    /// Whether a buildpack's tools get the network: it must declare
    /// `network = true` and the platform grant `network`.
    pub fn network(&self, declared: &Declared) -> bool {
        declared.network && self.network
    }
}

/// The host a fetch capability is named by: the URL's host, or `file`.
pub fn fetch_host(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "file" => Ok("file".into()),
        "http" | "https" => parsed
            .host_str()
            .map(str::to_lowercase)
            .ok_or_else(|| format!("{url:?} has no host")),
        other => Err(format!(
            "{url:?}: scheme {other} is not fetched (http, https or file)"
        )),
    }
}

/// The capability calls an image records (label `dev.cascade.capabilities`):
/// the calls that produced its layers, not only those this build made.
///
/// A rebuild that reuses a layer skips the call that made it (the node
/// runtime is not fetched again), yet the image holds what that call
/// brought in, and an unchanged rebuild must give the digest a cold build
/// gives. So, per buildpack of `group` (id, whether it kept a layer of the
/// previous build), in group order: the allowed calls it made now, plus
/// the previous image's calls of each capability it did not call again —
/// carried only when it kept a layer, since then their result is still
/// there. Within a buildpack the calls are sorted and deduplicated, so the
/// record does not depend on the order of work.
pub fn provenance<'a>(
    group: impl IntoIterator<Item = (&'a str, bool)>,
    previous: &[CapabilityUse],
    current: &[CapabilityUse],
) -> Vec<CapabilityUse> {
    let mut out = Vec::new();
    for (id, kept_a_layer) in group {
        let now: Vec<&CapabilityUse> = current
            .iter()
            .filter(|u| u.allowed && u.buildpack == id)
            .collect();
        let mut uses: Vec<CapabilityUse> = now.iter().map(|u| (*u).clone()).collect();
        if kept_a_layer {
            uses.extend(
                previous
                    .iter()
                    .filter(|p| {
                        p.allowed
                            && p.buildpack == id
                            && !now.iter().any(|u| u.capability == p.capability)
                    })
                    .cloned(),
            );
        }
        uses.sort_by(|a, b| (&a.capability, &a.detail).cmp(&(&b.capability, &b.detail)));
        uses.dedup();
        out.extend(uses);
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
        }
    }

    #[test]
    fn provenance_carries_the_calls_behind_kept_layers() {
        let fetch20 = call("x/node", "fetch:nodejs.org", "node-v20.tgz");
        let fetch22 = call("x/node", "fetch:nodejs.org", "node-v22.tgz");
        let npm = call("x/node", "exec:node", "npm ci (exit 0)");
        let cargo = call("x/rust", "exec:cargo", "cargo build (exit 0)");
        let cold = provenance(
            [("x/node", false), ("x/rust", false)],
            &[],
            &[npm.clone(), fetch20.clone(), cargo.clone()],
        );
        // Sorted within a buildpack (exec before fetch), in group order.
        assert_eq!(cold, [npm.clone(), fetch20.clone(), cargo.clone()]);
        // No change: nothing called again, everything kept.
        let noop = provenance(
            [("x/node", true), ("x/rust", true)],
            &cold,
            std::slice::from_ref(&cargo),
        );
        assert_eq!(noop, cold);
        // A new lockfile: npm again, the runtime kept.
        let lock = provenance([("x/node", true)], &cold, std::slice::from_ref(&npm));
        assert_eq!(lock, [npm.clone(), fetch20.clone()]);
        // A new runtime: the old download is no longer in the image.
        let upgrade = provenance([("x/node", true)], &cold, &[fetch22.clone(), npm.clone()]);
        assert_eq!(upgrade, [npm.clone(), fetch22]);
        // Nothing kept: nothing carried. Denied calls are never recorded.
        let denied = CapabilityUse {
            allowed: false,
            ..call("x/node", "exec:sh", "sh")
        };
        assert_eq!(provenance([("x/node", false)], &cold, &[denied]), []);
        // Buildpacks no longer in the group leave no trace.
        assert_eq!(provenance([("x/rust", true)], &cold, &[]), [cargo]);
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
        assert!(e.contains("does not declare"), "{e}");
        let e = Grants::default()
            .check_fetch("a/b", &declared(&["nodejs.org"]), url)
            .unwrap_err();
        assert!(e.contains("--allow fetch:nodejs.org"), "{e}");
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
        // A declared "*" leaves the choice of hosts to the grant.
        assert!(granted.check_fetch("a/b", &declared(&["*"]), url).is_ok());
        let e = granted
            .check_fetch("a/b", &declared(&["*"]), "http://127.0.0.1:9/n.tgz")
            .unwrap_err();
        assert!(e.contains("--allow fetch:127.0.0.1"), "{e}");
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(fetch_host("file:///tmp/x.tgz").unwrap(), "file");
        assert_eq!(fetch_host("http://127.0.0.1:8080/a").unwrap(), "127.0.0.1");
        assert!(fetch_host("ftp://x/y").is_err());
    }
}
