//! Following a Job pod's log through the API server. The API server, or a load balancer in front
//! of it, may close a follow stream long before the container ends (a snapshot of hundreds of GB
//! runs for hours). The follower then reopens it from the timestamp of the last line it passed on
//! and drops the lines it had already passed on, so progress keeps coming and a failure's "last
//! lines of the log" are the container's real last lines.

use futures::{AsyncBufReadExt, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::Api;
use tokio::sync::mpsc::UnboundedSender;

/// How far a followed log has been passed on.
#[derive(Debug, Default, Clone)]
pub(crate) struct LogCursor {
    /// Timestamp of the last line passed on.
    last: Option<Timestamp>,
    /// How many lines passed on carry exactly `last` (the kubelet's timestamps are in
    /// nanoseconds, but two lines may still share one).
    at_last: usize,
    /// While re-reading after a reopen: lines stamped `last` still to skip.
    replay: Option<usize>,
}

impl LogCursor {
    /// Called before a stream is reopened: what follows starts at or before `last`.
    fn reopen(&mut self) {
        if self.last.is_some() {
            self.replay = Some(self.at_last);
        }
    }

    /// The text of a line read with `timestamps=true`, or `None` when it was passed on before.
    /// A line without a timestamp is passed on as it is.
    fn admit<'a>(&mut self, line: &'a str) -> Option<&'a str> {
        let (stamp, text) = line.split_once(' ').unwrap_or((line, ""));
        let Ok(ts) = stamp.parse::<Timestamp>() else {
            return Some(line);
        };
        if let (Some(skip), Some(last)) = (self.replay, self.last) {
            if ts < last {
                return None;
            }
            if ts == last && skip > 0 {
                self.replay = Some(skip - 1);
                return None;
            }
            self.replay = None;
        }
        if Some(ts) == self.last {
            self.at_last += 1;
        } else {
            self.last = Some(ts);
            self.at_last = 1;
        }
        Some(text)
    }
}

/// Reads the container's log from where `cursor` stands, sending each new line to `tx`, until
/// the stream ends (`follow`: when the container ends or the server closes it). Returns where
/// it got to, for the next reopen.
pub(crate) async fn read_log(
    pods: Api<Pod>,
    pod: String,
    container: &str,
    follow: bool,
    mut cursor: LogCursor,
    tx: UnboundedSender<String>,
) -> LogCursor {
    cursor.reopen();
    let params = LogParams {
        follow,
        container: Some(container.into()),
        timestamps: true,
        // Whole seconds, rounded down: kube rounds to the nearest second, which could skip the
        // lines of the last half second.
        since_time: cursor
            .last
            .and_then(|t| Timestamp::from_second(t.as_second()).ok()),
        ..Default::default()
    };
    match pods.log_stream(&pod, &params).await {
        Ok(reader) => {
            let mut lines = reader.lines();
            while let Some(line) = lines.next().await {
                match line {
                    Ok(l) => {
                        if let Some(text) = cursor.admit(&l) {
                            if tx.send(text.to_string()).is_err() {
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(pod = %pod, error = %e, "log stream ended");
                        break;
                    }
                }
            }
        }
        Err(e) => tracing::warn!(pod = %pod, error = %e, "cannot read the pod's log"),
    }
    cursor
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(c: &mut LogCursor, lines: &[&str]) -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| c.admit(l).map(str::to_string))
            .collect()
    }

    #[test]
    fn timestamps_are_stripped() {
        let mut c = LogCursor::default();
        assert_eq!(
            pass(
                &mut c,
                &["2026-12-03T16:00:00.5Z create: 10%", "2026-12-03T16:00:01Z "]
            ),
            vec!["create: 10%", ""]
        );
        assert_eq!(pass(&mut c, &["no stamp here"]), vec!["no stamp here"]);
    }

    #[test]
    fn a_reopened_stream_repeats_nothing_and_loses_nothing() {
        let mut c = LogCursor::default();
        let first = [
            "2026-12-03T16:00:00.100Z a",
            "2026-12-03T16:00:00.700Z b",
            "2026-12-03T16:00:00.700Z c",
        ];
        assert_eq!(pass(&mut c, &first), vec!["a", "b", "c"]);
        // The server answers sinceTime rounded to the second: everything again, then more.
        c.reopen();
        let again = [
            "2026-12-03T16:00:00.100Z a",
            "2026-12-03T16:00:00.700Z b",
            "2026-12-03T16:00:00.700Z c",
            "2026-12-03T16:00:00.700Z d",
            "2026-12-03T16:00:02Z e",
        ];
        assert_eq!(pass(&mut c, &again), vec!["d", "e"]);
        c.reopen();
        assert_eq!(
            pass(&mut c, &["2026-12-03T16:00:02Z e", "2026-12-03T16:00:03Z f"]),
            vec!["f"]
        );
    }

    #[test]
    fn reopening_before_any_line_reads_everything() {
        let mut c = LogCursor::default();
        c.reopen();
        assert_eq!(pass(&mut c, &["2026-12-03T16:00:00Z a"]), vec!["a"]);
    }
}
