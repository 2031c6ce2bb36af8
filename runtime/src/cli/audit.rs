//! `cascade audit`.

use clap::Args;

use super::Format;
use super::exit::InvalidInput;
use super::progress::Stderr;
use cascade_runtime::fleet::{AuditReport, audit, discover};
use cascade_runtime::oci::ImageRef;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Images to audit: oci:DIR[:TAG] or HOST[:PORT]/REPO[:TAG].
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,

    /// The run image whose current digest images are compared with.
    #[arg(long, value_name = "REF")]
    pub run_image: String,

    /// A file of image references, one per line (# comments).
    #[arg(long, value_name = "FILE")]
    pub images_file: Option<std::path::PathBuf>,

    /// Find the images in the run image's registry whose CNB label names the
    /// run image's repository.
    #[arg(long)]
    pub discover: bool,

    /// A registry host that may be reached over plain HTTP. Repeatable.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &AuditArgs) -> anyhow::Result<()> {
    let reporter = Stderr::new(true);
    let run_image =
        ImageRef::parse(&args.run_image).map_err(|e| InvalidInput(format!("--run-image: {e}")))?;
    let mut images = super::images_from(&args.images, args.images_file.as_deref())?;
    let mut refs: Vec<&ImageRef> = images.iter().collect();
    refs.push(&run_image);
    let oci = super::oci(None, &refs, &args.insecure_registry)?;
    if args.discover {
        images.extend(discover(&oci, &run_image, &reporter)?);
    }
    images.sort_by_key(ToString::to_string);
    images.dedup();
    let report = audit(&oci, &images, &run_image)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_table(&report),
    }
    Ok(())
}

fn print_table(r: &AuditReport) {
    println!("run image {} is at {}", r.run_image, r.run_image_digest);
    println!(
        "{:<15} {:<50} {:<40} BUILDPACKS",
        "STATUS", "IMAGE", "RUN IMAGE"
    );
    for e in &r.images {
        let run = e
            .run_image
            .as_deref()
            .or(e.reason.as_deref())
            .unwrap_or("-");
        println!(
            "{:<15} {:<50} {:<40} {}",
            e.status,
            e.image,
            run,
            e.buildpacks.join(",")
        );
    }
    println!(
        "{} current, {} stale, {} other",
        r.current, r.stale, r.other
    );
}
