//! Command line: raw arguments (clap derive; the doc comments are the help text) turned into
//! validated settings before anything runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::params::{ParamValue, parse_set};

/// Scripted testnets for Logos Blockchain: a scenario script builds a plan (topology, workloads,
/// expectations, duration); `run` deploys it, drives the workloads, judges the expectations, tears
/// everything down and exits with a code that says what happened.
///
/// Exit codes: 0 passed, 1 a scenario failed (an expectation or a workload), 2 script error
/// (parse or runtime), 3 infrastructure error (deploy, readiness), 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "nomos-script", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario script: every plan it runs is deployed, driven, judged and torn down.
    Run(RunArgs),
    /// Check scripts without deploying anything: parse, resolve imports, evaluate the script with
    /// deploy/run replaced by dry runs, so every plan is built and validated (topology, overrides,
    /// durations, capabilities). Errors are reported at file:line:col.
    Check(CheckArgs),
    /// Run one reference node from its YAML config (the local deployer starts nodes this way).
    Devnode(DevnodeArgs),
    /// Remove what killed runs left behind: node processes, run dirs (`nomos-script-<run id>`) and
    /// Docker containers, networks and volumes labelled with a run id whose runner is gone. Runs
    /// still in progress are left alone.
    Gc(GcArgs),
    /// Write the script reference (Markdown, one page per area, generated from the registered
    /// functions' doc comments and the stdlib modules), or editor definitions (`--definitions`);
    /// check the committed reference for drift (`--check`); run every example (`--run-examples`).
    Doc(DocArgs),
}

/// Options of `doc`.
#[derive(Debug, Args)]
pub struct DocArgs {
    /// Folder of the Markdown reference (default: docs/reference).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write rhai editor definition files (.d.rhai) into this folder; without --out, only these.
    #[arg(long, value_name = "DIR")]
    pub definitions: Option<PathBuf>,
    /// The stdlib folder to document (default: the one `import` finds from the current folder).
    #[arg(long, value_name = "DIR")]
    pub stdlib: Option<PathBuf>,
    /// Write nothing: exit 1 when the reference in --out differs from the generated one.
    #[arg(long, conflicts_with_all = ["definitions", "run_examples"])]
    pub check: bool,
    /// Write nothing: check every example of the reference (and the ```rhai blocks of each
    /// --guide file), then run the runnable ones against a local testnet; exit 1 on a failure.
    #[arg(long)]
    pub run_examples: bool,
    /// A Markdown file whose ```rhai blocks --run-examples checks too; repeatable.
    #[arg(long, value_name = "FILE", requires = "run_examples")]
    pub guide: Vec<PathBuf>,
    /// With --run-examples: only check, deploy nothing.
    #[arg(long, requires = "run_examples")]
    pub no_live: bool,
}

/// Options of `gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Where run dirs live (default: the system temp dir, honouring TMPDIR).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario script (.rhai).
    pub file: PathBuf,
    /// Where `plan.run()` deploys the testnet; scripts that name a deployer themselves
    /// (`LocalDeployer()`) are not affected.
    #[arg(long, value_enum, default_value_t = DeployerChoice::Local)]
    pub deployer: DeployerChoice,
    /// Seed of all randomness (keys, transaction senders, chaos timing); printed in the report so
    /// that a run can be replayed. Random when absent.
    #[arg(long)]
    pub seed: Option<u64>,
    /// A script parameter, repeatable. The script sees it as `params.KEY` (and `param("KEY",
    /// default)`); integers, floats and true/false are parsed as such, anything else is a string.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, ParamValue)>,
    /// Keep the run directory (node data, logs, configs) even after a pass, and print its path.
    #[arg(long)]
    pub keep: bool,
    /// Write report.json and junit.xml into this directory (the HTML report is not implemented
    /// yet).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Write a JUnit XML report to this file: one testsuite per run, one testcase per
    /// expectation and per failed workload.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON report to this file: the script, its exit code and every run report.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Options of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The scripts to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// A script parameter, as for `run`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, ParamValue)>,
}

/// Options of `devnode`.
#[derive(Debug, Args)]
pub struct DevnodeArgs {
    /// The node's YAML config.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// The backends `plan.run()` can deploy to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeployerChoice {
    /// Nodes as local child processes.
    Local,
    /// Docker Compose containers.
    Compose,
    /// A Kubernetes namespace.
    K8s,
}

impl DeployerChoice {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Compose => "compose",
            Self::K8s => "k8s",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn set_values_are_typed() {
        let cli = Cli::try_parse_from([
            "nomos-script",
            "run",
            "x.rhai",
            "--set",
            "nodes=4",
            "--set",
            "name=abc",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(args.set[0], ("nodes".to_string(), ParamValue::Int(4)));
        assert_eq!(
            args.set[1],
            ("name".to_string(), ParamValue::Str("abc".into()))
        );
    }
}
