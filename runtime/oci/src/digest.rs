//! Digests are `cascade-digest`'s (the engine checks fetched bytes by them
//! too); what only OCI needs is here.

pub use cascade_digest::{Digest, DigestError, DigestReader, DigestWriter};

/// The OCI ChainID of a stack of layers by diff_id (bottom first): it names
/// the filesystem the whole stack makes, where the top diff_id alone names
/// only one layer of it.
pub fn chain_id<'a>(diff_ids: impl IntoIterator<Item = &'a Digest>) -> Option<Digest> {
    let mut chain: Option<Digest> = None;
    for d in diff_ids {
        chain = Some(match chain {
            None => d.clone(),
            Some(c) => Digest::of(format!("{c} {d}").as_bytes()),
        });
    }
    chain
}
