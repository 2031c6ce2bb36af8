//! The `cascade` command: a thin layer of argument parsing, progress output
//! and exit codes over the `cascade` library.

// The CLI's doc comments are clap's --help text (`oci:DIR[:TAG]`), not
// rustdoc: brackets there are not links.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = cli::exit::code_for(&err);
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(code)
        }
    }
}
