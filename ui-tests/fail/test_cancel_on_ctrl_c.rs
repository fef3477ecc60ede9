#[klaw::test(cancel_on_ctrl_c)]
async fn interrupted() {}

fn main() {}
