fn run() -> Result<(), klaw::Error> {
    klaw::scope!(|s| Ok(()))
}

fn main() {}
