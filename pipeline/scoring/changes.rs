//! What changed between two classifications of a member, by name, so that a refresh with
//! different rules still records exactly the segments and tags entered and exited.

use std::collections::BTreeMap;

use crate::state::scoring::Class;

/// The segment and tag names of one rule set, by index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub segments: Vec<String>,
    pub tags: Vec<String>,
}

impl Labels {
    fn segment(&self, c: &Class) -> Option<&str> {
        (c.scored() && c.segment > 0).then(|| self.segments.get(c.segment as usize - 1).map(String::as_str)).flatten()
    }

    fn tags<'a>(&'a self, c: &Class) -> impl Iterator<Item = &'a str> + 'a {
        let bits = if c.scored() { c.tags } else { 0 };
        self.tags.iter().enumerate().filter(move |(k, _)| bits >> k & 1 == 1).map(|(_, t)| t.as_str())
    }
}

/// One recorded change: `attribute` is `rfm_segment` or `tag`; a tag entered has only a new
/// value, a tag exited only an old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<'a> {
    pub attribute: &'static str,
    pub old: Option<&'a str>,
    pub new: Option<&'a str>,
}

/// Appends the changes from `old` (under `old_labels`) to `new` (under `new_labels`).
pub fn diff<'a>(old: &Class, old_labels: &'a Labels, new: &Class, new_labels: &'a Labels, out: &mut Vec<Change<'a>>) {
    if old_labels == new_labels && old.scored() == new.scored() && old.same_labels(new) {
        return;
    }
    let (o, n) = (old_labels.segment(old), new_labels.segment(new));
    if o != n {
        out.push(Change { attribute: "rfm_segment", old: o, new: n });
    }
    let old_tags: Vec<&str> = old_labels.tags(old).collect();
    let new_tags: Vec<&str> = new_labels.tags(new).collect();
    for t in &old_tags {
        if !new_tags.contains(t) {
            out.push(Change { attribute: "tag", old: Some(t), new: None });
        }
    }
    for t in &new_tags {
        if !old_tags.contains(t) {
            out.push(Change { attribute: "tag", old: None, new: Some(t) });
        }
    }
}

/// Entered/exited counts per segment and tag, for a refresh's report.
#[derive(Debug, Clone, Default)]
pub struct Moves {
    pub segments: BTreeMap<String, (u64, u64)>,
    pub tags: BTreeMap<String, (u64, u64)>,
}

impl Moves {
    pub fn count(&mut self, change: &Change<'_>) {
        let map = if change.attribute == "tag" { &mut self.tags } else { &mut self.segments };
        if let Some(o) = change.old {
            map.entry(o.to_string()).or_default().1 += 1;
        }
        if let Some(n) = change.new {
            map.entry(n.to_string()).or_default().0 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(segments: &[&str], tags: &[&str]) -> Labels {
        Labels { segments: segments.iter().map(|s| s.to_string()).collect(), tags: tags.iter().map(|s| s.to_string()).collect() }
    }

    fn class(segment: u8, tags: u64) -> Class {
        Class { segment, tags, scored_at: 1, ..Class::default() }
    }

    #[test]
    fn first_scoring_enters_everything() {
        let l = labels(&["a", "b"], &["x", "y"]);
        let mut out = Vec::new();
        diff(&Class::default(), &l, &class(2, 0b11), &l, &mut out);
        assert_eq!(
            out,
            vec![
                Change { attribute: "rfm_segment", old: None, new: Some("b") },
                Change { attribute: "tag", old: None, new: Some("x") },
                Change { attribute: "tag", old: None, new: Some("y") },
            ]
        );
    }

    #[test]
    fn unchanged_records_nothing_and_renamed_rules_compare_by_name() {
        let l = labels(&["a", "b"], &["x", "y"]);
        let mut out = Vec::new();
        diff(&class(1, 0b01), &l, &class(1, 0b01), &l, &mut out);
        assert!(out.is_empty());
        // New rule set: "y" removed, "z" added before "x"; the member keeps "x".
        let l2 = labels(&["b", "a"], &["z", "x"]);
        diff(&class(1, 0b11), &l, &class(2, 0b10), &l2, &mut out);
        assert_eq!(out, vec![Change { attribute: "tag", old: Some("y"), new: None }]);
    }
}
