//! Pure checks of names, quantities and enum values, so a bad configuration fails at plan time
//! with the same reason the API server would give at apply time.

use std::fmt;
use std::str::FromStr;

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;

const LABEL_FMT_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_FMT_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// A name the API server would reject, with the server's reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}: {}", reasons.join("; "))]
pub struct NameError {
    /// The rejected name.
    pub value: String,
    /// `DNS-1123 label` or `DNS-1123 subdomain`.
    pub what: &'static str,
    /// The reasons, worded as kube-apiserver words them.
    pub reasons: Vec<String>,
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && alnum(b[0])
        && alnum(b[b.len() - 1])
        && b.iter().all(|&c| alnum(c) || c == b'-')
}

/// Validate a DNS-1123 label (namespace names): at most 63 characters of `[a-z0-9-]`, alphanumeric at
/// both ends.
pub fn validate_dns1123_label(value: &str) -> Result<(), NameError> {
    let mut reasons = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        reasons.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !is_label(value) {
        reasons.push(LABEL_FMT_MSG.to_string());
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(NameError {
            value: value.to_string(),
            what: "DNS-1123 label",
            reasons,
        })
    }
}

/// Validate a DNS-1123 subdomain (names of StorageClasses, claims, leases): at most 253 characters,
/// dot-separated labels.
pub fn validate_dns1123_subdomain(value: &str) -> Result<(), NameError> {
    let mut reasons = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        reasons.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if value.is_empty() || !value.split('.').all(is_label) {
        reasons.push(SUBDOMAIN_FMT_MSG.to_string());
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(NameError {
            value: value.to_string(),
            what: "DNS-1123 subdomain",
            reasons,
        })
    }
}

/// A storage size in bytes, parsed from a Kubernetes quantity. Kubernetes rounds fractional byte
/// counts up, and so do we, so `bytes` is what the server will compare and report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    /// Size in bytes.
    pub bytes: u64,
}

impl Quantity {
    /// A quantity of exactly `bytes`.
    pub fn from_bytes(bytes: u64) -> Self {
        Self { bytes }
    }
}

impl fmt::Display for Quantity {
    /// The shortest exact form with a binary or decimal suffix (`10Gi`, `2G`, `1500M`), binary on a
    /// tie, else plain bytes. Meant for messages; compare sizes by `bytes`, never by text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bytes;
        let mut best = b.to_string();
        if b != 0 {
            for (suffix, mult) in BINARY.iter().chain(DECIMAL.iter()) {
                if b.is_multiple_of(*mult) {
                    let cand = format!("{}{}", b / mult, suffix);
                    if cand.len() < best.len() {
                        best = cand;
                    }
                }
            }
        }
        f.write_str(&best)
    }
}

