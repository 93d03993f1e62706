//! Progress on the terminal: an `indicatif` bar when stderr is a terminal, plain log lines
//! (about every 5%) otherwise, so logs of cluster jobs stay readable.

use indicatif::{ProgressBar, ProgressStyle};
use std::cell::{Cell, RefCell};
use std::io::IsTerminal;
use tweedie::progress::Progress;

/// Progress on stderr.
pub struct Terminal {
    bar: RefCell<Option<ProgressBar>>,
    total: Cell<u64>,
    last_line: Cell<u64>,
    what: RefCell<String>,
    started: Cell<Option<std::time::Instant>>,
}

impl Terminal {
    pub fn new() -> Self {
        Self {
            bar: RefCell::new(None),
            total: Cell::new(0),
            last_line: Cell::new(0),
            what: RefCell::new(String::new()),
            started: Cell::new(None),
        }
    }
}

impl Progress for Terminal {
    fn start(&self, what: &str, total: u64) {
        self.total.set(total);
        self.last_line.set(0);
        *self.what.borrow_mut() = what.to_string();
        self.started.set(Some(std::time::Instant::now()));
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
            *self.bar.borrow_mut() = Some(bar);
        } else {
            eprintln!("{what}: 0/{total}");
        }
    }

    fn update(&self, pos: u64, msg: &str) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.set_position(pos);
            bar.set_message(msg.to_string());
            return;
        }
        let total = self.total.get().max(1);
        let every = (total / 20).max(1);
        if pos >= self.last_line.get() + every || pos == total {
            self.last_line.set(pos);
            let secs = self
                .started
                .get()
                .map(|s| s.elapsed().as_secs_f64())
                .unwrap_or(0.0);
            eprintln!("{} {pos}/{total} {msg} ({secs:.0} s)", self.what.borrow());
        }
    }

    fn log(&self, line: &str) {
        match self.bar.borrow().as_ref() {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}
