//! OCI distribution registries, through oci-client, behind a small
//! blocking facade: what Cascade needs and oci-client's `push()` lacks
//! (../shared/REFERENCE.md) — HEAD before upload, cross-repository mounts,
//! streamed blobs, digest checks on download, retries with backoff.
//!
//! Credentials come from the Docker config file (`$DOCKER_CONFIG/config.json`
//! or `~/.docker/config.json`); plain HTTP is used only for loopback
//! registries and hosts named with `--insecure-registry`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::credentials::{Credential, DockerConfig};
use super::digest::{Digest, DigestWriter};
use super::document::Descriptor;
use super::layout::blob_tempfile;
use super::paginate::{self, Page};
use super::{MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_INDEX, MEDIA_MANIFEST};

/// Attempts per request before giving up on a transient failure.
const ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{reference}: {message}")]
    Request { reference: String, message: String },
    #[error("{reference}: blob {digest} arrived corrupt (its content hashes to {actual})")]
    Corrupt {
        reference: String,
        digest: Digest,
        actual: Digest,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the registry client: {0}")]
    Setup(String),
}

/// `registry/repository` of `reference` (Docker Hub's name resolved): what
/// per-repository state (tokens, writers, blobs held) is keyed by.
pub fn repository_key(reference: &Reference) -> String {
    format!(
        "{}/{}",
        reference.resolve_registry(),
        reference.repository()
    )
}

/// Whether `host` (with port) is on this machine, where plain HTTP is fine.
pub fn is_loopback(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}

/// What the Docker config gave for one registry, worked out once.
type CredentialCell = std::sync::OnceLock<Result<RegistryAuth, String>>;

/// A blocking client for any number of registries.
pub struct Registry {
    rt: tokio::runtime::Runtime,
    client: Client,
    /// The Docker config's credentials (or why it could not be read).
    docker_config: Result<Option<DockerConfig>, String>,
    /// Per registry, what the Docker config gave (a helper runs once).
    /// A cell per registry: one helper's slowness holds up no other host.
    credentials: std::sync::Mutex<std::collections::HashMap<String, Arc<CredentialCell>>>,
    /// Per registry, once its auth was handed to the client: whether it
    /// asks anonymous clients for nothing (see [`Self::authorize`]). A
    /// cell per host, so threads that start at once wait for one probe of
    /// their own registry and no other.
    authed: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::OnceCell<bool>>>>,
    /// Repositories of open registries given their empty token already.
    open_tokens: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Repositories whose push token was fetched ahead of concurrent
    /// writes (see [`Self::ready_to_push`]).
    push_ready: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Registries that refused a cross-repository mount: there a HEAD goes
    /// first (see [`Self::mounts_first`]).
    mounts_refused: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Hosts reached over plain HTTP (loopback, `--insecure-registry`).
    plain_http: Vec<String>,
    /// One lock per repository this process writes to: see [`Self::writing`].
    writers: std::sync::Mutex<std::collections::HashMap<String, Arc<std::sync::Mutex<()>>>>,
}

