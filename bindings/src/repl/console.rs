//! The read-eval-print loop: prompt, multi-line input, helpers, recording, history, Ctrl-C and
//! Ctrl-D, and teardown of what the session itself deployed.

use engine::error::Chain;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::deploy::Testnet;
use engine::live::remote::RemoteTestnet;
use engine::live::state::{self, Status};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};

use super::commands::{self, faults_text, help_text, help_topic, nodes_table};
use super::editor::{ReplHelper, open_brackets};
use super::record::{SaveInfo, is_effective, scenario};
use super::session::{EvalOutcome, Session};
use crate::cli::DeployerChoice;
use crate::exit;
use crate::host::{HostSettings, Mode};
use crate::params::ParamValue;

/// Validated options of `repl`.
#[derive(Debug, Clone)]
pub struct ReplOptions {
    /// Testnet to attach to.
    pub attach: Option<String>,
    /// `--endpoints FILE`: the node API URLs of a testnet nomos-script did not deploy.
    pub endpoints: Option<PathBuf>,
    /// Script evaluated first (it may deploy the testnet `net` is bound to).
    pub file: Option<PathBuf>,
    /// Deployer of `plan.run()`.
    pub deployer: DeployerChoice,
    /// Seed of plans.
    pub seed: Option<u64>,
    /// `--set` parameters.
    pub params: Vec<(String, ParamValue)>,
}

/// Set by Ctrl-C while no input runs (stops `:watch`).
static SIGINT_SEEN: AtomicBool = AtomicBool::new(false);

/// Everything the loop keeps between inputs.
struct Repl {
    session: Session,
    attached: Option<String>,
    recorded: Vec<String>,
    nodes: Arc<AtomicUsize>,
    owned: Arc<Mutex<Vec<Arc<dyn Testnet>>>>,
    tty: bool,
}

/// Runs the REPL until Ctrl-D, `:quit` or the end of piped input; returns the exit code.
pub fn run(opts: ReplOptions) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("nomos-script-rt")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::INFRA_ERROR;
        }
    };
    let settings = HostSettings {
        reporters: Default::default(),
        mode: Mode::Run,
        deployer: opts.deployer,
        seed: opts.seed,
        keep: false,
        params: opts.params.clone(),
        external: None,
        checks: crate::host::CheckPolicy::Warn,
    };
    let session = Session::new(runtime.handle().clone(), settings, Path::new("<input>"));
    let mut repl = Repl {
        session,
        attached: None,
        recorded: Vec::new(),
        nodes: Arc::new(AtomicUsize::new(0)),
        owned: Arc::new(Mutex::new(Vec::new())),
        tty: std::io::stdin().is_terminal(),
    };
    if let Err(e) = install_signals(&runtime, &repl) {
        eprintln!("error: cannot install the Ctrl-C handler: {e}");
        return exit::INFRA_ERROR;
    }
    if let Some(name) = &opts.attach {
        match attach(runtime.handle(), name) {
            Ok(remote) => {
                println!(
                    "attached to `{name}` ({} deployer, {} nodes, control {}); :help for help",
                    remote.deployer_name(),
                    remote.node_count(),
                    remote.control_url()
                );
                repl.session.bind_net(Arc::new(remote));
                repl.attached = Some(name.clone());
            }
            Err((code, e)) => {
                eprintln!("error: {e}");
                return code;
            }
        }
    }
    if let Some(path) = &opts.endpoints {
        match connect_external(runtime.handle(), path) {
            Ok(net) => {
                println!(
                    "bound `net` to {} external nodes from {} (not deployed by nomos-script: no node control, no faults; they keep running when you quit); :help for help",
                    net.node_count(),
                    path.display()
                );
                repl.session.bind_net(net);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return e.code;
            }
        }
    }
    if let Some(file) = &opts.file {
        match std::fs::read_to_string(file) {
            Ok(src) => {
                let ok = repl.eval_and_print(&src, file, true);
                if ok
                    && repl.session.net().is_none()
                    && let Some(last) = repl.session.owned_testnets().last()
                    && let Some(t) = last.testnet().cloned()
                {
                    repl.session.bind_net(t);
                }
            }
            Err(e) => {
                eprintln!("error: cannot read script {}: {e}", file.display());
                return exit::SCRIPT_ERROR;
            }
        }
    }
    if repl.session.net().is_none() {
        println!(
            "no testnet bound to `net` yet: deploy one (let net = LocalDeployer().deploy(TopologyBuilder().nodes(3)))\nor attach with `repl --attach NAME`; :help for help"
        );
    }
    repl.refresh_nodes();
    let code = repl.run_loop();
    repl.teardown_owned(runtime.handle());
    code
}

