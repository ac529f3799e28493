//! Cut points and RFM scores, in exact integer arithmetic.
//!
//! A cut point is kept in hundredths of its column's unit (days, purchases, minor currency
//! units): linear interpolation between two neighbours at a whole-percent position is
//! always a whole number of hundredths, so comparisons never round.

/// One value in hundredths of its column's unit.
pub type Hundredths = i128;

/// `percentile_cont(pct / 100)` of `sorted` (ascending), in hundredths; `None` when empty.
///
/// Position p·(n-1) between the neighbours v[lo] and v[lo+1], like SQL `percentile_cont`.
pub fn percentile_cont(sorted: &[i64], pct: u8) -> Option<Hundredths> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = pct as usize * (n - 1); // in hundredths of an index
    let (lo, frac) = (pos / 100, (pos % 100) as i128);
    let base = sorted[lo] as i128 * 100;
    Some(if frac == 0 { base } else { base + frac * (sorted[lo + 1] as i128 - sorted[lo] as i128) })
}

/// c1 <= c2 <= c3 <= c4 of the three dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cuts {
    pub recency: [Hundredths; 4],
    pub frequency: [Hundredths; 4],
    pub monetary: [Hundredths; 4],
}

/// `1 + #{i : value > c_i}` (frequency, monetary).
pub fn score_higher_is_better(value: i64, cuts: &[Hundredths; 4]) -> u8 {
    let v = value as i128 * 100;
    1 + cuts.iter().filter(|&&c| v > c).count() as u8
}

/// `1 + #{i : value < c_i}` (recency: fewer days since the last purchase is better).
pub fn score_lower_is_better(value: i64, cuts: &[Hundredths; 4]) -> u8 {
    let v = value as i128 * 100;
    1 + cuts.iter().filter(|&&c| v < c).count() as u8
}

/// The four cut points of `pcts` over `values` (sorted in place).
pub fn cut_points(values: &mut [i64], pcts: [u8; 4]) -> Option<[Hundredths; 4]> {
    values.sort_unstable();
    let mut out = [0; 4];
    for (o, p) in out.iter_mut().zip(pcts) {
        *o = percentile_cont(values, p)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_percentile_cont() {
        // n = 5: position 0.2 * 4 = 0.8 between 10 and 20 -> 18.
        let v = [10, 20, 30, 40, 50];
        assert_eq!(percentile_cont(&v, 20), Some(1800));
        assert_eq!(percentile_cont(&v, 0), Some(1000));
        assert_eq!(percentile_cont(&v, 100), Some(5000));
        assert_eq!(percentile_cont(&v, 50), Some(3000));
        // n = 2: 0.4 * 1 = 0.4 between 1 and 2 -> 1.4.
        assert_eq!(percentile_cont(&[1, 2], 40), Some(140));
        assert_eq!(percentile_cont(&[7], 80), Some(700));
        assert_eq!(percentile_cont(&[], 80), None);
        // Negative values (refunds exceeding purchases in the window).
        assert_eq!(percentile_cont(&[-300, 100], 50), Some(-10000));
    }

    #[test]
    fn ties_get_equal_scores() {
        // Everyone bought once: every cut point is 1, nobody is above it.
        let mut f = vec![1; 10];
        let cuts = cut_points(&mut f, [20, 40, 60, 80]).unwrap();
        assert_eq!(cuts, [100; 4]);
        assert_eq!(score_higher_is_better(1, &cuts), 1);
        assert_eq!(score_higher_is_better(2, &cuts), 5);
        assert_eq!(score_lower_is_better(1, &cuts), 1);
        assert_eq!(score_lower_is_better(0, &cuts), 5);
    }

    #[test]
    fn a_value_equal_to_a_cut_point_is_not_above_it() {
        let cuts = [100, 200, 300, 400];
        assert_eq!(score_higher_is_better(2, &cuts), 2);
        assert_eq!(score_higher_is_better(3, &cuts), 3);
        assert_eq!(score_lower_is_better(3, &cuts), 2);
        // Interpolated cut 1.4: 1 is below, 2 above.
        let cuts = [140, 140, 1000, 1000];
        assert_eq!(score_higher_is_better(1, &cuts), 1);
        assert_eq!(score_higher_is_better(2, &cuts), 3);
    }

    proptest::proptest! {
        #[test]
        fn scores_are_monotone_and_in_range(mut v in proptest::collection::vec(-1000i64..1000, 1..50), a in -1000i64..1000, b in -1000i64..1000) {
            let cuts = cut_points(&mut v, [20, 40, 60, 80]).unwrap();
            proptest::prop_assert!(cuts.windows(2).all(|w| w[0] <= w[1]));
            let (lo, hi) = (a.min(b), a.max(b));
            proptest::prop_assert!(score_higher_is_better(lo, &cuts) <= score_higher_is_better(hi, &cuts));
            proptest::prop_assert!(score_lower_is_better(lo, &cuts) >= score_lower_is_better(hi, &cuts));
            for s in [score_higher_is_better(a, &cuts), score_lower_is_better(a, &cuts)] {
                proptest::prop_assert!((1..=5).contains(&s));
            }
        }
    }
}
