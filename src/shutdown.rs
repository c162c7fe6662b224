//! Ctrl-C and SIGTERM as a value every long-running command can watch. The first signal asks
//! for a clean stop (flush, commit, leave the group); a second one means "stop waiting".

use tokio::sync::watch;

/// Counts the stop signals received; cheap to clone and to check from any thread.
#[derive(Clone, Debug)]
pub struct Shutdown {
    signals: watch::Receiver<u32>,
}

impl Shutdown {
    /// Starts listening for Ctrl-C and SIGTERM. Must be called inside the tokio runtime.
    pub fn listen() -> Shutdown {
        let (tx, rx) = watch::channel(0u32);
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
                tx.send_modify(|n| *n += 1);
            }
        });
        Shutdown { signals: rx }
    }

    /// A shutdown that only [`ShutdownTrigger`] can trigger (tests, embedded use).
    pub fn manual() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(0u32);
        (ShutdownTrigger(tx), Shutdown { signals: rx })
    }

    /// How many stop signals arrived so far.
    pub fn signals(&self) -> u32 {
        *self.signals.borrow()
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.signals() > 0
    }

    /// Completes once `n` stop signals have arrived (never, if the sender is gone first).
    pub async fn wait_for(&mut self, n: u32) {
        if self.signals.wait_for(|count| *count >= n).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Completes at the first stop signal.
    pub async fn requested_async(&mut self) {
        self.wait_for(1).await;
    }
}

/// Triggers a [`Shutdown`] made with [`Shutdown::manual`].
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<u32>);

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.send_modify(|n| *n += 1);
    }
}
