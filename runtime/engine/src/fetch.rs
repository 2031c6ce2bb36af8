//! The host side of the `fetch` capability: download a file pinned by
//! sha256, verify it while it streams, keep it in a cache, and bound its
//! size. A corrupt or oversized download never gets into the cache.
//!
//! What a buildpack learns is only whether the fetch worked: a digest
//! mismatch does not say what was downloaded (else a buildpack could ask for
//! any file with a wrong digest, read the real one from the error, and ask
//! again). The cache is keyed by the URL *and* the digest, so a buildpack
//! gets bytes only from a URL its own grant let it name, never those another
//! buildpack's grant brought in; a hit is hashed again as it is copied out.
//! Redirects stay on the granted host. `file://` URLs are read beneath a
//! root the platform named, through a directory handle, so a link in the
//! mirror cannot lead out of it.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::Digest as _;

use crate::deadline::Deadline;
use cascade_digest::{Digest, DigestWriter};
use cascade_fs::GuestTree;

/// Why a fetch failed. Guest-visible (as the WIT error, host paths
/// rewritten): a digest mismatch says only that it failed, never what came.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("sha256 {0:?}: expected 64 lowercase hex digits")]
    BadSha256(String),
    #[error("{url}: not in the fetch cache ({}) and cascade runs --offline", cache.display())]
    Offline { url: String, cache: PathBuf },
    /// The fetch cache on the host: `path` could not be read or written.
    #[error("{}: {source}", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("destination {}: {source}", rel.display())]
    Destination {
        rel: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "destination {0:?}: a relative path inside the buildpack's layers (no .., not absolute)"
    )]
    BadDestination(String),
    #[error("{url}: the fetch cache entry was damaged and is removed; fetch again")]
    Damaged { url: String },
    #[error("fetch root {}: {source}", root.display())]
    Root {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: {source} (beneath {})", root.display())]
    Beneath {
        url: String,
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: not a regular file")]
    NotAFile { url: String },
    #[error("{url}: {source}")]
    Read {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: more than the fetch limit of {max} bytes")]
    TooLarge { url: String, max: u64 },
    #[error("{url}: {len} bytes is over the fetch limit of {max} bytes")]
    DeclaredTooLarge { url: String, len: u64, max: u64 },
    #[error("{url}: sha256 mismatch: what was downloaded is not {expected}")]
    Mismatch { url: String, expected: String },
    #[error("{url}: no host")]
    NoHost { url: String },
    #[error("HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("{url}: {source}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: HTTP {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
}

/// Downloads and caches fetched files.
#[derive(Debug)]
pub struct Fetcher {
    cache_dir: PathBuf,
    offline: bool,
    max_bytes: u64,
}

/// Where the bytes of one fetch come from, as the grant allowed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An http(s) URL; redirects may not leave its host.
    Http,
    /// A file beneath a root the platform granted (`fetch:file:/srv/mirror`).
    File { root: PathBuf, rel: PathBuf },
}

/// One completed fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: u64,
    /// Served from the cache.
    pub cached: bool,
}

/// `url` as it may be shown and recorded: no user-info, query or fragment
/// (where tokens live).
pub fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "<not a URL>".into(),
    }
}

impl Fetcher {
    /// Cache under `cache_dir/fetch/`; files over `max_bytes` are refused.
    pub fn new(cache_dir: &Path, offline: bool, max_bytes: u64) -> Self {
        Self {
            cache_dir: cache_dir.join("fetch"),
            offline,
            max_bytes,
        }
    }

    /// Make `rel` under `dest` hold the file `url` names, whose sha256 must
    /// be `sha256`.
    pub fn get(
        &self,
        url: &str,
        sha256: &str,
        source: &Source,
        dest: &GuestTree,
        rel: &Path,
        deadline: Deadline,
    ) -> Result<Fetched, FetchError> {
        let shown = display_url(url);
        let digest: Digest = format!("sha256:{sha256}")
            .parse()
            .map_err(|_| FetchError::BadSha256(sha256.to_owned()))?;
        let key = hex::encode(sha2::Sha256::digest(format!("{url}\n{digest}").as_bytes()));
        let cached = self.cache_dir.join(key);
        let hit = cached.is_file();
        if !hit {
            if self.offline {
                return Err(FetchError::Offline {
                    url: shown,
                    cache: self.cache_dir.clone(),
                });
            }
            self.download(url, &shown, source, &digest, &cached, deadline)?;
        }
        // A copy, not a link: the layer may be changed after, the cache
        // not. Hashed again on the way, so a damaged cache entry is noticed.
        let mut from = std::fs::File::open(&cached).map_err(cache_err(&cached))?;
        let destination = |source| FetchError::Destination {
            rel: rel.to_path_buf(),
            source,
        };
        let out = dest.create_file(rel, false).map_err(destination)?;
        let mut out = DigestWriter::new(std::io::BufWriter::new(out));
        std::io::copy(&mut from, &mut out).map_err(destination)?;
        let (mut w, actual, bytes) = out.finish();
        w.flush().map_err(destination)?;
        if actual != digest {
            let _ = std::fs::remove_file(&cached);
            let _ = dest.remove_all(rel);
            return Err(FetchError::Damaged { url: shown });
        }
        Ok(Fetched { bytes, cached: hit })
    }

