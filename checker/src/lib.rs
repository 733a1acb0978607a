//! A linearizability checker for per-key register histories (Wing & Gong's search with
//! Lowe's memoization, as in Knossos and Porcupine).
//!
//! # Model
//!
//! Each key is an independent register holding `Option<value>` (absent or a value). Tests
//! write unique values, so a value identifies the write that produced it; versions (ETags) are
//! translated to values by the harness before checking. Operations:
//!
//! - `Write(v)`: the register becomes `Some(v)`.
//! - `Delete`: the register becomes `None`.
//! - `Read`: observes the register (`Some(v)` or `None`).
//! - `Cas { expect, new }`: succeeds iff the register is `Some(expect)`, then holds `new`; a
//!   failed CAS observed the register being something else.
//! - `Create(v)`: succeeds iff the register is `None`.
//!
//! Each operation has an invocation time and, if it completed, a response time and outcome.
//! An operation whose outcome is unknown (timeout, connection reset, crash) may have taken
//! effect at any instant after its invocation, or never: it is given an infinite response
//! time, so it can be linearized anywhere after its call, including after everything else
//! (which is indistinguishable from never).
//!
//! A history is linearizable iff there is a total order of the operations that respects real
//! time (if A returned before B was invoked, A comes first) and in which every operation's
//! outcome is what the register model produces.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashSet};

/// A register value (tests use unique strings).
pub type Value = String;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// Set the value.
    Write(Value),
    /// Remove the value.
    Delete,
    /// Read the value.
    Read,
    /// Compare-and-swap: set `new` iff the value is `expect`.
    Cas {
        /// Expected current value.
        expect: Value,
        /// Value to set.
        new: Value,
    },
    /// Create-only write: set the value iff absent.
    Create(Value),
}

/// What the client observed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A write, delete, CAS or create that succeeded.
    Ok,
    /// A CAS or create whose precondition failed (nothing changed).
    Failed,
    /// A read's result.
    Read(Option<Value>),
    /// No answer: the operation may or may not have taken effect.
    Unknown,
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Which client issued it (for reports only).
    pub client: usize,
    /// The register (key).
    pub key: String,
    /// What was asked.
    pub call: Call,
    /// What was observed.
    pub outcome: Outcome,
    /// Invocation time (any monotonic unit).
    pub invoked: u64,
    /// Response time; ignored for `Outcome::Unknown`.
    pub returned: u64,
}

/// Verdict for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A valid linearization exists.
    Linearizable,
    /// No order works; `longest_prefix` holds the operations of the deepest partial
    /// linearization the search found (useful to see where it got stuck).
    NotLinearizable {
        /// The key.
        key: String,
        /// Operations (indices into the key's history) of the deepest partial order.
        longest_prefix: Vec<usize>,
        /// The operations of the key's history, for the report.
        history: Vec<Operation>,
    },
}

/// Applies `call` with observed `outcome` to `state`; None if the model disagrees.
fn step(state: &Option<Value>, call: &Call, outcome: &Outcome) -> Option<Option<Value>> {
    let unknown = *outcome == Outcome::Unknown;
    match (call, outcome) {
        (Call::Write(v), Outcome::Ok | Outcome::Unknown) => Some(Some(v.clone())),
        (Call::Delete, Outcome::Ok | Outcome::Unknown) => Some(None),
        (Call::Read, Outcome::Read(r)) => (r == state).then(|| state.clone()),
        (Call::Read, Outcome::Unknown) => Some(state.clone()),
        (Call::Cas { expect, new }, Outcome::Ok | Outcome::Unknown) => {
            if state.as_ref() == Some(expect) {
                Some(Some(new.clone()))
            } else if unknown {
                // An unknown CAS that would fail changes nothing.
                Some(state.clone())
            } else {
                None
            }
        }
        (Call::Cas { expect, .. }, Outcome::Failed) => {
            (state.as_ref() != Some(expect)).then(|| state.clone())
        }
        (Call::Create(v), Outcome::Ok | Outcome::Unknown) => {
            if state.is_none() {
                Some(Some(v.clone()))
            } else if unknown {
                Some(state.clone())
            } else {
                None
            }
        }
        (Call::Create(_), Outcome::Failed) => state.is_some().then(|| state.clone()),
        _ => None,
    }
}

/// Checks every key of `history` independently; returns the first violation found.
#[must_use]
pub fn check(history: &[Operation]) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key.as_str()).or_default().push(op.clone());
    }
    for (key, ops) in by_key {
        let v = check_key(key, ops);
        if v != Verdict::Linearizable {
            return v;
        }
    }
    Verdict::Linearizable
}

