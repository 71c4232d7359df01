//! A worker's slots: how many jobs of each lane may start now. Shares of the slots are kept for
//! interactive (and then default) work, so bulk jobs, however long, never take the last slots a
//! person's command needs.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::job::Lane;
use crate::queue::config::ReservedShare;

/// Running jobs per lane against the worker's concurrency and reserves. Only the runtime's loop
/// starts jobs, so the room it reads can only grow until it starts some.
pub(crate) struct Slots {
    concurrency: usize,
    /// Slots only interactive jobs may take.
    reserved_interactive: usize,
    /// Slots only interactive or default jobs may take.
    reserved_default: usize,
    /// Running jobs, by lane (in `Lane::ALL` order).
    running: [AtomicUsize; 3],
}

/// What may start now: `total` jobs, of which at most `default_and_bulk` default or bulk jobs,
/// of which at most `bulk` bulk jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Room {
    pub total: usize,
    pub default_and_bulk: usize,
    pub bulk: usize,
}

impl Room {
    /// Room for a job of `lane`.
    pub fn for_lane(&self, lane: Lane) -> usize {
        match lane {
            Lane::Interactive => self.total,
            Lane::Default => self.default_and_bulk,
            Lane::Bulk => self.bulk,
        }
    }

    /// The room left once `held` slots are kept for claims in flight (which may take them in
    /// any lane).
    pub fn less(&self, held: usize) -> Room {
        Room {
            total: self.total.saturating_sub(held),
            default_and_bulk: self.default_and_bulk.saturating_sub(held),
            bulk: self.bulk.saturating_sub(held),
        }
    }

    /// At most `n` in all.
    pub fn capped(&self, n: usize) -> Room {
        Room {
            total: self.total.min(n),
            default_and_bulk: self.default_and_bulk.min(n),
            bulk: self.bulk.min(n),
        }
    }

    /// Takes `n` slots (at most its room) for `lane`; returns how many it took.
    pub fn take(&mut self, lane: Lane, n: usize) -> usize {
        let n = n.min(self.for_lane(lane));
        self.total -= n;
        if lane != Lane::Interactive {
            self.default_and_bulk -= n;
        }
        if lane == Lane::Bulk {
            self.bulk -= n;
        }
        self.default_and_bulk = self.default_and_bulk.min(self.total);
        self.bulk = self.bulk.min(self.default_and_bulk);
        n
    }

    /// The lanes with room, highest priority first.
    pub fn open_lanes(&self) -> Vec<Lane> {
        Lane::ALL
            .into_iter()
            .filter(|l| self.for_lane(*l) > 0)
            .collect()
    }
}

fn index(lane: Lane) -> usize {
    match lane {
        Lane::Interactive => 0,
        Lane::Default => 1,
        Lane::Bulk => 2,
    }
}

impl Slots {
    pub fn new(concurrency: usize, reserved: &ReservedShare) -> Self {
        let (reserved_interactive, reserved_default) = reserved.slots(concurrency);
        Self {
            concurrency,
            reserved_interactive,
            reserved_default,
            running: Default::default(),
        }
    }

    /// The room now.
    pub fn room(&self) -> Room {
        let [i, d, b] = [0, 1, 2].map(|k| self.running[k].load(Ordering::Acquire));
        let total = self.concurrency.saturating_sub(i + d + b);
        let default_and_bulk = (self.concurrency - self.reserved_interactive)
            .saturating_sub(d + b)
            .min(total);
        let bulk = (self.concurrency - self.reserved_interactive - self.reserved_default)
            .saturating_sub(b)
            .min(default_and_bulk);
        Room {
            total,
            default_and_bulk,
            bulk,
        }
    }

    /// A job of `lane` starts.
    pub fn start(&self, lane: Lane) {
        self.running[index(lane)].fetch_add(1, Ordering::AcqRel);
    }

    /// A job of `lane` ended.
    pub fn finish(&self, lane: Lane) {
        self.running[index(lane)].fetch_sub(1, Ordering::AcqRel);
    }

    /// Reserved slots (interactive only, interactive or default), for the start log line.
    pub fn reserved(&self) -> (usize, usize) {
        (self.reserved_interactive, self.reserved_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_never_takes_the_reserved_slots() {
        let slots = Slots::new(16, &ReservedShare::default());
        for _ in 0..12 {
            slots.start(Lane::Bulk);
        }
        let room = slots.room();
        assert_eq!(
            room,
            Room {
                total: 4,
                default_and_bulk: 2,
                bulk: 0
            }
        );
        assert_eq!(room.open_lanes(), vec![Lane::Interactive, Lane::Default]);
        slots.start(Lane::Default);
        slots.start(Lane::Default);
        assert_eq!(slots.room().open_lanes(), vec![Lane::Interactive]);
        // A bulk job ends: its slot is bulk's again, the interactive reserve still untouched.
        slots.finish(Lane::Bulk);
        assert_eq!(
            slots.room(),
            Room {
                total: 3,
                default_and_bulk: 1,
                bulk: 1
            }
        );
    }

    #[test]
    fn taking_for_a_lane_leaves_the_reserves_to_the_lanes_above() {
        let mut room = Slots::new(16, &ReservedShare::default()).room();
        assert_eq!(
            room.take(Lane::Bulk, 100),
            12,
            "bulk stops at both reserves"
        );
        assert_eq!(room.for_lane(Lane::Bulk), 0);
        assert_eq!(room.take(Lane::Default, 100), 2);
        assert_eq!(room.take(Lane::Interactive, 1), 1);
        assert_eq!(
            room,
            Room {
                total: 1,
                default_and_bulk: 0,
                bulk: 0
            }
        );
    }

    #[test]
    fn interactive_may_use_every_slot() {
        let slots = Slots::new(4, &ReservedShare::default());
        for _ in 0..4 {
            slots.start(Lane::Interactive);
        }
        assert_eq!(slots.room().total, 0);
        assert!(slots.room().open_lanes().is_empty());
    }
}
