//! What a run shows the user. Only the scheduler's thread calls into this, so
//! lines never tear: with a terminal, one spinner per running stage and an
//! overall bar, with lines printed above them; without one, plain lines.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    running: HashMap<String, ProgressBar>,
}

impl Progress {
    /// Shows bars only when stderr is a terminal and `quiet_bars` is not set
    /// (verbose logging turns them off so log lines stay readable).
    pub fn new(total: usize, quiet_bars: bool) -> Self {
        if quiet_bars || !std::io::stderr().is_terminal() {
            return Progress { bars: None };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} stages {elapsed}")
                .expect("the template is valid"),
        );
        Progress { bars: Some(Bars { multi, overall, running: HashMap::new() }) }
    }

    /// Prints one status line: a right-aligned label, the stage, details.
    pub fn line(&self, label: &str, stage: &str, detail: &str) {
        let text = if detail.is_empty() {
            format!("{label:>9}  {stage}")
        } else {
            format!("{label:>9}  {stage}  {detail}")
        };
        // A closed stderr (`xp run ... 2>&1 | head`) must not stop the run.
        let print = || {
            let _ = writeln!(std::io::stderr(), "{text}");
        };
        match &self.bars {
            Some(bars) => bars.multi.suspend(print),
            None => print(),
        }
    }

    pub fn started(&mut self, stage: &str, label: &str, detail: &str) {
        self.line(label, stage, detail);
        if let Some(bars) = &mut self.bars {
            let bar = bars.multi.insert_before(&bars.overall, ProgressBar::new_spinner());
            bar.set_message(stage.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bars.running.insert(stage.to_string(), bar);
        }
    }

    /// Marks a stage as settled (ran, cached, failed or skipped).
    pub fn settled(&mut self, stage: &str) {
        if let Some(bars) = &mut self.bars {
            if let Some(bar) = bars.running.remove(stage) {
                bar.finish_and_clear();
                bars.multi.remove(&bar);
            }
            bars.overall.inc(1);
        }
    }

    pub fn finish(&mut self) {
        if let Some(bars) = self.bars.take() {
            for bar in bars.running.values() {
                bar.finish_and_clear();
            }
            bars.overall.finish_and_clear();
        }
    }
}
