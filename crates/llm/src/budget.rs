//! Token budgets: one per run, one per process and sliding hour.
//!
//! A request reserves its worst case (estimated prompt tokens plus `max_output_tokens`) in both budgets before
//! it is sent, and is refused if either could be exceeded; concurrent runs therefore cannot overshoot the hour
//! budget together. When the answer arrives the reservation is replaced by the tokens the response's `usage`
//! reports; a reservation dropped without an answer (connection refused, HTTP error) is released, and a
//! request that timed out is charged its full reservation (the server may have done the work).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sre_domain::label_enum;

label_enum! {
    /// Which budget refused a request.
    pub enum BudgetScope {
        /// The tokens one run (one failure) may use.
        Run => "run",
        /// The tokens the process may use in any sliding hour.
        Hour => "hour",
    }
}

/// A request refused before sending: it could use `needed` tokens and only `remaining` of `limit` are left.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{scope} token budget exceeded: the request may use up to {needed} tokens, {remaining} of {limit} remain")]
pub struct BudgetExceeded {
    pub scope: BudgetScope,
    pub needed: u64,
    pub remaining: u64,
    pub limit: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct RunState {
    used: u64,
    reserved: u64,
}

/// The tokens one run may use. Make one per run with [`crate::LlmClient::run_budget`] (or [`RunBudget::new`]).
#[derive(Debug)]
pub struct RunBudget {
    limit: u64,
    state: Mutex<RunState>,
}

impl RunBudget {
    pub fn new(limit: u64) -> Self {
        Self { limit, state: Mutex::new(RunState::default()) }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Tokens charged so far.
    pub fn used(&self) -> u64 {
        lock(&self.state).used
    }

    /// Tokens neither charged nor reserved.
    pub fn remaining(&self) -> u64 {
        let s = lock(&self.state);
        self.limit.saturating_sub(s.used + s.reserved)
    }
}

#[derive(Debug, Default)]
struct HourState {
    spent: VecDeque<(Instant, u64)>,
    reserved: u64,
}

impl HourState {
    fn expire(&mut self, now: Instant, window: Duration) {
        while self.spent.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) >= window) {
            self.spent.pop_front();
        }
    }
    fn spent(&self) -> u64 {
        self.spent.iter().map(|(_, n)| n).sum()
    }
}

/// The tokens the process may use in any sliding hour; shared by every run of the process.
#[derive(Debug)]
pub struct HourBudget {
    limit: u64,
    window: Duration,
    state: Mutex<HourState>,
}

impl HourBudget {
    pub fn new(limit: u64) -> Self {
        Self::with_window(limit, Duration::from_secs(3600))
    }

    fn with_window(limit: u64, window: Duration) -> Self {
        Self { limit, window, state: Mutex::new(HourState::default()) }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Tokens charged within the last hour.
    pub fn used(&self) -> u64 {
        let mut s = lock(&self.state);
        s.expire(Instant::now(), self.window);
        s.spent()
    }

    /// Tokens neither charged within the last hour nor reserved.
    pub fn remaining(&self) -> u64 {
        self.remaining_at(Instant::now())
    }

    fn remaining_at(&self, now: Instant) -> u64 {
        let mut s = lock(&self.state);
        s.expire(now, self.window);
        self.limit.saturating_sub(s.spent() + s.reserved)
    }
}

/// Tokens held for one request in both budgets until [`Reservation::commit`]; released when dropped.
#[must_use]
pub struct Reservation<'a> {
    run: &'a RunBudget,
    hour: &'a HourBudget,
    tokens: u64,
    done: bool,
}

/// Reserves `tokens` in both budgets, or says which one could be exceeded (the run's is checked first).
pub fn reserve<'a>(run: &'a RunBudget, hour: &'a HourBudget, tokens: u64) -> Result<Reservation<'a>, BudgetExceeded> {
    reserve_at(run, hour, tokens, Instant::now())
}

fn reserve_at<'a>(
    run: &'a RunBudget,
    hour: &'a HourBudget,
    tokens: u64,
    now: Instant,
) -> Result<Reservation<'a>, BudgetExceeded> {
    // Lock order: run, then hour (the only place both are held).
    let mut r = lock(&run.state);
    let run_left = run.limit.saturating_sub(r.used + r.reserved);
    if tokens > run_left {
        return Err(BudgetExceeded { scope: BudgetScope::Run, needed: tokens, remaining: run_left, limit: run.limit });
    }
    let mut h = lock(&hour.state);
    h.expire(now, hour.window);
    let hour_left = hour.limit.saturating_sub(h.spent() + h.reserved);
    if tokens > hour_left {
        return Err(BudgetExceeded {
            scope: BudgetScope::Hour,
            needed: tokens,
            remaining: hour_left,
            limit: hour.limit,
        });
    }
    r.reserved += tokens;
    h.reserved += tokens;
    Ok(Reservation { run, hour, tokens, done: false })
}

impl Reservation<'_> {
    /// The tokens held.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Replaces the reservation by what the request actually used.
    pub fn commit(self, used: u64) {
        self.commit_at(used, Instant::now());
    }

    fn commit_at(mut self, used: u64, now: Instant) {
        self.release();
        lock(&self.run.state).used += used;
        if used > 0 {
            lock(&self.hour.state).spent.push_back((now, used));
        }
    }

    fn release(&mut self) {
        if !self.done {
            self.done = true;
            let mut r = lock(&self.run.state);
            r.reserved = r.reserved.saturating_sub(self.tokens);
            drop(r);
            let mut h = lock(&self.hour.state);
            h.reserved = h.reserved.saturating_sub(self.tokens);
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_budget_refuses_before_the_hour_budget() {
        let (run, hour) = (RunBudget::new(100), HourBudget::new(1_000));
        let r = reserve(&run, &hour, 60).unwrap();
        assert_eq!((run.remaining(), hour.remaining()), (40, 940));
        let err = reserve(&run, &hour, 50).err().unwrap();
        assert_eq!(err, BudgetExceeded { scope: BudgetScope::Run, needed: 50, remaining: 40, limit: 100 });
        assert_eq!(err.to_string(), "run token budget exceeded: the request may use up to 50 tokens, 40 of 100 remain");
        r.commit(30);
        assert_eq!((run.used(), run.remaining(), hour.used(), hour.remaining()), (30, 70, 30, 970));
    }

    #[test]
    fn a_dropped_reservation_is_released() {
        let (run, hour) = (RunBudget::new(100), HourBudget::new(100));
        {
            let _r = reserve(&run, &hour, 100).unwrap();
            assert!(reserve(&run, &hour, 1).is_err());
        }
        assert_eq!((run.remaining(), hour.remaining(), run.used()), (100, 100, 0));
    }

    #[test]
    fn the_hour_budget_is_shared_and_slides() {
        let hour = HourBudget::with_window(100, Duration::from_secs(3600));
        let (a, b) = (RunBudget::new(1_000), RunBudget::new(1_000));
        let t0 = Instant::now();
        reserve_at(&a, &hour, 70, t0).unwrap().commit_at(70, t0);
        let err = reserve_at(&b, &hour, 40, t0 + Duration::from_secs(10)).err().unwrap();
        assert_eq!((err.scope, err.remaining), (BudgetScope::Hour, 30));
        // An hour after the spend it no longer counts.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(hour.remaining_at(later), 100);
        reserve_at(&b, &hour, 40, later).unwrap().commit_at(40, later);
        assert_eq!(hour.remaining_at(later), 60);
    }
}
