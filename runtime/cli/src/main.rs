//! The `cascade` command: a thin layer of argument parsing, progress output
//! and exit codes over the `cascade` library.

// The CLI's doc comments are clap's --help text (`oci:DIR[:TAG]`), not
// rustdoc: brackets there are not links.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    // `build --help` lists the buildpacks this binary really holds.
    let command =
        cli::Cli::command().mut_subcommand("build", |c| c.after_help(cli::build::builtins_help()));
    let args = cli::Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = cli::exit::code_for(&err);
            let mut shown = format!("{err}");
            eprintln!("error: {shown}");
            // Errors that quote their source would say it twice.
            for cause in err.chain().skip(1) {
                let cause = cause.to_string();
                if !shown.contains(&cause) {
                    eprintln!("  caused by: {cause}");
                    shown.push_str(&cause);
                }
            }
            ExitCode::from(code)
        }
    }
}
