// One more than klaw::runtime::MAX_WORKERS (1024); the pass case `entry_limits.rs` accepts 1024.
#[klaw::main(workers = 1025)]
async fn main() {}
