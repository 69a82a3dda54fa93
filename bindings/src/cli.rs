//! Command line: raw arguments (clap derive; the doc comments are the help text) turned into
//! validated settings before anything runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::params::{ParamValue, parse_set};

/// Scripted testnets for Logos Blockchain: a scenario script builds a plan (topology, workloads,
/// expectations, duration); `run` deploys it, drives the workloads, judges the expectations, tears
/// everything down and exits with a code that says what happened.
///
/// Exit codes: 0 passed, 1 a scenario failed (an expectation or a workload), 2 script or usage
/// error (parse or runtime, a bad `--set` value, an unknown testnet name; with `--strict`, a run
/// that checks nothing), 3 infrastructure error (deploy, readiness), 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "nomos-script", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The node implementation: `reference` (the default), `logos` (the real node:
    /// LOGOS_BLOCKCHAIN_NODE_BIN and LOGOS_BLOCKCHAIN_NODE_CONFIG_GENERATOR) or `template`
    /// (another binary with LOGOS_BLOCKCHAIN_NODE_CONFIG_TEMPLATE).
    #[arg(long, global = true, value_name = "KIND")]
    pub node_kind: Option<String>,
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
    /// Shrink a failing seeded run: remove fault events from its executed timeline (delta
    /// debugging), then shorten the run and lower the node count, checking each candidate by
    /// running it; write the smallest run that still fails as a runnable .rhai (the remaining
    /// faults as an explicit schedule, the seed and the expectation that failed).
    Shrink(ShrinkArgs),
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
    /// Bring a testnet up and leave it running: the script's topology (or the testnet it
    /// deploys) is handed to a detached supervisor process; prints TESTNET_ENDPOINTS once ready.
    Up(UpArgs),
    /// List live testnets: name, deployer, nodes, heights (read live), age, status ("stale" when
    /// the supervisor is gone).
    Ls,
    /// Tear a live testnet down completely: nodes, proxies, run dir, state file.
    Down(DownArgs),
    /// Interactive session: the whole script surface, `net` bound to an attached testnet (or to
    /// what FILE deploys), `:help` for the helpers.
    Repl(ReplArgs),
    /// The supervisor process behind `up` (started by `up`, not by hand).
    #[command(hide = true)]
    Supervise(SuperviseArgs),
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
    /// With --run-examples: run the --guide blocks too (by default they are only checked): a
    /// block that builds `plan` or `builder` is run to its verdict on its own testnet (a builder
    /// for 10 s), any other against the shared testnet; `no_run` blocks are only checked.
    #[arg(long, requires = "run_examples")]
    pub run_guides: bool,
    /// With --run-examples: only the --guide blocks, not the reference's and the stdlib's.
    #[arg(long, requires = "run_examples")]
    pub guides_only: bool,
    /// With --run-examples: the seed of every plan and testnet that sets none (default 0).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "run_examples")]
    pub seed: u64,
}

/// Options of `gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Where run dirs live (default: the system temp dir, honouring TMPDIR).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Only list what would be removed (every pid, run id, dir, container, network, volume and
    /// image), and what is left alone and why.
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove run dirs kept on purpose (after a failure or with --keep); without it they
    /// are only listed.
    #[arg(long)]
    pub kept: bool,
    /// With --kept: only kept dirs kept longer ago than DURATION (`1d`, `12h`).
    #[arg(long, value_name = "DURATION", requires = "kept", value_parser = humantime::parse_duration)]
    pub older_than: Option<std::time::Duration>,
}

