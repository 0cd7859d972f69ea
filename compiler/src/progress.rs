//! A progress bar on standard error for long runs (`qc evaluate`'s mapping search, sweeps): drawn
//! only when standard error is a terminal, not with `--quiet`, and only once the run has taken
//! longer than a moment (300 ms), at most ten times a second. Safe to advance from many threads.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a run goes before the bar appears.
const GRACE: Duration = Duration::from_millis(300);
/// The shortest time between two redraws.
const TICK: Duration = Duration::from_millis(100);
const WIDTH: usize = 30;

/// A progress bar over `total` units of work.
pub struct Progress {
    enabled: bool,
    total: AtomicU64,
    what: String,
    done: AtomicU64,
    start: Instant,
    last_draw: Mutex<Option<Instant>>,
}

impl Progress {
    /// A bar over `total` units called `what` (for example "layers"); drawn only if `show` and
    /// standard error is a terminal.
    pub fn new(total: u64, what: &str, show: bool) -> Progress {
        Progress {
            enabled: show && std::io::stderr().is_terminal(),
            total: AtomicU64::new(total),
            what: what.to_string(),
            done: AtomicU64::new(0),
            start: Instant::now(),
            last_draw: Mutex::new(None),
        }
    }

    /// Records `n` more units done, and redraws if it is time.
    pub fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        self.draw(done);
    }

    /// Records that `done` of `total` units are done (the total may become known late).
    pub fn advance_to(&self, done: u64, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.fetch_max(done, Ordering::Relaxed);
        self.draw(self.done.load(Ordering::Relaxed));
    }

    fn draw(&self, done: u64) {
        if !self.enabled || self.start.elapsed() < GRACE {
            return;
        }
        let Ok(mut last) = self.last_draw.try_lock() else { return };
        let now = Instant::now();
        if last.is_some_and(|t| now - t < TICK) && done < self.total.load(Ordering::Relaxed) {
            return;
        }
        *last = Some(now);
        let _ = std::io::stderr().write_all(self.line(done).as_bytes());
    }

    /// The bar's text for `done` units, with a carriage return in front.
    fn line(&self, done: u64) -> String {
        let all = self.total.load(Ordering::Relaxed);
        let total = all.max(1);
        let frac = (done.min(total) as f64) / total as f64;
        let filled = ((frac * WIDTH as f64) as usize).min(WIDTH);
        let elapsed = self.start.elapsed().as_secs_f64();
        let eta = if done > 0 && done < total { elapsed / done as f64 * (total - done) as f64 } else { 0.0 };
        format!(
            "\r[{}{}] {done}/{} {}, {elapsed:.1} s, ETA {eta:.0} s ",
            "=".repeat(filled),
            " ".repeat(WIDTH - filled),
            all,
            self.what
        )
    }

    /// Erases the bar if it was drawn.
    pub fn finish(&self) {
        let drawn = self.last_draw.lock().map(|l| l.is_some()).unwrap_or(false);
        if self.enabled && drawn {
            let _ = std::io::stderr().write_all(format!("\r{}\r", " ".repeat(WIDTH + 60)).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_counts_and_never_overflows() {
        let p = Progress::new(4, "layers", false);
        assert!(p.line(1).contains("1/4 layers"));
        assert!(p.line(9).contains("[=============================="));
        let empty = Progress::new(0, "designs", false);
        assert!(empty.line(0).contains("0/0 designs"));
        // Disabled bars never draw and never panic.
        p.advance(3);
        p.finish();
    }
}
