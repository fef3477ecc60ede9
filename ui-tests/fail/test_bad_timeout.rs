#[klaw::test(timeout = "ten seconds")]
async fn slow() {}

fn main() {}
