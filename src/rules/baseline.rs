//! Before and after (issue 18): is a figure worse since the deploy than it was before, or
//! only as noisy as it always is? Pure statistics on two lists of per-minute samples, with
//! no clock and no I/O; the sources, the screen, `check` and the report build on [`judge`].
//!
//! The two sides are compared with a two-sided Mann–Whitney U test, not a t-test: latencies
//! and rates are skewed and have outliers, and per-minute figures tie a lot (minute after
//! minute of 0 errors), so the test works on ranks, with mid-ranks for ties and the
//! tie-corrected variance. A verdict needs both halves of the evidence:
//!
//! - the test says the sides differ (`p < alpha`): a big move of the median on a handful of
//!   noisy minutes is not a verdict;
//! - the median moved by more than the tolerance: on a day of minutes a test finds a 1 %
//!   move significant, and that is not worth anyone's look.
//!
//! Per-minute samples are not independent (a slow minute is followed by slow minutes), so
//! the p-values are somewhat optimistic; the strict `alpha` and the tolerance make up for it.

use crate::model::figure::format_number;
use statrs::distribution::{ContinuousCDF, Normal};

/// Below this many samples a side, the normal approximation of U is too coarse to trust
/// whatever the settings say (see [`JudgeSettings::min_samples`]).
const FEWEST_FOR_THE_TEST: usize = 8;

/// Which way a figure gets worse: higher for error rates, latency, deny %, restarts; lower
/// for throughput and success rates. (A threshold says the same with
/// `Threshold::lower_is_worse`; this says it for a figure without one.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Worse {
    Higher,
    Lower,
}

/// How sure and how big a change must be to count. [`Default`] is what a figure gets
/// unless its config says otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct JudgeSettings {
    /// The relative move of the median below which a figure is unchanged whatever the test
    /// says. Default 0.10 (10 %): smaller moves are a day's ordinary wobble (traffic mix,
    /// time of day) and no reason to roll back; larger ones are what that decision is made
    /// on.
    pub(crate) tolerance: f64,
    /// The smallest baseline the tolerance is a fraction of, in the figure's unit: a median
    /// closer to 0 counts as this much, so a figure at 0 before the deploy must move by
    /// `tolerance × median_floor` rather than by anything at all. Default 1.0, right for
    /// percents, milliseconds and counts per minute: a deny rate going 0 % → 2 % regresses
    /// (2 points against the 0.1 needed), 0 % → 0.05 % (a denial now and then) does not.
    /// A figure in seconds or as a 0–1 ratio needs a smaller floor (0.001, 0.01).
    pub(crate) median_floor: f64,
    /// The significance level. Default 0.01, not the usual 0.05: a dashboard judges tens of
    /// figures at once, again every minute for a day, and at 0.05 one of twenty unchanged
    /// figures would show as changed at any time. A real move of twice the tolerance over
    /// an hour of minutes still clears it (the seeded tests below).
    pub(crate) alpha: f64,
    /// Samples needed on each side before there is any verdict. Default 10: the normal
    /// approximation of U with continuity correction is close to the exact p-value from
    /// 8–10 a side, and 10 minutes after a deploy is the earliest a verdict is worth
    /// showing. Fewer than 8 is never judged, whatever this says: an exact distribution
    /// would do for small untied samples, but per-minute figures tie, the exact
    /// distribution with ties depends on the tie pattern, and a verdict on a few minutes is
    /// not worth the machinery. Below the minimum the verdict is "not enough data".
    pub(crate) min_samples: usize,
}

impl Default for JudgeSettings {
    fn default() -> Self {
        JudgeSettings {
            tolerance: 0.10,
            median_floor: 1.0,
            alpha: 0.01,
            min_samples: 10,
        }
    }
}

/// What the deploy did to a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Regressed,
    Improved,
    Unchanged,
    NotEnoughData,
}

impl Change {
    /// The stable spelling used in JSON and the report.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Change::Regressed => "regressed",
            Change::Improved => "improved",
            Change::Unchanged => "unchanged",
            Change::NotEnoughData => "not enough data",
        }
    }
}

