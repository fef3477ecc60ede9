async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(|(a, b)| Ok(()))
}

fn main() {}
