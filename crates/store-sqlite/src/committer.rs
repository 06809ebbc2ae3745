//! Who runs a write job: the caller, when the writer is free, or the
//! writer thread.
//!
//! The [`Writer`] sits behind a mutex. A write that finds nothing queued
//! for the writer thread and the mutex free runs as a group of one on the
//! calling thread ([`Committer::try_inline`]): that saves the two thread
//! hand-offs (waking the writer thread, and its reply waking the caller's
//! runtime thread again) that cost an uncontended writer most of its time.
//! Everything else is queued for the writer thread ([`Committer::run`]),
//! which blocks for one message, drains whatever else is queued (up to
//! [`crate::SqliteConfig::max_batch`]) and runs the whole group under the
//! mutex, so writes that arrive together still share one commit.
//!
//! After a write found another queued for the thread, the next
//! [`COOLDOWN`] writes go to the thread too, so concurrent writers keep
//! sharing group commits.
//!
//! Order: a job runs inline only while no job is queued or running on the
//! thread, so it never overtakes a write submitted before it. The caller is
//! blocked for the job and its commit (fsync included), which is as long
//! as it would have waited for the answer, on a thread that would
//! otherwise have gone idle waiting for it.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use ferry_store::StoreError;
use parking_lot::Mutex;

use crate::writer::{Job, Writer};

/// A message for the writer thread.
pub(crate) enum WriterMsg {
    /// Work to run in the next group.
    Job(Job),
    /// Finish the queue, checkpoint and exit.
    Close {
        reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    },
}

/// The writer and the count of jobs handed to its thread.
pub(crate) struct Committer {
    /// `None` once the thread has shut the connection down.
    writer: Mutex<Option<Writer>>,
    /// Write jobs queued for the writer thread and not yet run (prunes do
    /// not count: nothing orders them against writes).
    queued: AtomicUsize,
    /// Whether callers may run uncontended jobs themselves.
    inline: bool,
    /// Writes still to go through the thread since one found the writer
    /// busy (see [`COOLDOWN`]).
    cooldown: AtomicU32,
    max_batch: usize,
}

/// How many writes after one that found another write queued go to the writer
/// thread without trying to run inline. Under concurrent writers a job
/// that commits alone costs a commit (and an fsync) of its own while the
/// others queue behind it; through the thread they share one. A count, not
/// a time, so the choice does not depend on the clock.
const COOLDOWN: u32 = 64;

impl Committer {
    pub(crate) fn new(writer: Writer, inline: bool, max_batch: usize) -> Self {
        Self {
            writer: Mutex::new(Some(writer)),
            queued: AtomicUsize::new(0),
            inline,
            cooldown: AtomicU32::new(0),
            max_batch: max_batch.max(1),
        }
    }

    /// Runs `job` on this thread and answers it if the writer is free and
    /// nothing is queued for it; otherwise gives the job back.
    pub(crate) fn try_inline(&self, job: Job) -> Result<(), Job> {
        if !self.inline {
            return Err(job);
        }
        let left = self.cooldown.load(Ordering::Relaxed);
        if left > 0 {
            // Racy by design: an occasional extra or missing inline try
            // changes nothing but speed.
            self.cooldown.store(left - 1, Ordering::Relaxed);
            return Err(job);
        }
        if self.queued.load(Ordering::Acquire) != 0 {
            // Another write waits for the thread: writers are concurrent.
            self.cooldown.store(COOLDOWN, Ordering::Relaxed);
            return Err(job);
        }
        // Held by an inline write or by the thread (its group may be only
        // a prune): this job queues, and the next one sees it queued.
        let Some(mut guard) = self.writer.try_lock() else {
            return Err(job);
        };
        // Checked again under the mutex: a write is counted as queued before
        // it is sent, and uncounted only after its group ran.
        if self.queued.load(Ordering::Acquire) != 0 {
            return Err(job);
        }
        let Some(writer) = guard.as_mut() else {
            return Err(job);
        };
        let answers = writer.run_group(vec![job]);
        drop(guard);
        for answer in answers {
            answer.send();
        }
        Ok(())
    }

    /// Counts a write that is about to be sent to the writer thread; undone
    /// by [`Committer::unqueue`] if the send fails.
    pub(crate) fn queue(&self) {
        self.queued.fetch_add(1, Ordering::AcqRel);
    }

    /// Undoes [`Committer::queue`] for a job that was not sent.
    pub(crate) fn unqueue(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// The writer thread's main loop; returns when the store closes or is
    /// dropped.
    pub(crate) fn run(&self, rx: Receiver<WriterMsg>) {
        loop {
            let Ok(first) = rx.recv() else {
                // Every sender is gone: the store was dropped without
                // `close`. Everything acknowledged is already durable.
                return;
            };
            let mut group = Vec::new();
            let mut close = None;
            match first {
                WriterMsg::Close { reply } => close = Some(reply),
                WriterMsg::Job(job) => group.push(job),
            }
            while close.is_none() && group.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(WriterMsg::Close { reply }) => close = Some(reply),
                    Ok(WriterMsg::Job(job)) => group.push(job),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            if !group.is_empty() {
                let writes = group.iter().filter(|job| job.is_write()).count();
                let mut guard = self.writer.lock();
                let answers = match guard.as_mut() {
                    Some(writer) => writer.run_group(group),
                    None => Vec::new(),
                };
                drop(guard);
                self.queued.fetch_sub(writes, Ordering::AcqRel);
                for answer in answers {
                    answer.send();
                }
            }
            if let Some(reply) = close {
                let result = match self.writer.lock().take() {
                    Some(writer) => writer.shut_down(),
                    None => Ok(()),
                };
                let _ = reply.send(result);
                return;
            }
        }
    }
}
