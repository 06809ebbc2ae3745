//! The hybrid logical clock.
//!
//! A timestamp is a pair `(ms, counter)`: wall-clock milliseconds and a
//! logical counter that breaks ties within one millisecond. The clock hands
//! out strictly increasing timestamps even when the wall clock stalls or
//! goes backwards, and it can be started from a persisted floor so that it
//! never regresses across restarts.
//!
//! Write stamps and read stamps share one order. A write stamp's counter is
//! a multiple of [`READ_SLOTS`], so the values between one write stamp and
//! the next one the clock can hand out are free: [`Hlc::read_stamp`] picks
//! one of them for data that reflects every write up to a given stamp. Such
//! a read stamp is above every write it reflects and below every later
//! write, on any node whose clock observed that write, which is what a
//! reconnect checkpoint needs.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::time::TimeSource;

/// A hybrid logical timestamp. Ordered by `ms`, then `counter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc {
    /// Physical component: milliseconds since the Unix epoch.
    pub ms: u64,
    /// Logical component: counts events within the same millisecond.
    pub counter: u32,
}

/// Counter values reserved after each write stamp for read stamps (see the
/// module docs).
pub const READ_SLOTS: u32 = 1 << 16;

impl Hlc {
    /// The smallest timestamp.
    pub const ZERO: Hlc = Hlc { ms: 0, counter: 0 };

    /// A read stamp for data reflecting every write stamped up to `self` (a
    /// write stamp) and nothing later: above `self` and above `after` (the
    /// last stamp the same reader was given) when possible, and always
    /// below the next write stamp a clock that observed `self` hands out.
    /// When the free values after `self` are used up it returns the last
    /// one again.
    pub fn read_stamp(self, after: Hlc) -> Hlc {
        let slot_end = (self.counter / READ_SLOTS)
            .checked_add(1)
            .and_then(|n| n.checked_mul(READ_SLOTS))
            .map_or(u32::MAX, |end| end - 1);
        let highest = Hlc::new(self.ms, slot_end);
        let lowest = Hlc::new(self.ms, self.counter.saturating_add(1).min(slot_end));
        let wanted = Hlc::new(after.ms, after.counter.saturating_add(1));
        wanted.clamp(lowest, highest)
    }

    /// A timestamp from its parts.
    pub const fn new(ms: u64, counter: u32) -> Self {
        Self { ms, counter }
    }

    /// A 12-byte big-endian encoding whose byte order equals timestamp order.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..].copy_from_slice(&self.counter.to_be_bytes());
        out
    }

    /// Decodes [`Hlc::to_bytes`]; `None` when `bytes` is not 12 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 12] = bytes.try_into().ok()?;
        let ms = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let counter = u32::from_be_bytes(bytes[8..].try_into().ok()?);
        Some(Self { ms, counter })
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.ms, self.counter)
    }
}

/// A hybrid logical clock: strictly increasing timestamps from a time source.
pub struct HybridClock {
    time: Arc<dyn TimeSource>,
    last: Mutex<Hlc>,
}

impl fmt::Debug for HybridClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridClock")
            .field("last", &*self.last.lock())
            .finish()
    }
}

impl HybridClock {
    /// A clock reading `time` that will never hand out a timestamp at or
    /// below `floor` (the highest timestamp persisted before a restart).
    pub fn new(time: Arc<dyn TimeSource>, floor: Hlc) -> Self {
        Self {
            time,
            last: Mutex::new(floor),
        }
    }

    /// The next write stamp: greater than every timestamp handed out or
    /// observed before, with the [`READ_SLOTS`] values after it free.
    pub fn next(&self) -> Hlc {
        let now = self.time.now_ms();
        let mut last = self.last.lock();
        let next = if now > last.ms {
            Hlc::new(now, 0)
        } else {
            match (last.counter / READ_SLOTS + 1).checked_mul(READ_SLOTS) {
                Some(counter) => Hlc::new(last.ms, counter),
                None => Hlc::new(last.ms + 1, 0),
            }
        };
        *last = next;
        next
    }

    /// Moves the clock forward so that later timestamps exceed `seen` (a
    /// timestamp produced elsewhere, e.g. by another node).
    pub fn observe(&self, seen: Hlc) {
        let mut last = self.last.lock();
        if seen > *last {
            *last = seen;
        }
    }

