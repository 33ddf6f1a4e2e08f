//! The API server's clock, as its responses state it (the HTTP `Date` header).
//!
//! Lease expiry is judged against this clock, never the runner's: every contender asks the same
//! server, so two runners whose clocks disagree by minutes still agree on when a Lease lapsed.
//! `Date` has whole seconds and is truncated, and the answer travels for a while, so one response
//! gives an interval: the server's time when the answer arrived was at least `at_least` and at
//! most `at_most`. Taking over someone else's lease uses `at_least` (never early); deciding
//! whether our own lease is still live uses `at_most` (never late). As long as every holder
//! writes `renewTime` from `at_least`, a takeover can only happen after the holder itself would
//! judge its lease lapsed.

use std::time::Instant;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::Resource;
use serde::de::DeserializeOwned;

use crate::connect::Cluster;
use crate::error::{ClusterError, ObjectRef};

/// The server's time when one of its answers arrived, as an interval (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerTime {
    /// The `Date` header: the server's clock had reached this when it answered.
    pub at_least: Timestamp,
    /// `Date` plus its one-second resolution plus the round trip.
    pub at_most: Timestamp,
}

impl ServerTime {
    /// The interval for a `Date` header seen after a round trip of `round_trip`.
    pub fn from_date(date: Timestamp, round_trip: std::time::Duration) -> ServerTime {
        let slack = SignedDuration::from_secs(1)
            .checked_add(SignedDuration::try_from(round_trip).unwrap_or(SignedDuration::MAX))
            .unwrap_or(SignedDuration::MAX);
        ServerTime {
            at_least: date,
            at_most: date.checked_add(slack).unwrap_or(Timestamp::MAX),
        }
    }

    /// The same interval `elapsed` later (measured on this machine's monotonic clock, which
    /// drifts negligibly over a lease's lifetime even when its wall clock is wrong).
    pub fn after(&self, elapsed: std::time::Duration) -> ServerTime {
        let d = SignedDuration::try_from(elapsed).unwrap_or(SignedDuration::MAX);
        ServerTime {
            at_least: self.at_least.checked_add(d).unwrap_or(Timestamp::MAX),
            at_most: self.at_most.checked_add(d).unwrap_or(Timestamp::MAX),
        }
    }
}

/// Parses an HTTP `Date` (RFC 9110 IMF-fixdate, `Thu, 03 Dec 2026 13:13:48 GMT`).
pub fn parse_http_date(value: &str) -> Option<Timestamp> {
    k8s_openapi::jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value.trim())
        .ok()
}

impl Cluster {
    /// GET one object together with the server's time. `None` when it does not exist.
    pub async fn get_timed<K>(
        &self,
        namespace: &str,
        name: &str,
        object: ObjectRef,
    ) -> Result<(Option<K>, ServerTime), ClusterError>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        let url = K::url_path(&(), Some(namespace));
        let request = kube::core::Request::new(url)
            .get(name, &Default::default())
            .map_err(|e| ClusterError::Transport {
                verb: "get",
                object: object.clone(),
                detail: e.to_string(),
            })?;
        let sent = Instant::now();
        let response = self
            .client
            .send(request.map(kube::client::Body::from))
            .await
            .map_err(|e| self.err(e, "get", object.clone()))?;
        let round_trip = sent.elapsed();
        let status = response.status();
        let date = response
            .headers()
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        let body = response
            .into_body()
            .collect_bytes()
            .await
            .map_err(|e| self.err(e, "get", object.clone()))?;
        let Some(date) = date else {
            return Err(ClusterError::Transport {
                verb: "get",
                object,
                detail: "the API server's answer has no valid Date header, so its clock cannot be read to judge lease expiry".into(),
            });
        };
        let time = ServerTime::from_date(date, round_trip);
        if status.as_u16() == 404 {
            return Ok((None, time));
        }
        if status.is_client_error() || status.is_server_error() {
            let text = String::from_utf8_lossy(&body);
            let st = serde_json::from_str::<kube::core::Status>(&text).unwrap_or_else(|_| {
                kube::core::Status::failure(text.trim(), "Failed to parse error data")
                    .with_code(status.as_u16())
            });
            return Err(self.err(kube::Error::Api(st.boxed()), "get", object));
        }
        let obj = serde_json::from_slice::<K>(&body).map_err(|e| ClusterError::Transport {
            verb: "get",
            object,
            detail: format!("unreadable answer: {e}"),
        })?;
        Ok((Some(obj), time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            parse_http_date("Thu, 03 Dec 2026 13:13:48 GMT"),
            Some("2026-12-03T13:13:48Z".parse().unwrap())
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn interval_covers_resolution_and_round_trip() {
        let d: Timestamp = "2026-12-03T13:13:48Z".parse().unwrap();
        let t = ServerTime::from_date(d, Duration::from_millis(250));
        assert_eq!(t.at_least, d);
        assert_eq!(t.at_most, "2026-12-03T13:13:49.25Z".parse().unwrap());
        let later = t.after(Duration::from_secs(2));
        assert_eq!(later.at_least, "2026-12-03T13:13:50Z".parse().unwrap());
        assert_eq!(later.at_most, "2026-12-03T13:13:51.25Z".parse().unwrap());
    }
}
