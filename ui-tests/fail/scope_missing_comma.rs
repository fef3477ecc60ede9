// An option and the closure without a comma between them.
async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(supervisor |s| Ok(()))
}

fn main() {}
