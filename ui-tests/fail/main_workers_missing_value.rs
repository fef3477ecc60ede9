#[klaw::main(workers)]
async fn main() {}
