//! Trickle ICE and ICE restart fragments (`application/trickle-ice-sdpfrag`, RFC 8840) as
//! WHIP and WHEP use them (RFC 9725 §4.3): the ICE credentials, candidates and
//! end-of-candidates of one session, carried by PATCH; and the full descriptions rewritten
//! with a fragment's credentials and candidates, so that the WebRTC stack can apply an
//! ICE restart negotiated by fragments as it would one negotiated by whole descriptions.
//!
//! Pure text work: no I/O, no WebRTC stack.

use std::fmt::Write as _;

/// The ICE part of a description: credentials, candidates, end of candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceFragment {
    /// `a=ice-ufrag`, when the fragment carries credentials (an ICE restart, or the
    /// generation its candidates belong to).
    pub ufrag: Option<String>,
    /// `a=ice-pwd`.
    pub pwd: Option<String>,
    /// The media section (`a=mid`) the candidates were gathered for; with BUNDLE, the
    /// first one.
    pub mid: Option<String>,
    /// The candidates, each as the value of an `a=candidate:` line (without it).
    pub candidates: Vec<String>,
    /// `a=end-of-candidates`: gathering is complete.
    pub end_of_candidates: bool,
}

/// Why a fragment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad ICE fragment: {0}")]
pub struct FragmentError(pub String);

/// Longest fragment read (a few hundred candidates).
pub const MAX_FRAGMENT_BYTES: usize = 16 * 1024;

