#[klaw::task]
async fn echo<T>(value: T) -> T {
    klaw::time::sleep(std::time::Duration::from_millis(1)).await;
    value
}

fn main() {}
