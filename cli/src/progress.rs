//! What an upload shows: on a terminal a bar per file and one overall
//! (bytes/s, ETA); otherwise plain lines (logs, CI, tests), at most one a
//! second per file plus one per event.

use std::fmt::Display;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{
    BinaryBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle,
};

const PLAIN_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Output {
    bars: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    /// Every file's bar, to take down what interrupted work leaves.
    live: std::sync::Arc<Mutex<Vec<ProgressBar>>>,
}

impl Output {
    /// Bars when stdout is a terminal.
    pub fn new(bars: bool) -> Self {
        Self {
            bars: bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
            overall: None,
            live: Default::default(),
        }
    }

    /// The overall bar, when there are several files.
    pub fn with_total(mut self, files: usize, bytes: u64) -> Self {
        if let (Some(multi), true) = (&self.bars, files > 1) {
            let bar = multi.add(ProgressBar::new(bytes).with_finish(ProgressFinish::AndClear));
            bar.set_style(style("{prefix:>24} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}"));
            bar.set_prefix(format!("{files} files"));
            self.overall = Some(bar);
        }
        self
    }

    /// A line on stdout, above the bars.
    pub fn line(&self, message: impl Display) {
        match &self.bars {
            Some(multi) if !multi.is_hidden() => {
                multi.println(message.to_string()).ok();
            }
            _ => println!("{message}"),
        }
    }

    /// A line on stderr, bars kept intact.
    pub fn warn(&self, message: impl Display) {
        match &self.bars {
            Some(multi) if !multi.is_hidden() => multi.suspend(|| eprintln!("{message}")),
            _ => eprintln!("{message}"),
        }
    }

    pub fn file(&self, name: &str, size: u64) -> FileProgress {
        let bar = self.bars.as_ref().map(|multi| {
            // Cleared however it ends (dropped on Ctrl-C too): the lines say what happened.
            let bar = ProgressBar::new(size).with_finish(ProgressFinish::AndClear);
            let bar = match &self.overall {
                Some(overall) => multi.insert_before(overall, bar),
                None => multi.add(bar),
            };
            bar.set_style(style("{prefix:>24!} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"));
            bar.set_prefix(name.to_owned());
            self.live.lock().expect("bars").push(bar.clone());
            bar
        });
        FileProgress {
            output: self.clone(),
            name: name.to_owned(),
            size,
            bar,
            sent: AtomicU64::new(0),
            parts_done: AtomicU32::new(0),
            parts: AtomicU32::new(0),
            started: Instant::now(),
            baseline: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// Takes every bar down and stops drawing: bars of interrupted work
    /// may only be dropped later (a request body held by its connection).
    pub fn finish(&self) {
        let live = std::mem::take(&mut *self.live.lock().expect("bars"));
        for bar in live.iter().chain(&self.overall) {
            bar.finish_and_clear();
        }
        if let Some(multi) = &self.bars {
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid progress template")
        .progress_chars("=> ")
}

pub struct FileProgress {
    output: Output,
    name: String,
    size: u64,
    bar: Option<ProgressBar>,
    /// Bytes of this file sent or held, this run's and before.
    sent: AtomicU64,
    parts_done: AtomicU32,
    parts: AtomicU32,
    started: Instant,
    /// Bytes already held when this run started (not part of the rate).
    baseline: AtomicU64,
    last_line: Mutex<Instant>,
}

impl FileProgress {
    /// What the upload holds before this run sends anything.
    pub fn start(&self, parts: u32, held_parts: u32, held_bytes: u64) {
        self.parts.store(parts, Ordering::Relaxed);
        self.parts_done.store(held_parts, Ordering::Relaxed);
        self.sent.store(held_bytes, Ordering::Relaxed);
        self.baseline.store(held_bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_position(held_bytes);
            bar.reset_eta();
        }
        if let Some(overall) = &self.output.overall {
            overall.inc(held_bytes);
            // Held bytes are not throughput.
            overall.reset_eta();
        }
    }

    pub fn add(&self, bytes: u64) {
        self.sent.fetch_add(bytes, Ordering::Relaxed);
        for bar in self.bars() {
            bar.inc(bytes);
        }
    }

    /// Bytes of a failed attempt, sent again by the retry.
    pub fn undo(&self, bytes: u64) {
        self.sent.fetch_sub(bytes, Ordering::Relaxed);
        for bar in self.bars() {
            bar.dec(bytes);
        }
    }

    fn bars(&self) -> impl Iterator<Item = &ProgressBar> {
        self.bar.iter().chain(self.output.overall.iter())
    }

    pub fn part_done(&self) {
        let done = self.parts_done.fetch_add(1, Ordering::Relaxed) + 1;
        let parts = self.parts.load(Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{done}/{parts} parts"));
            return;
        }
        let mut last = self.last_line.lock().expect("progress lock");
        if last.elapsed() < PLAIN_EVERY && done < parts {
            return;
        }
        *last = Instant::now();
        drop(last);
        let sent = self.sent.load(Ordering::Relaxed);
        let this_run = sent.saturating_sub(self.baseline.load(Ordering::Relaxed));
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        self.output.line(format!(
            "{}: {done}/{parts} parts, {} of {}, {}/s",
            self.name,
            BinaryBytes(sent),
            BinaryBytes(self.size),
            BinaryBytes((this_run as f64 / secs) as u64)
        ));
    }

    /// Takes the bar down; the message stays as a line.
    pub fn finish(&self, message: impl Display) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.output.line(message);
    }

    /// Takes the bar down without a message (failures are told on stderr).
    pub fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn line(&self, message: impl Display) {
        self.output.line(message);
    }
}
