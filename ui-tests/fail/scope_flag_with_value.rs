async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(supervisor = true, |s| Ok(()))
}

fn main() {}
