// `start_paused` is not a flag: it takes `true` or `false`.
#[klaw::test(start_paused)]
async fn an_hour_passes() {}

fn main() {}
