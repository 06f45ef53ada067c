//! What interrupts a run: SIGINT (Ctrl-C), SIGTERM (CI cancelling a job, `docker stop`,
//! systemd, ECS stopping a task) and SIGHUP (the terminal or the ssh session gone), awaited
//! as one, so that each ends a run the same way: what is in flight cancelled, terraform let
//! stop cleanly, the lock released, the history record closed as interrupted.
//!
//! The first signal is latched for the rest of the process: one that comes between two
//! interruptible steps (while the history record is written, say) stops the run at the
//! next one instead of being lost, and later ones change nothing, so the clean-up runs to
//! its end.

use std::sync::OnceLock;

use tokio::sync::watch;

pub use crate::process::Signal;

/// The first signal received, once [`listen`] has started.
static RECEIVED: OnceLock<watch::Sender<Option<Signal>>> = OnceLock::new();

/// Starts listening, once per process. From then on these signals no longer end the
/// process by themselves: the run awaits them with [`interrupted`]. Before (and in the
/// read-only commands, which never listen) they end it as they end any program.
pub fn listen() {
    RECEIVED.get_or_init(|| {
        let (sender, _) = watch::channel(None);
        let (ready, registered) = std::sync::mpsc::channel();
        let latch = sender.clone();
        // A thread with a runtime of its own: the latch outlives whichever runtime the
        // run awaits it on.
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || listen_on_this_thread(latch, ready));
        if spawned.is_ok() {
            // Registered before the run goes on: no signal can fall between.
            let _ = registered.recv();
        }
        sender
    });
}

fn listen_on_this_thread(latch: watch::Sender<Option<Signal>>, ready: std::sync::mpsc::Sender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    else {
        let _ = ready.send(());
        return;
    };
    runtime.block_on(async move {
        let streams = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        );
        let _ = ready.send(());
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) = streams else {
            return;
        };
        let first = tokio::select! {
            _ = int.recv() => Signal::Interrupt,
            _ = term.recv() => Signal::Terminate,
            _ = hup.recv() => Signal::Hangup,
        };
        latch.send_replace(Some(first));
        // The handlers stay installed: later signals are received and ignored.
    });
}

/// The signal that interrupted the run, if one came.
pub fn received() -> Option<Signal> {
    RECEIVED.get().and_then(|sender| *sender.borrow())
}

/// Resolves with the first signal (at once if it came already); starts listening if
/// nothing did yet.
pub async fn interrupted() -> Signal {
    listen();
    if let Some(sender) = RECEIVED.get() {
        let mut receiver = sender.subscribe();
        let first = receiver
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|s| *s);
        if let Some(signal) = first {
            return signal;
        }
    }
    std::future::pending().await
}