impl Registry {
    /// `hosts`: the registries this run will talk to (so loopback ones get
    /// HTTP); `insecure`: more hosts allowed plain HTTP.
    pub fn new(hosts: &[String], insecure: &[String]) -> Result<Self, RegistryError> {
        let mut http: Vec<String> = hosts.iter().filter(|h| is_loopback(h)).cloned().collect();
        http.extend(insecure.iter().cloned());
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(http.clone()),
            // A blob goes up as POST + PUT (the distribution spec's one
            // required way), not POST + PATCH + PUT: a round trip fewer
            // per upload. Files are still streamed, not held in memory.
            use_monolithic_push: true,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_mins(2)),
            ..ClientConfig::default()
        };
        // Multi-threaded so several OS threads (a fleet rebase) can block_on
        // it at once without queueing behind one driver.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| RegistryError::Setup(e.to_string()))?;
        Ok(Self {
            rt,
            client: Client::new(config),
            docker_config: DockerConfig::load()
                .map(|c| c.map(|(_, c)| c))
                .map_err(|e| e.to_string()),
            credentials: std::sync::Mutex::default(),
            authed: std::sync::Mutex::default(),
            open_tokens: std::sync::Mutex::default(),
            push_ready: std::sync::Mutex::default(),
            mounts_refused: std::sync::Mutex::default(),
            plain_http: http,
            writers: std::sync::Mutex::default(),
        })
    }

    /// Credentials for `registry` from the Docker config (`auths.<host>.auth`
    /// or `username`/`password`), else anonymous.
    /// The credential for `registry` from the Docker config ([`crate::credentials`]),
    /// worked out once per registry: a helper runs once per process.
    fn credential(&self, registry: &str) -> Result<RegistryAuth, RegistryError> {
        let cell = Arc::clone(
            self.credentials
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(registry.to_owned())
                .or_default(),
        );
        let found = cell.get_or_init(|| {
            let config = self.docker_config.clone()?;
            let Some(config) = config else {
                return Ok(RegistryAuth::Anonymous);
            };
            match config.credential(registry, std::env::var_os("PATH").as_deref()) {
                Ok(Credential::Basic { username, password }) => {
                    Ok(RegistryAuth::Basic(username, password))
                }
                Ok(Credential::None) => Ok(RegistryAuth::Anonymous),
                Err(e) => Err(e.to_string()),
            }
        });
        found.clone().map_err(|message| RegistryError::Request {
            reference: registry.to_owned(),
            message: format!("credentials: {message}"),
        })
    }

    /// [`Self::credential`], anonymous where there is none to be had (the
    /// failure itself is reported by [`Self::call`], before any request).
    fn auth(&self, registry: &str) -> RegistryAuth {
        self.credential(registry).unwrap_or(RegistryAuth::Anonymous)
    }

    /// Hand the client its auth for `reference`'s registry, once. oci-client
    /// asks `/v2/` for a challenge before every request it has no token
    /// for, and keeps no answer of "none" (it pinged before each of a
    /// rebase's requests, doubling them). So for a plain-HTTP registry (on
    /// loopback or named with `--insecure-registry`: the platform's own) an
    /// anonymous client asks once itself; where no challenge comes, each
    /// repository gets an empty Basic token, which a registry without auth
    /// ignores, and no request is preceded by a ping. Any other registry
    /// (a public one's Bearer challenge, a Basic one that allows anonymous
    /// reads, a proxy's passing 5xx) goes the client's usual way. Returns
    /// whether the registry is such an open one.
    async fn authorize(&self, reference: &Reference) -> bool {
        let host = reference.resolve_registry();
        let cell = Arc::clone(
            self.authed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(host.to_owned())
                .or_default(),
        );
        let open = *cell
            .get_or_init(async || {
                let auth = self.auth(host);
                if matches!(auth, RegistryAuth::Anonymous)
                    && self.plain_http.iter().any(|h| h == host)
                {
                    let probe = self
                        .client
                        .auth(reference, &auth, oci_client::RegistryOperation::Pull)
                        .await;
                    matches!(probe, Ok(None))
                } else {
                    self.client.store_auth_if_needed(host, &auth).await;
                    false
                }
            })
            .await;
        let key = repository_key(reference);
        let given = |tokens: &std::collections::HashSet<String>| tokens.contains(&key);
        if open && !given(&self.open_tokens.lock().unwrap()) {
            for op in [
                oci_client::RegistryOperation::Pull,
                oci_client::RegistryOperation::Push,
            ] {
                let empty =
                    oci_client::token_cache::RegistryTokenType::Basic(String::new(), String::new());
                self.client.tokens.insert(reference, op, empty).await;
            }
            // Marked given only once the tokens are in: a thread that looks
            // meanwhile inserts them again, which is harmless.
            self.open_tokens.lock().unwrap().insert(key);
        }
        open
    }

    /// Fetch `reference`'s push token now, once per repository, before
    /// writes that go at the same time: oci-client fetches a missing token
    /// for each request that lacks it, so concurrent first writes would
    /// each make their own challenge and token round trips. A failure is
    /// left to the writes themselves to report.
    pub fn ready_to_push(&self, reference: &Reference) {
        if !self
            .push_ready
            .lock()
            .unwrap()
            .insert(repository_key(reference))
        {
            return;
        }
        self.rt.block_on(async {
            // An open registry's repositories have their empty token.
            if !self.authorize(reference).await {
                let auth = self.auth(reference.resolve_registry());
                let push = oci_client::RegistryOperation::Push;
                let _ = self.client.auth(reference, &auth, push).await;
            }
        });
    }

    /// Whether to ask for a mount before a HEAD: yes until the registry
    /// refuses one (a mount is then one round trip whether or not the
    /// target holds the blob; where mounts fail, it would be a wasted one
    /// before each HEAD).
    pub fn mounts_first(&self, reference: &Reference) -> bool {
        !self
            .mounts_refused
            .lock()
            .unwrap()
            .contains(reference.resolve_registry())
    }

    /// Run a request, retrying transient failures (connection errors,
    /// 5xx, 429) with exponential backoff.
    fn call<T, F>(&self, reference: &Reference, mut op: F) -> Result<T, RegistryError>
    where
        F: AsyncFnMut() -> Result<T, OciDistributionError>,
    {
        self.credential(reference.resolve_registry())?;
        self.rt.block_on(async {
            self.authorize(reference).await;
            let mut delay = Duration::from_millis(200);
            let mut attempt = 1;
            loop {
                match op().await {
                    Ok(v) => return Ok(v),
                    Err(e) if attempt < ATTEMPTS && transient(&e) => {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                        attempt += 1;
                    }
                    Err(e) => {
                        return Err(RegistryError::Request {
                            reference: reference.whole(),
                            message: describe(&e),
                        });
                    }
                }
            }
        })
    }

    /// The manifest (or index) `reference` names, raw, with its digest.
    pub fn manifest(&self, reference: &Reference) -> Result<(Vec<u8>, Digest), RegistryError> {
        let accepted = [
            MEDIA_MANIFEST,
            MEDIA_INDEX,
            MEDIA_DOCKER_MANIFEST,
            MEDIA_DOCKER_LIST,
        ];
        let auth = self.auth(reference.resolve_registry());
        let (bytes, _) = self.call(reference, async || {
            self.client
                .pull_manifest_raw(reference, &auth, &accepted)
                .await
        })?;
        // Registries keep manifest bytes exactly: hash them ourselves.
        let digest = Digest::of(&bytes);
        if let Some(asked) = reference.digest()
            && asked != digest.to_string()
        {
            return Err(RegistryError::Corrupt {
                reference: reference.whole(),
                digest: asked.parse().unwrap_or_else(|_| digest.clone()),
                actual: digest,
            });
        }
        Ok((bytes.to_vec(), digest))
    }

    /// A small blob (a config), checked against its digest.
    pub fn blob_bytes(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Vec<u8>, RegistryError> {
        let name = digest.to_string();
        let mut out = Vec::new();
        self.call(reference, async || {
            out.clear();
            self.client
                .pull_blob(reference, name.as_str(), &mut out)
                .await
        })?;
        let actual = Digest::of(&out);
        if &actual != digest {
            return Err(RegistryError::Corrupt {
                reference: reference.whole(),
                digest: digest.clone(),
                actual,
            });
        }
        Ok(out)
    }

    /// Stream a blob into `dir/<hex>`, hashing as it comes; a corrupt or
    /// partial download never gets the digest's name.
    pub fn blob_to_dir(
        &self,
        reference: &Reference,
        digest: &Digest,
        dir: &Path,
    ) -> Result<PathBuf, RegistryError> {
        let io = |source| RegistryError::Io {
            path: dir.into(),
            source,
        };
        let dest = dir.join(digest.hex());
        let tmp = blob_tempfile(dir).map_err(io)?;
        let name = digest.to_string();
        // Each attempt starts the file afresh, so a retry after a broken
        // transfer cannot leave a mix of two.
        let actual = self.call(reference, async || {
            let file = tmp.reopen()?;
            file.set_len(0)?;
            let mut writer = DigestWriter::new(std::io::BufWriter::new(file));
            let mut stream = self
                .client
                .pull_blob_stream(reference, name.as_str())
                .await?;
            while let Some(chunk) = stream.next().await {
                writer.write_all(&chunk?)?;
            }
            let (mut buf, actual, _) = writer.finish();
            buf.flush()?;
            Ok(actual)
        })?;
        if &actual != digest {
            return Err(RegistryError::Corrupt {
                reference: reference.whole(),
                digest: digest.clone(),
                actual,
            });
        }
        tmp.persist(&dest).map_err(|e| io(e.error))?;
        Ok(dest)
    }

    pub fn has_blob(&self, reference: &Reference, digest: &Digest) -> Result<bool, RegistryError> {
        let name = digest.to_string();
        self.call(reference, async || {
            self.client.blob_exists(reference, &name).await
        })
    }

    /// Mount a blob from another repository of the same registry; false when
    /// the registry would not (the caller then uploads).
    pub fn mount(&self, reference: &Reference, from: &Reference, digest: &Digest) -> bool {
        let name = digest.to_string();
        // oci-client takes only `201 Created`, the spec's "mounted", as
        // success (a `202` opens an upload instead): no HEAD to confirm.
        let mounted = self
            .call(reference, async || {
                self.client.mount_blob(reference, from, &name).await
            })
            .is_ok();
        if !mounted {
            self.mounts_refused
                .lock()
                .unwrap()
                .insert(reference.resolve_registry().to_owned());
        }
        mounted
    }

    /// Upload a blob from a file, streamed.
    pub fn push_blob_file(
        &self,
        reference: &Reference,
        digest: &Digest,
        path: &Path,
    ) -> Result<(), RegistryError> {
        let size = std::fs::metadata(path)
            .map_err(|source| RegistryError::Io {
                path: path.into(),
                source,
            })?
            .len();
        let name = digest.to_string();
        self.call(reference, async || {
            let file = tokio::fs::File::open(path).await?;
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)
                .map(|r| r.map_err(OciDistributionError::from));
            self.client
                .push_blob_stream(reference, stream, &name, Some(size))
                .await
        })?;
        Ok(())
    }

    /// Run `write` while no other thread of this process writes to
    /// `reference`'s repository. Registries do not make concurrent writes
    /// of the same content to one repository safe: docker-registry's
    /// filesystem driver rewrites a repository's link files in place, so a
    /// manifest put that checks a blob another thread is linking at that
    /// moment fails with `DIGEST_INVALID`/`BLOB_UNKNOWN` (seen with a fleet
    /// of identical images in one repository). Writes to different
    /// repositories still go at once; fleet shards split by repository
    /// (`fleet::shard_of`), so two shard processes never share one.
    pub fn writing<T>(&self, reference: &Reference, write: impl FnOnce() -> T) -> T {
        let key = repository_key(reference);
        let lock = Arc::clone(
            self.writers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(key)
                .or_default(),
        );
        let _held = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        write()
    }

    /// Whether the registry answers for `reference`'s repository (a HEAD
    /// of a blob; "not there" is an answer), so a build can fail before it
    /// runs when its output cannot be published.
    pub fn check_reachable(&self, reference: &Reference) -> Result<(), RegistryError> {
        self.has_blob(reference, &Digest::of(b"")).map(|_| ())
    }

    /// Upload a small blob from memory. Blobs that are new in the usual
    /// case (a config, an SBOM) go up without a HEAD first: POST + PUT is
    /// two round trips where HEAD + POST + PUT would be three, and a blob
    /// the registry has already is simply stored again under its digest.
    pub fn push_blob_bytes(
        &self,
        reference: &Reference,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        let name = digest.to_string();
        self.call(reference, async || {
            self.client
                .push_blob(reference, bytes.to_vec(), &name)
                .await
        })?;
        Ok(())
    }

    /// Put a manifest under `reference`'s tag (or digest).
    pub fn push_manifest(
        &self,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let content_type = reqwest_header(media_type);
        self.call(reference, async || {
            self.client
                .push_manifest_raw(reference, bytes.to_vec(), content_type.clone())
                .await
        })?;
        Ok(())
    }

    /// The referrers of `subject` (a reference by digest): the registry's
    /// referrers API, or the `sha256-<hex>` tag index where the registry has
    /// none (oci-client falls back by itself). Entries the registry sent
    /// that are not descriptors are skipped.
    pub fn referrers(&self, subject: &Reference) -> Result<Vec<Descriptor>, RegistryError> {
        let index = self.call(subject, async || {
            self.client.pull_referrers(subject, None).await
        })?;
        Ok(index
            .manifests
            .iter()
            .filter_map(|m| serde_json::to_value(m).ok())
            .filter_map(|m| serde_json::from_value(m).ok())
            .collect())
    }

    /// Repositories of the registry (`/v2/_catalog`), all pages.
    pub fn catalog(&self, registry: &Reference) -> Result<Vec<String>, RegistryError> {
        let auth = self.auth(registry.resolve_registry());
        self.all_pages(registry, async |last, n| {
            let page = self.client.catalog(registry, &auth, Some(n), last).await?;
            Ok(page.repositories)
        })
    }

    /// Tags of a repository, all pages.
    pub fn tags(&self, repository: &Reference) -> Result<Vec<String>, RegistryError> {
        let auth = self.auth(repository.resolve_registry());
        self.all_pages(repository, async |last, n| {
            let page = self
                .client
                .list_tags(repository, &auth, Some(n), last)
                .await?;
            Ok(page.tags)
        })
    }

    /// Every entry of a listing, page by page ([`crate::paginate`]).
    fn all_pages<F>(&self, reference: &Reference, mut page: F) -> Result<Vec<String>, RegistryError>
    where
        F: AsyncFnMut(Option<&str>, usize) -> Result<Vec<String>, OciDistributionError>,
    {
        paginate::all_pages(
            |last, n| {
                self.call(reference, async || match page(last, n).await {
                    Ok(items) => Ok(Page::Items(items)),
                    Err(e) if page_size_refused(&e) => Ok(Page::SizeRefused),
                    Err(e) => Err(e),
                })
            },
            |message| RegistryError::Request {
                reference: reference.whole(),
                message,
            },
        )
    }
}

