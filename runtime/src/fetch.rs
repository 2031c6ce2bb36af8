//! The host side of the `fetch` capability: download a file pinned by
//! sha256, verify it while it streams, keep it in a cache named by the
//! digest (a second build downloads nothing; `--offline` serves only from
//! there), and bound its size. A corrupt or oversized download never gets
//! the digest's name.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::oci::{Digest, DigestWriter};

/// Downloads and caches fetched files.
#[derive(Debug)]
pub struct Fetcher {
    cache_dir: PathBuf,
    offline: bool,
    max_bytes: u64,
}

/// One completed fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: u64,
    /// Served from the cache.
    pub cached: bool,
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

    /// Make `dest` hold the file `url` names, whose sha256 must be `sha256`.
    pub fn get(&self, url: &str, sha256: &str, dest: &Path) -> Result<Fetched, String> {
        let digest: Digest = format!("sha256:{sha256}")
            .parse()
            .map_err(|_| format!("sha256 {sha256:?}: expected 64 lowercase hex digits"))?;
        let cached = self.cache_dir.join(digest.hex());
        let hit = cached.is_file();
        if !hit {
            if self.offline {
                return Err(format!(
                    "{url}: not in the fetch cache ({}) and cascade runs --offline",
                    self.cache_dir.display()
                ));
            }
            self.download(url, &digest, &cached)?;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let _ = std::fs::remove_file(dest);
        // A copy, not a link: the layer may be changed after, the cache not.
        let bytes = std::fs::copy(&cached, dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        Ok(Fetched { bytes, cached: hit })
    }

    fn download(&self, url: &str, digest: &Digest, to: &Path) -> Result<(), String> {
        std::fs::create_dir_all(&self.cache_dir)
            .map_err(|e| format!("{}: {e}", self.cache_dir.display()))?;
        let mut reader: Box<dyn Read> = if let Some(path) = url.strip_prefix("file://") {
            Box::new(std::fs::File::open(path).map_err(|e| format!("{url}: {e}"))?)
        } else {
            let client = reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_mins(10))
                .build()
                .map_err(|e| format!("HTTP client: {e}"))?;
            let resp = client.get(url).send().map_err(|e| format!("{url}: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("{url}: HTTP {}", resp.status()));
            }
            if let Some(len) = resp.content_length()
                && len > self.max_bytes
            {
                return Err(format!(
                    "{url}: {len} bytes is over the fetch limit of {} bytes",
                    self.max_bytes
                ));
            }
            Box::new(resp)
        };
        let tmp = tempfile::NamedTempFile::new_in(&self.cache_dir)
            .map_err(|e| format!("{}: {e}", self.cache_dir.display()))?;
        let mut out = DigestWriter::new(std::io::BufWriter::new(
            tmp.as_file().try_clone().map_err(|e| e.to_string())?,
        ));
        let mut buf = vec![0u8; 1 << 16];
        let mut total: u64 = 0;
        loop {
            let n = reader.read(&mut buf).map_err(|e| format!("{url}: {e}"))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > self.max_bytes {
                return Err(format!(
                    "{url}: more than the fetch limit of {} bytes",
                    self.max_bytes
                ));
            }
            out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        }
        let (mut w, actual, _) = out.finish();
        w.flush().map_err(|e| e.to_string())?;
        if actual != *digest {
            return Err(format!(
                "{url}: sha256 mismatch: expected {}, downloaded {}",
                digest.hex(),
                actual.hex()
            ));
        }
        tmp.persist(to)
            .map_err(|e| format!("{}: {}", to.display(), e.error))?;
        Ok(())
    }
}

/// `rel` under `root`, refusing absolute paths, `..` and anything but plain
/// names: a buildpack names where a fetch goes, and it stays in its layers.
pub fn confined(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let path = Path::new(rel);
    let plain = !rel.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(format!(
            "destination {rel:?}: a relative path inside the buildpack's layers (no .., not absolute)"
        ));
    }
    Ok(root.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_stay_inside() {
        let root = Path::new("/layers/a");
        assert!(confined(root, "deps/node.tgz").is_ok());
        for bad in ["", "/etc/passwd", "../b/x", "deps/../../x", "./x"] {
            assert!(confined(root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_urls_are_verified_cached_and_served_offline() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src.bin");
        std::fs::write(&src, b"payload").unwrap();
        let sha = Digest::of(b"payload").hex().to_owned();
        let url = format!("file://{}", src.display());
        let f = Fetcher::new(&tmp.path().join("cache"), false, 1 << 20);
        let dest = tmp.path().join("layers/deps/p.bin");
        assert_eq!(
            f.get(&url, &sha, &dest).unwrap(),
            Fetched {
                bytes: 7,
                cached: false
            }
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"payload");
        std::fs::remove_file(&src).unwrap();
        let offline = Fetcher::new(&tmp.path().join("cache"), true, 1 << 20);
        assert!(offline.get(&url, &sha, &dest).unwrap().cached);

        std::fs::write(&src, b"tampered").unwrap();
        let e = f.get(&url, &"0".repeat(64), &dest).unwrap_err();
        assert!(e.contains("sha256 mismatch"), "{e}");
        let small = Fetcher::new(&tmp.path().join("cache2"), false, 4);
        let e = small
            .get(&url, Digest::of(b"tampered").hex(), &dest)
            .unwrap_err();
        assert!(e.contains("fetch limit"), "{e}");
        assert_eq!(
            std::fs::read_dir(tmp.path().join("cache2/fetch"))
                .unwrap()
                .count(),
            0,
            "a refused download leaves nothing in the cache"
        );
    }
}
