//! The agent's log: `tracing` to stderr (filtered by `RUST_LOG`, as text
//! or `--log-json` lines), and a copy for `swim monitor` readers.

use core::fmt::Write as _;

use serde_json::{Value, json};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Sets up logging; log lines at debug and above (ours) or info and
/// above (others') are also sent to `feed` while anyone reads it.
pub(crate) fn init(json: bool, feed: broadcast::Sender<Value>) {
    use std::io::IsTerminal;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    // Escape codes would end up verbatim in log files and pipes.
    let ansi = std::io::stderr().is_terminal();
    let stderr = if json {
        tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).with_filter(filter()).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi).with_filter(filter()).boxed()
    };
    let monitor = Monitor { feed }.with_filter(
        Targets::new()
            .with_target("swim", LevelFilter::DEBUG)
            .with_target("lapswim_node", LevelFilter::DEBUG)
            .with_default(LevelFilter::INFO),
    );
    let _ = tracing_subscriber::registry().with(stderr).with(monitor).try_init();
}

/// Whether a log line at `level` (`ERROR`...`TRACE`) passes a reader's
/// `wanted` level.
pub(crate) fn passes(level: &str, wanted: LevelFilter) -> bool {
    level.parse::<tracing::Level>().is_ok_and(|l| wanted >= l)
}

/// Copies log events to the feed.
struct Monitor {
    feed: broadcast::Sender<Value>,
}

impl<S: tracing::Subscriber> Layer<S> for Monitor {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if self.feed.receiver_count() == 0 {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let meta = event.metadata();
        let _ = self.feed.send(json!({
            "event": "log",
            "level": meta.level().as_str(),
            "target": meta.target(),
            "message": text.0,
            "time": super::now(),
        }));
    }
}

/// A log event's message and fields as one line.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn core::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_s_level_selects_log_lines() {
        assert!(passes("ERROR", LevelFilter::INFO));
        assert!(passes("INFO", LevelFilter::INFO));
        assert!(!passes("DEBUG", LevelFilter::INFO));
        assert!(passes("DEBUG", LevelFilter::TRACE));
        assert!(!passes("nonsense", LevelFilter::TRACE));
    }
}
