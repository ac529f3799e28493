//! Running counts of what happened to consumed messages. They are part of the checkpoint,
//! so they reconcile across restarts: consumed = applied + duplicates + dead-lettered.

use std::collections::BTreeMap;
use std::fmt;

use crate::event::RejectKind;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub consumed: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub dead_lettered: BTreeMap<RejectKind, u64>,
    /// Messages whose key differed from the body's `member_id` (applied by the body).
    pub key_mismatches: u64,
}

impl Counters {
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered.values().sum()
    }

    /// The books balance.
    pub fn reconciles(&self) -> bool {
        self.consumed == self.applied + self.duplicates + self.dead_lettered_total()
    }

    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut dead = self.dead_lettered.clone();
        for (k, v) in &earlier.dead_lettered {
            *dead.entry(*k).or_default() -= v;
        }
        dead.retain(|_, v| *v > 0);
        Counters {
            consumed: self.consumed - earlier.consumed,
            applied: self.applied - earlier.applied,
            duplicates: self.duplicates - earlier.duplicates,
            dead_lettered: dead,
            key_mismatches: self.key_mismatches - earlier.key_mismatches,
        }
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "consumed {} = applied {} + duplicates {} + dead-lettered {}",
            self.consumed,
            self.applied,
            self.duplicates,
            self.dead_lettered_total()
        )?;
        if !self.dead_lettered.is_empty() {
            let parts: Vec<String> = self.dead_lettered.iter().map(|(k, v)| format!("{} {v}", k.name())).collect();
            write!(f, " ({})", parts.join(", "))?;
        }
        if self.key_mismatches > 0 {
            write!(f, "; key mismatches {}", self.key_mismatches)?;
        }
        Ok(())
    }
}
