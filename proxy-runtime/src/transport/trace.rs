//! The phases of establishing a connection: each runs against the connection's one
//! deadline ([`Steps`]), may be traced with the instant it began ([`Trace`]), and its
//! duration reported to whoever keeps timings (a route's member metrics).

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Phase, ProxyError, ProxyErrorKind};

/// The phases a connection went through, each with the instant it began: for deadlines
/// that span more than the dial (a request's), and for `proxy-check --probe`'s timings.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    marks: Mutex<Vec<(Phase, Instant)>>,
}

impl Trace {
    pub(crate) fn enter(&self, phase: Phase) {
        self.lock().push((phase, Instant::now()));
    }

    /// The phase entered last.
    pub(crate) fn current(&self) -> Option<Phase> {
        self.lock().last().map(|(phase, _)| *phase)
    }

    /// Every phase entered, in order, with when it began.
    pub(crate) fn marks(&self) -> Vec<(Phase, Instant)> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Phase, Instant)>> {
        self.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Told how long each phase took.
pub(crate) type Timing<'a> = &'a (dyn Fn(Phase, Duration) + Sync);

/// The deadline of one connection, where its phases are traced, and who is told their
/// durations.
#[derive(Clone, Copy)]
pub(crate) struct Steps<'a> {
    pub(crate) deadline: Instant,
    pub(crate) trace: Option<&'a Trace>,
    pub(crate) timing: Option<Timing<'a>>,
}

impl Steps<'_> {
    /// Runs one phase against the shared deadline.
    pub(crate) async fn phase<T>(
        &self,
        phase: Phase,
        fut: impl Future<Output = T>,
    ) -> Result<T, ProxyError> {
        if let Some(trace) = self.trace {
            trace.enter(phase);
        }
        let started = Instant::now();
        let result = tokio::time::timeout_at(self.deadline, fut)
            .await
            .map_err(|_| ProxyError::new(ProxyErrorKind::Timeout(phase)));
        if let Some(timing) = self.timing {
            timing(phase, started.elapsed());
        }
        result
    }

    /// Runs one phase that may fail: its error, like its timeout, names the phase.
    pub(crate) async fn run<T>(
        &self,
        phase: Phase,
        fut: impl Future<Output = Result<T, ProxyError>>,
    ) -> Result<T, ProxyError> {
        self.phase(phase, fut)
            .await
            .and_then(|result| result)
            .map_err(|e| e.in_phase(phase))
    }
}
