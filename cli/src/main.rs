//! `streamhub`: the command-line face of the StreamHub SDK.

mod chat;
mod demo;
mod hub;
mod play;
mod progress;
mod publish;
mod record;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// StreamHub: go live over RTMP/RTMPS, watch over WHEP and chat, from the command line.
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
    /// Chat in a room: each stdin line is sent; each message received is printed.
    Chat(chat::ChatArgs),
    /// Run the local development server: RTMP ingest, WHEP egress, chat, a web page.
    Hub(hub::HubArgs),
    /// Everything at once: a hub, the built-in clip published, watched and chatted about.
    Demo(demo::DemoArgs),
    /// Print a chat token signed with a hub's secret.
    Token(token::TokenArgs),
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
        Command::Chat(args) => chat::run(args),
        Command::Hub(args) => hub::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Token(args) => token::run(args),
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
