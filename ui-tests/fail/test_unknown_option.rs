#[klaw::test(flavor = "multi_thread")]
async fn checks_something() {}

fn main() {}
