//! The daemon's log: lines on stderr, with each line's syslog priority in front (`<4>`) when
//! stderr is the journal, so that warnings and alarms keep their level in `journalctl -p` and
//! in what the journal forwards to a syslog server (sd-daemon(3)); the journal adds the time.

use std::fmt;
use std::io::IsTerminal;
use std::os::fd::AsRawFd;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{reload, EnvFilter};

pub type LogHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// Installs the tracing subscriber; the returned handle changes the level on reload.
pub fn init_logging(level: &str) -> LogHandle {
    use tracing_subscriber::prelude::*;
    let (filter, handle) = reload::Layer::new(EnvFilter::new(level));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colours only on a terminal, never in the journal or a log file.
        .with_ansi(std::io::stderr().is_terminal());
    let journal = stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref());
    let format = Format::default().with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    if journal {
        registry
            .with(layer.event_format(Prioritised(format.without_time())))
            .init();
    } else {
        registry.with(layer.event_format(format)).init();
    }
    handle
}

/// systemd sets $JOURNAL_STREAM to the device and inode (`DEV:INO`) of the stream it connected
/// to stderr; a redirected stderr no longer matches it.
fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|s| s.split_once(':')) else {
        return false;
    };
    // SAFETY: fstat fills the zeroed struct for a descriptor that stays open (stderr).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(std::io::stderr().as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    dev.parse() == Ok(st.st_dev as u64) && ino.parse() == Ok(st.st_ino as u64)
}

/// The syslog priority of a level (RFC 5424: 3 error, 4 warning, 6 informational, 7 debug).
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// A format with the line's priority in front.
struct Prioritised<F>(F);

impl<S, N, F> FormatEvent<S, N> for Prioritised<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_only_when_the_stream_is_stderr() {
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("garbage")));
        assert!(!stderr_is_journal(Some("0:0")));
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstat(2, &mut st) }, 0);
        let stream = format!("{}:{}", st.st_dev, st.st_ino);
        assert!(stderr_is_journal(Some(&stream)));
    }

    #[test]
    fn priorities_are_syslog_levels() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::TRACE), 7);
    }
}
