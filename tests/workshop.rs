//! docs/workshop.md runs as written: its code blocks are run, in document order, in one scratch
//! directory against one development broker, following the convention the document states in
//! its opening comment (```sh runs to completion; ```sh terminal=N starts a long-running
//! command in terminal N; `<!-- check: … -->` lines stand for what the learner does by hand;
//! ```sh docker is checked against the Compose files; ```sh kafka runs against the test's real
//! Kafka node; ```sh cluster runs against the three-node cluster the document's own `orderflow
//! cluster start --nodes 3` starts; ```sh manual is not run). Its relative links must point at
//! files that exist.
//!
//! The harness's broker listens on a free port; `ORDERFLOW_BROKERS` points orderflow at it,
//! and a `kcat` shim rewrites the document's `-b localhost:9092` to it. `pgrep` and `pkill`
//! shims only see the processes started by this test, never anything else on the machine.

mod util;

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

const WORKSHOP: &str = "docs/workshop.md";

/// How long a ```sh block may take.
const RUN_LIMIT: Duration = Duration::from_secs(45);
/// How long a terminal may take to print its `expect` text.
const EXPECT_LIMIT: Duration = Duration::from_secs(30);
/// How long a terminal may take to exit after Ctrl-C.
const STOP_LIMIT: Duration = Duration::from_secs(20);
/// How long a ```sh cluster block may take: starting three JVMs, or one again after a kill,
/// takes 10 to 35 s on a loaded two-core machine.
const CLUSTER_RUN_LIMIT: Duration = Duration::from_secs(150);
/// The bootstrap the document's ```sh cluster blocks name: `orderflow cluster start --nodes 3`
/// on its default port.
const DOCUMENT_CLUSTER: &str = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094";

/// One thing to do, in document order.
#[derive(Debug)]
enum Step {
    /// ```sh: run to completion, exit status 0.
    Run { code: String },
    /// ```sh terminal=N: start and leave running; `expect` must appear in its output.
    Start {
        terminal: u32,
        code: String,
        expect: Option<String>,
        /// The harness's broker stands in for this command (it needs a free port).
        provided: bool,
        /// It runs against the document's three-node `orderflow cluster` (```sh cluster).
        cluster: bool,
    },
    /// ```sh docker: Compose commands, checked against the Compose files.
    Docker { code: String },
    /// ```sh kafka: run to completion against real Kafka (the test's own KRaft node), the
    /// document's `localhost:9092[,localhost:9093,localhost:9094]` meaning that cluster.
    Kafka { code: String },
    /// ```sh cluster: run to completion against the three-node cluster the document starts
    /// with `orderflow cluster start --nodes 3` (in a state folder and on ports of the test's
    /// own); the document's `127.0.0.1:19092,…,19094` means that cluster.
    Cluster { code: String },
    /// ```sh manual: shown, not run.
    Manual,
    /// `<!-- check: stop N -->`: Ctrl-C in terminal N; it must exit with status 0.
    Stop { terminal: u32 },
    /// `<!-- check: wait N TEXT -->`: terminal N has printed TEXT.
    Wait { terminal: u32, text: String },
    /// `<!-- check: type N TEXT -->`: TEXT and Enter typed into terminal N.
    Type { terminal: u32, text: String },
    /// `<!-- check: sleep SECONDS -->`.
    Sleep { seconds: f64 },
}

/// A step and where the document says it.
#[derive(Debug)]
struct Located {
    /// The `## ` heading it is under.
    module: String,
    /// Its first line in the document (1-based).
    line: usize,
    step: Step,
}

impl Located {
    fn place(&self) -> String {
        format!("{WORKSHOP}:{} ({})", self.line, self.module)
    }
}

/// Splits an info string or a directive into words; `key="two words"` and `"two words"` are
/// one word each, quotes removed.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(current);
    }
    words
}

fn terminal_number(word: &str, line: usize) -> u32 {
    word.parse()
        .unwrap_or_else(|_| panic!("{WORKSHOP}:{line}: \"{word}\" is not a terminal number"))
}

