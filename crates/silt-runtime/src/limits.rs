//! Per-store resource limits that remember whether a limit was hit, so a
//! failed call can be reported as "memory limit exceeded" rather than as the
//! guest's resulting abort.

/// Caps the total linear memory of all instances in one store.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit_bytes: usize,
    used_bytes: usize,
    exceeded: bool,
}

/// Tables are small; this only stops a guest from growing one without bound.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl MemoryLimiter {
    /// A limiter allowing `limit_bytes` of linear memory in total.
    pub fn new(limit_bytes: usize) -> Self {
        Self {
            limit_bytes,
            used_bytes: 0,
            exceeded: false,
        }
    }

    /// True once a growth request was refused.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// The configured limit.
    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.used_bytes - current.min(self.used_bytes) + desired;
        if after > self.limit_bytes {
            // Refuse the growth (memory.grow returns -1); the guest usually
            // aborts next, and the flag lets the host name the real cause.
            self.exceeded = true;
            return Ok(false);
        }
        self.used_bytes = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
