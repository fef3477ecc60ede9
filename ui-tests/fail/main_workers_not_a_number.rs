#[klaw::main(workers = "four")]
async fn main() {}