fn directive(text: &str, line: usize) -> Step {
    let words = words(text);
    let arg = |i: usize| -> &str {
        words
            .get(i)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{WORKSHOP}:{line}: `check: {text}` lacks an argument"))
    };
    match arg(0) {
        "stop" => Step::Stop {
            terminal: terminal_number(arg(1), line),
        },
        "wait" => Step::Wait {
            terminal: terminal_number(arg(1), line),
            text: words[2..].join(" "),
        },
        "type" => Step::Type {
            terminal: terminal_number(arg(1), line),
            text: words[2..].join(" "),
        },
        "sleep" => Step::Sleep {
            seconds: arg(1)
                .parse()
                .unwrap_or_else(|_| panic!("{WORKSHOP}:{line}: bad sleep in `{text}`")),
        },
        other => panic!("{WORKSHOP}:{line}: unknown check `{other}` (stop, wait, type, sleep)"),
    }
}

fn block(info: &str, code: String, line: usize) -> Option<Step> {
    let words = words(info);
    if words.first().map(String::as_str) != Some("sh") {
        return None; // console, text, json, …: shown, not run
    }
    let mut terminal = None;
    let mut expect = None;
    let mut provided = false;
    let mut docker = false;
    let mut manual = false;
    let mut kafka = false;
    let mut cluster = false;
    for word in &words[1..] {
        if let Some(n) = word.strip_prefix("terminal=") {
            terminal = Some(terminal_number(n, line));
        } else if let Some(text) = word.strip_prefix("expect=") {
            expect = Some(text.to_owned());
        } else {
            match word.as_str() {
                "provided" => provided = true,
                "docker" => docker = true,
                "manual" => manual = true,
                "kafka" => kafka = true,
                "cluster" => cluster = true,
                other => panic!("{WORKSHOP}:{line}: unknown word `{other}` in ```{info}"),
            }
        }
    }
    if kafka {
        assert!(
            terminal.is_none() && !docker && !manual,
            "{WORKSHOP}:{line}: a ```sh kafka block runs to completion, nothing else"
        );
        return Some(Step::Kafka { code });
    }
    if cluster {
        assert!(
            !docker && !manual && !provided,
            "{WORKSHOP}:{line}: a ```sh cluster block runs, to completion or in a terminal"
        );
        return Some(match terminal {
            Some(terminal) => Step::Start {
                terminal,
                code,
                expect,
                provided,
                cluster,
            },
            None => Step::Cluster { code },
        });
    }
    Some(match (terminal, docker, manual) {
        (_, true, _) => Step::Docker { code },
        (_, _, true) => Step::Manual,
        (Some(terminal), _, _) => Step::Start {
            terminal,
            code,
            expect,
            provided,
            cluster,
        },
        (None, _, _) => Step::Run { code },
    })
}

/// The steps of the document, in order.
fn steps(document: &str) -> Vec<Located> {
    let mut steps = Vec::new();
    let mut module = "before the first module".to_owned();
    let mut lines = document.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let number = index + 1;
        if let Some(heading) = line.strip_prefix("## ") {
            module = heading.trim().to_owned();
        } else if let Some(rest) = line.strip_prefix("<!-- check:") {
            let text = rest.trim_end().strip_suffix("-->").unwrap_or_else(|| {
                panic!("{WORKSHOP}:{number}: a check comment must fit on one line")
            });
            steps.push(Located {
                module: module.clone(),
                line: number,
                step: directive(text.trim(), number),
            });
        } else if let Some(info) = line.strip_prefix("```") {
            let mut code = String::new();
            for (_, line) in lines.by_ref() {
                if line.starts_with("```") {
                    break;
                }
                code.push_str(line);
                code.push('\n');
            }
            if let Some(step) = block(info.trim(), code, number) {
                steps.push(Located {
                    module: module.clone(),
                    line: number,
                    step,
                });
            }
        }
    }
    steps
}

/// The first `name` on PATH that is not in `skip`.
fn which(name: &str, skip: &Path) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .filter(|dir| dir != skip)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).expect("write shim");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod shim");
}

/// A long-running command, as in a terminal of its own.
struct Terminal {
    child: Child,
    log: PathBuf,
    /// Where it was started, for messages.
    place: String,
}

impl Terminal {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }
}

