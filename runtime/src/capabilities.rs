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
        if !declared.fetch.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(fetch_host("file:///tmp/x.tgz").unwrap(), "file");
        assert_eq!(fetch_host("http://127.0.0.1:8080/a").unwrap(), "127.0.0.1");
        assert!(fetch_host("ftp://x/y").is_err());
    }
}
