//! The command's logs: `-v`/`-vv`/`-vvv`, or a filter in `STREAMHUB_LOG` / `RUST_LOG`.
//!
//! Logs go to stderr (stdout stays for `--json` reports and recordings). Without a flag
//! or a variable nothing is logged: errors still reach the user as the command's one
//! `error:` line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// What `--help` says about logs (shown after the options of every command).
pub const HELP: &str = "\
Logs (to stderr):
  -v     what the command does, step by step (info; other crates: errors)
  -vv    details for a bug report (debug; other crates: info)
  -vvv   everything (trace; other crates: debug)
  STREAMHUB_LOG or RUST_LOG (in that order) take a filter instead, e.g.
  STREAMHUB_LOG=streamhub::whep=debug,info";

/// The filter for `verbosity` (`-v` count), unless an environment variable sets one.
fn filter(verbosity: u8, env: Option<String>) -> Result<EnvFilter, String> {
    if let Some(spec) = env.filter(|s| !s.trim().is_empty()) {
        return EnvFilter::try_new(&spec).map_err(|e| format!("log filter {spec:?}: {e}"));
    }
    let spec = match verbosity {
        0 => "off",
        1 => "error,streamhub=info,streamhub_cli=info",
        2 => "info,streamhub=debug,streamhub_cli=debug",
        _ => "debug,streamhub=trace,streamhub_cli=trace",
    };
    EnvFilter::try_new(spec).map_err(|e| format!("log filter {spec:?}: {e}"))
}

/// The environment's filter: `STREAMHUB_LOG`, else `RUST_LOG`.
fn env_filter() -> Option<String> {
    ["STREAMHUB_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

/// Installs the stderr logger; `Err` is a bad filter, said in one line.
pub fn init(verbosity: u8) -> Result<(), String> {
    let filter = filter(verbosity, env_filter())?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbosity >= 2)
        .try_init()
        .map_err(|e| format!("starting the logger: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_levels_turn_our_logs_on() {
        assert_eq!(filter(0, None).unwrap().to_string(), "off");
        assert!(
            filter(1, None)
                .unwrap()
                .to_string()
                .contains("streamhub=info")
        );
        assert!(
            filter(2, None)
                .unwrap()
                .to_string()
                .contains("streamhub=debug")
        );
        assert!(
            filter(7, None)
                .unwrap()
                .to_string()
                .contains("streamhub=trace")
        );
    }

    #[test]
    fn the_environment_wins_and_a_bad_filter_is_an_error() {
        let f = filter(0, Some("streamhub::whep=debug".into())).unwrap();
        assert_eq!(f.to_string(), "streamhub::whep=debug");
        assert!(filter(2, Some("streamhub=[".into())).is_err());
        assert_eq!(filter(0, Some("  ".into())).unwrap().to_string(), "off");
    }
}
