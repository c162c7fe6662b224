//! Ctrl-C, SIGTERM and the live view's `q` as a value every long-running command can watch.
//! The first request asks for a clean stop (flush, commit, leave the group); a second one
//! means "stop waiting".

use std::sync::Arc;

use tokio::sync::watch;

/// Counts the stop requests received; cheap to clone and to check from any thread.
#[derive(Clone, Debug)]
pub struct Shutdown {
    requests: watch::Receiver<u32>,
    /// Lets code inside the process (the live view's `q`) ask for a stop too.
    sender: Arc<watch::Sender<u32>>,
}

impl Shutdown {
    /// Starts listening for Ctrl-C and SIGTERM. Must be called inside the tokio runtime.
    pub fn listen() -> Shutdown {
        let shutdown = Shutdown::manual();
        let sender = Arc::clone(&shutdown.sender);
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
                tokio::select! {
                    result = tokio::signal::ctrl_c() => {
                        if result.is_err() {
                            return;
                        }
                    }
                    _ = terminated => {}
                }
                sender.send_modify(|n| *n += 1);
            }
        });
        shutdown
    }

    /// A shutdown that only [`Shutdown::request`] triggers (tests, embedded use).
    pub fn manual() -> Shutdown {
        let (tx, rx) = watch::channel(0u32);
        Shutdown {
            requests: rx,
            sender: Arc::new(tx),
        }
    }

    /// Asks for a stop, as a signal would.
    pub fn request(&self) {
        self.sender.send_modify(|n| *n += 1);
    }

    /// How many stop requests arrived so far.
    pub fn signals(&self) -> u32 {
        *self.requests.borrow()
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.signals() > 0
    }

    /// Completes once `n` stop requests have arrived.
    pub async fn wait_for(&mut self, n: u32) {
        // The sender lives as long as any Shutdown, including this one: this cannot fail.
        let _ = self.requests.wait_for(|count| *count >= n).await;
    }

    /// Completes at the first stop request.
    pub async fn requested_async(&mut self) {
        self.wait_for(1).await;
    }
}
