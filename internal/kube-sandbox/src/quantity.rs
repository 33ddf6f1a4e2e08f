//! Kubernetes resource quantities ("10Gi", "500M", "1.5e3"): enough parsing to reject what
//! kube-apiserver rejects and to compare sizes for the PVC grow/shrink rules.

/// apimachinery's error text for any quantity it cannot decode.
pub const FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A parsed quantity in nano-units (10^-9), enough precision for the comparisons we make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(pub i128);

fn pow(base: i128, exp: u32) -> Option<i128> {
    base.checked_pow(exp)
}

/// Parses a quantity string exactly as strictly as apimachinery's `ParseQuantity`.
pub fn parse(s: &str) -> Result<Quantity, &'static str> {
    let s = s.trim_end();
    if s.is_empty() {
        return Err(FORMAT_ERROR);
    }
    let (neg, rest) = match s.as_bytes()[0] {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (num, suffix) = rest.split_at(num_end);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return Err(FORMAT_ERROR);
    }
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    // value = digits * 10^-frac_len * multiplier; we keep nano-units.
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mantissa: i128 = if digits.is_empty() {
        0
    } else if digits.len() > 30 {
        return Err(FORMAT_ERROR);
    } else {
        digits.parse().map_err(|_| FORMAT_ERROR)?
    };
    let frac_len = frac_part.len() as u32;
    // (numerator multiplier, power of ten exponent)
    let (mult, exp10): (i128, i32) = match suffix {
        "" => (1, 0),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        other => {
            let rest = other.strip_prefix(['e', 'E']).ok_or(FORMAT_ERROR)?;
            let e: i32 = rest.parse().map_err(|_| FORMAT_ERROR)?;
            if !(-30..=30).contains(&e) {
                return Err(FORMAT_ERROR);
            }
            (1, e)
        }
    };
    let total_exp = exp10 + 9 - frac_len as i32;
    let mut v = mantissa.checked_mul(mult).ok_or(FORMAT_ERROR)?;
    if total_exp >= 0 {
        v = v
            .checked_mul(pow(10, total_exp as u32).ok_or(FORMAT_ERROR)?)
            .ok_or(FORMAT_ERROR)?;
    } else {
        let d = pow(10, (-total_exp) as u32).ok_or(FORMAT_ERROR)?;
        // round up like apimachinery does when precision is lost
        v = (v + d - 1) / d;
    }
    Ok(Quantity(if neg { -v } else { v }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let gi = parse("1Gi").unwrap();
        assert_eq!(gi.0, (1i128 << 30) * 1_000_000_000);
        assert_eq!(parse("1024Mi").unwrap(), gi);
        assert_eq!(parse("1.5Gi").unwrap().0, 1_610_612_736i128 * 1_000_000_000);
        assert_eq!(parse("1e3").unwrap(), parse("1k").unwrap());
        assert_eq!(parse("500m").unwrap().0, 500_000_000);
        assert!(parse("2Gi").unwrap() > parse("1Gi").unwrap());
        assert!(parse("1G").unwrap() < parse("1Gi").unwrap());
    }

    #[test]
    fn rejects_what_apiserver_rejects() {
        for bad in [
            "10Gii", "", "Gi", "1..2", "1 Gi", "ten", "1gi", "1KiB", "1e",
        ] {
            assert_eq!(parse(bad), Err(FORMAT_ERROR), "{bad}");
        }
    }
}
