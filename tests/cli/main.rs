//! End-to-end tests of the `xp` binary on pipelines written into temporary
//! workspaces. One test binary, so the suite links once.

mod support;

mod audit;
mod concurrency;
mod dag;
mod faults;
mod fuzz;
mod hostile;
mod kills;
mod reports;
mod reruns;
mod scheduling;
mod slurm;
mod spec_errors;
mod storage;
mod sweeps;
