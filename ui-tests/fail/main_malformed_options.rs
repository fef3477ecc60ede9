#[klaw::main(workers = 2 max_blocking_threads = 8)]
async fn main() {}
