//! The writer's group commit: jobs queued together commit together, each
//! in its own savepoint, and a failing or panicking job harms no neighbour.
//!
//! Grouping is made deterministic without timing: a first job parks the
//! writer inside its closure, the next jobs are polled once (which queues
//! them), and then the first job is released. Writes that find the writer
//! free commit on their caller's thread; the grouping cases turn that off.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Waker};

use ferry_store::{KeyRange, Store, StoreError, StoreExt, WriteOutcome};
use ferry_store_sqlite::{SqliteConfig, SqliteStore};
use tokio::task::JoinHandle;

type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

async fn open(dir: &tempfile::TempDir, config: SqliteConfig) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open_with(dir.path().join("ferry.db"), config)
            .await
            .expect("open store"),
    )
}

/// Every write goes through the writer thread's queue, so the jobs queued
/// behind a parked one form one group (with inline commits the thread would
/// take the first queued job while the parked one still runs).
fn thread_only() -> SqliteConfig {
    SqliteConfig {
        inline_commits: false,
        ..SqliteConfig::default()
    }
}

/// Polls `fut` once, which hands its job to the writer thread.
fn submit<T>(mut fut: Pending<T>) -> Pending<T> {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        fut.as_mut().poll(&mut cx).is_pending(),
        "the job cannot be done while the writer is parked"
    );
    fut
}

/// Starts a write that parks the writer thread until the returned sender
/// fires (or is dropped), and waits until the writer is inside it.
async fn park_writer(
    store: &Arc<SqliteStore>,
    small: bool,
) -> (
    mpsc::Sender<()>,
    JoinHandle<Result<Option<u64>, StoreError>>,
) {
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let parked = {
        let store = store.clone();
        tokio::spawn(async move {
            let f: ferry_store::WriteFn = Box::new(move |txn| {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
                txn.put(b"parked", b"1")?;
                Ok(WriteOutcome::Commit)
            });
            match small {
                true => store.write_small_boxed(f).await,
                false => store.write_boxed(f).await,
            }
        })
    };
    tokio::task::spawn_blocking(move || started_rx.recv())
        .await
        .unwrap()
        .expect("the writer runs the parking job");
    (release_tx, parked)
}