/// The verdict on one figure, with the numbers it rests on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Verdict {
    pub(crate) change: Change,
    /// The median of each side's usable samples; `None` for a side without any. Shown even
    /// when there is too little data to judge.
    pub(crate) before_median: Option<f64>,
    pub(crate) after_median: Option<f64>,
    /// `(after − before) / |before|` of the medians: 0.25 is 25 % higher. `None` without
    /// both medians or when the one before is 0 (no relative change from nothing).
    pub(crate) relative_change: Option<f64>,
    /// The test's two-sided p-value; `None` when there was too little data to test.
    pub(crate) p_value: Option<f64>,
    /// The finite samples each side had: NaN and infinities are left out.
    pub(crate) before_samples: usize,
    pub(crate) after_samples: usize,
}

impl Verdict {
    /// The compact text for the screen and alerts: "9.0% vs 2.1% before the deploy
    /// (p < 0.001)".
    pub(crate) fn describe(&self, unit: &str) -> String {
        let shown =
            |median: Option<f64>| median.map_or("no data".into(), |m| format_number(m, unit));
        let evidence = match self.p_value {
            Some(p) if p < 0.001 => "p < 0.001".to_string(),
            Some(p) if p < 0.01 => format!("p = {p:.3}"),
            Some(p) => format!("p = {p:.2}"),
            None => format!(
                "too few samples: {} before, {} after",
                self.before_samples, self.after_samples
            ),
        };
        format!(
            "{} vs {} before the deploy ({evidence})",
            shown(self.after_median),
            shown(self.before_median)
        )
    }
}

/// Judges a figure's per-minute samples after the deploy against those before it.
pub(crate) fn judge(
    before: &[f64],
    after: &[f64],
    worse: Worse,
    settings: &JudgeSettings,
) -> Verdict {
    let before = finite_sorted(before);
    let after = finite_sorted(after);
    let before_median = median(&before);
    let after_median = median(&after);
    let mut verdict = Verdict {
        change: Change::NotEnoughData,
        before_median,
        after_median,
        relative_change: match (before_median, after_median) {
            (Some(b), Some(a)) if b != 0.0 => Some((a - b) / b.abs()),
            _ => None,
        },
        p_value: None,
        before_samples: before.len(),
        after_samples: after.len(),
    };
    let (Some(before_median), Some(after_median)) = (before_median, after_median) else {
        return verdict;
    };
    let needed = settings.min_samples.max(FEWEST_FOR_THE_TEST);
    if before.len() < needed || after.len() < needed {
        return verdict;
    }

    let test = mann_whitney(&before, &after);
    verdict.p_value = Some(test.p_value);
    let moved = after_median - before_median;
    let big_enough =
        moved.abs() > settings.tolerance * before_median.abs().max(settings.median_floor);
    // The test weighs whole distributions, the tolerance only the medians: a verdict needs
    // both to point the same way (a lower median under a heavier upper tail is neither).
    let same_way = (moved > 0.0) == (test.u_after > test.u_mean);
    verdict.change = if test.p_value < settings.alpha && big_enough && same_way {
        match (moved > 0.0, worse) {
            (true, Worse::Higher) | (false, Worse::Lower) => Change::Regressed,
            (true, Worse::Lower) | (false, Worse::Higher) => Change::Improved,
        }
    } else {
        Change::Unchanged
    };
    verdict
}

