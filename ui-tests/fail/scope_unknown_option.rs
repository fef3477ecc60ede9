async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(retries = 3, |s| Ok(()))
}

fn main() {}
