//! Small helpers: timestamps in Kubernetes' RFC 3339 form, random identifiers, name rules.

use rand::Rng;

/// Current time as `2006-01-02T15:04:05Z`, the form metav1.Time serialises to.
/// Seconds this server's clock is set ahead (negative: behind) of the machine's, so tests can
/// show that clients judge time by the server's clock (its `Date` header), never their own.
static CLOCK_OFFSET: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Sets the offset of [`server_secs`] (the `--clock-offset-seconds` option).
pub fn set_clock_offset(secs: i64) {
    CLOCK_OFFSET.store(secs, std::sync::atomic::Ordering::Relaxed);
}

/// The server's time in whole seconds since the epoch.
pub fn server_secs() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    secs + CLOCK_OFFSET.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn now_rfc3339() -> String {
    rfc3339(server_secs())
}

/// The HTTP `Date` header value (RFC 9110 IMF-fixdate) for the server's clock.
pub fn http_date() -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = server_secs();
    let (y, m, d, rem) = civil(secs);
    let weekday = (secs.div_euclid(86_400) + 4).rem_euclid(7) as usize;
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[weekday],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// (year, month, day, seconds into the day) of a Unix time.
fn civil(secs: i64) -> (i64, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, rem)
}

fn rfc3339(secs: i64) -> String {
    let (y, m, d, rem) = civil(secs);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A random version-4 UUID string, used for `metadata.uid`.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A random lowercase alphanumeric suffix as used for `generateName` (5 chars).
pub fn random_suffix(n: usize) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = rand::rng();
    (0..n)
        .map(|_| ALPHA[r.random_range(0..ALPHA.len())] as char)
        .collect()
}

/// A random hex bearer token.
pub fn random_token() -> String {
    let b: [u8; 24] = rand::rng().random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
pub const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn is_label_body(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Problems with `s` as an RFC 1123 label (namespace names), in apimachinery's words.
pub fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    if s.len() > 63 {
        e.push("must be no more than 63 characters".to_string());
    }
    if !is_label_body(s) {
        e.push(DNS1123_LABEL_MSG.to_string());
    }
    e
}

/// Problems with `s` as an RFC 1123 subdomain (most object names).
pub fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    if s.len() > 253 {
        e.push("must be no more than 253 characters".to_string());
    }
    if s.is_empty() || !s.split('.').all(is_label_body) {
        e.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_is_imf_fixdate() {
        set_clock_offset(0);
        let d = http_date();
        assert!(d.ends_with(" GMT") && d.len() == 29, "{d}");
        assert_eq!(
            civil(1_796_303_628),
            (2026, 12, 3, 13 * 3600 + 13 * 60 + 48)
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn names() {
        assert!(dns1123_subdomain_errors("a.b-c.d1").is_empty());
        assert!(!dns1123_subdomain_errors("Bad_Name").is_empty());
        assert!(!dns1123_subdomain_errors("a..b").is_empty());
        assert!(dns1123_label_errors("ns-1").is_empty());
        assert!(!dns1123_label_errors("a.b").is_empty());
        assert!(!dns1123_label_errors(&"a".repeat(64)).is_empty());
    }

    #[test]
    fn uid_shape() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