/// Options of `shrink`.
#[derive(Debug, Args)]
pub struct ShrinkArgs {
    /// The scenario script (.rhai) whose run fails on --seed.
    pub file: PathBuf,
    /// The seed of the failing run.
    #[arg(long)]
    pub seed: u64,
    /// Reruns per candidate: a candidate counts as failing when it fails the same expectation
    /// in most of them (the reruns stop once the majority is known).
    #[arg(long, value_name = "R", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=25))]
    pub runs: u32,
    /// Where to write the shrunk scenario (default: FILE's name with `.shrunk.rhai`, beside it).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Backend the runs deploy on.
    #[arg(long, value_enum, default_value_t = DeployerChoice::Local)]
    pub deployer: DeployerChoice,
    /// A script parameter, as for `run`: given to every run of the search (and named in the
    /// written file's `Run it:` line).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, ParamValue)>,
    /// Most runs the search may make in all (the original run included); when reached, the
    /// smallest failing run found so far is written.
    #[arg(long, value_name = "N", default_value_t = 150, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_runs: u32,
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
    /// default)`, which refuses a value not of the default's type); integers, floats and
    /// true/false are parsed as such, anything else is a string.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, ParamValue)>,
    /// Keep the run directory (node data, logs, configs) even after a pass, and print its path.
    #[arg(long)]
    pub keep: bool,
    /// Write a report directory: index.html (one self-contained file with plots of heights,
    /// transactions, inclusion latency, faults and peers over time), report.json, junit.xml, and
    /// each node's config and logs under runs/<run id>/node-<i>/.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Run the script N times, with seeds --seed, --seed+1, ... (random base without --seed),
    /// then print the pass rate, the flake rate, the failure rate with its 95% Wilson interval
    /// (overall and per expectation) and the spread (min/median/max) of the run duration, final
    /// height, share of transactions included and median inclusion latency. Exits 0 only when
    /// every repetition passed, 1 otherwise (unless --max-failure-rate decides).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repeat: u32,
    /// Run the script up to N times (seeds as for --repeat) and stop at the first repetition
    /// that fails, printing its seed and the command that replays it. Exits 1 when one failed,
    /// 0 when all N passed.
    #[arg(long, value_name = "N", conflicts_with_all = ["repeat", "max_failure_rate"], value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub until_fail: Option<u32>,
    /// Decide the repetition from the failure rate's 95% Wilson interval instead of "every
    /// repetition passed": exit 0 only when the interval's upper bound is below P (a share,
    /// `0.05`, or a percentage, `5%`); otherwise exit 1, saying whether the rate is above P for
    /// certain or how many runs in all would be needed to show it below.
    #[arg(long, value_name = "P", value_parser = parse_rate)]
    pub max_failure_rate: Option<f64>,
    /// Run up to J repetitions at a time (--repeat, --until-fail), each as its own child
    /// process of this binary with its own seed, testnet, ports and run dir. Not with
    /// --attach-endpoints (the repetitions would share one testnet's wallets).
    #[arg(long, value_name = "J", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: u32,
    /// Write a JUnit XML report to this file: one testsuite per run, one testcase per
    /// expectation and per failed workload.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON report to this file: the script, its exit code and every run report.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Run every plan against a testnet nomos-script did not deploy: FILE lists its node API
    /// URLs (one `http://host:port` a line, or the TESTNET_ENDPOINTS block `up` prints). The
    /// plan's node count is ignored; plans needing node control or network faults are refused;
    /// the nodes are left running.
    #[arg(long, value_name = "FILE", conflicts_with = "deployer")]
    pub attach_endpoints: Option<PathBuf>,
    /// A run that checks nothing is an error (exit 2) instead of a warning: a plan with no
    /// expectation (no built-in, no `with_expectation`, no invariant), or a script that runs no
    /// plan and deploys no testnet.
    #[arg(long)]
    pub strict: bool,
}

/// A failure rate: a share in (0, 1] (`0.05`) or a percentage (`5%`).
fn parse_rate(raw: &str) -> Result<f64, String> {
    let text = raw.trim();
    let (number, scale) = match text.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (text, 1.0),
    };
    let value = number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v / scale);
    match value {
        Some(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!(
            "{raw:?} is not a failure rate: write a share above 0 and at most 1 (0.05) or a percentage (5%)"
        )),
    }
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
    /// A plan that checks nothing (no expectation), or a script that runs no plan, is an error
    /// (exit 2) instead of a warning, as for `run --strict`.
    #[arg(long)]
    pub strict: bool,
}

