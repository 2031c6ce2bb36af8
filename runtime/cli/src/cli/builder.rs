//! `cascade builder inspect`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Format;
use cascade_lifecycle::builder_info::{BuilderInfo, describe};

#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// List a builder's buildpacks (id, version, source, component digest)
    /// and its order, like `pack builder inspect`. Without a file: the
    /// built-in builder, whose buildpacks a builder.toml can name as
    /// `uri = "builtin:ID"`.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A builder.toml; default: the built-in builder.
    pub builder: Option<PathBuf>,

    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(cmd: &BuilderCommand) -> anyhow::Result<()> {
    let BuilderCommand::Inspect(args) = cmd;
    let builder = args
        .builder
        .as_deref()
        .map(cascade_lifecycle::embedded::load_builder)
        .transpose()?;
    let info = describe(builder.as_ref())?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&info)?),
        Format::Text => print_text(&info),
    }
    Ok(())
}

fn print_text(info: &BuilderInfo) {
    println!("Builder: {}", info.builder);
    println!(
        "Run image: {}",
        info.run_image.as_deref().unwrap_or("scratch")
    );
    match &info.build_image {
        Some(b) => println!(
            "Build image: {} ({})",
            b.reference,
            b.digest
                .as_deref()
                .unwrap_or("not pinned in builder.lock yet")
        ),
        None => println!("Build image: none (builds that exec need --build-image)"),
    }
    println!("\nBuildpacks:");
    let rows: Vec<[String; 4]> = info
        .buildpacks
        .iter()
        .map(|b| {
            [
                b.id.clone().unwrap_or_else(|| "-".into()),
                b.version.clone().unwrap_or_else(|| "-".into()),
                b.digest
                    .as_deref()
                    .map_or_else(|| "(not pinned in builder.lock)".into(), short),
                b.source.clone(),
            ]
        })
        .collect();
    table(&["ID", "VERSION", "DIGEST", "SOURCE"], &rows);
    println!("\nOrder:");
    for (i, group) in info.order.iter().enumerate() {
        println!("  Group #{}:", i + 1);
        for m in group {
            let version = m
                .version
                .as_deref()
                .map(|v| format!("@{v}"))
                .unwrap_or_default();
            let optional = if m.optional { "  (optional)" } else { "" };
            println!("    {}{version}{optional}", m.id);
        }
    }
}

/// `sha256:` and the first 12 hex digits, as pack and docker show digests.
fn short(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}

/// Rows under headers, columns aligned.
fn table(headers: &[&str; 4], rows: &[[String; 4]]) {
    use std::fmt::Write as _;
    let mut widths = headers.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut out = String::from(" ");
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            out.push(' ');
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}  ");
            }
        }
        println!("{}", out.trim_end());
    };
    line(*headers);
    for row in rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
}
