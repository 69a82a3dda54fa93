//! `nomos-script`: raw args -> validated settings -> host. Kept thin on purpose.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use nomos_script::cli::{Cli, Command, DeployerChoice};
use nomos_script::exit;
use nomos_script::host::{CheckPolicy, HostSettings, Mode, ScriptHost};

fn main() -> ExitCode {
    // Every node and link of a local testnet holds descriptors here (and nodes inherit it).
    let _ = engine::deploy::local::fds::raise_nofile_limit();
    let cli = Cli::parse();
    // The reference node builds its own runtime: it must run before anything creates one.
    if let Command::Devnode(args) = &cli.command {
        if let Some(nomos_script::cli::DevnodeAction::GenConfig { description }) = &args.action {
            return match engine::nodekind::generator::gen_config_main(description) {
                Ok(path) => {
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit_code(exit::INFRA_ERROR)
                }
            };
        }
        let config = args
            .config
            .as_deref()
            .expect("clap requires --config without an action");
        return match devnode_main(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                exit_code(exit::INFRA_ERROR)
            }
        };
    }
    init_tracing();
    if let Some(kind) = &cli.node_kind
        && let Err(e) = engine::nodekind::select_kind(kind)
    {
        eprintln!("error: --node-kind: {e}");
        return exit_code(exit::SCRIPT_ERROR);
    }
    if let Command::Doc(args) = &cli.command {
        return exit_code(nomos_script::doc::command::run(args));
    }
    if let Command::Shrink(args) = &cli.command {
        return exit_code(nomos_script::shrink::run(args));
    }
    if let Some(code) = nomos_script::live::run_command(&cli.command) {
        return exit_code(code);
    }
    match run(cli) {
        Ok(code) => exit_code(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            exit_code(exit::INFRA_ERROR)
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let host =
        ScriptHost::new().map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    match cli.command {
        Command::Gc(args) => {
            // stale live testnets first: their run dirs are then gone too
            for line in nomos_script::live::gc_stale(host.runtime().handle(), args.dry_run) {
                println!("{line}");
            }
            let base = args.dir.unwrap_or_else(std::env::temp_dir);
            let opts = engine::gc::GcOptions {
                dry_run: args.dry_run,
                kept: args.kept,
                older_than: args.older_than,
            };
            let report = host
                .runtime()
                .block_on(engine::gc::collect_with(&base, &opts));
            for line in report.lines() {
                println!("{line}");
            }
            if let Some(e) = &report.docker_error {
                eprintln!("note: docker part skipped: {e}");
            }
            for e in &report.errors {
                eprintln!("error: {e}");
            }
            let k8s_errors = gc_k8s(&host, args.dry_run);
            Ok(if report.errors.is_empty() && k8s_errors == 0 {
                exit::PASSED
            } else {
                exit::INFRA_ERROR
            })
        }
        Command::Run(args) => Ok(nomos_script::reports::run_command(&host, &args)),
        Command::Check(args) => {
            let mut worst = exit::PASSED;
            for file in &args.files {
                let settings = HostSettings {
                    reporters: Default::default(),
                    mode: Mode::Check,
                    deployer: DeployerChoice::Local,
                    seed: Some(0),
                    keep: false,
                    params: args.set.clone(),
                    external: None,
                    checks: if args.strict {
                        CheckPolicy::Strict
                    } else {
                        CheckPolicy::Warn
                    },
                };
                let outcome = host.execute(file, settings);
                match &outcome.error {
                    Some(err) => eprint!("{err}"),
                    None => println!("ok: {}", file.display()),
                }
                if worst == exit::PASSED {
                    worst = outcome.code;
                }
            }
            Ok(worst)
        }
        Command::Devnode(_) => unreachable!("handled before the runtime exists"),
        Command::Up(_)
        | Command::Ls
        | Command::Down(_)
        | Command::Repl(_)
        | Command::Supervise(_) => {
            unreachable!("handled by live::run_command")
        }
        Command::Doc(_) | Command::Shrink(_) => {
            unreachable!("handled before the runtime exists")
        }
    }
}

/// RUST_LOG controls the runner's own logs (stderr); quiet by default.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// `nomos-script devnode --config FILE`: one reference node, in this process.
fn devnode_main(config: &Path) -> anyhow::Result<()> {
    devnode::run_from_file(config)
        .map_err(|e| anyhow::anyhow!("devnode with config {}: {e}", config.display()))
}

/// The Kubernetes part of `gc`: only where a cluster is configured (KUBECONFIG or
/// ~/.kube/config), so a machine without one is not slowed down or warned at.
/// Returns the number of errors printed.
fn gc_k8s(host: &ScriptHost, dry_run: bool) -> usize {
    let configured = std::env::var_os("KUBECONFIG").is_some()
        || std::env::var_os("HOME")
            .is_some_and(|h| std::path::Path::new(&h).join(".kube/config").exists());
    if !configured {
        return 0;
    }
    match host
        .runtime()
        .block_on(engine::deploy::k8s::gc(None, dry_run))
    {
        Ok(report) => {
            let verb = if dry_run { "would delete" } else { "deleted" };
            for ns in &report.namespaces {
                println!("{verb} namespace {ns}");
            }
            for e in &report.errors {
                eprintln!("error: {e}");
            }
            report.errors.len()
        }
        Err(e) => {
            eprintln!("note: kubernetes part skipped: {e}");
            0
        }
    }
}
