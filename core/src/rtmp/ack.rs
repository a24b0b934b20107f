//! Acknowledgements (RTMP spec §5.4.3): after every window of received bytes the receiver
//! reports the running total of bytes received so far.
//!
//! rml_rtmp's session reports the bytes received since the previous acknowledgement,
//! which servers that follow the spec read as the connection going backwards.

/// Counts received bytes and says when an acknowledgement is due.
#[derive(Debug, Clone, Default)]
pub struct AckCounter {
    window: u32,
    received: u64,
    last_acked: u64,
}

impl AckCounter {
    /// Sets the window the peer announced with Window Acknowledgement Size (0 disables).
    pub fn set_window(&mut self, window: u32) {
        self.window = window;
    }

    /// Records `n` received bytes; returns the sequence number to acknowledge, if due.
    pub fn on_received(&mut self, n: usize) -> Option<u32> {
        self.received += n as u64;
        if self.window > 0 && self.received - self.last_acked >= u64::from(self.window) {
            self.last_acked = self.received;
            Some((self.received & 0xffff_ffff) as u32)
        } else {
            None
        }
    }

    /// Total bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledges_running_total_once_per_window() {
        let mut ack = AckCounter::default();
        assert_eq!(ack.on_received(5000), None, "no window yet");
        ack.set_window(2500);
        assert_eq!(ack.on_received(100), Some(5100));
        assert_eq!(ack.on_received(2000), None);
        assert_eq!(ack.on_received(500), Some(7600));
        assert_eq!(ack.on_received(7000), Some(14600));
        assert_eq!(ack.received(), 14600);
    }

    #[test]
    fn sequence_number_wraps_at_2_32() {
        let mut ack = AckCounter::default();
        ack.set_window(1 << 31);
        assert_eq!(ack.on_received(1 << 31), Some(1 << 31));
        assert_eq!(ack.on_received(1 << 31), Some(0));
        assert_eq!(ack.on_received(10), None);
    }
}
