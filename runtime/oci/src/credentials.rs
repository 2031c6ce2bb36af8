//! Registry credentials from the Docker config (`$DOCKER_CONFIG/config.json`,
//! else `~/.docker/config.json`), looked up as every tool of this ecosystem
//! looks them up: the registry's `credHelpers` entry, else the `credsStore`
//! for all registries, else its `auths` entry; a helper is the program
//! `docker-credential-<name>` on `PATH`, asked with `get` and the registry
//! on stdin (the docker-credential-helpers protocol).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use wait_timeout::ChildExt as _;

/// How long a credential helper may take (a keychain may prompt, a cloud
/// helper makes a request).
const HELPER_TIMEOUT: Duration = Duration::from_mins(1);
/// Bytes of a helper's answer read at most.
const MAX_ANSWER: u64 = 1 << 20;

/// The parts of the Docker config that hold credentials.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    pub cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    pub creds_store: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthEntry {
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// What the config says for a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    None,
    Basic { username: String, password: String },
}

/// A credential could not be had, and why (a broken config or helper is
/// reported, not silently taken as "anonymous").
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("credential helper docker-credential-{helper} for {registry}: {message}")]
    Helper {
        helper: String,
        registry: String,
        message: String,
    },
}

impl DockerConfig {
    /// The config of this user, `None` when there is no file.
    pub fn load() -> Result<Option<(PathBuf, Self)>, CredentialError> {
        let Some(dir) = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        else {
            return Ok(None);
        };
        let path = dir.join("config.json");
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(None);
        };
        let config = serde_json::from_slice(&bytes).map_err(|e| CredentialError::Config {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Some((path, config)))
    }

    /// The credential for `registry` (`host[:port]`): a helper's answer
    /// when one is named for it (or a store for all), else its `auths`
    /// entry. `helpers` is where helper programs are looked for (`PATH`).
    pub fn credential(
        &self,
        registry: &str,
        helpers: Option<&std::ffi::OsStr>,
    ) -> Result<Credential, CredentialError> {
        let helper = self
            .cred_helpers
            .iter()
            .find(|(k, _)| same_registry(k, registry))
            .map(|(_, v)| v)
            .or(self.creds_store.as_ref());
        if let Some(helper) = helper {
            return ask_helper(helper, registry, helpers);
        }
        let Some(entry) = self
            .auths
            .iter()
            .find(|(k, _)| same_registry(k, registry))
            .map(|(_, v)| v)
        else {
            return Ok(Credential::None);
        };
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Credential::Basic {
                username: u.clone(),
                password: p.clone(),
            });
        }
        Ok(entry
            .auth
            .as_deref()
            .and_then(|a| base64::engine::general_purpose::STANDARD.decode(a).ok())
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| {
                s.split_once(':').map(|(u, p)| Credential::Basic {
                    username: u.into(),
                    password: p.into(),
                })
            })
            .unwrap_or(Credential::None))
    }
}

/// Whether a config key names `registry`: keys may carry a scheme or a
/// trailing slash (`https://index.docker.io/v1/` is Docker Hub's).
fn same_registry(key: &str, registry: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    host == registry || (host == "index.docker.io" && registry == "docker.io")
}