/// Whether the registry refused a listing's page size (`n`).
fn page_size_refused(e: &OciDistributionError) -> bool {
    matches!(e, OciDistributionError::RegistryError { envelope, .. }
    if envelope.errors.iter().any(|e| {
        matches!(&e.code, oci_client::errors::OciErrorCode::Other(c) if c == "PAGINATION_NUMBER_INVALID")
    }))
}

fn reqwest_header(media_type: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(media_type)
        .unwrap_or_else(|_| http::HeaderValue::from_static(MEDIA_MANIFEST))
}

/// `e`'s message and its innermost cause when the message does not hold
/// it: reqwest says "error sending request for url (…)" and leaves what
/// went wrong ("Connection refused (os error 111)") to its sources.
fn describe(e: &OciDistributionError) -> String {
    let message = e.to_string();
    let mut root: Option<&dyn std::error::Error> = None;
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        root = Some(cause);
        next = cause.source();
    }
    match root.map(ToString::to_string) {
        Some(cause) if !message.contains(&cause) => format!("{message}: {cause}"),
        _ => message,
    }
}

fn transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(_) | OciDistributionError::IoError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts_are_recognised() {
        for h in [
            "127.0.0.1:5000",
            "localhost:80",
            "localhost",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(super::is_loopback(h), "{h}");
        }
        for h in ["registry.example.com", "10.0.0.1:5000", "ghcr.io"] {
            assert!(!super::is_loopback(h), "{h}");
        }
    }
}
