// A paused clock needs one worker, which knows when every task waits.
#[klaw::test(start_paused = true, workers = 4)]
async fn an_hour_passes() {}

fn main() {}
