//! What the checkpoint keeps of scoring: the latest refresh (its rules, cut points and
//! statistics, so incremental scoring between refreshes uses exactly them) and each
//! member's classification, plus when each scheduled job last fired.

use crate::scoring::config::ScoringConfig;
use crate::scoring::cuts::{Cuts, Hundredths};

use super::calendar::Day;

/// A member's scores (0 = none), segment (index + 1 into the refresh's segments; 0 = none),
/// tags (bit i = the refresh's tag i) and when this was computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Class {
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: u8,
    pub tags: u64,
    pub scored_at: i64,
}

impl Class {
    pub fn scored(&self) -> bool {
        self.scored_at != 0
    }

    /// Whether segment or tags differ (scores alone are not a recorded change).
    pub fn same_labels(&self, other: &Class) -> bool {
        self.segment == other.segment && self.tags == other.tags
    }
}

/// One population statistic's value at a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatValue {
    pub name: String,
    pub value: Option<Hundredths>,
    pub population_size: u64,
}

/// A refresh: its id, as-of day, wall time, the rules it used and what it computed.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshRecord {
    pub id: u64,
    pub as_of: Day,
    pub computed_at: i64,
    pub config: ScoringConfig,
    pub cuts: Cuts,
    /// Members with at least one purchase ever (the population of the cut points).
    pub scored_population: u64,
    pub stats: Vec<StatValue>,
}

/// A tag an operator set on a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualTag {
    pub member: u32,
    pub tag: String,
    pub reason: String,
    pub set_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ScoringState {
    /// Manual tags, sorted by member then tag.
    pub manual: Vec<ManualTag>,
    pub refresh: Option<RefreshRecord>,
    /// Index = member number; members past the end were never classified.
    pub classes: Vec<Class>,
    /// Job name -> the scheduled time (microseconds) it last fired for.
    pub last_fired: Vec<(String, i64)>,
}

impl ScoringState {
    pub fn class(&self, m: usize) -> Class {
        self.classes.get(m).copied().unwrap_or_default()
    }

    /// Member `m`'s manual tags.
    pub fn manual_tags(&self, m: u32) -> &[ManualTag] {
        let start = self.manual.partition_point(|t| t.member < m);
        let end = start + self.manual[start..].partition_point(|t| t.member == m);
        &self.manual[start..end]
    }

    /// Sets (`add`) or clears a manual tag; whether anything changed.
    pub fn set_manual(&mut self, member: u32, tag: &str, add: bool, reason: &str, at: i64) -> bool {
        let key = |t: &ManualTag| (t.member, t.tag.clone());
        match (self.manual.binary_search_by_key(&(member, tag.to_string()), key), add) {
            (Ok(_), true) | (Err(_), false) => false,
            (Err(k), true) => {
                self.manual.insert(k, ManualTag { member, tag: tag.into(), reason: reason.into(), set_at: at });
                true
            }
            (Ok(k), false) => {
                self.manual.remove(k);
                true
            }
        }
    }

    pub fn last_fired(&self, job: &str) -> Option<i64> {
        self.last_fired.iter().find(|(n, _)| n == job).map(|(_, t)| *t)
    }

    pub fn set_last_fired(&mut self, job: &str, at: i64) {
        match self.last_fired.iter_mut().find(|(n, _)| n == job) {
            Some(e) => e.1 = at,
            None => self.last_fired.push((job.to_string(), at)),
        }
    }

    /// Bytes of classification state per member (for the benchmark's state report).
    pub fn memory_bytes(&self) -> usize {
        self.classes.capacity() * std::mem::size_of::<Class>()
    }
}
