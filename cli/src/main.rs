//! `streamhub`: the command-line face of the StreamHub SDK.

mod chat;
mod demo;
mod hub;
mod hub_limits;
mod logging;
mod play;
mod progress;
mod publish;
mod record;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// StreamHub: go live over RTMP/RTMPS, watch over WHEP and chat, from the command line.
#[derive(Debug, Parser)]
#[command(name = "streamhub", version, about, after_help = logging::HELP)]
struct Cli {
    /// More logs on stderr: -v steps (info), -vv details (debug), -vvv everything.
    /// STREAMHUB_LOG or RUST_LOG take a filter instead.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish an FLV file (H.264 + AAC) to an RTMP or RTMPS ingest.
    #[command(after_help = logging::HELP)]
    Publish(publish::PublishArgs),
    /// Watch a WHEP stream over WebRTC, optionally recording its video.
    #[command(after_help = logging::HELP)]
    Play(play::PlayArgs),
    /// Chat in a room: each stdin line is sent; each message received is printed.
    #[command(after_help = logging::HELP)]
    Chat(chat::ChatArgs),
    /// Run the local development server: RTMP ingest, WHEP egress, chat, a web page.
    #[command(after_help = logging::HELP)]
    Hub(Box<hub::HubArgs>),
    /// Everything at once: a hub, the built-in clip published, watched and chatted about.
    #[command(after_help = logging::HELP)]
    Demo(demo::DemoArgs),
    /// Print a chat token signed with a hub's secret.
    #[command(after_help = logging::HELP)]
    Token(token::TokenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = logging::init(cli.verbose).and_then(|()| match cli.command {
        Command::Publish(args) => publish::run(args),
        Command::Play(args) => play::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Hub(args) => hub::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Token(args) => token::run(args),
    });
    match result {
        Ok(code) => code,
        Err(message) => {
            // One line, so scripts can show it as is.
            eprintln!("error: {}", message.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
