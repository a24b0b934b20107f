//! `streamhub`: the command-line face of the StreamHub SDK.

mod play;
mod progress;
mod publish;
mod record;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// StreamHub: go live over RTMP/RTMPS and watch over WHEP from the command line.
#[derive(Debug, Parser)]
#[command(name = "streamhub", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish an FLV file (H.264 + AAC) to an RTMP or RTMPS ingest.
    Publish(publish::PublishArgs),
    /// Watch a WHEP stream over WebRTC, optionally recording its video.
    Play(play::PlayArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STREAMHUB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Publish(args) => publish::run(args),
        Command::Play(args) => play::run(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            // One line, so scripts can show it as is.
            eprintln!("error: {}", message.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
