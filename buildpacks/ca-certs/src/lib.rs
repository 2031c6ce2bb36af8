//! `cascade/ca-certs` (the talk's `corp/ca-certs`): passes when the app has
//! PEM files in `ca-certs/` (`*.pem`, `*.crt`), or the platform passes PEM
//! text in `BP_CA_CERTIFICATES` (certificates for the image) or
//! `BP_BUILD_CA_CERTIFICATES` (certificates for the build only: a
//! TLS-intercepting proxy's CA, which `cascade build --ca-certificates FILE`
//! passes). Provides `ca-certificates` in the build plan (and requires it,
//! so it passes on its own too).
//!
//! Two layers: `ca-certificates` (launch and build) holds what the image
//! trusts, the app's and `BP_CA_CERTIFICATES`, with `SSL_CERT_FILE` at run
//! time; `build-ca-certificates` (build only: never in the image) holds
//! every certificate, and points each tool's own variable at it for the
//! tools later buildpacks exec. Two of those add to the system's roots:
//! Node.js adds `NODE_EXTRA_CA_CERTS` to its own, and Go and OpenSSL read
//! `SSL_CERT_FILE` beside the system's certificate directory (on Debian and
//! Ubuntu, whose `/etc/ssl/certs` holds every root hashed; on a build image
//! whose directory is not hashed, OpenSSL then trusts the bundle alone, so
//! give such an image's roots too). Four replace
//! the tool's store: pip (`PIP_CERT`), requests (`REQUESTS_CA_BUNDLE`),
//! Cargo (`CARGO_HTTP_CAINFO`) and git (`GIT_SSL_CAINFO`). Those are set
//! only when the platform passes `BP_BUILD_CA_CERTIFICATES`: behind its
//! intercepting proxy every certificate a tool sees is the proxy's, while
//! an app's own CA for one internal host must not cost pip the public
//! roots (a buildpack cannot read the build image's system bundle to add).

use std::path::{Path, PathBuf};

use cascade_sdk::{
    BuildContext, BuildPlan, BuildResult, Buildpack, BuildpackError, DetectContext, DetectResult,
    Result, ResultExt,
};

/// Platform variable carrying PEM text for the image (and the build).
pub const PLATFORM_VAR: &str = "BP_CA_CERTIFICATES";
/// Platform variable carrying PEM text for the build only.
pub const BUILD_VAR: &str = "BP_BUILD_CA_CERTIFICATES";
/// The variables that make exec'd tools trust a bundle besides the
/// system's roots.
pub const ADDING_VARS: [&str; 2] = ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"];
/// The variables that make exec'd tools trust a bundle instead of the
/// system's roots: set only for the platform's build certificates.
pub const REPLACING_VARS: [&str; 4] = [
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "CARGO_HTTP_CAINFO",
    "GIT_SSL_CAINFO",
];
const APP_DIR: &str = "ca-certs";
const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

#[derive(Default)]
pub struct CaCerts;

fn app_cert_files(app: &Path) -> Result<Vec<PathBuf>> {
    let dir = app.join(APP_DIR);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(cascade_sdk::fs::read_dir_sorted(&dir)
        .context(format!("listing {APP_DIR}/"))?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pem" || e == "crt") && p.is_file())
        .collect())
}

/// The certificates in `pem`, each normalised to `BEGIN..END\n`.
/// Errors name the source when the text holds no complete certificate.
pub fn certificates(source: &str, pem: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            return Err(BuildpackError::new(format!(
                "{source}: certificate without {END}"
            )));
        };
        let end = start + len + END.len();
        let mut body = String::new();
        for line in rest[start..end].lines() {
            body.push_str(line.trim());
            body.push('\n');
        }
        out.push(body);
        rest = &rest[end..];
    }
    if out.is_empty() {
        return Err(
            BuildpackError::new(format!("{source}: no PEM certificate found"))
                .hint(format!("a certificate starts with {BEGIN}")),
        );
    }
    Ok(out)
}

impl Buildpack for CaCerts {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        let found = !app_cert_files(ctx.app_dir())?.is_empty()
            || ctx.platform_env().contains_key(PLATFORM_VAR)
            || ctx.platform_env().contains_key(BUILD_VAR);
        Ok(if found {
            DetectResult::pass_with(
                BuildPlan::new()
                    .provides("ca-certificates")
                    .requires("ca-certificates"),
            )
        } else {
            DetectResult::fail(format!(
                "no {APP_DIR}/*.pem, no {PLATFORM_VAR} and no {BUILD_VAR}"
            ))
        })
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let mut bundle = String::new();
        let mut count = 0;
        for file in app_cert_files(ctx.app_dir())? {
            let name = format!(
                "{APP_DIR}/{}",
                file.file_name().unwrap_or_default().to_string_lossy()
            );
            let text = std::fs::read_to_string(&file).context(format!("reading {name}"))?;
            for cert in certificates(&name, &text)? {
                bundle.push_str(&cert);
                count += 1;
            }
        }
        if let Some(text) = ctx.platform_env().get(PLATFORM_VAR) {
            for cert in certificates(PLATFORM_VAR, text)? {
                bundle.push_str(&cert);
                count += 1;
            }
        }
        let mut result = BuildResult::new();
        let mut build_bundle = bundle.clone();
        let mut build_count = count;
        if count > 0 {
            let layer = ctx.layer("ca-certificates")?.launch(true).build(true);
            let file = layer.path().join("ca-certificates.crt");
            std::fs::write(&file, &bundle).context("writing the bundle")?;
            cascade_sdk::log::info(format!("bundled {count} certificate(s) for the image"));
            result = result.layer(
                layer
                    .metadata("certificates", i64::from(count))
                    // At build the build layer's bundle, a superset, holds.
                    .env(
                        cascade_sdk::EnvScope::Launch,
                        cascade_sdk::EnvOp::Override,
                        "SSL_CERT_FILE",
                        file.display().to_string(),
                        None,
                    ),
            );
        }
        let proxy = ctx.platform_env().get(BUILD_VAR);
        if let Some(text) = proxy {
            for cert in certificates(BUILD_VAR, text)? {
                build_bundle.push_str(&cert);
                build_count += 1;
            }
        }
        let layer = ctx.layer("build-ca-certificates")?.build(true);
        let file = layer.path().join("ca-certificates.crt");
        std::fs::write(&file, &build_bundle).context("writing the build bundle")?;
        cascade_sdk::log::info(format!(
            "{build_count} certificate(s) trusted by the tools of this build"
        ));
        let mut layer = layer.metadata("certificates", i64::from(build_count));
        let replacing: &[&str] = if proxy.is_some() {
            &REPLACING_VARS
        } else {
            &[]
        };
        for var in ADDING_VARS.iter().chain(replacing) {
            layer = layer.env(
                cascade_sdk::EnvScope::Build,
                cascade_sdk::EnvOp::Override,
                *var,
                file.display().to_string(),
                None,
            );
        }
        Ok(result.layer(layer))
    }
}

cascade_sdk::export_buildpack!(CaCerts);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_normalises_certificates() {
        let pem = format!("junk\n{BEGIN}\n  AAA\n{END}\n{BEGIN}\nBBB\n{END}");
        let certs = certificates("x", &pem).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0], format!("{BEGIN}\nAAA\n{END}\n"));
    }

    #[test]
    fn names_the_source_of_bad_pem() {
        let err = certificates("ca-certs/a.pem", "not a cert").unwrap_err();
        assert!(err.message().contains("ca-certs/a.pem"), "{err}");
        let err = certificates("x", BEGIN).unwrap_err();
        assert!(err.message().contains("without"), "{err}");
    }
}