const BINARY: [(&str, u64); 6] = [
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
];
const DECIMAL: [(&str, u64); 6] = [
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

/// Why a string is not a usable Kubernetes quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Does not follow the quantity grammar.
    #[error("{value:?} is not a Kubernetes quantity: {problem}. Use a number with an optional suffix: binary Ki, Mi, Gi, Ti, Pi, Ei; decimal m, k, M, G, T, P, E; or an exponent like 1e9 (examples: 10Gi, 500Mi, 1T)")]
    Syntax {
        /// The input.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// Negative sizes mean nothing for storage.
    #[error("{value:?} is negative; a storage size must be zero or more")]
    Negative {
        /// The input.
        value: String,
    },
    /// Larger than 2^64-1 bytes.
    #[error("{value:?} is too large (more than 16Ei)")]
    TooLarge {
        /// The input.
        value: String,
    },
}

/// Parse a Kubernetes quantity (`10Gi`, `500M`, `1.5Ti`, `1e9`, `100m`, `.5Ki`) into bytes, rounding
/// fractions up like the API server does.
pub fn parse_quantity(value: &str) -> Result<Quantity, QuantityError> {
    let syntax = |problem: String| QuantityError::Syntax {
        value: value.to_string(),
        problem,
    };
    let s = value.trim();
    if s.is_empty() {
        return Err(syntax("it is empty".into()));
    }
    if s.len() != value.len() {
        return Err(syntax("it has leading or trailing spaces".into()));
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    // number: digits, digits '.', digits '.' digits, '.' digits
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let number = &rest[..num_end];
    let suffix = &rest[num_end..];
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if frac_part.contains('.') {
        return Err(syntax("the number has more than one '.'".into()));
    }
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(syntax("it does not start with a number".into()));
    }
    // Value = mantissa * 10^exp10 * 2^exp2, mantissa = int_part frac_part as an integer.
    let mut exp10: i64 = -(frac_part.len() as i64);
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        _ if suffix.starts_with(['e', 'E']) && suffix.len() > 1 => {
            let e = &suffix[1..];
            let (sign, digits) = match e.as_bytes()[0] {
                b'+' => (1, &e[1..]),
                b'-' => (-1, &e[1..]),
                _ => (1, e),
            };
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(syntax(format!("the exponent {suffix:?} is not an integer")));
            }
            let n: i64 = digits
                .parse()
                .map_err(|_| syntax(format!("the exponent {suffix:?} is out of range")))?;
            if n > 1000 && sign > 0 {
                return Err(QuantityError::TooLarge {
                    value: value.to_string(),
                });
            }
            // Tiny values round up to one byte anyway; clamping keeps the arithmetic in range.
            exp10 += sign * n.min(1000);
        }
        _ => return Err(syntax(format!("unknown suffix {suffix:?}"))),
    }
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let too_large = || QuantityError::TooLarge {
        value: value.to_string(),
    };
    if digits.is_empty() {
        return Ok(Quantity { bytes: 0 });
    }
    if negative {
        return Err(QuantityError::Negative {
            value: value.to_string(),
        });
    }
    // Drop trailing zeros into the exponent so long inputs like "1000000000000000000000m" fit.
    let trimmed = digits.trim_end_matches('0');
    exp10 += (digits.len() - trimmed.len()) as i64;
    if trimmed.len() > 38 {
        return Err(too_large());
    }
    let mut mantissa: u128 = trimmed.parse().map_err(|_| too_large())?;
    mantissa = mantissa.checked_shl(exp2).ok_or_else(too_large)?;
    if exp2 > 0 && mantissa >> exp2 != trimmed.parse::<u128>().map_err(|_| too_large())? {
        return Err(too_large());
    }
    let bytes: u128 = if exp10 >= 0 {
        if exp10 > 38 {
            return Err(too_large());
        }
        mantissa
            .checked_mul(10u128.pow(exp10 as u32))
            .ok_or_else(too_large)?
    } else {
        let div_exp = (-exp10) as u32;
        if div_exp > 38 {
            // Any positive mantissa below 10^38 divided by more rounds up to 1 byte.
            1
        } else {
            mantissa.div_ceil(10u128.pow(div_exp))
        }
    };
    u64::try_from(bytes)
        .map(|bytes| Quantity { bytes })
        .map_err(|_| too_large())
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_quantity(s)
    }
}

/// A value outside a Kubernetes enum, with the values that are allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}; allowed values: {}", allowed.join(", "))]
pub struct EnumError {
    /// The field kind, e.g. `access mode`.
    pub what: &'static str,
    /// The rejected value.
    pub value: String,
    /// Every accepted value.
    pub allowed: &'static [&'static str],
}

