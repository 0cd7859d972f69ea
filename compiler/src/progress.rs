//! A progress bar on standard error for long runs (`qc evaluate`'s mapping search, sweeps): drawn
//! only when standard error is a terminal, not with `--quiet`, and only once the run has taken
//! longer than a moment (300 ms), at most ten times a second. Safe to advance from many threads.
//! `QC_PROGRESS=always` draws it on a standard error that is not a terminal too (for tests and
//! logs).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use qc_backends::explore::{ProgressSnapshot, SearchProgress};
use qc_backends::report::thousands;

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
            enabled: show
                && (std::io::stderr().is_terminal()
                    || std::env::var_os("QC_PROGRESS").is_some_and(|v| v == "always")),
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
        self.draw_with(done >= self.total.load(Ordering::Relaxed), || self.line(done));
    }

    /// Redraws the bar from a mapping search's counters, if it is time.
    pub fn search(&self, p: &SearchProgress) {
        self.draw_with(false, || format!("\r{} ", search_line(&p.snapshot())));
    }

    /// Writes `line()` if the bar is on, past its grace time, and last drawn a tick ago (or
    /// `finished`); from one thread at a time, the others skip it.
    fn draw_with(&self, finished: bool, line: impl FnOnce() -> String) {
        if !self.enabled || self.start.elapsed() < GRACE {
            return;
        }
        let Ok(mut last) = self.last_draw.try_lock() else { return };
        let now = Instant::now();
        if last.is_some_and(|t| now - t < TICK) && !finished {
            return;
        }
        *last = Some(now);
        let _ = std::io::stderr().write_all(line().as_bytes());
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
            let _ = std::io::stderr().write_all(format!("\r{}\r", " ".repeat(WIDTH + 90)).as_bytes());
        }
    }
}

/// The longest layer name the search line shows (its end: names differ at the end).
const NAME: usize = 32;

/// The bar of a mapping search: the fraction done (orderings visited of all the spatial
/// candidates' temporal spaces; with a budget, at least the share of the budget spent), the
/// layers finished, the first layer in progress with its orderings visited of its total, and
/// the time (elapsed of the budget, or elapsed and an estimate of what is left). For example
/// `[=====      ] 5/21 layers, layer 12/21 /layer3.0/conv1: 41,200/120,960 orderings, 3.1 s,
/// ETA 9 s`.
pub fn search_line(s: &ProgressSnapshot) -> String {
    let by_orderings =
        (s.orderings > 0).then(|| s.orderings_done.min(s.orderings) as f64 / s.orderings as f64);
    let by_tasks = s.candidates_done.min(s.candidates) as f64 / s.candidates.max(1) as f64;
    let work =
        by_orderings.unwrap_or(by_tasks).max(if s.candidates_done >= s.candidates { 1.0 } else { 0.0 });
    let elapsed = s.elapsed.as_secs_f64();
    let by_time = s.budget.map(|b| elapsed / b.as_secs_f64().max(1e-9));
    let frac = work.max(by_time.unwrap_or(0.0)).clamp(0.0, 1.0);
    let filled = ((frac * WIDTH as f64) as usize).min(WIDTH);
    let mut line = format!(
        "[{}{}] {}/{} layers",
        "=".repeat(filled),
        " ".repeat(WIDTH - filled),
        s.searches_done,
        s.searches
    );
    if let Some(c) = &s.current {
        let n = c.name.chars().count();
        let name: String = if n > NAME {
            format!("…{}", c.name.chars().skip(n - (NAME - 1)).collect::<String>())
        } else {
            c.name.clone()
        };
        line += &format!(
            ", layer {}/{} {name}: {}/{} orderings",
            c.index + 1,
            s.layers,
            thousands(c.orderings_done as f64),
            if c.orderings == u64::MAX { "?".to_string() } else { thousands(c.orderings as f64) }
        );
    }
    match s.budget {
        Some(b) => line += &format!(", {elapsed:.1} s of {:.1} s budget", b.as_secs_f64()),
        None => {
            let eta = if frac > 0.0 && frac < 1.0 { elapsed / frac * (1.0 - frac) } else { 0.0 };
            line += &format!(", {elapsed:.1} s, ETA {eta:.0} s");
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use qc_backends::explore::CurrentLayer;

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

    fn snapshot() -> ProgressSnapshot {
        ProgressSnapshot {
            layers: 21,
            searches: 17,
            searches_done: 5,
            candidates: 51,
            candidates_done: 20,
            orderings: 400_000,
            orderings_done: 100_000,
            current: Some(CurrentLayer {
                index: 11,
                name: "/layer3/layer3.0/conv1/Conv".into(),
                orderings_done: 41_200,
                orderings: 120_960,
            }),
            elapsed: Duration::from_secs(3),
            budget: None,
        }
    }

    #[test]
    fn the_search_line_shows_the_layer_in_progress() {
        let s = snapshot();
        let line = search_line(&s);
        assert_eq!(
            line,
            "[=======                       ] 5/17 layers, layer 12/21 /layer3/layer3.0/conv1/Conv: 41,200/120,960 orderings, 3.0 s, ETA 9 s"
        );
        // The fraction moves within one layer: more orderings, a longer bar.
        let later = ProgressSnapshot {
            orderings_done: 200_000,
            current: s.current.clone().map(|c| CurrentLayer { orderings_done: 141_200, ..c }),
            ..s.clone()
        };
        assert!(search_line(&later).starts_with("[===============    "), "{}", search_line(&later));
        // Long names keep their end.
        let long = ProgressSnapshot {
            current: Some(CurrentLayer { name: "x".repeat(50) + "/conv", ..s.current.clone().unwrap() }),
            ..s.clone()
        };
        assert!(search_line(&long).contains(" …xxxxxxxxxxxxxxxxxxxxxxxxxx/conv: "), "{}", search_line(&long));
    }

    #[test]
    fn the_search_line_with_a_budget_shows_its_share() {
        // Half the budget spent moves the bar to half even if the orderings lag behind.
        let s = ProgressSnapshot { budget: Some(Duration::from_secs(6)), orderings: u64::MAX, ..snapshot() };
        let line = search_line(&s);
        assert!(line.starts_with("[===============               ]"), "{line}");
        assert!(line.ends_with(", 3.0 s of 6.0 s budget"), "{line}");
        // An astronomically large space (no factor merging) has no total to show.
        let huge = ProgressSnapshot {
            current: s.current.clone().map(|c| CurrentLayer { orderings: u64::MAX, ..c }),
            ..s.clone()
        };
        assert!(search_line(&huge).contains(": 41,200/? orderings"), "{}", search_line(&huge));
    }

    #[test]
    fn the_search_line_is_full_when_done_and_sane_when_empty() {
        let done = ProgressSnapshot {
            searches_done: 17,
            candidates_done: 51,
            orderings_done: 399_000,
            current: None,
            ..snapshot()
        };
        let line = search_line(&done);
        assert!(line.starts_with(&format!("[{}] 17/17 layers, 3.0 s, ETA 0 s", "=".repeat(WIDTH))), "{line}");
        let empty = ProgressSnapshot::default();
        assert_eq!(search_line(&empty), format!("[{}] 0/0 layers, 0.0 s, ETA 0 s", "=".repeat(WIDTH)));
    }
}
