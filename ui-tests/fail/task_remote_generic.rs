#[klaw::task(remote)]
async fn echo<T: Send + 'static>(value: T) -> T {
    value
}

fn main() {}