/// The scratch directory, the shims and the broker the blocks run with.
struct Class {
    broker: util::Broker,
    scratch: tempfile::TempDir,
    /// Shims, process-group list and terminal logs; not the learner's directory.
    harness: tempfile::TempDir,
    path: std::ffi::OsString,
    terminals: std::collections::BTreeMap<u32, Terminal>,
    /// Real Kafka for the ```sh kafka blocks, started at the first one.
    kafka: Option<Option<util::Broker>>,
    /// Where the ```sh cluster blocks' cluster runs, decided at the first one; None inside
    /// when there is no Kafka to run it (outside CI: those blocks are skipped, loudly).
    cluster: Option<Option<ClusterPlace>>,
    /// Terminals whose ```sh cluster command was skipped: their checks are skipped too.
    skipped_terminals: std::collections::BTreeSet<u32>,
}

/// The document's `orderflow cluster`, as the test runs it: Kafka and Java from the harness's
/// search, the default state folder inside the harness's folder, free ports.
struct ClusterPlace {
    libs: PathBuf,
    java: PathBuf,
    /// XDG_STATE_HOME for the commands: `orderflow cluster` keeps its folder under it.
    state: PathBuf,
    /// The first client port (the document's 19092).
    port: u16,
    /// Whether a block has started it, so the test stops it at the end.
    started: bool,
}

