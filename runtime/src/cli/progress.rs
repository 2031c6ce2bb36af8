//! Progress on stderr: phases, notes, and buildpack output prefixed with the
//! buildpack's id. stdout stays for the result (text summary or JSON).

use std::io::Write;
use std::time::Instant;

use cascade_runtime::ids::BuildpackId;
use cascade_runtime::report::{LogLevel, Reporter};

pub struct Stderr {
    start: Instant,
    quiet: bool,
}

impl Stderr {
    pub fn new(quiet: bool) -> Self {
        Self {
            start: Instant::now(),
            quiet,
        }
    }
}

impl Reporter for Stderr {
    fn phase(&self, name: &str) {
        if !self.quiet {
            line(&format!(
                "===> {} ({:.1}s)",
                name.to_uppercase(),
                self.start.elapsed().as_secs_f64()
            ));
        }
    }

    fn note(&self, message: &str) {
        if !self.quiet {
            line(&format!("     {message}"));
        }
    }

    fn buildpack_log(&self, id: &BuildpackId, level: LogLevel, message: &str) {
        if self.quiet && level < LogLevel::Warn {
            return;
        }
        let tag = match level {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        for text_line in message.lines() {
            line(&format!("[{id}] {tag}: {text_line}"));
        }
    }

    fn buildpack_output(&self, id: &BuildpackId, stream: &str, text: &str) {
        for text_line in text.lines() {
            line(&format!("[{id}] {stream}: {text_line}"));
        }
    }
}

/// Every line goes out neutralised: notes and logs carry guest-made text.
fn line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", cascade_runtime::report::neutralise(text));
}
