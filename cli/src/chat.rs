//! `streamhub chat`: each stdin line is sent to a room; each message received is printed.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use streamhub::chat::{ChatClient, ChatConfig, ChatEvent, JoinOutcome, TokenSource};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Arguments of `streamhub chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The chat endpoint, e.g. ws://127.0.0.1:8080/chat.
    url: String,
    /// The room to join.
    #[arg(long)]
    room: String,
    /// The chat token (see `streamhub token`).
    #[arg(long, env = "STREAMHUB_TOKEN", hide_env_values = true)]
    token: String,
    /// Print one JSON object per line (messages and events) instead of text.
    #[arg(long)]
    json: bool,
    /// Keep printing messages after stdin ends, until Ctrl-C.
    #[arg(long)]
    follow: bool,
    /// Seconds allowed for connecting, and for pending messages at the end.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
}

/// Runs the command; `Err` is the one-line error to print.
pub fn run(args: ChatArgs) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(chat(args))
}

async fn chat(args: ChatArgs) -> Result<ExitCode, String> {
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .map_err(|_| format!("invalid --timeout {}", args.timeout))?;
    let mut config = ChatConfig::default();
    config.connect_timeout = timeout;
    config.client_name = "streamhub-cli".into();
    let (client, mut events) =
        ChatClient::connect(&args.url, TokenSource::fixed(args.token.clone()), config)
            .await
            .map_err(|e| e.to_string())?;
    client.join(&args.room).await.map_err(|e| e.to_string())?;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut failures = 0u64;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    client.enqueue(&args.room, &line).await.map_err(|e| e.to_string())?;
                }
                Ok(None) => {
                    stdin_open = false;
                    if !args.follow {
                        break;
                    }
                }
                Err(e) => return Err(format!("reading stdin: {e}")),
            },
            event = events.next() => match event {
                Some(ChatEvent::Failed(error)) => return Err(error.to_string()),
                Some(event) => failures += show(&event, args.json),
                None => return Err("the chat client stopped".into()),
            },
            _ = &mut interrupted => break,
        }
    }
    // Pending messages get their acknowledgements (bounded by --timeout); their events
    // are printed as they arrive.
    let closing = client.close(timeout);
    tokio::pin!(closing);
    let stats = loop {
        tokio::select! {
            stats = &mut closing => break stats.map_err(|e| e.to_string())?,
            Some(event) = events.next() => failures += show(&event, args.json),
        }
    };
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(100), events.next()).await
    {
        failures += show(&event, args.json);
    }
    if failures > 0 {
        return Err(format!(
            "{failures} message(s) were not published ({} sent)",
            stats.sent
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints an event; 1 if it says a message was not published.
fn show(event: &ChatEvent, as_json: bool) -> u64 {
    print_event(event, as_json);
    u64::from(matches!(event, ChatEvent::SendFailed { .. }))
}

fn print_event(event: &ChatEvent, as_json: bool) {
    if as_json {
        if let Some(value) = event_json(event) {
            println!("{value}");
        }
        return;
    }
    match event {
        ChatEvent::Message(m) if m.deleted => println!("[{}] {} (deleted)", m.seq, m.user.name),
        ChatEvent::Message(m) => println!("[{}] {}: {}", m.seq, m.user.name, m.text),
        ChatEvent::SendFailed { error, .. } => eprintln!("not sent: {error}"),
        ChatEvent::Disconnected { reason, retry_in } => {
            eprintln!("disconnected ({reason}); reconnecting in {retry_in:?}")
        }
        ChatEvent::Joined {
            room,
            viewers,
            outcome,
            ..
        } => {
            eprintln!("joined {room} ({viewers} here){}", outcome_note(outcome))
        }
        ChatEvent::Kicked { room, error } => eprintln!("removed from {room}: {error}"),
        _ => {}
    }
}

fn outcome_note(outcome: &JoinOutcome) -> String {
    match outcome {
        JoinOutcome::Fresh | JoinOutcome::Recovered => String::new(),
        JoinOutcome::Missed(range) => format!(
            "; messages {}-{} could not be recovered",
            range.start(),
            range.end()
        ),
        JoinOutcome::EpochChanged => "; the server lost its history".into(),
        _ => String::new(),
    }
}

fn event_json(event: &ChatEvent) -> Option<serde_json::Value> {
    Some(match event {
        ChatEvent::Message(m) => json!({
            "type": "message", "room": m.room, "epoch": m.epoch, "seq": m.seq, "id": m.id,
            "ts": m.ts, "user": m.user.name, "user_id": m.user.id, "role": m.user.role,
            "text": m.text, "client_msg_id": m.client_msg_id, "deleted": m.deleted,
        }),
        ChatEvent::Connected {
            user,
            session,
            reconnect,
        } => json!({
            "type": "connected", "user": user.name, "session": session, "reconnect": reconnect,
        }),
        ChatEvent::Disconnected { reason, retry_in } => json!({
            "type": "disconnected", "reason": reason, "retry_in_ms": retry_in.as_millis() as u64,
        }),
        ChatEvent::Joined {
            room,
            viewers,
            outcome,
            ..
        } => json!({
            "type": "joined", "room": room, "viewers": viewers,
            "outcome": match outcome {
                JoinOutcome::Fresh => "fresh",
                JoinOutcome::Recovered => "recovered",
                JoinOutcome::Missed(_) => "missed",
                JoinOutcome::EpochChanged => "epoch_changed",
                _ => "other",
            },
        }),
        ChatEvent::Sent {
            room,
            client_msg_id,
            result,
        } => json!({
            "type": "sent", "room": room, "client_msg_id": client_msg_id, "seq": result.seq,
        }),
        ChatEvent::SendFailed {
            room,
            client_msg_id,
            error,
        } => json!({
            "type": "send_failed", "room": room, "client_msg_id": client_msg_id,
            "error": error.to_string(),
            "code": error.refusal().map(|e| e.code.as_str()),
        }),
        ChatEvent::Viewers { room, count } => {
            json!({"type": "viewers", "room": room, "count": count})
        }
        ChatEvent::Deleted { room, seq } => json!({"type": "deleted", "room": room, "seq": seq}),
        ChatEvent::Kicked { room, error } => json!({
            "type": "kicked", "room": room, "code": error.code.as_str(),
        }),
        _ => return None,
    })
}
