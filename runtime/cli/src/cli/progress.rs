//! Progress on stderr: phases, notes, and buildpack output prefixed with the
//! buildpack's id. stdout stays for the result (text summary or JSON).

use std::io::Write;

use cascade_lifecycle::ids::BuildpackId;
use cascade_lifecycle::report::{LogLevel, Reporter};

pub struct Stderr {
    quiet: bool,
}

impl Stderr {
    pub fn new(quiet: bool) -> Self {
        Self { quiet }
    }
}

impl Reporter for Stderr {
    fn phase(&self, name: &str) {
        if !self.quiet {
            line(&format!("===> {}", name.to_uppercase()));
        }
    }

    fn phase_done(&self, name: &str, seconds: f64) {
        if !self.quiet {
            line(&format!("     {name} took {}", duration(seconds)));
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
    let _ = writeln!(err, "{}", cascade_lifecycle::report::neutralise(text));
}

/// `52 ms` under ten seconds, `12.3 s` above.
fn duration(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.1} s")
    }
}
