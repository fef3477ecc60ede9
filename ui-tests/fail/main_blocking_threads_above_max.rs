// One more than klaw::runtime::MAX_BLOCKING_THREADS (4096).
#[klaw::main(max_blocking_threads = 4097)]
async fn main() {}
