//! The bound on what one buildpack writes, held *while* it runs: a watcher
//! measures its layers dir and the growth of `/workspace` through their
//! handles and raises a flag past the limit. The flag ends the guest at its
//! next epoch tick and an exec'd tool at its next wait, so a buildpack that
//! writes without end fails with a clear error before the disk fills.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cascade_fs::GuestTree;

/// Shortest pause between two measurements; a walk that takes long is
/// repeated less often (at most a tenth of the time goes to measuring).
const MIN_PAUSE: Duration = Duration::from_millis(200);

/// A running watcher; dropping it stops it.
pub struct WriteQuota {
    exceeded: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WriteQuota {
    /// Watch `layers` and `app` (whose bytes now are not counted) against
    /// `limit` bytes.
    pub fn watch(layers: Arc<GuestTree>, app: Arc<GuestTree>, limit: u64) -> Self {
        let exceeded = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let baseline = app.bytes().unwrap_or(0);
        let (flag, halt) = (exceeded.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                let started = Instant::now();
                let used =
                    layers.bytes().unwrap_or(0) + app.bytes().unwrap_or(0).saturating_sub(baseline);
                if used > limit {
                    flag.store(true, Ordering::Relaxed);
                    return;
                }
                let pause = MIN_PAUSE.max(started.elapsed() * 10);
                let until = Instant::now() + pause;
                while Instant::now() < until && !halt.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Self {
            exceeded,
            stop,
            thread: Some(thread),
        }
    }

    /// The flag the watcher raises.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.exceeded.clone()
    }
}

impl Drop for WriteQuota {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_rises_when_the_layers_outgrow_the_limit_not_for_the_app_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = Arc::new(GuestTree::create(&tmp.path().join("layers")).unwrap());
        let app = Arc::new(GuestTree::create(&tmp.path().join("app")).unwrap());
        std::fs::write(app.path().join("big"), vec![0u8; 4096]).unwrap();
        let q = WriteQuota::watch(layers.clone(), app, 1000);
        std::thread::sleep(MIN_PAUSE * 2);
        assert!(
            !q.flag().load(Ordering::Relaxed),
            "the app as it was counted"
        );
        std::fs::write(layers.path().join("x"), vec![0u8; 2000]).unwrap();
        let t = Instant::now();
        while !q.flag().load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(q.flag().load(Ordering::Relaxed));
    }
}
