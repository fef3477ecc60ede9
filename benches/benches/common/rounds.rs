//! Rounds that several benches run the same way, so that their numbers compare across benches.
//! Included with `#[path = "common/rounds.rs"] mod rounds;`.
#![allow(dead_code, reason = "spawn.rs uses only the JoinSet round")]

/// A klaw `scope!` that spawns `children` trivial children and returns once all have ended.
pub(crate) fn klaw_scope(rt: &klaw::Runtime, children: u64) {
    rt.block_on(async {
        klaw::scope!(|s| {
            for i in 0..children {
                s.spawn(async move { i });
            }
            Ok(())
        })
    })
    .unwrap();
}

/// A tokio `JoinSet` of `tasks` trivial tasks, joined to the last.
pub(crate) fn tokio_join_set(rt: &tokio::runtime::Runtime, tasks: u64) {
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..tasks {
            set.spawn(async move { i });
        }
        while let Some(result) = set.join_next().await {
            result.unwrap();
        }
    });
}