    /// The highest timestamp handed out or observed so far.
    pub fn last(&self) -> Hlc {
        *self.last.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ManualTime;
    use proptest::prelude::*;

    #[test]
    fn counter_resets_when_millisecond_advances() {
        let time = ManualTime::new(1000);
        let clock = HybridClock::new(Arc::new(time.clone()), Hlc::ZERO);
        assert_eq!(clock.next(), Hlc::new(1000, 0));
        assert_eq!(clock.next(), Hlc::new(1000, READ_SLOTS));
        time.advance(1);
        assert_eq!(clock.next(), Hlc::new(1001, 0));
    }

    #[test]
    fn floor_from_before_a_restart_is_respected() {
        let time = ManualTime::new(500);
        let clock = HybridClock::new(Arc::new(time), Hlc::new(900, 4));
        assert_eq!(clock.next(), Hlc::new(900, READ_SLOTS));
    }

    #[test]
    fn observe_moves_forward_only() {
        let clock = HybridClock::new(Arc::new(ManualTime::new(10)), Hlc::ZERO);
        clock.observe(Hlc::new(50, 2));
        clock.observe(Hlc::new(20, 9));
        assert_eq!(clock.next(), Hlc::new(50, READ_SLOTS));
    }

    #[test]
    fn counter_overflow_moves_to_the_next_millisecond() {
        let clock = HybridClock::new(Arc::new(ManualTime::new(10)), Hlc::new(70, u32::MAX - 3));
        assert_eq!(clock.next(), Hlc::new(71, 0));
    }

    #[test]
    fn read_stamps_fill_the_slots_after_a_write() {
        let w = Hlc::new(500, 3 * READ_SLOTS);
        assert_eq!(w.read_stamp(Hlc::ZERO), Hlc::new(500, 3 * READ_SLOTS + 1));
        // Above the reader's last stamp when that is in the same slots.
        let last = Hlc::new(500, 3 * READ_SLOTS + 7);
        assert_eq!(w.read_stamp(last), Hlc::new(500, 3 * READ_SLOTS + 8));
        // Used up: the last free value again.
        let full = Hlc::new(500, 4 * READ_SLOTS - 1);
        assert_eq!(w.read_stamp(full), full);
        assert_eq!(w.read_stamp(Hlc::new(900, 0)), full);
        // A stamp at the top of the counter range still gets a slot.
        let top = Hlc::new(9, u32::MAX - 1);
        assert_eq!(top.read_stamp(Hlc::ZERO), Hlc::new(9, u32::MAX));
    }

    #[test]
    fn byte_encoding_round_trips() {
        let t = Hlc::new(1_795_414_830_207, 42);
        assert_eq!(Hlc::from_bytes(&t.to_bytes()), Some(t));
        assert_eq!(Hlc::from_bytes(&[1, 2, 3]), None);
    }

    proptest! {
        #[test]
        fn strictly_increasing_under_any_wall_clock(readings in proptest::collection::vec(0u64..5_000, 1..200)) {
            let time = ManualTime::new(0);
            let clock = HybridClock::new(Arc::new(time.clone()), Hlc::ZERO);
            let mut prev = Hlc::ZERO;
            for r in readings {
                time.set(r);
                let t = clock.next();
                prop_assert!(t > prev);
                prop_assert!(t.ms >= r);
                prev = t;
            }
        }

        /// Whatever the clock did before, a read stamp for a write lies
        /// strictly between that write and every later write of any clock
        /// that observed it.
        #[test]
        fn read_stamps_sit_between_writes(
            start in 0u64..1_000,
            steps in proptest::collection::vec((0u64..3, any::<bool>()), 1..100),
            after in (0u64..1_200, any::<u32>()),
        ) {
            let time = ManualTime::new(start);
            let clock = HybridClock::new(Arc::new(time.clone()), Hlc::ZERO);
            let mut written = clock.next();
            for (advance, observe_only) in steps {
                time.advance(advance);
                let other = HybridClock::new(Arc::new(time.clone()), Hlc::ZERO);
                other.observe(written);
                let read = written.read_stamp(Hlc::new(after.0, after.1));
                clock.observe(written);
                let later = if observe_only { other.next() } else { clock.next() };
                prop_assert!(read > written);
                prop_assert!(read < later);
                written = later;
            }
        }

        #[test]
        fn byte_order_equals_timestamp_order(a in (any::<u64>(), any::<u32>()), b in (any::<u64>(), any::<u32>())) {
            let (a, b) = (Hlc::new(a.0, a.1), Hlc::new(b.0, b.1));
            prop_assert_eq!(a.cmp(&b), a.to_bytes().cmp(&b.to_bytes()));
        }
    }
}
