//! What operating system a run image holds: `os-release` and the dpkg
//! status database, read from its layers (top layer wins, whiteouts
//! honoured) and cached by the layers' ChainID. Each blob is checked against
//! its digest and its diff_id while it is read, so a run image cannot claim
//! another image's layers to borrow (or poison) their cached description.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::oci::compress::decoder;
use crate::oci::{Digest, DigestReader, chain_id};
use crate::run_image::RunImage;

/// Files larger than this are not read (a status file of 10,000 packages
/// is about 10 MiB).
const MAX_FILE: u64 = 64 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `ID` of os-release (`debian`, `ubuntu`), when there is one.
    pub id: Option<String>,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
    /// Installed dpkg packages, sorted by name.
    pub packages: Vec<Package>,
    /// Whether a dpkg status file was found at all.
    pub has_dpkg: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
}

const STATUS: &str = "var/lib/dpkg/status";
const OS_RELEASE: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

/// Read the OS facts of `run_image` when its layer blobs are on this
/// machine (`blob_path` finds them); `None` when they are not (a registry
/// run image whose layers were never pulled: Cascade does not download a
/// base just to describe it). Results are cached under `cache_dir`.
pub fn read(
    run_image: &RunImage,
    blob_path: &dyn Fn(&Digest) -> Option<PathBuf>,
    cache_dir: &Path,
) -> io::Result<Option<OsInfo>> {
    let Some(chain) = chain_id(run_image.layers.iter().map(|l| &l.diff_id)) else {
        return Ok(Some(OsInfo::default()));
    };
    let cached = cache_dir.join("os").join(format!("{}.json", chain.hex()));
    if let Ok(bytes) = std::fs::read(&cached)
        && let Ok(info) = serde_json::from_slice(&bytes)
    {
        return Ok(Some(info));
    }
    let mut paths = Vec::new();
    for l in &run_image.layers {
        match blob_path(&l.digest) {
            Some(p) => paths.push((p, l)),
            None => return Ok(None),
        }
    }
    let mut status: Option<Vec<u8>> = None;
    let mut os_release: [Option<Vec<u8>>; 2] = [None, None];
    for (path, layer) in paths {
        let mut blob = DigestReader::new(std::fs::File::open(&path)?);
        let mut diff = DigestReader::new(decoder(&layer.media_type, &mut blob)?);
        let mut archive = tar::Archive::new(&mut diff);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let name = entry.path()?.to_string_lossy().into_owned();
            let name = name.trim_start_matches("./").trim_start_matches('/');
            let slot = if name == STATUS {
                &mut status
            } else if let Some(i) = OS_RELEASE.iter().position(|p| *p == name) {
                &mut os_release[i]
            } else {
                // A whiteout of one of them removes it.
                if let Some((dir, file)) = name.rsplit_once("/.wh.") {
                    let removed = format!("{dir}/{file}");
                    if removed == STATUS {
                        status = None;
                    }
                    if let Some(i) = OS_RELEASE.iter().position(|p| *p == removed) {
                        os_release[i] = None;
                    }
                }
                continue;
            };
            if entry.header().entry_type().is_file() && entry.size() <= MAX_FILE {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes)?;
                *slot = Some(bytes);
            }
        }
        let got_diff = diff.finish()?;
        let got_blob = blob.finish()?;
        for (what, want, got) in [
            ("digest", &layer.digest, &got_blob),
            ("diff_id", &layer.diff_id, &got_diff),
        ] {
            if want != got {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "run image {}: layer {} does not match its {what} (the content is {got})",
                        run_image.reference, layer.digest
                    ),
                ));
            }
        }
    }
    let release = os_release[0].as_ref().or(os_release[1].as_ref());
    let field = |key: &str| {
        release.and_then(|r| {
            String::from_utf8_lossy(r).lines().find_map(|l| {
                l.strip_prefix(key)?
                    .strip_prefix('=')
                    .map(|v| v.trim().trim_matches('"').to_owned())
            })
        })
    };
    let info = OsInfo {
        id: field("ID"),
        version_id: field("VERSION_ID"),
        pretty_name: field("PRETTY_NAME"),
        has_dpkg: status.is_some(),
        packages: status
            .map(|s| parse_status(&String::from_utf8_lossy(&s)))
            .unwrap_or_default(),
    };
    if let Some(parent) = cached.parent()
        && std::fs::create_dir_all(parent).is_ok()
    {
        let bytes = serde_json::to_vec(&info).expect("serialises");
        // A cache that cannot be written only costs time next build.
        let _ = crate::oci::layout::write_atomic(&cached, &bytes);
    }
    Ok(Some(info))
}

