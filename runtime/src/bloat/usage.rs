//! `cascade audit --usage`: package use across a fleet. For each run-image
//! package, how many of the images that carry it reach it; the packages no
//! image reaches are the list a platform team takes to make its minimal
//! run stack. Each image is analysed on its own: one that cannot be read
//! is reported and the others still count.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::oci::ImageRef;
use crate::oci::store::Oci;

/// One image of the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct ImageUse {
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `read` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub packages: usize,
    pub reachable: usize,
}

/// One package across the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct PackageFleetUse {
    pub name: String,
    /// The versions the images carry.
    pub versions: Vec<String>,
    /// Images that carry it.
    pub images: usize,
    /// Images whose processes reach it.
    pub reached_by: usize,
    pub installed_size: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UsageReport {
    pub images: Vec<ImageUse>,
    pub packages: Vec<PackageFleetUse>,
    /// Packages no image reaches, by name: the candidates to drop from the
    /// run stack.
    pub never_reached: Vec<String>,
    pub read: usize,
    pub failed: usize,
}

/// Analyse every image of `images` and add up their package use.
pub fn usage(
    oci: &Oci,
    images: &[ImageRef],
    reporter: &dyn crate::report::Reporter,
) -> UsageReport {
    let mut rows = Vec::new();
    let mut by_name: BTreeMap<String, (BTreeSet<String>, usize, usize, Option<u64>)> =
        BTreeMap::new();
    for image in images {
        let name = image.to_string();
        reporter.note(&format!("{name}: reading what its processes reach"));
        let analysed = crate::fleet::unless_it_panics(|| {
            super::analyse(image, oci).map_err(|e| e.to_string())
        })
        .and_then(|r| r);
        match analysed {
            Ok(a) => {
                let report = super::report(&a, None);
                for p in &report.packages {
                    let slot = by_name.entry(p.name.clone()).or_default();
                    slot.0.insert(p.version.clone());
                    slot.1 += 1;
                    if p.reachable {
                        slot.2 += 1;
                    }
                    slot.3 = slot.3.max(p.installed_size);
                }
                rows.push(ImageUse {
                    image: name,
                    digest: Some(report.digest.clone()),
                    status: "read",
                    reason: None,
                    packages: report.summary.packages,
                    reachable: report.summary.reachable,
                });
            }
            Err(reason) => rows.push(ImageUse {
                image: name,
                digest: None,
                status: "failed",
                reason: Some(reason),
                packages: 0,
                reachable: 0,
            }),
        }
    }
    let packages: Vec<PackageFleetUse> = by_name
        .into_iter()
        .map(
            |(name, (versions, images, reached_by, size))| PackageFleetUse {
                name,
                versions: versions.into_iter().collect(),
                images,
                reached_by,
                installed_size: size,
            },
        )
        .collect();
    let never_reached = packages
        .iter()
        .filter(|p| p.reached_by == 0)
        .map(|p| p.name.clone())
        .collect();
    let failed = rows.iter().filter(|r| r.status == "failed").count();
    UsageReport {
        read: rows.len() - failed,
        failed,
        images: rows,
        packages,
        never_reached,
    }
}