/// The attached testnet, or the exit code (2 for an unknown name, 3 otherwise) and message.
fn attach(handle: &tokio::runtime::Handle, name: &str) -> Result<RemoteTestnet, (i32, String)> {
    let st = crate::live::manage::load_named(name)?;
    let infra = |m: String| (exit::INFRA_ERROR, m);
    if !st.supervisor_alive() {
        return Err(infra(format!(
            "testnet `{name}` is stale: its supervisor (pid {}) is gone; `nomos-script down {name}` cleans it up",
            st.supervisor_pid
        )));
    }
    if st.status != Status::Ready {
        return Err(infra(format!(
            "testnet `{name}` is not ready (status {:?}); see {}",
            st.status,
            st.log.display()
        )));
    }
    let (url, secret) = st.control().map_err(infra)?;
    handle
        .block_on(RemoteTestnet::attach(name, url, secret))
        .map_err(infra)
}

/// Why `--endpoints FILE` could not bind `net`, and the exit code.
struct ExternalError {
    message: String,
    code: i32,
}

impl std::fmt::Display for ExternalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The external testnet `--endpoints FILE` names: the file parsed (a bad line is a script
/// error), every node checked to answer.
fn connect_external(
    runtime: &tokio::runtime::Handle,
    path: &Path,
) -> Result<Arc<dyn Testnet>, ExternalError> {
    let deployer =
        engine::deploy::external::ExternalDeployer::from_file(path).map_err(|message| {
            ExternalError {
                message,
                code: exit::SCRIPT_ERROR,
            }
        })?;
    let opts = engine::deploy::DeployOptions::default();
    runtime
        .block_on(deployer.connect(&opts))
        .map(|net| Arc::new(net) as Arc<dyn Testnet>)
        .map_err(|e| ExternalError {
            message: e.to_string(),
            code: exit::INFRA_ERROR,
        })
}

fn history_path() -> PathBuf {
    state::state_dir().join("repl_history")
}

impl Repl {
    fn refresh_nodes(&self) {
        let n = self.session.net().map_or(0, |n| n.node_count());
        self.nodes.store(n, Ordering::Relaxed);
        let owned: Vec<Arc<dyn Testnet>> = self
            .session
            .owned_testnets()
            .iter()
            .filter_map(|h| h.testnet().cloned())
            .collect();
        *self.owned.lock().unwrap_or_else(|e| e.into_inner()) = owned;
    }

    fn run_loop(&mut self) -> i32 {
        let config = Config::builder()
            .auto_add_history(false)
            .completion_type(rustyline::CompletionType::List)
            .max_history_size(5000)
            .map(|b| b.build())
            .unwrap_or_default();
        let mut editor: Editor<ReplHelper, DefaultHistory> = match Editor::with_config(config) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: cannot start the line editor: {e}");
                return exit::INFRA_ERROR;
            }
        };
        editor.set_helper(Some(ReplHelper {
            names: commands::function_names(&self.session.engine()),
            nodes: self.nodes.clone(),
        }));
        let history = history_path();
        let _ = editor.load_history(&history);
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() {
                "nomos> "
            } else {
                "  ...> "
            };
            match editor.readline(prompt) {
                Ok(line) => {
                    if !buffer.is_empty() {
                        buffer.push('\n');
                    }
                    buffer.push_str(&line);
                    if open_brackets(&buffer) > 0 {
                        continue;
                    }
                    let input = std::mem::take(&mut buffer);
                    let trimmed = input.trim();
                    if trimmed.is_empty() {
                        continue;
                    }
                    let _ = editor.add_history_entry(trimmed);
                    if let Some(helper) = trimmed.strip_prefix(':') {
                        if !self.helper(helper) {
                            break;
                        }
                    } else {
                        let ok = self.eval_and_print(&input, Path::new("<input>"), false);
                        if ok && is_effective(&input) {
                            self.recorded.push(input.trim().to_string());
                        }
                    }
                    self.refresh_nodes();
                }
                Err(ReadlineError::Interrupted) => {
                    // Ctrl-C at the prompt clears the line (and any pending continuation)
                    buffer.clear();
                    SIGINT_SEEN.store(false, Ordering::SeqCst);
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    eprintln!("error: reading input failed: {e}");
                    break;
                }
            }
        }
        if !buffer.trim().is_empty() {
            eprintln!("warning: unfinished input dropped (brackets still open)");
        }
        if let Some(dir) = history.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(&history);
        exit::PASSED
    }

    /// Evaluates and prints the value or the error; true when it succeeded.
    fn eval_and_print(&mut self, src: &str, origin: &Path, is_file: bool) -> bool {
        match self.session.eval(src, origin, is_file) {
            EvalOutcome::Value(v) => {
                if !v.is_unit() {
                    println!("{v}");
                }
                let _ = std::io::stdout().flush();
                true
            }
            EvalOutcome::Error(e, _) => {
                eprint!("{e}");
                false
            }
            EvalOutcome::Interrupted => {
                eprintln!("interrupted (the session goes on)");
                false
            }
        }
    }

    /// Runs a `:` helper; false to leave.
    fn helper(&mut self, text: &str) -> bool {
        let (name, arg) = match text.split_once(char::is_whitespace) {
            Some((n, a)) => (n, a.trim()),
            None => (text, ""),
        };
        match name {
            "help" | "h" | "?" => {
                if arg.is_empty() {
                    print!("{}", help_text(self.attached.as_deref()));
                } else {
                    print!("{}", help_topic(&self.session.engine(), arg));
                }
            }
            "quit" | "q" | "exit" => return false,
            "nodes" => match self.session.net() {
                Some(net) => print!("{}", nodes_table(self.session.handle(), &net)),
                None => eprintln!("error: :nodes needs a testnet: `net` is not bound"),
            },
            "watch" => self.watch(),
            "faults" => match self.session.net() {
                Some(net) => print!("{}", faults_text(&*net, arg == "log")),
                None => eprintln!("error: :faults needs a testnet: `net` is not bound"),
            },
            "save" => self.save(arg),
            "load" => {
                if arg.is_empty() {
                    eprintln!("error: :load needs a file: :load FILE");
                } else {
                    let path = PathBuf::from(arg);
                    match std::fs::read_to_string(&path) {
                        Ok(src) => {
                            if self.eval_and_print(&src, &path, true) && is_effective(&src) {
                                self.recorded.push(src.trim().to_string());
                            }
                        }
                        Err(e) => eprintln!("error: cannot read {}: {e}", path.display()),
                    }
                }
            }
            other => eprintln!("error: unknown helper `:{other}`; :help lists them"),
        }
        let _ = std::io::stdout().flush();
        true
    }

    fn watch(&mut self) {
        let Some(net) = self.session.net() else {
            eprintln!("error: :watch needs a testnet: `net` is not bound");
            return;
        };
        SIGINT_SEEN.store(false, Ordering::SeqCst);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // Enter ends the watch; in piped mode the next input line does (and is consumed).
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::stdin().read_line(&mut s);
            let _ = tx.send(());
        });
        loop {
            if self.tty {
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", nodes_table(self.session.handle(), &net));
            println!("(refreshing every second; Enter stops)");
            let _ = std::io::stdout().flush();
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if SIGINT_SEEN.swap(false, Ordering::SeqCst) {
                break;
            }
        }
    }

    fn save(&self, arg: &str) {
        if arg.is_empty() {
            eprintln!("error: :save needs a file: :save FILE");
            return;
        }
        let Some(net) = self.session.net() else {
            eprintln!("error: nothing to save: `net` is not bound to a testnet");
            return;
        };
        let origin = match &self.attached {
            Some(name) => format!("testnet `{name}`"),
            None => "a session".to_string(),
        };
        let text = scenario(
            &SaveInfo {
                origin,
                deployer: net.deployer_name(),
                topology: net.topology(),
                heal_at_end: !net.active_faults().is_empty() || !net.node_faults().is_empty(),
                session_seed: self.session.seed(),
            },
            &self.recorded,
        );
        let path = PathBuf::from(arg);
        match std::fs::write(&path, text) {
            Ok(()) => println!(
                "saved {} command(s) to {} (run it with `nomos-script run {}`)",
                self.recorded.len(),
                path.display(),
                path.display()
            ),
            Err(e) => eprintln!("error: cannot write {}: {e}", path.display()),
        }
    }

    fn teardown_owned(&self, handle: &tokio::runtime::Handle) {
        for net in self.session.take_owned_testnets() {
            if let Some(t) = net.testnet().cloned() {
                let run_id = t.run_id().to_string();
                if let Err(e) = handle.block_on(async move { t.teardown(false).await }) {
                    eprintln!("warning: teardown of {run_id} failed: {}", e.chain());
                }
            }
        }
    }
}

fn install_signals(runtime: &tokio::runtime::Runtime, repl: &Repl) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let _guard = runtime.enter();
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let target = repl.session.interrupt_target();
    let owned = repl.owned.clone();
    let tty = repl.tty;
    runtime.spawn(async move {
        loop {
            tokio::select! {
                Some(()) = int.recv() => {
                    if !target.interrupt() {
                        SIGINT_SEEN.store(true, Ordering::SeqCst);
                        if !tty {
                            quit(&owned, exit::INTERRUPTED).await;
                        }
                    }
                }
                Some(()) = term.recv() => {
                    target.interrupt();
                    quit(&owned, exit::INTERRUPTED).await;
                }
                else => return,
            }
        }
    });
    Ok(())
}

async fn quit(owned: &Mutex<Vec<Arc<dyn Testnet>>>, code: i32) {
    let nets: Vec<_> = owned.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for n in nets {
        let _ = n.teardown(false).await;
    }
    std::process::exit(code);
}
