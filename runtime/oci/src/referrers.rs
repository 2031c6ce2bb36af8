//! Attaching an artifact (the image SBOM) to an image in a registry as an
//! OCI referrer (image-spec 1.1 `subject`), with the distribution spec's
//! fallback for registries without the referrers API: an image index under
//! the tag `sha256-<hex of the subject>` that lists the referrers.

use oci_client::Reference;

use super::document::{self, Descriptor, MediaType};
use super::registry::{Registry, RegistryError};
use super::{Digest, MEDIA_INDEX, MEDIA_MANIFEST};

/// The empty config of an artifact manifest (image-spec 1.1).
const MEDIA_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Whether `tag` is a referrers fallback tag (`sha256-<64 hex>`, also with
/// the `.sig`/`.att`/`.sbom` suffixes cosign uses): an index of artifacts,
/// not an image to rebase or audit.
pub fn is_referrers_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-").is_some_and(|rest| {
        let hex = rest.split('.').next().unwrap_or_default();
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// How an artifact ended up attached.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attached {
    /// Digest of the artifact manifest.
    pub digest: String,
    /// `referrers-api` (the registry indexed it), `tag-fallback` (listed
    /// in the `sha256-<hex>` index) or `already-attached`.
    pub via: String,
}

/// Push `bytes` as an artifact of `artifact_type` whose subject is the
/// manifest `subject` (`subject_size` bytes) in `target`'s repository.
/// Everything is content-addressed and canonical, so attaching the same
/// SBOM to the same image twice changes nothing.
pub fn attach(
    client: &Registry,
    target: &Reference,
    subject: &Digest,
    subject_size: usize,
    artifact_type: &str,
    bytes: &[u8],
) -> Result<Attached, RegistryError> {
    let blob = Digest::of(bytes);
    let empty = b"{}";
    let empty_digest = Digest::of(empty);
    let mut manifest = document::manifest(
        document::descriptor(MEDIA_EMPTY, &empty_digest, 2),
        vec![document::descriptor(
            artifact_type,
            &blob,
            bytes.len() as u64,
        )],
    );
    manifest.set_artifact_type(Some(MediaType::from(artifact_type)));
    manifest.set_subject(Some(document::descriptor(
        MEDIA_MANIFEST,
        subject,
        subject_size as u64,
    )));
    let manifest = document::to_bytes(&manifest);
    let digest = Digest::of(&manifest);
    let listed = |entries: &[Descriptor]| {
        entries
            .iter()
            .any(|m| document::digest_of(m, "referrer").is_ok_and(|d| d == digest))
    };
    let subject_ref = target.clone_with_digest(subject.to_string());
    // The document goes up, the empty config is looked for and the
    // subject's referrers are read at once: none waits on another, and
    // the document is usually new (an SBOM names its image's digest).
    let (pushed, empty_held, before) = std::thread::scope(|scope| {
        let pushed = scope.spawn(|| client.push_blob_bytes(target, &blob, bytes));
        let empty_held = scope.spawn(|| client.has_blob(target, &empty_digest));
        let before = client.referrers(&subject_ref);
        (
            pushed
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            empty_held
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            before,
        )
    });
    pushed?;
    if listed(&before?) {
        return Ok(Attached {
            digest: digest.to_string(),
            via: "already-attached".into(),
        });
    }
    if !empty_held? {
        client.push_blob_bytes(target, &empty_digest, empty)?;
    }
    client.push_manifest(
        &target.clone_with_digest(digest.to_string()),
        &manifest,
        MEDIA_MANIFEST,
    )?;

    let mut entries = client.referrers(&subject_ref)?;
    if listed(&entries) {
        return Ok(Attached {
            digest: digest.to_string(),
            via: "referrers-api".into(),
        });
    }
    // The registry did not index the subject: keep the fallback tag's index
    // (which `referrers` just read) and add this artifact to it.
    let mut entry = document::descriptor(MEDIA_MANIFEST, &digest, manifest.len() as u64);
    entry.set_artifact_type(Some(MediaType::from(artifact_type)));
    entries.push(entry);
    let index = document::to_bytes(&document::index(entries));
    let tag = format!("sha256-{}", subject.hex());
    let tag_ref = Reference::with_tag(
        target.registry().to_owned(),
        target.repository().to_owned(),
        tag,
    );
    client.push_manifest(&tag_ref, &index, MEDIA_INDEX)?;
    Ok(Attached {
        digest: digest.to_string(),
        via: "tag-fallback".into(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn referrers_tags_are_told_apart_from_image_tags() {
        let hex = "a".repeat(64);
        assert!(super::is_referrers_tag(&format!("sha256-{hex}")));
        assert!(super::is_referrers_tag(&format!("sha256-{hex}.sig")));
        assert!(!super::is_referrers_tag("sha256-abc"));
        assert!(!super::is_referrers_tag("v1"));
    }
}
