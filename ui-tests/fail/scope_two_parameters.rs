async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(|s, t| Ok(()))
}

fn main() {}