impl IceFragment {
    /// Reads an `application/trickle-ice-sdpfrag` body. Lines it has no use for
    /// (`m=`, `a=group`, `a=ice-options`) are skipped; a malformed attribute is an error.
    pub fn parse(text: &str) -> Result<IceFragment, FragmentError> {
        if text.len() > MAX_FRAGMENT_BYTES {
            return Err(FragmentError(format!(
                "{} bytes, more than {MAX_FRAGMENT_BYTES}",
                text.len()
            )));
        }
        let mut fragment = IceFragment::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Some(attribute) = line.strip_prefix("a=") else {
                if line.starts_with("m=") || line.len() > 1 && line.as_bytes()[1] == b'=' {
                    continue;
                }
                return Err(FragmentError(format!("not an SDP line: {line:?}")));
            };
            let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
            let token = |what: &str| {
                let value = value.trim();
                if value.is_empty() || value.contains(char::is_whitespace) {
                    Err(FragmentError(format!("{what} {value:?}")))
                } else {
                    Ok(value.to_string())
                }
            };
            match name {
                "ice-ufrag" => fragment.ufrag = Some(token("ice-ufrag")?),
                "ice-pwd" => fragment.pwd = Some(token("ice-pwd")?),
                "mid" if fragment.mid.is_none() => fragment.mid = Some(token("mid")?),
                "candidate" => {
                    if value.split_whitespace().count() < 8 {
                        return Err(FragmentError(format!("candidate {value:?}")));
                    }
                    fragment.candidates.push(value.trim().to_string());
                }
                "end-of-candidates" => fragment.end_of_candidates = true,
                _ => {}
            }
        }
        if fragment.ufrag.is_some() != fragment.pwd.is_some() {
            return Err(FragmentError(
                "ice-ufrag without ice-pwd, or the reverse".into(),
            ));
        }
        Ok(fragment)
    }

    /// The ICE part of a whole description: its (first) credentials, the candidates and
    /// end-of-candidates of its first media section (all of them, with BUNDLE).
    pub fn from_description(sdp: &str) -> IceFragment {
        let mut fragment = IceFragment::default();
        let mut sections = 0;
        for line in sdp.lines().map(str::trim) {
            if line.starts_with("m=") {
                sections += 1;
                continue;
            }
            let Some(attribute) = line.strip_prefix("a=") else {
                continue;
            };
            let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
            match name {
                "ice-ufrag" if fragment.ufrag.is_none() => fragment.ufrag = Some(value.into()),
                "ice-pwd" if fragment.pwd.is_none() => fragment.pwd = Some(value.into()),
                "mid" if sections == 1 => fragment.mid = Some(value.into()),
                "candidate" if sections <= 1 => fragment.candidates.push(value.into()),
                "end-of-candidates" if sections <= 1 => fragment.end_of_candidates = true,
                _ => {}
            }
        }
        fragment
    }

    /// The fragment as an `application/trickle-ice-sdpfrag` body (RFC 8840 §4.4):
    /// credentials at session level, then one media section with the candidates.
    pub fn to_body(&self) -> String {
        let mut body = String::new();
        if let (Some(ufrag), Some(pwd)) = (&self.ufrag, &self.pwd) {
            let _ = write!(body, "a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
        }
        body.push_str("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n");
        if let Some(mid) = &self.mid {
            let _ = write!(body, "a=mid:{mid}\r\n");
        }
        for candidate in &self.candidates {
            let _ = write!(body, "a=candidate:{candidate}\r\n");
        }
        if self.end_of_candidates {
            body.push_str("a=end-of-candidates\r\n");
        }
        body
    }

    /// `sdp` with this fragment's credentials in place of its own, and its candidates
    /// (in the first media section, the BUNDLE's transport) in place of the old ones.
    /// How an ICE restart negotiated by PATCH becomes a description the stack applies.
    pub fn apply_to(&self, sdp: &str) -> String {
        let mut out = String::with_capacity(sdp.len() + 100 * self.candidates.len());
        let mut sections = 0;
        let put_candidates = |out: &mut String| {
            for candidate in &self.candidates {
                let _ = write!(out, "a=candidate:{candidate}\r\n");
            }
            if self.end_of_candidates {
                out.push_str("a=end-of-candidates\r\n");
            }
        };
        for line in sdp.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with("m=") {
                sections += 1;
                if sections == 2 {
                    put_candidates(&mut out);
                }
            }
            if trimmed.starts_with("a=candidate:") || trimmed == "a=end-of-candidates" {
                continue;
            }
            match (
                trimmed.strip_prefix("a=ice-ufrag:"),
                trimmed.strip_prefix("a=ice-pwd:"),
            ) {
                (Some(_), _) if self.ufrag.is_some() => {
                    let _ = write!(
                        out,
                        "a=ice-ufrag:{}\r\n",
                        self.ufrag.as_deref().unwrap_or("")
                    );
                }
                (_, Some(_)) if self.pwd.is_some() => {
                    let _ = write!(out, "a=ice-pwd:{}\r\n", self.pwd.as_deref().unwrap_or(""));
                }
                _ => {
                    out.push_str(trimmed);
                    out.push_str("\r\n");
                }
            }
        }
        if sections < 2 {
            put_candidates(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
        a=ice-ufrag:oldU\r\na=ice-pwd:oldPasswordOldPassword\r\n\
        a=candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host\r\na=end-of-candidates\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
        a=ice-ufrag:oldU\r\na=ice-pwd:oldPasswordOldPassword\r\n";

    #[test]
    fn a_description_gives_its_credentials_and_bundle_candidates() {
        let fragment = IceFragment::from_description(OFFER);
        assert_eq!(fragment.ufrag.as_deref(), Some("oldU"));
        assert_eq!(fragment.pwd.as_deref(), Some("oldPasswordOldPassword"));
        assert_eq!(fragment.mid.as_deref(), Some("0"));
        assert_eq!(
            fragment.candidates,
            ["1 1 udp 2130706431 10.0.0.1 5000 typ host"]
        );
        assert!(fragment.end_of_candidates);
    }

    #[test]
    fn a_body_reads_back_as_the_same_fragment() {
        let fragment = IceFragment {
            ufrag: Some("newU".into()),
            pwd: Some("newPasswordNewPassword".into()),
            mid: Some("0".into()),
            candidates: vec!["2 1 udp 2130706431 10.0.0.9 6000 typ host".into()],
            end_of_candidates: true,
        };
        assert_eq!(IceFragment::parse(&fragment.to_body()), Ok(fragment));
    }

    #[test]
    fn an_rfc_8840_example_is_read() {
        // RFC 8840 §4.4's example, with a group line and no credentials.
        let body = "a=group:BUNDLE 1\r\nm=audio 9 RTP/AVP 0\r\na=mid:1\r\n\
            a=candidate:1 1 UDP 2130706431 198.51.100.1 49170 typ host\r\n\
            a=end-of-candidates\r\n";
        let fragment = IceFragment::parse(body).unwrap();
        assert_eq!(fragment.ufrag, None);
        assert_eq!(fragment.mid.as_deref(), Some("1"));
        assert_eq!(fragment.candidates.len(), 1);
        assert!(fragment.end_of_candidates);
    }

    #[test]
    fn malformed_fragments_are_refused() {
        for bad in [
            "a=ice-ufrag:only\r\n",
            "a=candidate:1 1 udp\r\n",
            "a=ice-ufrag:\r\na=ice-pwd:x\r\n",
            "hello\r\n",
        ] {
            assert!(IceFragment::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IceFragment::parse(&"a=x\r\n".repeat(5000)).is_err());
    }

    #[test]
    fn a_restart_rewrites_credentials_everywhere_and_candidates_in_the_first_section() {
        let fragment = IceFragment {
            ufrag: Some("newU".into()),
            pwd: Some("newPasswordNewPassword".into()),
            mid: Some("0".into()),
            candidates: vec!["2 1 udp 2130706431 10.0.0.9 6000 typ host".into()],
            end_of_candidates: false,
        };
        let rewritten = fragment.apply_to(OFFER);
        assert_eq!(rewritten.matches("a=ice-ufrag:newU").count(), 2);
        assert_eq!(
            rewritten
                .matches("a=ice-pwd:newPasswordNewPassword")
                .count(),
            2
        );
        assert!(!rewritten.contains("old"));
        assert!(!rewritten.contains("10.0.0.1"));
        assert!(!rewritten.contains("end-of-candidates"));
        let candidate = rewritten.find("10.0.0.9").unwrap();
        assert!(candidate < rewritten.find("m=video").unwrap());
        assert_eq!(
            IceFragment::from_description(&rewritten).candidates,
            fragment.candidates
        );
    }
}
