//! The live view in a real terminal: takes it over (`ratatui::init`, which also restores it
//! if anything panics), applies events as they come, redraws at most ten times a second and
//! once a second when nothing happens, handles keys, and gives the terminal back.

use std::collections::HashMap;
use std::io;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use chrono::Utc;
use ratatui::crossterm::event::{self, Event, KeyEventKind};

use super::keys;
use super::state::{Dashboard, Effect, ViewEvent};

/// The shortest time between two frames: events are folded into the state as they come,
/// and the picture catches up at this pace, however fast records flow.
const FRAME: Duration = Duration::from_millis(100);

/// A frame is drawn at least this often, for the clock and relative times.
const IDLE_FRAME: Duration = Duration::from_secs(1);

/// What the keys do outside the view itself: each role's pause switch, by role name.
#[derive(Default)]
pub(crate) struct Controls {
    /// Pauses (true) or resumes (false) the role of that name.
    pause: HashMap<&'static str, Box<dyn Fn(bool) + Send>>,
}

impl Controls {
    /// `p` on `role` calls `pause` (true: pause, false: resume). A role without a switch
    /// is not paused.
    pub(crate) fn on_pause(&mut self, role: &'static str, pause: impl Fn(bool) + Send + 'static) {
        self.pause.insert(role, Box::new(pause));
    }

    fn pause(&self, role: &str, paused: bool) {
        if let Some(pause) = self.pause.get(role) {
            pause(paused);
        }
    }
}

/// Runs the view until `q` (or Ctrl-C in the view), or until `stop()` says the process is
/// stopping (SIGTERM), or the event senders are all gone. Returns the final state.
pub(crate) fn run(
    mut dashboard: Dashboard,
    events: &Receiver<ViewEvent>,
    controls: &Controls,
    stop: impl Fn() -> bool,
) -> io::Result<Dashboard> {
    let mut terminal = ratatui::try_init()?;
    // A view killed with -9 never left the alternate screen, and entering it again does not
    // blank it: without a clear, this view's first frame would only draw over the old one
    // where it differs from an empty screen, leaving stale bars and words in the gaps.
    terminal.clear()?;
    let result = (|| -> io::Result<()> {
        let mut dirty = true;
        let mut last_frame = Instant::now() - IDLE_FRAME;
        loop {
            loop {
                match events.try_recv() {
                    Ok(event) => {
                        dashboard.update(event);
                        dirty = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Ok(()),
                }
            }
            if stop() {
                return Ok(());
            }
            let since = last_frame.elapsed();
            if (dirty && since >= FRAME) || since >= IDLE_FRAME {
                dashboard.update(ViewEvent::Tick(Utc::now()));
                terminal.draw(|frame| frame.render_widget(&dashboard, frame.area()))?;
                last_frame = Instant::now();
                dirty = false;
            }
            if !event::poll(FRAME)? {
                continue;
            }
            match event::read()? {
                Event::Key(key) if key.kind == KeyEventKind::Press => {
                    match keys::action(&key).and_then(|action| dashboard.apply(action)) {
                        Some(Effect::Quit) => return Ok(()),
                        Some(Effect::Pause { role, paused }) => controls.pause(role, paused),
                        None => {}
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    })();
    ratatui::restore();
    result.map(|()| dashboard)
}
