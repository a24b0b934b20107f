//! The steps of a WHEP connection — HTTP (offer/answer), ICE (a working candidate
//! pair), DTLS (keys for SRTP) — and how far each got.
//!
//! The player records every transition here and logs it at `info` (one line per step,
//! prefixed with the step's name), so `streamhub play -v` shows where a connection
//! stopped. [`ConnectSteps::summary`] gives one line per step, those not reached
//! included, for the error path.

use std::fmt;

/// One step of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The offer POSTed to the WHEP endpoint and its answer.
    Http,
    /// ICE connectivity checks.
    Ice,
    /// The DTLS handshake that yields the SRTP keys.
    Dtls,
}

impl Step {
    /// Every step, in the order a connection goes through them.
    pub const ALL: [Step; 3] = [Step::Http, Step::Ice, Step::Dtls];

    /// The step's name as logs show it.
    pub fn name(self) -> &'static str {
        match self {
            Step::Http => "HTTP",
            Step::Ice => "ICE",
            Step::Dtls => "DTLS",
        }
    }
}

/// How far one step got.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StepState {
    /// Not reached.
    #[default]
    NotStarted,
    /// Under way; what it is doing.
    Started(String),
    /// Done; what it found.
    Done(String),
    /// Failed; why.
    Failed(String),
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepState::NotStarted => f.write_str("not started"),
            StepState::Started(what) => write!(f, "started ({what}), not finished"),
            StepState::Done(what) => write!(f, "ok ({what})"),
            StepState::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// The three steps of one connection attempt.
#[derive(Debug, Clone, Default)]
pub struct ConnectSteps {
    states: [StepState; 3],
}

impl ConnectSteps {
    fn index(step: Step) -> usize {
        match step {
            Step::Http => 0,
            Step::Ice => 1,
            Step::Dtls => 2,
        }
    }

    /// Where `step` is.
    pub fn state(&self, step: Step) -> &StepState {
        &self.states[Self::index(step)]
    }

    /// Records a transition and logs it; a repeated state is not logged twice.
    pub fn set(&mut self, step: Step, state: StepState) {
        let slot = &mut self.states[Self::index(step)];
        if *slot == state {
            return;
        }
        match &state {
            StepState::NotStarted => {}
            StepState::Started(what) => tracing::info!("{}: {what}", step.name()),
            StepState::Done(what) => tracing::info!("{}: ok, {what}", step.name()),
            StepState::Failed(why) => tracing::warn!("{}: failed: {why}", step.name()),
        }
        *slot = state;
    }

    /// A step that was under way failed because the connection as a whole did (the
    /// first unfinished step takes the blame).
    pub fn fail_unfinished(&mut self, why: &str) {
        if let Some(step) = Step::ALL
            .into_iter()
            .find(|s| matches!(self.state(*s), StepState::Started(_)))
        {
            self.set(step, StepState::Failed(why.to_string()));
        }
    }

    /// One line per step (`HTTP: ok (…)`, `ICE: not started`, …).
    pub fn summary(&self) -> Vec<String> {
        Step::ALL
            .into_iter()
            .map(|s| format!("{}: {}", s.name(), self.state(s)))
            .collect()
    }

    /// Logs [`Self::summary`] at `info`, one line per step.
    pub fn log_summary(&self) {
        for line in self.summary() {
            tracing::info!("step {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_step_in_order() {
        let mut steps = ConnectSteps::default();
        steps.set(Step::Http, StepState::Started("POST offer".into()));
        steps.set(Step::Http, StepState::Failed("connection refused".into()));
        assert_eq!(
            steps.summary(),
            [
                "HTTP: failed: connection refused",
                "ICE: not started",
                "DTLS: not started"
            ]
        );
    }

    #[test]
    fn the_first_unfinished_step_takes_the_blame() {
        let mut steps = ConnectSteps::default();
        steps.set(Step::Http, StepState::Done("201".into()));
        steps.set(Step::Ice, StepState::Started("checking".into()));
        steps.fail_unfinished("timed out");
        assert_eq!(
            steps.state(Step::Ice),
            &StepState::Failed("timed out".into())
        );
        assert_eq!(steps.state(Step::Dtls), &StepState::NotStarted);
        steps.fail_unfinished("again");
        assert_eq!(
            steps.state(Step::Ice),
            &StepState::Failed("timed out".into())
        );
    }
}