fn finite_sorted(samples: &[f64]) -> Vec<f64> {
    let mut kept: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    kept.sort_by(f64::total_cmp);
    kept
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The Mann–Whitney U test of two samples (finite values).
#[derive(Clone, Copy, Debug, PartialEq)]
struct UTest {
    /// Pairs (before, after) with the after sample the larger, ties counting half.
    u_after: f64,
    /// U's mean under "no difference": half the pairs.
    u_mean: f64,
    /// U's variance under "no difference", corrected for ties.
    variance: f64,
    /// Two-sided, from the normal approximation with continuity correction.
    p_value: f64,
}

fn mann_whitney(before: &[f64], after: &[f64]) -> UTest {
    let (n_before, n_after) = (before.len() as f64, after.len() as f64);
    let mut pooled: Vec<(f64, bool)> = before
        .iter()
        .map(|&v| (v, false))
        .chain(after.iter().map(|&v| (v, true)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));

    // Ranks are 1-based; a run of equal values shares the mean of the ranks it spans.
    let mut after_rank_sum = 0.0;
    // Σ (t³ − t) over the runs of t equal values: what ties take off the variance.
    let mut ties = 0.0;
    let mut start = 0;
    while start < pooled.len() {
        let value = pooled[start].0;
        let run = pooled[start..]
            .iter()
            .take_while(|(v, _)| *v == value)
            .count();
        let end = start + run;
        let mid_rank = (start + 1 + end) as f64 / 2.0;
        let after_in_run = pooled[start..end]
            .iter()
            .filter(|(_, is_after)| *is_after)
            .count();
        after_rank_sum += mid_rank * after_in_run as f64;
        let t = run as f64;
        ties += t * t * t - t;
        start = end;
    }

    let n = n_before + n_after;
    let u_after = after_rank_sum - n_after * (n_after + 1.0) / 2.0;
    let u_mean = n_before * n_after / 2.0;
    let variance = n_before * n_after / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    // No variance: every sample is the same value, so nothing differs.
    let p_value = if variance > 0.0 {
        let z = ((u_after - u_mean).abs() - 0.5).max(0.0) / variance.sqrt();
        (2.0 * Normal::standard().sf(z)).min(1.0)
    } else {
        1.0
    };
    UTest {
        u_after,
        u_mean,
        variance,
        p_value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::{RngExt, SeedableRng};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn baseline_u_of_the_tortoise_and_the_hare() {
        // The textbook example (Wikipedia, "Mann–Whitney U test"): finishing order
        // T H H H H H T T T T T H, published U_T = 11 and U_H = 25. As finishing places
        // (times), lower is faster:
        //   hare:     2 3 4 5 6 12
        //   tortoise: 1 7 8 9 10 11
        // No ties, so ranks are the places. Tortoise rank sum 1+7+8+9+10+11 = 46,
        // U = 46 − 6·7/2 = 25: the pairs with the tortoise slower, i.e. the hare winning
        // (U_H). The other side: hare 2+3+4+5+6+12 = 32, 32 − 21 = 11 = U_T; 25 + 11 = 36.
        // Mean 36/2 = 18, variance 6·6·13/12 = 39, z = (25 − 18 − 0.5)/√39 = 1.0408,
        // p = 2·(1 − Φ(1.0408)) = 0.2980.
        let hare = [2.0, 3.0, 4.0, 5.0, 6.0, 12.0];
        let tortoise = [1.0, 7.0, 8.0, 9.0, 10.0, 11.0];
        let test = mann_whitney(&hare, &tortoise);
        assert_eq!(test.u_after, 25.0);
        assert_eq!(mann_whitney(&tortoise, &hare).u_after, 11.0);
        assert_eq!(test.u_mean, 18.0);
        assert!(close(test.variance, 39.0), "{test:?}");
        assert!((test.p_value - 0.2980).abs() < 1e-4, "{test:?}");
    }

    #[test]
    fn baseline_ties_share_mid_ranks_and_shrink_the_variance() {
        // before 1 2 2 3 5, after 2 3 4 5 5. Pooled and sorted (b = before, a = after):
        //   value  1   2   2   2   3   3   4   5   5   5
        //   side   b   b   b   a   b   a   a   b   a   a
        //   rank   1   3   3   3  5.5 5.5  7   9   9   9
        // After's rank sum 3 + 5.5 + 7 + 9 + 9 = 33.5, U = 33.5 − 5·6/2 = 18.5. By pairs:
        // 2 beats 1 and ties two 2s (2), 3 beats three and ties one (3.5), 4 beats four
        // (4), each 5 beats four and ties one (4.5 twice): 2 + 3.5 + 4 + 9 = 18.5.
        // Runs of ties: three 2s, two 3s, three 5s: Σ(t³ − t) = 24 + 6 + 24 = 54.
        // Variance = 5·5/12 · (11 − 54/(10·9)) = 25/12 · 10.4 = 21.6667 (22.9167 untied).
        // z = (18.5 − 12.5 − 0.5)/√21.6667 = 1.1816, p = 0.2374.
        let before = [1.0, 2.0, 2.0, 3.0, 5.0];
        let after = [2.0, 3.0, 4.0, 5.0, 5.0];
        let test = mann_whitney(&before, &after);
        assert_eq!(test.u_after, 18.5);
        assert_eq!(test.u_mean, 12.5);
        assert!(close(test.variance, 25.0 / 12.0 * 10.4), "{test:?}");
        assert!((test.p_value - 0.2374).abs() < 1e-4, "{test:?}");
    }

    #[test]
    fn baseline_complete_separation_at_the_fewest_samples_is_significant() {
        // 8 against 8, every after sample above every before one: U = 64, mean 32,
        // variance 64·17/12, z = 31.5/9.522 = 3.308, p = 0.00094 < 0.01: the minimum of 8
        // can reach a verdict at the default alpha.
        let before: Vec<f64> = (0..8).map(f64::from).collect();
        let after: Vec<f64> = (10..18).map(f64::from).collect();
        let test = mann_whitney(&before, &after);
        assert_eq!(test.u_after, 64.0);
        assert!((test.p_value - 0.00094).abs() < 1e-5, "{test:?}");
        let settings = JudgeSettings {
            min_samples: 8,
            ..JudgeSettings::default()
        };
        assert_eq!(
            judge(&before, &after, Worse::Higher, &settings).change,
            Change::Regressed
        );
    }

    /// A log-normal sample around `median`, as per-minute latencies are: skewed, no two
    /// alike. Box–Muller for the normal draw.
    fn skewed(rng: &mut SmallRng, median: f64, n: usize) -> Vec<f64> {
        const SPREAD: f64 = 0.15;
        (0..n)
            .map(|_| {
                let u1 = 1.0 - rng.random::<f64>(); // (0, 1]: ln stays finite
                let u2 = rng.random::<f64>();
                let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                median * (SPREAD * normal).exp()
            })
            .collect()
    }

    const TRIALS: usize = 1_000;
    const PER_SIDE: usize = 60;

    /// How often each verdict comes out, over trials of `before_median` against
    /// `after_median`. A fixed seed gives the same counts every run; `SmallRng` because it
    /// stays fast in a debug build.
    fn tally(seed: u64, before_median: f64, after_median: f64, worse: Worse) -> [usize; 4] {
        let mut rng = SmallRng::seed_from_u64(seed);
        let settings = JudgeSettings::default();
        let mut counts = [0; 4];
        for _ in 0..TRIALS {
            let before = skewed(&mut rng, before_median, PER_SIDE);
            let after = skewed(&mut rng, after_median, PER_SIDE);
            let verdict = judge(&before, &after, worse, &settings);
            assert!(verdict.p_value.is_some_and(|p| (0.0..=1.0).contains(&p)));
            counts[match verdict.change {
                Change::Regressed => 0,
                Change::Improved => 1,
                Change::Unchanged => 2,
                Change::NotEnoughData => 3,
            }] += 1;
        }
        counts
    }

    #[test]
    fn baseline_identical_distributions_stay_unchanged() {
        let [regressed, improved, unchanged, _] = tally(18, 100.0, 100.0, Worse::Higher);
        assert!(
            unchanged * 100 >= TRIALS * 99,
            "{regressed} regressed, {improved} improved"
        );
    }

    #[test]
    fn baseline_a_move_of_twice_the_tolerance_the_worse_way_regresses() {
        let tolerance = JudgeSettings::default().tolerance;
        let worse_median = 100.0 * (1.0 + 2.0 * tolerance);
        let [regressed, ..] = tally(19, 100.0, worse_median, Worse::Higher);
        assert!(regressed * 100 >= TRIALS * 95, "{regressed} of {TRIALS}");
    }

    #[test]
    fn baseline_a_move_of_twice_the_tolerance_the_better_way_improves() {
        let tolerance = JudgeSettings::default().tolerance;
        let better_median = 100.0 * (1.0 - 2.0 * tolerance);
        let [_, improved, ..] = tally(20, 100.0, better_median, Worse::Higher);
        assert!(improved * 100 >= TRIALS * 95, "{improved} of {TRIALS}");
    }

    #[test]
    fn baseline_lower_is_worse_swaps_regressed_and_improved() {
        let tolerance = JudgeSettings::default().tolerance;
        let lower = 100.0 * (1.0 - 2.0 * tolerance);
        let higher = 100.0 * (1.0 + 2.0 * tolerance);
        let [regressed, ..] = tally(21, 100.0, lower, Worse::Lower);
        assert!(regressed * 100 >= TRIALS * 95, "{regressed} of {TRIALS}");
        let [_, improved, ..] = tally(22, 100.0, higher, Worse::Lower);
        assert!(improved * 100 >= TRIALS * 95, "{improved} of {TRIALS}");

        // The same samples, the one verdict mirrored.
        let before = [10.0; 12];
        let after = [20.0; 12];
        let settings = JudgeSettings::default();
        assert_eq!(
            judge(&before, &after, Worse::Higher, &settings).change,
            Change::Regressed
        );
        assert_eq!(
            judge(&before, &after, Worse::Lower, &settings).change,
            Change::Improved
        );
    }

    #[test]
    fn baseline_too_few_samples_are_not_judged() {
        let settings = JudgeSettings::default();
        let plenty = [1.0; 60];
        let few = [50.0; 9];
        for (before, after) in [
            (&plenty[..], &few[..]),
            (&few[..], &plenty[..]),
            (&[][..], &[][..]),
        ] {
            let verdict = judge(before, after, Worse::Higher, &settings);
            assert_eq!(verdict.change, Change::NotEnoughData);
            assert_eq!(verdict.p_value, None);
        }
        // The medians are still there to show.
        let verdict = judge(&plenty, &few, Worse::Higher, &settings);
        assert_eq!(
            (verdict.before_median, verdict.after_median),
            (Some(1.0), Some(50.0))
        );
        assert_eq!(verdict.relative_change, Some(49.0));

        // A setting below what the test needs does not lower the bar.
        let reckless = JudgeSettings {
            min_samples: 2,
            ..settings
        };
        let verdict = judge(&[1.0; 7], &[50.0; 7], Worse::Higher, &reckless);
        assert_eq!(verdict.change, Change::NotEnoughData);
    }

    #[test]
    fn baseline_non_finite_samples_are_counted_out() {
        let mut before = vec![2.0; 10];
        before.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
        let mut after = vec![f64::NAN; 5];
        after.extend([9.0; 9]);
        let verdict = judge(&before, &after, Worse::Higher, &JudgeSettings::default());
        assert_eq!((verdict.before_samples, verdict.after_samples), (10, 9));
        assert_eq!(
            verdict.change,
            Change::NotEnoughData,
            "9 finite after, 10 needed"
        );
        after.push(9.0);
        let verdict = judge(&before, &after, Worse::Higher, &JudgeSettings::default());
        assert_eq!(verdict.change, Change::Regressed);
        assert_eq!(
            (verdict.before_median, verdict.after_median),
            (Some(2.0), Some(9.0))
        );
    }

    #[test]
    fn baseline_all_equal_samples_are_unchanged_without_nan() {
        let verdict = judge(
            &[3.0; 30],
            &[3.0; 30],
            Worse::Higher,
            &JudgeSettings::default(),
        );
        assert_eq!(verdict.change, Change::Unchanged);
        assert_eq!(verdict.p_value, Some(1.0));
        assert_eq!(verdict.relative_change, Some(0.0));
        assert_eq!(mann_whitney(&[3.0; 30], &[3.0; 30]).variance, 0.0);
        // All zeros: no relative change from nothing, still no NaN anywhere.
        let verdict = judge(
            &[0.0; 30],
            &[0.0; 30],
            Worse::Higher,
            &JudgeSettings::default(),
        );
        assert_eq!(verdict.change, Change::Unchanged);
        assert_eq!(verdict.p_value, Some(1.0));
        assert_eq!(verdict.relative_change, None);
    }

    #[test]
    fn baseline_a_deny_rate_from_nothing_is_judged_against_the_floor() {
        let settings = JudgeSettings::default();
        // An hour at 0 % with a denial now and then, against one at about 2 %.
        let before: Vec<f64> = (0..60)
            .map(|i| if i % 15 == 0 { 0.1 } else { 0.0 })
            .collect();
        let after: Vec<f64> = (0..60).map(|i| 1.6 + f64::from(i % 9) * 0.1).collect();
        let verdict = judge(&before, &after, Worse::Higher, &settings);
        assert_eq!(verdict.change, Change::Regressed);
        assert_eq!(verdict.relative_change, None, "no relative change from 0");
        assert_eq!(
            verdict.describe("%"),
            "2.0% vs 0.0% before the deploy (p < 0.001)"
        );

        // 0 % → 0.05 %: certainly different, but below 10 % of the floor of 1 point.
        let trickle = [0.05; 60];
        let verdict = judge(&before, &trickle, Worse::Higher, &settings);
        assert!(verdict.p_value.unwrap() < settings.alpha);
        assert_eq!(verdict.change, Change::Unchanged);
    }

    #[test]
    fn baseline_a_significant_but_small_move_is_unchanged() {
        // 5 % higher on every one of 200 minutes: the test is sure, the tolerance is not met.
        let before: Vec<f64> = (0..200).map(|i| 100.0 + f64::from(i % 7)).collect();
        let after: Vec<f64> = before.iter().map(|v| v * 1.05).collect();
        let verdict = judge(&before, &after, Worse::Higher, &JudgeSettings::default());
        assert!(verdict.p_value.unwrap() < 0.001);
        assert_eq!(verdict.change, Change::Unchanged);
    }

    #[test]
    fn baseline_names_and_text() {
        let names = [
            Change::Regressed,
            Change::Improved,
            Change::Unchanged,
            Change::NotEnoughData,
        ]
        .map(Change::as_str);
        assert_eq!(
            names,
            ["regressed", "improved", "unchanged", "not enough data"]
        );

        let mut verdict = Verdict {
            change: Change::Unchanged,
            before_median: Some(41.7),
            after_median: Some(43.2),
            relative_change: Some(0.036),
            p_value: Some(0.2374),
            before_samples: 60,
            after_samples: 45,
        };
        assert_eq!(
            verdict.describe("ms"),
            "43 ms vs 42 ms before the deploy (p = 0.24)"
        );
        verdict.p_value = Some(0.0042);
        assert_eq!(
            verdict.describe("ms"),
            "43 ms vs 42 ms before the deploy (p = 0.004)"
        );
        verdict.p_value = None;
        verdict.after_median = None;
        verdict.after_samples = 0;
        assert_eq!(
            verdict.describe("ms"),
            "no data vs 42 ms before the deploy (too few samples: 60 before, 0 after)"
        );
    }

    proptest! {
        #[test]
        fn baseline_swapping_the_sides_mirrors_the_test(
            // Small integers: ties in plenty; NaN now and then to be counted out.
            before in prop::collection::vec(prop_oneof![9 => (0..6).prop_map(f64::from), 1 => Just(f64::NAN)], 0..40),
            after in prop::collection::vec(prop_oneof![9 => (0..6).prop_map(f64::from), 1 => Just(f64::NAN)], 0..40),
        ) {
            // No tolerance: it is taken of the side before, so it alone is not symmetric.
            let settings = JudgeSettings { tolerance: 0.0, ..JudgeSettings::default() };
            let forward = judge(&before, &after, Worse::Higher, &settings);
            let backward = judge(&after, &before, Worse::Higher, &settings);
            prop_assert_eq!(forward.p_value, backward.p_value);
            prop_assert!(forward.p_value.is_none_or(|p| (0.0..=1.0).contains(&p)));
            let mirrored = match forward.change {
                Change::Regressed => Change::Improved,
                Change::Improved => Change::Regressed,
                same => same,
            };
            prop_assert_eq!(backward.change, mirrored);

            let (b, a) = (finite_sorted(&before), finite_sorted(&after));
            if !b.is_empty() && !a.is_empty() {
                let (there, back) = (mann_whitney(&b, &a), mann_whitney(&a, &b));
                prop_assert_eq!(there.u_after + back.u_after, (b.len() * a.len()) as f64);
                prop_assert!(there.variance >= 0.0);
            }
        }
    }
}
