//! Routes the library's `tracing` events to one app-provided sink (a C callback or a
//! uniffi listener).
//!
//! A `tracing` subscriber is installed as the process default the first time a sink is
//! set (unless the app installed one of its own, which then keeps the logs). The sink is
//! copied out of its slot before it is called, so no lock is held while app code runs.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Once};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::dispatch::lock;

/// Log levels, most severe first; `Off` logs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LogLevel {
    /// Nothing.
    Off = 0,
    /// Errors.
    Error = 1,
    /// And warnings.
    Warn = 2,
    /// And information.
    Info = 3,
    /// And debugging detail.
    Debug = 4,
    /// Everything.
    Trace = 5,
}

impl LogLevel {
    /// The level with this number, if any.
    pub fn from_i32(value: i32) -> Option<LogLevel> {
        Some(match value {
            0 => LogLevel::Off,
            1 => LogLevel::Error,
            2 => LogLevel::Warn,
            3 => LogLevel::Info,
            4 => LogLevel::Debug,
            5 => LogLevel::Trace,
            _ => return None,
        })
    }

    fn of(level: &Level) -> LogLevel {
        match *level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// Where log lines go.
pub trait LogSink: Send + Sync {
    /// One line: level, module path, message (with its fields).
    fn log(&self, level: LogLevel, target: &str, message: &str);
}

static SINK: Mutex<Option<Arc<dyn LogSink>>> = Mutex::new(None);
static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Off as u8);
static INSTALL: Once = Once::new();

/// Sets (or with `None` removes) the sink and its level.
pub fn set_sink(level: LogLevel, sink: Option<Box<dyn LogSink>>) {
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(ForwardLayer);
        // The app may have installed a subscriber of its own: then it keeps the logs.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    let sink: Option<Arc<dyn LogSink>> = sink.map(Arc::from);
    let level = if sink.is_some() { level } else { LogLevel::Off };
    *lock(&SINK) = sink;
    LEVEL.store(level as u8, Ordering::Release);
}

struct ForwardLayer;

impl<S: Subscriber> Layer<S> for ForwardLayer {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The level changes at run time: ask `enabled` every time, cache nothing.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        LogLevel::of(metadata.level()) as u8 <= LEVEL.load(Ordering::Acquire)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let level = LogLevel::of(event.metadata().level());
        if level as u8 > LEVEL.load(Ordering::Acquire) {
            return;
        }
        let Some(sink) = lock(&SINK).clone() else {
            return;
        };
        let mut line = Line::default();
        event.record(&mut line);
        sink.log(level, event.metadata().target(), &line.0);
    }
}

#[derive(Default)]
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}
