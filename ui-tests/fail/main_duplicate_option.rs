#[klaw::main(workers = 2, workers = 3)]
async fn main() {}
