//! A node's mirror of one room on Redis, sans I/O: what it publishes goes to the node's
//! members strictly in seq order, exactly once.
//!
//! The driver subscribes to the room's channel first, then reads the room's position and
//! hands it to [`RoomMirror::on_position`]: publications that came in between are held
//! and merged, so a first follower racing a publish on another node sees no gap.
//! Anything ahead of the next number is held; a gap is filled by reading the stream
//! ([`MirrorAction::Read`]). An epoch rotated under the mirror is a
//! [`MirrorAction::Discontinuity`] (the node's members must rejoin: their positions are
//! not continued silently), then the new epoch from its first message; a gap the stream
//! no longer holds is a discontinuity at the room's top.

use std::collections::BTreeMap;

use crate::chat::protocol::{ChatMessage, Position};

/// Publications held before the position is known, or ahead of a gap, at most. Past
/// this the mirror drops them and reads the stream instead.
const HELD_MAX: usize = 10_000;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorAction {
    /// Hand this message to the node's members (in this order).
    Deliver(ChatMessage),
    /// Read what follows this position (`RedisSequencer::after`), then call
    /// [`RoomMirror::on_read`].
    Read(Position),
    /// Read the room's position (`RedisSequencer::fence` with nothing claimed), then call
    /// [`RoomMirror::on_position`].
    Locate,
    /// Continuity broke (the epoch rotated, or messages were lost to the node): the
    /// members must rejoin; messages continue after this position.
    Discontinuity(Position),
}

/// The mirror of one room on one node.
#[derive(Debug, Default)]
pub struct RoomMirror {
    /// The last message delivered (or the position the mirror started at).
    at: Option<Position>,
    /// Publications of `at`'s epoch ahead of the next number, by seq.
    ahead: BTreeMap<u64, ChatMessage>,
    /// Publications received before the position was known.
    early: Vec<ChatMessage>,
    /// A read or a locate is in flight: not asked again until answered.
    asking: bool,
}

impl RoomMirror {
    /// A mirror that has subscribed and waits for the room's position.
    pub fn new() -> (Self, MirrorAction) {
        let mirror = RoomMirror {
            asking: true,
            ..RoomMirror::default()
        };
        (mirror, MirrorAction::Locate)
    }

    /// Where delivery stands: the last message delivered.
    pub fn position(&self) -> Option<&Position> {
        self.at.as_ref()
    }

    /// The room's position, as asked by [`MirrorAction::Locate`].
    pub fn on_position(&mut self, top: Position) -> Vec<MirrorAction> {
        self.asking = false;
        let mut actions = Vec::new();
        match &self.at {
            // The first position: delivery starts after it, with no discontinuity.
            None => self.at = Some(top),
            Some(at) if *at == top => {}
            // Another epoch: what the stream holds of it is delivered from its start.
            Some(at) if at.epoch != top.epoch => {
                let start = Position {
                    epoch: top.epoch.clone(),
                    seq: 0,
                };
                self.ahead.clear();
                actions.push(MirrorAction::Discontinuity(start.clone()));
                if top.seq > 0 {
                    self.asking = true;
                    actions.push(MirrorAction::Read(start.clone()));
                }
                self.at = Some(start);
            }
            // The same epoch, but what lies between is no longer held: lost to members.
            Some(_) => {
                self.ahead.clear();
                actions.push(MirrorAction::Discontinuity(top.clone()));
                self.at = Some(top);
            }
        }
        for message in std::mem::take(&mut self.early) {
            self.take(message, &mut actions);
        }
        self.ask_if_gap(&mut actions);
        actions
    }

    /// A publication from the room's channel.
    pub fn on_published(&mut self, message: ChatMessage) -> Vec<MirrorAction> {
        let mut actions = Vec::new();
        if self.at.is_none() {
            if self.early.len() < HELD_MAX {
                self.early.push(message);
            }
            return actions;
        }
        self.take(message, &mut actions);
        self.ask_if_gap(&mut actions);
        actions
    }

    /// The answer to [`MirrorAction::Read`]: what follows the position asked about, or
    /// `None` when the stream no longer holds all of it.
    pub fn on_read(&mut self, read: Option<Vec<ChatMessage>>) -> Vec<MirrorAction> {
        self.asking = false;
        let mut actions = Vec::new();
        match read {
            Some(messages) => {
                for message in messages {
                    self.take(message, &mut actions);
                }
                self.ask_if_gap(&mut actions);
            }
            None => {
                self.asking = true;
                actions.push(MirrorAction::Locate);
            }
        }
        actions
    }

