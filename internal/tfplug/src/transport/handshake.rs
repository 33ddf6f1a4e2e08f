//! go-plugin's launch contract: the magic cookie, protocol version negotiation, the port range
//! and the one line the plugin prints on stdout. Pure functions over the environment so they
//! can be tested without starting processes.

use super::{ListenAddr, ServeError};

/// Environment variable go-plugin sets to prove the binary was launched by Terraform.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The value Terraform puts in [`MAGIC_COOKIE_KEY`] (the same for protocols 5 and 6).
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's own handshake version, first field of the handshake line.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The only application protocol this crate speaks.
pub const APP_PROTOCOL_VERSION: u32 = 6;

/// Fails unless the cookie Terraform sets is present with the right value.
pub fn check_cookie(value: Option<&str>) -> Result<(), ServeError> {
    match value {
        Some(v) if v == MAGIC_COOKIE_VALUE => Ok(()),
        _ => Err(ServeError::NotLaunchedByTerraform),
    }
}

/// Picks protocol 6 from `PLUGIN_PROTOCOL_VERSIONS` (a comma-separated list offered by
/// Terraform). Absent or empty means an old client that expects the plugin's own version.
pub fn negotiate_version(offered: Option<&str>) -> Result<u32, ServeError> {
    let Some(list) = offered.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(APP_PROTOCOL_VERSION);
    };
    let speaks_six = list
        .split(',')
        .any(|v| v.trim().parse::<u32>() == Ok(APP_PROTOCOL_VERSION));
    if speaks_six {
        Ok(APP_PROTOCOL_VERSION)
    } else {
        Err(ServeError::UnsupportedProtocol {
            offered: list.to_string(),
        })
    }
}

/// The ports to try, from `PLUGIN_MIN_PORT` / `PLUGIN_MAX_PORT`. `None` means any free port.
pub fn port_range(min: Option<&str>, max: Option<&str>) -> Result<Option<(u16, u16)>, ServeError> {
    let parse = |name: &'static str, v: Option<&str>| -> Result<Option<u16>, ServeError> {
        match v.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s
                .parse::<u16>()
                .map(Some)
                .map_err(|_| ServeError::BadPortRange {
                    variable: name,
                    value: s.to_string(),
                }),
        }
    };
    let (lo, hi) = (
        parse("PLUGIN_MIN_PORT", min)?,
        parse("PLUGIN_MAX_PORT", max)?,
    );
    match (lo, hi) {
        (None, None) => Ok(None),
        (lo, hi) => {
            let (lo, hi) = (lo.unwrap_or(0), hi.unwrap_or(u16::MAX));
            if lo > hi {
                return Err(ServeError::BadPortRange {
                    variable: "PLUGIN_MIN_PORT",
                    value: format!("{lo} is above PLUGIN_MAX_PORT {hi}"),
                });
            }
            Ok(Some((lo, hi)))
        }
    }
}

/// The line go-plugin's client parses: `CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT`. `cert_b64` is
/// the server certificate's DER in unpadded standard base64, empty without AutoMTLS.
pub fn handshake_line(app_version: u32, addr: &ListenAddr, cert_b64: &str) -> String {
    let network = addr.network();
    format!("{CORE_PROTOCOL_VERSION}|{app_version}|{network}|{addr}|grpc|{cert_b64}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_must_match_exactly() {
        assert!(check_cookie(Some(MAGIC_COOKIE_VALUE)).is_ok());
        assert!(matches!(
            check_cookie(None),
            Err(ServeError::NotLaunchedByTerraform)
        ));
        assert!(matches!(
            check_cookie(Some("")),
            Err(ServeError::NotLaunchedByTerraform)
        ));
        assert!(matches!(
            check_cookie(Some(&MAGIC_COOKIE_VALUE[1..])),
            Err(ServeError::NotLaunchedByTerraform)
        ));
    }

    #[test]
    fn negotiates_six_when_offered() {
        assert_eq!(negotiate_version(Some("5,6")).unwrap(), 6);
        assert_eq!(negotiate_version(Some("6")).unwrap(), 6);
        assert_eq!(negotiate_version(Some(" 4, 6 ,7")).unwrap(), 6);
        assert_eq!(negotiate_version(None).unwrap(), 6);
        assert_eq!(negotiate_version(Some("")).unwrap(), 6);
    }

    #[test]
    fn refuses_when_six_is_not_offered() {
        match negotiate_version(Some("4,5")) {
            Err(ServeError::UnsupportedProtocol { offered }) => assert_eq!(offered, "4,5"),
            other => panic!("expected UnsupportedProtocol, got {other:?}"),
        }
        let msg = negotiate_version(Some("5,60")).unwrap_err().to_string();
        assert!(msg.contains("5,60") && msg.contains("protocol 6"), "{msg}");
    }

    #[test]
    fn port_range_from_env() {
        assert_eq!(port_range(None, None).unwrap(), None);
        assert_eq!(
            port_range(Some("10000"), Some("25000")).unwrap(),
            Some((10000, 25000))
        );
        assert_eq!(
            port_range(Some("10000"), None).unwrap(),
            Some((10000, u16::MAX))
        );
        assert!(matches!(
            port_range(Some("abc"), None),
            Err(ServeError::BadPortRange {
                variable: "PLUGIN_MIN_PORT",
                ..
            })
        ));
        assert!(matches!(
            port_range(Some("300"), Some("200")),
            Err(ServeError::BadPortRange { .. })
        ));
        assert!(matches!(
            port_range(None, Some("70000")),
            Err(ServeError::BadPortRange {
                variable: "PLUGIN_MAX_PORT",
                ..
            })
        ));
    }

    #[test]
    fn handshake_line_format() {
        let addr = ListenAddr::Tcp("127.0.0.1:41234".parse().unwrap());
        assert_eq!(
            handshake_line(6, &addr, "MIIB"),
            "1|6|tcp|127.0.0.1:41234|grpc|MIIB\n"
        );
        // Without AutoMTLS the certificate field is present and empty, as go-plugin prints it.
        assert_eq!(
            handshake_line(6, &addr, ""),
            "1|6|tcp|127.0.0.1:41234|grpc|\n"
        );
        let sock = ListenAddr::Unix("/tmp/plugin4242".into());
        assert_eq!(
            handshake_line(6, &sock, "MIIB"),
            "1|6|unix|/tmp/plugin4242|grpc|MIIB\n"
        );
    }
}