/// Options of `devnode`.
#[derive(Debug, Args)]
#[command(subcommand_negates_reqs = true)]
pub struct DevnodeArgs {
    /// The node's YAML config.
    #[arg(long, value_name = "FILE", required = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub action: Option<DevnodeAction>,
}

/// What `devnode` does besides running a node.
#[derive(Debug, Subcommand)]
pub enum DevnodeAction {
    /// The reference node's config generator: reads a testnet description (the generator
    /// contract's JSON, see docs/real-node.md) and writes the node's config into its `out_dir`.
    GenConfig {
        /// The description (`testnet.json`).
        description: PathBuf,
    },
}

/// Options of `up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The script: it deploys a testnet (`LocalDeployer().deploy(..)`) or returns a plan or
    /// topology, which is then deployed.
    pub file: PathBuf,
    /// Name of the testnet (letters, digits, `-`, `_`, `.`).
    #[arg(long)]
    pub name: String,
    /// Backend for a returned plan/topology.
    #[arg(long, value_enum, default_value_t = DeployerChoice::Local)]
    pub deployer: DeployerChoice,
    /// A script parameter, as for `run`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, ParamValue)>,
    /// Seed of the plan (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long to wait for the testnet to be ready.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// Options of `down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Name given to `up --name`.
    pub name: String,
}

/// Options of `repl`.
#[derive(Debug, Args)]
pub struct ReplArgs {
    /// Attach to a testnet brought up with `up --name NAME`.
    #[arg(long, value_name = "NAME")]
    pub attach: Option<String>,
    /// Bind `net` to a testnet nomos-script did not deploy: FILE lists its node API URLs (one
    /// `http://host:port` a line, or the TESTNET_ENDPOINTS block `up` prints). Node queries
    /// work; node control and faults are refused; quitting leaves the nodes running.
    #[arg(long, value_name = "FILE", conflicts_with = "attach")]
    pub endpoints: Option<PathBuf>,
    /// A script evaluated first; `net` is bound to the testnet it deploys.
    pub file: Option<PathBuf>,
    /// Backend of `plan.run()` in the session.
    #[arg(long, value_enum, default_value_t = DeployerChoice::Local)]
    pub deployer: DeployerChoice,
    /// A script parameter, as for `run`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, ParamValue)>,
    /// Seed of plans built in the session.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Options of `supervise`.
#[derive(Debug, Args)]
pub struct SuperviseArgs {
    /// State file to write.
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// Name of the testnet.
    #[arg(long)]
    pub name: String,
    /// Backend for a returned plan/topology.
    #[arg(long, value_enum, default_value_t = DeployerChoice::Local)]
    pub deployer: DeployerChoice,
    /// A script parameter.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, ParamValue)>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The script.
    pub file: PathBuf,
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
    fn failure_rates_are_shares_or_percentages() {
        assert_eq!(parse_rate("0.05"), Ok(0.05));
        assert_eq!(parse_rate("5%"), Ok(0.05));
        assert_eq!(parse_rate(" 100 % "), Ok(1.0));
        for bad in ["0", "-0.1", "1.5", "150%", "five", "NaN", "inf", ""] {
            let e = parse_rate(bad).unwrap_err();
            assert!(
                e.contains("not a failure rate") && e.contains("5%"),
                "{bad}: {e}"
            );
        }
        let e = Cli::try_parse_from(["nomos-script", "run", "x.rhai", "--max-failure-rate", "2"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2, "usage error");
        assert!(e.to_string().contains("\"2\" is not a failure rate"), "{e}");
        // --until-fail stops at a failure: counting it against a rate makes no sense
        assert!(
            Cli::try_parse_from([
                "nomos-script",
                "run",
                "x.rhai",
                "--until-fail",
                "5",
                "--max-failure-rate",
                "5%"
            ])
            .is_err()
        );
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
