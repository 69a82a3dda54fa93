//! `nomos-script`: raw args -> validated settings -> host. Kept thin on purpose.

use std::process::ExitCode;

use clap::Parser;
use nomos_script::cli::{Cli, Command};
use nomos_script::exit;
use nomos_script::host::{HostSettings, Mode, ScriptHost};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The reference node builds its own runtime: it must run before anything creates one.
    if let Command::Devnode(args) = &cli.command {
        return match devnode_main(&args.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(exit::INFRA_ERROR as u8)
            }
        };
    }
    init_tracing();
    match run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::INFRA_ERROR as u8)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let host =
        ScriptHost::new().map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    match cli.command {
        Command::Run(args) => {
            for (flag, value) in [
                ("--report-dir", &args.report_dir),
                ("--junit", &args.junit),
                ("--json", &args.json),
            ] {
                if value.is_some() {
                    eprintln!("warning: {flag} is not implemented yet; no file will be written");
                }
            }
            let settings = HostSettings {
                mode: Mode::Run,
                deployer: args.deployer,
                seed: args.seed,
                keep: args.keep,
                params: args.set,
            };
            let outcome = host.execute(&args.file, settings);
            if let Some(err) = &outcome.error {
                eprint!("{err}");
            }
            Ok(outcome.code)
        }
        Command::Check(args) => {
            let mut worst = exit::PASSED;
            for file in &args.files {
                let settings = HostSettings {
                    mode: Mode::Check,
                    deployer: nomos_script::cli::DeployerChoice::Local,
                    seed: Some(0),
                    keep: false,
                    params: args.set.clone(),
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
fn devnode_main(config: &std::path::Path) -> anyhow::Result<()> {
    devnode::run_from_file(config)
        .map_err(|e| anyhow::anyhow!("devnode with config {}: {e}", config.display()))
}