async fn get(store: &SqliteStore, key: &'static [u8]) -> Option<Vec<u8>> {
    store
        .read(move |txn| txn.get(key))
        .await
        .map_err(|e: StoreError| e)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_first_job_leaves_the_rest_of_its_group_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, thread_only()).await;
    let (release, parked) = park_writer(&store, false).await;
    // The first job of the next group runs without a savepoint.
    let s = store.clone();
    let error_a = submit(Box::pin(async move {
        s.write_boxed(Box::new(|txn| {
            txn.put(b"a", b"1")?;
            txn.set_change(b"never".to_vec());
            Err(StoreError::Backend("refused by the caller".into()))
        }))
        .await
    }));
    let s = store.clone();
    let commit_b = submit(Box::pin(async move {
        s.write(|txn| {
            let seen = txn.get(b"a")?;
            txn.put(b"b", b"1")?;
            txn.set_change(b"kept".to_vec());
            Ok::<_, StoreError>(seen)
        })
        .await
    }));
    release.send(()).unwrap();
    assert_eq!(parked.await.unwrap().unwrap(), None);
    assert!(error_a.await.is_err());
    let (seen, seq) = commit_b.await.unwrap();
    assert_eq!(seen, None, "the discarded job's write is not visible");
    assert_eq!(seq, Some(1));
    assert!(get(&store, b"a").await.is_none());
    assert!(get(&store, b"b").await.is_some());
    let changes = store.changes_since(0, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].payload, b"kept".to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_group_isolates_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, thread_only()).await;
    let (release, parked) = park_writer(&store, false).await;
    assert_eq!(store.stats().group_commits, 0);

    let s = store.clone();
    let commit_a = submit(Box::pin(async move {
        s.write_boxed(Box::new(|txn| {
            txn.put(b"a", b"1")?;
            txn.set_change(b"first".to_vec());
            Ok(WriteOutcome::Commit)
        }))
        .await
    }));
    let s = store.clone();
    let rollback_b = submit(Box::pin(async move {
        s.write_boxed(Box::new(|txn| {
            txn.put(b"b", b"1")?;
            txn.delete(b"a")?;
            txn.set_change(b"never".to_vec());
            Ok(WriteOutcome::Rollback)
        }))
        .await
    }));
    let s = store.clone();
    let error_c = submit(Box::pin(async move {
        s.write_boxed(Box::new(|txn| {
            txn.put(b"c", b"1")?;
            txn.set_change(b"never".to_vec());
            Err(StoreError::Backend("refused by the caller".into()))
        }))
        .await
    }));
    let s = store.clone();
    let panic_d = submit(Box::pin(async move {
        s.write_boxed(Box::new(|txn| {
            txn.put(b"d", b"1")?;
            txn.set_change(b"never".to_vec());
            panic!("boom in a grouped job");
        }))
        .await
    }));
    let s = store.clone();
    let commit_e = submit(Box::pin(async move {
        s.write(|txn| {
            // Earlier jobs of the group are visible, discarded ones are not.
            let seen = (
                txn.get(b"a")?,
                txn.get(b"b")?,
                txn.get(b"c")?,
                txn.get(b"d")?,
            );
            txn.put(b"e", b"1")?;
            txn.set_change(b"second".to_vec());
            Ok::<_, StoreError>(seen)
        })
        .await
    }));

    release.send(()).unwrap();
    assert_eq!(parked.await.unwrap().unwrap(), None);
    assert_eq!(commit_a.await.unwrap(), Some(1));
    assert_eq!(rollback_b.await.unwrap(), None);
    let err = error_c.await.unwrap_err();
    assert!(err.to_string().contains("refused by the caller"), "{err}");
    let err = panic_d.await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
    assert!(err.to_string().contains("panicked"), "{err}");
    assert!(err.to_string().contains("boom in a grouped job"), "{err}");
    let (seen, seq) = commit_e.await.unwrap();
    assert_eq!(seen, (Some(b"1".to_vec()), None, None, None));
    // Discarded change records take no sequence numbers.
    assert_eq!(seq, Some(2));

    // The parking job committed alone; the five queued jobs as one group.
    let stats = store.stats();
    assert_eq!(stats.group_commits, 2, "{stats:?}");
    assert_eq!(stats.grouped_jobs, 6, "{stats:?}");

    for (key, want) in [
        (&b"parked"[..], true),
        (b"a", true),
        (b"b", false),
        (b"c", false),
        (b"d", false),
        (b"e", true),
    ] {
        let key: &'static [u8] = key;
        assert_eq!(get(&store, key).await.is_some(), want, "{key:?}");
    }
    let changes = store.changes_since(0, 10).await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.seq, c.payload.as_slice()))
            .collect::<Vec<_>>(),
        vec![(1, &b"first"[..]), (2, b"second")]
    );
    assert_eq!(*store.watch().borrow(), 2);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_respect_max_batch() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig {
        max_batch: 2,
        ..thread_only()
    };
    let store = open(&dir, config).await;
    let (release, parked) = park_writer(&store, false).await;
    let queued: Vec<_> = (0..5u8)
        .map(|i| {
            let s = store.clone();
            submit(Box::pin(async move {
                s.write(move |txn| {
                    txn.put(&[b'q', i], &[i])?;
                    txn.set_change(vec![i]);
                    Ok::<_, StoreError>(())
                })
                .await
                .map(|((), seq)| seq)
            }))
        })
        .collect();
    release.send(()).unwrap();
    parked.await.unwrap().unwrap();
    let mut seqs = Vec::new();
    for job in queued {
        seqs.push(job.await.unwrap().unwrap());
    }
    assert_eq!(seqs, vec![1, 2, 3, 4, 5], "sequence follows queue order");
    // 1 (parked) + ceil(5 / 2) groups.
    let stats = store.stats();
    assert_eq!(stats.group_commits, 4, "{stats:?}");
    assert_eq!(stats.grouped_jobs, 6, "{stats:?}");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_writes_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, SqliteConfig::default()).await;
    let n = 300u32;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = i.to_be_bytes();
                store
                    .write(move |txn| {
                        txn.put(&key, &key)?;
                        txn.set_change(key.to_vec());
                        Ok::<_, StoreError>(())
                    })
                    .await
                    .map(|((), seq)| seq.expect("a change record was committed"))
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=u64::from(n)).collect::<Vec<_>>());
    assert_eq!(*store.watch().borrow(), u64::from(n));

    let stats = store.stats();
    assert_eq!(stats.grouped_jobs, u64::from(n), "{stats:?}");
    assert!(stats.group_commits <= stats.grouped_jobs, "{stats:?}");

    let keys = store
        .read(|txn| {
            let mut keys = Vec::new();
            txn.scan(&KeyRange::prefix(&[]), false, &mut |k, v| {
                assert_eq!(k, v);
                keys.push(k.to_vec());
                ControlFlow::Continue(())
            })?;
            Ok::<_, StoreError>(keys)
        })
        .await
        .unwrap();
    let want: Vec<Vec<u8>> = (0..n).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(keys, want);
    let changes = store.changes_since(0, 10_000).await.unwrap();
    assert_eq!(changes.len(), n as usize);
    assert!(changes.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_closures_do_not_kill_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    // One reader, so the panicking read and the next one share a thread.
    let config = SqliteConfig {
        readers: 1,
        ..SqliteConfig::default()
    };
    let store = open(&dir, config).await;
    // Something for the panicking scan to visit.
    store
        .write(|txn| txn.put(b"base", b"1"))
        .await
        .map_err(|e: StoreError| e)
        .unwrap();
    for round in 0..3u8 {
        let err = store
            .write_boxed(Box::new(move |txn| {
                txn.put(b"half", &[round])?;
                panic!("write panic {round}");
            }))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        let err = store
            .read_boxed(Box::new(|txn| {
                txn.scan(&KeyRange::prefix(&[]), false, &mut |_, _| {
                    panic!("read panic inside a scan")
                })
            }))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("read panic inside a scan"),
            "{err}"
        );

        let key = [b'k', round];
        let ((), seq) = store
            .write(move |txn| {
                txn.put(&key, b"ok")?;
                txn.set_change(key.to_vec());
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        assert_eq!(seq, Some(u64::from(round) + 1));
        let (half, ok) = store
            .read(move |txn| Ok::<_, StoreError>((txn.get(b"half")?, txn.get(&key)?)))
            .await
            .unwrap();
        assert_eq!(half, None, "a panicked write leaves nothing behind");
        assert_eq!(ok.as_deref(), Some(&b"ok"[..]));
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncontended_write_commits_on_its_callers_thread() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, SqliteConfig::default()).await;
    let caller = std::thread::current().id();
    let ((ran_on, seen), seq) = store
        .write_small(|txn| {
            txn.put(b"k", b"1")?;
            txn.set_change(b"c".to_vec());
            Ok::<_, StoreError>((std::thread::current().id(), txn.get(b"k")?))
        })
        .await
        .unwrap();
    assert_eq!(ran_on, caller);
    assert_eq!(seen, Some(b"1".to_vec()));
    assert_eq!(seq, Some(1));
    assert_eq!(*store.watch().borrow(), 1);
    let stats = store.stats();
    assert_eq!(
        (stats.inline_jobs, stats.group_commits, stats.grouped_jobs),
        (1, 1, 1)
    );
    assert_eq!(get(&store, b"k").await, Some(b"1".to_vec()));

    // A write not declared short (an import, an index build) always runs
    // on the writer thread.
    let on_thread = |store: Arc<SqliteStore>, small: bool| async move {
        let f = |txn: &mut dyn ferry_store::WriteTxn| {
            txn.put(b"k", b"2").map(|()| std::thread::current().id())
        };
        let written = match small {
            true => store.write_small(f).await,
            false => store.write(f).await,
        };
        written.map_err(|e: StoreError| e).unwrap().0
    };
    assert_ne!(on_thread(store.clone(), false).await, caller);
    assert_eq!(store.stats().inline_jobs, 1);

    // Thread-only configuration: even a short write runs on the thread.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, thread_only()).await;
    assert_ne!(on_thread(store.clone(), true).await, caller);
    assert_eq!(store.stats().inline_jobs, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_never_overtakes_one_queued_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, SqliteConfig::default()).await;
    // The parking job holds the writer on a runtime thread (it ran inline).
    let (release, parked) = park_writer(&store, true).await;
    let write = |key: &'static [u8]| {
        let s = store.clone();
        submit(Box::pin(async move {
            s.write_small(move |txn| {
                txn.put(key, b"1")?;
                txn.set_change(key.to_vec());
                Ok::<_, StoreError>(())
            })
            .await
            .map(|((), seq)| seq)
        }))
    };
    // `a` finds the writer busy and is queued for the thread; `b` finds
    // the writer's mutex still held or `a` still queued, never free.
    let a = write(b"a");
    let b = write(b"b");
    release.send(()).unwrap();
    parked.await.unwrap().unwrap();
    assert_eq!(a.await.unwrap(), Some(1));
    assert_eq!(b.await.unwrap(), Some(2));
    assert_eq!(store.stats().inline_jobs, 1, "only the parking job");
    // Having found the writer busy, the next writes keep going through the
    // thread for a while (so concurrent writers share commits), then
    // uncontended writes run inline again.
    let mut through_thread = 0;
    while store.stats().inline_jobs == 1 {
        assert!(through_thread < 100, "inline commits never resumed");
        store
            .write_small(|txn| txn.put(b"c", b"1"))
            .await
            .map_err(|e: StoreError| e)
            .unwrap();
        through_thread += 1;
    }
    assert!(through_thread > 1, "{through_thread}");
    store.close().await.unwrap();
}
