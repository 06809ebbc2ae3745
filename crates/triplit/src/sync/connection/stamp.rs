//! The stamp an `ENTITY_DATA` carries.
//!
//! The client keeps the stamp of the last frame as its reconnect
//! checkpoint, and on reconnect the server skips the entities last written
//! below it. The client also ignores data for an entity stamped at or below
//! what it holds for that entity: an earlier frame's stamp, or the
//! `CHANGES_ACK` stamp of its own write. So a frame's stamp must be
//! - below every write the client has not been sent yet through this
//!   connection, whichever node made it: a read stamp after the
//!   connection's *cut* ([`Hlc::read_stamp`]), the stamp up to which every
//!   live query's result reflects every write;
//! - above the previous frame's stamp, and above the acknowledged writes of
//!   the client whose entities the frame carries.
//!
//! Commits reach a connection in feed order, which is stamp order, so once
//! the commits followed so far are applied the cut moves to the highest
//! stamp among them. It also moves when a commit touches no live query
//! while nothing is pending, and when every query ran again on a snapshot
//! (to the clock floor the snapshot holds: the stamp of its last write).

use ferry_core::Hlc;

/// The stamps of one connection.
#[derive(Debug, Default)]
pub(super) struct Stamping {
    /// The highest stamp among the commits followed.
    noted: Hlc,
    /// Every live query reflects every write stamped up to here.
    cut: Hlc,
    /// The last `ENTITY_DATA` stamp sent (or the client's checkpoint, the
    /// last stamp it got before reconnecting).
    last_sent: Hlc,
    /// The highest `CHANGES_ACK` stamp sent.
    last_ack: Hlc,
    /// A flush is waiting for this client's own commits to be followed.
    waiting: bool,
}

impl Stamping {
    /// A commit stamped `stamp` was followed.
    pub(super) fn noted(&mut self, stamp: Hlc) {
        self.noted = self.noted.max(stamp);
    }

    /// The highest stamp among the commits followed.
    pub(super) fn reach(&self) -> Hlc {
        self.noted.max(self.cut)
    }

    /// Every live query now reflects every write stamped up to `stamp`.
    pub(super) fn reached(&mut self, stamp: Hlc) {
        self.cut = self.cut.max(stamp);
    }

    /// A `CHANGES_ACK` stamped `stamp` was sent.
    pub(super) fn acked(&mut self, stamp: Hlc) {
        self.last_ack = self.last_ack.max(stamp);
    }

    /// The highest `CHANGES_ACK` stamp sent.
    pub(super) fn last_ack(&self) -> Hlc {
        self.last_ack
    }

    /// Whether the commits of every acknowledged write have been followed
    /// (so a flush that applies them can send their entities above the
    /// ack stamps).
    pub(super) fn acks_followed(&self) -> bool {
        self.last_ack <= self.reach()
    }

    /// Whether every acknowledged write is reflected by the live queries.
    pub(super) fn acks_reflected(&self) -> bool {
        self.last_ack <= self.cut
    }

    /// The client's checkpoint `stamp`: later frames must be above it.
    pub(super) fn resumed_from(&mut self, stamp: Hlc) {
        self.last_sent = self.last_sent.max(stamp);
    }

    /// The stamp for the next frame (see the module docs).
    pub(super) fn next(&self) -> Hlc {
        self.cut.read_stamp(self.last_sent)
    }

    /// A frame stamped `stamp` was sent.
    pub(super) fn sent(&mut self, stamp: Hlc) {
        self.last_sent = self.last_sent.max(stamp);
    }

    /// Records whether a flush waits for acknowledged commits.
    pub(super) fn set_waiting(&mut self, waiting: bool) {
        self.waiting = waiting;
    }

    /// Whether a flush waits for acknowledged commits.
    pub(super) fn waiting(&self) -> bool {
        self.waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::{HybridClock, ManualTime};
    use std::sync::Arc;

    #[test]
    fn frames_rise_and_stay_below_the_next_write() {
        let clock = HybridClock::new(Arc::new(ManualTime::new(100)), Hlc::ZERO);
        let w1 = clock.next();
        let mut s = Stamping::default();
        s.noted(w1);
        s.reached(s.reach());
        let f1 = s.next();
        s.sent(f1);
        let f2 = s.next();
        assert!(w1 < f1 && f1 < f2);
        let w2 = clock.next();
        assert!(f2 < w2);
        // Until the client's own write is followed, frames wait.
        s.acked(w2);
        assert!(!s.acks_followed());
        s.noted(w2);
        assert!(s.acks_followed() && !s.acks_reflected());
        s.reached(s.reach());
        assert!(s.acks_reflected());
        assert!(s.next() > w2);
    }

    #[test]
    fn a_checkpoint_from_another_connection_is_exceeded() {
        let mut s = Stamping::default();
        let w = Hlc::new(100, 0);
        s.reached(w);
        s.resumed_from(w.read_stamp(Hlc::new(100, 40)));
        assert_eq!(s.next(), Hlc::new(100, 42));
    }
}
