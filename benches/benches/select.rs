//! `select!` over 4 receivers: 4 producers each send 250k `u64` into their own `bounded(64)`
//! channel; one consumer selects over the 4 until it has all 1M. On one tokio runtime with 2
//! workers. `klaw::select!` vs `tokio::select!`, both over klaw channels (the select machinery
//! alone), and `tokio::select!` over tokio mpsc (tokio's whole stack).
//!
//! `cargo bench -p klaw-benches --bench select` prints ratios to `tokio::select!` over klaw.

use klaw_benches::{Contender, compare, criterion_config};

const MESSAGES: u64 = 1_000_000;
const CAPACITY: usize = 64;
const ROUNDS: usize = 11;

fn klaw_channels(rt: &tokio::runtime::Runtime) -> Vec<klaw::channel::Receiver<u64>> {
    (0..4)
        .map(|_| {
            let (tx, rx) = klaw::channel::bounded::<u64>(CAPACITY);
            rt.spawn(async move {
                for i in 0..MESSAGES / 4 {
                    tx.send(i).await.unwrap();
                }
            });
            rx
        })
        .collect()
}

fn main() {
    klaw_benches::run_cpu_hog_if_asked();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let rt = &rt;
    let contenders = vec![
        Contender::new("klaw::select! (klaw ch)", move || {
            let rx = klaw_channels(rt);
            rt.block_on(async {
                let (mut count, mut sum) = (0u64, 0u64);
                while count < MESSAGES {
                    let v = klaw::select! {
                        recv(rx[0]) -> m => m,
                        recv(rx[1]) -> m => m,
                        recv(rx[2]) -> m => m,
                        recv(rx[3]) -> m => m,
                    };
                    if let Ok(v) = v {
                        count += 1;
                        sum = sum.wrapping_add(v);
                    }
                }
                std::hint::black_box(sum);
            });
        }),
        Contender::new("tokio::select! (klaw ch)", move || {
            let rx = klaw_channels(rt);
            rt.block_on(async {
                let (mut count, mut sum) = (0u64, 0u64);
                while count < MESSAGES {
                    let v = tokio::select! {
                        m = rx[0].recv() => m,
                        m = rx[1].recv() => m,
                        m = rx[2].recv() => m,
                        m = rx[3].recv() => m,
                    };
                    if let Ok(v) = v {
                        count += 1;
                        sum = sum.wrapping_add(v);
                    }
                }
                std::hint::black_box(sum);
            });
        }),
        Contender::new("tokio::select! (tokio mpsc)", move || {
            let mut rx: Vec<_> = (0..4)
                .map(|_| {
                    let (tx, rx) = tokio::sync::mpsc::channel::<u64>(CAPACITY);
                    rt.spawn(async move {
                        for i in 0..MESSAGES / 4 {
                            tx.send(i).await.unwrap();
                        }
                    });
                    rx
                })
                .collect();
            rt.block_on(async {
                let (mut count, mut sum) = (0u64, 0u64);
                let [a, b, c, d] = &mut rx[..] else { unreachable!() };
                while count < MESSAGES {
                    let v = tokio::select! {
                        m = a.recv() => m,
                        m = b.recv() => m,
                        m = c.recv() => m,
                        m = d.recv() => m,
                    };
                    if let Some(v) = v {
                        count += 1;
                        sum = sum.wrapping_add(v);
                    }
                }
                std::hint::black_box(sum);
            });
        }),
    ];
    let mut criterion = criterion_config();
    compare(
        &mut criterion,
        "select_4_receivers_1m",
        MESSAGES,
        ROUNDS,
        "tokio::select! (klaw ch)",
        contenders,
    );
    criterion.final_summary();
}
