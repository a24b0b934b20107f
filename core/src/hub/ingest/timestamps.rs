//! RTMP timestamps (32-bit milliseconds that wrap after 49.7 days) as a 64-bit clock
//! starting at the publisher's first message.

/// Extends wrapping 32-bit millisecond timestamps; the first one seen is time 0.
#[derive(Debug, Default, Clone)]
pub struct Unwrapper {
    last: Option<(u32, i64)>,
}

impl Unwrapper {
    /// Milliseconds since the first timestamp. Each step is read as the signed 32-bit
    /// difference from the previous timestamp, so a wrap moves forward and a small step
    /// back (audio and video interleave) stays a small step back.
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let extended = match self.last {
            None => 0,
            Some((last, extended)) => extended + i64::from(ts.wrapping_sub(last) as i32),
        };
        self.last = Some((ts, extended));
        extended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_zero_and_interleaves() {
        let mut clock = Unwrapper::default();
        assert_eq!(clock.unwrap(5000), 0);
        assert_eq!(clock.unwrap(5040), 40);
        assert_eq!(clock.unwrap(5020), 20);
    }

    #[test]
    fn survives_the_32_bit_wrap() {
        let mut clock = Unwrapper::default();
        assert_eq!(clock.unwrap(u32::MAX - 10), 0);
        assert_eq!(clock.unwrap(5), 16);
        assert_eq!(
            clock.unwrap(u32::MAX - 5),
            5,
            "late audio from before the wrap"
        );
        assert_eq!(clock.unwrap(40), 51);
    }
}
