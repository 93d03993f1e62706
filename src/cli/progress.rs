//! Progress on the terminal: an `indicatif` bar when stderr is a terminal, plain log lines
//! (about every 5%) otherwise, so logs of cluster jobs stay readable. Shareable between threads
//! (parallel training runs log through one handle).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;
use tweedie::progress::Progress;

#[derive(Default)]
struct State {
    bar: Option<ProgressBar>,
    total: u64,
    last_line: u64,
    what: String,
    started: Option<Instant>,
}

/// Progress on stderr.
#[derive(Default)]
pub struct Terminal {
    state: Mutex<State>,
}

impl Terminal {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Progress for Terminal {
    fn start(&self, what: &str, total: u64) {
        let mut s = self.state.lock().expect("progress state");
        s.total = total;
        s.last_line = 0;
        s.what = what.to_string();
        s.started = Some(Instant::now());
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} elapsed, ETA {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(what.to_string());
            s.bar = Some(bar);
        } else {
            eprintln!("{what}: 0/{total}");
        }
    }

    fn update(&self, pos: u64, msg: &str) {
        let mut s = self.state.lock().expect("progress state");
        if let Some(bar) = &s.bar {
            bar.set_position(pos);
            bar.set_message(msg.to_string());
            return;
        }
        let total = s.total.max(1);
        let every = (total / 20).max(1);
        if pos >= s.last_line + every || pos == total {
            s.last_line = pos;
            let secs = s.started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
            eprintln!("{} {pos}/{total} {msg} ({secs:.0} s)", s.what);
        }
    }

    fn log(&self, line: &str) {
        let s = self.state.lock().expect("progress state");
        match &s.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.state.lock().expect("progress state").bar.take() {
            bar.finish_and_clear();
        }
    }
}
