//! `TESTNET_ARCHIVER_RUSAGE=1`: one line on stderr at exit with the process's CPU seconds and
//! peak resident set, the figures GNU time reports for a local run. In a Kubernetes Job nothing
//! wraps the process, and the pod's cgroup is gone once it exits; its log line survives (the
//! provider copies the Job's log into Terraform's), so `scripts/bench-in-cluster` reads it there.

use std::sync::OnceLock;
use std::time::Instant;

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Notes when the process started its work, for the `wall_s` of the report.
pub fn start() {
    STARTED.get_or_init(Instant::now);
}

/// Prints `rusage wall_s=… cpu_user_s=… cpu_sys_s=… peak_rss_kib=…` when asked to; silent
/// otherwise and when /proc cannot be read.
pub fn report_if_asked() {
    if std::env::var_os("TESTNET_ARCHIVER_RUSAGE").is_none_or(|v| v.is_empty() || v == "0") {
        return;
    }
    let Some((user, sys)) = cpu_seconds() else {
        return;
    };
    let rss = peak_rss_kib().unwrap_or(0);
    let wall = STARTED.get().map_or(0.0, |t| t.elapsed().as_secs_f64());
    eprintln!(
        "testnet-archiver: rusage wall_s={wall:.2} cpu_user_s={user:.2} cpu_sys_s={sys:.2} peak_rss_kib={rss}"
    );
}

/// User and system seconds of every thread of this process, living or exited
/// (`/proc/self/stat` fields 14 and 15, in USER_HZ ticks: 100 per second on Linux).
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i)?.parse::<u64>().ok().map(|t| t as f64 / 100.0);
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    Some((tick(11)?, tick(12)?))
}

/// The high-water mark of the resident set (`VmHWM`), what `getrusage`'s `ru_maxrss` reports.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