impl ClusterPlace {
    fn bootstrap(&self) -> String {
        (0..3)
            .map(|i| format!("127.0.0.1:{}", self.port + i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The document's commands, on the test's ports.
    fn rewrite(&self, code: &str) -> String {
        code.replace(
            "orderflow cluster start",
            &format!("orderflow cluster start --port {}", self.port),
        )
        .replace(DOCUMENT_CLUSTER, &self.bootstrap())
    }

    fn apply(&self, command: &mut Command) {
        command
            .env("ORDERFLOW_KAFKA_LIBS", &self.libs)
            .env("JAVA", &self.java)
            .env_remove("KAFKA_HOME")
            .env_remove("JAVA_HOME")
            .env("XDG_STATE_HOME", &self.state)
            .env("ORDERFLOW_BROKERS", self.bootstrap());
    }
}

/// A first client port P with P..P+2 and P+100..P+102 free, away from the ports the other
/// tests' clusters take (tests/cluster_env) and from 19092, where a user's own cluster runs.
fn free_cluster_port() -> u16 {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    let offset = (std::process::id() % 300) as u16;
    (0..300u16)
        .map(|i| 24000 + (offset + i) % 300)
        .find(|&p| (0..3).all(|i| free(p + i) && free(p + 100 + i)))
        .expect("free ports in 24000-24402")
}

impl Class {
    fn new() -> Class {
        let broker = util::Broker::start_with("order-events", 3);
        let scratch = tempfile::tempdir().expect("scratch dir");
        let harness = tempfile::tempdir().expect("harness dir");
        let shims = harness.path().join("bin");
        std::fs::create_dir(&shims).expect("shim dir");
        let kcat = which("kcat", &shims)
            .expect("the workshop needs kcat on PATH (scripts/setup installs it)");
        write_script(
            &shims.join("kcat"),
            &format!(
                "#!/usr/bin/env bash\n# The document says -b localhost:9092; the test's broker is elsewhere.\n\
                 args=()\nfor a in \"$@\"; do\n  [ \"$a\" = localhost:9092 ] && a=\"$ORDERFLOW_BROKERS\"\n  \
                 args+=(\"$a\")\ndone\nexec {} \"${{args[@]}}\"\n",
                kcat.display()
            ),
        );
        let groups = harness.path().join("pgids");
        std::fs::write(&groups, "2147483647").expect("pgids");
        for tool in ["pgrep", "pkill"] {
            let real = which(tool, &shims)
                .unwrap_or_else(|| panic!("the workshop needs {tool} on PATH (procps)"));
            write_script(
                &shims.join(tool),
                &format!(
                    "#!/bin/sh\n# Only the test's own terminals, never other processes of the machine.\n\
                     exec {} \"$@\" -g \"$(cat {})\"\n",
                    real.display(),
                    groups.display()
                ),
            );
        }
        let binary = Path::new(env!("CARGO_BIN_EXE_orderflow"));
        let mut dirs = vec![shims, binary.parent().expect("bin dir").to_owned()];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        Class {
            broker,
            scratch,
            harness,
            path: std::env::join_paths(dirs).expect("PATH"),
            terminals: Default::default(),
            kafka: None,
            cluster: None,
            skipped_terminals: Default::default(),
        }
    }

    fn shell(&self, code: &str) -> Command {
        let mut command = Command::new("bash");
        command
            .args(["-e", "-c", code])
            .current_dir(self.scratch.path())
            .env("PATH", &self.path)
            .env("ORDERFLOW_BROKERS", &self.broker.address)
            .env_remove("ORDERFLOW_TOPIC")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        command
    }

    fn record_groups(&self) {
        let mut list: Vec<String> = self
            .terminals
            .values()
            .map(|t| t.child.id().to_string())
            .collect();
        list.push("2147483647".to_owned());
        std::fs::write(self.harness.path().join("pgids"), list.join(",")).expect("pgids");
    }

    fn terminal(&mut self, step: &Located, terminal: u32) -> &mut Terminal {
        self.terminals
            .get_mut(&terminal)
            .unwrap_or_else(|| panic!("{}: terminal {terminal} was never started", step.place()))
    }

    fn run(&mut self, step: &Located) {
        match &step.step {
            Step::Run { code } => self.run_block(step, code),
            Step::Start {
                terminal,
                code,
                expect,
                cluster: true,
                ..
            } => self.start_on_cluster(step, *terminal, code, expect.as_deref()),
            Step::Cluster { code } => self.run_on_cluster(step, code),
            Step::Start {
                provided: true,
                code,
                ..
            } => {
                // The harness's broker (a free port) stands in for `orderflow broker`.
                assert!(
                    code.trim().starts_with("orderflow broker"),
                    "{}: only `orderflow broker` can be provided by the harness",
                    step.place()
                );
            }
            Step::Start {
                terminal,
                code,
                expect,
                provided: false,
                cluster: false,
            } => self.start(step, *terminal, code, expect.as_deref(), false),
            Step::Stop { terminal } | Step::Wait { terminal, .. }
                if self.skipped_terminals.contains(terminal) => {}
            Step::Docker { code } => check_docker(step, code),
            Step::Kafka { code } => self.run_on_kafka(step, code),
            Step::Manual => {}
            Step::Stop { terminal } => self.stop(step, *terminal),
            Step::Wait { terminal, text } => self.wait_for(step, *terminal, text),
            Step::Type { terminal: 1, text } => self.broker.command(text),
            Step::Type { .. } => panic!(
                "{}: only the broker (terminal 1) is typed into",
                step.place()
            ),
            Step::Sleep { seconds } => std::thread::sleep(Duration::from_secs_f64(*seconds)),
        }
    }

    /// A ```sh kafka block: the document's addresses are the test's real Kafka, and Kafka's
    /// own `kafka-consumer-groups` and `kafka-topics` are on PATH.
    fn run_on_kafka(&mut self, step: &Located, code: &str) {
        if self.kafka.is_none() {
            // The cluster a class gets from docker/compose.yml has the topics already.
            let broker = util::Broker::kafka_with(
                "every_command_of_the_workshop_runs_as_written (its ```sh kafka blocks)",
                "order-events",
                3,
            );
            if let Some(broker) = &broker {
                let kafka = broker.kafka.expect("real Kafka");
                let shims = self.harness.path().join("bin");
                for (name, class) in [
                    (
                        "kafka-consumer-groups",
                        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                    ),
                    ("kafka-topics", "org.apache.kafka.tools.TopicCommand"),
                ] {
                    let tool = kafka.tool(class);
                    // The tool as Kafka's bin/ scripts run it, less the --bootstrap-server
                    // the harness adds: the document gives its own.
                    let mut words = vec![tool.get_program().to_string_lossy().into_owned()];
                    words.extend(tool.get_args().map(|a| a.to_string_lossy().into_owned()));
                    words.truncate(words.len() - 2);
                    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
                    write_script(
                        &shims.join(name),
                        &format!("#!/bin/sh\nexec {} \"$@\"\n", quoted.join(" ")),
                    );
                }
            }
            self.kafka = Some(broker);
        }
        let Some(Some(broker)) = &self.kafka else {
            return;
        };
        let code = code
            .replace(
                "localhost:9092,localhost:9093,localhost:9094",
                &broker.address,
            )
            .replace("localhost:9092", &broker.address);
        let mut shell = self.shell(&code);
        shell.env("ORDERFLOW_BROKERS", &broker.address);
        self.run_command(step, &code, shell);
    }

    /// The document's cluster, once its place is decided (at the first ```sh cluster block).
    fn cluster_place(&mut self) -> Option<&mut ClusterPlace> {
        if self.cluster.is_none() {
            let test = "every_command_of_the_workshop_runs_as_written (its ```sh cluster blocks)";
            let place = util::kafka::install(test).map(|install| {
                let state = self.harness.path().join("state");
                std::fs::create_dir_all(&state).expect("a state folder");
                ClusterPlace {
                    libs: install.libs,
                    java: install.java,
                    state,
                    port: free_cluster_port(),
                    started: false,
                }
            });
            self.cluster = Some(place);
        }
        self.cluster.as_mut().and_then(Option::as_mut)
    }

    /// A ```sh cluster block: run to completion with the cluster's environment.
    fn run_on_cluster(&mut self, step: &Located, code: &str) {
        let Some(place) = self.cluster_place() else {
            return;
        };
        place.started |= code.contains("orderflow cluster start");
        let code = place.rewrite(code);
        let mut shell = self.shell(&code);
        if let Some(Some(place)) = &self.cluster {
            place.apply(&mut shell);
        }
        self.run_command_within(step, &code, shell, CLUSTER_RUN_LIMIT);
    }

    /// A ```sh cluster terminal=N block: a long-running command against the cluster.
    fn start_on_cluster(
        &mut self,
        step: &Located,
        terminal: u32,
        code: &str,
        expect: Option<&str>,
    ) {
        let Some(place) = self.cluster_place() else {
            self.skipped_terminals.insert(terminal);
            return;
        };
        let code = place.rewrite(code);
        self.skipped_terminals.remove(&terminal);
        self.start(step, terminal, &code, expect, true);
    }

    fn run_block(&self, step: &Located, code: &str) {
        self.run_command(step, code, self.shell(code));
    }

    fn run_command(&self, step: &Located, code: &str, shell: Command) {
        self.run_command_within(step, code, shell, RUN_LIMIT);
    }

    fn run_command_within(&self, step: &Located, code: &str, mut shell: Command, limit: Duration) {
        let log = self.harness.path().join("block.log");
        let file = File::create(&log).expect("block log");
        let mut child = shell
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .process_group(0)
            .spawn()
            .expect("spawn bash");
        let status = wait_until(&mut child, limit);
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        match status {
            Some(status) if status.success() => {}
            Some(status) => panic!(
                "{}: this block failed ({status}):\n{code}--- its output:\n{output}{}",
                step.place(),
                self.terminal_report()
            ),
            None => {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.wait();
                panic!(
                    "{}: this block did not finish within {limit:?}:\n{code}--- its output:\n{output}",
                    step.place()
                )
            }
        }
    }

    fn start(
        &mut self,
        step: &Located,
        terminal: u32,
        code: &str,
        expect: Option<&str>,
        on_cluster: bool,
    ) {
        if let Some(previous) = self.terminals.get_mut(&terminal) {
            // A `pkill -9` returns once the signal is sent, not once the process is gone: give
            // a killed terminal a moment to end before calling it still running.
            let killed_by_now = Instant::now() + Duration::from_secs(2);
            while previous.running() && Instant::now() < killed_by_now {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                !previous.running(),
                "{}: terminal {terminal} still runs what {} started; stop it first\n--- its output:\n{}",
                step.place(),
                previous.place,
                previous.output()
            );
        }
        let log = self
            .harness
            .path()
            .join(format!("terminal-{terminal}-line-{}.log", step.line));
        let file = File::create(&log).expect("terminal log");
        let mut shell = self.shell(code);
        if on_cluster && let Some(Some(place)) = &self.cluster {
            place.apply(&mut shell);
        }
        let child = shell
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .process_group(0)
            .spawn()
            .expect("spawn bash");
        self.terminals.insert(
            terminal,
            Terminal {
                child,
                log,
                place: step.place(),
            },
        );
        self.record_groups();
        match expect {
            Some(text) => self.wait_for(step, terminal, text),
            None => {
                std::thread::sleep(Duration::from_millis(500));
                let started = self.terminal(step, terminal);
                assert!(
                    started.running(),
                    "{}: terminal {terminal} exited at once:\n{code}--- its output:\n{}",
                    step.place(),
                    started.output()
                );
            }
        }
    }

    fn wait_for(&mut self, step: &Located, terminal: u32, text: &str) {
        let started = Instant::now();
        let place = step.place();
        let term = self.terminal(step, terminal);
        loop {
            if term.output().contains(text) {
                return;
            }
            if !term.running() || started.elapsed() > EXPECT_LIMIT {
                let state = if term.running() {
                    format!("still running after {EXPECT_LIMIT:?}")
                } else {
                    "exited".to_owned()
                };
                panic!(
                    "{place}: terminal {terminal} (started at {}) did not print \"{text}\" ({state})\n--- its output:\n{}",
                    term.place,
                    term.output()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self, step: &Located, terminal: u32) {
        let place = step.place();
        let term = self.terminal(step, terminal);
        assert!(
            term.running(),
            "{place}: terminal {terminal} is not running any more\n--- its output:\n{}",
            term.output()
        );
        let _ = killpg(Pid::from_raw(term.child.id() as i32), Signal::SIGINT);
        match wait_until(&mut term.child, STOP_LIMIT) {
            Some(status) if status.success() => {}
            Some(status) => panic!(
                "{place}: after Ctrl-C terminal {terminal} (started at {}) exited with {status}\n--- its output:\n{}",
                term.place,
                term.output()
            ),
            None => panic!(
                "{place}: terminal {terminal} did not stop within {STOP_LIMIT:?} of Ctrl-C\n--- its output:\n{}",
                term.output()
            ),
        }
    }

    fn terminal_report(&self) -> String {
        let mut report = String::new();
        for (n, term) in &self.terminals {
            let output = term.output();
            let tail: Vec<&str> = output.lines().rev().take(8).collect();
            let _ = write!(
                report,
                "\n--- terminal {n} (started at {}), last lines:\n",
                term.place
            );
            for line in tail.into_iter().rev() {
                let _ = writeln!(report, "{line}");
            }
        }
        report
    }
}

impl Drop for Class {
    fn drop(&mut self) {
        for term in self.terminals.values_mut() {
            let _ = killpg(Pid::from_raw(term.child.id() as i32), Signal::SIGKILL);
            let _ = term.child.wait();
        }
        // The document stops its cluster; a test that failed before that must not leave
        // three JVMs behind.
        if let Some(Some(place)) = &self.cluster
            && place.started
        {
            let mut stop = Command::new(env!("CARGO_BIN_EXE_orderflow"));
            stop.args(["cluster", "stop", "--wipe"]);
            place.apply(&mut stop);
            let _ = util::run_with_limit(&mut stop, Duration::from_secs(60));
        }
    }
}

/// The exit status, or None if it is still running after `limit`.
fn wait_until(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The services under `services:` of a Compose file.
fn compose_services(text: &str) -> Vec<String> {
    let mut services = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty() {
            inside = line.trim_end() == "services:";
        } else if inside
            && let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
        {
            services.push(name.to_owned());
        }
    }
    services
}

/// Every `docker compose` line names a Compose file that exists and only
/// services and profiles that file has.
fn check_docker(step: &Located, code: &str) {
    for line in code.lines().map(|l| l.split(" #").next().unwrap_or("")) {
        let words = words(line);
        if words.len() < 2 || words[0] != "docker" || words[1] != "compose" {
            continue;
        }
        let mut file = None;
        let mut profiles = Vec::new();
        let mut named = Vec::new();
        let mut subcommand: Option<&str> = None;
        let mut i = 2;
        while i < words.len() {
            let word = words[i].as_str();
            match word {
                "-f" | "--file" if subcommand.is_none() => {
                    file = words.get(i + 1).cloned();
                    i += 1;
                }
                "--profile" => {
                    profiles.extend(words.get(i + 1).cloned());
                    i += 1;
                }
                "--scale" => {
                    let scale = words.get(i + 1).cloned().unwrap_or_default();
                    named.push(scale.split('=').next().unwrap_or("").to_owned());
                    i += 1;
                }
                "--tail" | "-n" | "-t" | "--timeout" => i += 1,
                w if w.starts_with('-') => {}
                _ if subcommand.is_none() => subcommand = Some(word),
                w => {
                    if matches!(
                        subcommand,
                        Some(
                            "up" | "stop"
                                | "start"
                                | "restart"
                                | "kill"
                                | "logs"
                                | "rm"
                                | "pause"
                                | "unpause"
                                | "run"
                                | "exec"
                        )
                    ) {
                        named.push(w.to_owned());
                        if matches!(subcommand, Some("run" | "exec")) {
                            break; // the rest is the command run in the container
                        }
                    }
                }
            }
            i += 1;
        }
        let file = file.unwrap_or_else(|| {
            panic!(
                "{}: `{line}` must name its Compose file with -f",
                step.place()
            )
        });
        let path = repo().join(&file);
        assert!(
            path.exists(),
            "{}: `{line}` uses {file}, which does not exist",
            step.place()
        );
        let text = std::fs::read_to_string(&path).expect("read compose file");
        let services = compose_services(&text);
        for service in named {
            assert!(
                services.contains(&service),
                "{}: `{line}`: {file} has no service {service} (it has {services:?})",
                step.place()
            );
        }
        for profile in profiles {
            assert!(
                text.contains(&format!("profiles: [{profile}]")),
                "{}: `{line}`: {file} has no profile {profile}",
                step.place()
            );
        }
    }
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    let mut anchors = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            anchors.push(anchor(line.trim_start_matches('#')));
        }
    }
    anchors
}

/// Every relative link `](target)` outside code blocks.
fn links(markdown: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut links = Vec::new();
    for (index, line) in markdown.lines().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                links.push((index + 1, target.to_owned()));
            }
            rest = &rest[end..];
        }
    }
    links
}

#[test]
fn every_link_of_the_workshop_points_at_something_that_exists() {
    let document = std::fs::read_to_string(repo().join(WORKSHOP)).expect("read the workshop");
    for (line, target) in links(&document) {
        let (file, fragment) = match target.split_once('#') {
            Some((file, fragment)) => (file, Some(fragment)),
            None => (target.as_str(), None),
        };
        let (path, name) = if file.is_empty() {
            (repo().join(WORKSHOP), WORKSHOP.to_owned())
        } else {
            let path = repo().join("docs").join(file);
            let name = path
                .canonicalize()
                .ok()
                .and_then(|p| {
                    p.strip_prefix(repo().canonicalize().ok()?)
                        .ok()
                        .map(Path::to_owned)
                })
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| {
                    // Not there: name it relative to the repository for the message.
                    let mut name = PathBuf::from("docs");
                    for part in Path::new(file).components() {
                        match part {
                            std::path::Component::ParentDir => {
                                name.pop();
                            }
                            other => name.push(other),
                        }
                    }
                    name.display().to_string()
                });
            (path, name)
        };
        assert!(
            path.exists(),
            "{WORKSHOP}:{line}: the link to {target} points at {name}, which does not exist"
        );
        if let Some(fragment) = fragment
            && path.extension().is_some_and(|e| e == "md")
        {
            let text = std::fs::read_to_string(&path).expect("read link target");
            assert!(
                anchors(&text).iter().any(|a| a == fragment),
                "{WORKSHOP}:{line}: {name} has no heading for #{fragment}"
            );
        }
    }
}

#[test]
fn every_command_of_the_workshop_runs_as_written() {
    let document = std::fs::read_to_string(repo().join(WORKSHOP)).expect("read the workshop");
    let steps = steps(&document);
    assert!(
        steps
            .iter()
            .filter(|s| matches!(s.step, Step::Run { .. }))
            .count()
            >= 10,
        "the workshop should have commands to run"
    );
    let started = Instant::now();
    let mut class = Class::new();
    for step in &steps {
        let before = Instant::now();
        class.run(step);
        let took = before.elapsed();
        if took > Duration::from_secs(5) {
            eprintln!("{}: took {:.1} s", step.place(), took.as_secs_f64());
        }
    }
    let _ = std::io::stderr().flush();
    eprintln!(
        "{} steps of {WORKSHOP} in {:.1} s",
        steps.len(),
        started.elapsed().as_secs_f64()
    );
}
