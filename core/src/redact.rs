//! `Debug` forms of secrets (tokens, stream keys in ingest URLs), so that a config
//! printed with `{:?}` — by an app, a panic message or a `tracing` field — never shows
//! them. The configs of this crate use them; wrappers of those configs (the bindings'
//! option records) can too.

use std::fmt;

use crate::rtmp::RtmpUrl;

/// A secret as its length only.
pub struct Hidden<'a>(pub &'a str);

impl fmt::Debug for Hidden<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<hidden, {} bytes>", self.0.len())
    }
}

/// An optional secret as its length only.
pub struct HiddenOption<'a>(pub Option<&'a str>);

impl fmt::Debug for HiddenOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(secret) => write!(f, "Some({:?})", Hidden(secret)),
            None => f.write_str("None"),
        }
    }
}

/// An ingest URL with its stream key masked (all of it hidden when it does not parse).
pub struct IngestUrl<'a>(pub &'a str);

impl fmt::Debug for IngestUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match RtmpUrl::parse(self.0) {
            Ok(url) => write!(f, "\"{url:?}\""),
            Err(_) => write!(f, "<unparsable URL, {:?}>", Hidden(self.0)),
        }
    }
}

/// Ingest URLs with their stream keys masked.
pub struct IngestUrls<'a>(pub &'a [String]);

impl fmt::Debug for IngestUrls<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|url| IngestUrl(url)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_show_as_their_length_and_keys_are_masked() {
        assert_eq!(format!("{:?}", Hidden("s3cret")), "<hidden, 6 bytes>");
        assert_eq!(format!("{:?}", HiddenOption(None)), "None");
        let url = "rtmp://ingest.example.com/app/live_123_sk";
        let shown = format!("{:?}", IngestUrls(&[url.into(), "not a url sk".into()]));
        assert!(!shown.contains("sk"), "{shown}");
        assert!(
            shown.contains("rtmp://ingest.example.com/app/<key>"),
            "{shown}"
        );
    }

    #[test]
    #[cfg(all(feature = "chat", feature = "whep"))]
    fn no_config_shows_a_secret_in_its_debug_form() {
        use crate::session::{BroadcastConfig, SessionChat, WatchConfig};
        let chat = SessionChat::new("ws://chat.example.com/chat", "room", "chat-jwt-SECRET");
        let mut broadcast = BroadcastConfig::new("rtmps://ingest.example.com/app/key-SECRET");
        broadcast.backup_urls = vec!["rtmp://backup.example.com/app/key-SECRET?x=1".into()];
        broadcast.chat = Some(chat.clone());
        let mut watch = WatchConfig::new("https://whep.example.com/whep/room");
        watch.play.token = Some("whep-bearer-SECRET".into());
        watch.chat = Some(chat);
        for shown in [format!("{broadcast:?}"), format!("{watch:?}")] {
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(shown.contains("<hidden,"), "{shown}");
        }
        #[cfg(feature = "server")]
        {
            let response = crate::hub::api::TokenResponse {
                token: "guest-jwt-SECRET".into(),
                chat: "ws://x/chat".into(),
                user_id: "guest:a".into(),
                name: "a (guest)".into(),
                room: "room".into(),
            };
            assert!(!format!("{response:?}").contains("SECRET"));
        }
    }
}