/// One event of the search list: the call or the return of operation `op`.
#[derive(Debug, Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
    /// For a call, the index of its return event.
    partner: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// Checks the history of one key, starting from an absent register.
#[must_use]
pub fn check_key(key: &str, ops: Vec<Operation>) -> Verdict {
    let n = ops.len();
    // Events sorted by time; at equal times calls come first (treated as concurrent).
    let mut times: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        let ret = if op.outcome == Outcome::Unknown {
            u64::MAX
        } else {
            op.returned.max(op.invoked)
        };
        times.push((op.invoked, true, i));
        times.push((ret, false, i));
    }
    times.sort_by_key(|&(t, is_call, i)| (t, !is_call, i));
    let mut events: Vec<Event> = times
        .iter()
        .map(|&(_, is_call, op)| Event {
            op,
            is_call,
            partner: 0,
            prev: None,
            next: None,
        })
        .collect();
    let mut ret_of = vec![0usize; n];
    for (idx, e) in events.iter().enumerate() {
        if !e.is_call {
            ret_of[e.op] = idx;
        }
    }
    let len = events.len();
    for (idx, e) in events.iter_mut().enumerate() {
        if e.is_call {
            e.partner = ret_of[e.op];
        }
        e.prev = idx.checked_sub(1);
        e.next = (idx + 1 < len).then_some(idx + 1);
    }
    let mut head: Option<usize> = (len > 0).then_some(0);

    let mut state: Option<Value> = None;
    let mut linearized = vec![false; n];
    let mut cache: HashSet<(Vec<bool>, Option<Value>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<Value>)> = Vec::new();
    let mut best: Vec<usize> = Vec::new();
    let mut cur = head;

    // Unlinks event `i` (and the caller re-links it in reverse order).
    fn unlink(events: &mut [Event], head: &mut Option<usize>, i: usize) {
        let (p, nx) = (events[i].prev, events[i].next);
        match p {
            Some(p) => events[p].next = nx,
            None => *head = nx,
        }
        if let Some(nx) = nx {
            events[nx].prev = p;
        }
    }
    fn relink(events: &mut [Event], head: &mut Option<usize>, i: usize) {
        let (p, nx) = (events[i].prev, events[i].next);
        match p {
            Some(p) => events[p].next = Some(i),
            None => *head = Some(i),
        }
        if let Some(nx) = nx {
            events[nx].prev = Some(i);
        }
    }

    loop {
        let Some(i) = cur else {
            if head.is_none() {
                return Verdict::Linearizable;
            }
            // Ran off the end without reaching a return: nothing left to try here.
            match backtrack(
                &mut stack,
                &mut events,
                &mut head,
                &mut linearized,
                &mut state,
                relink,
            ) {
                Some(next) => {
                    cur = next;
                    continue;
                }
                None => break,
            }
        };
        let e = events[i];
        if e.is_call {
            let op = &ops[e.op];
            if let Some(next_state) = step(&state, &op.call, &op.outcome) {
                let mut lin = linearized.clone();
                lin[e.op] = true;
                if cache.insert((lin.clone(), next_state.clone())) {
                    stack.push((i, state.clone()));
                    state = next_state;
                    linearized = lin;
                    unlink(&mut events, &mut head, e.partner);
                    unlink(&mut events, &mut head, i);
                    if stack.len() > best.len() {
                        best = stack.iter().map(|&(ev, _)| events[ev].op).collect();
                    }
                    cur = head;
                    continue;
                }
            }
            cur = e.next;
        } else {
            // A return reached: some pending call must have been linearized before it.
            match backtrack(
                &mut stack,
                &mut events,
                &mut head,
                &mut linearized,
                &mut state,
                relink,
            ) {
                Some(next) => cur = next,
                None => break,
            }
        }
    }
    Verdict::NotLinearizable {
        key: key.to_owned(),
        longest_prefix: best,
        history: ops,
    }
}

/// Undoes the most recent linearization step; returns where to continue (the event after
/// the undone call), or None when the stack is empty (no linearization exists).
fn backtrack(
    stack: &mut Vec<(usize, Option<Value>)>,
    events: &mut [Event],
    head: &mut Option<usize>,
    linearized: &mut [bool],
    state: &mut Option<Value>,
    relink: fn(&mut [Event], &mut Option<usize>, usize),
) -> Option<Option<usize>> {
    let (i, prev_state) = stack.pop()?;
    let partner = events[i].partner;
    relink(events, head, i);
    relink(events, head, partner);
    linearized[events[i].op] = false;
    *state = prev_state;
    Some(events[i].next)
}

#[cfg(test)]
mod tests;