    /// The subscription was lost and made again: whatever was published meanwhile is
    /// read from the stream.
    pub fn on_resubscribed(&mut self) -> Vec<MirrorAction> {
        match &self.at {
            Some(at) if !self.asking => {
                self.asking = true;
                vec![MirrorAction::Read(at.clone())]
            }
            _ => Vec::new(),
        }
    }

    /// Delivers `message` if it is the next one (and what it unblocks), holds it if it is
    /// ahead, drops it if it was delivered already; a new epoch restarts delivery.
    fn take(&mut self, message: ChatMessage, actions: &mut Vec<MirrorAction>) {
        let Some(at) = &self.at else {
            return;
        };
        if message.epoch != at.epoch {
            // Redis runs the scripts one at a time and publishes in that order: a
            // message of another epoch means the room rotated after everything this
            // mirror holds. What it missed of the old epoch is lost to its members.
            let start = Position {
                epoch: message.epoch.clone(),
                seq: 0,
            };
            self.ahead.clear();
            actions.push(MirrorAction::Discontinuity(start.clone()));
            self.at = Some(start);
        }
        let next = self.at.as_ref().map_or(1, |at| at.seq + 1);
        if message.seq < next {
            return;
        }
        if message.seq > next {
            if self.ahead.len() < HELD_MAX {
                self.ahead.insert(message.seq, message);
            }
            return;
        }
        self.deliver(message, actions);
        while let Some(entry) = self.ahead.first_entry() {
            let next = self.at.as_ref().map_or(1, |at| at.seq + 1);
            if *entry.key() < next {
                entry.remove();
            } else if *entry.key() == next {
                let message = entry.remove();
                self.deliver(message, actions);
            } else {
                break;
            }
        }
    }

    fn deliver(&mut self, message: ChatMessage, actions: &mut Vec<MirrorAction>) {
        self.at = Some(Position {
            epoch: message.epoch.clone(),
            seq: message.seq,
        });
        actions.push(MirrorAction::Deliver(message));
    }

