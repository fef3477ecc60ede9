async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(name = "a", name = "b", |s| Ok(()))
}

fn main() {}
