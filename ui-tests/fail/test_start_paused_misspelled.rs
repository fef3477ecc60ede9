#[klaw::test(start_pasued = true)]
async fn an_hour_passes() {}

fn main() {}