    /// Asks for the stream when messages are held behind a gap.
    fn ask_if_gap(&mut self, actions: &mut Vec<MirrorAction>) {
        if self.asking || self.ahead.is_empty() {
            return;
        }
        if let Some(at) = &self.at {
            self.asking = true;
            actions.push(MirrorAction::Read(at.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::protocol::{Role, UserInfo};

    fn message(epoch: &str, seq: u64) -> ChatMessage {
        ChatMessage {
            room: "r".into(),
            epoch: epoch.into(),
            seq,
            id: format!("{epoch}-{seq}"),
            ts: seq,
            user: UserInfo {
                id: "u".into(),
                name: "U".into(),
                role: Role::Viewer,
            },
            text: format!("m{seq}"),
            client_msg_id: Some(format!("c{seq}")),
            deleted: false,
        }
    }

    fn at(epoch: &str, seq: u64) -> Position {
        Position {
            epoch: epoch.into(),
            seq,
        }
    }

    /// The seqs delivered, in order.
    fn delivered(actions: &[MirrorAction]) -> Vec<u64> {
        actions
            .iter()
            .filter_map(|a| match a {
                MirrorAction::Deliver(m) => Some(m.seq),
                _ => None,
            })
            .collect()
    }

    fn started(epoch: &str, top: u64) -> RoomMirror {
        let (mut mirror, first) = RoomMirror::new();
        assert_eq!(first, MirrorAction::Locate);
        assert!(mirror.on_position(at(epoch, top)).is_empty());
        mirror
    }

    #[test]
    fn messages_in_order_are_delivered_once() {
        let mut mirror = started("e", 3);
        assert_eq!(delivered(&mirror.on_published(message("e", 4))), vec![4]);
        assert!(mirror.on_published(message("e", 4)).is_empty(), "a repeat");
        assert!(
            mirror.on_published(message("e", 2)).is_empty(),
            "before the start"
        );
        assert_eq!(delivered(&mirror.on_published(message("e", 5))), vec![5]);
        assert_eq!(mirror.position(), Some(&at("e", 5)));
    }

    /// Subscribed first, then located: what was published in between is merged, the
    /// part the position already covers is not delivered twice.
    #[test]
    fn publications_before_the_position_are_merged_without_a_gap() {
        let (mut mirror, _) = RoomMirror::new();
        for seq in 9..=12 {
            assert!(mirror.on_published(message("e", seq)).is_empty());
        }
        let actions = mirror.on_position(at("e", 10));
        assert_eq!(delivered(&actions), vec![11, 12]);
        assert_eq!(actions.len(), 2, "no read, no discontinuity: {actions:?}");
    }

    #[test]
    fn a_gap_is_read_once_and_what_was_held_follows_it() {
        let mut mirror = started("e", 0);
        assert_eq!(delivered(&mirror.on_published(message("e", 1))), vec![1]);
        assert_eq!(
            mirror.on_published(message("e", 3)),
            vec![MirrorAction::Read(at("e", 1))]
        );
        assert!(
            mirror.on_published(message("e", 4)).is_empty(),
            "asked already"
        );
        let actions = mirror.on_read(Some(vec![message("e", 2), message("e", 3)]));
        assert_eq!(delivered(&actions), vec![2, 3, 4]);
        assert_eq!(mirror.position(), Some(&at("e", 4)));
        // Answered: a new gap is asked about again.
        assert_eq!(
            mirror.on_published(message("e", 6)),
            vec![MirrorAction::Read(at("e", 4))]
        );
    }

    #[test]
    fn a_gap_the_stream_lost_is_a_discontinuity_at_the_rooms_position() {
        let mut mirror = started("e", 5);
        assert_eq!(
            mirror.on_published(message("e", 9)),
            vec![MirrorAction::Read(at("e", 5))]
        );
        assert_eq!(mirror.on_read(None), vec![MirrorAction::Locate]);
        // Trimmed: 6..=8 are gone for good; delivery goes on after the top.
        let actions = mirror.on_position(at("e", 9));
        assert_eq!(actions, vec![MirrorAction::Discontinuity(at("e", 9))]);
        assert_eq!(delivered(&mirror.on_published(message("e", 10))), vec![10]);
    }

    /// The epoch rotated while the mirror was not looking (Redis lost its data, say):
    /// the new epoch is delivered from its first message, read from the stream.
    #[test]
    fn a_new_epoch_found_by_locating_is_delivered_from_its_start() {
        let mut mirror = started("e", 5);
        assert_eq!(
            mirror.on_resubscribed(),
            vec![MirrorAction::Read(at("e", 5))]
        );
        assert_eq!(mirror.on_read(None), vec![MirrorAction::Locate]);
        let actions = mirror.on_position(at("f", 2));
        assert_eq!(
            actions,
            vec![
                MirrorAction::Discontinuity(at("f", 0)),
                MirrorAction::Read(at("f", 0))
            ]
        );
        let actions = mirror.on_read(Some(vec![message("f", 1), message("f", 2)]));
        assert_eq!(delivered(&actions), vec![1, 2]);
        assert_eq!(delivered(&mirror.on_published(message("f", 3))), vec![3]);
    }

    #[test]
    fn a_rotated_epoch_is_a_discontinuity_then_delivery_from_its_first_message() {
        let mut mirror = started("e", 7);
        let actions = mirror.on_published(message("f", 1));
        assert_eq!(
            actions,
            vec![
                MirrorAction::Discontinuity(at("f", 0)),
                MirrorAction::Deliver(message("f", 1))
            ]
        );
        // Its second message first: the first is read from the stream.
        let mut mirror = started("e", 7);
        let actions = mirror.on_published(message("g", 2));
        assert_eq!(
            actions,
            vec![
                MirrorAction::Discontinuity(at("g", 0)),
                MirrorAction::Read(at("g", 0))
            ]
        );
        assert_eq!(
            delivered(&mirror.on_read(Some(vec![message("g", 1)]))),
            vec![1, 2]
        );
    }

    #[test]
    fn a_new_subscription_reads_what_was_published_meanwhile() {
        let mut mirror = started("e", 2);
        assert_eq!(
            mirror.on_resubscribed(),
            vec![MirrorAction::Read(at("e", 2))]
        );
        assert!(mirror.on_resubscribed().is_empty(), "asked already");
        let actions = mirror.on_read(Some(vec![message("e", 3)]));
        assert_eq!(delivered(&actions), vec![3]);
    }
}
