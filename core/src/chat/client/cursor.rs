//! Per-room delivery cursors: the client-side half of "exactly once, in order".
//!
//! Delivery on the wire is at-least-once (a re-join replays what may already have
//! arrived). The cursor remembers the last `(epoch, seq)` handed to the app, drops
//! anything at or below it, and decides what a `join` result means for the app.

use std::ops::RangeInclusive;

use crate::chat::protocol::{JoinResult, Position};

/// What to do with a pushed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// The next message: hand it to the app.
    Deliver,
    /// Already handed to the app: drop it.
    Duplicate,
    /// Newer than the next expected one: hand it to the app, but these were skipped.
    Gap(RangeInclusive<u64>),
}

/// What a `join` result means for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinOutcome {
    /// The first join: messages after `seq` will follow.
    Fresh,
    /// Everything missed follows as pushes: nothing lost.
    Recovered,
    /// The server could not replay these; the app may load them with `history`.
    Missed(RangeInclusive<u64>),
    /// The server lost the room's history (a new epoch, or a server behind this
    /// cursor in the same epoch): counting starts again.
    EpochChanged,
}

/// The last message of one room handed to the app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomCursor {
    position: Option<Position>,
}

impl RoomCursor {
    /// A cursor for a room never joined.
    pub fn new() -> Self {
        RoomCursor::default()
    }

    /// What to send as `since` when (re-)joining.
    pub fn since(&self) -> Option<Position> {
        self.position.clone()
    }

    /// Applies a `join` result.
    pub fn on_join(&mut self, join: &JoinResult) -> JoinOutcome {
        let outcome = match &self.position {
            None => JoinOutcome::Fresh,
            Some(pos) if pos.epoch != join.epoch => JoinOutcome::EpochChanged,
            // The server is behind what it already gave us, in the same epoch: it lost
            // its tail (a restart without fencing) and will number new messages with
            // seqs we hold. Kept, the cursor would drop them as duplicates, silently;
            // so this is a new count, as a new epoch is.
            Some(pos) if join.seq < pos.seq => JoinOutcome::EpochChanged,
            Some(_) if join.recovered => JoinOutcome::Recovered,
            Some(pos) if join.seq > pos.seq => JoinOutcome::Missed(pos.seq + 1..=join.seq),
            // Nothing was missed: nothing to replay.
            Some(_) => JoinOutcome::Recovered,
        };
        match outcome {
            // The replayed messages move the cursor as they arrive.
            JoinOutcome::Recovered => {}
            _ => {
                self.position = Some(Position {
                    epoch: join.epoch.clone(),
                    seq: join.seq,
                })
            }
        }
        outcome
    }

    /// Classifies a pushed message and, unless it is a duplicate, moves the cursor.
    pub fn on_message(&mut self, epoch: &str, seq: u64) -> Arrival {
        let arrival = match &self.position {
            Some(pos) if pos.epoch == epoch => {
                if seq <= pos.seq {
                    Arrival::Duplicate
                } else if seq == pos.seq + 1 {
                    Arrival::Deliver
                } else {
                    Arrival::Gap(pos.seq + 1..=seq - 1)
                }
            }
            // A message of an epoch the join did not announce cannot be ordered against
            // what came before; start counting from it.
            _ => Arrival::Deliver,
        };
        if arrival != Arrival::Duplicate {
            self.position = Some(Position {
                epoch: epoch.to_string(),
                seq,
            });
        }
        arrival
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::protocol::RoomState;

    fn join(epoch: &str, seq: u64, recovered: bool) -> JoinResult {
        JoinResult {
            room: "r".into(),
            epoch: epoch.into(),
            seq,
            viewers: 1,
            recovered,
            state: RoomState::default(),
        }
    }

    #[test]
    fn first_join_starts_after_the_current_seq() {
        let mut cursor = RoomCursor::new();
        assert_eq!(cursor.since(), None);
        assert_eq!(cursor.on_join(&join("e1", 41, false)), JoinOutcome::Fresh);
        assert_eq!(cursor.on_message("e1", 41), Arrival::Duplicate);
        assert_eq!(cursor.on_message("e1", 42), Arrival::Deliver);
        assert_eq!(cursor.since().unwrap().seq, 42);
    }

    #[test]
    fn replays_after_a_recovered_rejoin_drop_what_was_seen() {
        let mut cursor = RoomCursor::new();
        cursor.on_join(&join("e1", 0, false));
        for seq in 1..=10 {
            assert_eq!(cursor.on_message("e1", seq), Arrival::Deliver);
        }
        // The server replays 8..=12 (at-least-once); the app sees only 11 and 12.
        assert_eq!(
            cursor.on_join(&join("e1", 12, true)),
            JoinOutcome::Recovered
        );
        let delivered: Vec<u64> = (8..=12)
            .filter(|&seq| cursor.on_message("e1", seq) == Arrival::Deliver)
            .collect();
        assert_eq!(delivered, [11, 12]);
    }

    #[test]
    fn an_unrecovered_rejoin_reports_the_missed_range() {
        let mut cursor = RoomCursor::new();
        cursor.on_join(&join("e1", 5, false));
        assert_eq!(
            cursor.on_join(&join("e1", 2000, false)),
            JoinOutcome::Missed(6..=2000)
        );
        assert_eq!(cursor.on_message("e1", 2001), Arrival::Deliver);
    }

    #[test]
    fn a_new_epoch_restarts_the_count() {
        let mut cursor = RoomCursor::new();
        cursor.on_join(&join("e1", 500, false));
        assert_eq!(
            cursor.on_join(&join("e2", 0, false)),
            JoinOutcome::EpochChanged
        );
        assert_eq!(cursor.on_message("e2", 1), Arrival::Deliver);
        assert_eq!(cursor.on_message("e1", 501), Arrival::Deliver);
    }

    #[test]
    fn a_server_behind_the_cursor_in_the_same_epoch_restarts_the_count() {
        let mut cursor = RoomCursor::new();
        cursor.on_join(&join("e1", 0, false));
        for seq in 1..=10 {
            cursor.on_message("e1", seq);
        }
        // The server lost 8..=10 and says it recovered us at 7.
        for recovered in [true, false] {
            let mut cursor = cursor.clone();
            assert_eq!(
                cursor.on_join(&join("e1", 7, recovered)),
                JoinOutcome::EpochChanged
            );
            // Its next messages reuse 8, 9, 10: new messages, delivered.
            for seq in 8..=10 {
                assert_eq!(cursor.on_message("e1", seq), Arrival::Deliver, "{seq}");
            }
        }
    }

    #[test]
    fn a_skipped_seq_is_reported_and_still_delivered() {
        let mut cursor = RoomCursor::new();
        cursor.on_join(&join("e1", 0, false));
        cursor.on_message("e1", 1);
        assert_eq!(cursor.on_message("e1", 4), Arrival::Gap(2..=3));
        assert_eq!(cursor.on_message("e1", 3), Arrival::Duplicate);
    }
}
