// `timeout` without a value: it takes a duration literal or a `Duration` expression.
#[klaw::task(timeout)]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {}
