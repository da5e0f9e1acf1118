//! The scheduler: runs a DAG's stages in dependency order on a rayon pool.
//!
//! One coordinator thread (the caller's) owns all state and all output. It
//! decides each ready stage's freshness itself, because that is cheap (stat
//! calls and index look-ups): a fresh stage whose outputs are in place settles
//! at once, without a pool thread. Stages to run or restore go to the pool,
//! whose threads report back over a channel.
//!
//! Thread budget: each stage takes a share of `jobs`, capped at `jobs`, that
//! the executor sets: the local executor uses the stage's `threads`, 1 by
//! default. A stage starts only when its share and those of the running stages
//! fit in `jobs`, so two 2-thread training stages on 2 cores run one at a time.
//!
//! Keys of dependants are computed only when their dependencies have settled,
//! from the dependencies' actual output hashes: a stage that reran and wrote
//! identical bytes leaves its dependants' keys unchanged (early cutoff).
//!
//! After a failure, no new stage starts unless `keep_going` is set, in which
//! case everything not downstream of a failure still runs. On Ctrl-C no new
//! stage starts, running ones are terminated, and their outputs removed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use petgraph::graph::NodeIndex;

use super::executor::Executor;
use super::freshness::{self, Freshness};
use super::interrupt;
use super::progress::Progress;
use super::worker::{Done, Failure, How, Work, Worker};
use crate::cache::{Cache, Entry, Outcome};
use crate::dag::Dag;
use crate::spec::Stage;

pub struct RunOptions {
    pub jobs: usize,
    pub keep_going: bool,
    pub force: HashSet<NodeIndex>,
    pub quiet_bars: bool,
}

/// Counts of what happened to each stage.
#[derive(Debug, Default)]
pub struct Summary {
    pub ran: usize,
    pub cached: usize,
    pub restored: usize,
    pub failed: usize,
    /// Failures because an input file is missing: bad input, not a failed command.
    pub missing_inputs: usize,
    pub skipped: usize,
    pub interrupted: bool,
    pub elapsed: Duration,
}

struct Scheduler<'a> {
    dag: &'a Dag,
    cache: &'a Cache,
    root: &'a Path,
    options: &'a RunOptions,
    executor: &'a dyn Executor,
    progress: Progress,
    summary: Summary,
    rank: HashMap<NodeIndex, usize>,
    /// Dependencies not yet settled, per stage.
    waiting_on: HashMap<NodeIndex, usize>,
    ready: BTreeSet<(usize, NodeIndex)>,
    running: HashMap<NodeIndex, usize>,
    done: HashMap<NodeIndex, Entry>,
    blocked: HashSet<NodeIndex>,
    stop_starting: bool,
}

type Report = (NodeIndex, Result<Done, Failure>);

/// Runs every stage of `dag` that is not cached; returns what happened.
pub fn run(
    dag: &Dag,
    cache: &Cache,
    root: &Path,
    executor: &dyn Executor,
    options: &RunOptions,
) -> Result<Summary> {
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs)
        .thread_name(|i| format!("xp-stage-{i}"))
        .build()
        .context("failed to start the worker threads")?;
    let mut scheduler = Scheduler::new(dag, cache, root, options, executor);
    let worker = Worker { cache, root, executor };
    let (sender, receiver) = mpsc::channel::<Report>();
    pool.in_place_scope(|scope| -> Result<()> {
        loop {
            if interrupt::requested() && !scheduler.summary.interrupted {
                scheduler.summary.interrupted = true;
                scheduler.stop_starting = true;
                executor.cancel_all();
            }
            for (node, work) in scheduler.dispatch()? {
                let sender = sender.clone();
                let worker = &worker;
                let stage = dag.stage(node);
                let mut upstream: Vec<NodeIndex> = dag.dependencies(node).collect();
                upstream.sort_by_key(|dep| scheduler.rank[dep]);
                let upstream: Vec<&Stage> = upstream.into_iter().map(|dep| dag.stage(dep)).collect();
                scope.spawn(move |_| {
                    // The receiver outlives every worker; a send error cannot happen.
                    let _ = sender.send((node, worker.perform(stage, &upstream, work)));
                });
            }
            if scheduler.running.is_empty() {
                break;
            }
            match receiver.recv_timeout(Duration::from_millis(50)) {
                Ok((node, result)) => scheduler.settle_report(node, result)?,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("a sender is held here"),
            }
        }
        Ok(())
    })?;
    scheduler.progress.finish();
    scheduler.summary.skipped = dag.order.len()
        - (scheduler.summary.ran + scheduler.summary.cached + scheduler.summary.restored)
        - scheduler.summary.failed;
    scheduler.summary.elapsed = started.elapsed();
    cache.index.flush()?;
    Ok(scheduler.summary)
}

impl<'a> Scheduler<'a> {
    fn new(
        dag: &'a Dag,
        cache: &'a Cache,
        root: &'a Path,
        options: &'a RunOptions,
        executor: &'a dyn Executor,
    ) -> Self {
        let rank: HashMap<NodeIndex, usize> =
            dag.order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let mut waiting_on = HashMap::new();
        let mut ready = BTreeSet::new();
        for &node in &dag.order {
            let count = dag.dependencies(node).count();
            if count == 0 {
                ready.insert((rank[&node], node));
            }
            waiting_on.insert(node, count);
        }
        Scheduler {
            dag,
            cache,
            root,
            options,
            executor,
            progress: Progress::new(dag.order.len(), options.quiet_bars),
            summary: Summary::default(),
            rank,
            waiting_on,
            ready,
            running: HashMap::new(),
            done: HashMap::new(),
            blocked: HashSet::new(),
            stop_starting: false,
        }
    }

