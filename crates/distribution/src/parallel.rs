//! Running transfers a few at a time: workers take items in order, and the
//! first failure stops the others from starting new ones (and, through the
//! shared flag, from continuing the ones they have).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// The error of a transfer stopped because another one failed; never reported.
pub(crate) fn cancelled() -> Error {
    Error::Invalid(CANCELLED.into())
}

const CANCELLED: &str = "cancelled because another transfer failed";

fn is_cancelled(e: &Error) -> bool {
    matches!(e, Error::Invalid(m) if m == CANCELLED)
}

/// Runs `f` on every item with at most `workers` at once, in order of the
/// items; returns each result with its item's index, or the first failure.
/// `cancel` is set when one fails.
pub(crate) fn run<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    cancel: &AtomicBool,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<(usize, R)>> {
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1).min(items.len()) {
            s.spawn(|| {
                while !cancel.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(n) else { return };
                    match f(item) {
                        Ok(r) => done.lock().expect("results lock").push((n, r)),
                        Err(e) => {
                            cancel.store(true, Ordering::Relaxed);
                            let mut slot = first_error.lock().expect("error lock");
                            if slot.is_none() && !is_cancelled(&e) {
                                *slot = Some(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("error lock") {
        return Err(e);
    }
    let mut done = done.into_inner().expect("results lock");
    done.sort_by_key(|(n, _)| *n);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_everything_or_reports_the_first_failure() {
        let items: Vec<u32> = (0..20).collect();
        let cancel = AtomicBool::new(false);
        let out = run(&items, 3, &cancel, |i| Ok(i * 2)).unwrap();
        assert_eq!(out.len(), 20);
        assert_eq!(out[7], (7, 14));
        let cancel = AtomicBool::new(false);
        let e = run(&items, 3, &cancel, |i| {
            if *i == 5 {
                Err(Error::Invalid("five".into()))
            } else if cancel.load(Ordering::Relaxed) {
                Err(cancelled())
            } else {
                Ok(*i)
            }
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "five");
        assert!(cancel.load(Ordering::Relaxed));
    }
}
