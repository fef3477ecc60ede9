// The largest values the macros accept are exactly the runtime's limits.
const _: () = assert!(klaw::runtime::MAX_WORKERS == 1024 && klaw::runtime::MAX_BLOCKING_THREADS == 4096);

#[klaw::main(workers = 1024, max_blocking_threads = 4096)]
async fn largest() {}

fn main() {
    // Compiling is the point; starting 1024 threads is not.
    let _entry: fn() = largest;
}
