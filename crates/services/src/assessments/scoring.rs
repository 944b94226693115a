//! The scoring model of API.md, with no I/O.
//!
//! An answer is worth `yes` 1, `partial` 0.5, `no` and `unknown` 0; `not_applicable`
//! is left out. A control's value is the mean of its questions' worth (a control whose
//! every answer is `not_applicable` is left out). Each control weighs its criticality
//! (critical 4, high 3, medium 2, low 1); domain and overall scores are the weighted
//! means × 100, rounded to one decimal. A gap is a control valued below 1; its severity
//! is its criticality.

use ruleiq_core::Criticality;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An answer to a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Yes,
    Partial,
    No,
    NotApplicable,
    Unknown,
}

impl Response {
    /// What the answer is worth, or `None` when it is left out.
    #[must_use]
    pub fn worth(self) -> Option<f64> {
        match self {
            Self::Yes => Some(1.0),
            Self::Partial => Some(0.5),
            Self::No | Self::Unknown => Some(0.0),
            Self::NotApplicable => None,
        }
    }
}

/// How far along an organisation is, from its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Ready,
    NearlyReady,
    Developing,
    Early,
    NotStarted,
}

impl Band {
    /// ≥ 90 ready, ≥ 75 nearly ready, ≥ 50 developing, > 0 early, else not started.
    #[must_use]
    pub fn of(score: f64) -> Self {
        if score >= 90.0 {
            Self::Ready
        } else if score >= 75.0 {
            Self::NearlyReady
        } else if score >= 50.0 {
            Self::Developing
        } else if score > 0.0 {
            Self::Early
        } else {
            Self::NotStarted
        }
    }
}

/// A control and the answers to its questions (an unanswered question is `Unknown`).
#[derive(Debug, Clone, PartialEq)]
pub struct ControlAnswers {
    pub control_id: Uuid,
    pub reference: String,
    pub title: String,
    pub domain: String,
    pub criticality: Criticality,
    /// The control's guidance, from which a gap's recommendation is drawn.
    pub guidance: String,
    pub responses: Vec<Response>,
}

/// One domain's score.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainScore {
    pub domain: String,
    pub score: f64,
    /// Controls with at least one applicable answer that is not `unknown`.
    pub answered: usize,
    /// Controls that count (not wholly `not_applicable`).
    pub total: usize,
}

/// A control that falls short.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub control_id: Uuid,
    pub reference: String,
    pub title: String,
    pub severity: Criticality,
    /// `partial` when part-met, `unknown` when nobody knew, else `no`.
    pub response: Response,
    pub recommendation: String,
}

/// The result of scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub band: Band,
    pub by_domain: Vec<DomainScore>,
    pub gaps: Vec<Gap>,
}

/// A criticality's weight.
#[must_use]
pub fn weight(c: Criticality) -> f64 {
    match c {
        Criticality::Critical => 4.0,
        Criticality::High => 3.0,
        Criticality::Medium => 2.0,
        Criticality::Low => 1.0,
    }
}