    fn download(
        &self,
        url: &str,
        shown: &str,
        source: &Source,
        digest: &Digest,
        to: &Path,
        deadline: Deadline,
    ) -> Result<(), FetchError> {
        std::fs::create_dir_all(&self.cache_dir).map_err(cache_err(&self.cache_dir))?;
        let reader: Box<dyn Read> = match source {
            Source::File { root, rel } => {
                let dir = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority())
                    .map_err(|source| FetchError::Root {
                        root: root.clone(),
                        source,
                    })?;
                let beneath = |source| FetchError::Beneath {
                    url: shown.to_owned(),
                    root: root.clone(),
                    source,
                };
                if !dir.metadata(rel).map_err(beneath)?.is_file() {
                    return Err(FetchError::NotAFile {
                        url: shown.to_owned(),
                    });
                }
                let file = dir.open(rel).map_err(beneath)?;
                Box::new(file.into_std())
            }
            Source::Http => Box::new(self.http(url, shown, deadline)?),
        };
        let mut reader = deadline.reader(reader);
        let cache = cache_err(&self.cache_dir);
        let tmp = tempfile::NamedTempFile::new_in(&self.cache_dir).map_err(cache)?;
        let cache = cache_err(tmp.path());
        let mut out = DigestWriter::new(std::io::BufWriter::new(
            tmp.as_file().try_clone().map_err(cache)?,
        ));
        let mut buf = vec![0u8; 1 << 16];
        let mut total: u64 = 0;
        loop {
            let n = reader.read(&mut buf).map_err(|source| FetchError::Read {
                url: shown.to_owned(),
                source,
            })?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > self.max_bytes {
                return Err(FetchError::TooLarge {
                    url: shown.to_owned(),
                    max: self.max_bytes,
                });
            }
            out.write_all(&buf[..n]).map_err(cache_err(tmp.path()))?;
        }
        let (mut w, actual, _) = out.finish();
        w.flush().map_err(cache_err(tmp.path()))?;
        if actual != *digest {
            // Say that it failed, never what arrived.
            return Err(FetchError::Mismatch {
                url: shown.to_owned(),
                expected: digest.hex().to_owned(),
            });
        }
        tmp.persist(to).map_err(|e| FetchError::Cache {
            path: to.to_path_buf(),
            source: e.error,
        })?;
        Ok(())
    }

    fn http(
        &self,
        url: &str,
        shown: &str,
        deadline: Deadline,
    ) -> Result<reqwest::blocking::Response, FetchError> {
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .ok_or_else(|| FetchError::NoHost {
                url: shown.to_owned(),
            })?;
        // The grant names a host: a redirect elsewhere would fetch from a
        // host nobody granted.
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                attempt.error("too many redirects")
            } else if attempt.url().host_str() != Some(host.as_str()) {
                let to = attempt.url().host_str().unwrap_or("none").to_owned();
                attempt.error(format!(
                    "a redirect to another host ({to}) is not followed: the grant names {host}"
                ))
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::blocking::Client::builder()
            // The whole exchange, body included, within the call's time.
            .timeout(deadline.left().min(std::time::Duration::from_mins(10)))
            .redirect(policy)
            .build()
            .map_err(FetchError::Client)?;
        let resp = client.get(url).send().map_err(|e| FetchError::Request {
            url: shown.to_owned(),
            source: e.without_url(),
        })?;
        if !resp.status().is_success() {
            return Err(FetchError::Status {
                url: shown.to_owned(),
                status: resp.status(),
            });
        }
        if let Some(len) = resp.content_length()
            && len > self.max_bytes
        {
            return Err(FetchError::DeclaredTooLarge {
                url: shown.to_owned(),
                len,
                max: self.max_bytes,
            });
        }
        Ok(resp)
    }
}

/// A destination a buildpack names: a relative path of plain names (no
/// `..`, not absolute), resolved beneath its layers dir by [`GuestTree`].
pub fn confined(rel: &str) -> Result<PathBuf, FetchError> {
    let path = Path::new(rel);
    let plain = !rel.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(FetchError::BadDestination(rel.to_owned()));
    }
    Ok(path.to_path_buf())
}

