//! `cascade inspect`.

use clap::Args;

use super::Format;
use super::exit::InvalidInput;
use cascade_lifecycle::inspect::{Inspection, inspect};
use cascade_lifecycle::oci::ImageRef;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: oci:DIR[:TAG] or HOST[:PORT]/REPO[:TAG|@DIGEST].
    pub image: String,

    /// A registry host that may be reached over plain HTTP. Repeatable.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// Where pulled blobs are cached (the SBOM layer --sbom reads).
    #[arg(long, value_name = "DIR", env = "CASCADE_CACHE_DIR")]
    pub cache_dir: Option<std::path::PathBuf>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Print the image's whole CycloneDX SBOM (JSON) instead.
    #[arg(long)]
    pub sbom: bool,
}

pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let image = ImageRef::parse(&args.image).map_err(|e| InvalidInput(format!("IMAGE: {e}")))?;
    let oci = super::oci(args.cache_dir.clone(), &[&image], &args.insecure_registry)?;
    let i = inspect(&image, &oci)?;
    if args.sbom {
        let read = oci.read(&image, None)?;
        let doc = cascade_lifecycle::inspect::image_sbom(&oci, &read, &i)?
            .ok_or_else(|| InvalidInput(format!("{}: the image has no SBOM layer", i.image)))?;
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&i)?),
        Format::Text => print_text(&i),
    }
    Ok(())
}

fn print_text(i: &Inspection) {
    println!("Image: {} ({})", i.image, i.digest);
    println!(
        "Platform: {}/{}   Created: {}",
        i.os,
        i.architecture,
        i.created.as_deref().unwrap_or("-")
    );
    if !i.buildpacks_image {
        println!("Not built with buildpacks (no io.buildpacks.lifecycle.metadata label).");
    }
    if let Some(r) = &i.run_image {
        println!("Run image: {}", r.reference);
        // Scratch has no manifest and no layers: nothing to show.
        if let Some(digest) = &r.digest {
            println!("  digest: {digest}");
        }
        if let Some(top) = &r.top_layer {
            println!("  top layer: {top}");
        }
    }
    match &i.build_image {
        Some(b) if !b.hermetic => {
            println!(
                "Build image: {} (the build host's own tools: not hermetic)",
                b.reference
            );
        }
        Some(b) => {
            println!("Build image: {}", b.reference);
            if let Some(digest) = &b.digest {
                println!("  digest: {digest}");
            }
        }
        None => {}
    }
    println!("Rebasable: {}", i.rebasable);
    println!("Buildpacks:");
    for b in &i.buildpacks {
        println!("  {}@{}", b.id, b.version);
    }
    println!("Processes:");
    for p in &i.processes {
        let mark = if i.default_process.as_deref() == Some(&p.kind) {
            " (default)"
        } else {
            ""
        };
        println!(
            "  {}{mark}: {} {}  [{}]",
            p.kind,
            p.command.join(" "),
            p.args.join(" "),
            p.buildpack_id
        );
    }
    if i.env.is_empty() {
        println!("Env: (none)");
    } else {
        println!("Env:");
        for e in &i.env {
            println!("  {e}");
        }
    }
    if let Some(s) = &i.sbom {
        println!(
            "SBOM: {} buildpacks, {} layers ({} components declared by buildpacks), run image OS {} with {} packages",
            s.buildpacks,
            s.layers,
            s.layer_components,
            s.os.as_deref().unwrap_or("unknown"),
            s.os_packages
        );
    }
    println!("Layers:");
    println!(
        "  {:<12}  {:<71}  {:>10}  SOURCE",
        "DIGEST", "DIFF_ID", "BYTES"
    );
    for l in &i.layers {
        println!(
            "  {:<12}  {:<71}  {:>10}  {}",
            &l.digest.get(7..19).unwrap_or(&l.digest),
            l.diff_id,
            l.size,
            l.source
        );
    }
}
