//! Glue used by [`crate::export_buildpack!`]; not a public API.

pub use crate::bindings;
pub use crate::bindings::Guest;
pub use crate::bindings::cascade::buildpack::types::{
    BuildContext as BuildContextRecord, BuildOutput, BuildpackError as BuildpackErrorRecord,
    DetectContext, DetectOutcome,
};
pub use wit_bindgen;

use crate::Buildpack;

/// [`crate::API_VERSION`] as the bytes of a custom section.
pub const API_VERSION_BYTES: [u8; crate::API_VERSION.len()] = {
    let text = crate::API_VERSION.as_bytes();
    let mut out = [0u8; crate::API_VERSION.len()];
    let mut i = 0;
    while i < text.len() {
        out[i] = text[i];
        i += 1;
    }
    out
};

pub fn detect<B: Buildpack>(context: DetectContext) -> Result<DetectOutcome, BuildpackErrorRecord> {
    let ctx = crate::DetectContext::from_record(context);
    B::default()
        .detect(&ctx)
        .map(crate::DetectResult::into_record)
        .map_err(crate::BuildpackError::into_record)
}

pub fn build<B: Buildpack>(
    context: BuildContextRecord,
) -> Result<BuildOutput, BuildpackErrorRecord> {
    let ctx = crate::BuildContext::from_record(context);
    let result = B::default()
        .build(&ctx)
        .map_err(crate::BuildpackError::into_record)?;
    for name in ctx.undeclared(&result.layer_names()) {
        crate::log::warn(format!(
            "layer {name} was made but is not in the build result: its files are dropped, not in the image and not cached (add it with BuildResult::layer)"
        ));
    }
    Ok(result.into_record())
}
