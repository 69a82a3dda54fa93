//! Live testnets from the command line: `up` (a detached supervisor owns the testnet), `ls`,
//! `down`, the stale-state part of `gc`, and the script functions `attach` and `fault_log`.
//! The supervisor's control API and the attached `RemoteTestnet` live in `engine::live`.

pub mod manage;
pub mod script;
pub mod supervise;

pub use manage::{down, gc_stale, ls};
pub use supervise::{SuperviseOptions, UpOptions, supervise, up};

use crate::cli::Command;

/// Runs the live-testnet subcommands (`up`, `ls`, `down`, `repl`, `supervise`), each with its own
/// runtime and Ctrl-C handling; `None` for any other command.
pub fn run_command(command: &Command) -> Option<i32> {
    let small_runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
    };
    Some(match command {
        Command::Repl(a) => crate::repl::run(crate::repl::ReplOptions {
            attach: a.attach.clone(),
            endpoints: a.endpoints.clone(),
            file: a.file.clone(),
            deployer: a.deployer,
            seed: a.seed,
            params: a.set.clone(),
        }),
        Command::Up(a) => up(&UpOptions {
            file: a.file.clone(),
            name: a.name.clone(),
            deployer: a.deployer,
            params: a.set.clone(),
            seed: a.seed,
            timeout: a.timeout,
        }),
        Command::Supervise(a) => supervise(&SuperviseOptions {
            state: a.state.clone(),
            up: UpOptions {
                file: a.file.clone(),
                name: a.name.clone(),
                deployer: a.deployer,
                params: a.set.clone(),
                seed: a.seed,
                timeout: std::time::Duration::ZERO,
            },
        }),
        Command::Ls | Command::Down(_) => match small_runtime() {
            Ok(rt) => match command {
                Command::Down(a) => down(rt.handle(), &a.name),
                _ => ls(rt.handle()),
            },
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                crate::exit::INFRA_ERROR
            }
        },
        _ => return None,
    })
}
