async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(async |s| Ok(()))
}

fn main() {}
