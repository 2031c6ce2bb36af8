//! The registry's own speed for Cascade's request mix: the requests a
//! rebase (or a fleet run) made, read back from the registry's access log
//! and sent again by a minimal client — reqwest's blocking client over
//! keep-alive connections, with no registry logic, no TLS roots and no
//! process start. What it takes is what the registry needs to serve that
//! mix; what `cascade` takes beyond it is the client's.
//!
//! Every request is replayed as it was: reads and mounts as logged, a blob
//! upload as the POST and PUT it was (its bytes read back first), a
//! manifest PUT with the bytes the registry now serves under that
//! reference. All of it is idempotent (content-addressed, or the same
//! bytes under the same tag), so the mix can be sent any number of times.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

/// One request of the mix.
enum Op {
    /// A GET, HEAD or mount (POST), sent as logged.
    Plain {
        method: reqwest::Method,
        path: String,
    },
    /// A blob upload: POST for a session, then PUT of the bytes to where
    /// the registry said.
    Upload {
        repo: String,
        digest: String,
        body: Vec<u8>,
    },
    /// A manifest (or index) PUT.
    Manifest {
        path: String,
        media_type: String,
        body: Vec<u8>,
    },
}

/// The requests of `log` (the registry's access log lines) in chains that
/// keep their order, one per repository, after the requests that name none
/// (the ping, the catalog). A repository's requests stay one at a time,
/// as in `cascade`'s fleet run: docker-registry answers 500 to manifest
/// PUTs racing in one repository (the bench tried per-image chains).
pub struct Mix {
    host: String,
    first: Vec<Op>,
    chains: Vec<Vec<Op>>,
}

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json";

impl Mix {
    /// Read the mix from access-log lines, fetching the bodies of uploads
    /// and manifest PUTs from the registry at `host` as it is now.
    pub fn from_log(host: &str, lines: &[String]) -> Self {
        let client = Client::new();
        let base = format!("http://{host}");
        let mut first = Vec::new();
        let mut by_repo: BTreeMap<String, Vec<Op>> = BTreeMap::new();
        for line in lines {
            let Some((method, path)) = request_of(line) else {
                continue;
            };
            let repo = repository(path).unwrap_or_default().to_owned();
            let op = match method {
                // A session the PUT that follows is replayed with.
                "POST" if !path.contains("mount=") => continue,
                "PUT" if path.contains("/blobs/uploads/") => {
                    let Some(digest) = path
                        .split(['?', '&'])
                        .find_map(|p| p.strip_prefix("digest="))
                        .map(|d| d.replace("%3A", ":"))
                    else {
                        continue;
                    };
                    let body = client
                        .get(format!("{base}/v2/{repo}/blobs/{digest}"))
                        .send()
                        .and_then(reqwest::blocking::Response::error_for_status)
                        .and_then(reqwest::blocking::Response::bytes)
                        .unwrap_or_else(|e| panic!("blob {digest} of {repo}: {e}"))
                        .to_vec();
                    Op::Upload {
                        repo: repo.clone(),
                        digest,
                        body,
                    }
                }
                "PUT" => {
                    let response = client
                        .get(format!("{base}{path}"))
                        .header("Accept", ACCEPT)
                        .send()
                        .and_then(reqwest::blocking::Response::error_for_status)
                        .unwrap_or_else(|e| panic!("manifest {path}: {e}"));
                    let media_type = response
                        .headers()
                        .get("Content-Type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let body = response.bytes().unwrap().to_vec();
                    Op::Manifest {
                        path: path.to_owned(),
                        media_type,
                        body,
                    }
                }
                other => Op::Plain {
                    method: other.parse().unwrap(),
                    path: path.to_owned(),
                },
            };
            if repo.is_empty() {
                first.push(op);
            } else {
                by_repo.entry(repo).or_default().push(op);
            }
        }
        Self {
            host: host.to_owned(),
            first,
            chains: by_repo.into_values().collect(),
        }
    }

    /// How many requests one replay sends (an upload is two).
    pub fn requests(&self) -> usize {
        self.first
            .iter()
            .chain(self.chains.iter().flatten())
            .map(|op| {
                if matches!(op, Op::Upload { .. }) {
                    2
                } else {
                    1
                }
            })
            .sum()
    }

    /// Send the whole mix: the requests outside any chain first, then the
    /// chains, each in its order, `workers` at a time.
    pub fn replay(&self, workers: usize) -> Duration {
        let clients: Vec<Client> = (0..workers.max(1)).map(|_| Client::new()).collect();
        let base = format!("http://{}", self.host);
        let chains: Mutex<std::slice::Iter<'_, Vec<Op>>> = Mutex::new(self.chains.iter());
        let start = Instant::now();
        for op in &self.first {
            send(&clients[0], &base, op);
        }
        std::thread::scope(|scope| {
            for client in &clients {
                let (chains, base) = (&chains, &base);
                scope.spawn(move || {
                    loop {
                        let next = chains.lock().unwrap().next();
                        let Some(ops) = next else { break };
                        for op in ops {
                            send(client, base, op);
                        }
                    }
                });
            }
        });
        start.elapsed()
    }
}

fn send(client: &Client, base: &str, op: &Op) {
    let response = match op {
        Op::Plain { method, path } => client
            .request(method.clone(), format!("{base}{path}"))
            .send(),
        Op::Upload { repo, digest, body } => {
            let session = client
                .post(format!("{base}/v2/{repo}/blobs/uploads/"))
                .send()
                .unwrap_or_else(|e| panic!("POST upload to {repo}: {e}"));
            let location = session
                .headers()
                .get("Location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("no Location for an upload to {repo}"))
                .to_owned();
            let url = reqwest::Url::parse(base).unwrap().join(&location).unwrap();
            let sep = if url.query().is_some() { '&' } else { '?' };
            client
                .put(format!("{url}{sep}digest={digest}"))
                .header("Content-Type", "application/octet-stream")
                .body(body.clone())
                .send()
        }
        Op::Manifest {
            path,
            media_type,
            body,
        } => client
            .put(format!("{base}{path}"))
            .header("Content-Type", media_type.as_str())
            .body(body.clone())
            .send(),
    };
    let response = response.unwrap_or_else(|e| panic!("replay: {e}"));
    let status = response.status();
    // Reads of what may be absent (a HEAD of a missing blob, the referrers
    // API on a registry without it) are part of the mix; errors are not.
    assert!(
        status.is_success() || status == reqwest::StatusCode::NOT_FOUND,
        "replay: {status} for {}",
        response.url()
    );
    let _ = response.bytes();
}

/// `METHOD /v2/...` of an access-log line.
fn request_of(line: &str) -> Option<(&str, &str)> {
    let start = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        .iter()
        .filter_map(|m| line.find(&format!("\"{m} /v2")))
        .min()?;
    let request = &line[start + 1..];
    let request = &request[..request.find(" HTTP/")?];
    request.split_once(' ')
}

/// The repository a `/v2/<repo>/{manifests,blobs,referrers,tags}/...` path
/// names.
fn repository(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    ["/manifests/", "/blobs/", "/referrers/", "/tags/"]
        .iter()
        .filter_map(|k| rest.find(k))
        .min()
        .map(|i| &rest[..i])
}
