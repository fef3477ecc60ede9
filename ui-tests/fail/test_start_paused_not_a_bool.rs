#[klaw::test(start_paused = "yes")]
async fn an_hour_passes() {}

fn main() {}
