//! Showing the progress of pulls and pushes as Docker does: a line per
//! layer with a progress bar, its sizes and speed on a terminal; plain
//! status lines otherwise; nothing with `-q`. Warnings go to stderr.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use capsa_distribution::{Event, LayerState, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::units::human_size;

/// Where progress is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Standard output (`pull`, `push`).
    Stdout,
    /// Standard error (`run` and `create` pulling their image).
    Stderr,
}

/// How much is shown.
enum Mode {
    /// Progress bars redrawn in place (a terminal).
    Bars(Mutex<Bars>),
    /// One line per state change.
    Lines,
    /// Nothing but warnings.
    Quiet,
}

/// The bars on screen.
struct Bars {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
}

fn draw_target(output: Output) -> ProgressDrawTarget {
    match output {
        Output::Stdout => ProgressDrawTarget::stdout(),
        Output::Stderr => ProgressDrawTarget::stderr(),
    }
}

/// A [`Progress`] that prints.
pub struct Renderer {
    mode: Mode,
    output: Output,
}

/// Docker's progress bar: 50 columns, `=` up to the percentage and `>`.
fn docker_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return String::new();
    }
    let pct = ((current as f64 / total as f64 * 100.0) as usize / 2).min(50);
    format!("[{}>{}]", "=".repeat(pct), " ".repeat(50 - pct))
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg} {docker}")
        .expect("valid template")
        .with_key(
            "docker",
            |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let total = s.len().unwrap_or(0);
                let current = s.pos();
                let speed = s.per_sec();
                let _ = write!(
                    w,
                    "{} {:>8}/{}",
                    docker_bar(current, total),
                    human_size(current as f64),
                    human_size(total as f64)
                );
                if speed > 0.0 && current < total {
                    let _ = write!(w, "  {}/s", human_size(speed));
                }
            },
        )
}

fn status_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").expect("valid template")
}

/// Whether a layer is done in that state.
fn is_final(s: &LayerState) -> bool {
    matches!(
        s,
        LayerState::PullComplete
            | LayerState::AlreadyExists
            | LayerState::Pushed
            | LayerState::LayerAlreadyExists
            | LayerState::MountedFrom(_)
    )
}

impl Renderer {
    /// Bars on a terminal, lines otherwise, nothing when `quiet`.
    pub fn new(output: Output, quiet: bool) -> Renderer {
        let terminal = match output {
            Output::Stdout => std::io::stdout().is_terminal(),
            Output::Stderr => std::io::stderr().is_terminal(),
        };
        let mode = if quiet {
            Mode::Quiet
        } else if terminal {
            Mode::Bars(Mutex::new(Bars {
                multi: MultiProgress::with_draw_target(draw_target(output)),
                bars: HashMap::new(),
            }))
        } else {
            Mode::Lines
        };
        Renderer { mode, output }
    }

    fn line(&self, text: &str) {
        let r = match self.output {
            Output::Stdout => writeln!(std::io::stdout().lock(), "{text}"),
            Output::Stderr => writeln!(std::io::stderr().lock(), "{text}"),
        };
        // A closed pipe is not worth failing a pull for.
        let _ = r;
    }
}

impl Progress for Renderer {
    fn report(&self, event: Event<'_>) {
        if let Event::Warning(w) = event {
            eprintln!("WARNING: {w}");
            return;
        }
        match &self.mode {
            Mode::Quiet => {}
            Mode::Lines => match event {
                Event::Status(s) => self.line(s),
                Event::Layer { id, state } if !state.has_bytes() => {
                    self.line(&format!("{id}: {}", state.text()))
                }
                _ => {}
            },
            Mode::Bars(state) => {
                let mut state = state.lock().expect("bars lock");
                let Bars { multi, bars } = &mut *state;
                match event {
                    Event::Status(s) => {
                        if bars.values().all(ProgressBar::is_finished) {
                            // Finished bars stay on screen as they were last
                            // drawn; new lines and bars go below them.
                            *multi = MultiProgress::with_draw_target(draw_target(self.output));
                            bars.clear();
                            self.line(s);
                        } else {
                            let _ = multi.println(s);
                        }
                    }
                    Event::Layer { id, state } => {
                        let bar = bars.entry(id.to_string()).or_insert_with(|| {
                            let b = multi.add(ProgressBar::new(0));
                            b.set_style(status_style());
                            b.set_prefix(id.to_string());
                            b
                        });
                        if state.has_bytes() {
                            bar.set_style(bytes_style());
                        } else if !matches!(state, LayerState::Retrying { .. }) {
                            bar.set_style(status_style());
                        }
                        if is_final(&state) {
                            bar.finish_with_message(state.text());
                        } else {
                            bar.set_message(state.text());
                        }
                    }
                    Event::Bytes { id, current, total } => {
                        if let Some(bar) = bars.get(id) {
                            bar.set_length(total);
                            bar.set_position(current);
                        }
                    }
                    Event::Warning(_) => unreachable!("handled above"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn bars_look_like_dockers() {
        assert_eq!(docker_bar(0, 100), format!("[>{}]", " ".repeat(50)));
        assert_eq!(
            docker_bar(50, 100),
            format!("[{}>{}]", "=".repeat(25), " ".repeat(25))
        );
        assert_eq!(docker_bar(100, 100), format!("[{}>]", "=".repeat(50)));
        assert_eq!(docker_bar(1, 0), "");
        let mut s = String::new();
        let _ = write!(s, "{:>8}", human_size(1_572_864.0));
        assert_eq!(s, " 1.573MB");
    }
}
