//! Ctrl-C, SIGTERM and the live view's `q` as a value every long-running command can watch.
//! The first request asks for a clean stop (flush, commit, leave the group); a second one
//! means "stop waiting".

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::watch;

/// What asked for the last stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopCause {
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// SIGTERM (`kill`, a service manager, `docker stop`).
    Terminate,
    /// The program itself (the live view's `q`, a command ending its parts).
    Request,
}

impl StopCause {
    /// How a person would name it: "Ctrl-C", "SIGTERM", "a stop request".
    pub(crate) fn words(self) -> &'static str {
        match self {
            StopCause::Interrupt => "Ctrl-C",
            StopCause::Terminate => "SIGTERM",
            StopCause::Request => "a stop request",
        }
    }

    /// The exit status shells give a program killed by this signal (128 + its number).
    pub(crate) fn exit_status(self) -> u8 {
        match self {
            StopCause::Interrupt | StopCause::Request => 130,
            StopCause::Terminate => 143,
        }
    }
}

/// Counts the stop requests received; cheap to clone and to check from any thread.
#[derive(Clone, Debug)]
pub struct Shutdown {
    requests: watch::Receiver<u32>,
    /// Lets code inside the process (the live view's `q`) ask for a stop too.
    sender: Arc<watch::Sender<u32>>,
    /// The cause of the last request (a [`StopCause`] as u8), set before the count moves.
    cause: Arc<AtomicU8>,
}

impl Shutdown {
    /// Starts listening for Ctrl-C and SIGTERM. Must be called inside the tokio runtime.
    pub fn listen() -> Shutdown {
        let shutdown = Shutdown::manual();
        let sender = Arc::clone(&shutdown.sender);
        let cause = Arc::clone(&shutdown.cause);
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            loop {
                #[cfg(unix)]
                let terminated = async {
                    match term.as_mut() {
                        Some(term) => term.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let terminated = std::future::pending::<Option<()>>();
                let signal = tokio::select! {
                    result = tokio::signal::ctrl_c() => {
                        if result.is_err() {
                            return;
                        }
                        StopCause::Interrupt
                    }
                    _ = terminated => StopCause::Terminate,
                };
                cause.store(signal as u8, Ordering::Relaxed);
                sender.send_modify(|n| *n += 1);
            }
        });
        shutdown
    }

    /// A shutdown that only [`Shutdown::request`] triggers (tests, embedded use).
    pub(crate) fn manual() -> Shutdown {
        let (tx, rx) = watch::channel(0u32);
        Shutdown {
            requests: rx,
            sender: Arc::new(tx),
            cause: Arc::new(AtomicU8::new(StopCause::Request as u8)),
        }
    }

    /// Asks for a stop, as a signal would.
    pub(crate) fn request(&self) {
        self.cause
            .store(StopCause::Request as u8, Ordering::Relaxed);
        self.sender.send_modify(|n| *n += 1);
    }

    /// What asked for the last stop (meaningful once [`Shutdown::requested`]).
    pub(crate) fn cause(&self) -> StopCause {
        match self.cause.load(Ordering::Relaxed) {
            c if c == StopCause::Interrupt as u8 => StopCause::Interrupt,
            c if c == StopCause::Terminate as u8 => StopCause::Terminate,
            _ => StopCause::Request,
        }
    }

    /// How many stop requests arrived so far.
    pub(crate) fn signals(&self) -> u32 {
        *self.requests.borrow()
    }

    /// Whether a stop was asked for.
    pub(crate) fn requested(&self) -> bool {
        self.signals() > 0
    }

    /// Completes once `n` stop requests have arrived.
    pub(crate) async fn wait_for(&mut self, n: u32) {
        // The sender lives as long as any Shutdown, including this one: this cannot fail.
        let _ = self.requests.wait_for(|count| *count >= n).await;
    }

    /// Completes at the first stop request.
    pub(crate) async fn requested_async(&mut self) {
        self.wait_for(1).await;
    }
}