fn cache_err(path: &Path) -> impl Fn(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Cache {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_stay_inside() {
        assert!(confined("deps/node.tgz").is_ok());
        for bad in ["", "/etc/passwd", "../b/x", "deps/../../x", "./x"] {
            assert!(confined(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            display_url("https://user:tok@example.com/a/b.tgz?sig=abc#frag"),
            "https://example.com/a/b.tgz"
        );
    }

    fn later() -> Deadline {
        Deadline::after(std::time::Duration::from_mins(1))
    }

    #[test]
    fn a_download_past_the_call_deadline_stops_and_caches_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = tmp.path().join("mirror");
        std::fs::create_dir(&mirror).unwrap();
        std::fs::write(mirror.join("a"), b"bytes").unwrap();
        let f = Fetcher::new(&tmp.path().join("cache"), false, 1 << 20);
        let layers = GuestTree::create(&tmp.path().join("layers")).unwrap();
        let url = format!("file://{}/a", mirror.display());
        let e = f
            .get(
                &url,
                Digest::of(b"bytes").hex(),
                &file_source(&mirror, "a"),
                &layers,
                Path::new("x"),
                Deadline::after(std::time::Duration::ZERO),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("deadline"), "{e}");
        assert_eq!(
            std::fs::read_dir(tmp.path().join("cache/fetch"))
                .unwrap()
                .count(),
            0
        );
    }

    fn file_source(root: &Path, name: &str) -> Source {
        Source::File {
            root: root.into(),
            rel: name.into(),
        }
    }

    #[test]
    fn file_urls_are_verified_cached_and_served_offline() {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = tmp.path().join("mirror");
        std::fs::create_dir(&mirror).unwrap();
        let src = mirror.join("src.bin");
        std::fs::write(&src, b"payload").unwrap();
        let sha = Digest::of(b"payload").hex().to_owned();
        let url = format!("file://{}", src.display());
        let source = file_source(&mirror, "src.bin");
        let f = Fetcher::new(&tmp.path().join("cache"), false, 1 << 20);
        let layers = GuestTree::create(&tmp.path().join("layers")).unwrap();
        let dest = Path::new("deps/p.bin");
        assert_eq!(
            f.get(&url, &sha, &source, &layers, dest, later()).unwrap(),
            Fetched {
                bytes: 7,
                cached: false
            }
        );
        assert_eq!(std::fs::read(layers.path().join(dest)).unwrap(), b"payload");
        std::fs::remove_file(&src).unwrap();
        let offline = Fetcher::new(&tmp.path().join("cache"), true, 1 << 20);
        assert!(
            offline
                .get(&url, &sha, &source, &layers, dest, later())
                .unwrap()
                .cached
        );

        std::fs::write(&src, b"tampered").unwrap();
        let e = f
            .get(&url, &"0".repeat(64), &source, &layers, dest, later())
            .unwrap_err()
            .to_string();
        assert!(e.contains("sha256 mismatch"), "{e}");
        assert!(
            !e.contains(Digest::of(b"tampered").hex()),
            "the error tells what was downloaded: {e}"
        );
        let small = Fetcher::new(&tmp.path().join("cache2"), false, 4);
        let e = small
            .get(
                &url,
                Digest::of(b"tampered").hex(),
                &source,
                &layers,
                dest,
                later(),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("fetch limit"), "{e}");
        assert_eq!(
            std::fs::read_dir(tmp.path().join("cache2/fetch"))
                .unwrap()
                .count(),
            0,
            "a refused download leaves nothing in the cache"
        );
    }

    #[test]
    fn a_cache_hit_is_only_for_the_same_url_and_is_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = tmp.path().join("mirror");
        std::fs::create_dir(&mirror).unwrap();
        std::fs::write(mirror.join("a"), b"bytes").unwrap();
        let sha = Digest::of(b"bytes").hex().to_owned();
        let f = Fetcher::new(&tmp.path().join("cache"), false, 1 << 20);
        let layers = GuestTree::create(&tmp.path().join("layers")).unwrap();
        let url = format!("file://{}/a", mirror.display());
        f.get(
            &url,
            &sha,
            &file_source(&mirror, "a"),
            &layers,
            Path::new("x"),
            later(),
        )
        .unwrap();
        // Another URL with the same digest is not served from the cache.
        let other = format!("file://{}/missing", mirror.display());
        assert!(
            f.get(
                &other,
                &sha,
                &file_source(&mirror, "missing"),
                &layers,
                Path::new("y"),
                later(),
            )
            .is_err()
        );
        // A damaged entry is noticed on the way out, and removed.
        for e in std::fs::read_dir(tmp.path().join("cache/fetch")).unwrap() {
            std::fs::write(e.unwrap().path(), b"BYTES").unwrap();
        }
        let e = f
            .get(
                &url,
                &sha,
                &file_source(&mirror, "a"),
                &layers,
                Path::new("z"),
                later(),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("damaged"), "{e}");
        assert!(!layers.exists("z"));
    }

    #[test]
    fn a_link_in_the_mirror_does_not_lead_out_of_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = tmp.path().join("mirror");
        std::fs::create_dir(&mirror).unwrap();
        std::fs::write(tmp.path().join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink("../secret", mirror.join("s")).unwrap();
        let f = Fetcher::new(&tmp.path().join("cache"), false, 1 << 20);
        let layers = GuestTree::create(&tmp.path().join("layers")).unwrap();
        let url = format!("file://{}/s", mirror.display());
        let sha = Digest::of(b"secret").hex().to_owned();
        assert!(
            f.get(
                &url,
                &sha,
                &file_source(&mirror, "s"),
                &layers,
                Path::new("x"),
                later(),
            )
            .is_err()
        );
    }
}
