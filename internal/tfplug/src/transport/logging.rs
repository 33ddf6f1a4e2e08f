//! Logs as go-hclog JSON lines on stderr, the format go-plugin parses: Terraform then shows each
//! line at its own level under `TF_LOG` / `TF_LOG_PROVIDER`, with its structured fields.

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Installs the hclog JSON subscriber as the global default, at the level from
/// [`level_from_env`]. Does nothing if a global subscriber is already set (tests, embedding).
pub fn init_logging() {
    let level = level_from_env(
        std::env::var("TF_LOG_PROVIDER").ok().as_deref(),
        std::env::var("TF_LOG").ok().as_deref(),
    );
    let subscriber = tracing_subscriber::registry()
        .with(HclogLayer::new("provider").with_filter(targets(level)));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Crates under the transport whose debug events describe HTTP/2 frames and TLS records: noise
/// at `TF_LOG=DEBUG`, so they only log warnings unless the level is TRACE.
const TRANSPORT_CRATES: [&str; 7] = [
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "tonic",
    "rustls",
    "tokio_rustls",
];

/// The filter for `level`: our events at `level`, the transport crates capped at WARN below TRACE.
pub fn targets(level: LevelFilter) -> Targets {
    let deps = if level == LevelFilter::TRACE {
        level
    } else {
        level.min(LevelFilter::WARN)
    };
    TRANSPORT_CRATES
        .iter()
        .fold(Targets::new().with_default(level), |t, c| {
            t.with_target(*c, deps)
        })
}

/// Terraform's rules: `TF_LOG_PROVIDER` wins over `TF_LOG`; `JSON` means trace; `off` silences;
/// any other unknown value means trace (as Terraform treats it). When neither is set, warnings and
/// errors are still written: Terraform discards them, a human running the binary sees them.
pub fn level_from_env(provider: Option<&str>, global: Option<&str>) -> LevelFilter {
    let pick = provider
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or(global.map(str::trim).filter(|s| !s.is_empty()));
    match pick.map(str::to_ascii_uppercase).as_deref() {
        None => LevelFilter::WARN,
        Some("OFF") => LevelFilter::OFF,
        Some("ERROR") => LevelFilter::ERROR,
        Some("WARN") => LevelFilter::WARN,
        Some("INFO") => LevelFilter::INFO,
        Some("DEBUG") => LevelFilter::DEBUG,
        Some(_) => LevelFilter::TRACE,
    }
}

/// A `tracing` layer writing one hclog JSON object per event. `@module` names the source as
/// Terraform's Go SDK does ("provider"); event fields become top-level keys.
pub struct HclogLayer {
    module: String,
}

impl HclogLayer {
    pub fn new(module: &str) -> Self {
        HclogLayer {
            module: module.to_string(),
        }
    }
}

impl<S> Layer<S> for HclogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let line = format_event(&self.module, event, SystemTime::now());
        // One write call per line so concurrent events never interleave inside a line.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// One hclog JSON line (with trailing newline) for an event.
pub fn format_event(module: &str, event: &Event<'_>, now: SystemTime) -> String {
    let mut visitor = Fields::default();
    event.record(&mut visitor);
    let mut obj = Map::new();
    obj.insert(
        "@level".into(),
        Value::from(hclog_level(*event.metadata().level())),
    );
    obj.insert(
        "@message".into(),
        Value::from(visitor.message.unwrap_or_default()),
    );
    obj.insert("@module".into(), Value::from(module));
    obj.insert("@timestamp".into(), Value::from(hclog_timestamp(now)));
    for (k, v) in visitor.fields {
        if !k.starts_with('@') {
            obj.insert(k, v);
        }
    }
    let mut line = Value::Object(obj).to_string();
    line.push('\n');
    line
}

fn hclog_level(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// hclog's JSON time layout, `2006-01-02T15:04:05.000000Z07:00`, in UTC: go-plugin parses
/// `@timestamp` with exactly this layout.
pub fn hclog_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: Vec<(String, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, v: Value) {
        if field.name() == "message" {
            self.message = Some(match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.push((field.name().to_string(), v));
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn level_precedence_and_names() {
        assert_eq!(level_from_env(None, None), LevelFilter::WARN);
        assert_eq!(level_from_env(None, Some("DEBUG")), LevelFilter::DEBUG);
        assert_eq!(
            level_from_env(Some("info"), Some("TRACE")),
            LevelFilter::INFO
        );
        assert_eq!(level_from_env(Some(""), Some("error")), LevelFilter::ERROR);
        assert_eq!(level_from_env(None, Some("JSON")), LevelFilter::TRACE);
        assert_eq!(level_from_env(None, Some("off")), LevelFilter::OFF);
        assert_eq!(level_from_env(None, Some("1")), LevelFilter::TRACE);
        assert_eq!(level_from_env(Some("WARN"), None), LevelFilter::WARN);
    }

    #[test]
    fn transport_crates_quiet_below_trace() {
        let t = targets(LevelFilter::DEBUG);
        assert!(t.would_enable("h2::codec", &Level::WARN));
        assert!(!t.would_enable("h2::codec", &Level::DEBUG));
        assert!(!t.would_enable("hyper_util::client", &Level::INFO));
        assert!(t.would_enable("terraform_provider_testnet::lock", &Level::DEBUG));
        assert!(!t.would_enable("terraform_provider_testnet::lock", &Level::TRACE));
        assert!(targets(LevelFilter::TRACE).would_enable("h2::codec", &Level::TRACE));
        assert!(!targets(LevelFilter::ERROR).would_enable("h2::codec", &Level::WARN));
    }

    #[test]
    fn timestamp_layout() {
        let t = UNIX_EPOCH + Duration::new(1_763_686_738, 123_456_789);
        assert_eq!(hclog_timestamp(t), "2025-11-21T00:58:58.123456Z");
        assert_eq!(hclog_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29 (leap day) 12:00:00
        assert_eq!(
            hclog_timestamp(UNIX_EPOCH + Duration::from_secs(1_709_208_000)),
            "2024-02-29T12:00:00.000000Z"
        );
    }

    /// Captures formatted lines through the same path the real layer uses.
    struct Capture(Arc<Mutex<Vec<String>>>);
    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            self.0
                .lock()
                .unwrap()
                .push(format_event("provider", event, UNIX_EPOCH));
        }
    }

    #[test]
    fn event_becomes_hclog_json() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sub = tracing_subscriber::registry()
            .with(Capture(lines.clone()).with_filter(LevelFilter::DEBUG));
        tracing::subscriber::with_default(sub, || {
            tracing::info!(
                bytes = 42u64,
                object = "snap.tar.lz4",
                ok = true,
                "uploaded {}",
                "x"
            );
            tracing::debug!(mb_per_s = 1.5, "rate");
            tracing::trace!("filtered out");
        });
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines
            .iter()
            .all(|l| l.ends_with('\n') && l.matches('\n').count() == 1));
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["@level"], "info");
        assert_eq!(v["@message"], "uploaded x");
        assert_eq!(v["@module"], "provider");
        assert_eq!(v["@timestamp"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["bytes"], 42);
        assert_eq!(v["object"], "snap.tar.lz4");
        assert_eq!(v["ok"], true);
        let v: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(v["@level"], "debug");
        assert_eq!(v["mb_per_s"], 1.5);
    }
}
