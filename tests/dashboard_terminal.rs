//! The live view in a real terminal: tmux, at 80×24, against a built-in broker. A role's view
//! killed with -9 leaves its frame on the screen (it never leaves the alternate screen), the
//! shell says "Killed", anything may be written after it; the view started next in the pane
//! must own the whole screen from its first frame, not draw over what is there.

mod util;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::Broker;

/// How long a view may take to draw its first frame.
const LIMIT: Duration = Duration::from_secs(30);

/// A tmux server of this test's own (`-L`), without the user's configuration.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    /// The pane's text as shown now.
    fn screen(&self) -> String {
        util::text(&self.run(&["capture-pane", "-p", "-t", "view"]).stdout)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Waits for `path` to hold a process id.
fn pid_in(path: &Path, tmux: &Tmux) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            started.elapsed() < LIMIT,
            "the view did not start in {LIMIT:?}; the pane:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the pane shows a view's frame (its key line, the last to be drawn) and
/// returns the screen.
fn frame(tmux: &Tmux) -> String {
    let started = Instant::now();
    loop {
        let screen = tmux.screen();
        if screen.contains(" q quit  p pause/resume") {
            return screen;
        }
        assert!(
            started.elapsed() < LIMIT,
            "no frame in {LIMIT:?}; the pane:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_view_restarted_after_kill_9_owns_the_whole_screen_from_its_first_frame() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!(
            "SKIPPED a_view_restarted_after_kill_9_owns_the_whole_screen_from_its_first_frame: \
             tmux is not installed (scripts/setup installs it)"
        );
        return;
    }
    let broker = Broker::start();
    broker.produce(200, 1);
    let dir = std::env::temp_dir().join(util::unique("tmux-view"));
    std::fs::create_dir_all(&dir).unwrap();
    let (first, second) = (dir.join("first.pid"), dir.join("second.pid"));
    let view = |pid: &Path| {
        format!(
            "sh -c 'echo $$ > {}; exec {} -b {} -t {} analytics'",
            pid.display(),
            env!("CARGO_BIN_EXE_orderflow"),
            broker.address,
            broker.topic
        )
    };
    // A full screen of junk: whatever the next view leaves blank would still show it.
    let junk = format!(
        "i=0; while [ $i -lt 30 ]; do printf '%s\\n' '{}'; i=$((i+1)); done",
        "JUNK ".repeat(16).trim_end()
    );
    // The second view starts once the test has seen the junk cover the killed view's frame.
    let go = dir.join("go");
    let script = dir.join("pane.sh");
    std::fs::write(
        &script,
        format!(
            "{junk}\n{}\n{junk}\nwhile [ ! -e {} ]; do sleep 0.1; done\n{}\nsleep 600\n",
            view(&first),
            go.display(),
            view(&second)
        ),
    )
    .unwrap();
    let tmux = Tmux {
        socket: util::unique("orderflow-view"),
    };
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "view",
        "-x",
        "80",
        "-y",
        "24",
        &format!("sh {}", script.display()),
    ]);
    assert!(
        started.status.success(),
        "tmux: {}",
        util::text(&started.stderr)
    );

    let killed = pid_in(&first, &tmux);
    let before = frame(&tmux);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(killed),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The junk after the kill covers the killed view's frame (and the shell's "Killed");
    // then the next view's first frame is the first screen to show a key line again.
    let started = Instant::now();
    while tmux.screen().contains(" q quit  p pause/resume") {
        assert!(
            started.elapsed() < LIMIT,
            "the killed view's frame stayed:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let covered = tmux.screen();
    assert!(covered.contains("JUNK"), "no junk on the pane:\n{covered}");
    std::fs::write(&go, "").unwrap();
    pid_in(&second, &tmux);
    let screen = frame(&tmux);
    assert!(
        !screen.contains("JUNK"),
        "junk is still on the screen after the new view's first frame:\n{screen}\n\
         (the killed view's last frame:\n{before})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
