//! Per-member memory of applied `event_id`s, bounded by the dedup horizon.

/// One remembered event: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub id_hash: u64,
    /// Low 32 bits of the event's content hash: same id + other content = conflict.
    pub content: u32,
    /// Business day of the event, to forget it once it leaves the horizon.
    pub day: i32,
}

/// What the dedup memory says about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    New,
    Duplicate,
    Conflict,
}

/// The remembered ids of one member, sorted by `id_hash`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeenIds(pub Vec<Seen>);

impl SeenIds {
    /// Looks the event up and remembers it when new. `forget_before` is the first day still
    /// inside the horizon: older entries are dropped when the list would otherwise grow.
    pub fn check_and_insert(&mut self, id_hash: u64, content: u32, day: i32, forget_before: i32) -> Verdict {
        match self.0.binary_search_by_key(&id_hash, |s| s.id_hash) {
            Ok(i) if self.0[i].content == content => Verdict::Duplicate,
            Ok(_) => Verdict::Conflict,
            Err(i) => {
                if self.0.len() == self.0.capacity() && self.0.iter().any(|s| s.day < forget_before) {
                    self.0.retain(|s| s.day >= forget_before);
                    let at = self.0.binary_search_by_key(&id_hash, |s| s.id_hash).unwrap_err();
                    self.0.insert(at, Seen { id_hash, content, day });
                } else {
                    self.0.insert(i, Seen { id_hash, content, day });
                }
                Verdict::New
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<Seen>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_conflicts_and_forgetting() {
        let mut seen = SeenIds::default();
        assert_eq!(seen.check_and_insert(7, 1, 100, 0), Verdict::New);
        assert_eq!(seen.check_and_insert(7, 1, 100, 0), Verdict::Duplicate);
        assert_eq!(seen.check_and_insert(7, 2, 100, 0), Verdict::Conflict);
        for id in 0..100u64 {
            seen.check_and_insert(1000 + id, 0, 500 + id as i32, 0);
        }
        // Day 100 is now outside the horizon: the entry goes when the list next grows.
        for id in 0..200u64 {
            seen.check_and_insert(5000 + id, 0, 700, 450);
        }
        assert!(seen.0.iter().all(|s| s.id_hash != 7));
        assert!(seen.0.windows(2).all(|w| w[0].id_hash < w[1].id_hash));
        assert_eq!(seen.check_and_insert(1050, 0, 550, 450), Verdict::Duplicate);
    }
}
