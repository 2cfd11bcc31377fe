//! Row keys ordered by time: UUID version 7 (RFC 9562, section 5.7).
//!
//! 48 bits of Unix time in milliseconds, the version, 12 bits of the
//! millisecond's fraction (the RFC's method 3, "increased clock
//! precision"), the variant and 62 random bits. Keys made one after the
//! other land next to each other in a b-tree: an insert touches the
//! index's newest leaf instead of a random one, and after a checkpoint
//! writes one full-page image per leaf instead of one per row.

/// The time part of the keys one generator made last, so that its keys
/// rise strictly even when the clock stands still or steps back.
#[derive(Clone, Copy, Debug, Default)]
pub struct Uuid7Clock {
    /// `unix_ms << 12 | fraction` of the last key.
    last: u64,
}

impl Uuid7Clock {
    /// The next key at `unix_micros` (microseconds since 1970), with
    /// `random` for its 62 random bits (the top two bits of `random[0]`
    /// are dropped for the variant).
    pub fn next(&mut self, unix_micros: u64, random: [u8; 8]) -> [u8; 16] {
        let ms = (unix_micros / 1000) & 0xFFFF_FFFF_FFFF;
        let fraction = (unix_micros % 1000) * 4096 / 1000;
        let mut stamp = (ms << 12) | fraction;
        if stamp <= self.last {
            stamp = self.last + 1;
        }
        self.last = stamp;
        let ms = (stamp >> 12).to_be_bytes();
        let fraction = (stamp & 0xFFF) as u16;
        let mut out = [0u8; 16];
        out[..6].copy_from_slice(&ms[2..]);
        out[6] = 0x70 | (fraction >> 8) as u8;
        out[7] = fraction as u8;
        out[8] = 0x80 | (random[0] & 0x3F);
        out[9..].copy_from_slice(&random[1..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_variant_and_time_are_where_rfc_9562_puts_them() {
        let mut clock = Uuid7Clock::default();
        // 2026-12-04 12:00:00.123456 UTC
        let micros = 1_796_385_600_123_456u64;
        let id = clock.next(micros, [0xFF; 8]);
        assert_eq!(id[6] >> 4, 7, "version");
        assert_eq!(id[8] >> 6, 0b10, "variant");
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(&id[..6]);
        assert_eq!(u64::from_be_bytes(ms), micros / 1000);
        let fraction = (u16::from(id[6] & 0x0F) << 8) | u16::from(id[7]);
        assert_eq!(u64::from(fraction), 456 * 4096 / 1000);
        assert_eq!(&id[9..], &[0xFF; 7]);
        assert_eq!(id[8] & 0x3F, 0x3F);
    }

    #[test]
    fn keys_rise_strictly_when_the_clock_stands_still_or_steps_back() {
        let mut clock = Uuid7Clock::default();
        let t = 1_796_385_600_000_999u64;
        let a = clock.next(t, [0xFF; 8]);
        let b = clock.next(t, [0; 8]);
        let c = clock.next(t - 5_000_000, [0; 8]);
        assert!(a < b && b < c, "{a:?} {b:?} {c:?}");
        // A fraction at its top carries into the millisecond.
        let mut clock = Uuid7Clock {
            last: (5 << 12) | 0xFFF,
        };
        let d = clock.next(5_000, [0; 8]);
        assert_eq!(&d[..6], &[0, 0, 0, 0, 0, 6]);
        assert_eq!((d[6] & 0x0F, d[7]), (0, 0));
    }

    #[test]
    fn later_keys_sort_after_earlier_ones() {
        let mut clock = Uuid7Clock::default();
        let mut last = [0u8; 16];
        for i in 0..10_000u64 {
            let id = clock.next(1_796_385_600_000_000 + i * 37, [(i % 251) as u8; 8]);
            assert!(id > last);
            last = id;
        }
    }
}
