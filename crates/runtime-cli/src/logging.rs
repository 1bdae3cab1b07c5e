//! Log records in runc's formats: logrus-style text, or one JSON object per
//! line with `level`, `msg` and `time` (containerd reads the last
//! `"level":"error"` record's `msg` from a `--log-format json` file).

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context as _;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span;
use tracing::{Event, Level, Metadata, Subscriber};

/// The format of log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `time="..." level=error msg="..."`
    Text,
    /// `{"level":"error","msg":"...","time":"..."}`
    Json,
}

/// Where records go.
#[derive(Clone)]
pub struct Log {
    sink: Arc<Mutex<Sink>>,
    format: Format,
}

enum Sink {
    Stderr,
    File(File),
}

/// Sets up logging to `file` (or stderr) at info level, or debug with `debug`.
pub fn init(file: Option<&Path>, format: Format, debug: bool) -> anyhow::Result<Log> {
    let sink = match file {
        Some(path) => Sink::File(
            File::options()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening log file {}", path.display()))?,
        ),
        None => Sink::Stderr,
    };
    let log = Log {
        sink: Arc::new(Mutex::new(sink)),
        format,
    };
    let max = if debug { Level::DEBUG } else { Level::WARN };
    let records = Records {
        log: log.clone(),
        max,
    };
    // A second initialisation (never in the binary) would only fail to install.
    let _ = tracing::subscriber::set_global_default(records);
    Ok(log)
}

impl Log {
    /// Records an error; when the log is a file the message is also printed
    /// on stderr, bare, as runc prints it.
    pub fn error(&self, msg: &str) {
        self.write("error", msg, &[]);
        if !matches!(
            *self.sink.lock().unwrap_or_else(|e| e.into_inner()),
            Sink::Stderr
        ) {
            eprintln!("{msg}");
        }
    }

    fn write(&self, level: &str, msg: &str, fields: &[(String, String)]) {
        let time = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let line = match (self.format, &*sink) {
            // Plain messages on a terminal's stderr read better than
            // records; elsewhere (a manager reading our stderr) the records
            // are runc's.
            (Format::Text, Sink::Stderr) if level == "error" && stderr_is_terminal() => {
                format!("capsa-runtime: {msg}\n")
            }
            (Format::Text, _) => {
                let mut l = format!("time=\"{time}\" level={level} msg={msg:?}");
                for (k, v) in fields {
                    let _ = write!(l, " {k}={v:?}");
                }
                l.push('\n');
                l
            }
            (Format::Json, _) => {
                let mut obj = serde_json::Map::new();
                obj.insert("level".into(), level.into());
                obj.insert("msg".into(), msg.into());
                obj.insert("time".into(), time.into());
                for (k, v) in fields {
                    obj.insert(k.clone(), v.clone().into());
                }
                let mut l = serde_json::Value::Object(obj).to_string();
                l.push('\n');
                l
            }
        };
        let _ = match &mut *sink {
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
            Sink::File(f) => f.write_all(line.as_bytes()),
        };
    }
}

/// Whether standard error is a terminal (a person reads it).
fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// The subscriber that turns tracing events into log records. It is all
/// the binary needs (nothing opens spans), and far cheaper to set up at each
/// start than tracing-subscriber's registry.
struct Records {
    log: Log,
    max: Level,
}

#[derive(Default)]
struct Fields {
    msg: String,
    rest: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.rest
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.rest
                .push((field.name().to_string(), value.to_string()));
        }
    }
}

impl Subscriber for Records {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.max))
    }

    // Spans are not used; should a dependency open one, it is ignored.
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        self.log.write(level, &fields.msg, &fields.rest);
    }
}
