//! `cascade bloat`: which run-image packages an image's processes reach,
//! load (with `--trace`), and which of a scanner's findings lie in packages
//! never reached.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::Format;
use super::exit::InvalidInput;
use cascade_lifecycle::bloat::{self, BloatReport, trace, vex};
use cascade_lifecycle::oci::ImageRef;

#[derive(Debug, Args)]
pub struct BloatArgs {
    /// The image: oci:DIR[:TAG] or HOST[:PORT]/REPO[:TAG|@DIGEST].
    pub image: String,

    /// Also run the image's process here (under bubblewrap, as `cascade
    /// run` does) traced by strace, and report which packages it loaded.
    /// With --port it waits for the port and sends `GET /`, or runs the
    /// probe command given after `--`; without, it lets the process run for
    /// --settle seconds.
    #[arg(long)]
    pub trace: bool,

    /// With --trace: set PORT and let the process use the host's network
    /// (see `cascade run --port`).
    #[arg(long, value_name = "PORT", requires = "trace")]
    pub port: Option<u16>,

    /// With --trace: the process type to start (default: the image's
    /// default process).
    #[arg(long, short = 'p', value_name = "TYPE", requires = "trace")]
    pub process: Option<String>,

    /// With --trace: seconds to wait for the port, or to let a process
    /// without one run.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, requires = "trace")]
    pub settle: u64,

    /// A vulnerability report of the image in Grype's or Trivy's JSON
    /// format: its findings are split into those in packages the image
    /// reaches and those in packages it never reaches.
    #[arg(long, value_name = "FILE")]
    pub vulns: Option<PathBuf>,

    /// With --vulns: write an OpenVEX (v0.2.0) document here stating
    /// not_affected (vulnerable_code_not_in_execute_path) for each finding
    /// in a package never reached (statically, and never loaded if traced).
    /// Refused while the analysis is incomplete (a shell script whose
    /// commands are not followed, an unreadable ELF file, a missing program).
    #[arg(long, value_name = "FILE", requires = "vulns")]
    pub vex: Option<PathBuf>,

    /// Where pulled blobs and layer listings are cached.
    #[arg(long, value_name = "DIR", env = "CASCADE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// A registry host that may be reached over plain HTTP. Repeatable.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// With --trace: a command run on this machine once the process is up
    /// (after `--`), instead of `GET /`.
    #[arg(last = true, value_name = "PROBE")]
    pub probe: Vec<String>,
}

pub fn run(args: &BloatArgs) -> anyhow::Result<()> {
    let image = ImageRef::parse(&args.image).map_err(|e| InvalidInput(format!("IMAGE: {e}")))?;
    if image == ImageRef::Scratch {
        return Err(InvalidInput("IMAGE: scratch holds no package".into()).into());
    }
    let oci = super::oci(args.cache_dir.clone(), &[&image], &args.insecure_registry)?;
    let name = image.to_string();
    let read = oci.read(&image, None)?;
    let analysed = bloat::analyse_read(&name, &read, &oci)?;
    let loaded = if args.trace {
        let probe = if !args.probe.is_empty() {
            trace::Probe::Command(args.probe.clone())
        } else if args.port.is_some() {
            trace::Probe::Http
        } else {
            trace::Probe::None
        };
        let options = trace::TraceOptions {
            process: args.process.clone(),
            port: args.port,
            probe,
            settle: Duration::from_secs(args.settle),
            scratch: super::cache_root(args.cache_dir.clone()).join("run"),
        };
        Some(trace::run(
            &name,
            &read,
            &analysed.inspection,
            &oci,
            &options,
        )?)
    } else {
        None
    };
    let mut report = bloat::report(&analysed, loaded.as_ref());
    if let Some(file) = &args.vulns {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let findings = vex::findings(&bytes, &file.display().to_string())
            .map_err(|e| InvalidInput(e.to_string()))?;
        let split = vex::split(findings, &report);
        if args.vex.is_some() && !report.incomplete.is_empty() {
            return Err(InvalidInput(format!(
                "--vex: no not_affected statement is made while the analysis is incomplete: {}",
                report.incomplete.join("; ")
            ))
            .into());
        }
        if let Some(out) = &args.vex {
            let doc = vex::openvex(&split, &report, &now());
            let text = serde_json::to_string_pretty(&doc)?;
            std::fs::write(out, text + "\n")
                .with_context(|| format!("writing {}", out.display()))?;
        }
        report.vulnerabilities = Some(split);
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_text(&report),
    }
    Ok(())
}

/// The VEX timestamp: `SOURCE_DATE_EPOCH` when set (a reproducible
/// pipeline), else now.
fn now() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    cascade_lifecycle::phase::export::rfc3339(secs)
}

fn print_text(r: &BloatReport) {
    let traced = r.trace.is_some();
    println!("{} ({})", r.image, r.digest);
    if r.packages.is_empty() {
        println!(
            "no package database in the run image (no var/lib/dpkg/status or status.d): {} reached files of it by path",
            r.unowned.len()
        );
        for f in &r.unowned {
            println!("  {f}");
        }
        return;
    }
    let width = super::column_width("PACKAGE", r.packages.iter().map(|p| p.name.as_str()));
    let loaded_head = if traced { "  LOADED" } else { "" };
    println!(
        "{:<width$}  {:>10}  REACHED{loaded_head}  VIA",
        "PACKAGE", "SIZE"
    );
    for p in &r.packages {
        let size = p
            .installed_size
            .map_or_else(|| "-".into(), |b| format!("{} KiB", b / 1024));
        let loaded = match p.loaded {
            Some(true) => "  yes   ",
            Some(false) => "  no    ",
            None => "",
        };
        let via = p.via.first().cloned().unwrap_or_default();
        let more = if p.via.len() > 1 {
            format!(" (+{} more)", p.via.len() - 1)
        } else {
            String::new()
        };
        println!(
            "{:<width$}  {size:>10}  {:<7}{loaded}  {via}{more}",
            p.name,
            if p.reachable { "yes" } else { "no" },
        );
    }
    let s = &r.summary;
    println!(
        "{} of {} packages never reached ({:.0} %), {} of {} KiB ({:.0} %)",
        s.never_reachable,
        s.packages,
        s.never_reachable_share * 100.0,
        s.never_reachable_bytes / 1024,
        s.installed_bytes / 1024,
        s.never_reachable_bytes_share * 100.0
    );
    if let (Some(loaded), Some(t)) = (s.loaded, &r.trace) {
        println!(
            "traced ({}, probe: {}): {loaded} packages loaded, {} files opened",
            t.tool, t.probe, t.files_opened
        );
    }
    for m in r.missing_programs.iter().chain(&r.missing_libraries) {
        println!("missing: {m}");
    }
    for why in &r.incomplete {
        println!("incomplete: {why}");
    }
    if let Some(v) = &r.vulnerabilities {
        println!(
            "vulnerabilities: {} in reached packages, {} in packages never reached, {} outside the run image's packages",
            v.reachable.len(),
            v.never_reached.len(),
            v.not_in_run_image.len()
        );
    }
}
