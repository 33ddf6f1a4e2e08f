//! Progress of a long command on stderr: a bar redrawn in place when stderr is a terminal, a
//! line every few seconds otherwise (logs of a Job or CI), each with bytes, MB/s and an ETA when
//! the total is known.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines in a log: one every few seconds is enough to see a job is alive.
const LINE_EVERY: Duration = Duration::from_secs(2);
/// A bar redraws often enough to look smooth.
const BAR_EVERY: Duration = Duration::from_millis(200);
const BAR_WIDTH: usize = 24;

/// One command's progress display.
pub struct Meter {
    verb: &'static str,
    tty: bool,
    state: Mutex<State>,
}

struct State {
    last: Option<Instant>,
    drew_bar: bool,
}

impl Meter {
    /// `verb` names the work in each line: "create", "verify", "restore".
    pub fn new(verb: &'static str) -> Meter {
        Meter {
            verb,
            tty: std::io::stderr().is_terminal(),
            state: Mutex::new(State {
                last: None,
                drew_bar: false,
            }),
        }
    }

    /// Reports `done` bytes of `total` (when known) after `elapsed`; `detail` is appended.
    pub fn update(&self, done: u64, total: Option<u64>, elapsed: Duration, detail: &str) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let every = if self.tty { BAR_EVERY } else { LINE_EVERY };
        let now = Instant::now();
        if st.last.is_some_and(|t| now - t < every) {
            return;
        }
        st.last = Some(now);
        let text = render(self.verb, done, total, elapsed, detail, self.tty);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{text}");
            let _ = err.flush();
            st.drew_bar = true;
        } else {
            let _ = writeln!(err, "{text}");
        }
    }

    /// Ends the bar's line so later messages start on their own.
    pub fn finish(&self) {
        if let Ok(mut st) = self.state.lock() {
            if st.drew_bar {
                eprintln!();
                st.drew_bar = false;
            }
        }
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// One progress report as text: a bar (terminal) or a log line.
pub(crate) fn render(
    verb: &str,
    done: u64,
    total: Option<u64>,
    elapsed: Duration,
    detail: &str,
    bar: bool,
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        done as f64 / 1e6 / secs
    } else {
        0.0
    };
    let total = total.filter(|t| *t > 0);
    let amount = match total {
        Some(t) => format!("{:.1} of {:.1} MiB", mib(done), mib(t.max(done))),
        None => format!("{:.1} MiB", mib(done)),
    };
    let eta = match total {
        Some(t) if rate > 0.0 && done < t => {
            let left = (t - done) as f64 / 1e6 / rate;
            format!(", ETA {}", clock(Duration::from_secs_f64(left)))
        }
        _ => String::new(),
    };
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(", {detail}")
    };
    let head = match (bar, total) {
        (true, Some(t)) => {
            let frac = (done as f64 / t as f64).min(1.0);
            let filled = (frac * BAR_WIDTH as f64).round() as usize;
            format!(
                "{verb} [{}{}] {:>3.0}% ",
                "#".repeat(filled),
                "-".repeat(BAR_WIDTH - filled),
                frac * 100.0
            )
        }
        (true, None) => format!("{verb} "),
        (false, _) => format!("testnet-archiver: {verb}: "),
    };
    format!("{head}{amount}, {rate:.1} MB/s{eta}{detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_amount_rate_and_eta() {
        let l = render(
            "restore",
            100 << 20,
            Some(400 << 20),
            Duration::from_secs(2),
            "",
            false,
        );
        assert_eq!(
            l,
            "testnet-archiver: restore: 100.0 of 400.0 MiB, 52.4 MB/s, ETA 0:06"
        );
        let b = render(
            "verify",
            300 << 20,
            Some(400 << 20),
            Duration::from_secs(3),
            "",
            true,
        );
        assert!(
            b.starts_with("verify [##################------]  75% 300.0 of 400.0 MiB"),
            "{b}"
        );
        // Unknown total: no percentage, no ETA, never "of ~0.0".
        let u = render(
            "create",
            5 << 20,
            Some(0),
            Duration::from_secs(1),
            "3 files",
            false,
        );
        assert_eq!(u, "testnet-archiver: create: 5.0 MiB, 5.2 MB/s, 3 files");
    }
}
