//! Interruption that loses nothing: SIGINT and SIGTERM (Ctrl-C, a cluster pre-empting a job)
//! while a training loop runs ask it to stop at the next step boundary; it writes a checkpoint
//! there and returns [`crate::train::TrainError::Interrupted`], and `--resume` continues exactly
//! as an uninterrupted run would. Outside training, and for a second signal, the signals keep
//! their default action (the process ends), so nothing waits on a loop that never looks.
//!
//! The binary calls [`install`] once; the training loop holds a [`Watch`] while it runs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static WATCHERS: AtomicUsize = AtomicUsize::new(0);

/// Installs the handlers for SIGINT and SIGTERM (Unix; elsewhere nothing).
pub fn install() -> std::io::Result<()> {
    #[cfg(unix)]
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let action = move || {
            if WATCHERS.load(Ordering::SeqCst) > 0 && !REQUESTED.swap(true, Ordering::SeqCst) {
                return;
            }
            // nobody watching, or asked twice: what the signal would have done
            let _ = signal_hook::low_level::emulate_default_handler(sig);
        };
        // SAFETY: the action only touches atomics and calls emulate_default_handler, both
        // async-signal-safe.
        unsafe { signal_hook::low_level::register(sig, action) }?;
    }
    Ok(())
}

/// Whether a stop was asked for since the current [`Watch`] began.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// While one lives, SIGINT/SIGTERM set [`requested`] instead of ending the process.
pub struct Watch(());

impl Watch {
    /// Starts watching (and forgets any earlier request).
    pub fn start() -> Self {
        // the first watcher clears an old request; a later one (parallel runs) must not clear
        // a request meant for the others
        if WATCHERS.fetch_add(1, Ordering::SeqCst) == 0 {
            REQUESTED.store(false, Ordering::SeqCst);
        }
        Watch(())
    }

    /// Asks the watched loop to stop, as a signal would (for tests and embedding programs).
    pub fn request(&self) {
        REQUESTED.store(true, Ordering::SeqCst);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        WATCHERS.fetch_sub(1, Ordering::SeqCst);
    }
}