/// What a helper's `get` prints.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Run `docker-credential-<helper> get` for `registry`.
fn ask_helper(
    helper: &str,
    registry: &str,
    search: Option<&std::ffi::OsStr>,
) -> Result<Credential, CredentialError> {
    let fail = |message: String| CredentialError::Helper {
        helper: helper.to_owned(),
        registry: registry.to_owned(),
        message,
    };
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(fail("not a helper name".into()));
    }
    let program = format!("docker-credential-{helper}");
    let path =
        find_program(&program, search).ok_or_else(|| fail(format!("{program} is not on PATH")))?;
    // Its own process group, so a timeout stops whatever it started too
    // (gpg-agent under `pass`), and its output read as it comes, bounded,
    // so a helper that writes much is not blocked on a full pipe.
    let mut child = Command::new(&path)
        .arg("get")
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("running {}: {e}", path.display())))?;
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(MAX_ANSWER).read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that answers without reading (or fails at once) closes
        // its stdin: what it prints and its status tell, not the pipe.
        let _ = stdin.write_all(registry.as_bytes());
    }
    let status = child
        .wait_timeout(HELPER_TIMEOUT)
        .map_err(|e| fail(e.to_string()))?;
    // Whatever it left running is stopped with it: the pipes then close.
    if let Some(group) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let Some(status) = status else {
        let _ = child.wait();
        return Err(fail(format!("no answer in {} s", HELPER_TIMEOUT.as_secs())));
    };
    let out = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    let said = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_owned();
    if !status.success() {
        // The protocol's "no credentials for this server".
        let text = said(&out.stdout) + &said(&out.stderr);
        if text.contains("credentials not found") {
            return Ok(Credential::None);
        }
        return Err(fail(format!("exited with {status}: {text}")));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("an answer that is not the protocol's JSON: {e}")))?;
    if answer.username == "<token>" {
        return Err(fail(
            "an identity token (Username \"<token>\"), which Cascade does not exchange; log in with a password or access token".into(),
        ));
    }
    Ok(Credential::Basic {
        username: answer.username,
        password: answer.secret,
    })
}

/// `program` in the directories of `search` (a `PATH`-like list).
fn find_program(program: &str, search: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(search?)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> DockerConfig {
        serde_json::from_str(text).unwrap()
    }

    fn helper(dir: &Path, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn auths_entries_are_read_by_registry() {
        let c = config(
            r#"{"auths":{"https://r.example:5000/":{"auth":"dTpw"},"o.example":{"username":"a","password":"b"}}}"#,
        );
        let basic = |u: &str, p: &str| Credential::Basic {
            username: u.into(),
            password: p.into(),
        };
        assert_eq!(
            c.credential("r.example:5000", None).unwrap(),
            basic("u", "p")
        );
        assert_eq!(c.credential("o.example", None).unwrap(), basic("a", "b"));
        assert_eq!(c.credential("x.example", None).unwrap(), Credential::None);
    }

    #[test]
    fn a_helper_for_the_registry_wins_then_the_store() {
        let dir = tempfile::tempdir().unwrap();
        // The protocol: the server on stdin, JSON on stdout.
        helper(
            dir.path(),
            "one",
            r#"read host; printf '{"ServerURL":"%s","Username":"from-one","Secret":"s1"}' "$host""#,
        );
        helper(
            dir.path(),
            "store",
            r#"read host; [ "$host" = "known.example" ] || { echo "credentials not found in native keychain"; exit 1; }; echo '{"Username":"from-store","Secret":"s2"}'"#,
        );
        helper(dir.path(), "broken", "echo 'keychain locked' >&2; exit 3");
        let search = Some(dir.path().as_os_str());
        let c = config(
            r#"{"auths":{"known.example":{"auth":"dTpw"}},"credHelpers":{"one.example":"one","bad.example":"broken","gone.example":"missing"},"credsStore":"store"}"#,
        );
        let user = |host: &str| match c.credential(host, search) {
            Ok(Credential::Basic { username, .. }) => Ok(username),
            Ok(Credential::None) => Ok("anonymous".into()),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(user("one.example").unwrap(), "from-one");
        assert_eq!(
            user("known.example").unwrap(),
            "from-store",
            "the store over auths"
        );
        assert_eq!(user("other.example").unwrap(), "anonymous");
        let err = user("bad.example").unwrap_err();
        assert!(
            err.contains("docker-credential-broken") && err.contains("keychain locked"),
            "{err}"
        );
        let err = user("gone.example").unwrap_err();
        assert!(err.contains("not on PATH"), "{err}");
    }
}
