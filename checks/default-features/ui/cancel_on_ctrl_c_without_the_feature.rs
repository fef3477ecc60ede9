// `#[klaw::main(cancel_on_ctrl_c)]` with klaw's default features: one error, naming `signal`.

#[klaw::main(cancel_on_ctrl_c)]
async fn main() {}
