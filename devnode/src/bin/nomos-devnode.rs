//! `nomos-devnode devnode --config FILE` (or `--config FILE`): runs one
//! reference node until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: nomos-devnode [devnode] --config FILE";

fn parse(args: &[String]) -> Result<PathBuf, String> {
    let mut args = args.iter().map(String::as_str).peekable();
    if args.peek() == Some(&"devnode") {
        args.next();
    }
    let mut config = None;
    while let Some(arg) = args.next() {
        match arg {
            "--config" => {
                let v = args.next().ok_or("--config needs a FILE")?;
                config = Some(PathBuf::from(v));
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => match other.strip_prefix("--config=") {
                Some(v) => config = Some(PathBuf::from(v)),
                None => return Err(format!("unexpected argument {other:?}")),
            },
        }
    }
    config.ok_or_else(|| "missing --config FILE".to_owned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match parse(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match devnode::run_from_file(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
