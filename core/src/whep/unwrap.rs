//! Unwrapping of RTP's wrapping counters (16-bit sequence numbers, 32-bit timestamps)
//! into monotonic 64-bit values, tolerating reordering of up to half the range.

/// Unwraps a counter of `BITS` bits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unwrapper<const BITS: u32> {
    last: Option<i64>,
}

/// Unwraps RTP sequence numbers.
pub type SeqUnwrapper = Unwrapper<16>;
/// Unwraps RTP timestamps.
pub type TimestampUnwrapper = Unwrapper<32>;

impl<const BITS: u32> Unwrapper<BITS> {
    /// The extended value of `value`, the closest one to the previous value.
    pub fn unwrap(&mut self, value: u64) -> i64 {
        let range: i64 = 1 << BITS;
        let value = (value as i64) & (range - 1);
        let extended = match self.last {
            None => value,
            Some(last) => {
                let base = last & !(range - 1);
                let mut candidate = base + value;
                if candidate - last > range / 2 {
                    candidate -= range;
                } else if last - candidate > range / 2 {
                    candidate += range;
                }
                candidate
            }
        };
        // Reordered (older) values do not move the reference backwards.
        if self.last.is_none_or(|last| extended > last) {
            self.last = Some(extended);
        }
        extended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_wrap_forward_and_tolerate_reordering() {
        let mut u = SeqUnwrapper::default();
        assert_eq!(u.unwrap(65534), 65534);
        assert_eq!(u.unwrap(65535), 65535);
        assert_eq!(u.unwrap(0), 65536);
        assert_eq!(u.unwrap(65533), 65533, "late packet from before the wrap");
        assert_eq!(u.unwrap(2), 65538);
    }

    #[test]
    fn timestamps_wrap_at_2_32() {
        let mut u = TimestampUnwrapper::default();
        assert_eq!(u.unwrap(0xffff_ff00), 0xffff_ff00);
        assert_eq!(u.unwrap(0x100), 0x1_0000_0100);
        assert_eq!(u.unwrap(0x2000_0000), 0x1_2000_0000);
        assert_eq!(
            u.unwrap(0xffff_fff0),
            0xffff_fff0,
            "reordered across the wrap"
        );
    }

    #[test]
    fn an_early_start_near_zero_can_go_slightly_back() {
        let mut u = SeqUnwrapper::default();
        assert_eq!(u.unwrap(3), 3);
        assert_eq!(u.unwrap(65535), -1);
    }
}
