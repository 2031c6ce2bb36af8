//! `cascade rebase`.

use clap::Args;

use super::Format;
use super::exit::InvalidInput;
use super::progress::Stderr;
use cascade_runtime::oci::ImageRef;
use cascade_runtime::phase::{Rebase, Rebased};

#[derive(Debug, Args)]
pub struct RebaseArgs {
    /// The app image: oci:DIR[:TAG] or HOST[:PORT]/REPO[:TAG].
    pub image: String,

    /// The new run image: oci:DIR[:TAG] or HOST[:PORT]/REPO[:TAG|@DIGEST]
    /// (a new tag of the same repository needs no --force).
    #[arg(long, value_name = "REF")]
    pub run_image: String,

    /// Write the rebased image here instead of moving IMAGE's own tag.
    #[arg(long, short = 'o', value_name = "REF")]
    pub output: Option<String>,

    /// Rebase even when os/arch or the run image's repository differ, or the
    /// image is labelled not rebasable.
    #[arg(long)]
    pub force: bool,

    /// A registry host (HOST[:PORT]) that may be reached over plain HTTP;
    /// loopback registries always may. Repeatable.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// Where pulled blobs are cached.
    #[arg(long, value_name = "DIR", env = "CASCADE_CACHE_DIR")]
    pub cache_dir: Option<std::path::PathBuf>,

    /// Output format of the result on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &RebaseArgs) -> anyhow::Result<()> {
    let reporter = Stderr::new(false);
    let parse =
        |flag: &str, r: &str| ImageRef::parse(r).map_err(|e| InvalidInput(format!("{flag}: {e}")));
    let image = parse("IMAGE", &args.image)?;
    let run_image = parse("--run-image", &args.run_image)?;
    let output = args
        .output
        .as_deref()
        .map(|o| parse("--output", o))
        .transpose()?;
    let mut refs = vec![&image, &run_image];
    refs.extend(output.as_ref());
    let oci = super::oci(args.cache_dir.clone(), &refs, &args.insecure_registry)?;
    let rebased = Rebase {
        oci: &oci,
        image: &image,
        run_image: &run_image,
        output: output.as_ref(),
        force: args.force,
        reporter: &reporter,
    }
    .run()?;
    print(&rebased, args.format)
}

fn print(r: &Rebased, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(r)?),
        Format::Text if !r.changed => {
            println!("{} is already on run image {}", r.image, r.new_run_image);
        }
        Format::Text => {
            println!("Rebased {}", r.image);
            println!("  image:     {} -> {}", r.old_digest, r.new_digest);
            println!("  run image: {} -> {}", r.old_run_image, r.new_run_image);
            println!("  app layers kept: {}", r.app_layers);
            let t = &r.transfers;
            println!(
                "  blobs: {} present, {} linked, {} mounted, {} downloaded, {} uploaded",
                t.present, t.linked, t.mounted, t.downloaded, t.uploaded
            );
        }
    }
    Ok(())
}
