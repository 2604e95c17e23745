//! The memory budget: bytes of request bodies being received, their decoded form, and the
//! events waiting for the writer, all counted against one configured bound. A request that
//! would go past it is refused as overloaded (503) instead of growing memory without limit.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budget accounting is done in KiB, rounded up.
const UNIT: usize = 1024;

/// The shared budget.
pub struct MemoryBudget {
    sem: Arc<Semaphore>,
    total_units: usize,
}

/// What one request holds of the budget; released when dropped (once its events are written
/// or it is refused).
pub struct Reservation {
    sem: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    pub fn new(bytes: usize) -> MemoryBudget {
        let total_units = bytes.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS);
        MemoryBudget { sem: Arc::new(Semaphore::new(total_units)), total_units }
    }

    /// An empty reservation, to grow as the request's bytes arrive.
    pub fn reserve(&self) -> Reservation {
        Reservation { sem: self.sem.clone(), permit: None }
    }

    /// Bytes currently held, rounded to KiB.
    pub fn in_use(&self) -> usize {
        (self.total_units - self.sem.available_permits()) * UNIT
    }

    pub fn total(&self) -> usize {
        self.total_units * UNIT
    }
}

impl Reservation {
    /// Takes `bytes` more of the budget, or says no (the budget is spent).
    #[must_use]
    pub fn grow(&mut self, bytes: usize) -> bool {
        let units = bytes.div_ceil(UNIT);
        if units == 0 {
            return true;
        }
        let Ok(units) = u32::try_from(units) else { return false };
        match self.sem.clone().try_acquire_many_owned(units) {
            Ok(p) => {
                match &mut self.permit {
                    Some(held) => held.merge(p),
                    None => self.permit = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Bytes held, rounded to KiB.
    pub fn held(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_until_spent_and_frees_on_drop() {
        let budget = MemoryBudget::new(10 * 1024);
        let mut a = budget.reserve();
        assert!(a.grow(4000));
        assert!(a.grow(4000));
        assert_eq!(a.held(), 8 * 1024);
        let mut b = budget.reserve();
        assert!(!b.grow(3 * 1024), "only 2 KiB left");
        assert!(b.grow(2 * 1024));
        assert_eq!(budget.in_use(), 10 * 1024);
        drop(a);
        assert_eq!(budget.in_use(), 2 * 1024);
        assert!(b.grow(0));
    }
}
