//! The answer to a connectivity check that comes before the WHEP answer.
//!
//! RFC 8445 §7.3 (RFC 5245 §7.2 said it plainly: "the agent MUST immediately generate a
//! response") has an offerer answer a Binding request that arrives before the answer:
//! the response needs only the offerer's own password. webrtc-rs's agent does not start
//! before the answer, so [`super::early_checks`] answers such checks with this.
//!
//! It matters beyond the check itself: libwebrtc stops gathering once a connection is
//! writable, and a WHEP server built on it that waits for complete gathering before it
//! answers (the relay of `tests/peers/chromium_whep_sender.mjs`) otherwise waits out
//! its gathering timeout, 110-130 ms on a loopback-only host, for a check it never gets
//! answered. aiortc answers early checks and gets that answer within 15 ms.

use std::fmt;
use std::net::SocketAddr;

use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::crypto::RTCCrypto;
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter};
use rtc::stun::textattrs::TextAttribute;
use rtc::stun::xoraddr::XorMappedAddress;

/// This end's ICE credentials, as its offer gave them.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalCredentials {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd`: a secret, never shown by `Debug`.
    pub pwd: String,
}

impl fmt::Debug for LocalCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCredentials")
            .field("ufrag", &self.ufrag)
            .field("pwd", &"<redacted>")
            .finish()
    }
}

impl LocalCredentials {
    /// The first `a=ice-ufrag` and `a=ice-pwd` of `sdp` (one BUNDLE transport).
    pub fn from_sdp(sdp: &str) -> Option<Self> {
        let value = |prefix: &str| {
            sdp.lines()
                .find_map(|line| line.trim_end().strip_prefix(prefix))
                .map(str::to_owned)
        };
        Some(Self {
            ufrag: value("a=ice-ufrag:")?,
            pwd: value("a=ice-pwd:")?,
        })
    }
}

/// The Binding success response to `request` from `from`, when it is a Binding request
/// meant for `local` (USERNAME `local-ufrag:…`, MESSAGE-INTEGRITY keyed with the local
/// password, FINGERPRINT); `None` for anything else.
pub fn answer(
    request: &[u8],
    from: SocketAddr,
    local: &LocalCredentials,
    crypto: &dyn RTCCrypto,
) -> Option<Vec<u8>> {
    let mut m = Message::new();
    m.unmarshal_binary(request).ok()?;
    if m.typ != BINDING_REQUEST {
        return None;
    }
    FINGERPRINT.check(&m).ok()?;
    let username = TextAttribute::get_from_as(&m, ATTR_USERNAME).ok()?;
    let (ours, _theirs) = username.text.split_once(':')?;
    if ours != local.ufrag {
        return None;
    }
    MessageIntegrity::check(&mut m, local.pwd.as_bytes(), crypto).ok()?;
    let mut response = Message::new();
    let setters: [Box<dyn Setter + '_>; 5] = [
        Box::new(m.clone()),
        Box::new(BINDING_SUCCESS),
        Box::new(XorMappedAddress {
            ip: from.ip(),
            port: from.port(),
        }),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            local.pwd.clone(),
            crypto,
        )),
        Box::new(FINGERPRINT),
    ];
    response.build(&setters).ok()?;
    Some(response.raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::attributes::ATTR_ICE_CONTROLLED;
    use rtc::stun::message::{Getter, TransactionId};

    fn credentials() -> LocalCredentials {
        LocalCredentials {
            ufrag: "puVq".into(),
            pwd: "exusaaxADqEKwpMFlrClGFKkuRdWcLCH".into(),
        }
    }

    /// A check as the sender builds it: to `ufrag`, keyed with `pwd`.
    fn check(ufrag: &str, pwd: &str, crypto: &dyn RTCCrypto) -> Message {
        let mut m = Message::new();
        m.build(&[
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(TextAttribute::new(ATTR_USERNAME, format!("{ufrag}:NGKO"))),
            Box::new(rtc::stun::attributes::RawAttribute {
                typ: ATTR_ICE_CONTROLLED,
                length: 8,
                value: vec![1; 8],
            }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                pwd.into(),
                crypto,
            )),
            Box::new(FINGERPRINT),
        ])
        .expect("a check");
        m
    }

    #[test]
    fn a_check_meant_for_us_is_answered_with_its_source_address() {
        let provider = rtc::stun::crypto::default_provider().expect("a crypto provider");
        let crypto = provider.crypto();
        let local = credentials();
        let request = check(&local.ufrag, &local.pwd, crypto);
        let from: SocketAddr = "127.0.0.1:46461".parse().expect("address");
        let raw = answer(&request.raw, from, &local, crypto).expect("an answer");

        let mut response = Message::new();
        response.unmarshal_binary(&raw).expect("a STUN message");
        assert_eq!(response.typ, BINDING_SUCCESS);
        assert_eq!(response.transaction_id, request.transaction_id);
        FINGERPRINT.check(&response).expect("a fingerprint");
        MessageIntegrity::check(&mut response, local.pwd.as_bytes(), crypto)
            .expect("keyed with our password");
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&response).expect("XOR-MAPPED-ADDRESS");
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from);
    }

    #[test]
    fn checks_for_someone_else_or_forged_are_not_answered() {
        let provider = rtc::stun::crypto::default_provider().expect("a crypto provider");
        let crypto = provider.crypto();
        let local = credentials();
        let from: SocketAddr = "127.0.0.1:46461".parse().expect("address");
        let other_ufrag = check("zzzz", &local.pwd, crypto);
        assert!(answer(&other_ufrag.raw, from, &local, crypto).is_none());
        let wrong_key = check(&local.ufrag, "not-our-password-at-all-00000000", crypto);
        assert!(answer(&wrong_key.raw, from, &local, crypto).is_none());
        let mut flipped = check(&local.ufrag, &local.pwd, crypto).raw;
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(answer(&flipped, from, &local, crypto).is_none());
        assert!(answer(&[0u8; 12], from, &local, crypto).is_none());
    }

    #[test]
    fn credentials_come_from_the_offer_and_hide_the_password() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:puVq\r\n\
                   a=ice-pwd:exusaaxADqEKwpMFlrClGFKkuRdWcLCH\r\n";
        let local = LocalCredentials::from_sdp(sdp).expect("credentials");
        assert_eq!(local, credentials());
        assert!(!format!("{local:?}").contains(&local.pwd));
        assert!(LocalCredentials::from_sdp("v=0\r\n").is_none());
    }
}
