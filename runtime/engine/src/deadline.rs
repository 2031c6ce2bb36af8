//! The time a buildpack call has left. The epoch deadline stops wasm code,
//! but not a host call in progress: unpack, fetch and exec take this and
//! stop themselves, so a host call cannot outlive the call that made it.

use std::io::{self, Read};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        let now = Instant::now();
        Self {
            at: now
                .checked_add(budget)
                .unwrap_or(now + Duration::from_secs(1 << 30)),
            budget,
        }
    }

    /// What is left (zero once passed).
    pub fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// An error naming `what` once the deadline has passed.
    pub fn check(&self, what: &str) -> Result<(), String> {
        if Instant::now() >= self.at {
            Err(format!(
                "{what}: stopped at the buildpack's deadline of {} s",
                self.budget.as_secs()
            ))
        } else {
            Ok(())
        }
    }

    /// `inner`, failing its reads with `TimedOut` once the deadline passes.
    pub fn reader<R: Read>(self, inner: R) -> DeadlineReader<R> {
        DeadlineReader {
            inner,
            deadline: self,
        }
    }
}

pub struct DeadlineReader<R> {
    inner: R,
    deadline: Deadline,
}

impl<R: Read> Read for DeadlineReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.deadline
            .check("reading")
            .map_err(|e| io::Error::new(io::ErrorKind::TimedOut, e))?;
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_deadline_stops_reads_and_names_the_budget() {
        let d = Deadline::after(Duration::ZERO);
        assert_eq!(d.left(), Duration::ZERO);
        let e = d.check("unpack x.tgz").unwrap_err();
        assert!(
            e.contains("unpack x.tgz") && e.contains("deadline of 0 s"),
            "{e}"
        );
        let mut r = d.reader(&b"bytes"[..]);
        let e = r.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let mut ok = Deadline::after(Duration::from_mins(1)).reader(&b"bytes"[..]);
        assert_eq!(ok.read(&mut [0u8; 8]).unwrap(), 5);
        assert!(Deadline::after(Duration::MAX).left() > Duration::from_hours(365 * 24));
    }
}
