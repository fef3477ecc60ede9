// `#[klaw::main(tokio)]` with klaw's default features: one error, at the option, naming `tokio`.

#[klaw::main(tokio)]
async fn main() {}