/// A control's value, or `None` when every answer is `not_applicable`.
fn value(responses: &[Response]) -> Option<f64> {
    let worths: Vec<f64> = responses.iter().filter_map(|r| r.worth()).collect();
    (!worths.is_empty()).then(|| worths.iter().sum::<f64>() / worths.len() as f64)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Scores `controls` (in the order they are given; domains keep first-seen order).
#[must_use]
pub fn score(controls: &[ControlAnswers]) -> Scored {
    let mut domains: Vec<(String, f64, f64, usize, usize)> = Vec::new();
    let (mut sum, mut weights) = (0.0, 0.0);
    let mut gaps = Vec::new();
    for c in controls {
        let Some(v) = value(&c.responses) else {
            continue;
        };
        let w = weight(c.criticality);
        sum += w * v;
        weights += w;
        let answered = c
            .responses
            .iter()
            .any(|r| !matches!(r, Response::Unknown | Response::NotApplicable));
        match domains.iter_mut().find(|d| d.0 == c.domain) {
            Some(d) => {
                d.1 += w * v;
                d.2 += w;
                d.3 += usize::from(answered);
                d.4 += 1;
            }
            None => domains.push((c.domain.clone(), w * v, w, usize::from(answered), 1)),
        }
        if v < 1.0 {
            let response = if v > 0.0 {
                Response::Partial
            } else if c.responses.contains(&Response::No) {
                Response::No
            } else {
                Response::Unknown
            };
            gaps.push(Gap {
                control_id: c.control_id,
                reference: c.reference.clone(),
                title: c.title.clone(),
                severity: c.criticality,
                response,
                recommendation: recommendation(&c.guidance),
            });
        }
    }
    // Most severe first; published order within a severity.
    gaps.sort_by_key(|g| std::cmp::Reverse(g.severity));
    let score = if weights > 0.0 {
        round1(sum / weights * 100.0)
    } else {
        0.0
    };
    Scored {
        score,
        band: Band::of(score),
        by_domain: domains
            .into_iter()
            .map(|(domain, s, w, answered, total)| DomainScore {
                domain,
                score: round1(s / w * 100.0),
                answered,
                total,
            })
            .collect(),
        gaps,
    }
}

/// The first two sentences of the guidance: what to do first.
fn recommendation(guidance: &str) -> String {
    let mut out = String::new();
    for (n, sentence) in guidance.split_inclusive(". ").enumerate() {
        if n == 2 {
            break;
        }
        out.push_str(sentence);
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn control(domain: &str, c: Criticality, responses: &[Response]) -> ControlAnswers {
        ControlAnswers {
            control_id: Uuid::now_v7(),
            reference: format!("{domain}.{}", responses.len()),
            title: "A control".into(),
            domain: domain.into(),
            criticality: c,
            guidance: "Do the first thing. Then the second. Then a third.".into(),
            responses: responses.to_vec(),
        }
    }

    #[test]
    fn weights_matter_as_stated() {
        use Criticality::{Critical, Low};
        use Response::{No, Yes};
        let a = score(&[control("A", Critical, &[No]), control("A", Low, &[Yes])]);
        assert_eq!(a.score, 20.0, "1 of 5 weighted");
        let b = score(&[control("A", Critical, &[Yes]), control("A", Low, &[No])]);
        assert_eq!(b.score, 80.0);
        assert_eq!(b.band, Band::NearlyReady);
        assert_eq!(b.gaps.len(), 1);
        assert_eq!(b.gaps[0].severity, Low);
        assert_eq!(
            b.gaps[0].recommendation,
            "Do the first thing. Then the second."
        );
    }

    #[test]
    fn partial_answers_and_rounding() {
        use Response::{Partial, Unknown, Yes};
        let s = score(&[
            control("A", Criticality::Medium, &[Yes, Partial, Unknown]),
            control("B", Criticality::High, &[Partial]),
        ]);
        // A: (1 + 0.5 + 0) / 3 = 0.5 × 2; B: 0.5 × 3 → 2.5 / 5 = 50.0
        assert_eq!(s.score, 50.0);
        assert_eq!(s.band, Band::Developing);
        assert_eq!(s.by_domain.len(), 2);
        assert_eq!(s.by_domain[0].score, 50.0);
        assert!(s.gaps.iter().all(|g| g.response == Response::Partial));
        let third = score(&[control("A", Criticality::Low, &[Yes, Unknown, Unknown])]);
        assert_eq!(third.score, 33.3);
    }

    #[test]
    fn bands_and_empty_assessments() {
        assert_eq!(Band::of(90.0), Band::Ready);
        assert_eq!(Band::of(89.9), Band::NearlyReady);
        assert_eq!(Band::of(50.0), Band::Developing);
        assert_eq!(Band::of(0.1), Band::Early);
        assert_eq!(Band::of(0.0), Band::NotStarted);
        let none = score(&[control("A", Criticality::High, &[Response::NotApplicable])]);
        assert_eq!((none.score, none.band), (0.0, Band::NotStarted));
        assert!(none.by_domain.is_empty() && none.gaps.is_empty());
    }

    fn arb_response() -> impl Strategy<Value = Response> {
        prop_oneof![
            Just(Response::Yes),
            Just(Response::Partial),
            Just(Response::No),
            Just(Response::NotApplicable),
            Just(Response::Unknown),
        ]
    }

    fn arb_criticality() -> impl Strategy<Value = Criticality> {
        prop_oneof![
            Just(Criticality::Low),
            Just(Criticality::Medium),
            Just(Criticality::High),
            Just(Criticality::Critical),
        ]
    }

    fn arb_controls() -> impl Strategy<Value = Vec<ControlAnswers>> {
        prop::collection::vec(
            (
                prop::sample::select(vec!["A", "B", "C"]),
                arb_criticality(),
                prop::collection::vec(arb_response(), 1..4),
            )
                .prop_map(|(d, c, r)| control(d, c, &r)),
            0..30,
        )
    }

    proptest! {
        #[test]
        fn scores_stay_between_0_and_100(controls in arb_controls()) {
            let s = score(&controls);
            prop_assert!((0.0..=100.0).contains(&s.score));
            prop_assert!(s.by_domain.iter().all(|d| (0.0..=100.0).contains(&d.score)));
            prop_assert!(s.gaps.len() <= controls.len());
        }

        #[test]
        fn not_applicable_instead_of_no_or_unknown_never_lowers(
            controls in arb_controls(), pick in any::<prop::sample::Index>(), q in any::<prop::sample::Index>()
        ) {
            prop_assume!(!controls.is_empty());
            let before = score(&controls).score;
            let mut after = controls.clone();
            let c = pick.index(after.len());
            let i = q.index(after[c].responses.len());
            prop_assume!(matches!(after[c].responses[i], Response::No | Response::Unknown));
            after[c].responses[i] = Response::NotApplicable;
            prop_assert!(score(&after).score >= before);
        }

        #[test]
        fn a_yes_never_lowers(
            controls in arb_controls(), pick in any::<prop::sample::Index>(), q in any::<prop::sample::Index>(),
            extra in arb_criticality()
        ) {
            let before = score(&controls).score;
            let mut changed = controls.clone();
            if !changed.is_empty() {
                let c = pick.index(changed.len());
                let i = q.index(changed[c].responses.len());
                changed[c].responses[i] = Response::Yes;
                prop_assert!(score(&changed).score >= before);
            }
            let mut added = controls.clone();
            added.push(control("A", extra, &[Response::Yes]));
            prop_assert!(score(&added).score >= before);
        }
    }
}
