// A duration is a string with a unit (or a `Duration` expression), not a bare number.
#[klaw::test(timeout = 10)]
async fn slow() {}

fn main() {}
