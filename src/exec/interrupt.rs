//! Ctrl-C and SIGTERM: the first one asks the run to stop; the scheduler then
//! ends running stages and keeps the cache consistent.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler; call once, before starting a run.
pub fn install() -> anyhow::Result<()> {
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst))
        .map_err(|err| anyhow::anyhow!("failed to install the Ctrl-C handler: {err}"))
}

pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
