#[klaw::main(tokio = true)]
async fn main() {}
