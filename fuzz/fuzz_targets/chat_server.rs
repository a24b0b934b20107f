//! Chat frames on the server: three clients' text frames, one at a time, through the
//! connection's parsing and dispatch into rooms (join, send, history, moderation...)
//! of one in-process `ChatServer`, as the connection task runs them.
//!
//! Input: lines; a line's first byte picks the client (byte % 3, so `0`, `1`, `2`), the
//! rest is its frame. Placeholders (`streamhub_fuzz::chat`) become signed tokens. A
//! client the server hung up on comes back as a new connection.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use streamhub::_internal_test_exports::chat_server_fuzzing::DetachedConnection;
use streamhub::chat::protocol::ServerFrame;
use streamhub::chat::server::{ChatServer, ChatServerConfig};
use streamhub_fuzz::chat::{SECRET, Tokens};

const CLIENTS: usize = 3;

fn tokens() -> &'static Tokens {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    TOKENS.get_or_init(Tokens::new)
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime")
    })
}

/// Every frame the server sends must be one the client library reads.
fn check(frames: Vec<String>) {
    for text in frames {
        let frame: ServerFrame = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the client cannot read {text:?}: {e}"));
        assert!(
            frame != ServerFrame::Unknown,
            "an unknown frame type: {text:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let tokens = tokens();
    let server = ChatServer::new(ChatServerConfig::with_secret(SECRET));
    runtime().block_on(async {
        let mut clients: Vec<DetachedConnection> = (0..CLIENTS)
            .map(|_| DetachedConnection::new(&server))
            .collect();
        for line in data.split(|&b| b == b'\n') {
            let Some((&who, frame)) = line.split_first() else {
                continue;
            };
            // A binary frame gets a fixed refusal before any parsing.
            let Ok(text) = std::str::from_utf8(frame) else {
                continue;
            };
            let who = usize::from(who) % CLIENTS;
            let text = tokens.substitute(text);
            let ended = clients[who].text(&text).await;
            for client in &mut clients {
                check(client.take_frames());
            }
            if ended {
                clients[who] = DetachedConnection::new(&server);
            }
        }
    });
});
