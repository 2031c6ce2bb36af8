//! `cascade rebase`.

use clap::Args;

use super::Format;
use super::exit::InvalidInput;
use super::progress::Stderr;
use cascade_runtime::oci::ImageRef;
use cascade_runtime::phase::{Rebase, Rebased};

#[derive(Debug, Args)]
pub struct RebaseArgs {
    /// The app image: oci:DIR[:TAG].
    pub image: String,

    /// The new run image: oci:DIR[:TAG] (a new tag of the same repository
    /// needs no --force).
    #[arg(long, value_name = "REF")]
    pub run_image: String,

    /// Write the rebased image here instead of moving IMAGE's own tag.
    #[arg(long, short = 'o', value_name = "REF")]
    pub output: Option<String>,

    /// Rebase even when os/arch or the run image's repository differ, or the
    /// image is labelled not rebasable.
    #[arg(long)]
    pub force: bool,

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
    let rebased = Rebase {
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
        }
    }
    Ok(())
}