macro_rules! k8s_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, spelled as the API spells it.
            pub const ALLOWED: &'static [&'static str] = &[$(stringify!($variant)),+];
            /// The API spelling.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }
        }

        impl FromStr for $name {
            type Err = EnumError;
            fn from_str(s: &str) -> Result<Self, EnumError> {
                match s {
                    $(stringify!($variant) => Ok($name::$variant),)+
                    _ => Err(EnumError { what: $what, value: s.to_string(), allowed: Self::ALLOWED }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

k8s_enum!(
    /// How a volume may be mounted (`spec.accessModes` of a claim).
    AccessMode, "access mode", {
    /// Read-write by one node.
    ReadWriteOnce,
    /// Read-only by many nodes.
    ReadOnlyMany,
    /// Read-write by many nodes.
    ReadWriteMany,
    /// Read-write by one pod.
    ReadWriteOncePod,
});

k8s_enum!(
    /// When a StorageClass provisions and binds volumes.
    VolumeBindingMode, "volume binding mode", {
    /// As soon as the claim is created.
    Immediate,
    /// When the first pod using the claim is scheduled (the topology-aware default we use).
    WaitForFirstConsumer,
});

k8s_enum!(
    /// What happens to a dynamically provisioned volume when its claim is deleted.
    ReclaimPolicy, "reclaim policy", {
    /// The volume and its data are deleted.
    Delete,
    /// The volume is kept for manual recovery.
    Retain,
});

k8s_enum!(
    /// Whether a claim gets a filesystem or a raw block device.
    VolumeMode, "volume mode", {
    /// A formatted filesystem (the Kubernetes default).
    Filesystem,
    /// A raw block device.
    Block,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for ok in ["a", "abc-123", "0", "a-b-c", &"a".repeat(63)] {
            assert_eq!(validate_dns1123_label(ok), Ok(()), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a.b", "a_b", "ä"] {
            let e = validate_dns1123_label(bad).unwrap_err();
            assert_eq!(e.reasons, vec![LABEL_FMT_MSG.to_string()], "{bad}");
        }
        let e = validate_dns1123_label(&"a".repeat(64)).unwrap_err();
        assert_eq!(e.reasons, vec!["must be no more than 63 characters"]);
    }

    #[test]
    fn subdomains() {
        for ok in ["a", "example.com", "pd-ssd.testnet.io", "1.2.3"] {
            assert_eq!(validate_dns1123_subdomain(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".a", "a.", "a..b", "Fast", "fast_ssd", "a.-b"] {
            let e = validate_dns1123_subdomain(bad).unwrap_err();
            assert_eq!(e.reasons, vec![SUBDOMAIN_FMT_MSG.to_string()], "{bad}");
            assert!(e.to_string().contains("DNS-1123 subdomain"));
        }
        let long = vec!["a".repeat(50); 6].join(".");
        assert_eq!(long.len(), 305);
        let e = validate_dns1123_subdomain(&long).unwrap_err();
        assert_eq!(e.reasons, vec!["must be no more than 253 characters"]);
    }

    #[test]
    fn quantities() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("1", 1),
            ("10Gi", 10 << 30),
            ("500Mi", 500 << 20),
            ("1Ki", 1024),
            ("1Ei", 1 << 60),
            ("1k", 1000),
            ("1T", 1_000_000_000_000),
            ("1.5Gi", 3 << 29),
            ("1.5G", 1_500_000_000),
            (".5Ki", 512),
            ("5.", 5),
            ("+7", 7),
            ("1e9", 1_000_000_000),
            ("1E3", 1000),
            ("12e-1", 2),
            ("100m", 1),
            ("1500m", 2),
            ("0.001", 1),
            ("2000m", 2),
            ("000010Mi", 10 << 20),
            ("1000000000000000000000m", 1_000_000_000_000_000_000),
            ("-0", 0),
        ];
        for (s, bytes) in cases {
            assert_eq!(parse_quantity(s), Ok(Quantity { bytes: *bytes }), "{s}");
        }
    }

    #[test]
    fn bad_quantities() {
        let e = parse_quantity("10Gii").unwrap_err();
        assert!(
            matches!(&e, QuantityError::Syntax { problem, .. } if problem == "unknown suffix \"Gii\"")
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("\"10Gii\" is not a Kubernetes quantity"),
            "{msg}"
        );
        assert!(msg.contains("10Gi, 500Mi, 1T"), "{msg}");
        for bad in [
            "", " 1Gi", "Gi", "1.2.3", "1 Gi", "1gi", "1KB", "1e", "1e1.5", "ten", ".", "1Gi ",
        ] {
            assert!(
                matches!(parse_quantity(bad), Err(QuantityError::Syntax { .. })),
                "{bad:?} should be a syntax error"
            );
        }
        assert!(matches!(
            parse_quantity("-1Gi"),
            Err(QuantityError::Negative { .. })
        ));
        assert!(matches!(
            parse_quantity("16Ei"),
            Err(QuantityError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_quantity("1e30"),
            Err(QuantityError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_quantity("1e99999999999"),
            Err(QuantityError::TooLarge { .. })
        ));
        assert_eq!(parse_quantity("1e-99999999999"), Ok(Quantity { bytes: 1 }));
        assert_eq!(parse_quantity("15Ei").map(|q| q.bytes), Ok(15 << 60));
    }

    #[test]
    fn quantity_display_round_trips() {
        for (s, shown) in [
            ("10Gi", "10Gi"),
            ("10240Mi", "10Gi"),
            ("1500M", "1500M"),
            ("1e9", "1G"),
            ("1000", "1k"),
            ("1023", "1023"),
            ("0", "0"),
            ("2G", "2G"),
            ("1000Mi", "1000Mi"),
        ] {
            let q = parse_quantity(s).unwrap();
            assert_eq!(q.to_string(), shown);
            assert_eq!(parse_quantity(shown), Ok(q));
        }
    }

    #[test]
    fn enums() {
        assert_eq!(
            "ReadWriteOnce".parse::<AccessMode>(),
            Ok(AccessMode::ReadWriteOnce)
        );
        assert_eq!(
            "WaitForFirstConsumer".parse::<VolumeBindingMode>(),
            Ok(VolumeBindingMode::WaitForFirstConsumer)
        );
        assert_eq!("Retain".parse::<ReclaimPolicy>(), Ok(ReclaimPolicy::Retain));
        assert_eq!("Block".parse::<VolumeMode>(), Ok(VolumeMode::Block));
        let e = "readwriteonce".parse::<AccessMode>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"readwriteonce\" is not a valid access mode; allowed values: ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod"
        );
        let e = "Recycle".parse::<ReclaimPolicy>().unwrap_err();
        assert_eq!(e.allowed, &["Delete", "Retain"]);
        assert_eq!(VolumeBindingMode::Immediate.to_string(), "Immediate");
    }
}
