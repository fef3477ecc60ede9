//! Channel throughput, 1M `u64` through `bounded(64)`, async, on one tokio runtime with 2
//! workers (every channel here is executor-agnostic): SPSC, and MPMC with 4 producers and 4
//! consumers. klaw vs kanal, flume, async-channel and tokio mpsc (SPSC only: it is MPSC). And
//! klaw's channels between tasks of klaw's own runtime, also with 2 workers: what a klaw program
//! runs (its executor decides where the two ends of a channel run).
//!
//! `cargo bench -p klaw-benches --bench channel` prints criterion's estimates, then the medians
//! of interleaved rounds with ratios to kanal.

use std::future::Future;
use std::pin::Pin;

use klaw_benches::{Contender, compare, criterion_config};

const MESSAGES: u64 = 1_000_000;
const CAPACITY: usize = 64;
const ROUNDS: usize = 11;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `producers` and `consumers` tasks to completion; every consumer checks what it got.
fn run(rt: &tokio::runtime::Runtime, producers: Vec<BoxFuture>, consumers: Vec<BoxFuture>) {
    rt.block_on(async {
        let handles: Vec<_> = producers.into_iter().chain(consumers).map(tokio::spawn).collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
}

macro_rules! contender {
    // The send and receive steps are inlined, so each contender's handles are used as a user
    // would: borrowed by `send`/`recv`, never cloned per message.
    (
        $name:expr, $rt:expr, $p:expr, $c:expr, $make:expr,
        |$tx:ident, $v:ident| $send:expr,
        |$rx:ident| $recv:expr
    ) => {
        Contender::new($name, move || {
            let (tx, rx) = $make;
            let per_producer = MESSAGES / $p;
            let producers: Vec<BoxFuture> = (0..$p)
                .map(|_| {
                    let tx = tx.clone();
                    Box::pin(async move {
                        for i in 0..per_producer {
                            let ($tx, $v) = (&tx, i);
                            $send;
                        }
                    }) as BoxFuture
                })
                .collect();
            drop(tx);
            let consumers: Vec<BoxFuture> = (0..$c)
                .map(|_| {
                    let rx = rx.clone();
                    Box::pin(async move {
                        let mut sum = 0u64;
                        loop {
                            let $rx = &rx;
                            let Some(v) = $recv else { break };
                            sum = sum.wrapping_add(v);
                        }
                        std::hint::black_box(sum);
                    }) as BoxFuture
                })
                .collect();
            drop(rx);
            run($rt, producers, consumers);
        })
    };
}

fn contenders(rt: &tokio::runtime::Runtime, p: u64, c: u64) -> Vec<Contender<'_>> {
    let mut all = vec![
        contender!(
            "kanal",
            rt,
            p,
            c,
            kanal::bounded_async::<u64>(CAPACITY),
            |tx, v| tx.send(v).await.unwrap(),
            |rx| rx.recv().await.ok()
        ),
        contender!(
            "klaw",
            rt,
            p,
            c,
            klaw::channel::bounded::<u64>(CAPACITY),
            |tx, v| tx.send(v).await.unwrap(),
            |rx| rx.recv().await.ok()
        ),
        contender!(
            "flume",
            rt,
            p,
            c,
            flume::bounded::<u64>(CAPACITY),
            |tx, v| tx.send_async(v).await.unwrap(),
            |rx| rx.recv_async().await.ok()
        ),
        contender!(
            "async-channel",
            rt,
            p,
            c,
            async_channel::bounded::<u64>(CAPACITY),
            |tx, v| tx.send(v).await.unwrap(),
            |rx| rx.recv().await.ok()
        ),
    ];
    if c == 1 {
        all.push(Contender::new("tokio mpsc", move || {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(CAPACITY);
            let per_producer = MESSAGES / p;
            rt.block_on(async move {
                let producers: Vec<_> = (0..p)
                    .map(|_| {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            for i in 0..per_producer {
                                tx.send(i).await.unwrap();
                            }
                        })
                    })
                    .collect();
                drop(tx);
                // The consumer is a task on the runtime too, as for the other contenders.
                let consumer = tokio::spawn(async move {
                    let mut sum = 0u64;
                    while let Some(v) = rx.recv().await {
                        sum = sum.wrapping_add(v);
                    }
                    std::hint::black_box(sum);
                });
                consumer.await.unwrap();
                for producer in producers {
                    producer.await.unwrap();
                }
            });
        }));
    }
    all
}

/// klaw's channels between tasks of klaw's own runtime `rt`: `p` producers and `c` consumers.
fn on_klaw_runtime(rt: &klaw::Runtime, p: u64, c: u64) -> Contender<'_> {
    Contender::new("klaw, on klaw's runtime", move || {
        let (tx, rx) = klaw::channel::bounded::<u64>(CAPACITY);
        let per_producer = MESSAGES / p;
        let producers = (0..p).map(|_| {
            let tx = tx.clone();
            rt.spawn(async move {
                for i in 0..per_producer {
                    tx.send(i).await.unwrap();
                }
            })
        });
        let mut handles: Vec<_> = producers.collect();
        drop(tx);
        handles.extend((0..c).map(|_| {
            let rx = rx.clone();
            rt.spawn(async move {
                let mut sum = 0u64;
                while let Ok(v) = rx.recv().await {
                    sum = sum.wrapping_add(v);
                }
                std::hint::black_box(sum);
            })
        }));
        drop(rx);
        rt.block_on(async {
            for handle in handles {
                handle.await.unwrap();
            }
        });
    })
}

fn main() {
    klaw_benches::run_cpu_hog_if_asked();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let mut criterion = criterion_config();
    compare(&mut criterion, "spsc_bounded64_1m", MESSAGES, ROUNDS, "kanal", contenders(&rt, 1, 1));
    compare(
        &mut criterion,
        "mpmc4x4_bounded64_1m",
        MESSAGES,
        ROUNDS,
        "kanal",
        contenders(&rt, 4, 4),
    );
    // klaw's own runtime only now, in groups of its own: the tokio groups above run as they did
    // before it was added.
    let klaw_rt = klaw::Runtime::builder().workers(2).build().unwrap();
    let on_klaw = |p, c| {
        let mut kanal = contenders(&rt, p, c);
        kanal.truncate(1);
        kanal.push(on_klaw_runtime(&klaw_rt, p, c));
        kanal
    };
    let spsc = on_klaw(1, 1);
    compare(&mut criterion, "spsc_bounded64_1m_klaw_runtime", MESSAGES, ROUNDS, "kanal", spsc);
    let mpmc = on_klaw(4, 4);
    compare(&mut criterion, "mpmc4x4_bounded64_1m_klaw_runtime", MESSAGES, ROUNDS, "kanal", mpmc);
    criterion.final_summary();
}
