#[klaw::main(cancel_on_ctrl_c = true)]
async fn main() {}
