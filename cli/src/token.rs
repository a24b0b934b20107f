//! `streamhub token`: signs a chat token for a hub's secret.

use std::process::ExitCode;

use clap::Args;
use streamhub::chat::protocol::Role;
use streamhub::chat::server::{Claims, TokenKeys};

/// Arguments of `streamhub token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The hub's HS256 secret.
    #[arg(long, env = "STREAMHUB_SECRET", hide_env_values = true)]
    secret: String,
    /// The user id (also the display name unless --name is given).
    #[arg(long)]
    user: String,
    /// Display name, 1-40 characters.
    #[arg(long)]
    name: Option<String>,
    /// viewer, broadcaster or moderator.
    #[arg(long, default_value = "viewer")]
    role: Role,
    /// A room the token may join (repeatable); every room when none is given.
    #[arg(long = "room", value_name = "ROOM")]
    rooms: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
}

/// Runs the command; `Err` is the one-line error to print.
pub fn run(args: TokenArgs) -> Result<ExitCode, String> {
    if args.secret.is_empty() {
        return Err("--secret must not be empty".into());
    }
    let rooms = if args.rooms.is_empty() {
        vec!["*".to_string()]
    } else {
        args.rooms
    };
    let mut claims = Claims::new(&args.user, args.role, rooms, args.ttl);
    if let Some(name) = args.name {
        claims.name = name;
    }
    let name_chars = claims.name.chars().count();
    if args.user.is_empty() || !(1..=40).contains(&name_chars) {
        return Err("--user must be set and the name be 1-40 characters".into());
    }
    let token = TokenKeys::hs256(args.secret.as_bytes()).issue(&claims)?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