/// Installed packages of a dpkg `status` file (deb822 paragraphs), sorted.
pub fn parse_status(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let mut name = None;
        let mut version = None;
        let mut arch = None;
        let mut installed = false;
        for line in para.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("Architecture:") {
                arch = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("Status:") {
                installed = v.trim().ends_with(" installed");
            }
        }
        if let (Some(name), Some(version), true) = (name, version, installed) {
            out.push(Package {
                name,
                version,
                arch: arch.unwrap_or_default(),
            });
        }
    }
    out.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::oci::ImageRef;
    use crate::oci::store::BlobHome;
    use crate::run_image::BaseLayer;

    /// An uncompressed layer holding `files`, as (blob path, BaseLayer).
    fn layer(dir: &Path, files: &[(&str, &str)]) -> (PathBuf, BaseLayer) {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        let bytes = tar.into_inner().unwrap();
        let digest = Digest::of(&bytes);
        let path = dir.join(digest.hex());
        std::fs::write(&path, &bytes).unwrap();
        let layer = BaseLayer {
            media_type: crate::oci::MEDIA_LAYER_TAR.into(),
            size: bytes.len() as u64,
            diff_id: digest.clone(),
            digest,
        };
        (path, layer)
    }

    fn image(layers: Vec<BaseLayer>) -> RunImage {
        RunImage {
            reference: ImageRef::Scratch,
            manifest_digest: None,
            config: crate::oci::document::ImageConfig::default(),
            layers,
            home: BlobHome::None,
        }
    }

    fn read_with(
        img: &RunImage,
        blobs: &[(PathBuf, BaseLayer)],
        cache: &Path,
    ) -> io::Result<OsInfo> {
        let find = |d: &Digest| {
            blobs
                .iter()
                .find(|(_, l)| &l.digest == d)
                .map(|(p, _)| p.clone())
        };
        Ok(read(img, &find, cache)?.expect("local"))
    }

    #[test]
    fn cache_is_keyed_by_the_whole_stack_not_the_top_layer() {
        let dir = tempfile::tempdir().unwrap();
        let debian = layer(dir.path(), &[("etc/os-release", "ID=debian\n")]);
        let alpine = layer(dir.path(), &[("etc/os-release", "ID=alpine\n")]);
        let top = layer(dir.path(), &[("app/readme", "same top")]);
        let blobs = [debian.clone(), alpine.clone(), top.clone()];
        let cache = dir.path().join("cache");
        let a = image(vec![debian.1.clone(), top.1.clone()]);
        let b = image(vec![alpine.1.clone(), top.1.clone()]);
        assert_eq!(
            read_with(&a, &blobs, &cache).unwrap().id.as_deref(),
            Some("debian")
        );
        // Same top diff_id, other base: not the first image's cached answer.
        assert_eq!(
            read_with(&b, &blobs, &cache).unwrap().id.as_deref(),
            Some("alpine")
        );
    }

    #[test]
    fn a_layer_that_is_not_its_diff_id_is_refused_and_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let real = layer(dir.path(), &[("etc/os-release", "ID=debian\n")]);
        let forged = layer(dir.path(), &[("etc/os-release", "ID=forged\n")]);
        // The forged layer claims the real one's diff_id.
        let mut claim = forged.1.clone();
        claim.diff_id = real.1.diff_id.clone();
        let blobs = [(forged.0.clone(), claim.clone())];
        let cache = dir.path().join("cache");
        let err = read_with(&image(vec![claim.clone()]), &blobs, &cache).unwrap_err();
        assert!(
            err.to_string().contains("does not match its diff_id"),
            "{err}"
        );
        assert!(
            !cache.join("os").exists()
                || std::fs::read_dir(cache.join("os"))
                    .unwrap()
                    .next()
                    .is_none()
        );
        // A blob whose bytes are not its digest is refused too.
        let mut wrong = real.1.clone();
        wrong.digest = forged.1.digest.clone();
        let blobs = [(real.0.clone(), wrong.clone())];
        let err = read_with(&image(vec![wrong]), &blobs, &cache).unwrap_err();
        assert!(
            err.to_string().contains("does not match its digest"),
            "{err}"
        );
        // The honest image still reads.
        let blobs = [real.clone()];
        let info = read_with(&image(vec![real.1.clone()]), &blobs, &cache).unwrap();
        assert_eq!(info.id.as_deref(), Some("debian"));
    }

    #[test]
    fn installed_packages_only_sorted() {
        let text = "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\nDescription: x\n more\n\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n";
        let p = parse_status(text);
        let names: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["base-files", "zlib1g"]);
        assert_eq!(p[1].version, "1:1.2.13.dfsg-1");
    }
}