    fn threads_in_use(&self) -> usize {
        self.running.values().sum()
    }

    /// Settles every ready stage that is cached and returns the work that fits
    /// in the thread budget now.
    fn dispatch(&mut self) -> Result<Vec<(NodeIndex, Work)>> {
        let mut work = Vec::new();
        let mut deferred = Vec::new();
        while let Some((rank, node)) = self.ready.pop_first() {
            if self.stop_starting {
                deferred.push((rank, node));
                continue;
            }
            let stage = self.dag.stage(node);
            let threads = self.executor.slots(stage).clamp(1, self.options.jobs);
            if !self.running.is_empty() && self.threads_in_use() + threads > self.options.jobs {
                deferred.push((rank, node));
                continue;
            }
            let forced = self.options.force.contains(&node);
            let assessed = freshness::components(self.dag, node, &self.done, self.cache, self.root)
                .and_then(|c| freshness::assess(stage, c, self.dag, self.cache, self.root, forced));
            match assessed {
                Err(err) => {
                    if err.downcast_ref::<freshness::MissingInput>().is_some() {
                        self.summary.missing_inputs += 1;
                    }
                    self.fail(node, &Failure { message: format!("{err:#}"), log: None });
                }
                Ok(Freshness::Fresh { key, entry, restore: false }) => {
                    tracing::debug!(stage = %stage.id, %key, "cache hit");
                    self.cache.index.set_latest(&stage.id, &key)?;
                    self.progress.line("cached", &stage.id, "");
                    self.summary.cached += 1;
                    self.record_outcome(node, &key, "cached")?;
                    self.complete(node, *entry);
                }
                Ok(Freshness::Fresh { key, entry, restore: true }) => {
                    tracing::debug!(stage = %stage.id, %key, "cache hit; outputs to restore");
                    self.progress.started(&stage.id, "restore", "outputs differ from the cache");
                    self.running.insert(node, 1);
                    work.push((node, Work::Restore { key, entry }));
                }
                Ok(Freshness::Stale { key, components, reasons }) => {
                    tracing::debug!(stage = %stage.id, %key, ?reasons, "cache miss");
                    self.progress.started(&stage.id, "run", &format!("({})", reasons.join("; ")));
                    self.running.insert(node, threads);
                    work.push((node, Work::Run { key, components }));
                }
            }
        }
        self.ready.extend(deferred);
        Ok(work)
    }

    fn record_outcome(&self, node: NodeIndex, key: &str, source: &str) -> Result<()> {
        let outcome = Outcome { key: key.to_string(), source: source.to_string() };
        self.cache.index.set_outcome(&self.dag.stage(node).id, &outcome)
    }

    fn settle_report(&mut self, node: NodeIndex, result: Result<Done, Failure>) -> Result<()> {
        self.running.remove(&node);
        let id = &self.dag.stage(node).id;
        match result {
            Ok(done) => {
                let source = if matches!(done.how, How::Restored) { "restored" } else { "ran" };
                self.record_outcome(node, &done.key, source)?;
                let seconds = format!("{:.2}s", done.elapsed.as_secs_f64());
                match &done.how {
                    How::Ran => {
                        self.summary.ran += 1;
                        self.progress.line("done", id, &seconds);
                    }
                    How::Restored => {
                        self.summary.restored += 1;
                        self.progress.line("restored", id, &seconds);
                    }
                    How::Rebuilt(problem) => {
                        self.summary.ran += 1;
                        self.progress.line("rebuilt", id, &format!("{seconds} ({problem})"));
                    }
                }
                tracing::debug!(stage = %id, key = %done.key, "stage settled");
                self.complete(node, done.entry);
            }
            Err(failure) => self.fail(node, &failure),
        }
        Ok(())
    }

    /// Records a settled stage and releases the dependants now ready.
    fn complete(&mut self, node: NodeIndex, entry: Entry) {
        self.progress.settled(&self.dag.stage(node).id);
        self.done.insert(node, entry);
        for dependant in self.dag.dependants(node) {
            let count = self.waiting_on.get_mut(&dependant).expect("every node has a count");
            *count -= 1;
            if *count == 0 && !self.blocked.contains(&dependant) {
                self.ready.insert((self.rank[&dependant], dependant));
            }
        }
    }

    fn fail(&mut self, node: NodeIndex, failure: &Failure) {
        let id = self.dag.stage(node).id.clone();
        let label = if self.summary.interrupted { "stopped" } else { "FAILED" };
        let mut detail = failure.message.clone();
        if let Some(log) = &failure.log {
            detail.push_str(&format!("; log: {}", log.display()));
        }
        self.progress.line(label, &id, &detail);
        self.progress.settled(&id);
        self.summary.failed += 1;
        if !self.options.keep_going {
            self.stop_starting = true;
        }
        let mut pending: Vec<NodeIndex> = self.dag.dependants(node).collect();
        while let Some(next) = pending.pop() {
            if self.blocked.insert(next) {
                self.progress.line("skipped", &self.dag.stage(next).id, &format!("(upstream {id} failed)"));
                pending.extend(self.dag.dependants(next));
            }
        }
    }
}
