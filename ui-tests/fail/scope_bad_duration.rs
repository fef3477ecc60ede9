async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(timeout = "1.5s", |s| Ok(()))
}

fn main() {}
