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

/// How far a followed log has been passed on. A reopened stream starts at a whole second (the
/// API's `sinceTime`), and the server answers every line stamped at or after it, in the order of
/// the log file. That order is not the order of the stamps (stdout and stderr are copied by two
/// writers), so the cursor counts the lines it passed on since that second instead of comparing
/// stamps, and skips exactly that many.
#[derive(Debug, Default, Clone)]
pub(crate) struct LogCursor {
    /// The whole second a reopen starts at: that of the newest stamp passed on.
    since: Option<Timestamp>,
    /// Stamps of the lines passed on that are at or after `since`.
    recent: Vec<Timestamp>,
    /// While re-reading after a reopen: lines still to skip.
    replay: usize,
}

impl LogCursor {
    /// Called before a stream is reopened: the server sends again what was passed on since
    /// `since`.
    fn reopen(&mut self) {
        self.replay = self.recent.len();
    }

    /// The text of a line read with `timestamps=true`, or `None` when it was passed on before.
    /// A line without a timestamp is passed on as it is.
    fn admit<'a>(&mut self, line: &'a str) -> Option<&'a str> {
        let (stamp, text) = line.split_once(' ').unwrap_or((line, ""));
        let Ok(ts) = stamp.parse::<Timestamp>() else {
            return Some(line);
        };
        if self.replay > 0 {
            self.replay -= 1;
            return None;
        }
        let second = Timestamp::from_second(ts.as_second()).unwrap_or(ts);
        if self.since.is_none_or(|s| second > s) {
            self.since = Some(second);
            self.recent.retain(|t| *t >= second);
        }
        if self.since.is_some_and(|s| ts >= s) {
            self.recent.push(ts);
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
        since_time: cursor.since,
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
                &[
                    "2026-12-03T16:00:00.5Z create: 10%",
                    "2026-12-03T16:00:01Z "
                ]
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
        // From 16:00:00: everything again, then more.
        c.reopen();
        let again = [
            "2026-12-03T16:00:00.100Z a",
            "2026-12-03T16:00:00.700Z b",
            "2026-12-03T16:00:00.700Z c",
            "2026-12-03T16:00:00.700Z d",
            "2026-12-03T16:00:02Z e",
        ];
        assert_eq!(pass(&mut c, &again), vec!["d", "e"]);
        // From 16:00:02.
        c.reopen();
        assert_eq!(
            pass(
                &mut c,
                &["2026-12-03T16:00:02Z e", "2026-12-03T16:00:03Z f"]
            ),
            vec!["f"]
        );
    }

    #[test]
    fn stamps_out_of_order_between_stdout_and_stderr_are_neither_repeated_nor_lost() {
        let mut c = LogCursor::default();
        let file = [
            "2026-12-03T16:00:01.710Z {",
            "2026-12-03T16:00:01.700Z restore: 100%",
            "2026-12-03T16:00:01.710Z }",
        ];
        assert_eq!(pass(&mut c, &file), vec!["{", "restore: 100%", "}"]);
        c.reopen();
        let mut more = file.to_vec();
        more.push("2026-12-03T16:00:01.900Z done");
        assert_eq!(pass(&mut c, &more), vec!["done"]);
    }

    #[test]
    fn reopening_before_any_line_reads_everything() {
        let mut c = LogCursor::default();
        c.reopen();
        assert_eq!(pass(&mut c, &["2026-12-03T16:00:00Z a"]), vec!["a"]);
    }
}
